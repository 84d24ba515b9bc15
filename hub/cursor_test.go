package hub

import (
	"context"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/sse"
	"github.com/sluicehq/sluice/store"
)

// The cursors the hub hands out, and its answers to a Last-Event-ID,
// reveal nothing a subscriber may not see: never a publisher's custom id
// (which may name a private event), and the same answer for a custom id of
// an event the subscriber may not see as for an id never issued.

// plainStore hides every optional interface of the store it wraps but
// store.Resolver: a third-party store without store.Positioner.
type plainStore struct{ store.Store }

func (p plainStore) Resolve(ctx context.Context, cursor string) (uint64, error) {
	return p.Store.(store.Resolver).Resolve(ctx, cursor)
}

// cursorEnv is a hub on st whose subscribers are anonymous (no private
// event), or with ?user=admin authorized for every event; watch is an
// admin subscriber of topic "a", through which publish knows that the hub
// has dispatched an event.
type cursorEnv struct {
	*env
	watch *client
}

func newCursorEnv(t *testing.T, st store.Store) *cursorEnv {
	e := newEnvHooks(t, Config{Store: st}, false, &hooks{sub: func(r *http.Request) (Subscription, error) {
		q := r.URL.Query()
		sub := Subscription{Topics: q["topic"]}
		if q.Get("user") == "admin" {
			sub.Authorize = func(*store.Event) bool { return true }
		}
		return sub, nil
	}})
	return &cursorEnv{env: e, watch: e.get("/events?user=admin&topic=a", nil)}
}

// publish publishes data on "a" with id (custom unless empty) and returns
// its id once the hub has dispatched it.
func (e *cursorEnv) publish(id, data string, private bool) string {
	e.t.Helper()
	got, err := e.h.Publish(context.Background(), Message{Topics: []string{"a"}, Event: sse.Event{ID: id, Data: data}, Private: private})
	if err != nil {
		e.t.Fatal(err)
	}
	for {
		ev := e.watch.next()
		if ev.Data == data {
			return got
		}
		if ev.Data != "" {
			e.t.Fatalf("watch got %+v before %q", ev, data)
		}
	}
}

// resume opens /events?query with Last-Event-ID cursor.
func (e *cursorEnv) resume(query, cursor string) *client {
	e.t.Helper()
	var hdr http.Header
	if cursor != "" {
		hdr = http.Header{"Last-Event-Id": {cursor}}
	}
	return e.get("/events?"+query, hdr)
}

// TestCursorsNeverCustomIDs: when the newest event is private and has a
// custom id, neither the reset an anonymous subscriber gets for an unknown
// Last-Event-ID, nor the priming event of a new stream, nor Stats reveal
// that id; and the cursor given is one to resume from.
func TestCursorsNeverCustomIDs(t *testing.T) {
	const secret = "order-42-for-bob"
	for _, tc := range []struct {
		name       string
		positioner bool
	}{{"Positioner", true}, {"WithoutPositioner", false}} {
		t.Run(tc.name, func(t *testing.T) {
			m := store.NewMemory(store.MemoryConfig{})
			t.Cleanup(func() { m.Close() })
			var st store.Store = m
			if !tc.positioner {
				st = plainStore{m}
			}
			e := newCursorEnv(t, st)
			public := e.publish("", "public", false)
			if id := e.publish(secret, "for bob", true); id != secret {
				t.Fatalf("published id %q", id)
			}

			reset := e.resume("topic=a", "bogus")
			if got := reset.resp.Header.Get(ResetHeader); got != sse.ResetUnknown {
				t.Fatalf("reset header %q", got)
			}
			ev := reset.next()
			if ev.Type != ResetEventType || ev.ID == "" {
				t.Fatalf("got %+v, want a reset event", ev)
			}
			if ev.ID == secret || strings.Contains(ev.Data, secret) {
				t.Fatalf("the reset event reveals the private event's id: %+v", ev)
			}
			primed := e.resume("topic=a", "").primed()
			if primed == secret {
				t.Fatalf("the priming %q is the private event's id", primed)
			}
			if p := e.h.Stats().Position; p == secret {
				t.Fatalf("Stats().Position %q is the private event's id", p)
			}
			if !tc.positioner {
				// The last event everyone may see: a cursor before the
				// private one.
				if ev.ID != public || primed != public {
					t.Fatalf("reset %q, priming %q; want the last public event's id %s", ev.ID, primed, public)
				}
			}

			live := e.publish("", "live", false)
			if got := reset.next(); got.ID != live {
				t.Fatalf("after the reset got %+v, want %s", got, live)
			}
			// The reset's head resumes right before the live event.
			again := e.resume("topic=a", ev.ID)
			if p := again.primed(); p != ev.ID {
				t.Fatalf("primed with %s, want %s", p, ev.ID)
			}
			if got := again.next(); got.ID != live {
				t.Fatalf("resuming from the reset's head got %+v, want %s", got, live)
			}
		})
	}
}

// TestCustomIDsCannotBeProbed: for a subscriber that may not see an event,
// resuming from its custom id gets exactly what resuming from an id never
// issued gets (status, headers, reset event), so it cannot tell that the
// event exists; a subscriber that may see it resumes after it.
func TestCustomIDsCannotBeProbed(t *testing.T) {
	const secret = "order-42-for-bob"
	e := newCursorEnv(t, nil)
	e.publish("", "public", false)
	e.publish(secret, "for bob", true)
	after := e.publish("", "after", false)

	answer := func(cursor string) (int, http.Header, sse.Event) {
		t.Helper()
		c := e.resume("topic=a", cursor)
		defer c.close()
		hdr := c.resp.Header.Clone()
		hdr.Del("Date")
		return c.resp.StatusCode, hdr, c.next()
	}
	code1, hdr1, ev1 := answer("never-issued")
	code2, hdr2, ev2 := answer(secret)
	if code1 != code2 || !reflect.DeepEqual(hdr1, hdr2) || ev1 != ev2 {
		t.Fatalf("an unknown id gets %d %v %+v;\nthe private event's id %d %v %+v", code1, hdr1, ev1, code2, hdr2, ev2)
	}
	if ev1.Type != ResetEventType || hdr1.Get(ResetHeader) != sse.ResetUnknown {
		t.Fatalf("an unknown id gets %+v, header %q; want a reset", ev1, hdr1.Get(ResetHeader))
	}

	admin := e.resume("user=admin&topic=a", secret)
	if h := admin.resp.Header.Get(ResetHeader); h != "" {
		t.Fatalf("an authorized subscriber got a reset (%s) for %s", h, secret)
	}
	if p := admin.primed(); p != secret {
		t.Fatalf("primed with %s, want %s", p, secret)
	}
	if ev := admin.next(); ev.ID != after {
		t.Fatalf("an authorized subscriber resumed with %+v, want %s", ev, after)
	}
}

// TestChannelCustomIDsCannotBeProbed: an event on a private channel is
// only its subscribers', custom id included.
func TestChannelCustomIDsCannotBeProbed(t *testing.T) {
	e := newEnvHooks(t, Config{}, false, &hooks{sub: func(r *http.Request) (Subscription, error) {
		q := r.URL.Query()
		return Subscription{Topics: append(q["topic"], q["channel"]...)}, nil
	}})
	alices := ReservedTopicPrefix + "alice"
	e.publish("a", "seed")
	alice := e.get("/events?topic=a&channel="+alices, nil)
	alice.primed()
	if _, err := e.h.Publish(context.Background(), Message{Topics: []string{alices}, Event: sse.Event{ID: "note-for-alice", Data: "hi"}}); err != nil {
		t.Fatal(err)
	}
	if ev := alice.next(); ev.ID != "note-for-alice" {
		t.Fatalf("alice got %+v", ev)
	}
	later := e.publish("a", "later")
	eve := e.subscribe("note-for-alice", "a")
	if h := eve.resp.Header.Get(ResetHeader); h != sse.ResetUnknown {
		t.Fatalf("another subscriber resuming from alice's custom id: reset header %q, want %q", h, sse.ResetUnknown)
	}
	if ev := eve.next(); ev.Type != ResetEventType {
		t.Fatalf("another subscriber got %+v, want a reset", ev)
	}
	// Alice herself resumes after it.
	back := e.get("/events?topic=a&channel="+alices, http.Header{"Last-Event-Id": {"note-for-alice"}})
	if h := back.resp.Header.Get(ResetHeader); h != "" {
		t.Fatalf("alice got a reset (%s)", h)
	}
	back.primed()
	if ev := back.next(); ev.ID != later {
		t.Fatalf("alice resumed with %+v, want %s", ev, later)
	}
}

// TestResumeFromHandedOutCursor: a subscriber authorized for everything
// that resumes from the cursor it was given (priming, reset head) gets
// exactly the events after it, none before, though the event before it was
// private and its custom id repeats an earlier event's.
func TestResumeFromHandedOutCursor(t *testing.T) {
	e := newCursorEnv(t, nil)
	e.publish("dup", "public dup", false)
	e.publish("", "between", false)
	e.publish("dup", "private dup", true)

	primed := e.resume("user=admin&topic=a", "").primed()
	reset := e.resume("user=admin&topic=a", "never-issued").next()
	if reset.Type != ResetEventType {
		t.Fatalf("got %+v, want a reset", reset)
	}
	want := []string{e.publish("", "one", false), e.publish("", "two", true), e.publish("", "three", false)}
	for _, cursor := range []string{primed, reset.ID} {
		c := e.resume("user=admin&topic=a", cursor)
		if p := c.primed(); p != cursor {
			t.Fatalf("primed with %s, want %s", p, cursor)
		}
		for _, id := range want {
			if ev := c.next(); ev.ID != id {
				t.Fatalf("resuming from %q got %+v (data %q), want %s", cursor, ev, ev.Data, id)
			}
		}
		c.close()
	}
}
