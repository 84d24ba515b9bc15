package hub

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/sse"
	"github.com/sluicehq/sluice/store"
)

// hang is how long a test waits for something that should happen promptly:
// it only fires when the code under test hangs.
const hang = 15 * time.Second

// protocols runs f over HTTP/1.1 and HTTP/2.
func protocols(t *testing.T, f func(t *testing.T, h2 bool)) {
	t.Run("HTTP1", func(t *testing.T) { f(t, false) })
	t.Run("HTTP2", func(t *testing.T) { f(t, true) })
}

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
// real HTTP server: /events is the hub, /stream/{id} serves streams.
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
	mux.HandleFunc("GET /stream/{id}", func(w http.ResponseWriter, r *http.Request) {
		h.ServeStream(w, r, r.PathValue("id"))
	})
	srv := httptest.NewUnstartedServer(mux)
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
	e := &env{t: t, st: cfg.Store, h: h, srv: srv, client: client, h2: h2, prompt: prompt}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), hang)
		defer cancel()
		if err := h.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		client.CloseIdleConnections()
		srv.Close()
	})
	return e
}

// client is one subscriber's response, read on its own goroutine.
type client struct {
	t        *testing.T
	resp     *http.Response
	cancel   context.CancelFunc
	events   chan sse.Event
	comments chan string
	done     chan struct{}
	err      error // valid after done
	reader   *sse.Reader
	tap      *tap
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

// primed waits for the first block of the stream and returns its id,
// failing the test unless the block is the default priming: a lone id
// field ("id: <cursor>" and a blank line), which sets the client's last
// event id and dispatches nothing.
func (c *client) primed() string {
	c.t.Helper()
	var block string
	waitFor(c.t, "the priming", func() bool {
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
		c.t.Fatalf("the stream opens with %q, want a lone id field", block)
	}
	return id
}

// get opens path (with query) on the server with extra headers and returns
// once the response headers arrived.
func (e *env) get(path string, hdr http.Header) *client {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := e.client.Do(req)
	if err != nil {
		cancel()
		e.t.Fatalf("GET %s: %v", path, err)
	}
	if e.h2 && resp.ProtoMajor != 2 {
		e.t.Fatalf("GET %s: protocol %s, want HTTP/2", path, resp.Proto)
	}
	c := &client{t: e.t, resp: resp, cancel: cancel, events: make(chan sse.Event, 1<<16),
		comments: make(chan string, 1<<10), done: make(chan struct{})}
	c.tap = &tap{r: resp.Body}
	c.reader = sse.NewReader(c.tap)
	c.reader.OnComment = func(text string) {
		select {
		case c.comments <- text:
		default:
		}
	}
	go func() {
		defer close(c.done)
		for {
			ev, err := c.reader.Next()
			if err != nil {
				c.err = err
				return
			}
			c.events <- ev
		}
	}()
	e.t.Cleanup(c.close)
	return c
}

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

func (c *client) close() {
	c.cancel()
	c.resp.Body.Close()
	<-c.done
}

// next returns the next event, failing the test on the end of the stream.
func (c *client) next() sse.Event {
	c.t.Helper()
	select {
	case ev := <-c.events:
		return ev
	case <-c.done:
		select {
		case ev := <-c.events:
			return ev
		default:
		}
		c.t.Fatalf("stream ended: %v", c.err)
	case <-time.After(hang):
		c.t.Fatal("no event")
	}
	return sse.Event{}
}

// end waits for the end of the stream and returns the events before it.
func (c *client) end() []sse.Event {
	c.t.Helper()
	select {
	case <-c.done:
	case <-time.After(hang):
		c.t.Fatal("stream did not end")
	}
	var evs []sse.Event
	for {
		select {
		case ev := <-c.events:
			evs = append(evs, ev)
		default:
			if !errors.Is(c.err, io.EOF) {
				c.t.Fatalf("stream ended with %v, want EOF", c.err)
			}
			return evs
		}
	}
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
	return id
}

// waitFor polls cond until it holds; it fails only on a hang.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hang)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
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

type logWriter struct {
	mu sync.Mutex
	sb strings.Builder
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.sb.Write(p)
}

func (w *logWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.sb.String()
}

// fakeClock is a Clock that moves only when told to.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers map[*fakeTimer]struct{}
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), timers: map[*fakeTimer]struct{}{}}
}

type fakeTimer struct {
	c    *fakeClock
	ch   chan time.Time
	when time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	t := &fakeTimer{c: c, ch: make(chan time.Time, 1)}
	t.Reset(d)
	return t
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Reset(d time.Duration) {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	t.when = t.c.now.Add(d)
	t.c.timers[t] = struct{}{}
}

func (t *fakeTimer) Stop() {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	delete(t.c.timers, t)
}

// armed returns the number of timers waiting to fire.
func (c *fakeClock) armed() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// Advance moves the clock and fires the timers due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for t := range c.timers {
		if !t.when.After(c.now) {
			delete(c.timers, t)
			select {
			case t.ch <- c.now:
			default:
			}
		}
	}
}

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

func ids(evs []sse.Event) string {
	var b strings.Builder
	for i, e := range evs {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s:%s", e.Type, e.Data)
	}
	return b.String()
}

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
