package hub

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/sse"
	"github.com/sluicehq/sluice/store"
)

// rawSubscribe opens /events?topic=a over a raw HTTP/1.1 connection that
// reads nothing until told to.
func (e *env) rawSubscribe(topic string) net.Conn {
	e.t.Helper()
	conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "GET /events?topic=%s HTTP/1.1\r\nHost: hub\r\n\r\n", topic)
	return conn
}

// bigStore keeps enough large events for the flooding tests.
func bigStore(t *testing.T) store.Store {
	m := store.NewMemory(store.MemoryConfig{MaxBytes: 256 << 20})
	t.Cleanup(func() { m.Close() })
	return m
}

const floodEvents, floodSize = 400, 32 << 10

// A client that never reads is disconnected when its queue overflows; the
// others get every event.
func TestSlowClientDisconnected(t *testing.T) {
	checkGoroutines(t)
	e := newEnv(t, Config{Store: bigStore(t), QueueEvents: 8, WriteTimeout: 500 * time.Millisecond}, false)
	e.publish("a", "seed")
	e.rawSubscribe("a")
	waitFor(t, "the raw subscriber", func() bool { return e.h.Subscribers() == 1 })
	c := e.subscribe("", "a")
	c.primed()
	big := strings.Repeat("x", floodSize)
	for i := range floodEvents {
		e.publish("a", strconv.Itoa(i)+big)
		// Lockstep: the reading client is never behind.
		if ev := c.next(); !strings.HasPrefix(ev.Data, strconv.Itoa(i)+"x") {
			t.Fatalf("event %d: got %.10q", i, ev.Data)
		}
	}
	waitFor(t, "the slow subscriber to be dropped", func() bool {
		return e.h.Stats().Slow == 1 && e.h.Subscribers() == 1
	})
	if st := e.h.Stats(); st.Dropped != 0 {
		t.Errorf("dropped %d events under PolicyDisconnect", st.Dropped)
	}
}

// Under PolicyDrop a client that stops reading loses events but is told
// where, with a gap marker carrying the count.
func TestSlowClientDropGapMarker(t *testing.T) {
	var dropped *Subscriber
	e := newEnvHooks(t, Config{Store: bigStore(t), QueueEvents: 8}, false, &hooks{onConnect: func(s *Subscriber) { dropped = s }, policy: PolicyDrop})
	e.publish("a", "seed")
	conn := e.rawSubscribe("a")
	waitFor(t, "the raw subscriber", func() bool { return e.h.Subscribers() == 1 })
	big := strings.Repeat("x", floodSize)
	for i := range floodEvents {
		e.publish("a", strconv.Itoa(i)+" "+big)
	}
	waitFor(t, "drops", func() bool { return e.h.Stats().Dropped > 0 })
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	defer conn.Close() // first: Body.Close would read to the end of the stream
	r := sse.NewReader(resp.Body)
	got, gaps, lost := 0, 0, 0
	next := 0
	conn.SetReadDeadline(time.Now().Add(hang))
	for got+lost < floodEvents {
		ev, err := r.Next()
		if err != nil {
			t.Fatalf("after %d events and %d lost: %v", got, lost, err)
		}
		switch {
		case ev.Type == GapEventType:
			var d struct{ Dropped int }
			if err := json.Unmarshal([]byte(ev.Data), &d); err != nil || d.Dropped <= 0 {
				t.Fatalf("gap marker %q: %v", ev.Data, err)
			}
			gaps++
			lost += d.Dropped
			next += d.Dropped
		case ev.Data == "":
			t.Fatalf("an empty event %+v (the priming dispatches none)", ev)
		default:
			n, _ := strconv.Atoi(strings.Fields(ev.Data)[0])
			if n != next {
				t.Fatalf("got event %d, want %d (gaps %d, lost %d)", n, next, gaps, lost)
			}
			next++
			got++
		}
	}
	if gaps == 0 || lost == 0 {
		t.Fatalf("no gap marker (got %d, lost %d)", got, lost)
	}
	if st, ds := e.h.Stats(), dropped.Stats(); st.Dropped != uint64(lost) || ds.Dropped != uint64(lost) {
		t.Errorf("Stats().Dropped = %d, subscriber %d, want %d", st.Dropped, ds.Dropped, lost)
	}
	t.Logf("received %d, lost %d in %d gaps", got, lost, gaps)
}

// Queue limits and policies, on the queue alone.
func TestQueueLimits(t *testing.T) {
	newHub := func(cfg Config) *Hub {
		m := store.NewMemory(store.MemoryConfig{})
		t.Cleanup(func() { m.Close() })
		cfg.Store = m
		cfg.Logger = quietLogger(t)
		h, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Shutdown(context.Background()) })
		return h
	}
	ev := func(n int) item {
		pe, _ := sse.Prepare(sse.Event{Data: strings.Repeat("x", n)})
		return item{ev: pe}
	}
	t.Run("events", func(t *testing.T) {
		h := newHub(Config{QueueEvents: 3})
		s := newSubscriber(h, Subscription{Topics: []string{"a"}, Policy: PolicyDrop})
		for i := range 5 {
			it := ev(1)
			it.pos = uint64(i + 1)
			s.enqueue(it)
		}
		if st := s.Stats(); st.Queued != 3 || st.Dropped != 2 {
			t.Fatalf("stats %+v", st)
		}
		if st := h.Stats(); st.Queued != 3 || st.Dropped != 2 { // the hub's counters, over its subscribers
			t.Fatalf("hub stats %+v", st)
		}
		items, gap, reason := s.take(nil)
		if len(items) != 3 || gap != 2 || reason != "" || items[2].pos != 3 {
			t.Fatalf("take: %d items, gap %d, reason %q", len(items), gap, reason)
		}
		if st := h.Stats(); st.Queued != 0 || st.Dropped != 2 {
			t.Fatalf("hub stats after take %+v", st)
		}
	})
	t.Run("bytes", func(t *testing.T) {
		h := newHub(Config{QueueBytes: 1000})
		s := newSubscriber(h, Subscription{Topics: []string{"a"}})
		s.enqueue(ev(2000)) // an oversized event fits an empty queue
		if st := s.Stats(); st.Queued != 1 {
			t.Fatalf("stats %+v", st)
		}
		s.take(nil)
		s.enqueue(ev(600))
		s.enqueue(ev(600))
		if _, _, reason := s.take(nil); reason != ReasonSlow {
			t.Fatalf("reason %q, want %q", reason, ReasonSlow)
		}
	})
	t.Run("replay allowance", func(t *testing.T) {
		h := newHub(Config{QueueEvents: 2, ReplayEvents: 5})
		s := newSubscriber(h, Subscription{Topics: []string{"a"}})
		s.buffering = true
		for range 5 {
			s.enqueue(ev(1))
		}
		if st := s.Stats(); st.Queued != 5 {
			t.Fatalf("buffering: %+v", st)
		}
		s.enqueue(ev(1))
		if _, _, reason := s.take(nil); reason != ReasonReplayOverflow {
			t.Fatalf("reason %q, want %q", reason, ReasonReplayOverflow)
		}
	})
}

// OnSlow picks the policy per subscriber when its queue first fills: two
// clients that stop reading, a dashboard that loses events in gaps and a
// worker disconnected at once (it resumes), while an honest reader beside
// them gets every event. Each is asked once.
func TestOnSlowChoosesPolicy(t *testing.T) {
	type end struct {
		who     string
		reason  DisconnectReason
		dropped uint64
	}
	asked := make(chan string, 8)
	ends := make(chan end, 8)
	e := newEnvHooks(t, Config{Store: bigStore(t), QueueEvents: 8, WriteTimeout: 500 * time.Millisecond}, false, &hooks{
		sub: func(r *http.Request) (Subscription, error) {
			return Subscription{Subject: r.URL.Query().Get("who"), Topics: []string{"a"},
				OnSlow: func(s *Subscriber) Policy {
					asked <- s.Subject()
					if s.Subject() == "dashboard" {
						return PolicyDrop
					}
					return PolicyDisconnect
				}}, nil
		},
		onDisconnect: func(s *Subscriber, r DisconnectReason) { ends <- end{s.Subject(), r, s.Stats().Dropped} },
	})
	e.publish("a", "seed")
	for _, who := range []string{"dashboard", "worker"} {
		conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		fmt.Fprintf(conn, "GET /events?who=%s HTTP/1.1\r\nHost: hub\r\n\r\n", who)
	}
	waitFor(t, "the raw subscribers", func() bool { return e.h.Subscribers() == 2 })
	c := e.get("/events?who=reader", nil)
	c.primed()
	big := strings.Repeat("x", floodSize)
	for i := range floodEvents {
		e.publish("a", strconv.Itoa(i)+big)
		if ev := c.next(); !strings.HasPrefix(ev.Data, strconv.Itoa(i)+"x") {
			t.Fatalf("honest reader, event %d: got %.10q", i, ev.Data)
		}
	}
	got := map[string]end{}
	for range 2 {
		x := <-ends
		got[x.who] = x
	}
	// The worker was disconnected as slow, losing nothing (it resumes);
	// the dashboard, which then stopped reading for good, lost events in
	// gaps until its write timed out.
	if w := got["worker"]; w.reason != ReasonSlow || w.dropped != 0 {
		t.Errorf("worker ended %+v, want %q with nothing dropped", w, ReasonSlow)
	}
	if d := got["dashboard"]; d.reason == ReasonSlow || d.dropped == 0 {
		t.Errorf("dashboard ended %+v, want events dropped and not a slow disconnect", d)
	}
	calls := map[string]int{}
	for len(asked) > 0 {
		calls[<-asked]++
	}
	if calls["dashboard"] != 1 || calls["worker"] != 1 || calls["reader"] != 0 {
		t.Fatalf("OnSlow calls %v, want the two slow clients once each", calls)
	}
}
