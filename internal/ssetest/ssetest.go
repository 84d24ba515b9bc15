// Package ssetest is the SSE client of sluice's tests: it opens a stream
// over real HTTP (1.1 or 2), reads it on its own goroutine, and lets a test
// wait for its priming, its next event or its end, failing only when the
// code under test hangs.
package ssetest

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/sse"
)

// Hang is how long a test waits for something that should happen
// promptly: it only fires when the code under test hangs.
const Hang = 15 * time.Second

// Protocols runs f over HTTP/1.1 and HTTP/2.
func Protocols(t *testing.T, f func(t *testing.T, h2 bool)) {
	t.Run("HTTP1", func(t *testing.T) { f(t, false) })
	t.Run("HTTP2", func(t *testing.T) { f(t, true) })
}

// Server starts h on loopback, over HTTP/2 with TLS when h2, and returns it
// with a client for it. The server is closed when the test ends.
func Server(t *testing.T, h http.Handler, h2 bool) (*httptest.Server, *http.Client) {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	if h2 {
		srv.EnableHTTP2 = true
		srv.StartTLS()
	} else {
		srv.Start()
	}
	client := srv.Client()
	if h2 {
		tr := client.Transport.(*http.Transport).Clone()
		tr.ForceAttemptHTTP2 = true
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}}
		client = &http.Client{Transport: tr}
	}
	t.Cleanup(func() {
		client.CloseIdleConnections()
		srv.Close()
	})
	return srv, client
}

// Client is one response being read.
type Client struct {
	T        *testing.T
	Resp     *http.Response
	Reader   *sse.Reader
	Comments chan string // comment lines, as many as fit

	cancel context.CancelFunc
	events chan sse.Event
	done   chan struct{}
	err    error // valid after done
	tap    *tap
}

// tap keeps the first bytes read from a response body, where the priming
// is: the sse.Reader, like every EventSource, dispatches no event for it.
type tap struct {
	r   io.Reader
	mu  sync.Mutex
	buf []byte
}

func (t *tap) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.mu.Lock()
	if len(t.buf) < 64<<10 {
		t.buf = append(t.buf, p[:n]...)
	}
	t.mu.Unlock()
	return n, err
}

// Get opens url with the client and the extra headers, and returns once the
// response headers arrived. With h2 it fails the test unless the response
// came over HTTP/2. The response is closed when the test ends.
func Get(t *testing.T, client *http.Client, url string, hdr http.Header, h2 bool) *Client {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET %s: %v", url, err)
	}
	if h2 && resp.ProtoMajor != 2 {
		t.Fatalf("GET %s: protocol %s, want HTTP/2", url, resp.Proto)
	}
	c := &Client{T: t, Resp: resp, cancel: cancel, events: make(chan sse.Event, 1<<16),
		Comments: make(chan string, 1<<10), done: make(chan struct{})}
	c.tap = &tap{r: resp.Body}
	c.Reader = sse.NewReader(c.tap)
	c.Reader.OnComment = func(text string) {
		select {
		case c.Comments <- text:
		default:
		}
	}
	go func() {
		defer close(c.done)
		for {
			ev, err := c.Reader.Next()
			if err != nil {
				c.err = err
				return
			}
			c.events <- ev
		}
	}()
	t.Cleanup(c.Close)
	return c
}

// Primed waits for the first block of the stream and returns its id,
// failing the test unless the block is the default priming: a lone id
// field ("id: <cursor>" and a blank line), which sets the client's last
// event id and dispatches nothing.
func (c *Client) Primed() string {
	c.T.Helper()
	var block string
	WaitFor(c.T, "the priming", func() bool {
		c.tap.mu.Lock()
		defer c.tap.mu.Unlock()
		i := strings.Index(string(c.tap.buf), "\n\n")
		if i >= 0 {
			block = string(c.tap.buf[:i+2])
		}
		return i >= 0
	})
	id, ok := strings.CutPrefix(block, "id: ")
	id, ok2 := strings.CutSuffix(id, "\n\n")
	if !ok || !ok2 || id == "" || strings.ContainsAny(id, "\r\n") {
		c.T.Fatalf("the stream opens with %q, want a lone id field", block)
	}
	return id
}

// Close closes the response and waits for its reader.
func (c *Client) Close() {
	c.cancel()
	c.Resp.Body.Close()
	<-c.done
}

// Next returns the next event, failing the test on the end of the stream.
func (c *Client) Next() sse.Event {
	c.T.Helper()
	select {
	case ev := <-c.events:
		return ev
	case <-c.done:
		select {
		case ev := <-c.events:
			return ev
		default:
		}
		c.T.Fatalf("stream ended: %v", c.err)
	case <-time.After(Hang):
		c.T.Fatal("no event")
	}
	return sse.Event{}
}

// End waits for the end of the stream and returns the events before it.
func (c *Client) End() []sse.Event {
	c.T.Helper()
	select {
	case <-c.done:
	case <-time.After(Hang):
		c.T.Fatal("stream did not end")
	}
	var evs []sse.Event
	for {
		select {
		case ev := <-c.events:
			evs = append(evs, ev)
		default:
			if !errors.Is(c.err, io.EOF) {
				c.T.Fatalf("stream ended with %v, want EOF", c.err)
			}
			return evs
		}
	}
}

// WaitFor polls cond until it holds; it fails only on a hang.
func WaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Hang)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// Events lists events as "type:data" separated by spaces.
func Events(evs []sse.Event) string {
	var b strings.Builder
	for i, e := range evs {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s:%s", e.Type, e.Data)
	}
	return b.String()
}

// Done is closed when the stream has ended.
func (c *Client) Done() <-chan struct{} { return c.done }

// Pending returns the number of events read and not yet taken.
func (c *Client) Pending() int { return len(c.events) }

// Buffer is a bytes.Buffer that a server's goroutines (its logger, say)
// write while the test reads it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
