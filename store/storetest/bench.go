package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
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
