package session_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/hub"
	"github.com/sluicehq/sluice/internal/sharedlog"
	"github.com/sluicehq/sluice/internal/ssetest"
	"github.com/sluicehq/sluice/session"
	"github.com/sluicehq/sluice/sse"
	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/storetest"
)

// clock is a settable clock for the TTLs.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type env struct {
	t      *testing.T
	h      *hub.Hub
	m      *session.Manager
	srv    *httptest.Server
	client *http.Client
	h2     bool
}

// newEnv serves /events with sessions: the subject is the X-User header,
// the topics the query's, and ?all adds a pattern matching everything.
func newEnv(t *testing.T, st store.Store, h2 bool, cfg *session.Config) *env {
	t.Helper()
	if st == nil {
		m := store.NewMemory(store.MemoryConfig{})
		t.Cleanup(func() { m.Close() })
		st = m
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	h, err := hub.New(hub.Config{Store: st, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if cfg == nil {
		cfg = &session.Config{}
	}
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	m, err := session.New(h, cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, r *http.Request) {
		sub := hub.Subscription{Subject: r.Header.Get("X-User"), Topics: r.URL.Query()["topic"], Cursor: hub.RequestCursor(r)}
		if r.URL.Query().Has("all") {
			sub.Match = func([]string) bool { return true }
		}
		m.Serve(w, r, sub)
	})
	srv, client := ssetest.Server(t, mux, h2)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), ssetest.Hang)
		defer cancel()
		if err := h.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return &env{t: t, h: h, m: m, srv: srv, client: client, h2: h2}
}

func (e *env) get(path string, hdr http.Header) *ssetest.Client {
	e.t.Helper()
	return ssetest.Get(e.t, e.client, e.srv.URL+path, hdr, e.h2)
}

func (e *env) publish(topic, data string) string {
	e.t.Helper()
	id, err := e.h.Publish(context.Background(), hub.Message{Topics: []string{topic}, Event: sse.Event{Data: data}})
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

// dispatched waits until the hub has dispatched the event id: with a
// small retention, a hub whose follower falls behind it disconnects its
// subscribers and follows again from the head.
func (e *env) dispatched(st store.Store, id string) {
	e.t.Helper()
	rs := st.(store.Resolver)
	pos, err := rs.Resolve(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	ssetest.WaitFor(e.t, "the dispatch of "+id, func() bool {
		at := e.h.Stats().Position
		p, err := rs.Resolve(context.Background(), at)
		return at != "" && err == nil && p >= pos
	})
}

func (e *env) conns(id string) int {
	info, ok := e.m.Lookup(id)
	if !ok {
		return -1
	}
	return info.Connections
}

func TestSessions(t *testing.T) {
	ssetest.Protocols(t, func(t *testing.T, h2 bool) {
		fc := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		e := newEnv(t, nil, h2, &session.Config{TTL: time.Minute, Now: fc.Now})
		ctx := context.Background()
		send := func(data string, ids ...string) (string, error) {
			return e.m.Send(ctx, ids, sse.Event{Data: data})
		}
		e.publish("a", "seed")
		alice := e.get("/events?topic=a", http.Header{"X-User": {"alice"}})
		aliceID := alice.Resp.Header.Get(session.DefaultHeader)
		if len(aliceID) < 32 {
			t.Fatalf("session id %q", aliceID)
		}
		var cookie *http.Cookie
		for _, ck := range alice.Resp.Cookies() {
			if ck.Name == session.DefaultCookie {
				cookie = ck
			}
		}
		if cookie == nil || cookie.Value != aliceID || !cookie.HttpOnly {
			t.Fatalf("cookie %+v", cookie)
		}
		bob := e.get("/events", http.Header{"X-User": {"bob"}}) // a session-only subscription
		bobID := bob.Resp.Header.Get(session.DefaultHeader)
		spy := e.get("/events?all", http.Header{"X-User": {"eve"}}) // patterns never see sessions
		spy.Primed()
		alice.Primed()
		bob.Primed()

		if _, err := send("hi alice", aliceID); err != nil {
			t.Fatal(err)
		}
		if _, err := send("hi both", aliceID, bobID); err != nil {
			t.Fatal(err)
		}
		if ev := alice.Next(); ev.Data != "hi alice" {
			t.Fatalf("alice got %+v", ev)
		}
		if ev := alice.Next(); ev.Data != "hi both" {
			t.Fatalf("alice got %+v", ev)
		}
		if ev := bob.Next(); ev.Data != "hi both" {
			t.Fatalf("bob got %+v", ev)
		}

		// Alice goes away; sends are kept for her.
		alice.Close()
		ssetest.WaitFor(t, "alice's session to be idle", func() bool { return e.conns(aliceID) == 0 })
		fc.Advance(30 * time.Second)
		if _, err := send("while away", aliceID); err != nil {
			t.Fatal(err)
		}
		// She comes back with her cookie and no Last-Event-ID.
		back := e.get("/events?topic=a", http.Header{"X-User": {"alice"}, "Cookie": {cookie.String()}})
		if got := back.Resp.Header.Get(session.DefaultHeader); got != aliceID {
			t.Fatalf("resumed session %q, want %q", got, aliceID)
		}
		back.Primed()
		if ev := back.Next(); ev.Data != "while away" {
			t.Fatalf("got %+v", ev)
		}
		if info, _ := e.m.Lookup(aliceID); info.Reconnections != 1 || info.Connections != 1 || info.Subject != "alice" {
			t.Fatalf("alice's session: %+v", info)
		}

		// Bob cannot claim Alice's session: he gets his own.
		thief := e.get("/events", http.Header{"X-User": {"bob"}, session.DefaultHeader: {aliceID}})
		if got := thief.Resp.Header.Get(session.DefaultHeader); got == aliceID || got == "" {
			t.Fatalf("bob got session %q", got)
		}
		last, err := send("only alice", aliceID)
		if err != nil {
			t.Fatal(err)
		}
		if ev := back.Next(); ev.ID != last {
			t.Fatalf("got %+v", ev)
		}
		marker := e.publish("a", "marker")
		if ev := spy.Next(); ev.ID != marker {
			t.Fatalf("pattern subscriber got %+v, want only the topic event", ev)
		}
		thief.Close()

		// Partial sends report the unknown sessions.
		if id, err := send("partial", bobID, "no-such-session"); !errors.Is(err, session.ErrUnknown) || id == "" {
			t.Fatalf("partial send: %q, %v", id, err)
		}

		// TTL: once everyone is away for a minute, the sessions are gone.
		back.Close()
		bob.Close()
		spy.Close()
		ssetest.WaitFor(t, "idle sessions", func() bool {
			return e.h.Subscribers() == 0 && e.conns(aliceID) == 0 && e.conns(bobID) == 0
		})
		fc.Advance(59 * time.Second)
		if _, err := send("still there", aliceID); err != nil {
			t.Fatalf("before the TTL: %v", err)
		}
		fc.Advance(15 * time.Second)
		if n := len(e.m.List()); n != 0 {
			t.Fatalf("%d sessions left after the TTL", n)
		}
		if _, err := send("gone", aliceID); !errors.Is(err, session.ErrUnknown) {
			t.Fatalf("after the TTL: %v", err)
		}
	})
}

// The manager lists sessions, closes one (its connections end with a
// retry and come back with a new session), and announces the id to
// browser code as a first event.
func TestManager(t *testing.T) {
	e := newEnv(t, nil, false, &session.Config{AnnounceType: "session", NoCookie: true})
	e.publish("a", "seed")
	c := e.get("/events?topic=a", http.Header{"X-User": {"alice"}})
	id := c.Resp.Header.Get(session.DefaultHeader)
	if len(c.Resp.Cookies()) != 0 {
		t.Fatalf("cookies with NoCookie: %v", c.Resp.Cookies())
	}
	c.Primed()
	if ev := c.Next(); ev.Type != "session" || ev.Data != id {
		t.Fatalf("first event %+v, want the session id %s", ev, id)
	}
	other := e.get("/events?topic=a", http.Header{"X-User": {"bob"}})
	list := e.m.List()
	if len(list) != 2 || list[0].ID != id || list[0].Connections != 1 || list[1].Subject != "bob" {
		t.Fatalf("list %+v", list)
	}
	if live, err := e.m.Close(context.Background(), id); !live || err != nil {
		t.Fatalf("close: live %v, %v", live, err)
	}
	c.End() // closed by the hub, with a retry
	if r, ok := c.Reader.Retry(); !ok || r <= 0 {
		t.Fatalf("retry %v %v", r, ok)
	}
	if live, err := e.m.Close(context.Background(), id); live || err != nil {
		t.Fatalf("closed twice: live %v, %v", live, err)
	}
	if _, err := e.m.Send(context.Background(), []string{id}, sse.Event{Data: "x"}); !errors.Is(err, session.ErrUnknown) {
		t.Fatalf("send to a closed session: %v", err)
	}
	again := e.get("/events?topic=a", http.Header{"X-User": {"alice"}, session.DefaultHeader: {id}})
	if got := again.Resp.Header.Get(session.DefaultHeader); got == id || got == "" {
		t.Fatalf("a closed session came back: %q", got)
	}
	other.Close()
	if _, err := session.New(e.h, &session.Config{AnnounceType: "sluice-x"}); !errors.Is(err, hub.ErrReservedType) {
		t.Fatalf("reserved announce type: %v", err)
	}
}

// A client that keeps asking for new sessions cannot grow the registry
// beyond MaxSessions, nor lock others out: a new session forgets the one
// away the longest, and only when every session is connected is the next
// refused with 503.
func TestMaxSessions(t *testing.T) {
	fc := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	e := newEnv(t, nil, false, &session.Config{MaxSessions: 3, TTL: time.Minute, Now: fc.Now})
	e.publish("a", "seed")
	var away []string
	for range 2 {
		c := e.get("/events?topic=a", nil)
		away = append(away, c.Resp.Header.Get(session.DefaultHeader))
		c.Close()
		ssetest.WaitFor(t, "the connection to end", func() bool { return e.h.Subscribers() == 0 })
		fc.Advance(time.Second)
	}
	kept := e.get("/events?topic=a", nil)
	keptID := kept.Resp.Header.Get(session.DefaultHeader)
	for i := range 2 { // each new one forgets the session away the longest
		c := e.get("/events?topic=a", nil)
		if c.Resp.StatusCode != http.StatusOK {
			t.Fatalf("new session %d: status %d", i, c.Resp.StatusCode)
		}
		if _, ok := e.m.Lookup(away[i]); ok {
			t.Fatalf("session %d, away the longest, is still there", i)
		}
		defer c.Close()
	}
	if n := len(e.m.List()); n != 3 {
		t.Fatalf("%d sessions, want 3", n)
	}
	// All three connected: the next is refused, and the others stay.
	c := e.get("/events?topic=a", nil)
	if c.Resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("a fourth session beside three connected: status %d", c.Resp.StatusCode)
	}
	if _, ok := e.m.Lookup(keptID); !ok {
		t.Fatal("a connected session was forgotten")
	}
	kept.Close()
	ssetest.WaitFor(t, "the connection to end", func() bool { return e.conns(keptID) == 0 })
	if c := e.get("/events?topic=a", nil); c.Resp.StatusCode != http.StatusOK {
		t.Fatalf("once one is away: status %d", c.Resp.StatusCode)
	}
}

// testKey is the Config.Key of the instances that share sessions.
var testKey = []byte("0123456789abcdef0123456789abcdef")

// twoHubs returns two instances sharing sessions (one Config.Key) on the
// two stores of one log.
func twoHubs(t *testing.T, sa, sb store.Store) (a, b *env) {
	t.Helper()
	return newEnv(t, sa, false, &session.Config{Key: testKey}), newEnv(t, sb, false, &session.Config{Key: testKey})
}

// startAlice opens alice's session on the instance on, with path, and
// returns it once she received data, sent from the instance from.
func startAlice(t *testing.T, on, from *env, path, data string) (alice *ssetest.Client, id, first string) {
	t.Helper()
	alice = on.get(path, http.Header{"X-User": {"alice"}})
	id = alice.Resp.Header.Get(session.DefaultHeader)
	first, err := from.m.Send(context.Background(), []string{id}, sse.Event{Data: data})
	if err != nil {
		t.Fatal(err)
	}
	if ev := alice.Next(); ev.ID != first {
		t.Fatalf("alice got %+v, want %s", ev, first)
	}
	return alice, id, first
}

// With one Key on every instance, a session created on one hub continues
// on another of the same log: it resumes there from its Last-Event-ID
// with what was sent while it was away, from either instance, and keeps
// its subject.
func TestSessionAcrossHubs(t *testing.T) {
	for _, kind := range sharedlog.Kinds {
		t.Run(kind, func(t *testing.T) {
			sa, sb := sharedlog.Open(t, kind)
			a, b := twoHubs(t, sa, sb)
			ctx := context.Background()
			alice, id, first := startAlice(t, a, a, "/events?topic=a", "hi from A")
			alice.Close()
			// Sent from B while she is away: B has never seen her.
			if _, err := b.m.Send(ctx, []string{id}, sse.Event{Data: "while away"}); err != nil {
				t.Fatal(err)
			}
			back := b.get("/events?topic=a", http.Header{"X-User": {"alice"}, session.DefaultHeader: {id}, "Last-Event-Id": {first}})
			if got := back.Resp.Header.Get(session.DefaultHeader); got != id {
				t.Fatalf("B gave session %q, want %q", got, id)
			}
			if ev := back.Next(); ev.Data != "while away" {
				t.Fatalf("alice on B got %+v", ev)
			}
			if _, err := a.m.Send(ctx, []string{id}, sse.Event{Data: "from A, to B"}); err != nil {
				t.Fatal(err)
			}
			if ev := back.Next(); ev.Data != "from A, to B" {
				t.Fatalf("alice on B got %+v", ev)
			}
			if info, ok := b.m.Lookup(id); !ok || info.Subject != "alice" || info.Connections != 1 {
				t.Fatalf("B's record of alice's session: %+v %v", info, ok)
			}
			// A new page (no Last-Event-ID) on A continues from where her
			// connection on B stopped, not from where A last saw her.
			back.Close()
			ssetest.WaitFor(t, "her connection to B to end", func() bool { return b.conns(id) == 0 })
			later, err := b.m.Send(ctx, []string{id}, sse.Event{Data: "between pages"})
			if err != nil {
				t.Fatal(err)
			}
			page := a.get("/events?topic=a", http.Header{"X-User": {"alice"}, session.DefaultHeader: {id}})
			if ev := page.Next(); ev.ID != later || ev.Data != "between pages" {
				t.Fatalf("a new page on A got %+v, want only what was sent after she left B", ev)
			}
			page.Close()
			// Another subject, a tampered id, or another key: a new session.
			flip := byte('A')
			if id[len(id)-1] == 'A' {
				flip = 'B'
			}
			tampered := id[:len(id)-1] + string(flip)
			other := newEnv(t, sb, false, &session.Config{Key: []byte("another key, sixteen bytes or more")})
			for _, try := range []struct {
				e    *env
				user string
				id   string
			}{{b, "bob", id}, {b, "alice", tampered}, {other, "alice", id}} {
				c := try.e.get("/events?topic=a", http.Header{"X-User": {try.user}, session.DefaultHeader: {try.id}})
				if got := c.Resp.Header.Get(session.DefaultHeader); got == id || got == "" {
					t.Fatalf("%s presenting %q got session %q", try.user, try.id, got)
				}
				c.Close()
			}
			if _, err := a.m.Send(ctx, []string{"not-a-session"}, sse.Event{Data: "x"}); !errors.Is(err, session.ErrUnknown) {
				t.Fatalf("send to a malformed id: %v", err)
			}
		})
	}
}

// A session that began on an empty log, and whose client went away before
// anything was written to it, still gets what was sent while it was away.
func TestSessionBornOnEmptyLog(t *testing.T) {
	e := newEnv(t, nil, false, nil)
	c := e.get("/events", http.Header{"X-User": {"alice"}})
	id := c.Resp.Header.Get(session.DefaultHeader)
	c.Close()
	ssetest.WaitFor(t, "the connection to end", func() bool { return e.conns(id) == 0 })
	sent, err := e.m.Send(context.Background(), []string{id}, sse.Event{Data: "while away"})
	if err != nil {
		t.Fatal(err)
	}
	back := e.get("/events", http.Header{"X-User": {"alice"}, session.DefaultHeader: {id}})
	if ev := back.Next(); ev.ID != sent || ev.Data != "while away" {
		t.Fatalf("got %+v", ev)
	}
}

// TestSessionBacklogOutlivesTraffic is the session a new user lost: away
// while unrelated traffic turned the log over many times, it still gets
// every send made to it, because the store keeps each session's channel
// apart from the log's retention (store.Keeper); only the shared topic it
// also follows gets a reset, after the sends.
func TestSessionBacklogOutlivesTraffic(t *testing.T) {
	ssetest.Protocols(t, func(t *testing.T, h2 bool) {
		st := store.NewMemory(store.MemoryConfig{MaxEvents: 20})
		t.Cleanup(func() { st.Close() })
		e := newEnv(t, st, h2, nil)
		ctx := context.Background()
		for _, q := range []string{"", "?topic=news"} {
			c := e.get("/events"+q, http.Header{"X-User": {"alice"}})
			id := c.Resp.Header.Get(session.DefaultHeader)
			ssetest.WaitFor(t, "the connection", func() bool { return e.conns(id) == 1 })
			c.Close()
			ssetest.WaitFor(t, "the connection to end", func() bool { return e.conns(id) == 0 })
			var sent []string
			for i := range 3 {
				sid, err := e.m.Send(ctx, []string{id}, sse.Event{Data: fmt.Sprint("for you ", i)})
				if err != nil {
					t.Fatal(err)
				}
				sent = append(sent, sid)
				for range 50 {
					e.dispatched(st, e.publish("other", "unrelated"))
				}
			}
			back := e.get("/events"+q, http.Header{"X-User": {"alice"}, session.DefaultHeader: {id}})
			for i, want := range sent {
				if ev := back.Next(); ev.ID != want || ev.Data != fmt.Sprint("for you ", i) {
					t.Fatalf("%q: send %d: got %+v, want %s", q, i, ev, want)
				}
			}
			if q == "" {
				if got := back.Resp.Header.Get(hub.ResetHeader); got != "" {
					t.Fatalf("reset %q for a session whose sends were all kept", got)
				}
			} else if ev := back.Next(); ev.Type != sse.ResetEventType {
				t.Fatalf("after the sends: %+v, want the reset of the news", ev)
			}
			back.Close()
		}
	})
}

// TestSessionBacklogAcrossHubs: a session away from instance A while other
// traffic turned the shared log over comes back on instance B and gets
// every send made to it from either, because the shared store keeps the
// session's channel apart from the log's retention.
func TestSessionBacklogAcrossHubs(t *testing.T) {
	for _, kind := range sharedlog.Kinds {
		t.Run(kind, func(t *testing.T) {
			sa, sb := sharedlog.OpenRetaining(t, kind, 20)
			a, b := twoHubs(t, sa, sb)
			ctx := context.Background()
			alice, id, first := startAlice(t, a, a, "/events", "hi")
			alice.Close()
			var sent []string
			for i, m := range []*session.Manager{a.m, b.m, a.m} {
				sid, err := m.Send(ctx, []string{id}, sse.Event{Data: fmt.Sprint("away ", i)})
				if err != nil {
					t.Fatal(err)
				}
				sent = append(sent, sid)
				for range 200 {
					last := a.publish("other", "unrelated")
					a.dispatched(sa, last)
					b.dispatched(sb, last)
				}
			}
			if got, err := storetest.History(t, sb, first); !errors.Is(err, store.ErrExpired) {
				t.Fatalf("the log still serves her cursor (%d events, %v): the test needs it evicted", len(got), err)
			}
			back := b.get("/events", http.Header{"X-User": {"alice"}, session.DefaultHeader: {id}, "Last-Event-Id": {first}})
			for i, want := range sent {
				if ev := back.Next(); ev.ID != want || ev.Data != fmt.Sprint("away ", i) {
					t.Fatalf("send %d on B: got %+v, want %s", i, ev, want)
				}
			}
			if got := back.Resp.Header.Get(hub.ResetHeader); got != "" {
				t.Fatalf("reset %q for a session whose sends were all kept", got)
			}
		})
	}
}

// TestSessionCloseAcrossHubs: an application behind a load balancer
// closes a session on the instance its request reached, A, while the
// client is connected to B: the connection on B ends, and whichever
// instance the client comes back to, with the old id and its cursor, it
// gets a new session, without the old one's sends.
func TestSessionCloseAcrossHubs(t *testing.T) {
	for _, kind := range sharedlog.Kinds {
		t.Run(kind, func(t *testing.T) {
			sa, sb := sharedlog.Open(t, kind)
			a, b := twoHubs(t, sa, sb)
			ctx := context.Background()
			alice, id, first := startAlice(t, b, a, "/events?topic=a", "before the close")
			if live, err := a.m.Close(ctx, id); live || err != nil {
				t.Fatalf("close on A, which never served her: live %v, %v", live, err)
			}
			if evs := alice.End(); len(evs) != 0 {
				t.Fatalf("after the close, her connection on B got %v", ssetest.Events(evs))
			}
			if _, err := a.m.Send(ctx, []string{id}, sse.Event{Data: "after the close"}); err != nil && !errors.Is(err, session.ErrUnknown) {
				t.Fatal(err)
			}
			// A third instance that never saw the session, too.
			c := newEnv(t, sb, false, &session.Config{Key: testKey})
			for name, e := range map[string]*env{"A": a, "B": b, "C": c} {
				back := e.get("/events?topic=a", http.Header{"X-User": {"alice"}, session.DefaultHeader: {id}, "Last-Event-Id": {first}})
				got := back.Resp.Header.Get(session.DefaultHeader)
				if got == id || got == "" || back.Resp.StatusCode != http.StatusOK {
					t.Fatalf("back on %s with the closed session: status %d, session %q", name, back.Resp.StatusCode, got)
				}
				if e.conns(id) != -1 {
					t.Fatalf("%s still knows the closed session", name)
				}
				e.publish("a", "news for "+name)
				for ev := back.Next(); ev.Data != "news for "+name; ev = back.Next() {
					if !strings.HasPrefix(ev.Data, "news for ") {
						t.Fatalf("back on %s: got %+v, want the topic's news and nothing of the old session", name, ev)
					}
				}
				back.Close()
			}
		})
	}
}

// TestConnectLoopWritesNothing: with shared sessions, a client that
// connects and leaves in a loop, with a new session each time or the same
// one, writes nothing to the log (only a connection that got an event
// records where it stopped), so it cannot turn the log over for others.
func TestConnectLoopWritesNothing(t *testing.T) {
	st := store.NewMemory(store.MemoryConfig{})
	t.Cleanup(func() { st.Close() })
	e := newEnv(t, st, false, &session.Config{Key: testKey})
	e.publish("a", "before")
	head := func() string {
		t.Helper()
		h, err := st.Head(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	before := head()
	var id string
	for i := range 20 {
		hdr := http.Header{"X-User": {"mallory"}}
		if i%2 == 1 {
			hdr.Set(session.DefaultHeader, id) // the same session again
		}
		c := e.get("/events?topic=a", hdr)
		id = c.Resp.Header.Get(session.DefaultHeader)
		c.Primed()
		c.Close()
		ssetest.WaitFor(t, "the connection to end", func() bool { return e.conns(id) == 0 })
	}
	if after := head(); after != before {
		t.Fatalf("20 connections that got nothing moved the log's head from %s to %s", before, after)
	}
	// One that got an event records it.
	c := e.get("/events?topic=a", http.Header{"X-User": {"mallory"}, session.DefaultHeader: {id}})
	c.Primed()
	sent := e.publish("a", "news")
	if ev := c.Next(); ev.ID != sent {
		t.Fatalf("got %+v", ev)
	}
	c.Close()
	ssetest.WaitFor(t, "the connection to end", func() bool { return e.conns(id) == 0 })
	if after := head(); after == sent {
		t.Fatal("a connection that got an event recorded nothing")
	}
}
