package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/hub"
	"github.com/sluicehq/sluice/sse"
	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/natsstore"
	"github.com/sluicehq/sluice/store/redisstore"
)

// BenchmarkPublishTwoHubs is what one embedded hub sustains when HTTP is not
// the bound (issue 7: >= 50,000 publishes/s through one hub): 64 or 256
// goroutines call hub.Publish on hub A, whose store is Redis, NATS JetStream
// or (for reference) memory, and one subscriber of hub B, another hub on the
// same log through a store of its own, receives every event over HTTP and
// checks each publisher's events arrive once and in order. publishes/s is the rate
// of hub A's Publish calls; delivered/s counts until hub B's subscriber has
// the last event.
//
//	source scripts/services.sh; trap stop_services EXIT
//	go test -run NONE -bench PublishTwoHubs -benchtime 200000x -count 3 ./cmd/sluice/
//
// Redis and NATS need SLUICE_TEST_REDIS_URL and SLUICE_TEST_NATS_URL, and
// their sub-benchmarks skip without them.
func BenchmarkPublishTwoHubs(b *testing.B) {
	for _, kind := range []string{"memory", "redis", "nats"} {
		for _, pubs := range []int{64, 256} {
			b.Run(fmt.Sprintf("%s/publishers=%d", kind, pubs), func(b *testing.B) {
				stA, stB := benchStores(b, kind)
				benchPublishTwoHubs(b, stA, stB, pubs)
			})
		}
	}
}

// benchStores returns two stores on one new log of kind, removed at the end.
func benchStores(b *testing.B, kind string) (store.Store, store.Store) {
	b.Helper()
	if kind == "memory" {
		st := store.NewMemory(store.MemoryConfig{MaxEvents: 1 << 20})
		b.Cleanup(func() { st.Close() })
		return st, st // one store: the two hubs follow one log
	}
	dsn := uniqueDSN(b, kind, "sluice_bench_")
	ctx, cancel := context.WithTimeout(context.Background(), storeOpenTimeout)
	defer cancel()
	open := func() (store.Store, error) {
		if kind == "redis" {
			return redisstore.Open(ctx, dsn, redisstore.Config{})
		}
		return natsstore.Open(ctx, dsn, natsstore.Config{})
	}
	var sts [2]store.Store
	for i := range sts {
		st, err := open()
		if err != nil {
			b.Fatalf("open %s store: %v", kind, err)
		}
		sts[i] = st
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), storeOpenTimeout)
		defer cancel()
		var err error
		switch st := sts[0].(type) {
		case *redisstore.Store:
			err = st.Delete(ctx)
		case *natsstore.Store:
			err = st.Delete(ctx)
		}
		if err != nil {
			b.Logf("deleting the %s log: %v", kind, err)
		}
		for _, st := range sts {
			st.Close()
		}
	})
	return sts[0], sts[1]
}

// twoHubs starts hub A on stA and hub B on stB (configured by cfgB) served
// by an HTTP test server, all stopped at the end of the benchmark.
func twoHubs(b *testing.B, stA, stB store.Store, cfgB hub.Config) (*hub.Hub, *httptest.Server) {
	b.Helper()
	quiet := discardLogger()
	hubA, err := hub.New(hub.Config{Store: stA, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	cfgB.Store, cfgB.Logger = stB, quiet
	hubB, err := hub.New(cfgB)
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(hubB)
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = hubA.Shutdown(ctx)
		_ = hubB.Shutdown(ctx)
		srv.Close()
	})
	return hubA, srv
}

func benchPublishTwoHubs(b *testing.B, stA, stB store.Store, publishers int) {
	// Hub B's subscriber must not be the bound: a queue deep enough for
	// the whole run.
	hubA, srv := twoHubs(b, stA, stB, hub.Config{QueueEvents: b.N + 1024, QueueBytes: 1 << 30})

	resp, err := http.Get(srv.URL + "/?topic=bench")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("subscribe on hub B: %s", resp.Status)
	}
	// The subscriber is registered once the head arrived. It checks that
	// each publisher's events come once and in order.
	var received atomic.Int64
	var lastRecv time.Time
	readErr := make(chan error, 1)
	go func() {
		next := make([]int64, publishers)
		rd := sse.NewReader(resp.Body)
		for received.Load() < int64(b.N) {
			ev, err := rd.Next()
			if err != nil {
				readErr <- fmt.Errorf("hub B's stream ended after %d of %d events: %w", received.Load(), b.N, err)
				return
			}
			p, s, ok := strings.Cut(ev.Data, ":")
			pub, err1 := strconv.Atoi(p)
			seq, err2 := strconv.ParseInt(s, 10, 64)
			if !ok || err1 != nil || err2 != nil || pub < 0 || pub >= publishers {
				readErr <- fmt.Errorf("unexpected event %+v", ev)
				return
			}
			if seq != next[pub] {
				readErr <- fmt.Errorf("publisher %d: event %d arrived when %d was due (lost, duplicated or reordered)", pub, seq, next[pub])
				return
			}
			next[pub]++
			received.Add(1)
		}
		lastRecv = time.Now()
		readErr <- nil
	}()

	var (
		claimed atomic.Int64
		wg      sync.WaitGroup
		failed  atomic.Pointer[error]
		topics  = []string{"bench"}
		ctx     = context.Background()
	)
	b.ResetTimer()
	start := time.Now()
	for pub := range publishers {
		wg.Go(func() {
			data := make([]byte, 0, 32)
			for seq := int64(0); claimed.Add(1) <= int64(b.N); seq++ {
				data = strconv.AppendInt(append(strconv.AppendInt(data[:0], int64(pub), 10), ':'), seq, 10)
				if _, err := hubA.Publish(ctx, hub.Message{Topics: topics, Event: sse.Event{Data: string(data)}}); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	published := time.Since(start)
	if errp := failed.Load(); errp != nil {
		b.Fatalf("publish: %v", *errp)
	}
	if err := <-readErr; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/published.Seconds(), "publishes/s")
	b.ReportMetric(float64(b.N)/lastRecv.Sub(start).Seconds(), "delivered/s")
}
