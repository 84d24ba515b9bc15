package hub

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/ssetest"
	"github.com/sluicehq/sluice/sse"
	"github.com/sluicehq/sluice/store"
)

// tcpSub is a subscriber on a plain TCP connection, without any client
// goroutine: the test reads the bytes itself.
type tcpSub struct {
	t   *testing.T
	nc  net.Conn
	br  *bufio.Reader
	hdr http.Header
}

// tcpSubscribe sends GET path over a new TCP connection and reads the
// status line and headers.
func (e *env) tcpSubscribe(path string) *tcpSub {
	e.t.Helper()
	nc, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(hang))
	fmt.Fprintf(nc, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)
	br := bufio.NewReader(nc)
	status, err := br.ReadString('\n')
	if err != nil || status != "HTTP/1.1 200 OK\r\n" {
		e.t.Fatalf("status %q: %v", status, err)
	}
	hdr := http.Header{}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			e.t.Fatal(err)
		}
		if line == "\r\n" {
			break
		}
		k, v, _ := strings.Cut(strings.TrimRight(line, "\r\n"), ": ")
		hdr.Add(k, v)
	}
	if hdr.Get("Transfer-Encoding") != "chunked" {
		e.t.Fatalf("headers %v: not chunked", hdr)
	}
	return &tcpSub{t: e.t, nc: nc, br: br, hdr: hdr}
}

// chunk reads one chunk, checking its framing; "" is the last chunk.
func (r *tcpSub) chunk() string {
	r.t.Helper()
	line, err := r.br.ReadString('\n')
	if err != nil || !strings.HasSuffix(line, "\r\n") {
		r.t.Fatalf("chunk size line %q: %v", line, err)
	}
	n, err := strconv.ParseUint(strings.TrimSuffix(line, "\r\n"), 16, 32)
	if err != nil {
		r.t.Fatalf("chunk size %q: %v", line, err)
	}
	b := make([]byte, n+2)
	if _, err := io.ReadFull(r.br, b); err != nil {
		r.t.Fatal(err)
	}
	if string(b[n:]) != "\r\n" {
		r.t.Fatalf("chunk of %d bytes not followed by CRLF: %q", n, b)
	}
	return string(b[:n])
}

// HTTP/1.1 subscribers are served by one goroutine each, not two: their
// connections are taken over once live.
func TestHijackOneGoroutinePerSubscriber(t *testing.T) {
	const n = 200
	e := newEnv(t, Config{}, false)
	e.publish("a", "seed")
	warm := e.tcpSubscribe("/events?topic=a") // starts the hang-up watcher
	warm.chunk()
	waitFor(t, "1 subscriber", func() bool { return e.h.Subscribers() == 1 })
	runtime.GC()
	before := runtime.NumGoroutine()
	subs := make([]*tcpSub, n)
	for i := range subs {
		subs[i] = e.tcpSubscribe("/events?topic=a")
		subs[i].chunk() // priming: the stream is live
	}
	waitFor(t, "subscribers", func() bool { return e.h.Subscribers() == n+1 })
	// Hijacking happens right after the first write; give the handlers
	// the time to get there (without it, 2n).
	var added int
	deadline := time.Now().Add(hang)
	for {
		added = runtime.NumGoroutine() - before
		if added <= n+n/10 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if added > n+n/10 {
		t.Fatalf("%d idle HTTP/1.1 subscribers added %d goroutines, want about %d", n, added, n)
	}
	t.Logf("%d subscribers: +%d goroutines", n, added)

	// They still get events, each in one valid chunk.
	id := e.publish("a", "hello")
	for _, s := range subs {
		if got, want := s.chunk(), "id: "+id+"\ndata: hello\n\n"; got != want {
			t.Fatalf("chunk %q, want %q", got, want)
		}
	}
}

// Shutdown ends a hijacked stream with what was queued, "retry:" and the
// last chunk, then closes the connection.
func TestHijackShutdown(t *testing.T) {
	e := newEnv(t, Config{Retry: 1500 * time.Millisecond}, false)
	head := e.publish("a", "seed")
	s := e.tcpSubscribe("/events?topic=a")
	for k, want := range map[string]string{"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"} {
		if got := s.hdr.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if got, want := s.chunk(), "id: "+head+"\n\n"; got != want {
		t.Fatalf("priming %q, want %q", got, want)
	}
	waitFor(t, "the hijack", func() bool { return hijackedCount() == 1 })
	last := e.publish("a", "last")
	if got, want := s.chunk(), "id: "+last+"\ndata: last\n\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if err := e.h.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := s.chunk(); got != "retry: 1500\n\n" {
		t.Fatalf("got %q, want the retry", got)
	}
	if got := s.chunk(); got != "" { // "0\r\n\r\n" (no trailers)
		t.Fatalf("got %q, want the last chunk", got)
	}
	if b, err := s.br.ReadByte(); err != io.EOF {
		t.Fatalf("connection not closed after the stream: %q %v", b, err)
	}
}

// hijackedCount returns the connections the hang-up watcher holds.
func hijackedCount() int {
	peers.mu.Lock()
	defer peers.mu.Unlock()
	if peers.w == nil {
		return 0
	}
	return len(peers.w.subs)
}

// Go's HTTP client reads a hijacked stream to its end, across events,
// heartbeats, a Close and its "retry:".
func TestHijackGoClient(t *testing.T) {
	fc := newFakeClock()
	conns := make(chan *Subscriber, 1)
	e := newEnvHooks(t, Config{Clock: fc, Heartbeat: 15 * time.Second, Retry: 2 * time.Second}, false, &hooks{onConnect: func(s *Subscriber) { conns <- s }})
	e.publish("a", "seed")
	c := e.subscribe("", "a")
	s := <-conns
	c.primed()
	waitFor(t, "the hijack", func() bool { return hijackedCount() == 1 })
	var want []string
	for i := range 50 {
		want = append(want, e.publish("a", strings.Repeat("x", i*100)))
	}
	for i := range 50 {
		if ev := c.next(); ev.ID != want[i] || len(ev.Data) != i*100 {
			t.Fatalf("event %d: %+v", i, ev)
		}
	}
	waitArmed(t, fc, 1)
	fc.Advance(15 * time.Second)
	select {
	case <-c.comments:
	case <-time.After(hang):
		t.Fatal("no heartbeat")
	}
	s.Close()
	if evs := c.end(); len(evs) != 0 {
		t.Fatalf("extra events %+v", evs)
	}
	if r, ok := c.reader.Retry(); !ok || r != 2*time.Second {
		t.Fatalf("retry %v %v", r, ok)
	}
}

// A client that goes away is noticed at once by the hang-up watcher, and
// without it at the next heartbeat.
func TestHijackClientGone(t *testing.T) {
	for _, watch := range []bool{true, false} {
		t.Run(map[bool]string{true: "Watched", false: "Heartbeat"}[watch], func(t *testing.T) {
			if !watch {
				peers.mu.Lock()
				peers.off = true
				peers.mu.Unlock()
				t.Cleanup(func() {
					peers.mu.Lock()
					peers.off = false
					peers.mu.Unlock()
				})
			}
			fc := newFakeClock()
			reasons := make(chan DisconnectReason, 1)
			e := newEnvHooks(t, Config{Clock: fc, Heartbeat: 15 * time.Second}, false, &hooks{onDisconnect: func(_ *Subscriber, r DisconnectReason) { reasons <- r }})
			e.publish("a", "seed")
			before := hijacked.Load()
			s := e.tcpSubscribe("/events?topic=a")
			s.chunk()
			waitFor(t, "the hijack", func() bool { return hijacked.Load() == before+1 })
			s.nc.Close()
			if !watch {
				fc.Advance(14 * time.Second)
				waitArmed(t, fc, 1) // not fired
				if n := e.h.Subscribers(); n != 1 {
					t.Fatalf("%d subscribers before the heartbeat", n)
				}
				fc.Advance(time.Second)
			}
			select {
			case r := <-reasons:
				if r != ReasonClient {
					t.Fatalf("reason %v", r)
				}
			case <-time.After(hang):
				t.Fatal("gone client not noticed")
			}
			if n := e.h.Subscribers(); n != 0 {
				t.Fatalf("%d subscribers", n)
			}
		})
	}
}

// HTTP/2 streams are not hijacked and still work end to end.
func TestHijackNotHTTP2(t *testing.T) {
	e := newEnv(t, Config{Retry: time.Second}, true)
	e.publish("a", "seed")
	c := e.subscribe("", "a")
	c.primed()
	id := e.publish("a", "x")
	if ev := c.next(); ev.ID != id {
		t.Fatalf("got %+v", ev)
	}
	if n := hijackedCount(); n != 0 {
		t.Fatalf("%d hijacked connections", n)
	}
	if err := e.h.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.end()
	if _, ok := c.reader.Retry(); !ok {
		t.Fatal("no retry")
	}
}

func TestFrameChunk(t *testing.T) {
	for _, n := range []int{1, 15, 16, 255, 4096, 70000} {
		b := make([]byte, n, n+3)
		for i := range b {
			b[i] = byte('a' + i%26)
		}
		want := strconv.FormatInt(int64(n), 16) + "\r\n" + string(b) + "\r\n"
		if got := string(frameChunk(b)); got != want {
			t.Fatalf("%d bytes: framed wrong", n)
		}
	}
}

// Once a connection is hijacked, ServeHTTP returns and the stream goes on
// on a goroutine of its own: events still flow, the client going away is
// still noticed, and Shutdown still waits for the stream to end.
func TestHijackHandlerReturns(t *testing.T) {
	m := store.NewMemory(store.MemoryConfig{})
	t.Cleanup(func() { m.Close() })
	// In the log before the hub starts: its follower starts after it, so
	// streams start there.
	seed, err := m.Append(context.Background(), store.Event{Topics: []string{"a"}, Data: "seed"})
	if err != nil {
		t.Fatal(err)
	}
	head := seed.ID
	reasons := make(chan DisconnectReason, 1)
	h, err := New(Config{Store: m, Logger: quietLogger(t), Retry: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	returned := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.Serve(w, r, Subscription{Topics: r.URL.Query()["topic"], Cursor: RequestCursor(r),
			OnDisconnect: func(_ *Subscriber, r DisconnectReason) { reasons <- r }})
		returned <- struct{}{}
	}))
	t.Cleanup(srv.Close)
	e := &env{t: t, st: m, h: h, srv: srv}

	for i := range 2 {
		s := e.tcpSubscribe("/?topic=a")
		if got, want := s.chunk(), "id: "+head+"\n\n"; got != want {
			t.Fatalf("priming %q, want %q", got, want)
		}
		select {
		case <-returned:
		case <-time.After(hang):
			t.Fatal("the handler did not return once the stream was live")
		}
		id, err := h.Publish(context.Background(), Message{Topics: []string{"a"}, Event: sse.Event{Data: "after"}})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := s.chunk(), "id: "+id+"\ndata: after\n\n"; got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
		head = id
		if i == 0 { // the client goes away
			s.nc.Close()
			if r := <-reasons; r != ReasonClient {
				t.Fatalf("reason %v", r)
			}
			waitFor(t, "no subscriber", func() bool { return h.Subscribers() == 0 })
			continue
		}
		done := make(chan error, 1)
		go func() { done <- h.Shutdown(context.Background()) }()
		if got := s.chunk(); got != "retry: 1000\n\n" {
			t.Fatalf("got %q, want the retry", got)
		}
		if got := s.chunk(); got != "" {
			t.Fatalf("got %q, want the last chunk", got)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if r := <-reasons; r != ReasonShutdown {
			t.Fatalf("reason %v", r)
		}
	}
}

// A stream the hub took over and ended cleanly leaves the client no
// connection to reuse: two POST streams in a row on one client both work.
// (Without Connection: close the client pools the connection the hub then
// closes, and the second POST, which it does not retry, fails with EOF.)
func TestHijackedStreamNotReused(t *testing.T) {
	st := store.NewMemory(store.MemoryConfig{})
	t.Cleanup(func() { st.Close() })
	h, err := New(Config{Store: st, Logger: quietLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Shutdown(context.Background()) })
	srv, client := ssetest.Server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ch := ReservedTopicPrefix + r.URL.Query().Get("ch")
		h.Serve(w, r, Subscription{Topics: []string{ch}, OnConnect: func(*Subscriber) {
			go func() { // the answer, once the reader is subscribed
				h.Publish(context.Background(), Message{Topics: []string{ch}, Event: sse.Event{Data: "answer"}})
				h.Complete(context.Background(), ch)
			}()
		}})
	}), false)
	for i := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), hang)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"?ch="+strconv.Itoa(i), strings.NewReader("question"))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("POST %d: %v", i, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || !strings.Contains(string(body), "data: answer") || !resp.Close {
			t.Fatalf("POST %d: %q, %v, Connection: close %v", i, body, err, resp.Close)
		}
	}
}

// An idle stream the hub took over keeps nothing of the request: the
// Subscription's OnConnect closure, which may hold the request's context
// (Mercure's does) and with it net/http's per-connection contexts, is
// dropped once it has run, so that it costs no memory per idle subscriber.
func TestHijackDropsOnConnect(t *testing.T) {
	m := store.NewMemory(store.MemoryConfig{})
	t.Cleanup(func() { m.Close() })
	// A first event, so that the stream opens with its id as the priming.
	if _, err := m.Append(context.Background(), store.Event{Topics: []string{"a"}, Data: "seed"}); err != nil {
		t.Fatal(err)
	}
	h, err := New(Config{Store: m, Logger: quietLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Shutdown(context.Background()) })
	released := make(chan struct{})
	returned := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		held := new([1 << 10]byte) // what the hook holds, like a request's context
		runtime.AddCleanup(held, func(ch chan struct{}) { close(ch) }, released)
		h.Serve(w, r, Subscription{Topics: []string{"a"},
			OnConnect: func(*Subscriber) { _ = held[0] }})
		returned <- struct{}{}
	}))
	t.Cleanup(srv.Close)
	e := &env{t: t, st: m, h: h, srv: srv}
	s := e.tcpSubscribe("/")
	s.chunk() // live
	select {
	case <-returned: // detached: the stream goes on on its own goroutine
	case <-time.After(hang):
		t.Fatal("the handler did not return once the stream was live")
	}
	deadline := time.Now().Add(hang)
	for {
		runtime.GC()
		select {
		case <-released:
			return
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("what OnConnect holds is still reachable from the idle stream")
		}
		time.Sleep(time.Millisecond)
	}
}
