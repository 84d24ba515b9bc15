package redisstore_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicehq/sluice/store/redisstore"
	"github.com/sluicehq/sluice/store/storetest"
)

const hang = 30 * time.Second // fails a wait instead of hanging

// redisURL returns the test Redis's URL, skipping (or, in CI, failing) the
// test when there is none.
func redisURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("SLUICE_TEST_REDIS_URL")
	if u == "" {
		msg := "SLUICE_TEST_REDIS_URL is not set: run `source scripts/services.sh` (or `make test`) to start a throwaway redis-server"
		storetest.Unavailable(t, msg)
	}
	return u
}

// uniquePrefix returns a key prefix no other test run uses.
func uniquePrefix(t testing.TB) string {
	return "sluicetest:" + storetest.UniqueName(t, ":", 60) + ":"
}

// deleteKeys removes every key of prefix when t ends, with a client of its
// own (the stores are closed by then).
func deleteKeys(t testing.TB, url, prefix string) {
	t.Cleanup(func() {
		opts, err := redis.ParseURL(url)
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		c := redis.NewClient(opts)
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		keys, err := prefixKeys(ctx, c, prefix)
		if err == nil && len(keys) > 0 {
			err = c.Del(ctx, keys...).Err()
		}
		if err != nil {
			t.Logf("cleanup: deleting %s*: %v", prefix, err)
		}
	})
}

// prefixKeys returns the keys under prefix (which holds no glob
// character).
func prefixKeys(ctx context.Context, c *redis.Client, prefix string) ([]string, error) {
	var keys []string
	it := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for it.Next(ctx) {
		keys = append(keys, it.Val())
	}
	return keys, it.Err()
}

// open opens a store on url under prefix, closed when t ends.
func open(t testing.TB, url string, cfg redisstore.Config) *redisstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := redisstore.Open(ctx, url, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// newStore opens a store on the test Redis under a new prefix, deleted when
// t ends.
func newStore(t testing.TB, cfg redisstore.Config) (*redisstore.Store, string) {
	t.Helper()
	url := redisURL(t)
	if cfg.Prefix == "" {
		cfg.Prefix = uniquePrefix(t)
	}
	deleteKeys(t, url, cfg.Prefix)
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = 5 * time.Millisecond
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 200 * time.Millisecond
	}
	return open(t, url, cfg), cfg.Prefix
}
