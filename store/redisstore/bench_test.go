package redisstore_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/redisstore"
	"github.com/sluicehq/sluice/store/storetest"
)

// The benchmarks need a Redis (SLUICE_TEST_REDIS_URL); see BENCHMARKS.md.
//
//	source scripts/services.sh; trap stop_services EXIT
//	go test -run=NONE -bench=. -benchtime=3s ./store/redisstore/

// BenchmarkAppendParallel appends ~100-byte events from many goroutines
// through one store: the publish throughput of one hub.
func BenchmarkAppendParallel(b *testing.B) {
	s, _ := newStore(b, redisstore.Config{MaxLen: 1_000_000})
	storetest.BenchmarkAppendParallel(b, s)
}

// BenchmarkPublishToReceive appends one event at a time and waits until a
// follower receives it: through one in-memory store (the single-hub
// figure), and from store A to a Follow on store B sharing one Redis log
// (two hubs). It reports the latency's p50 and p99.
func BenchmarkPublishToReceive(b *testing.B) {
	b.Run("memory", func(b *testing.B) {
		m := store.NewMemory(store.MemoryConfig{})
		defer m.Close()
		storetest.BenchmarkPublishToReceive(b, m, m)
	})
	b.Run("redis-two-stores", func(b *testing.B) {
		a, name := newStore(b, redisstore.Config{})
		storetest.BenchmarkPublishToReceive(b, a, open(b, redisURL(b), redisstore.Config{Prefix: name}))
	})
}

// BenchmarkHistory1000 replays the 1,000 events after a recent cursor in a
// log of 10,000.
func BenchmarkHistory1000(b *testing.B) {
	s, _ := newStore(b, redisstore.Config{})
	storetest.BenchmarkHistory(b, s, 1000)
}

// BenchmarkResume compares a resume from a generated id, from a custom id,
// and from a custom id looked up first (store.Positioner), as a hub does
// to check the event it names against the subscription.
func BenchmarkResume(b *testing.B) {
	s, _ := newStore(b, redisstore.Config{})
	storetest.BenchmarkResume(b, s)
}

// BenchmarkFollow follows a backlog of events: the follower's cost per
// event.
func BenchmarkFollow(b *testing.B) {
	s, _ := newStore(b, redisstore.Config{})
	storetest.BenchmarkFollow(b, s)
}

// BenchmarkAppendChannel compares appends of ~100-byte events to a public
// topic with appends to channels (store.IsChannel topics), which the store
// also keeps (store.Keeper): to 1,000 channels in turn (each event of a
// batch to another channel, as sessions' events are) and to 10 (as a few
// streams' tokens are); one at a time (the latency of an append) and from
// 32 goroutines (throughput).
func BenchmarkAppendChannel(b *testing.B) {
	for _, kind := range []string{"public", "channels=1000", "channels=10"} {
		topic := func(i int64) string { return "https://example.com/bench" }
		var n int64
		if _, err := fmt.Sscanf(kind, "channels=%d", &n); err == nil {
			topic = func(i int64) string { return fmt.Sprintf("%sbench/%d", store.ChannelPrefix, i%n) }
		}
		b.Run(kind+"/serial", func(b *testing.B) {
			s, _ := newStore(b, redisstore.Config{MaxLen: 1_000_000})
			ctx := context.Background()
			b.ResetTimer()
			for i := range int64(b.N) {
				if _, err := s.Append(ctx, store.Event{Topics: []string{topic(i)}, Data: benchData}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(kind+"/parallel", func(b *testing.B) {
			s, _ := newStore(b, redisstore.Config{MaxLen: 1_000_000})
			var n atomic.Int64
			b.SetParallelism(16)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.Append(context.Background(), store.Event{Topics: []string{topic(n.Add(1))}, Data: benchData}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
		})
	}
}

var benchData = strings.Repeat("x", 100)
