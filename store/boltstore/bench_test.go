package boltstore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/store"
)

var benchData = strings.Repeat("x", 100)

// fill appends n 100-byte events from many goroutines, so that commits are
// full batches, and returns the id of the event 1,001st from the end.
func fill(tb testing.TB, s *Store, n int) string {
	const workers = 2048
	var next atomic.Int64
	var cursor atomic.Value
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				e, err := s.Append(context.Background(), store.Event{Topics: []string{"https://example.com/t"}, Data: benchData})
				if err != nil {
					errs <- err
					return
				}
				if e.Pos == uint64(n-1000) {
					cursor.Store(e.ID)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatal(err)
	}
	c, _ := cursor.Load().(string)
	return c
}

// BenchmarkReplay1000 measures replaying the 1,000 events after a recent
// cursor from files holding 10k, 100k and 1M events.
func BenchmarkReplay1000(b *testing.B) {
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("history=%dk", n/1000), func(b *testing.B) {
			s, err := Open(filepath.Join(b.TempDir(), "events.db"), Config{MaxEvents: n})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			cursor := fill(b, s, n)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				k := 0
				for _, err := range s.History(ctx, cursor, nil) {
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

// appendParallel runs b.N durable appends of 100-byte events from the
// given number of publishers, each waiting for its append to be
// acknowledged before the next, and reports events/s.
func appendParallel(b *testing.B, publishers int) {
	appendTopics(b, publishers, func(int) string { return "https://example.com/t" })
}

// appendTopics is appendParallel with publisher i appending to topic(i).
func appendTopics(b *testing.B, publishers int, topic func(i int) string) {
	s, err := Open(filepath.Join(b.TempDir(), "events.db"), Config{MaxEvents: 100_000})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := range publishers {
		wg.Add(1)
		tp := []string{topic(i)}
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if _, err := s.Append(ctx, store.Event{Topics: tp, Data: benchData}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkBoltAppendParallel16 is 16 concurrent publishers.
func BenchmarkBoltAppendParallel16(b *testing.B) { appendParallel(b, 16) }

// BenchmarkBoltAppendPublishers shows how group commit scales with the
// number of appends in flight.
func BenchmarkBoltAppendPublishers(b *testing.B) {
	for _, p := range []int{1, 16, 256, 1024} {
		b.Run(fmt.Sprintf("publishers=%d", p), func(b *testing.B) { appendParallel(b, p) })
	}
}

// BenchmarkBoltAppendChannel compares the append of an event to a public
// topic with that of an event to a channel (each publisher its own), which
// a store.Keeper also keeps.
func BenchmarkBoltAppendChannel(b *testing.B) {
	for _, kind := range []string{"public", "channel"} {
		for _, p := range []int{1, 16} {
			b.Run(fmt.Sprintf("topic=%s/publishers=%d", kind, p), func(b *testing.B) {
				appendTopics(b, p, func(i int) string {
					if kind == "public" {
						return "https://example.com/t"
					}
					return fmt.Sprintf("%sbench/%d", store.ChannelPrefix, i)
				})
			})
		}
	}
}

// BenchmarkBoltFileSize1M appends 1M 100-byte events with retention 100k
// and reports the file size. The work is fixed: run it with -benchtime=1x.
func BenchmarkBoltFileSize1M(b *testing.B) {
	path := filepath.Join(b.TempDir(), "events.db")
	s, err := Open(path, Config{MaxEvents: 100_000})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	fill(b, s, 1_000_000)
	elapsed := time.Since(start)
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(fi.Size())/(1<<20), "MiB")
	b.ReportMetric(1e6/elapsed.Seconds(), "events/s")
}
