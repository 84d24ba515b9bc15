// Package redisstore is a [store.Store] whose log is a Redis Stream, so that
// several hub instances share one log: any instance serves any subscriber and
// resumes any client, with the ordering, replay and no-loss guarantees of a
// single hub.
//
// # Layout
//
// Under a key prefix (Config.Prefix, "sluice:" by default) the store keeps
// four keys: the stream PREFIXlog, a hash PREFIXmeta (the log's epoch, last
// position, last millisecond, first retained position and average event
// size), and two sorted sets PREFIXids and PREFIXidq that index custom ids;
// and the kept channels under PREFIXkeep: (see Channels). For Redis Cluster
// put a hash tag in the prefix ("{sluice}:") so the keys share a slot:
// every append touches them in one script (Open refuses a Cluster prefix
// without one).
//
// # Positions and ids
//
// Each append runs one Lua script for a whole batch of events: it gives them
// the next positions from a counter, so positions are contiguous (1, 2, 3,
// ...), and adds them with explicit entry ids "ms-n", where ms is the
// appending store's clock in Unix milliseconds, never less than the previous
// entry's, and n the position. Stream order is then position order, Event.Pos
// is n (no bit-packing of ms and sequence is needed, and no limit on events
// per millisecond), Event.Time is ms (millisecond precision, never
// decreasing along the log, even across instances with skewed clocks), and
// trimming by age is Redis's own MINID. Because positions are contiguous, a
// reader detects trimmed events exactly: the entry after position p must be
// p+1, otherwise what it needed was trimmed and it reports
// [store.ErrExpired], never a silent gap.
//
// Generated ids are "#<epoch>-<n>-<ms>" in base 36 (about 20 characters,
// printable ASCII; the "#" makes them URI fragments, and the same id without
// it, the form earlier versions generated, is still a cursor for the same
// position). The epoch is created at random with the log (HSETNX), so
// an id of another prefix, another Redis, or of a log that was deleted and
// created again is [store.ErrUnknownID]. A cursor older than the first
// retained event is [store.ErrExpired]; the id of the newest trimmed event
// is still valid (nothing after it is missing); an id beyond the last event
// is [store.ErrUnknownID].
//
// # Custom ids
//
// Publisher-supplied ids are indexed in Redis, so any instance resolves
// them: each occurrence adds the member "id NUL position ms" to PREFIXids
// (all scores 0: ZRANGEBYLEX finds an id's occurrences in position order in
// O(log n)) and to PREFIXidq (score: the position). After trimming, the
// append script removes the members below the first retained position, so
// the index is bounded by retention. A repeated custom id resolves to its
// first occurrence still retained. A custom id in the form of this log's
// generated ids is refused ([store.ErrInvalidEvent]).
//
// # Retention
//
// Retention is approximate, as Redis trims whole stream nodes: MaxLen with
// XADD's MAXLEN ~ semantics (Redis may keep up to a node more, 100 entries
// by default), MaxBytes through an estimate (MaxLen is lowered to MaxBytes
// divided by a moving average of [store.EventSize]), MaxAge with MINID ~.
// Reads apply MaxAge exactly: an event older than MaxAge by the store's
// clock is not returned even while Redis still holds it.
//
// # Channels
//
// The store is a [store.Keeper]: it keeps the newest KeepPerChannel events
// of each channel (a topic that [store.IsChannel]), each for KeepFor after
// its Time by Config.Now, apart from MaxLen, MaxBytes and MaxAge, so that
// traffic on other topics cannot trim them away. The append script that
// adds a batch to the log also adds its events of channels, in the same
// call, to a stream per channel, PREFIXkeep:EPOCH:HASH (HASH: the hex
// SHA-256 of the channel's name), trimmed to KeepPerChannel entries and by
// age. An event of a channel costs the script an XADD, and each channel
// of a batch an expiry and a field of the index of channels; the rest
// (sweeping idle channels out of the index, the age trim, the index's own
// expiry) is done at most once a second of log time, or a quarter of
// KeepFor if that is shorter. A batch without events of channels costs one
// more argument of the call, and nothing else. Each kept
// event records the position of its channel's previous event, whichever
// store appended it, so that Kept detects any event dropped after its
// cursor and says [store.ErrExpired] rather than yield an incomplete
// channel: when the count or the age dropped it, when Redis expired or
// evicted the channel's key, or when a store with KeepPerChannel negative
// (or a version before keeping) appended it. A channel that nobody wrote
// to for KeepFor leaves nothing behind: its key expires KeepFor after its
// last write, and the index keys PREFIXkeep:EPOCH:last and :when about
// KeepFor after the last append of a channel's event (their expiry is
// refreshed with the sweep).
// A channel the store forgot starts again from the newest event it forgot
// of any channel: Kept from a cursor older than that (in practice, older
// than KeepFor) is ErrExpired for it.
//
// What the kept channels take in Redis is bounded by KeepPerChannel events
// (each at most MaxBytes) times the channels written to within KeepFor,
// which the store does not bound itself: Redis's maxmemory does. With
// maxmemory-policy volatile-lru (or volatile-ttl), Redis at maxmemory
// evicts kept channels, which all have an expiry, and never the log, which
// has none: the channels evicted lose their events and Kept says
// ErrExpired for them. With noeviction (Redis's default), appends fail
// once Redis is full. Do not use an allkeys- policy: it may evict the
// log's own keys.
//
// # Throughput
//
// Appends are batched: an Append that finds no batch in flight sends, as one
// script call, its event and everything queued meanwhile (up to
// Config.MaxBatch events); Appends arriving while a batch is in flight
// queue, and the first of them sends the next batch. Concurrent publishers
// share round trips, and a lone publisher pays one round trip without a
// hand-off to another goroutine. Each Append returns when its batch is
// acknowledged.
//
// # Outages
//
// When Redis cannot be reached, Append fails with an error wrapping the
// connection error; an append whose reply was lost may or may not be in the
// log (it is never applied twice: appends are not retried). Head fails, so
// it serves as a readiness probe. Follow keeps its caller: it retries with
// capped exponential backoff and jitter, logs through slog, and resumes after
// the last event it yielded. With Redis persistence (appendonly yes,
// appendfsync always) an acknowledged event survives a Redis restart; if
// Redis comes back without the log, the log's epoch is gone and the old ids
// become [store.ErrUnknownID] rather than being misread.
//
// Follow uses one XREAD BLOCK loop per call (a hub calls it once and fans
// out locally), on a connection pool of its own so blocked reads never
// delay appends.
//
// # High availability
//
// A redis+sentinel:// DSN lists Sentinels: the client asks them for the
// primary, and after a failover (a replica promoted) reconnects to the new
// one; a redis+cluster:// DSN lists seed nodes of a Redis Cluster, whose
// client follows slot moves and a replica's promotion. Appends in flight
// when the primary dies fail (they may or may not be in the log); reads
// and Follow retry and resume.
//
// Redis replication is asynchronous: by default an append is acknowledged
// once the primary applied it, and a primary that dies before its replicas
// received the last appends takes them with it; the replica promoted goes
// on from an earlier position. Config.Wait (wait=N in a DSN) closes that
// window: the append script and WAIT N go in one round trip, and an
// append is acknowledged only once N replicas have it (else it fails with
// [ErrNotReplicated] after Config.WaitTimeout; the event is on the primary
// then, and subscribers may receive it). The cost is a replica's round
// trip per batch of appends, and appends fail while fewer than N replicas
// are connected (choose N below the replica count to ride out a replica's
// loss). WAIT makes the events reach the replicas, not their disks, and
// Sentinel promotes the replica with the most data, which holds them.
//
// Whatever Wait, what a hub delivered is never silently renumbered: a
// Follow that comes back after an outage checks that the last event it
// yielded is still in the log under its id, and ends with
// [store.ErrUnknownID] if not (the hub then resets its subscribers, whose
// cursors of lost events are unknown ids, since the log goes on under the
// same epoch from an earlier position). Events a Follow read from the
// primary before WAIT returned may be among those lost: their subscribers
// get that reset too.
package redisstore

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicehq/sluice/internal/backoff"
	"github.com/sluicehq/sluice/store"
)

// Defaults of [Config].
const (
	// DefaultPrefix is the key prefix when Config.Prefix is empty.
	DefaultPrefix = "sluice:"
	// DefaultMaxLen is the approximate number of events retained when
	// Config.MaxLen is zero.
	DefaultMaxLen = 1_000_000
	// DefaultMaxBytes is the approximate byte budget (store.EventSize) when
	// Config.MaxBytes is zero: 1 GiB.
	DefaultMaxBytes = 1 << 30
	// DefaultMaxBatch is the most events one append script call carries
	// when Config.MaxBatch is zero.
	DefaultMaxBatch = 512
	// DefaultBlockTimeout is the BLOCK time of Follow's XREAD calls when
	// Config.BlockTimeout is zero.
	DefaultBlockTimeout = time.Second
	// DefaultMinBackoff and DefaultMaxBackoff bound Follow's reconnection
	// backoff when Config leaves them zero.
	DefaultMinBackoff = backoff.DefaultMin
	DefaultMaxBackoff = backoff.DefaultMax
)

// maxBatchBytes bounds the payload of one append script call.
const maxBatchBytes = 4 << 20

// Config configures a [Store]. The zero value keeps about the last million
// events within about 1 GiB under the prefix "sluice:", with no age limit.
type Config struct {
	// Prefix is prepended to the store's keys. Empty means DefaultPrefix.
	// Stores with the same prefix on the same Redis database share one log.
	Prefix string
	// MaxLen is the approximate number of events retained (MAXLEN ~). Zero
	// means DefaultMaxLen; negative means no count limit.
	MaxLen int64
	// MaxBytes bounds, approximately, the sum of store.EventSize over the
	// retained events. Zero means DefaultMaxBytes; negative means no byte
	// limit. An event larger than MaxBytes is refused
	// (store.ErrInvalidEvent).
	MaxBytes int64
	// MaxAge is the longest an event is retained, measured from its Time.
	// Zero means no age limit.
	MaxAge time.Duration
	// Now is the clock for Event.Time, MaxAge and KeepFor. Nil means
	// time.Now.
	Now func() time.Time
	// KeepPerChannel is how many of the newest events of each channel (a
	// topic that store.IsChannel) the store keeps apart from MaxLen,
	// MaxBytes and MaxAge, for Kept ([store.Keeper]). Zero means
	// store.DefaultKeepPerChannel; a negative value keeps nothing. The
	// package doc's Channels says what bounds the memory this takes.
	KeepPerChannel int
	// KeepFor is how long an event of a channel is kept, from its Time
	// (by Now); a channel not written to for KeepFor leaves nothing in
	// Redis. Zero means store.DefaultKeepFor.
	KeepFor time.Duration
	// MaxBatch is the most events sent in one script call. Zero means
	// DefaultMaxBatch.
	MaxBatch int
	// FlushWindow, when positive, is how long a batch waits for more
	// appends before it is sent, unless full. Zero (the default) sends at
	// once what is queued: batches still form while a call is in flight,
	// without delaying a lone publisher.
	FlushWindow time.Duration
	// BlockTimeout is the BLOCK time of Follow's XREAD. Zero means
	// DefaultBlockTimeout.
	BlockTimeout time.Duration
	// MinBackoff and MaxBackoff bound Follow's reconnection backoff. Zero
	// means DefaultMinBackoff and DefaultMaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// Logger receives Follow's reconnection logs. Nil means slog.Default().
	Logger *slog.Logger
	// Wait, when positive, makes every append wait until that many
	// replicas acknowledged it (Redis WAIT, sent with the append in one
	// round trip), or fail with ErrNotReplicated after WaitTimeout: an
	// acknowledged event is then on Wait replicas and survives a failover
	// to one of them. Zero (the default) acknowledges an append once the
	// primary applied it: replication is asynchronous, and a failover may
	// lose the last acknowledged events (see the package doc's High
	// availability).
	Wait int
	// WaitTimeout bounds WAIT. Zero means DefaultWaitTimeout. It also
	// raises the append connection's read timeout above it.
	WaitTimeout time.Duration
}

// Store is a [store.Store] on a Redis Stream. It is safe for concurrent use;
// several Stores, in one process or many, on the same Redis and prefix share
// one log.
type Store struct {
	cfg                         Config
	now                         func() time.Time
	log                         *slog.Logger
	clients                     // write, read, block; cluster with Redis Cluster
	wait                        int
	waitTimeout                 time.Duration
	kLog, kMeta, kIDs, kIDQ     string
	keys                        []string
	ctx                         context.Context // canceled by Close
	cancel                      context.CancelFunc
	qmu                         sync.Mutex
	queue                       []*appendReq // appends waiting for a batch
	leading                     bool         // an Append is sending batches
	qclosed                     bool         // set by Close under qmu
	closeOnce                   sync.Once
	epochMu                     sync.Mutex
	epoch                       store.Epoch // the log's epoch, as last seen
	maxLen, maxBytes, maxBatchN int64
	keepPer                     int64 // negative: keep nothing
	keepFor                     time.Duration
	kKeep                       string // Prefix + "keep:"
	blockTimeout, minBO, maxBO  time.Duration
	flushWindow                 time.Duration
}

var (
	_ store.Store      = (*Store)(nil)
	_ store.Resolver   = (*Store)(nil)
	_ store.Positioner = (*Store)(nil)
	_ store.Keeper     = (*Store)(nil)
)

// ParseDSN splits a DSN into the Redis URL without the store's settings
// and the store settings carried in its query: prefix, max_len, max_bytes,
// wait, keep_per_channel (integers), max_age, wait_timeout and keep_for
// (Go durations). The scheme names the deployment:
//
//	redis://:secret@cache:6379/2?prefix=app1:&max_len=100000&max_age=24h
//	rediss://user:secret@cache:6380/0?prefix={sluice}:
//	redis+sentinel://s1:26379,s2:26379,s3:26379/0?master_name=mymaster&password=secret&wait=1
//	redis+cluster://n1:7000,n2:7000,n3:7000?prefix={sluice}:
//
// redis:// and rediss:// are one server (or a managed endpoint); the other
// query parameters are go-redis's (redis.ParseURL). redis+sentinel:// and
// rediss+sentinel:// list Sentinels, which tell the client the current
// primary of master_name and of every failover (redis.ParseFailoverURL:
// the URL's user and password are the Sentinels'; the primary's are the
// username and password parameters). redis+cluster:// and rediss+cluster://
// list seed nodes of a Redis Cluster (redis.ParseClusterURL); the prefix
// must then have a hash tag, such as {sluice}:, so that the store's keys
// share a slot.
func ParseDSN(dsn string) (redisURL string, cfg Config, err error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", Config{}, fmt.Errorf("redisstore: parse DSN: %w", err)
	}
	mode, _, err := dsnMode(u.Scheme)
	if err != nil {
		return "", Config{}, fmt.Errorf("redisstore: parse DSN: %w", err)
	}
	q := u.Query()
	for _, k := range []string{"prefix", "max_len", "max_bytes", "max_age", "wait", "wait_timeout", "keep_per_channel", "keep_for"} {
		if !q.Has(k) {
			continue
		}
		v := q.Get(k)
		q.Del(k)
		switch k {
		case "prefix":
			cfg.Prefix = v
		case "max_len":
			cfg.MaxLen, err = strconv.ParseInt(v, 10, 64)
		case "max_bytes":
			cfg.MaxBytes, err = strconv.ParseInt(v, 10, 64)
		case "max_age":
			cfg.MaxAge, err = time.ParseDuration(v)
		case "wait":
			cfg.Wait, err = strconv.Atoi(v)
			if err == nil && cfg.Wait < 0 {
				err = fmt.Errorf("%d: want 0 or more", cfg.Wait)
			}
		case "wait_timeout":
			cfg.WaitTimeout, err = time.ParseDuration(v)
			if err == nil && cfg.WaitTimeout <= 0 {
				err = fmt.Errorf("%v: want a positive duration", cfg.WaitTimeout)
			}
		case "keep_per_channel":
			cfg.KeepPerChannel, err = strconv.Atoi(v)
		case "keep_for":
			cfg.KeepFor, err = time.ParseDuration(v)
			if err == nil && cfg.KeepFor <= 0 {
				err = fmt.Errorf("%v: want a positive duration", cfg.KeepFor)
			}
		}
		if err != nil {
			return "", Config{}, fmt.Errorf("redisstore: parse DSN: %s: %w", k, err)
		}
	}
	if mode == modeCluster && cfg.Prefix != "" && !hasHashTag(cfg.Prefix) {
		return "", Config{}, fmt.Errorf("redisstore: parse DSN: prefix %q: Redis Cluster needs a hash tag in the prefix, such as {sluice}:, so that the store's keys share a slot", cfg.Prefix)
	}
	u.RawQuery = q.Encode()
	return u.String(), cfg, nil
}

// Open connects to the Redis at url (a DSN of [ParseDSN]: one server,
// Sentinels or a Redis Cluster's seeds, with the settings of go-redis's
// parsers; the store settings may be in its query and apply where cfg
// leaves a field zero) and returns a store on the log under cfg.Prefix,
// creating it if needed. It fails if Redis cannot be reached. The clients
// follow a Sentinel failover and a Cluster's slot moves on their own.
func Open(ctx context.Context, url string, cfg Config) (*Store, error) {
	u, dcfg, err := ParseDSN(url)
	if err != nil {
		return nil, err
	}
	if cfg.Prefix == "" {
		cfg.Prefix = dcfg.Prefix
	}
	if cfg.MaxLen == 0 {
		cfg.MaxLen = dcfg.MaxLen
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = dcfg.MaxBytes
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = dcfg.MaxAge
	}
	if cfg.Wait == 0 {
		cfg.Wait = dcfg.Wait
	}
	if cfg.WaitTimeout == 0 {
		cfg.WaitTimeout = dcfg.WaitTimeout
	}
	if cfg.KeepPerChannel == 0 {
		cfg.KeepPerChannel = dcfg.KeepPerChannel
	}
	if cfg.KeepFor == 0 {
		cfg.KeepFor = dcfg.KeepFor
	}
	if cfg.Wait < 0 {
		return nil, fmt.Errorf("redisstore: open: negative Wait %d", cfg.Wait)
	}
	if cfg.WaitTimeout <= 0 {
		cfg.WaitTimeout = DefaultWaitTimeout
	}
	if cfg.MaxAge < 0 {
		return nil, fmt.Errorf("redisstore: open: negative MaxAge %v", cfg.MaxAge)
	}
	if cfg.KeepFor < 0 {
		return nil, fmt.Errorf("redisstore: open: negative KeepFor %v", cfg.KeepFor)
	}
	s := &Store{
		cfg:          cfg,
		now:          cfg.Now,
		log:          cfg.Logger,
		maxLen:       cfg.MaxLen,
		maxBytes:     cfg.MaxBytes,
		maxBatchN:    int64(cfg.MaxBatch),
		keepPer:      int64(cfg.KeepPerChannel),
		keepFor:      cfg.KeepFor,
		blockTimeout: cfg.BlockTimeout,
		minBO:        cfg.MinBackoff,
		maxBO:        cfg.MaxBackoff,
		flushWindow:  cfg.FlushWindow,
		wait:         cfg.Wait,
		waitTimeout:  cfg.WaitTimeout,
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
		s.cfg.Prefix = DefaultPrefix
	}
	if s.maxLen == 0 {
		s.maxLen = DefaultMaxLen
	}
	if s.maxBytes == 0 {
		s.maxBytes = DefaultMaxBytes
	}
	if s.maxBatchN <= 0 {
		s.maxBatchN = DefaultMaxBatch
	}
	if s.blockTimeout <= 0 {
		s.blockTimeout = DefaultBlockTimeout
	}
	if s.keepPer == 0 {
		s.keepPer = store.DefaultKeepPerChannel
	}
	if s.keepFor == 0 {
		s.keepFor = store.DefaultKeepFor
	}
	s.kLog, s.kMeta = cfg.Prefix+"log", cfg.Prefix+"meta"
	s.kIDs, s.kIDQ = cfg.Prefix+"ids", cfg.Prefix+"idq"
	s.keys = []string{s.kLog, s.kMeta, s.kIDs, s.kIDQ}
	s.kKeep = cfg.Prefix + "keep:"

	waitTimeout := time.Duration(0)
	if s.wait > 0 {
		waitTimeout = s.waitTimeout
	}
	if s.clients, err = newClients(u, s.blockTimeout, waitTimeout); err != nil {
		return nil, fmt.Errorf("redisstore: open %s: %w", redactURL(u), err)
	}
	if s.cluster != nil && !hasHashTag(cfg.Prefix) {
		s.clients.close()
		return nil, fmt.Errorf("redisstore: open: prefix %q: Redis Cluster needs a hash tag in the prefix, such as {sluice}:, so that the store's keys share a slot", cfg.Prefix)
	}

	if _, err := s.initEpoch(ctx); err != nil {
		s.clients.close()
		return nil, fmt.Errorf("redisstore: open %s: %w", redactURL(u), err)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// redactURL returns u without its password, for error messages.
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "redis"
	}
	return p.Redacted()
}

// initEpoch creates the log's epoch if there is none and returns the one in
// Redis.
func (s *Store) initEpoch(ctx context.Context) (store.Epoch, error) {
	pipe := s.read.TxPipeline()
	pipe.HSetNX(ctx, s.kMeta, "epoch", string(store.NewEpoch()))
	get := pipe.HGet(ctx, s.kMeta, "epoch")
	if _, err := pipe.Exec(ctx); err != nil {
		return "", err
	}
	ep := store.Epoch(get.Val())
	if !ep.Valid() {
		return "", fmt.Errorf("key %s holds an invalid epoch %q: not a sluice log", s.kMeta, ep)
	}
	s.epochMu.Lock()
	s.epoch = ep
	s.epochMu.Unlock()
	return ep, nil
}

func (s *Store) currentEpoch() store.Epoch {
	s.epochMu.Lock()
	defer s.epochMu.Unlock()
	return s.epoch
}

func (s *Store) closed() bool { return s.ctx.Err() != nil }

// appendReq is one Append waiting for its batch.
type appendReq struct {
	ctx    context.Context
	e      store.Event // validated, Topics cloned
	custom bool
	meta   []byte
	size   int
	chans  []string       // the event's channels to keep, by keptHash
	done   chan appendRes // buffered: the leader never blocks on it
	lead   chan struct{}  // buffered: the previous leader hands over
}

type appendRes struct {
	e   store.Event
	err error
}

// Append adds e at the end of the log. See [store.Store.Append]. It returns
// once Redis has acknowledged the script call that carried it. If ctx ends
// first, Append returns ctx's error and the event may or may not be in the
// log.
func (s *Store) Append(ctx context.Context, e store.Event) (store.Event, error) {
	if err := ctx.Err(); err != nil {
		return store.Event{}, fmt.Errorf("redisstore: append: %w", err)
	}
	if s.closed() {
		return store.Event{}, fmt.Errorf("redisstore: append: %w", store.ErrClosed)
	}
	if err := store.ValidateEvent(&e); err != nil {
		return store.Event{}, fmt.Errorf("redisstore: append: %w", err)
	}
	custom := e.ID != ""
	if custom {
		if ep, _, ok := parseID(e.ID); ok && ep == s.currentEpoch() {
			return store.Event{}, fmt.Errorf("redisstore: append: %w: custom id %q has the form of the ids this log generates", store.ErrInvalidEvent, e.ID)
		}
	}
	size := store.EventSize(&e)
	if s.maxBytes > 0 && int64(size) > s.maxBytes {
		return store.Event{}, fmt.Errorf("redisstore: append: %w: event of %d bytes exceeds the store's MaxBytes %d", store.ErrInvalidEvent, size, s.maxBytes)
	}
	if len(e.Topics) == 0 {
		e.Topics = nil
	} else {
		e.Topics = append([]string(nil), e.Topics...)
	}
	r := &appendReq{ctx: ctx, e: e, custom: custom, size: size, done: make(chan appendRes, 1), lead: make(chan struct{}, 1)}
	r.chans = channelHashes(e.Topics)
	r.meta = encodeMeta(make([]byte, 0, 16+len(e.Type)+len(e.ID)+size-len(e.Data)), &e, custom)
	s.qmu.Lock()
	if s.qclosed {
		s.qmu.Unlock()
		return store.Event{}, fmt.Errorf("redisstore: append: %w", store.ErrClosed)
	}
	s.queue = append(s.queue, r)
	lead := !s.leading
	s.leading = true
	s.qmu.Unlock()
	if lead {
		s.lead()
	}
	select {
	case res := <-r.done:
		return res.e, res.err
	case <-r.lead:
		s.lead() // r is first in the queue: its batch carries it
		res := <-r.done
		return res.e, res.err
	case <-ctx.Done():
		// r stays queued (its batch will skip it), and it may be handed the
		// lead at any moment: someone must take it.
		go func() {
			select {
			case <-r.lead:
				s.lead()
			case <-r.done:
			}
		}()
		return store.Event{}, fmt.Errorf("redisstore: append: %w (the event may have been appended)", ctx.Err())
	}
}

// lead sends one batch of the queued appends, the leader's own first, and
// hands the lead to the first append still queued, if any. Batches thus form
// from whatever queues while the previous one is in flight, and a lone
// publisher sends its own event without waking another goroutine.
func (s *Store) lead() {
	if s.flushWindow > 0 {
		s.qmu.Lock()
		short := int64(len(s.queue)) < s.maxBatchN
		s.qmu.Unlock()
		if short {
			t := time.NewTimer(s.flushWindow)
			select {
			case <-t.C:
			case <-s.ctx.Done():
				t.Stop()
			}
		}
	}
	s.qmu.Lock()
	n, bytes := 0, 0
	for n < len(s.queue) && int64(n) < s.maxBatchN && (n == 0 || bytes+s.queue[n].size <= maxBatchBytes) {
		bytes += s.queue[n].size
		n++
	}
	batch := make([]*appendReq, n)
	copy(batch, s.queue)
	s.queue = s.queue[n:]
	closed := s.qclosed
	s.qmu.Unlock()

	if closed {
		for _, r := range batch {
			r.done <- appendRes{err: fmt.Errorf("redisstore: append: %w", store.ErrClosed)}
		}
	} else {
		s.flush(batch)
	}

	s.qmu.Lock()
	if len(s.queue) == 0 {
		s.leading = false
		s.queue = nil
		s.qmu.Unlock()
		return
	}
	next := s.queue[0]
	s.qmu.Unlock()
	next.lead <- struct{}{}
}

// flush appends batch in one script call and answers each request.
func (s *Store) flush(batch []*appendReq) {
	live := batch[:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.done <- appendRes{err: fmt.Errorf("redisstore: append: %w", err)}
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	now := s.now()
	var minMS int64
	if s.cfg.MaxAge > 0 {
		minMS = ceilMilli(now.Add(-s.cfg.MaxAge))
	}
	maxLen, maxBytes := max(s.maxLen, 0), max(s.maxBytes, 0)
	args := make([]any, 0, 7+4*len(live))
	args = append(args, "", now.UnixMilli(), maxLen, minMS, maxBytes, len(live))
	for _, r := range live {
		id := ""
		if r.custom {
			id = r.e.ID
		}
		args = append(args, id, r.size, r.meta, r.e.Data)
	}
	args, chans := s.keepArgs(args, live, now)
	keys := s.keys
	var res []any
	var err error
	for attempt := 0; ; attempt++ {
		ep := s.currentEpoch()
		args[0] = string(ep)
		if len(chans) > 0 {
			keys = s.keepKeys(ep, chans)
		}
		res, err = s.runAppend(keys, args)
		if err == nil || attempt > 0 || !strings.HasPrefix(err.Error(), epochErrPrefix) {
			break
		}
		// The log was deleted (or Redis lost it): start a new one, with a new
		// epoch, so the ids of the old log are never mistaken for ours.
		if newEp, ierr := s.initEpoch(s.ctx); ierr != nil {
			err = ierr
			break
		} else if newEp != ep {
			s.log.Warn("redisstore: the log was deleted or replaced; appending to a new log", "prefix", s.cfg.Prefix, "old_epoch", ep, "epoch", newEp)
		}
	}
	if err == nil && len(res) != 2 {
		err = fmt.Errorf("unexpected script reply %v", res)
	}
	var ms, first int64
	if err == nil {
		var ok1, ok2 bool
		ms, ok1 = res[0].(int64)
		first, ok2 = res[1].(int64)
		if !ok1 || !ok2 || ms < 0 || first < 1 {
			err = fmt.Errorf("unexpected script reply %v", res)
		}
	}
	if err != nil {
		if s.closed() {
			err = store.ErrClosed
		}
		for _, r := range live {
			r.done <- appendRes{err: fmt.Errorf("redisstore: append: %w", err)}
		}
		return
	}
	ep := store.Epoch(args[0].(string))
	for i, r := range live {
		p := position{ms: uint64(ms), n: uint64(first) + uint64(i)}
		e := r.e
		e.Pos, e.Time = p.n, time.UnixMilli(ms)
		if !r.custom {
			e.ID = formatID(ep, p)
		}
		r.done <- appendRes{e: e}
	}
}

// ceilMilli returns t in Unix milliseconds, rounded up.
func ceilMilli(t time.Time) int64 {
	ns := t.UnixNano()
	ms := ns / 1e6
	if ns%1e6 > 0 {
		ms++
	}
	return ms
}

// Head returns the generated id of the last event appended, or "" if the
// log is empty. It fails while Redis cannot be reached. See
// [store.Store.Head].
func (s *Store) Head(ctx context.Context) (string, error) {
	if s.closed() {
		return "", fmt.Errorf("redisstore: head: %w", store.ErrClosed)
	}
	m, err := s.readMeta(ctx, s.read)
	if err != nil {
		s.clusterError(err)
		if s.closed() {
			err = store.ErrClosed
		}
		return "", fmt.Errorf("redisstore: head: %w", err)
	}
	if m.epoch == "" || m.last.n == 0 {
		return "", nil
	}
	s.epochMu.Lock()
	s.epoch = m.epoch // another store may have created the log again (PositionID)
	s.epochMu.Unlock()
	return formatID(m.epoch, m.last), nil
}

// meta is the state in the meta hash.
type meta struct {
	epoch store.Epoch
	last  position // last appended (n == 0: none)
	first uint64   // first retained position, as of the last append
}

func (s *Store) readMeta(ctx context.Context, c redis.Cmdable) (meta, error) {
	vals, err := c.HMGet(ctx, s.kMeta, "epoch", "n", "ms", "f").Result()
	if err != nil {
		return meta{}, err
	}
	return parseMeta(vals)
}

func parseMeta(vals []any) (meta, error) {
	var m meta
	str := func(i int) string {
		v, _ := vals[i].(string)
		return v
	}
	m.epoch = store.Epoch(str(0))
	if m.epoch != "" && !m.epoch.Valid() {
		return meta{}, fmt.Errorf("invalid epoch %q in the meta hash: not a sluice log", m.epoch)
	}
	num := func(i int) (uint64, error) {
		if str(i) == "" {
			return 0, nil
		}
		return strconv.ParseUint(str(i), 10, 64)
	}
	var err1, err2, err3 error
	m.last.n, err1 = num(1)
	m.last.ms, err2 = num(2)
	m.first, err3 = num(3)
	if err := errors.Join(err1, err2, err3); err != nil {
		return meta{}, fmt.Errorf("corrupt meta hash: %w", err)
	}
	if m.first == 0 {
		m.first = 1
	}
	return m, nil
}

// Close fails the queued appends with store.ErrClosed, ends
// every Follow with store.ErrClosed and closes the connections. Closing a
// closed store does nothing. It does not delete the log.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.qmu.Lock()
		s.qclosed = true
		s.qmu.Unlock()
		s.cancel()
		s.clients.close()
	})
	return nil
}

// Delete removes the log, its indexes and the kept channels from Redis:
// every key of the store's prefix (the kept channels of a log deleted
// otherwise expire after KeepFor). Stores using the log see an empty log
// with a new epoch on their next append. It is meant for tests and tools.
func (s *Store) Delete(ctx context.Context) error {
	keys := slices.Clone(s.keys)
	ep, err := s.read.HGet(ctx, s.kMeta, "epoch").Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("redisstore: delete: %w", err)
	}
	if ep != "" {
		kk := s.keepKeys(store.Epoch(ep), nil)[len(s.keys):]
		hs, err := s.read.HKeys(ctx, kk[0]).Result()
		if err != nil {
			return fmt.Errorf("redisstore: delete: %w", err)
		}
		hs = slices.DeleteFunc(hs, func(h string) bool { return len(h) != sha256.Size*2 }) // the index's mark
		keys = append(keys, s.keepKeys(store.Epoch(ep), hs)[len(s.keys):]...)
	}
	for len(keys) > 0 {
		n := min(len(keys), 512)
		if err := s.read.Del(ctx, keys[:n]...).Err(); err != nil {
			return fmt.Errorf("redisstore: delete: %w", err)
		}
		keys = keys[n:]
	}
	return nil
}
