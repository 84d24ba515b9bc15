// Package sharedlog opens, for tests, two stores on one log, as two hub
// instances share it: one Memory store twice, or two clients of the test
// Redis or NATS (SLUICE_TEST_REDIS_URL, SLUICE_TEST_NATS_URL; see
// scripts/services.sh) on a log no other test uses.
package sharedlog

import (
	"context"
	"os"
	"testing"

	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/natsstore"
	"github.com/sluicehq/sluice/store/redisstore"
	"github.com/sluicehq/sluice/store/storetest"
)

// Kinds are the logs Open knows, "memory" first.
var Kinds = []string{"memory", "redis", "nats"}

// Open returns two stores on one new log of the given kind, closed when
// the test ends. Without the server of a kind the test is skipped (failed
// in CI, see storetest.Unavailable).
func Open(t *testing.T, kind string) (a, b store.Store) {
	t.Helper()
	return OpenRetaining(t, kind, 0)
}

// OpenRetaining is Open with a log that retains about maxEvents events
// (zero: the store's default; Redis trims approximately), for tests of
// what outlives the log's retention.
func OpenRetaining(t *testing.T, kind string, maxEvents int) (a, b store.Store) {
	t.Helper()
	ctx := context.Background()
	// two opens two stores, closed when the test ends, after the log is
	// deleted: the test servers serve every test of a run (and JetStream
	// reserves each stream's byte limit).
	two := func(open func() (store.Store, error)) (store.Store, store.Store) {
		t.Helper()
		var st [2]store.Store
		for i := range st {
			s, err := open()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			st[i] = s
		}
		t.Cleanup(func() {
			if err := st[0].(interface{ Delete(context.Context) error }).Delete(ctx); err != nil {
				t.Errorf("sharedlog: delete the log: %v", err)
			}
		})
		return st[0], st[1]
	}
	switch kind {
	case "memory":
		m := store.NewMemory(store.MemoryConfig{MaxEvents: maxEvents})
		t.Cleanup(func() { m.Close() })
		return m, m
	case "redis":
		u := os.Getenv("SLUICE_TEST_REDIS_URL")
		if u == "" {
			storetest.Unavailable(t, "SLUICE_TEST_REDIS_URL is not set: run `source scripts/services.sh` (or `make test`)")
		}
		cfg := redisstore.Config{Prefix: "sluicetest:" + storetest.UniqueName(t, ":", 60) + ":", MaxLen: int64(maxEvents)}
		return two(func() (store.Store, error) { return redisstore.Open(ctx, u, cfg) })
	case "nats":
		u := os.Getenv("SLUICE_TEST_NATS_URL")
		if u == "" {
			storetest.Unavailable(t, "SLUICE_TEST_NATS_URL is not set: run `source scripts/services.sh` (or `make test`)")
		}
		cfg := natsstore.Config{Stream: storetest.UniqueName(t, "_", 60), MaxMsgs: int64(maxEvents)}
		return two(func() (store.Store, error) { return natsstore.Open(ctx, u, cfg) })
	}
	t.Fatalf("sharedlog: unknown kind %q", kind)
	return nil, nil
}
