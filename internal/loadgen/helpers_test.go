package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// broadcaster is a minimal SSE hub for the tests: GET /events subscribes
// (registered before the response head is flushed, as a hub does), POST
// /publish sends the raw body to every subscriber, and POST
// /.well-known/mercure takes Mercure's form (topic and data) when it
// carries the expected bearer token. A subscriber whose queue is full is
// disconnected, and a write that blocks for 200 ms ends its response.
type broadcaster struct {
	token string // required on Mercure publishes
	queue int    // events queued per subscriber before it is cut off (64)

	mu    sync.Mutex
	subs  map[*bcSub]struct{}
	kick  int // subscribers disconnected for a full queue
	ended int // responses ended by the server: queue full or write timeout

	refused atomic.Int64 // publishes refused for their token
}

type bcSub struct {
	ch   chan []byte
	gone chan struct{}
}

func newBroadcaster(t *testing.T) (*broadcaster, *httptest.Server) {
	t.Helper()
	b := &broadcaster{subs: map[*bcSub]struct{}{}, token: "secret", queue: 64}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /events", b.subscribe)
	mux.HandleFunc("GET /.well-known/mercure", b.subscribe)
	mux.HandleFunc("POST /publish", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		b.send(body)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /.well-known/mercure", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+b.token {
			b.refused.Add(1)
			http.Error(w, "bad token", http.StatusUnauthorized)
			return
		}
		if err := r.ParseForm(); err != nil || r.PostForm.Get("topic") != "bench" {
			http.Error(w, "want topic=bench", http.StatusBadRequest)
			return
		}
		b.send([]byte(r.PostForm.Get("data")))
		fmt.Fprint(w, "urn:uuid:whatever")
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "# TYPE go_goroutines gauge\ngo_goroutines %d\n", runtime.NumGoroutine())
	})
	srv := httptest.NewUnstartedServer(mux)
	// Small send buffers, so that a subscriber that stops reading fills
	// them after a few events.
	srv.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetWriteBuffer(16 << 10)
		}
		return ctx
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return b, srv
}

func (b *broadcaster) send(data []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		select {
		case s.ch <- data:
		default:
			delete(b.subs, s)
			close(s.gone)
			b.kick++
		}
	}
}

func (b *broadcaster) end() {
	b.mu.Lock()
	b.ended++
	b.mu.Unlock()
}

func (b *broadcaster) subscribe(w http.ResponseWriter, r *http.Request) {
	s := &bcSub{ch: make(chan []byte, b.queue), gone: make(chan struct{})}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.subs, s)
		b.mu.Unlock()
	}()
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, ": hello\n\n")
	if rc.Flush() != nil {
		return
	}
	var buf bytes.Buffer
	for {
		select {
		case data := <-s.ch:
			buf.Reset()
			buf.WriteString("data: ")
			buf.Write(data)
			buf.WriteString("\n\n")
			rc.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
			if _, err := w.Write(buf.Bytes()); err != nil {
				b.end()
				return
			}
			if rc.Flush() != nil {
				b.end()
				return
			}
		case <-s.gone:
			b.end()
			return
		case <-r.Context().Done():
			return
		}
	}
}

// runJSON runs Run with args plus --json and decodes the report.
func runJSON(t *testing.T, args ...string) (Report, int, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := Run(t.Context(), append(args, "--json"), &stdout, &stderr)
	var rep Report
	if code == exitOK || code == exitAnomalous {
		if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
			t.Fatalf("decoding the report: %v\n%s\nstderr: %s", err, stdout.String(), stderr.String())
		}
	}
	return rep, code, stderr.String()
}

// withQuery returns base+path with the query q.
func withQuery(base, path string, q url.Values) string {
	return base + path + "?" + q.Encode()
}

func mustContain(t *testing.T, s, sub string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Errorf("%q does not contain %q", s, sub)
	}
}
