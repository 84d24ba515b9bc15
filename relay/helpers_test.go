package relay_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/hub"
	"github.com/sluicehq/sluice/internal/fakeclock"
	"github.com/sluicehq/sluice/internal/ssetest"
	"github.com/sluicehq/sluice/relay"
	"github.com/sluicehq/sluice/sse"
	"github.com/sluicehq/sluice/store"
)

// fakeLLM is an OpenAI-like streaming API on loopback: a POST answers
// with tokens events "data: <i>" and a final "data: [DONE]". Each token
// waits for a value on gate, when gate is set, so that a test decides
// how far the answer has got.
type fakeLLM struct {
	srv     *httptest.Server
	tokens  int
	gate    chan struct{}
	calls   atomic.Int64
	aborted atomic.Int64 // answers whose request ended before their end

	status      int    // answer with this status instead, when set
	contentType string // and this content type, when set
	failAt      int    // break the connection after this many tokens, when > 0
	eventType   string // the tokens' type
}

func newFakeLLM(t testing.TB, tokens int, gated bool) *fakeLLM {
	f := &fakeLLM{tokens: tokens}
	if gated {
		f.gate = make(chan struct{}, tokens+1)
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(func() {
		if f.gate != nil {
			for range tokens + 1 { // unblock the answers still running
				select {
				case f.gate <- struct{}{}:
				default:
				}
			}
		}
		f.srv.Close()
	})
	return f
}

func (f *fakeLLM) serve(w http.ResponseWriter, r *http.Request) {
	f.calls.Add(1)
	if r.Method != http.MethodPost || r.Header.Get("Authorization") != "Bearer upstream-key" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	if b, _ := io.ReadAll(r.Body); string(b) != `{"prompt":"hi"}` {
		http.Error(w, "bad body "+string(b), http.StatusBadRequest)
		return
	}
	if f.status != 0 {
		http.Error(w, "rate limited", f.status)
		return
	}
	ct := "text/event-stream"
	if f.contentType != "" {
		ct = f.contentType
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	for i := range f.tokens {
		if f.gate != nil {
			select {
			case <-f.gate:
			case <-r.Context().Done():
				f.aborted.Add(1)
				return
			}
		}
		if f.failAt > 0 && i == f.failAt {
			panic(http.ErrAbortHandler) // the connection breaks mid-answer
		}
		ev := sse.Event{Type: f.eventType, Data: strconv.Itoa(i)}
		b, _ := sse.AppendEvent(nil, ev)
		if _, err := w.Write(b); err != nil {
			f.aborted.Add(1)
			return
		}
		rc.Flush()
	}
	w.Write([]byte("data: [DONE]\n\n"))
}

// release lets n more tokens go.
func (f *fakeLLM) release(n int) {
	for range n {
		f.gate <- struct{}{}
	}
}

// node is one instance: a hub on a store and a Relayer, behind a real
// HTTP server. POST /answers starts a relay to the LLM and serves it (its
// id in Answer-Id); GET /answers/{id} resumes it.
type node struct {
	t      testing.TB
	h      *hub.Hub
	rl     *relay.Relayer
	srv    *httptest.Server
	client *http.Client
	llm    *fakeLLM

	mu     sync.Mutex
	relays map[string]*relay.Relay
}

func newNode(t *testing.T, st store.Store, llm *fakeLLM, opts *relay.Options) *node {
	t.Helper()
	n := startNode(t, st, llm, opts)
	n.srv, n.client = ssetest.Server(t, n.routes(), false)
	return n
}

// newBenchNode is newNode for a benchmark.
func newBenchNode(b *testing.B, st store.Store, llm *fakeLLM) *node {
	b.Helper()
	n := startNode(b, st, llm, nil)
	n.srv = httptest.NewServer(n.routes())
	n.client = n.srv.Client()
	b.Cleanup(n.srv.Close)
	return n
}

// startNode starts a node's hub and relayer, shut down when t ends.
func startNode(t testing.TB, st store.Store, llm *fakeLLM, opts *relay.Options) *node {
	h, err := hub.New(hub.Config{Store: st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	rl, err := relay.New(h, opts)
	if err != nil {
		t.Fatal(err)
	}
	n := &node{t: t, h: h, rl: rl, llm: llm, relays: map[string]*relay.Relay{}}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), ssetest.Hang)
		defer cancel()
		if err := rl.Close(ctx); err != nil {
			t.Errorf("relayer close: %v", err)
		}
		if err := h.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return n
}

// routes are the node's endpoints: POST /answers, GET /answers/{id}.
func (n *node) routes() http.Handler {
	rl, llm := n.rl, n.llm
	mux := http.NewServeMux()
	mux.HandleFunc("POST /answers", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			return
		}
		up, _ := http.NewRequest(http.MethodPost, llm.srv.URL+"/v1/chat/completions", bytes.NewReader(body))
		up.Header.Set("Authorization", "Bearer upstream-key")
		rel, err := rl.Start(context.WithoutCancel(r.Context()), up)
		if errors.Is(err, relay.ErrTooManyRelays) {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		n.mu.Lock()
		n.relays[rel.ID()] = rel
		n.mu.Unlock()
		w.Header().Set("Answer-Id", rel.ID())
		rl.Serve(w, r, rel.ID())
	})
	mux.HandleFunc("GET /answers/{id}", func(w http.ResponseWriter, r *http.Request) {
		rl.Serve(w, r, r.PathValue("id"))
	})
	return mux
}

func (n *node) relay(id string) *relay.Relay {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.relays[id]
}

// answer is a client's view of one answer: what it read, and from where
// to resume.
type answer struct {
	id     string
	lastID string
	evs    []sse.Event
	ended  bool // the response ended (EOF) or was 204
}

// ask sends the question (POST /answers) to n and returns the answer
// and its response.
func (n *node) ask(a *answer) *http.Response {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ssetest.Hang) // a hang guard
	n.t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, n.srv.URL+"/answers", bytes.NewReader([]byte(`{"prompt":"hi"}`)))
	resp, err := n.client.Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	a.id = resp.Header.Get("Answer-Id")
	return resp
}

// resume opens GET /answers/{id} on n from the answer's last event id.
func (n *node) resume(a *answer) *http.Response {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ssetest.Hang)
	n.t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, n.srv.URL+"/answers/"+a.id, nil)
	if a.lastID != "" {
		req.Header.Set("Last-Event-ID", a.lastID)
	}
	resp, err := n.client.Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	return resp
}

// read reads up to max events (max < 0: to the end) of resp into a, then
// closes resp: the client drops.
func (a *answer) read(t *testing.T, resp *http.Response, max int) {
	t.Helper()
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNoContent {
		a.ended = true
		return
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	r := sse.NewReader(resp.Body)
	r.Reset(resp.Body, a.lastID)
	for n := 0; max < 0 || n < max; n++ {
		ev, err := r.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("reading: %v", err)
			}
			a.ended = true
			break
		}
		a.evs = append(a.evs, ev)
	}
	a.lastID = r.LastEventID()
}

// complete checks that the answer is the n tokens in order, each once,
// then [DONE], and nothing else.
func (a *answer) complete(t *testing.T, n int) {
	t.Helper()
	if len(a.evs) != n+1 {
		t.Fatalf("%d events, want %d: %s", len(a.evs), n+1, short(a.evs))
	}
	for i, ev := range a.evs[:n] {
		if ev.Data != strconv.Itoa(i) || ev.Type != "message" {
			t.Fatalf("event %d is %q:%q", i, ev.Type, ev.Data)
		}
	}
	if last := a.evs[n]; last.Data != "[DONE]" {
		t.Fatalf("last event %+v", last)
	}
}

func short(evs []sse.Event) string {
	if len(evs) > 12 {
		return ssetest.Events(evs[:6]) + " … " + ssetest.Events(evs[len(evs)-6:])
	}
	return ssetest.Events(evs)
}

// waitFor waits for cond, failing only on a hang.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ssetest.WaitFor(t, what, cond)
}

// fakeClock is a hub.Clock that moves only when told to.
type fakeClock struct{ *fakeclock.Clock }

func newFakeClock() fakeClock { return fakeClock{fakeclock.New()} }

func (c fakeClock) NewTimer(d time.Duration) hub.Timer { return c.Clock.NewTimer(d) }

// armed returns the number of timers waiting to fire.
func (c fakeClock) armed() int { return c.Armed() }

// publishOther publishes the i-th event of other traffic, on a public
// topic, through pub, and waits until every hub of hubs has dispatched it:
// a hub whose follower falls behind a small log disconnects its
// subscribers.
func publishOther(t *testing.T, pub *hub.Hub, i int, hubs ...*hub.Hub) {
	t.Helper()
	id, err := pub.Publish(context.Background(), hub.Message{Topics: []string{"https://example.com/other"}, Event: sse.Event{Data: fmt.Sprint(i)}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the hubs to dispatch "+id, func() bool {
		for _, h := range hubs {
			if h.Stats().Position != id {
				return false
			}
		}
		return true
	})
}
