package redisstore_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/redisstore"
)

// The benchmarks need a Redis (SLUICE_TEST_REDIS_URL); see BENCHMARKS.md.
//
//	source scripts/services.sh; trap stop_services EXIT
//	go test -run=NONE -bench=. -benchtime=3s ./store/redisstore/

var benchData = strings.Repeat("x", 100)

// BenchmarkAppendParallel appends ~100-byte events from many goroutines
// through one store: the publish throughput of one hub.
func BenchmarkAppendParallel(b *testing.B) {
	for _, par := range []int{16, 64} {
		b.Run(fmt.Sprintf("parallelism=%d", par), func(b *testing.B) {
			s, _ := newStore(b, redisstore.Config{MaxLen: 1_000_000})
			ev := store.Event{Topics: []string{"https://example.com/bench"}, Data: benchData}
			b.SetParallelism(par)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.Append(context.Background(), ev); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
		})
	}
}

// BenchmarkPublishToReceive appends one event at a time and waits until a
// follower receives it: through one in-memory store (the single-hub
// figure), and from store A to a Follow on store B sharing one Redis log
// (two hubs). It reports the latency's p50 and p99.
func BenchmarkPublishToReceive(b *testing.B) {
	b.Run("memory", func(b *testing.B) {
		m := store.NewMemory(store.MemoryConfig{})
		defer m.Close()
		publishToReceive(b, m, m)
	})
	b.Run("redis-two-stores", func(b *testing.B) {
		a, prefix := newStore(b, redisstore.Config{})
		other := open(b, redisURL(b), redisstore.Config{Prefix: prefix})
		publishToReceive(b, a, other)
	})
}

func publishToReceive(b *testing.B, pub, sub store.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	head, err := sub.Head(ctx)
	if err != nil {
		b.Fatal(err)
	}
	got := make(chan store.Event, 1)
	go func() {
		for e, err := range sub.Follow(ctx, head) {
			if err != nil {
				return
			}
			got <- e
		}
	}()
	ev := store.Event{Topics: []string{"https://example.com/bench"}, Data: benchData}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		e, err := pub.Append(ctx, ev)
		if err != nil {
			b.Fatal(err)
		}
		select {
		case r := <-got:
			if r.ID != e.ID {
				b.Fatalf("received %q, appended %q", r.ID, e.ID)
			}
		case <-time.After(hang):
			b.Fatal("the follower received nothing")
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	reportLatency(b, lat)
}

func reportLatency(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) }
	b.ReportMetric(q(0.50), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
}

// BenchmarkHistory1000 replays the 1,000 events after a recent cursor in a
// log of 10,000.
func BenchmarkHistory1000(b *testing.B) {
	s, _ := newStore(b, redisstore.Config{})
	var evs []store.Event
	ctx := context.Background()
	for i := range 10_000 {
		e, err := s.Append(ctx, store.Event{Topics: []string{"https://example.com/bench"}, Data: fmt.Sprint(i, benchData)})
		if err != nil {
			b.Fatal(err)
		}
		evs = append(evs, e)
	}
	cursor := evs[len(evs)-1001].ID
	b.ResetTimer()
	for range b.N {
		n := 0
		for _, err := range s.History(ctx, cursor, nil) {
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != 1000 {
			b.Fatalf("History yielded %d events", n)
		}
	}
}
