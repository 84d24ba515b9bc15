package hub

import (
	"context"
	"errors"
	"testing"

	"github.com/sluicehq/sluice/sse"
)

// A notice reaches the connected subscribers in order with the log's
// events, exact and pattern subscriptions alike, without an id and without
// entering the log: a client resuming with its cursor gets the log's
// events after it, not the notice.
func TestNotify(t *testing.T) {
	hook := &patternHook{}
	e := newEnvHooks(t, Config{}, false, &hooks{sub: hook.subscription})
	exact := e.subscribe("", "a")
	pat := e.get("/events?pat=fast", nil)
	waitFor(t, "two subscribers", func() bool { return e.h.Subscribers() == 2 })

	id1 := e.publish("a", "1") // dispatched: the notice comes after it
	if err := e.h.Notify(context.Background(), Message{Topics: []string{"a"}, Event: sse.Event{Type: "presence", Data: "n"}}); err != nil {
		t.Fatal(err)
	}
	id2 := e.publishNoWait("a", "2")
	for _, c := range []*client{exact, pat} {
		got := []sse.Event{c.next(), c.next(), c.next()}
		if got[0].ID != id1 || got[1].Type != "presence" || got[1].Data != "n" || got[2].ID != id2 {
			t.Fatalf("got %+v, want 1, the notice, 2", got)
		}
		if got[1].ID != id1 { // the reader keeps the last id: the notice has none
			t.Errorf("the notice carried id %q", got[1].ID)
		}
	}
	n := 0
	for ev, err := range e.st.History(context.Background(), "", nil) {
		if err != nil {
			t.Fatal(err)
		}
		if ev.Type == "presence" {
			t.Fatal("the notice is in the log")
		}
		n++
	}
	if n != 2 {
		t.Fatalf("the log holds %d events, want 2", n)
	}

	// A private notice reaches only subscriptions authorized for it.
	if err := e.h.Notify(context.Background(), Message{Topics: []string{"a"}, Event: sse.Event{Data: "secret"}, Private: true}); err != nil {
		t.Fatal(err)
	}
	e.publishNoWait("a", "3")
	if ev := exact.next(); ev.Data != "3" {
		t.Fatalf("got %q after a private notice, want the next public event", ev.Data)
	}
}

func TestNotifyRefuses(t *testing.T) {
	e := newEnv(t, Config{}, false)
	ctx := context.Background()
	for _, tc := range []struct {
		topics []string
		ev     sse.Event
		want   error
	}{
		{nil, sse.Event{Data: "x"}, ErrNoTopics},
		{[]string{""}, sse.Event{Data: "x"}, ErrReservedTopic},
		{[]string{"a"}, sse.Event{Type: "sluice-x"}, ErrReservedType},
		{[]string{"a"}, sse.Event{ID: "1", Data: "x"}, sse.ErrInvalidID},
	} {
		if err := e.h.Notify(ctx, Message{Topics: tc.topics, Event: tc.ev}); !errors.Is(err, tc.want) {
			t.Errorf("Notify(%v, %+v): %v, want %v", tc.topics, tc.ev, err, tc.want)
		}
	}
}
