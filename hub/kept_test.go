package hub

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/sluicehq/sluice/sse"
	"github.com/sluicehq/sluice/store"
)

// TestKeptChannelsOutliveTheLog is a session away while unrelated traffic
// turns the log over: what was sent on its private channel still reaches
// it (store.Keeper), with a reset only for the topics whose events are
// gone, and never an incomplete channel passed off as complete.
func TestKeptChannelsOutliveTheLog(t *testing.T) {
	protocols(t, func(t *testing.T, h2 bool) {
		m := store.NewMemory(store.MemoryConfig{MaxEvents: 10, KeepPerChannel: 4})
		t.Cleanup(func() { m.Close() })
		reasons := make(chan DisconnectReason, 16)
		e := newEnvHooks(t, Config{Store: m}, h2, &hooks{
			sub: func(r *http.Request) (Subscription, error) {
				q := r.URL.Query()
				return Subscription{Topics: append(q["topic"], q["channel"]...)}, nil
			},
			onDisconnect: func(_ *Subscriber, r DisconnectReason) { reasons <- r },
		})
		e.prompt = true // a memory store: publish waits for the dispatch
		ctx := context.Background()
		send := func(ch, data string) string {
			t.Helper()
			id, err := e.h.Publish(ctx, Message{Topics: []string{ch}, Event: sse.Event{Type: "sent", Data: data}})
			if err != nil {
				t.Fatal(err)
			}
			e.dispatched(id)
			return id
		}
		session, busy, done := ReservedTopicPrefix+"session", ReservedTopicPrefix+"busy", ReservedTopicPrefix+"done"
		away := e.publish("news", "before")
		s1, s2 := send(session, "1"), send(session, "2")
		for i := range 6 {
			send(busy, string(rune('a'+i))) // more than the 4 kept
		}
		send(done, "x")
		send(done, "y")
		if err := e.h.Complete(ctx, done); err != nil {
			t.Fatal(err)
		}
		for range 20 {
			e.publish("news", "noise")
		}
		for _, err := range m.History(ctx, away, nil) {
			if err == nil {
				t.Fatal("the log still serves the cursor: the test needs it evicted")
			}
			break
		}
		open := func(lastID string, q url.Values) *client {
			t.Helper()
			return e.get("/events?"+q.Encode(), http.Header{"Last-Event-Id": {lastID}})
		}

		// Its own channel only: every send, then live, and no reset.
		c := open(away, url.Values{"channel": {session}})
		if c.resp.Header.Get(ResetHeader) != "" {
			t.Fatalf("reset header %q on a channel kept whole", c.resp.Header.Get(ResetHeader))
		}
		if ev := c.next(); ev.ID != s1 || ev.Data != "1" {
			t.Fatalf("first kept event %+v, want %s", ev, s1)
		}
		if ev := c.next(); ev.ID != s2 {
			t.Fatalf("second kept event %+v, want %s", ev, s2)
		}
		s3 := send(session, "3")
		if ev := c.next(); ev.ID != s3 || ev.Type != "sent" {
			t.Fatalf("live event %+v, want %s", ev, s3)
		}
		c.close()
		<-reasons

		// With a public topic too: the sends, then the reset for the news
		// lost with the log, then live news.
		c = open(away, url.Values{"channel": {session}, "topic": {"news"}})
		if got := c.resp.Header.Get(ResetHeader); got != sse.ResetExpired {
			t.Fatalf("reset header %q, want %q", got, sse.ResetExpired)
		}
		for _, want := range []string{s1, s2, s3} {
			if ev := c.next(); ev.ID != want {
				t.Fatalf("kept event %+v, want %s", ev, want)
			}
		}
		reset := c.next()
		if reset.Type != sse.ResetEventType || reset.ID == "" {
			t.Fatalf("after the kept events: %+v, want the reset", reset)
		}
		live := e.publish("news", "live")
		if ev := c.next(); ev.ID != live {
			t.Fatalf("live event %+v, want %s", ev, live)
		}
		c.close()
		<-reasons

		// A channel that lost sends after the cursor says so.
		c = open(away, url.Values{"channel": {busy}})
		if got := c.resp.Header.Get(ResetHeader); got != sse.ResetExpired {
			t.Fatalf("reset header %q for a channel that lost events, want %q", got, sse.ResetExpired)
		}
		if ev := c.next(); ev.Type != sse.ResetEventType {
			t.Fatalf("first event %+v, want the reset", ev)
		}
		c.close()
		<-reasons

		// A completed channel is read to its end, then 204.
		c = open(away, url.Values{"channel": {done}})
		evs := c.end()
		if got := ids(evs); got != "sent:x sent:y" {
			t.Fatalf("completed channel replayed %s", got)
		}
		if r := <-reasons; r != ReasonCompleted {
			t.Fatalf("reason %q, want %q", r, ReasonCompleted)
		}
		c = open(evs[1].ID, url.Values{"channel": {done}})
		if c.resp.StatusCode != http.StatusNoContent {
			t.Fatalf("status %d after the end, want 204", c.resp.StatusCode)
		}
	})
}

// A subscription to two private channels gets their kept events merged in
// log order, an event sent to both once, and no more than its start: the
// event published while it connects comes live, once.
func TestKeptChannelsMerge(t *testing.T) {
	m := store.NewMemory(store.MemoryConfig{MaxEvents: 10})
	t.Cleanup(func() { m.Close() })
	e := newEnvHooks(t, Config{Store: m}, false, &hooks{
		sub: func(r *http.Request) (Subscription, error) {
			return Subscription{Topics: r.URL.Query()["channel"]}, nil
		},
	})
	e.prompt = true
	ctx := context.Background()
	a, b := ReservedTopicPrefix+"a", ReservedTopicPrefix+"b"
	send := func(data string, topics ...string) string {
		t.Helper()
		id, err := e.h.Publish(ctx, Message{Topics: topics, Event: sse.Event{Data: data}})
		if err != nil {
			t.Fatal(err)
		}
		e.dispatched(id)
		return id
	}
	away := e.publish("news", "before")
	want := []string{send("a1", a), send("b1", b), send("both", b, a), send("a2", a)}
	for range 20 {
		e.publish("news", "noise")
	}
	c := e.get("/events?"+url.Values{"channel": {a, b}}.Encode(), http.Header{"Last-Event-Id": {away}})
	for i, id := range want {
		if ev := c.next(); ev.ID != id {
			t.Fatalf("kept event %d: %+v, want %s", i, ev, id)
		}
	}
	live := send("live", a, b)
	if ev := c.next(); ev.ID != live {
		t.Fatalf("after the kept events: %+v, want the live %s", ev, live)
	}
	if c.resp.Header.Get(ResetHeader) != "" {
		t.Fatal("reset for channels kept whole")
	}
}
