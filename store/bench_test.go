package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/store"
)

var benchData = strings.Repeat("x", 100)

// BenchmarkMemoryAppend measures one Append of a 100-byte event to a full
// default store (each append also evicts the oldest event): on a public
// topic, and on one of 1,000 channels in turn, which the store also keeps
// (store.Keeper).
func BenchmarkMemoryAppend(b *testing.B) {
	for _, channels := range []int{0, 1000} {
		name := "topic"
		if channels > 0 {
			name = "channel"
		}
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			m := store.NewMemory(store.MemoryConfig{})
			defer m.Close()
			evs := []store.Event{{Topics: []string{"https://example.com/t"}, Data: benchData}}
			if channels > 0 {
				evs = evs[:0]
				for i := range channels {
					evs = append(evs, store.Event{Topics: []string{fmt.Sprintf("sluice:session:%d", i)}, Data: benchData})
				}
			}
			for i := range store.DefaultMemoryMaxEvents {
				if _, err := m.Append(ctx, evs[i%len(evs)]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := m.Append(ctx, evs[i%len(evs)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkMemoryReplay1000 measures replaying the 1,000 events after a
// recent cursor, as the history grows: the cost must not depend on it.
func BenchmarkMemoryReplay1000(b *testing.B) {
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("history=%dk", n/1000), func(b *testing.B) {
			ctx := context.Background()
			m := store.NewMemory(store.MemoryConfig{MaxEvents: n, MaxBytes: -1})
			defer m.Close()
			e := store.Event{Topics: []string{"https://example.com/t"}, Data: benchData}
			var cursor string
			for i := range n {
				got, err := m.Append(ctx, e)
				if err != nil {
					b.Fatal(err)
				}
				if i == n-1001 {
					cursor = got.ID
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				k := 0
				for _, err := range m.History(ctx, cursor, nil) {
					if err != nil {
						b.Fatal(err)
					}
					k++
				}
				if k != 1000 {
					b.Fatalf("replayed %d events", k)
				}
			}
		})
	}
}
