package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/store"
)

var benchData = strings.Repeat("x", 100)

const benchTopic = "https://example.com/bench"

// BenchmarkAppendParallel appends ~100-byte events to s from 16, then 64
// goroutines (sub-benchmarks): the publish throughput of one hub. It
// reports events/s.
func BenchmarkAppendParallel(b *testing.B, s store.Store) {
	for _, par := range []int{16, 64} {
		b.Run(fmt.Sprintf("parallelism=%d", par), func(b *testing.B) {
			ev := store.Event{Topics: []string{benchTopic}, Data: benchData}
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

// BenchmarkPublishToReceive appends one ~100-byte event at a time to pub
// and waits until a Follow on sub (pub itself, or another store on the same
// log) receives it. It reports the latency's p50 and p99.
func BenchmarkPublishToReceive(b *testing.B, pub, sub store.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	head, err := sub.Head(ctx)
	if err != nil {
		b.Fatal(err)
	}
	fol := StartFollow(ctx, sub, head)
	ev := store.Event{Topics: []string{benchTopic}, Data: benchData}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		e, err := pub.Append(ctx, ev)
		if err != nil {
			b.Fatal(err)
		}
		if r := fol.Next(b, 30*time.Second); r.ID != e.ID {
			b.Fatalf("received %q, appended %q", r.ID, e.ID)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) }
	b.ReportMetric(q(0.50), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
}

// BenchmarkHistory appends 10n events to s, then replays the n events after
// a recent cursor.
func BenchmarkHistory(b *testing.B, s store.Store, n int) {
	var evs []store.Event
	ctx := context.Background()
	for i := range 10 * n {
		e, err := s.Append(ctx, store.Event{Topics: []string{benchTopic}, Data: fmt.Sprint(i, benchData)})
		if err != nil {
			b.Fatal(err)
		}
		evs = append(evs, e)
	}
	cursor := evs[len(evs)-n-1].ID
	b.ResetTimer()
	for range b.N {
		got := 0
		for _, err := range s.History(ctx, cursor, nil) {
			if err != nil {
				b.Fatal(err)
			}
			got++
		}
		if got != n {
			b.Fatalf("History yielded %d events, want %d", got, n)
		}
	}
}

// BenchmarkResume measures what a hub asks of s when a client resumes near
// the end of a log of 1,000 events (10 events to replay): History from a
// generated id; History from a custom id (a hub without store.Positioner);
// and, when s implements store.Positioner, Lookup of the custom id then
// History from the generated id of the event it names (what a hub does to
// check the event against the subscription first).
func BenchmarkResume(b *testing.B, s store.Store) {
	ctx := context.Background()
	var gen string
	for i := range 1000 {
		e := store.Event{Topics: []string{benchTopic}, Data: benchData}
		if i == 989 {
			e.ID = "urn:resume:bench"
		}
		got, err := s.Append(ctx, e)
		if err != nil {
			b.Fatal(err)
		}
		if i == 988 {
			gen = got.ID
		}
	}
	replay := func(b *testing.B, cursor string, want int) {
		n := 0
		for _, err := range s.History(ctx, cursor, nil) {
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != want {
			b.Fatalf("History(%q) yielded %d events, want %d", cursor, n, want)
		}
	}
	b.Run("History(generated)", func(b *testing.B) {
		for range b.N {
			replay(b, gen, 11)
		}
	})
	b.Run("History(custom)", func(b *testing.B) {
		for range b.N {
			replay(b, "urn:resume:bench", 10)
		}
	})
	p, ok := s.(store.Positioner)
	if !ok {
		return
	}
	b.Run("Lookup(custom)+History(PositionID)", func(b *testing.B) {
		for range b.N {
			e, ok, err := p.Lookup(ctx, "urn:resume:bench")
			if err != nil || !ok {
				b.Fatalf("Lookup: %v, %v", ok, err)
			}
			replay(b, p.PositionID(&e), 10)
		}
	})
	b.Run("Lookup(generated)", func(b *testing.B) {
		for range b.N {
			if _, ok, err := p.Lookup(ctx, gen); ok || err != nil {
				b.Fatalf("Lookup(generated): %v, %v", ok, err)
			}
		}
	})
}

// BenchmarkFollow measures what a Follow costs per event (an op is one
// event): it appends b.N ~100-byte events from 64 goroutines, then times a
// Follow from the start of the log through them. A hub runs one Follow, so
// this is its follower's CPU and allocations per event.
func BenchmarkFollow(b *testing.B, s store.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ev := store.Event{Topics: []string{benchTopic}, Data: benchData}
	var wg sync.WaitGroup
	var next atomic.Int64
	for range 64 {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				if _, err := s.Append(ctx, ev); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for _, err := range s.Follow(ctx, "") {
		if err != nil {
			b.Fatal(err)
		}
		if n++; n == b.N {
			break
		}
	}
}
