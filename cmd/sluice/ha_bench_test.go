package main

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/natsstore"
	"github.com/sluicehq/sluice/store/redisstore"
	"github.com/sluicehq/sluice/store/storetest"
)

// BenchmarkHA measures what replication costs at the store: appends/s from
// 16 and 64 goroutines, and the latency from an append to its delivery to
// a Follow on another store, for an R1 and an R3 stream on one 3-server
// NATS cluster, and for a Redis primary with one replica with wait=0 and
// wait=1. See BENCHMARKS.md.
//
//	source scripts/services.sh; trap stop_services EXIT
//	SLUICE_TEST_HA=1 go test -run=NONE -bench=HA -benchtime=2s ./cmd/sluice/
func BenchmarkHA(b *testing.B) {
	haGuard(b)
	b.Run("nats", func(b *testing.B) {
		_, urls := startNATSCluster(b, 3)
		for _, r := range []int{1, 3} {
			dsn := fmt.Sprintf("%s?stream=BENCH_R%d&replicas=%d", urls, r, r)
			a, c := haBenchStores(b, func(ctx context.Context) (store.Store, error) { return natsstore.Open(ctx, dsn, natsstore.Config{}) })
			// The latency first, on a settled log: after a burst of appends
			// a replicated stream is busy catching its replicas up.
			b.Run(fmt.Sprintf("R%d/publish-to-receive", r), func(b *testing.B) { storetest.BenchmarkPublishToReceive(b, a, c) })
			b.Run(fmt.Sprintf("R%d/append", r), func(b *testing.B) { storetest.BenchmarkAppendParallel(b, a) })
		}
	})
	b.Run("redis", func(b *testing.B) {
		primary := redisNode(b)
		replica := redisNode(b, "--replicaof", "127.0.0.1", strconv.Itoa(primary.Port))
		rc := redisAt(b, replica.Port)
		pollUntil(b, "the replica syncing", func(ctx context.Context) (bool, error) {
			info, err := rc.Info(ctx, "replication").Result()
			return infoField(info, "master_link_status") == "up", err
		})
		for _, w := range []int{0, 1} {
			dsn := fmt.Sprintf("redis://127.0.0.1:%d/0?prefix=bench%d:&wait=%d", primary.Port, w, w)
			a, c := haBenchStores(b, func(ctx context.Context) (store.Store, error) { return redisstore.Open(ctx, dsn, redisstore.Config{}) })
			// The latency first, on a settled log: after a burst of appends
			// a replicated stream is busy catching its replicas up.
			b.Run(fmt.Sprintf("wait=%d/publish-to-receive", w), func(b *testing.B) { storetest.BenchmarkPublishToReceive(b, a, c) })
			b.Run(fmt.Sprintf("wait=%d/append", w), func(b *testing.B) { storetest.BenchmarkAppendParallel(b, a) })
		}
	})
}

// haBenchStores opens two stores on one log (two hubs), closed when b ends.
func haBenchStores(b *testing.B, open func(context.Context) (store.Store, error)) (store.Store, store.Store) {
	var sts []store.Store
	for range 2 {
		pollUntil(b, "opening a store", func(ctx context.Context) (bool, error) {
			st, err := open(ctx)
			if err == nil {
				sts = append(sts, st)
				b.Cleanup(func() { _ = st.Close() })
			}
			return err == nil, err
		})
	}
	return sts[0], sts[1]
}
