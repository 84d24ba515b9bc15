package natsstore_test

import (
	"context"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/natsstore"
	"github.com/sluicehq/sluice/store/storetest"
)

// The benchmarks need a NATS server with JetStream (SLUICE_TEST_NATS_URL); see BENCHMARKS.md.
//
//	source scripts/services.sh; trap stop_services EXIT
//	go test -run=NONE -bench=. -benchtime=3s ./store/natsstore/

// BenchmarkAppendParallel appends ~100-byte events from many goroutines
// through one store: the publish throughput of one hub.
func BenchmarkAppendParallel(b *testing.B) {
	s, _ := newStore(b, natsstore.Config{})
	storetest.BenchmarkAppendParallel(b, s)
}

// BenchmarkPublishToReceive appends one event at a time and waits until a
// follower receives it: through one in-memory store (the single-hub
// figure), and from store A to a Follow on store B sharing one JetStream stream
// (two hubs). It reports the latency's p50 and p99.
func BenchmarkPublishToReceive(b *testing.B) {
	b.Run("memory", func(b *testing.B) {
		m := store.NewMemory(store.MemoryConfig{})
		defer m.Close()
		storetest.BenchmarkPublishToReceive(b, m, m)
	})
	b.Run("nats-two-stores", func(b *testing.B) {
		a, name := newStore(b, natsstore.Config{})
		storetest.BenchmarkPublishToReceive(b, a, open(b, natsURL(b), natsstore.Config{Stream: name}))
	})
}

// BenchmarkHistory1000 replays the 1,000 events after a recent cursor in a
// log of 10,000: with batched direct gets where the server has them
// (nats-server 2.11+), and with an ephemeral consumer (older servers).
func BenchmarkHistory1000(b *testing.B) {
	b.Run("direct", func(b *testing.B) {
		s, _ := newStore(b, natsstore.Config{})
		if !natsstore.DirectHistory(s) {
			b.Skip("the server does not batch direct gets (nats-server < 2.11)")
		}
		storetest.BenchmarkHistory(b, s, 1000)
	})
	b.Run("consumer", func(b *testing.B) {
		s, _ := newStore(b, natsstore.Config{})
		natsstore.UseConsumerHistory(s)
		storetest.BenchmarkHistory(b, s, 1000)
	})
}

// BenchmarkResume compares a resume from a generated id, from a custom id,
// and from a custom id looked up first (store.Positioner), as a hub does
// to check the event it names against the subscription.
func BenchmarkResume(b *testing.B) {
	s, _ := newStore(b, natsstore.Config{})
	storetest.BenchmarkResume(b, s)
}

// BenchmarkFollow follows a backlog of events: the follower's cost per
// event.
func BenchmarkFollow(b *testing.B) {
	s, _ := newStore(b, natsstore.Config{})
	storetest.BenchmarkFollow(b, s)
}

// BenchmarkAppendChannel appends ~100-byte events one at a time (the
// latency of one Append) and from 16 goroutines (throughput): events to a
// topic that is not a channel, events to one channel, events to a
// channel per goroutine, and events to a signal (store.SignalPrefix). A store that keeps channels (store.Keeper)
// also writes the events of channels to its kept stream.
func BenchmarkAppendChannel(b *testing.B) {
	data := strings.Repeat("x", 100)
	for _, tc := range []struct {
		name  string
		topic func() string
	}{
		{"topic", func() string { return "https://example.com/bench" }},
		{"channel", func() string { return store.ChannelPrefix + "bench" }},
		{"channels", func() string { return store.ChannelPrefix + "bench/" + strconv.FormatUint(rand.Uint64(), 36) }},
		// A signal (a relay's lease renewals) is private but not kept.
		{"signal", func() string { return store.SignalPrefix + "bench" }},
	} {
		if tc.name != "channels" {
			b.Run(tc.name+"/sequential", func(b *testing.B) {
				s, _ := newStore(b, natsstore.Config{})
				ev := store.Event{Topics: []string{tc.topic()}, Data: data}
				for b.Loop() {
					if _, err := s.Append(context.Background(), ev); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		b.Run(tc.name+"/parallelism=16", func(b *testing.B) {
			s, _ := newStore(b, natsstore.Config{})
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				ev := store.Event{Topics: []string{tc.topic()}, Data: data}
				for pb.Next() {
					if _, err := s.Append(context.Background(), ev); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
