package mercure

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/hub"
	"github.com/sluicehq/sluice/store"
)

// rawRequest sends, on a new connection to the env's server, a request
// head for method on the hub path declaring a body of size bytes, then
// body bytes: all of body at once when tick is zero, else one byte per
// tick (repeating body) until the server stops reading. It returns what
// the server sent before it closed the connection, and whether it did
// close it before the hang guard (a reset after the response counts as
// closed).
func (e *env) rawRequest(method string, hdr http.Header, size int, body string, tick time.Duration) (string, bool) {
	e.t.Helper()
	nc, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		e.t.Fatal(err)
	}
	defer nc.Close()
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n",
		method, HubPath, e.srv.Listener.Addr(), size)
	for k, vs := range hdr {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	b.WriteString("\r\n")
	if tick == 0 {
		b.WriteString(body)
	}
	if _, err := io.WriteString(nc, b.String()); err != nil {
		e.t.Fatal(err)
	}
	stop := make(chan struct{})
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		if tick == 0 || body == "" {
			return
		}
		t := time.NewTicker(tick)
		defer t.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-t.C:
				if _, err := nc.Write([]byte{body[i%len(body)]}); err != nil {
					return
				}
			}
		}
	}()
	_ = nc.SetReadDeadline(time.Now().Add(hang)) // the hang guard
	got, err := io.ReadAll(nc)
	close(stop)
	<-wrote
	return string(got), err == nil || !errors.Is(err, os.ErrDeadlineExceeded)
}

// trickle is a request body that yields one byte per tick until its
// context ends.
type trickle struct {
	ctx   context.Context
	every time.Duration
}

func (tr *trickle) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	select {
	case <-tr.ctx.Done():
		return 0, tr.ctx.Err()
	case <-time.After(tr.every):
	}
	p[0] = 'x'
	return 1, nil
}

// TestSlowBodyCutOff: a client that sends its body more slowly than
// ReadTimeout allows is answered 408 and its connection closed, whatever
// the request (QUERY with or without a token, POST), while honest
// subscribers on the same hub, a QUERY one included, keep receiving
// events. Before the fix a body at one byte per tick held its connection
// open for as long as the client liked.
func TestSlowBodyCutOff(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.ReadTimeout = 200 * time.Millisecond })
	get := e.subscribe("topic=a", nil)
	qreq, _ := http.NewRequest("QUERY", e.srv.URL+HubPath, strings.NewReader("topic=a"))
	qreq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	ctx, cancel := context.WithCancel(context.Background())
	query, resp := e.openRequest(qreq.WithContext(ctx), cancel)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("honest QUERY: %d", resp.StatusCode)
	}

	sub := bearer(classicToken(t, e.subKey, nil, []string{"*"}))
	pub := bearer(classicToken(t, e.pubKey, []string{"*"}, nil))
	for _, tt := range []struct {
		name   string
		method string
		hdr    http.Header
	}{
		{"anonymous QUERY", "QUERY", nil},
		{"QUERY with a token", "QUERY", sub},
		{"POST", http.MethodPost, pub},
		{"GET with a body", http.MethodGet, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, closed := e.rawRequest(tt.method, tt.hdr, 1000, "topic=a&", 20*time.Millisecond)
			if !closed {
				t.Fatalf("the connection of a client sending its body at one byte per 20 ms was still open after %v (read %q)", hang, got)
			}
			if got != "" && !strings.HasPrefix(got, "HTTP/1.1 408 ") {
				t.Fatalf("answer %q, want 408 (or a reset)", got)
			}
		})
	}

	// Over HTTP/2 too: the slow stream gets 408.
	h2 := httptest.NewUnstartedServer(e.h)
	h2.EnableHTTP2 = true
	h2.StartTLS()
	defer h2.Close()
	t.Run("HTTP/2 QUERY", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), hang)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "QUERY", h2.URL+HubPath, &trickle{ctx: ctx, every: 20 * time.Millisecond})
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := h2.Client().Do(req)
		if err != nil {
			t.Fatalf("slow HTTP/2 body: %v (not answered)", err)
		}
		defer resp.Body.Close()
		if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusRequestTimeout {
			t.Fatalf("slow HTTP/2 body: %s %d, want HTTP/2 408", resp.Proto, resp.StatusCode)
		}
	})

	// Honest subscribers are served on: the QUERY one past its own
	// ReadTimeout (its body deadline was lifted once the body was read).
	for range 2 {
		id := e.mustPublish(form("topic", "a", "data", "still here"))
		for name, c := range map[string]*client{"GET": get, "QUERY": query} {
			if ev := c.next(); ev.ID != id {
				t.Fatalf("%s subscriber got %+v, want %s", name, ev, id)
			}
		}
	}
}

// TestQueryStreamOutlivesReadTimeout: the body deadline of a QUERY
// subscription is lifted once its body is read, so the stream is not cut
// when ReadTimeout passes, neither on a connection net/http keeps
// (heartbeats off) nor on one the engine takes over (heartbeats on: a
// deadline left on a hijacked connection would make the heartbeat's peer
// check see the client gone). Time passing is observed through heartbeats,
// or through a slow body, started after the stream, being cut off.
func TestQueryStreamOutlivesReadTimeout(t *testing.T) {
	const timeout = 50 * time.Millisecond
	for _, tt := range []struct {
		name      string
		heartbeat time.Duration
	}{
		{"heartbeats on (hijacked)", 5 * time.Millisecond},
		{"heartbeats off", -1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnvEngine(t, store.NewMemory(store.MemoryConfig{}), func(ec *hub.Config) { ec.Heartbeat = tt.heartbeat },
				func(c *Config) { c.ReadTimeout = timeout })
			openQuery := func() *client {
				req, _ := http.NewRequest("QUERY", e.srv.URL+HubPath, strings.NewReader("topic=a"))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				ctx, cancel := context.WithCancel(context.Background())
				c, resp := e.openRequest(req.WithContext(ctx), cancel)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("QUERY: %d", resp.StatusCode)
				}
				return c
			}
			first := openQuery()
			start := time.Now()
			if tt.heartbeat > 0 {
				// More heartbeats than fit in the timeout.
				for n := 0; n < 4*int(timeout/tt.heartbeat); n++ {
					select {
					case <-first.comments:
					case <-first.done:
						t.Fatalf("stream ended after %d heartbeats (%v): %v", n, time.Since(start), first.err)
					case <-time.After(hang):
						t.Fatal("no heartbeat")
					}
				}
			} else {
				// A slow body started after the first stream is cut after
				// its own timeout: by then the first one's has passed.
				if _, closed := e.rawRequest("QUERY", nil, 1000, "topic=a&", 5*time.Millisecond); !closed {
					t.Fatal("slow body not cut off")
				}
			}
			id := e.mustPublish(form("topic", "a", "data", "after the timeout"))
			if ev := first.next(); ev.ID != id {
				t.Fatalf("got %+v, want %s", ev, id)
			}
		})
	}
}

// TestUnauthorizedBodyNotRead: a request that cannot be authorized is
// refused with 401 from its headers alone, without waiting for its body,
// and its connection is closed (net/http would otherwise read the rest of
// the body before answering). The body is never sent here, and
// ReadTimeout is far beyond the hang guard, so only an answer that does
// not read the body passes.
func TestUnauthorizedBodyNotRead(t *testing.T) {
	badToken := bearer(strings.Repeat("x", 60))
	for _, tt := range []struct {
		name   string
		mod    func(*Config)
		method string
		hdr    http.Header
	}{
		{"QUERY without a token", func(c *Config) { c.Anonymous = false }, "QUERY", nil},
		{"QUERY with an invalid token", func(c *Config) { c.Anonymous = false }, "QUERY", badToken},
		{"QUERY with an invalid token, anonymous hub", nil, "QUERY", badToken},
		{"QUERY without a subscriber key", func(c *Config) { c.Anonymous, c.SubscriberKey = false, nil }, "QUERY", nil},
		{"POST without a token", nil, http.MethodPost, nil},
		{"POST with an invalid token", nil, http.MethodPost, badToken},
		{"PUT", nil, http.MethodPut, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) {
				c.ReadTimeout = time.Hour
				if tt.mod != nil {
					tt.mod(c)
				}
			})
			got, closed := e.rawRequest(tt.method, tt.hdr, 1000, "", 0)
			if !closed {
				t.Fatalf("no answer without the body within %v (read %q)", hang, got)
			}
			want := "HTTP/1.1 401 "
			if tt.method == http.MethodPut {
				want = "HTTP/1.1 405 "
			}
			if !strings.HasPrefix(got, want) {
				t.Fatalf("answer %q, want %s", got, want)
			}
		})
	}
}

// TestPublishKeepsConnection: publishes on one keep-alive connection reuse
// it, whether the handler has net/http's request or a middleware's copy
// (whose body net/http does not see replaced), with the usual form, one
// url.ParseQuery reads, and a chunked body; each is stored as sent.
func TestPublishKeepsConnection(t *testing.T) {
	e := newEnv(t, nil)
	tok := classicToken(t, e.pubKey, []string{"*"}, nil)
	middleware := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), middlewareKey{}, 1)))
	}))
	defer middleware.Close()
	for si, srv := range []*httptest.Server{e.srv, middleware} {
		client := srv.Client()
		for i, tt := range []struct {
			body    string
			chunked bool
			data    string
		}{
			{"topic=keep&data=a%3Ab", false, "a:b"},
			{"topic=keep&data=c&extra=1", false, "c"},
			{"topic=keep&data=d+e", true, "d e"},
			{"topic=keep&data=f", false, "f"},
		} {
			var body io.Reader = strings.NewReader(fmt.Sprintf("%s&id=keep-%d-%d", tt.body, si, i))
			if tt.chunked {
				body = io.MultiReader(body) // no length: sent chunked
			}
			req, err := http.NewRequest(http.MethodPost, srv.URL+HubPath, body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Authorization", "Bearer "+tok)
			reused := false
			req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
				GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused },
			}))
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			id, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s, publish %d: %d %s", srv.URL, i, resp.StatusCode, id)
			}
			if i > 0 && !reused {
				t.Errorf("%s, publish %d (%q): a new connection, want the previous one reused", srv.URL, i, tt.body)
			}
			if want := fmt.Sprintf("keep-%d-%d", si, i); string(id) != want {
				t.Fatalf("%s, publish %d: id %q, want %q", srv.URL, i, id, want)
			}
			ev, ok, err := e.st.Lookup(t.Context(), string(id))
			if !ok || ev.Data != tt.data {
				t.Errorf("%s, publish %d: stored %+v (found %v, %v), want data %q", srv.URL, i, ev, ok, err, tt.data)
			}
		}
	}
}

// middlewareKey is the context key of TestPublishKeepsConnection's middleware.
type middlewareKey struct{}
