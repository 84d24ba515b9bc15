package hub

import (
	"context"
	"fmt"
	"testing"

	"github.com/sluicehq/sluice/sse"
	"github.com/sluicehq/sluice/store"
)

// An enqueue hands its subscriber to the waker once until the stream
// takes the queue: events queued meanwhile go out with the first in the
// same write, and the stream is not woken again for them.
func TestPendUntilTake(t *testing.T) {
	m := store.NewMemory(store.MemoryConfig{})
	t.Cleanup(func() { m.Close() })
	h, err := New(Config{Store: m, Logger: quietLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Shutdown(context.Background()) })
	w := &h.waker
	w.mu.Lock()
	w.started = true // no waker goroutine: the list stays as enqueue leaves it
	w.poke = make(chan struct{}, 1)
	w.mu.Unlock()
	listed := func() int {
		w.mu.Lock()
		defer w.mu.Unlock()
		return len(w.list)
	}
	pe, _ := sse.Prepare(sse.Event{Data: "x"})
	s := newSubscriber(h, Subscription{Topics: []string{"a"}})
	for i := range 3 {
		s.enqueue(item{ev: pe, pos: uint64(i + 1)})
	}
	if n := listed(); n != 1 {
		t.Fatalf("3 enqueues handed the subscriber to the waker %d times, want 1", n)
	}
	if items, _, _ := s.take(nil); len(items) != 3 {
		t.Fatalf("took %d items, want 3", len(items))
	}
	s.enqueue(item{ev: pe, pos: 4})
	if n := listed(); n != 2 {
		t.Fatalf("an enqueue after the take: listed %d times in all, want 2", n)
	}
}

// A fan-out wider than a chunk (the waker polls the network between
// chunks, through a pipe and a goroutine of its own) delivers every event
// to every subscriber once and in order, and the hub's goroutines end
// with Shutdown.
func TestWakerFanOutBeyondChunk(t *testing.T) {
	protocols(t, func(t *testing.T, h2 bool) {
		checkGoroutines(t)
		const subs, events = 3*wakeChunk + 5, 20
		e := newEnv(t, Config{}, h2)
		clients := make([]*client, subs)
		for i := range clients {
			clients[i] = e.subscribe("", "a")
		}
		waitFor(t, "subscribers", func() bool { return e.h.Subscribers() == subs })
		ids := make([]string, events)
		for i := range ids {
			ids[i] = e.publish("a", fmt.Sprint(i))
		}
		for n, c := range clients {
			for i, id := range ids {
				if ev := c.next(); ev.ID != id || ev.Data != fmt.Sprint(i) {
					t.Fatalf("subscriber %d, event %d: %q %q, want %q %q", n, i, ev.ID, ev.Data, id, fmt.Sprint(i))
				}
			}
		}
	})
}

// A hub shut down before its waker ever ran wakes the streams itself.
func TestPendAfterShutdown(t *testing.T) {
	m := store.NewMemory(store.MemoryConfig{})
	t.Cleanup(func() { m.Close() })
	h, err := New(Config{Store: m, Logger: quietLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	pe, _ := sse.Prepare(sse.Event{Data: "x"})
	s := newSubscriber(h, Subscription{Topics: []string{"a"}})
	s.enqueue(item{ev: pe, pos: 1})
	select {
	case <-s.wake:
	default:
		t.Fatal("the enqueue did not wake the stream")
	}
}
