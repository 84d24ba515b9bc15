package hub

import (
	"context"
	"errors"
	"iter"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/sse"
	"github.com/sluicehq/sluice/store"
)

func TestPolling(t *testing.T) {
	protocols(t, func(t *testing.T, h2 bool) {
		e := newEnvHooks(t, Config{}, h2, &hooks{sub: func(r *http.Request) (Subscription, error) {
			return Subscription{Topics: r.URL.Query()["topic"], PollInterval: 2 * time.Second}, nil
		}})
		first := e.publish("a", "1")
		e.publish("a", "2")
		last := e.publish("a", "3")

		c := e.subscribe(first, "a")
		evs := c.end()
		if got := ids(evs); got != "message:2 message:3" {
			t.Fatalf("poll got %s", got)
		}
		if r, ok := c.reader.Retry(); !ok || r != 2*time.Second {
			t.Fatalf("retry = %v, %v", r, ok)
		}
		if c.reader.LastEventID() != last {
			t.Fatalf("cursor %q, want %q", c.reader.LastEventID(), last)
		}
		// Nothing new: priming and retry only.
		c = e.subscribe(last, "a")
		if evs := c.end(); len(evs) != 0 || c.primed() != last {
			t.Fatalf("empty poll got %+v", evs)
		}
		// A first poll gets a cursor.
		c = e.subscribe("", "a")
		if evs := c.end(); len(evs) != 0 || c.primed() != last || c.reader.LastEventID() != last {
			t.Fatalf("first poll got %+v, cursor %q", evs, c.reader.LastEventID())
		}
		if n := e.h.Subscribers(); n != 0 {
			t.Fatalf("%d subscribers registered for polls", n)
		}
	})
	// Per request, through the Subscription hook.
	e := newEnvHooks(t, Config{}, false, &hooks{sub: func(r *http.Request) (Subscription, error) {
		sub := Subscription{Topics: []string{"a"}}
		if r.URL.Query().Has("poll") {
			sub.PollInterval = time.Minute
		}
		return sub, nil
	}})
	id := e.publish("a", "x")
	c := e.get("/events?poll", nil)
	if evs := c.end(); len(evs) != 0 || c.reader.LastEventID() != id {
		t.Fatalf("poll got %+v, cursor %q", evs, c.reader.LastEventID())
	}
	if r, _ := c.reader.Retry(); r != time.Minute {
		t.Fatalf("retry %v", r)
	}
}

// waitArmed waits until n timers of the fake clock are armed: one for
// each live connection.
func waitArmed(t *testing.T, fc fakeClock, n int) {
	t.Helper()
	waitFor(t, strconv.Itoa(n)+" armed timers", func() bool { return fc.armed() == n })
}

func TestHeartbeat(t *testing.T) {
	protocols(t, func(t *testing.T, h2 bool) {
		fc := newFakeClock()
		e := newEnv(t, Config{Clock: fc, Heartbeat: 15 * time.Second}, h2)
		e.publish("a", "seed")
		c := e.subscribe("", "a")
		c.primed()
		for range 3 {
			waitArmed(t, fc, 1)
			fc.Advance(14 * time.Second)
			waitArmed(t, fc, 1) // not fired
			fc.Advance(time.Second)
			select {
			case <-c.comments:
			case <-time.After(hang):
				t.Fatal("no heartbeat")
			}
		}
		select {
		case text := <-c.comments:
			t.Fatalf("extra heartbeat %q", text)
		default:
		}
	})
	// Off with a negative interval: no timer at all.
	fc := newFakeClock()
	e := newEnv(t, Config{Clock: fc, Heartbeat: -1}, false)
	e.publish("a", "seed")
	c := e.subscribe("", "a")
	c.primed()
	if n := fc.armed(); n != 0 {
		t.Fatalf("%d timers armed, want none", n)
	}
}

func TestMaxLifetime(t *testing.T) {
	protocols(t, func(t *testing.T, h2 bool) {
		fc := newFakeClock()
		var jitterMax time.Duration
		e := newEnv(t, Config{Clock: fc, Heartbeat: -1, MaxLifetime: time.Minute, Retry: 250 * time.Millisecond,
			Jitter: func(max time.Duration) time.Duration { jitterMax = max; return max / 2 }}, h2)
		e.publish("a", "seed")
		c := e.subscribe("", "a")
		c.primed()
		waitArmed(t, fc, 1)
		if jitterMax != 6*time.Second {
			t.Errorf("jitter bound %v, want a tenth of the lifetime", jitterMax)
		}
		fc.Advance(56 * time.Second) // the lifetime is 60 s - 3 s of jitter
		id := e.publish("a", "still open")
		if ev := c.next(); ev.ID != id {
			t.Fatalf("got %+v", ev)
		}
		fc.Advance(time.Second)
		c.end()
		if r, ok := c.reader.Retry(); !ok || r != 250*time.Millisecond {
			t.Fatalf("retry %v %v", r, ok)
		}
	})
}

func TestCloseOnDemand(t *testing.T) {
	protocols(t, func(t *testing.T, h2 bool) {
		conns := make(chan *Subscriber, 2)
		var reasons sync.Map
		e := newEnvHooks(t, Config{Retry: 3 * time.Second}, h2, &hooks{onConnect: func(s *Subscriber) { conns <- s }, onDisconnect: func(s *Subscriber, r DisconnectReason) { reasons.Store(s.ID(), r) }})
		e.publish("a", "seed")
		c1 := e.subscribe("", "a")
		s1 := <-conns
		c2 := e.subscribe("", "a")
		s2 := <-conns
		s1.Close()
		c1.end()
		if r, _ := c1.reader.Retry(); r != 3*time.Second {
			t.Fatalf("retry %v", r)
		}
		if !e.h.Disconnect(s2.ID()) {
			t.Fatal("Disconnect: not found")
		}
		c2.end()
		// The client may see the end before the hub is done with it; once
		// OnDisconnect ran, the subscriber is gone.
		waitFor(t, "disconnect hooks", func() bool {
			_, ok1 := reasons.Load(s1.ID())
			_, ok2 := reasons.Load(s2.ID())
			return ok1 && ok2
		})
		if e.h.Disconnect(s2.ID()) || e.h.Disconnect("nope") {
			t.Fatal("Disconnect of a gone subscriber reported success")
		}
		if r, _ := reasons.Load(s1.ID()); r != ReasonClosed {
			t.Fatalf("reason %v", r)
		}
	})
}

func TestShutdown(t *testing.T) {
	protocols(t, func(t *testing.T, h2 bool) {
		checkGoroutines(t)
		e := newEnv(t, Config{Retry: 1500 * time.Millisecond}, h2)
		e.publish("a", "seed")
		var cs []*client
		for range 3 {
			c := e.subscribe("", "a")
			c.primed()
			cs = append(cs, c)
		}
		last := e.publish("a", "last")
		if err := e.h.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			evs := c.end()
			if len(evs) > 1 || (len(evs) == 1 && evs[0].ID != last) {
				t.Fatalf("got %+v", evs)
			}
			if r, ok := c.reader.Retry(); !ok || r != 1500*time.Millisecond {
				t.Fatalf("retry %v %v", r, ok)
			}
		}
		if _, err := e.h.Publish(context.Background(), Message{Topics: []string{"a"}, Event: sse.Event{Data: "x"}}); !errors.Is(err, ErrHubClosed) {
			t.Fatalf("publish after shutdown: %v", err)
		}
		if err := e.h.Complete(context.Background(), ReservedTopicPrefix+"x"); !errors.Is(err, ErrHubClosed) {
			t.Fatalf("complete after shutdown: %v", err)
		}
		c := e.get("/events?topic=a", nil)
		if c.resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("subscribe after shutdown: %d", c.resp.StatusCode)
		}
	})
}

// A client that goes away mid-replay leaves no goroutine behind.
func TestDisconnectMidReplay(t *testing.T) {
	protocols(t, func(t *testing.T, h2 bool) {
		checkGoroutines(t)
		e := newEnv(t, Config{}, h2)
		first := e.publish("a", "0")
		data := make([]byte, 4<<10)
		for i := range 3000 {
			e.publish("a", strconv.Itoa(i)+string(data))
		}
		for range 5 {
			c := e.subscribe(first, "a")
			c.next()
			c.next()
			c.close()
		}
		waitFor(t, "subscribers to leave", func() bool { return e.h.Subscribers() == 0 })
	})
}

// Live events overflowing the replay allowance disconnect the subscriber,
// which then resumes without loss.
func TestReplayOverflow(t *testing.T) {
	m := store.NewMemory(store.MemoryConfig{})
	t.Cleanup(func() { m.Close() })
	gate := &gatedStore{Store: m, gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	e := newEnv(t, Config{Store: gate, QueueEvents: 2, ReplayEvents: 4}, false)
	first := e.publish("a", "0")
	e.publish("a", "1")
	gate.block.Store(true)
	got := make(chan *client)
	go func() { got <- e.subscribe(first, "a") }() // headers wait for the replay
	<-gate.entered
	for i := 2; i < 8; i++ {
		e.publish("a", strconv.Itoa(i))
	}
	waitFor(t, "the overflow", func() bool { return e.h.Stats().Slow == 1 })
	gate.block.Store(false)
	close(gate.gate)
	c := <-got
	c.end()
	c = e.subscribe(first, "a")
	c.primed()
	for i := 1; i < 8; i++ {
		if ev := c.next(); ev.Data != strconv.Itoa(i) {
			t.Fatalf("got %+v, want %d", ev, i)
		}
	}
}

// gatedStore holds History until gate is closed, while block is set.
type gatedStore struct {
	store.Store
	block   atomic.Bool
	gate    chan struct{}
	entered chan struct{}
}

func (g *gatedStore) History(ctx context.Context, cursor string, filter store.Filter) iter.Seq2[store.Event, error] {
	if g.block.Load() {
		g.entered <- struct{}{}
		<-g.gate
	}
	return g.Store.History(ctx, cursor, filter)
}
