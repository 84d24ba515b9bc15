package hub

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/sluicehq/sluice/sse"
)

func TestSessions(t *testing.T) {
	protocols(t, func(t *testing.T, h2 bool) {
		fc := newFakeClock()
		swept := make(chan struct{}, 1)
		e := newEnvHooks(t, Config{Clock: fc, Heartbeat: -1, swept: swept, Session: SessionConfig{TTL: time.Minute}}, h2, &hooks{sub: func(r *http.Request) (Subscription, error) {
			sub := Subscription{Subject: r.Header.Get("X-User"), Topics: r.URL.Query()["topic"]}
			if r.URL.Query().Has("all") {
				sub.Match = func([]string) bool { return true }
			}
			return sub, nil
		}})
		ctx := context.Background()
		send := func(data string, ids ...string) (string, error) {
			return e.h.SendToSessions(ctx, ids, sse.Event{Data: data})
		}
		conns := func(id string) int {
			e.h.sessions.mu.Lock()
			defer e.h.sessions.mu.Unlock()
			if s := e.h.sessions.m[id]; s != nil {
				return s.conns
			}
			return -1
		}
		e.publish("a", "seed")
		alice := e.get("/events?topic=a", http.Header{"X-User": {"alice"}})
		aliceID := alice.resp.Header.Get(DefaultSessionHeader)
		if len(aliceID) < 32 {
			t.Fatalf("session id %q", aliceID)
		}
		var cookie *http.Cookie
		for _, ck := range alice.resp.Cookies() {
			if ck.Name == DefaultSessionCookie {
				cookie = ck
			}
		}
		if cookie == nil || cookie.Value != aliceID || !cookie.HttpOnly {
			t.Fatalf("cookie %+v", cookie)
		}
		bob := e.get("/events", http.Header{"X-User": {"bob"}}) // a session-only subscription
		bobID := bob.resp.Header.Get(DefaultSessionHeader)
		spy := e.get("/events?all", http.Header{"X-User": {"eve"}}) // patterns never see sessions
		spy.primed()
		alice.primed()
		bob.primed()

		if _, err := send("hi alice", aliceID); err != nil {
			t.Fatal(err)
		}
		if _, err := send("hi both", aliceID, bobID); err != nil {
			t.Fatal(err)
		}
		if ev := alice.next(); ev.Data != "hi alice" {
			t.Fatalf("alice got %+v", ev)
		}
		if ev := alice.next(); ev.Data != "hi both" {
			t.Fatalf("alice got %+v", ev)
		}
		if ev := bob.next(); ev.Data != "hi both" {
			t.Fatalf("bob got %+v", ev)
		}

		// Alice goes away; sends are kept for her.
		alice.close()
		waitFor(t, "alice's session to be idle", func() bool { return conns(aliceID) == 0 })
		fc.Advance(30 * time.Second)
		if _, err := send("while away", aliceID); err != nil {
			t.Fatal(err)
		}
		// She comes back with her cookie and no Last-Event-ID.
		back := e.get("/events?topic=a", http.Header{"X-User": {"alice"}, "Cookie": {cookie.String()}})
		if got := back.resp.Header.Get(DefaultSessionHeader); got != aliceID {
			t.Fatalf("resumed session %q, want %q", got, aliceID)
		}
		back.primed()
		if ev := back.next(); ev.Data != "while away" {
			t.Fatalf("got %+v", ev)
		}

		// Bob cannot claim Alice's session: he gets his own.
		thief := e.get("/events", http.Header{"X-User": {"bob"}, DefaultSessionHeader: {aliceID}})
		if got := thief.resp.Header.Get(DefaultSessionHeader); got == aliceID || got == "" {
			t.Fatalf("bob got session %q", got)
		}
		last, err := send("only alice", aliceID)
		if err != nil {
			t.Fatal(err)
		}
		if ev := back.next(); ev.ID != last {
			t.Fatalf("got %+v", ev)
		}
		marker := e.publish("a", "marker")
		if ev := spy.next(); ev.ID != marker {
			t.Fatalf("pattern subscriber got %+v, want only the topic event", ev)
		}
		thief.close()

		// Partial sends report the unknown sessions.
		if id, err := send("partial", bobID, "no-such-session"); !errors.Is(err, ErrUnknownSession) || id == "" {
			t.Fatalf("partial send: %q, %v", id, err)
		}

		// TTL: once everyone is away for a minute, the sessions are gone.
		back.close()
		bob.close()
		spy.close()
		waitFor(t, "idle sessions", func() bool { return e.h.Subscribers() == 0 && conns(aliceID) == 0 && conns(bobID) == 0 })
		sweep := func(d time.Duration) {
			t.Helper()
			waitArmed(t, fc, 1) // the janitor only
			select {
			case <-swept:
			default:
			}
			fc.Advance(d) // at least one janitor period: it sweeps
			<-swept
		}
		sweep(59 * time.Second)
		if _, err := send("still there", aliceID); err != nil {
			t.Fatalf("before the TTL: %v", err)
		}
		sweep(15 * time.Second)
		if n := e.h.sessions.len(); n != 0 {
			t.Fatalf("%d sessions left after the TTL", n)
		}
		if _, err := send("gone", aliceID); !errors.Is(err, ErrUnknownSession) {
			t.Fatalf("after the TTL: %v", err)
		}
	})
}

func TestSessionsDisabled(t *testing.T) {
	e := newEnv(t, Config{}, false)
	if _, err := e.h.SendToSessions(context.Background(), []string{"x"}, sse.Event{}); !errors.Is(err, ErrUnknownSession) {
		t.Fatal(err)
	}
	c := e.subscribe("", "a")
	if c.resp.Header.Get(DefaultSessionHeader) != "" {
		t.Fatal("session header without sessions")
	}
}
