package hub

import (
	"context"
	"fmt"
	"iter"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/sse"
	"github.com/sluicehq/sluice/store"
)

// TestReconnectStorm publishes continuously while clients read a random
// number of events, drop the connection and resume with the id of the last
// event they consumed, at random moments (also mid-replay): each must see
// every event exactly once, in order.
//
// With a lagging follower (as with a store shared by several hubs), many
// events are both replayed and queued, which exercises the deduplication;
// and one more client now and then resumes with the id of the event just
// published, as if it had read it from another hub: a cursor ahead of this
// hub's follower, after which it must get no event it already had.
func TestReconnectStorm(t *testing.T) {
	for _, lag := range []bool{false, true} {
		t.Run(map[bool]string{false: "Prompt", true: "LaggingFollower"}[lag], func(t *testing.T) {
			protocols(t, func(t *testing.T, h2 bool) { reconnectStorm(t, h2, lag) })
		})
	}
}

func reconnectStorm(t *testing.T, h2, lag bool) {
	{
		checkGoroutines(t)
		const (
			events  = 1000
			clients = 5
		)
		m := store.NewMemory(store.MemoryConfig{})
		t.Cleanup(func() { m.Close() })
		var st store.Store = m
		if lag {
			st = laggyStore{m}
		}
		e := newEnv(t, Config{Store: st}, h2)
		seed := e.publish("a", "seed")

		var progress [clients]atomic.Int64
		minProgress := func() int {
			m := events
			for i := range progress {
				m = min(m, int(progress[i].Load()))
			}
			return m
		}
		var latest struct {
			sync.Mutex
			id string
			i  int
		}
		var pub sync.WaitGroup
		var publishing atomic.Bool
		var during atomic.Int64 // connections opened while publishing
		publishing.Store(true)
		pub.Add(1)
		go func() {
			defer pub.Done()
			defer publishing.Store(false)
			for i := 1; i <= events; i++ {
				// Stay at most a burst ahead of the slowest client, so
				// that reconnections keep happening while publishing.
				for i-minProgress() > 300 {
					time.Sleep(100 * time.Microsecond)
				}
				topics := []string{"a"}
				if i%3 == 0 {
					topics = []string{"b", "a"}
				}
				id, err := e.h.Publish(context.Background(), Message{Topics: topics, Event: sse.Event{Data: strconv.Itoa(i)}})
				if err != nil {
					t.Error(err)
					return
				}
				latest.Lock()
				latest.id, latest.i = id, i
				latest.Unlock()
				if i%7 == 0 {
					e.h.Publish(context.Background(), Message{Topics: []string{"other"}, Event: sse.Event{Data: "x"}})
				}
			}
		}()

		var wg sync.WaitGroup
		var jumps atomic.Int64
		errs := make(chan error, clients)
		for k := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(k), 42))
				last, want, conns := seed, 1, 0
				for want <= events {
					jumper := lag && k == clients-1
					if jumper && conns > 0 {
						latest.Lock()
						if latest.i >= want {
							last, want = latest.id, latest.i+1
							progress[k].Store(int64(latest.i))
							jumps.Add(1)
						}
						latest.Unlock()
						if want > events {
							break
						}
					}
					conns++
					if publishing.Load() {
						during.Add(1)
					}
					c := e.subscribe(last, "a")
					budget := 1 + rng.IntN(150)
					if jumper {
						budget = 1 + rng.IntN(5)
					}
					for budget > 0 && want <= events {
						ev := c.next()
						if ev.Data != strconv.Itoa(want) {
							errs <- fmt.Errorf("client %d connection %d: got %q (id %s), want %d", k, conns, ev.Data, ev.ID, want)
							progress[k].Store(events) // do not hold the publisher back
							c.close()
							return
						}
						last = ev.ID
						progress[k].Store(int64(want))
						want++
						budget--
					}
					c.close()
				}
				t.Logf("client %d: %d connections", k, conns)
			}()
		}
		wg.Wait()
		pub.Wait()
		close(errs)
		t.Logf("%d connections opened while publishing, %d with a cursor ahead", during.Load(), jumps.Load())
		if during.Load() < clients*3 {
			t.Errorf("only %d reconnections happened while publishing: the test did not exercise the handoff", during.Load())
		}
		for err := range errs {
			t.Error(err)
		}
	}
}

// laggyStore makes Follow fall behind the log now and then.
type laggyStore struct{ store.Store }

// Resolve implements store.Resolver with the wrapped store's.
func (l laggyStore) Resolve(ctx context.Context, cursor string) (uint64, error) {
	return l.Store.(store.Resolver).Resolve(ctx, cursor)
}

func (l laggyStore) Follow(ctx context.Context, cursor string) iter.Seq2[store.Event, error] {
	return func(yield func(store.Event, error) bool) {
		n := 0
		for ev, err := range l.Store.Follow(ctx, cursor) {
			if n++; n%16 == 0 {
				time.Sleep(2 * time.Millisecond)
			}
			if !yield(ev, err) {
				return
			}
		}
	}
}

// TestResumeAheadOfFollower resumes a client with the id Publish returned
// while the hub's follower has not dispatched it yet (as when the client
// read it from another hub on a shared store): History after it is empty,
// and the events up to it, still to come from the follower, must not be
// delivered again.
func TestResumeAheadOfFollower(t *testing.T) {
	protocols(t, func(t *testing.T, h2 bool) {
		m := store.NewMemory(store.MemoryConfig{})
		t.Cleanup(func() { m.Close() })
		st := &stalledStore{laggyStore{m}, make(chan struct{})}
		e := newEnv(t, Config{Store: st}, h2)
		e.subscribe("", "a").close() // the follower follows from the head
		var ids []string
		for i := range 3 {
			ids = append(ids, e.publish("a", strconv.Itoa(i)))
		}
		c := e.subscribe(ids[2], "a")
		if id := c.primed(); id != ids[2] {
			t.Fatalf("primed with %s, want the cursor %s", id, ids[2])
		}
		close(st.release)
		want := e.publish("a", "new")
		if ev := c.next(); ev.ID != want {
			t.Fatalf("got %+v (data %q), want the new event %s", ev, ev.Data, want)
		}
	})
}

// stalledStore holds its Follow until release is closed.
type stalledStore struct {
	laggyStore
	release chan struct{}
}

func (s *stalledStore) Follow(ctx context.Context, cursor string) iter.Seq2[store.Event, error] {
	return func(yield func(store.Event, error) bool) {
		for ev, err := range s.laggyStore.Store.Follow(ctx, cursor) {
			select {
			case <-s.release:
			case <-ctx.Done():
				return
			}
			if !yield(ev, err) {
				return
			}
		}
	}
}

// TestStartBehindFollower opens streams while the hub's follower has not
// dispatched the latest events yet (as on a store shared by several hubs):
// a stream without Last-Event-ID, and one whose Last-Event-ID is unknown
// (reset), are given the hub's position as their cursor, not the store's
// head, so the events still to come from the follower arrive once, in
// order, after it, and never behind a cursor that already claims them.
func TestStartBehindFollower(t *testing.T) {
	protocols(t, func(t *testing.T, h2 bool) {
		m := store.NewMemory(store.MemoryConfig{})
		t.Cleanup(func() { m.Close() })
		seed, err := m.Append(context.Background(), store.Event{Topics: []string{"a"}, Data: "seed"})
		if err != nil {
			t.Fatal(err)
		}
		st := &stalledStore{laggyStore{m}, make(chan struct{})}
		e := newEnv(t, Config{Store: st}, h2)
		e.subscribe("", "a").close() // the follower follows from the head: seed
		var ids []string
		for i := range 3 {
			ids = append(ids, e.publish("a", strconv.Itoa(i)))
		}
		if p := e.h.Stats().Position; p != seed.ID {
			t.Fatalf("Stats().Position %q while the follower stalls, want %s", p, seed.ID)
		}
		fresh := e.subscribe("", "a")
		if id := fresh.primed(); id != seed.ID {
			t.Fatalf("primed with %s, want the hub's position %s", id, seed.ID)
		}
		reset := e.subscribe("x-unknown", "a")
		if ev := reset.next(); ev.Type != ResetEventType || ev.ID != seed.ID {
			t.Fatalf("reset %+v, want one to the hub's position %s", ev, seed.ID)
		}
		close(st.release)
		ids = append(ids, e.publish("a", "new"))
		for _, c := range []*client{fresh, reset} {
			for _, want := range ids {
				if ev := c.next(); ev.ID != want {
					t.Fatalf("got %+v (data %q), want %s", ev, ev.Data, want)
				}
			}
		}
	})
}
