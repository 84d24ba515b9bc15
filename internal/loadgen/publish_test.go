package loadgen

import (
	"bufio"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestAppendQueryEscape(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		if got, want := string(appendQueryEscape(nil, b)), url.QueryEscape(string(b)); got != want {
			t.Fatalf("appendQueryEscape(%q) = %q, want %q", b, got, want)
		}
	}
}

// cannedServer answers each request it reads on each connection with the
// next of responses (raw HTTP), and sends every request it read on reqs.
// A response "" answers nothing and waits for the client to go.
func cannedServer(t *testing.T, responses ...string) (addr string, reqs <-chan *http.Request) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan *http.Request, len(responses)+1)
	next := make(chan string, len(responses))
	for _, r := range responses {
		next <- r
	}
	close(next)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					body, _ := io.ReadAll(req.Body)
					req.Body = io.NopCloser(strings.NewReader(string(body)))
					ch <- req
					resp, ok := <-next
					if !ok {
						return
					}
					if resp == "" {
						io.Copy(io.Discard, c) // until the client closes
						return
					}
					if _, err := io.WriteString(c, resp); err != nil {
						return
					}
					if strings.Contains(resp, "Connection: close") || strings.HasPrefix(resp, "HTTP/1.0") {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String(), ch
}

func testPoster(t *testing.T, mode, addr, token string) *poster {
	t.Helper()
	u, _ := url.Parse("http://" + addr + "/.well-known/mercure")
	p, err := newPoster(mode, u.String(), endpoint{url: u, addr: netip.MustParseAddrPort(addr)}, "https://example.com/a b", token)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPosterRequests(t *testing.T) {
	addr, reqs := cannedServer(t,
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nid-01",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: x\r\n\r\n",
		"HTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
		"HTTP/1.0 200 OK\r\n\r\nuntil the end",
		"HTTP/1.1 401 Unauthorized\r\nContent-Length: 3\r\n\r\nno\n",
	)
	p := testPoster(t, publishMercure, addr, "tok")
	c := p.conn()
	defer c.close()
	data := []byte("sb:run:1:2:3 é&=")
	var conns []net.Conn
	for i := range 6 {
		err := c.post(t.Context(), data)
		if i < 5 && err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if i == 5 && (err == nil || !strings.Contains(err.Error(), "401 Unauthorized")) {
			t.Fatalf("request %d: error %v, want the 401", i, err)
		}
		req := <-reqs
		if req.Method != http.MethodPost || req.URL.Path != "/.well-known/mercure" || req.Host != addr ||
			req.Header.Get("Authorization") != "Bearer tok" || req.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			t.Fatalf("request %d: %s %s host %q headers %v", i, req.Method, req.URL, req.Host, req.Header)
		}
		if err := req.ParseForm(); err != nil || req.PostForm.Get("topic") != "https://example.com/a b" || req.PostForm.Get("data") != string(data) {
			t.Fatalf("request %d: form %v (%v)", i, req.PostForm, err)
		}
		conns = append(conns, c.conn)
	}
	// Keep-alive until the server closes: requests 0-3 share a connection,
	// 4 and 5 each need a new one, which an error status does not close.
	if conns[0] == nil || conns[1] != conns[0] || conns[2] != conns[0] || conns[3] != nil || conns[4] != nil || conns[5] == nil {
		t.Errorf("connections %v: want one kept for the first three, none kept after a close, one kept after a 401", conns)
	}
}

func TestPosterRawBody(t *testing.T) {
	addr, reqs := cannedServer(t, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	c := testPoster(t, publishURL, addr, "").conn()
	defer c.close()
	if err := c.post(t.Context(), []byte("raw & body")); err != nil {
		t.Fatal(err)
	}
	req := <-reqs
	body, _ := io.ReadAll(req.Body)
	if string(body) != "raw & body" || req.Header.Get("Authorization") != "" || !strings.HasPrefix(req.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("body %q, headers %v", body, req.Header)
	}
}

func TestPosterMalformedResponses(t *testing.T) {
	for name, resp := range map[string]string{
		"status":      "HTTP/2 200 OK\r\n\r\n",
		"header":      "HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
		"length":      "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"chunk size":  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"cut body":    "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\nabc",
		"cut head":    "HTTP/1.1 200 OK\r\nConnection: close\r\n",
		"long header": "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("x", maxResponseLine) + "\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			addr, _ := cannedServer(t, resp)
			c := testPoster(t, publishMercure, addr, "").conn()
			defer c.close()
			if err := c.post(t.Context(), []byte("x")); err == nil {
				t.Fatal("no error")
			}
			if c.conn != nil {
				t.Error("the connection was kept after a malformed response")
			}
		})
	}
}

// TestPosterCancel: cancelling the context ends a request the server does
// not answer.
func TestPosterCancel(t *testing.T) {
	addr, reqs := cannedServer(t, "")
	c := testPoster(t, publishMercure, addr, "").conn()
	defer c.close()
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		<-reqs
		cancel()
	}()
	err := c.post(ctx, []byte("x"))
	var ne net.Error
	if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("error %v, want the deadline set by the cancellation", err)
	}
	if err := c.post(ctx, []byte("x")); err == nil {
		t.Fatal("a post with a cancelled context succeeded")
	}
}

func TestNewPosterRefusesLineBreaks(t *testing.T) {
	u, _ := url.Parse("http://127.0.0.1:1/p")
	if _, err := newPoster(publishMercure, u.String(), endpoint{url: u, addr: netip.MustParseAddrPort("127.0.0.1:1")}, "t", "a\r\nX-Evil: 1"); err == nil {
		t.Fatal("a token with CRLF was accepted")
	}
}

// TestPosterPipeline: several requests go out in one write and each gets
// the outcome of its own response; those the server closed the connection
// on without answering fail.
func TestPosterPipeline(t *testing.T) {
	addr, reqs := cannedServer(t,
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na",
		"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nc",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\nd",
	)
	c := testPoster(t, publishURL, addr, "").conn()
	defer c.close()
	var errs []error
	c.postAll(t.Context(), [][]byte{[]byte("0"), []byte("1"), []byte("2")}, func(err error) { errs = append(errs, err) })
	if len(errs) != 3 || errs[0] != nil || errs[1] == nil || !strings.Contains(errs[1].Error(), "401") || errs[2] != nil {
		t.Fatalf("outcomes %v, want ok, 401, ok", errs)
	}
	errs = nil
	c.postAll(t.Context(), [][]byte{[]byte("3"), []byte("4"), []byte("5")}, func(err error) { errs = append(errs, err) })
	if len(errs) != 3 || errs[0] != nil || !errors.Is(errs[1], errClosedPipeline) || !errors.Is(errs[2], errClosedPipeline) {
		t.Fatalf("outcomes %v, want ok, then two unanswered", errs)
	}
	for i := range 4 {
		body, _ := io.ReadAll((<-reqs).Body)
		if string(body) != strconv.Itoa(i) {
			t.Fatalf("request %d carried %q", i, body)
		}
	}
}

// TestPublishWindow: with a window of W, a publisher sends an event only
// while fewer than W are published and not yet delivered, so the server
// never holds more than W undelivered ones, however slowly they are
// delivered; deliveries let the publishing go on to the end.
func TestPublishWindow(t *testing.T) {
	const window, events = 8, 200
	var received, delivered, polls, worst atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if ahead := received.Add(1) - delivered.Load(); ahead > worst.Load() {
			worst.Store(ahead)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	p := testPoster(t, publishURL, srv.Listener.Addr().String(), "")
	res := publish(t.Context(), &env{start: time.Now(), mark: "w:"}, p, publishPlan{
		publishers: 1, events: events, pipeline: 1, window: window, readers: 1,
		// One event is delivered every third look, never more than
		// were received.
		delivered: func() int64 {
			if polls.Add(1)%3 == 0 && delivered.Load() < received.Load() {
				delivered.Add(1)
			}
			return delivered.Load()
		},
	})
	if res.attempted != events || res.errors != 0 {
		t.Fatalf("%d published, %d errors (%v), want %d and none", res.attempted, res.errors, res.firstErr, events)
	}
	if w := worst.Load(); w > window {
		t.Errorf("the server held %d undelivered events, want at most the window, %d", w, window)
	}
}
