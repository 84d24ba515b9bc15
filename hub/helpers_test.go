package hub

import (
	"context"
	"iter"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/fakeclock"
	"github.com/sluicehq/sluice/internal/ssetest"
	"github.com/sluicehq/sluice/sse"
	"github.com/sluicehq/sluice/store"
)

// hang is how long a test waits for something that should happen promptly:
// it only fires when the code under test hangs.
const hang = ssetest.Hang

// protocols runs f over HTTP/1.1 and HTTP/2.
func protocols(t *testing.T, f func(t *testing.T, h2 bool)) { ssetest.Protocols(t, f) }

type env struct {
	t      *testing.T
	st     store.Store
	h      *Hub
	srv    *httptest.Server
	client *http.Client
	h2     bool
	prompt bool // the hub's own memory store: publish waits for the dispatch
}

// hooks change the /events handler of a test env: sub builds the
// subscription from the request (nil: the topic parameters), its cursor
// is the request's (RequestCursor) unless sub sets one, and the callbacks
// and the priming are set on it when sub leaves them unset.
type hooks struct {
	sub          func(r *http.Request) (Subscription, error)
	onConnect    func(*Subscriber)
	onDisconnect func(*Subscriber, DisconnectReason)
	priming      Priming
	policy       Policy
}

func (hk *hooks) handler(h *Hub) http.Handler {
	if hk == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sub := Subscription{Topics: r.URL.Query()["topic"]}
		if hk.sub != nil {
			var err error
			if sub, err = hk.sub(r); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
		} else if len(sub.Topics) == 0 {
			http.Error(w, `missing "topic" query parameter`, http.StatusBadRequest)
			return
		}
		if sub.Cursor == "" {
			sub.Cursor = RequestCursor(r)
		}
		if sub.OnConnect == nil {
			sub.OnConnect = hk.onConnect
		}
		if sub.OnDisconnect == nil {
			sub.OnDisconnect = hk.onDisconnect
		}
		if sub.Priming == PrimingID {
			sub.Priming = hk.priming
		}
		if sub.Policy == PolicyDisconnect {
			sub.Policy = hk.policy
		}
		h.Serve(w, r, sub)
	})
}

// newEnv starts a hub on a memory store (unless cfg.Store is set) behind a
// real HTTP server: /events is the hub.
func newEnv(t *testing.T, cfg Config, h2 bool) *env {
	t.Helper()
	return newEnvHooks(t, cfg, h2, nil)
}

// newEnvHooks is newEnv with /events served through hk (see hooks).
func newEnvHooks(t *testing.T, cfg Config, h2 bool, hk *hooks) *env {
	t.Helper()
	prompt := cfg.Store == nil
	if prompt {
		m := store.NewMemory(store.MemoryConfig{})
		t.Cleanup(func() { m.Close() })
		cfg.Store = m
	}
	if cfg.Logger == nil {
		cfg.Logger = quietLogger(t)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /events", hk.handler(h))
	srv, client := ssetest.Server(t, mux, h2)
	e := &env{t: t, st: cfg.Store, h: h, srv: srv, client: client, h2: h2, prompt: prompt}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), hang)
		defer cancel()
		if err := h.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return e
}

// client is one subscriber's response, read on its own goroutine.
type client struct {
	*ssetest.Client
	t        *testing.T
	resp     *http.Response
	reader   *sse.Reader
	comments chan string
}

// get opens path (with query) on the server with extra headers and returns
// once the response headers arrived.
func (e *env) get(path string, hdr http.Header) *client {
	e.t.Helper()
	c := ssetest.Get(e.t, e.client, e.srv.URL+path, hdr, e.h2)
	return &client{Client: c, t: e.t, resp: c.Resp, reader: c.Reader, comments: c.Comments}
}

func (c *client) primed() string   { c.t.Helper(); return c.Primed() }
func (c *client) next() sse.Event  { c.t.Helper(); return c.Next() }
func (c *client) end() []sse.Event { c.t.Helper(); return c.End() }
func (c *client) close()           { c.Close() }

// subscribe opens /events for topics, resuming from lastID when not empty.
func (e *env) subscribe(lastID string, topics ...string) *client {
	e.t.Helper()
	q := url.Values{"topic": topics}
	var hdr http.Header
	if lastID != "" {
		hdr = http.Header{"Last-Event-Id": {lastID}}
	}
	c := e.get("/events?"+q.Encode(), hdr)
	if c.resp.StatusCode != http.StatusOK {
		e.t.Fatalf("subscribe: status %d", c.resp.StatusCode)
	}
	return c
}

// publish publishes data to topic and returns its id.
// publish publishes data on topic. On the env's own memory store it
// returns once the hub has dispatched the event, so that a stream opened
// afterwards starts after it (its priming event names it) whatever the
// scheduling; with a store given to newEnv (lagging or failing on
// purpose) it returns at once.
func (e *env) publish(topic, data string) string {
	e.t.Helper()
	id, err := e.h.Publish(context.Background(), Message{Topics: []string{topic}, Event: sse.Event{Data: data}})
	if err != nil {
		e.t.Fatal(err)
	}
	e.dispatched(id)
	return id
}

// dispatched waits, on the env's own memory store, until the hub has
// dispatched the event id.
func (e *env) dispatched(id string) {
	e.t.Helper()
	if e.prompt {
		pos, err := e.st.(store.Resolver).Resolve(context.Background(), id)
		if err != nil {
			e.t.Fatal(err)
		}
		waitFor(e.t, "the dispatch of "+id, func() bool {
			at := e.h.Stats().Position
			if at == "" {
				return false
			}
			p, err := e.st.(store.Resolver).Resolve(context.Background(), at)
			return err == nil && p >= pos
		})
	}
}

// waitFor polls cond until it holds; it fails only on a hang.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ssetest.WaitFor(t, what, cond)
}

// checkGoroutines fails when goroutines started by the test outlive it.
func checkGoroutines(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		var now int
		deadline := time.Now().Add(hang)
		for {
			now = runtime.NumGoroutine()
			if now <= before || time.Now().After(deadline) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		if now > before {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Errorf("goroutine leak: %d before, %d after\n%s", before, now, buf[:n])
		}
	})
}

// logWriter collects a server's log lines.
type logWriter = ssetest.Buffer

// fakeClock is a Clock that moves only when told to.
type fakeClock struct{ *fakeclock.Clock }

func newFakeClock() fakeClock { return fakeClock{fakeclock.New()} }

func (c fakeClock) NewTimer(d time.Duration) Timer { return c.Clock.NewTimer(d) }

// armed returns the number of timers waiting to fire.
func (c fakeClock) armed() int { return c.Armed() }

// flakyStore wraps a store and fails the operations it is told to.
type flakyStore struct {
	store.Store
	mu         sync.Mutex
	appendErr  error
	historyErr error
	followErr  chan error // a value ends the current Follow with it
	follows    int
}

func (f *flakyStore) Append(ctx context.Context, e store.Event) (store.Event, error) {
	f.mu.Lock()
	err := f.appendErr
	f.mu.Unlock()
	if err != nil {
		return store.Event{}, err
	}
	return f.Store.Append(ctx, e)
}

func (f *flakyStore) History(ctx context.Context, cursor string, filter store.Filter) iter.Seq2[store.Event, error] {
	f.mu.Lock()
	err := f.historyErr
	f.mu.Unlock()
	if err != nil {
		return func(yield func(store.Event, error) bool) { yield(store.Event{}, err) }
	}
	return f.Store.History(ctx, cursor, filter)
}

func (f *flakyStore) Follow(ctx context.Context, cursor string) iter.Seq2[store.Event, error] {
	f.mu.Lock()
	f.follows++
	f.mu.Unlock()
	return func(yield func(store.Event, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		errc := make(chan error, 1)
		go func() {
			select {
			case err := <-f.followErr:
				errc <- err
				cancel()
			case <-ctx.Done():
			}
		}()
		for ev, err := range f.Store.Follow(ctx, cursor) {
			if !yield(ev, err) || err != nil {
				return
			}
		}
		select {
		case err := <-errc:
			yield(store.Event{}, err)
		default:
		}
	}
}

func (f *flakyStore) followCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.follows
}

func ids(evs []sse.Event) string { return ssetest.Events(evs) }

// quietLogger logs to a buffer shown only when the test fails.
func quietLogger(t *testing.T) *slog.Logger {
	w := &logWriter{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("hub log:\n%s", w.String())
		}
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
