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
// events are both replayed and queued, which exercises the deduplication.
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
				if _, err := e.h.Publish(context.Background(), topics, sse.Event{Data: strconv.Itoa(i)}); err != nil {
					t.Error(err)
					return
				}
				if i%7 == 0 {
					e.h.Publish(context.Background(), []string{"other"}, sse.Event{Data: "x"})
				}
			}
		}()

		var wg sync.WaitGroup
		errs := make(chan error, clients)
		for k := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(k), 42))
				last, want, conns := seed, 1, 0
				for want <= events {
					conns++
					if publishing.Load() {
						during.Add(1)
					}
					c := e.subscribe(last, "a")
					budget := 1 + rng.IntN(150)
					for budget > 0 && want <= events {
						ev := c.next()
						if ev.Data == "" && ev.ID == last {
							continue // priming
						}
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
		t.Logf("%d connections opened while publishing", during.Load())
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
