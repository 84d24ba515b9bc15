package redisstore

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrNotReplicated reports an append that Redis applied but that fewer
// replicas than Config.Wait acknowledged within Config.WaitTimeout: the
// events are on the primary (subscribers may receive them), and a failover
// to a replica that lacks them loses them.
var ErrNotReplicated = errors.New("redisstore: not acknowledged by enough replicas")

// DefaultWaitTimeout bounds WAIT when Config.Wait is set and
// Config.WaitTimeout is zero.
const DefaultWaitTimeout = time.Second

// The DSN schemes of the three deployments: a single server (or a managed
// endpoint), Sentinel-managed failover, Redis Cluster.
const (
	modeSingle   = ""
	modeSentinel = "sentinel"
	modeCluster  = "cluster"
)

// dsnMode returns the deployment a DSN's scheme names and the scheme
// go-redis knows ("redis" or "rediss").
func dsnMode(scheme string) (mode, base string, err error) {
	base, mode, _ = strings.Cut(strings.ToLower(scheme), "+")
	if base != "redis" && base != "rediss" {
		return "", "", fmt.Errorf("unsupported scheme %q: want redis, rediss, redis+sentinel, rediss+sentinel, redis+cluster or rediss+cluster", scheme)
	}
	switch mode {
	case modeSingle, modeSentinel, modeCluster:
		return mode, base, nil
	}
	return "", "", fmt.Errorf("unsupported scheme %q: want redis, rediss, redis+sentinel, rediss+sentinel, redis+cluster or rediss+cluster", scheme)
}

// goRedisURL turns a sentinel or cluster DSN (without the store's
// settings) into the URL go-redis parses: the first host stays the URL's,
// the others become addr parameters, and the scheme loses its "+mode".
func goRedisURL(u *url.URL, base string) string {
	v := *u
	v.Scheme = base
	hosts := strings.Split(u.Host, ",")
	v.Host = hosts[0]
	q := v.Query()
	for _, h := range hosts[1:] {
		if h != "" {
			q.Add("addr", h)
		}
	}
	v.RawQuery = q.Encode()
	return v.String()
}

// clients are the store's three clients: appends (never retried by the
// client: a retried script whose reply was lost would append twice), reads,
// and Follow's blocked XREADs (a pool of their own, so they never delay
// appends; not retried by the client either, so that Follow sees every
// connection loss and checks the log before it reads on).
type clients struct {
	write, read, block redis.UniversalClient
	cluster            *redis.ClusterClient // the write client, with Redis Cluster
}

// newClients parses a DSN without the store's settings and creates the
// clients of its deployment. waitTimeout, when positive, raises the append
// client's read timeout above it, so that WAIT's reply is awaited.
func newClients(dsn string, blockTimeout, waitTimeout time.Duration) (clients, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return clients{}, err
	}
	mode, base, err := dsnMode(u.Scheme)
	if err != nil {
		return clients{}, err
	}
	var c clients
	switch mode {
	case modeSingle:
		opts, err := redis.ParseURL(dsn)
		if err != nil {
			return clients{}, err
		}
		w, r, b := roles(opts, func(o *redis.Options) knobs {
			return knobs{&o.MaxRetries, &o.PoolSize, &o.ReadTimeout, &o.PoolTimeout}
		}, blockTimeout, waitTimeout)
		c.write, c.read, c.block = redis.NewClient(w), redis.NewClient(r), redis.NewClient(b)
	case modeSentinel:
		opts, err := redis.ParseFailoverURL(goRedisURL(u, base))
		if err != nil {
			return clients{}, err
		}
		if opts.MasterName == "" {
			return clients{}, errors.New("a Sentinel DSN needs master_name=NAME (the name the Sentinels monitor)")
		}
		w, r, b := roles(opts, func(o *redis.FailoverOptions) knobs {
			return knobs{&o.MaxRetries, &o.PoolSize, &o.ReadTimeout, &o.PoolTimeout}
		}, blockTimeout, waitTimeout)
		c.write, c.read, c.block = redis.NewFailoverClient(w), redis.NewFailoverClient(r), redis.NewFailoverClient(b)
	case modeCluster:
		opts, err := redis.ParseClusterURL(goRedisURL(u, base))
		if err != nil {
			return clients{}, err
		}
		w, r, b := roles(opts, func(o *redis.ClusterOptions) knobs {
			return knobs{&o.MaxRetries, &o.PoolSize, &o.ReadTimeout, &o.PoolTimeout}
		}, blockTimeout, waitTimeout)
		c.cluster = redis.NewClusterClient(w)
		c.write, c.read, c.block = c.cluster, redis.NewClusterClient(r), redis.NewClusterClient(b)
	}
	return c, nil
}

// goRedisReadTimeout is the read timeout go-redis (v9.23) gives a client
// whose options leave it zero (TestClientRoles notices a change).
const goRedisReadTimeout = 5 * time.Second

// knobs are the fields of go-redis's options (Options, FailoverOptions,
// ClusterOptions) that differ between the store's three clients.
type knobs struct {
	maxRetries, poolSize     *int
	readTimeout, poolTimeout *time.Duration
}

// roles returns the options of the append, read and block clients, copies
// of opts whose fields fields exposes: the append and block clients never
// retry; the append client's read timeout outlasts WAIT's (waitTimeout,
// when positive); the block client's pool holds 64 blocked XREADs or more
// and waits for a connection longer than one blocks (blockTimeout).
func roles[O any](opts *O, fields func(*O) knobs, blockTimeout, waitTimeout time.Duration) (w, r, b *O) {
	wo, ro, bo := *opts, *opts, *opts
	wk, bk := fields(&wo), fields(&bo)
	*wk.maxRetries = -1
	if rt := *wk.readTimeout; waitTimeout > 0 && rt >= 0 {
		if rt == 0 {
			rt = goRedisReadTimeout
		}
		*wk.readTimeout = max(rt, waitTimeout+time.Second)
	}
	*bk.maxRetries = -1
	*bk.poolSize = max(*bk.poolSize, 64)
	*bk.poolTimeout = max(*bk.poolTimeout, blockTimeout+5*time.Second)
	return &wo, &ro, &bo
}

func (c clients) close() {
	_ = c.write.Close()
	_ = c.read.Close()
	_ = c.block.Close()
}

// hasHashTag reports whether every key under prefix hashes by a hash tag
// of the prefix ("{...}" with something inside), so that the store's keys
// share a Redis Cluster slot.
func hasHashTag(prefix string) bool {
	i := strings.IndexByte(prefix, '{')
	if i < 0 {
		return false
	}
	j := strings.IndexByte(prefix[i+1:], '}')
	return j > 0
}

// runAppend runs the append script with keys and args, and with
// Config.Wait, WAIT in the same round trip (a pipeline on the primary that
// holds the log).
// With Redis Cluster it sends them to the node of the log's slot through
// that node's client, which never retries (the cluster client retries a
// command whose reply was lost, which would append twice).
func (s *Store) runAppend(keys []string, args []any) ([]any, error) {
	var c redis.Cmdable = s.write
	if s.cluster != nil {
		node, err := s.cluster.MasterForKey(s.ctx, s.kLog)
		if err != nil {
			s.clusterError(err)
			return nil, err
		}
		c = node
	}
	if s.wait <= 0 {
		res, err := appendScript.Run(s.ctx, c, keys, args...).Slice()
		s.clusterError(err)
		return res, err
	}
	run := func(eval bool) (*redis.Cmd, *redis.Cmd) {
		pipe := c.Pipeline()
		var sc *redis.Cmd
		if eval {
			sc = appendScript.Eval(s.ctx, pipe, keys, args...)
		} else {
			sc = appendScript.EvalSha(s.ctx, pipe, keys, args...)
		}
		w := pipe.Do(s.ctx, "WAIT", s.wait, s.waitTimeout.Milliseconds())
		_, _ = pipe.Exec(s.ctx) // each command carries its error
		return sc, w
	}
	sc, w := run(false)
	if redis.HasErrorPrefix(sc.Err(), "NOSCRIPT") {
		sc, w = run(true) // the script was not loaded: nothing was appended
	}
	res, err := sc.Slice()
	if err != nil {
		s.clusterError(err)
		return nil, err
	}
	n, err := w.Int64()
	if err != nil {
		s.clusterError(err)
		return nil, fmt.Errorf("the events were appended, but WAIT failed: %w", err)
	}
	if n < int64(s.wait) {
		return nil, fmt.Errorf("%w: %d of %d replicas acknowledged the events within %v; they are on the primary and may be lost if it fails", ErrNotReplicated, n, s.wait, s.waitTimeout)
	}
	return res, nil
}

// clusterError makes the Redis Cluster clients reload which node serves
// which slot after an error that may come from a failover (a node
// unreachable, CLUSTERDOWN, MOVED): go-redis reloads it by itself only on
// MOVED, or after ClusterStateReloadInterval (a minute), and meanwhile
// sends everything to the dead primary. Reloads are asynchronous and
// coalesced.
func (s *Store) clusterError(err error) {
	if err == nil || s.cluster == nil || errors.Is(err, redis.Nil) || s.closed() {
		return
	}
	for _, c := range []redis.UniversalClient{s.write, s.read, s.block} {
		if cc, ok := c.(*redis.ClusterClient); ok {
			cc.ReloadState(s.ctx)
		}
	}
}
