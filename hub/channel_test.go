package hub

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"

	"github.com/sluicehq/sluice/sse"
)

// channelEnv serves /events with the topics and channels of the query
// (?topic=, ?channel=), and ?all adds a pattern that matches everything.
// Disconnect reasons go to reasons.
func channelEnv(t *testing.T, h2 bool, reasons chan DisconnectReason) *env {
	return newEnvHooks(t, Config{}, h2, &hooks{
		sub: func(r *http.Request) (Subscription, error) {
			q := r.URL.Query()
			sub := Subscription{Topics: append(q["topic"], q["channel"]...)}
			if q.Has("all") {
				sub.Match = func([]string) bool { return true }
			}
			return sub, nil
		},
		onDisconnect: func(_ *Subscriber, r DisconnectReason) {
			select {
			case reasons <- r:
			default:
			}
		},
	})
}

func TestPrivateChannels(t *testing.T) {
	protocols(t, func(t *testing.T, h2 bool) {
		reasons := make(chan DisconnectReason, 16)
		e := channelEnv(t, h2, reasons)
		ctx := context.Background()
		ch := ReservedTopicPrefix + "job-1"
		send := func(data string) string {
			t.Helper()
			id, err := e.h.Publish(ctx, Message{Topics: []string{ch}, Event: sse.Event{Type: "step", Data: data}})
			if err != nil {
				t.Fatal(err)
			}
			return id
		}
		e.publish("noise", "x")
		reader := e.get("/events?channel="+url.QueryEscape(ch), nil)
		spy := e.get("/events?all&topic=noise", nil) // patterns never see channels
		reader.primed()
		spy.primed()
		first := send("1")
		if ev := reader.next(); ev.ID != first || ev.Data != "1" {
			t.Fatalf("channel reader got %+v", ev)
		}
		second := send("2")
		if ev := reader.next(); ev.ID != second {
			t.Fatalf("channel reader got %+v", ev)
		}
		marker := e.publish("noise", "marker")
		if ev := spy.next(); ev.ID != marker {
			t.Fatalf("pattern subscriber got %+v, want only the topic event", ev)
		}

		// Completing ends the live response after what came before.
		third := send("3")
		if err := e.h.Complete(ctx, ch); err != nil {
			t.Fatal(err)
		}
		if got := ids(reader.end()); got != "step:3" {
			t.Fatalf("live reader before the end: %s", got)
		}
		if r := <-reasons; r != ReasonCompleted {
			t.Fatalf("reason %q, want %q", r, ReasonCompleted)
		}
		if reader.reader.LastEventID() != third {
			t.Fatalf("cursor %q, want %q", reader.reader.LastEventID(), third)
		}
		// A reader resuming before the end gets the rest, then the end.
		c := e.get("/events?channel="+url.QueryEscape(ch), http.Header{"Last-Event-Id": {first}})
		if got := ids(c.end()); got != "step:2 step:3" || c.primed() != first {
			t.Fatalf("rest: %s", got)
		}
		// Nothing left, from the last event, a later cursor or none: 204.
		for _, cursor := range []string{third, e.publish("noise", "z"), ""} {
			var hdr http.Header
			if cursor != "" {
				hdr = http.Header{"Last-Event-Id": {cursor}}
			}
			c = e.get("/events?channel="+url.QueryEscape(ch), hdr)
			if c.resp.StatusCode != http.StatusNoContent {
				t.Fatalf("after the end from %q: status %d", cursor, c.resp.StatusCode)
			}
		}
		spy.close()
	})
}

// Only the application names channels: the hub's own handler refuses them
// in a query, and only a channel is completed.
func TestPrivateChannelRefused(t *testing.T) {
	e := newEnv(t, Config{}, false)
	c := e.get("/events?topic=a&topic="+url.QueryEscape(ReservedTopicPrefix+"x"), nil)
	if c.resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a channel in ServeHTTP's query: status %d", c.resp.StatusCode)
	}
	if err := e.h.Complete(context.Background(), "a"); !errors.Is(err, ErrReservedTopic) {
		t.Fatalf("complete a public topic: %v", err)
	}
	if _, err := e.h.Publish(context.Background(), Message{Topics: []string{"a"}, Event: sse.Event{Type: typeEnd}}); !errors.Is(err, ErrReservedType) {
		t.Fatalf("publish a completion: %v", err)
	}
}

// Subscriber.Notify (and Comment) reaches one subscriber, without an id, in order with
// its events, and leaves the client's cursor where it was (an event
// without an id field keeps the last one); LastEventID is the client's
// cursor once it has gone.
func TestSubscriberNotify(t *testing.T) {
	subs := make(chan *Subscriber, 2)
	gone := make(chan *Subscriber, 2)
	e := newEnvHooks(t, Config{}, false, &hooks{
		onConnect:    func(s *Subscriber) { subs <- s },
		onDisconnect: func(s *Subscriber, _ DisconnectReason) { gone <- s },
	})
	e.publish("a", "seed") // so that streams open with a cursor
	c := e.subscribe("", "a")
	c.primed()
	s := <-subs
	other := e.subscribe("", "a")
	other.primed()
	<-subs
	first := e.publish("a", "one")
	if err := s.Notify(sse.Event{Type: "hello", Data: "just you"}); err != nil {
		t.Fatal(err)
	}
	s.Comment("keep\nalive")
	second := e.publish("a", "two")
	for _, want := range []sse.Event{{ID: first, Type: "message", Data: "one"}, {ID: first, Type: "hello", Data: "just you"}, {ID: second, Type: "message", Data: "two"}} {
		if ev := c.next(); ev.ID != want.ID || ev.Type != want.Type || ev.Data != want.Data {
			t.Fatalf("got %+v, want %+v", ev, want)
		}
	}
	if c.reader.LastEventID() != second {
		t.Fatalf("cursor %q after the notice, want %q", c.reader.LastEventID(), second)
	}
	for _, want := range []string{"keep", "alive"} { // before "two": read by now
		if got := <-c.comments; got != want {
			t.Fatalf("comment %q, want %q", got, want)
		}
	}
	if ev := other.next(); ev.ID != first {
		t.Fatalf("the other subscriber got %+v", ev)
	}
	if ev := other.next(); ev.ID != second {
		t.Fatalf("the other subscriber got %+v, not the notice", ev)
	}
	for _, bad := range []sse.Event{{ID: "x"}, {Type: GapEventType}} {
		if err := s.Notify(bad); err == nil {
			t.Fatalf("notify %+v: no error", bad)
		}
	}
	if s.LastEventID() != "" {
		t.Fatalf("LastEventID while connected: %q", s.LastEventID())
	}
	c.close()
	if got := (<-gone).LastEventID(); got != second {
		t.Fatalf("LastEventID %q, want %q", got, second)
	}
}
