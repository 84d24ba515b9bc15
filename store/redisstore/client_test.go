package redisstore

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The three clients of every deployment get their roles' options, as
// go-redis finally applies them (after its defaults): appends and blocked
// reads are never retried by the client (a retried append script whose
// reply was lost would append twice); with wait, the append client awaits
// WAIT's reply (its read timeout outlasts WaitTimeout) and never waits less
// than reads do; blocked reads have a pool of their own that outlasts a
// blocked XREAD. No server is needed: go-redis connects lazily.
func TestClientRoles(t *testing.T) {
	const block = 10 * time.Second
	for _, dsn := range []string{
		"redis://127.0.0.1:1/0",
		"redis://127.0.0.1:1/0?read_timeout=1s",
		"redis://127.0.0.1:1/0?read_timeout=30s&pool_size=100",
		"redis+sentinel://127.0.0.1:1,127.0.0.1:2/0?master_name=m",
		"redis+cluster://127.0.0.1:1,127.0.0.1:2",
	} {
		for _, wait := range []time.Duration{0, 250 * time.Millisecond, 8 * time.Second} {
			c, err := newClients(dsn, block, wait)
			if err != nil {
				t.Fatalf("newClients(%q): %v", dsn, err)
			}
			w, r, b := clientOptions(c.write), clientOptions(c.read), clientOptions(c.block)
			c.close()
			if c.cluster == nil && (w.retries != 0 || b.retries != 0 || r.retries == 0) {
				t.Errorf("%q: retries: append %d, read %d, block %d; want 0, some, 0", dsn, w.retries, r.retries, b.retries)
			}
			if w.readTimeout < r.readTimeout || wait > 0 && w.readTimeout <= wait {
				t.Errorf("%q, wait %v: the append client's read timeout %v; want at least the reads' %v, and beyond WAIT's", dsn, wait, w.readTimeout, r.readTimeout)
			}
			if b.poolSize < 64 || b.poolTimeout <= block {
				t.Errorf("%q: the blocking client's pool: %d connections, %v timeout; want 64 or more, beyond %v", dsn, b.poolSize, b.poolTimeout, block)
			}
		}
	}
}

// options are the settings TestClientRoles checks, as go-redis normalised
// them.
type options struct {
	retries, poolSize        int
	readTimeout, poolTimeout time.Duration
}

func clientOptions(c redis.UniversalClient) options {
	switch c := c.(type) {
	case *redis.Client:
		o := c.Options()
		return options{o.MaxRetries, o.PoolSize, o.ReadTimeout, o.PoolTimeout}
	case *redis.ClusterClient:
		o := c.Options()
		return options{o.MaxRetries, o.PoolSize, o.ReadTimeout, o.PoolTimeout}
	}
	panic("unexpected client")
}
