package hub

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/sluicehq/sluice/sse"
	"github.com/sluicehq/sluice/store"
)

func TestHeadersAndPriming(t *testing.T) {
	protocols(t, func(t *testing.T, h2 bool) {
		e := newEnv(t, Config{}, h2)
		head := e.publish("a", "before")
		c := e.subscribe("", "a")
		for k, want := range map[string]string{
			"Content-Type":      "text/event-stream",
			"Cache-Control":     "no-store",
			"X-Accel-Buffering": "no",
		} {
			if got := c.resp.Header.Get(k); got != want {
				t.Errorf("%s = %q, want %q", k, got, want)
			}
		}
		if got := c.resp.Header.Get(ResetHeader); got != "" {
			t.Errorf("%s = %q on a fresh stream", ResetHeader, got)
		}
		// The default priming: the head as a lone id field, which sets the
		// client's last event id and dispatches no event.
		if id := c.primed(); id != head {
			t.Fatalf("primed with %q, want the head %q", id, head)
		}
		after := e.publish("a", "after")
		if ev := c.next(); ev.ID != after || ev.Data != "after" {
			t.Fatalf("first event %+v, want %s: the priming dispatched one", ev, after)
		}

		// MCP SEP-1699's priming event: the id with an empty data line.
		e = newEnvHooks(t, Config{}, h2, &hooks{priming: PrimingEmptyData})
		head = e.publish("a", "before")
		c = e.subscribe("", "a")
		if p := c.next(); p != (sse.Event{ID: head, Type: "message"}) {
			t.Fatalf("priming event = %+v, want id %q and empty data", p, head)
		}
	})
	for _, p := range []Priming{-1, PrimingNone + 1} {
		e := newEnvHooks(t, Config{}, false, &hooks{priming: p})
		c := e.get("/events?topic=a", nil)
		if c.resp.StatusCode != http.StatusInternalServerError {
			t.Errorf("Priming %v: status %d, want 500", p, c.resp.StatusCode)
		}
	}
}

// An event published as soon as the client has the response headers is
// delivered: the subscriber is registered before the headers are sent.
func TestRegisteredBeforeHeaders(t *testing.T) {
	protocols(t, func(t *testing.T, h2 bool) {
		e := newEnv(t, Config{}, h2)
		for i := range 20 {
			c := e.subscribe("", "a")
			id := e.publish("a", strconv.Itoa(i))
			for {
				ev := c.next()
				if ev.Data != strconv.Itoa(i) || ev.ID != id {
					t.Fatalf("got %+v, want %d (%s)", ev, i, id)
				}
				break
			}
			c.close()
		}
	})
}

func TestResumeFromID(t *testing.T) {
	protocols(t, func(t *testing.T, h2 bool) {
		e := newEnv(t, Config{}, h2)
		var idsPub []string
		for i := range 5 {
			idsPub = append(idsPub, e.publish("a", strconv.Itoa(i)))
			e.publish("b", "other")
		}
		c := e.subscribe(idsPub[1], "a")
		if id := c.primed(); id != idsPub[1] {
			t.Fatalf("primed with %s, want the cursor %s", id, idsPub[1])
		}
		for i := 2; i < 5; i++ {
			if ev := c.next(); ev.Data != strconv.Itoa(i) || ev.ID != idsPub[i] {
				t.Fatalf("replay: got %+v, want %d", ev, i)
			}
		}
		id := e.publish("a", "live")
		if ev := c.next(); ev.Data != "live" || ev.ID != id {
			t.Fatalf("live: got %+v", ev)
		}
		// The query parameter works too.
		c2 := e.get("/events?topic=a&lastEventID="+url.QueryEscape(idsPub[3]), nil)
		if ev := c2.next(); ev.ID != idsPub[4] {
			t.Fatalf("query resume: got %+v, want %s", ev, idsPub[4])
		}
	})
}

// An event with several topics reaches a subscriber of several of them once.
func TestMultiTopicDeliveredOnce(t *testing.T) {
	e := newEnv(t, Config{}, false)
	e.publish("z", "seed") // a log with a head: the stream opens with a priming id
	c := e.subscribe("", "a", "b", "c")
	c.primed()
	first, err := e.h.Publish(context.Background(), Message{Topics: []string{"a", "b", "z"}, Event: sse.Event{Data: "ab"}})
	if err != nil {
		t.Fatal(err)
	}
	last := e.publish("c", "c")
	if ev := c.next(); ev.ID != first {
		t.Fatalf("got %+v, want %s", ev, first)
	}
	if ev := c.next(); ev.ID != last {
		t.Fatalf("got %+v, want %s (a duplicate?)", ev, last)
	}
	// Replay dedups the same way.
	r := e.subscribe(c.reader.LastEventID(), "a", "b")
	r.primed()
	e.publish("b", "b")
	if ev := r.next(); ev.Data != "b" {
		t.Fatalf("got %+v", ev)
	}
}

func TestResetUnknownAndExpired(t *testing.T) {
	protocols(t, func(t *testing.T, h2 bool) {
		m := store.NewMemory(store.MemoryConfig{MaxEvents: 4})
		t.Cleanup(func() { m.Close() })
		e := newEnv(t, Config{Store: m}, h2)
		first := e.publish("a", "0")
		var head string
		for i := 1; i < 10; i++ {
			head = e.publish("a", strconv.Itoa(i))
		}
		for _, tc := range []struct{ cursor, reason string }{
			{first, sse.ResetExpired},
			{"forged-id", sse.ResetUnknown},
			{"#zzzzzzzz-1", sse.ResetUnknown}, // the generated form, another log's epoch
		} {
			c := e.subscribe(tc.cursor, "a")
			if got := c.resp.Header.Get(ResetHeader); got != tc.reason {
				t.Errorf("%s: header %q, want %q", tc.cursor, got, tc.reason)
			}
			ev := c.next()
			want := sse.ResetEvent(head, tc.reason)
			if ev.Type != ResetEventType || ev.ID != head || ev.Data != want.Data {
				t.Fatalf("%s: got %+v, want %+v", tc.cursor, ev, want)
			}
			live := e.publish("a", "live")
			if ev := c.next(); ev.ID != live {
				t.Fatalf("%s: after reset got %+v, want live %s", tc.cursor, ev, live)
			}
			head = live
			c.close()
		}
		if got := e.h.Stats().Resets; got != 3 {
			t.Errorf("Stats().Resets = %d, want 3", got)
		}
	})
}

// A reset on an empty log clears the client's cursor.
func TestResetOnEmptyLog(t *testing.T) {
	e := newEnv(t, Config{}, false)
	c := e.subscribe("nope", "a")
	ev := c.next()
	if ev.Type != ResetEventType || c.reader.LastEventID() != "" {
		t.Fatalf("got %+v, last id %q", ev, c.reader.LastEventID())
	}
}

func TestPublishErrors(t *testing.T) {
	e := newEnv(t, Config{MaxTopics: 2, MaxEventSize: 100}, false)
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		topics []string
		ev     sse.Event
		want   error
	}{
		{"no topics", nil, sse.Event{Data: "x"}, ErrNoTopics},
		{"too many topics", []string{"a", "b", "c"}, sse.Event{Data: "x"}, ErrTooManyTopics},
		{"empty topic", []string{""}, sse.Event{Data: "x"}, ErrReservedTopic},
		{"reserved type", []string{"a"}, sse.Event{Type: ResetEventType}, ErrReservedType},
		{"too large", []string{"a"}, sse.Event{Data: string(make([]byte, 101))}, ErrEventTooLarge},
		{"id with LF", []string{"a"}, sse.Event{ID: "a\nb"}, sse.ErrInvalidID},
		{"id with CR", []string{"a"}, sse.Event{ID: "a\rb"}, sse.ErrInvalidID},
		{"id with NUL", []string{"a"}, sse.Event{ID: "a\x00b"}, sse.ErrInvalidID},
		{"type with LF", []string{"a"}, sse.Event{Type: "x\ny"}, sse.ErrInvalidType},
		{"negative retry", []string{"a"}, sse.Event{Retry: -1}, sse.ErrInvalidRetry},
	} {
		if _, err := e.h.Publish(ctx, Message{Topics: tc.topics, Event: tc.ev}); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	if got := e.h.Stats().Published; got != 0 {
		t.Errorf("published %d refused events", got)
	}
	// Data with line breaks is fine: it cannot inject fields.
	c := e.subscribe("", "a")
	if _, err := e.h.Publish(ctx, Message{Topics: []string{"a"}, Event: sse.Event{Data: "x\nevent: evil\n\ny"}}); err != nil {
		t.Fatal(err)
	}
	if ev := c.next(); ev.Type != "message" || ev.Data != "x\nevent: evil\n\ny" {
		t.Fatalf("got %+v", ev)
	}
}

func TestBadSubscriptions(t *testing.T) {
	e := newEnv(t, Config{MaxTopics: 3}, false)
	long := make([]byte, DefaultMaxLastEventIDLen+1)
	for i := range long {
		long[i] = 'a'
	}
	for _, tc := range []struct {
		name, query string
		hdr         http.Header
		want        int
	}{
		{"no topic", "", nil, http.StatusBadRequest},
		{"too many topics", "topic=a&topic=b&topic=c&topic=d", nil, http.StatusBadRequest},
		{"reserved topic", "topic=sluice:stream:x", nil, http.StatusBadRequest},
		{"oversized Last-Event-ID", "topic=a", http.Header{"Last-Event-Id": {string(long)}}, http.StatusBadRequest},
		{"oversized lastEventID", "topic=a&lastEventID=" + string(long), nil, http.StatusBadRequest},
		{"lastEventID with LF", "topic=a&lastEventID=x%0Ay", nil, http.StatusBadRequest},
		{"lastEventID with NUL", "topic=a&lastEventID=x%00y", nil, http.StatusBadRequest},
	} {
		c := e.get("/events?"+tc.query, tc.hdr)
		if c.resp.StatusCode != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, c.resp.StatusCode, tc.want)
		}
		c.close()
	}
	if n := e.h.Subscribers(); n != 0 {
		t.Errorf("%d subscribers registered by refused requests", n)
	}
}

// sluice's client reads the default priming as a browser does: it yields
// no event for it, even to a caller asking for "message" events, and the
// primed id is the Last-Event-ID of its next connection.
func TestPrimingReadBySSEClient(t *testing.T) {
	protocols(t, func(t *testing.T, h2 bool) {
		lastIDs := make(chan string, 10)
		conns := make(chan *Subscriber, 10)
		e := newEnvHooks(t, Config{Retry: time.Millisecond}, h2, &hooks{onConnect: func(s *Subscriber) { conns <- s }, sub: func(r *http.Request) (Subscription, error) {
			lastIDs <- r.Header.Get("Last-Event-ID")
			return Subscription{Topics: r.URL.Query()["topic"]}, nil
		}})
		head := e.publish("a", "seed")
		req, err := http.NewRequest(http.MethodGet, e.srv.URL+"/events?topic=a", nil)
		if err != nil {
			t.Fatal(err)
		}
		client := &sse.Client{HTTPClient: e.client}
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		events := make(chan sse.Event, 10)
		primed := make(chan string, 10)
		go func() {
			defer close(events)
			for ev, err := range client.Connect(ctx, req, sse.WithTypes("message"),
				sse.OnLastEventID(func(id string) { primed <- id })) {
				if err == nil {
					events <- ev
				}
			}
		}()
		next := func() (string, *Subscriber) {
			t.Helper()
			select {
			case id := <-lastIDs:
				return id, <-conns
			case <-time.After(hang):
				t.Fatal("the client did not connect")
				return "", nil
			}
		}
		id, s := next()
		if id != "" {
			t.Fatalf("first connection with Last-Event-ID %q", id)
		}
		select {
		case id := <-primed:
			if id != head {
				t.Fatalf("the client's last event id is %q, want the primed %q", id, head)
			}
		case <-time.After(hang):
			t.Fatal("the client never read the priming")
		}
		s.Close() // the stream carried only the priming
		if id, _ := next(); id != head {
			t.Fatalf("reconnected with Last-Event-ID %q, want the primed %q", id, head)
		}
		after := e.publish("a", "after")
		select {
		case ev := <-events:
			if ev.ID != after || ev.Data != "after" {
				t.Fatalf("first event %+v, want %s: the priming was yielded", ev, after)
			}
		case <-time.After(hang):
			t.Fatal("no event")
		}
	})
}

func TestReservedNames(t *testing.T) {
	for _, typ := range []string{ResetEventType, GapEventType} {
		if !isReservedType(typ) {
			t.Errorf("%q is not in the reserved type namespace %q", typ, ReservedTypePrefix)
		}
	}
}
