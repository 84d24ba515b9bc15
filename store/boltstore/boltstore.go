// Package boltstore is a durable [store.Store] in one file, built on
// go.etcd.io/bbolt. It is the hub's default store: nothing to set up, and
// events survive restarts and crashes.
//
// # Durability and group commit
//
// Append returns only once its event is committed and fsynced: an
// acknowledged event survives kill -9 (and, as far as the disk honours
// fsync, power loss). One writer goroutine commits every append that is
// waiting, up to Config.MaxBatch, in one transaction, so concurrent
// publishers share the cost of the fsyncs (a bbolt commit syncs twice).
// When the last commit carried n appends and fewer are waiting, the writer
// waits up to a quarter of the last commit's duration (at most 0.5 ms) for
// n, so that publishers who were just acknowledged join the next commit
// instead of commits alternating between small and large. Throughput is
// therefore about (appends in flight) / (commit latency): a single
// publisher gets one commit per event.
//
// # Layout
//
// The log is in three buckets: events keyed by position (8 bytes, big
// endian; the value is a compact binary record), an index of custom ids
// (id + NUL + position), and a meta bucket with a format marker, the log's
// epoch (random, created with the file), the last position, the oldest
// retained position, the retained byte count and the first position whose
// generated id that count includes with its "#" (a file written before
// generated ids had it is upgraded in place when first opened: its events
// stay counted as they were). Positions are contiguous
// from the oldest retained to the last, so a generated id is found by one
// B+tree lookup and a custom id by one seek, whatever the size of the log,
// and retention deletes from the front without scanning. Open refuses a
// file that is not a sluice store (another bbolt database, another file
// format, a corrupt file) with an error wrapping [ErrInvalidFile]; it never
// overwrites one.
//
// # Retention
//
// Each commit deletes from the front of the log what exceeds MaxEvents,
// MaxBytes (counted with [store.EventSize]) or TTL, in bounded chunks, so
// the file stops growing once retention is reached: bbolt reuses the freed
// pages. Reads apply the count and age limits exactly even between commits.
// When Open finds more than the limits allow (they were lowered), it trims
// before returning.
//
// # Keeping channels
//
// The store is a [store.Keeper]: each event with a channel among its topics
// (a topic that store.IsChannel: a session's, a stream's or a relay's) is
// also kept under each of its channels, in buckets of its own written in the
// transaction of the append, so that the log's turnover does not evict them
// and a crash never leaves a channel inconsistent with the log. Each channel
// keeps its newest Config.KeepPerChannel events, each for Config.KeepFor,
// and everything kept is bounded by Config.KeepMaxBytes: past it, the
// channels written to least recently lose their oldest events first. A
// channel that lost events says so: [Store.Kept] yields store.ErrExpired
// for a cursor before what it lost, never an incomplete channel. An append
// without a channel costs what it did (but for three more meta values per
// commit). A file written by a version that did not keep channels opens as
// it is, and channels are kept from then on.
//
// # Ids
//
// Generated ids are "#", the epoch and the position (see [store.Epoch]);
// they stay valid across restarts, and positions continue after a restart.
// The ids of a file written by a version before the "#" are still cursors
// in that legacy form, for the same positions. A custom id in the form of
// this store's generated ids, with or without the "#", is refused; a
// repeated custom id
// resolves to its first occurrence still retained, and to [store.ErrUnknownID]
// once every occurrence is gone. The id of the newest evicted event remains
// a valid cursor (nothing after it is missing); older ones are
// [store.ErrExpired].
package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/sluicehq/sluice/store"
)

// Defaults of [Config].
const (
	// DefaultMaxEvents is the number of events kept when Config.MaxEvents
	// is zero.
	DefaultMaxEvents = 1_000_000
	// DefaultMaxBytes is the byte budget (see store.EventSize) when
	// Config.MaxBytes is zero: 1 GiB.
	DefaultMaxBytes = 1 << 30
	// DefaultLockTimeout is how long Open waits for another process to
	// release the file when Config.LockTimeout is zero.
	DefaultLockTimeout = time.Second
	// DefaultMaxBatch is the most appends committed in one transaction when
	// Config.MaxBatch is zero.
	DefaultMaxBatch = 1024
	// DefaultKeepMaxBytes is the byte budget (see store.EventSize) of the
	// kept events of all channels when Config.KeepMaxBytes is zero: 256 MiB,
	// on top of MaxBytes.
	DefaultKeepMaxBytes = 256 << 20
)

// Errors of Open.
var (
	// ErrInvalidFile reports a file that is not a sluice event store: not a
	// bbolt file, corrupt, a bbolt database of another program, or another
	// version of this format. The file is left untouched. Open wraps it with
	// the path and the reason.
	ErrInvalidFile = errors.New("not a sluice event store, or corrupt")
	// ErrLocked reports a file another process (or another Store in this
	// process) has open. Open wraps it with the path.
	ErrLocked = errors.New("file is in use by another process")
)

// Config configures a [Store]. The zero value keeps the last million events
// within 1 GiB, with no age limit, and the newest 4,096 events of each
// channel for an hour, within 256 MiB.
type Config struct {
	// MaxEvents is the most events retained. Zero means DefaultMaxEvents; a
	// negative value means no count limit.
	MaxEvents int
	// MaxBytes bounds the sum of store.EventSize over retained events (the
	// file is larger: keys, record headers, B+tree pages). Zero means
	// DefaultMaxBytes; a negative value means no byte limit. An event larger
	// than MaxBytes on its own is refused (store.ErrInvalidEvent).
	MaxBytes int64
	// TTL is the longest an event is retained, measured from its Time. Zero
	// means no age limit.
	TTL time.Duration
	// Now is the clock for Event.Time and TTL. Nil means time.Now.
	Now func() time.Time
	// LockTimeout is how long Open waits for the file lock held by another
	// process before failing with ErrLocked. Zero means DefaultLockTimeout.
	LockTimeout time.Duration
	// MaxBatch is the most appends committed in one transaction. Zero means
	// DefaultMaxBatch.
	MaxBatch int

	// KeepPerChannel is how many of the newest events of each channel (a
	// topic that store.IsChannel) the store keeps apart from MaxEvents,
	// MaxBytes and TTL (see [Store.Kept]). Zero means
	// store.DefaultKeepPerChannel; a negative value keeps nothing.
	KeepPerChannel int
	// KeepFor is how long an event of a channel is kept, measured from its
	// Time. Zero means store.DefaultKeepFor.
	KeepFor time.Duration
	// KeepMaxBytes bounds the sum of store.EventSize over the kept events
	// of all channels (the file holds more: keys, record headers). Past it,
	// the oldest events of the channel written to least recently are
	// dropped, and Kept says store.ErrExpired for cursors before them; an
	// event larger than KeepMaxBytes on its own is not kept, and its
	// channels lose what they kept before it. Zero means
	// DefaultKeepMaxBytes; a negative value means no byte limit.
	KeepMaxBytes int64
}

const (
	formatMarker = "sluice.boltstore/1"
	formatPrefix = "sluice.boltstore/"
	// trimChunk is how many events a commit may delete beyond the number
	// it appends, so a backlog (lowered limits, TTL) drains gradually.
	trimChunk = 4096
	// readBatch is how many events a read transaction decodes before they
	// are yielded outside it.
	readBatch = 256
)

var (
	bucketMeta   = []byte("sluice.meta")
	bucketEvents = []byte("sluice.events")
	bucketIDs    = []byte("sluice.ids")
	keyFormat    = []byte("format")
	keyEpoch     = []byte("epoch")
	keyLast      = []byte("last")
	keyOldest    = []byte("oldest")
	keyBytes     = []byte("bytes")
	// keyIDPrefix holds the first position whose generated id the byte
	// count includes with its store.IDPrefix: 1 in files created since
	// generated ids have it, the position after the last event in a file an
	// earlier version wrote, when this version first opens it.
	keyIDPrefix = []byte("idprefix")
)

// Store is a durable [store.Store] in a bbolt file. It is safe for
// concurrent use. The Topics slices of the events it returns belong to the
// caller.
type Store struct {
	db    *bbolt.DB
	path  string
	epoch store.Epoch
	cfg   Config
	// prefixFrom is the meta bucket's keyIDPrefix: events before it were
	// counted in the byte count with their generated ids without the "#".
	prefixFrom uint64

	reqs    chan *appendReq
	quit    chan struct{} // closed by Close: the writer stops
	stopped chan struct{} // closed when the writer has stopped
	once    sync.Once

	last atomic.Uint64 // last committed position

	mu     sync.Mutex
	notify chan struct{} // closed after the next commit; nil if nobody waits
	closed bool

	w writerState // owned by the writer goroutine (and Open, before it starts)
}

// writerState is the log's state as of the last commit, and the writer's
// reusable buffers.
type writerState struct {
	last, oldest, bytes uint64 // as in the meta bucket
	time                int64  // Time of the last event, Unix nanoseconds
	// The kept channels (keep.go): the meta bucket's keyKeepBytes and
	// keyKeepFloor, and the Time of the last write to the channel written
	// to least recently, if any channel is kept.
	keepBytes, keepFloor uint64
	keepOldest           int64
	keepAny              bool
	keys, vals           []byte // encoding buffers
}

var _ store.Store = (*Store)(nil)

type appendReq struct {
	ev   store.Event
	res  store.Event
	err  error
	done chan struct{}
}

// errNoop rolls back a transaction that has nothing to write.
var errNoop = errors.New("nothing to commit")

var reqPool = sync.Pool{New: func() any { return &appendReq{done: make(chan struct{}, 1)} }}

// Open opens the store in the file at path, creating it if it does not
// exist. It fails with an error wrapping ErrLocked if another process has
// the file open, and ErrInvalidFile if the file is not a sluice store.
func Open(path string, cfg Config) (*Store, error) {
	if cfg.MaxEvents == 0 {
		cfg.MaxEvents = DefaultMaxEvents
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.LockTimeout <= 0 {
		cfg.LockTimeout = DefaultLockTimeout
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.KeepPerChannel == 0 {
		cfg.KeepPerChannel = store.DefaultKeepPerChannel
	}
	if cfg.KeepFor <= 0 {
		cfg.KeepFor = store.DefaultKeepFor
	}
	if cfg.KeepMaxBytes == 0 {
		cfg.KeepMaxBytes = DefaultKeepMaxBytes
	}
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("boltstore: open %s: %w: not a regular file", path, ErrInvalidFile)
	}
	db, err := openDB(path, cfg.LockTimeout)
	if err != nil {
		return nil, err
	}
	s := &Store{
		db:      db,
		path:    path,
		cfg:     cfg,
		reqs:    make(chan *appendReq, 4*cfg.MaxBatch),
		quit:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	if err := s.load(); err != nil {
		db.Close()
		return nil, err
	}
	// Apply lowered limits before serving anything.
	for {
		more, err := s.commit(nil)
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("boltstore: open %s: apply retention: %w", path, err)
		}
		if !more {
			break
		}
	}
	s.last.Store(s.w.last)
	go s.run()
	return s, nil
}

func openDB(path string, timeout time.Duration) (db *bbolt.DB, err error) {
	defer func() {
		if r := recover(); r != nil { // bbolt panics on some corrupt files
			db, err = nil, fmt.Errorf("boltstore: open %s: %w: %v", path, ErrInvalidFile, r)
		}
	}()
	db, err = bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout:      timeout,
		FreelistType: bbolt.FreelistMapType,
	})
	switch {
	case err == nil:
		return db, nil
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("boltstore: open %s: %w (waited %v): %w", path, ErrLocked, timeout, err)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrVersionMismatch):
		return nil, fmt.Errorf("boltstore: open %s: %w: %w", path, ErrInvalidFile, err)
	}
	return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
}

// load creates the buckets of a new file, or checks those of an existing
// one and reads its state.
func (s *Store) load() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("boltstore: open %s: %w: %v", s.path, ErrInvalidFile, r)
		}
	}()
	return s.db.Update(func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			var names []string
			if err := tx.ForEach(func(name []byte, _ *bbolt.Bucket) error {
				names = append(names, string(name))
				return nil
			}); err != nil {
				return fmt.Errorf("boltstore: open %s: %w", s.path, err)
			}
			if len(names) > 0 {
				return fmt.Errorf("boltstore: open %s: %w: a bbolt database of another program (buckets %q)", s.path, ErrInvalidFile, names)
			}
			if err := s.create(tx); err != nil {
				return err
			}
			return s.loadKeep(tx, 0)
		}
		format := meta.Get(keyFormat)
		switch {
		case string(format) == formatMarker:
		case bytes.HasPrefix(format, []byte(formatPrefix)):
			return fmt.Errorf("boltstore: open %s: %w: format %q, this version reads %q", s.path, ErrInvalidFile, format, formatMarker)
		default:
			return fmt.Errorf("boltstore: open %s: %w: no sluice format marker", s.path, ErrInvalidFile)
		}
		ep := store.Epoch(meta.Get(keyEpoch))
		last, ok1 := u64(meta.Get(keyLast))
		oldest, ok2 := u64(meta.Get(keyOldest))
		size, ok3 := u64(meta.Get(keyBytes))
		if !ep.Valid() || !ok1 || !ok2 || !ok3 || oldest == 0 || oldest > last+1 ||
			tx.Bucket(bucketEvents) == nil || tx.Bucket(bucketIDs) == nil {
			return fmt.Errorf("boltstore: open %s: %w: damaged meta bucket", s.path, ErrInvalidFile)
		}
		s.epoch = store.Epoch(string(ep))
		s.w.last, s.w.oldest, s.w.bytes = last, oldest, size
		if v := meta.Get(keyIDPrefix); v != nil {
			var ok bool
			if s.prefixFrom, ok = u64(v); !ok || s.prefixFrom == 0 || s.prefixFrom > last+1 {
				return fmt.Errorf("boltstore: open %s: %w: damaged meta bucket", s.path, ErrInvalidFile)
			}
		} else {
			// Written by a version whose generated ids had no "#": its
			// events were counted without it, and are evicted so.
			s.prefixFrom = last + 1
			if err := meta.Put(keyIDPrefix, posKey(nil, s.prefixFrom)); err != nil {
				return fmt.Errorf("boltstore: open %s: %w", s.path, err)
			}
		}
		if last >= oldest {
			v := tx.Bucket(bucketEvents).Get(posKey(nil, last))
			t, ok := recordTime(v)
			if !ok {
				return fmt.Errorf("boltstore: open %s: %w: last event (position %d) missing or damaged", s.path, ErrInvalidFile, last)
			}
			s.w.time = t
		}
		return s.loadKeep(tx, last)
	})
}

func (s *Store) create(tx *bbolt.Tx) error {
	meta, err := tx.CreateBucket(bucketMeta)
	if err != nil {
		return fmt.Errorf("boltstore: create %s: %w", s.path, err)
	}
	if _, err := tx.CreateBucket(bucketEvents); err != nil {
		return fmt.Errorf("boltstore: create %s: %w", s.path, err)
	}
	if _, err := tx.CreateBucket(bucketIDs); err != nil {
		return fmt.Errorf("boltstore: create %s: %w", s.path, err)
	}
	s.epoch = store.NewEpoch()
	s.w.last, s.w.oldest, s.w.bytes = 0, 1, 0
	s.prefixFrom = 1
	for _, kv := range [][2][]byte{
		{keyFormat, []byte(formatMarker)},
		{keyEpoch, []byte(s.epoch)},
		{keyLast, posKey(nil, 0)},
		{keyOldest, posKey(nil, 1)},
		{keyBytes, posKey(nil, 0)},
		{keyIDPrefix, posKey(nil, 1)},
	} {
		if err := meta.Put(kv[0], kv[1]); err != nil {
			return fmt.Errorf("boltstore: create %s: %w", s.path, err)
		}
	}
	return nil
}

func u64(b []byte) (uint64, bool) {
	if len(b) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(b), true
}

// Path returns the file the store was opened from.
func (s *Store) Path() string { return s.path }

// run is the writer: it commits waiting appends in batches until Close.
func (s *Store) run() {
	defer close(s.stopped)
	var tick <-chan time.Time
	if s.cfg.TTL > 0 || s.keeping() {
		every := time.Duration(math.MaxInt64)
		if s.cfg.TTL > 0 {
			every = s.cfg.TTL
		}
		if s.keeping() {
			every = min(every, s.cfg.KeepFor)
		}
		t := time.NewTicker(min(max(every/4, time.Second), time.Minute))
		defer t.Stop()
		tick = t.C
	}
	batch := make([]*appendReq, 0, s.cfg.MaxBatch)
	// Adaptive group commit: publishers acknowledged by a commit come back
	// with their next append a moment later. Waiting briefly for as many
	// appends as the last commit carried (at most a quarter of the last
	// commit's duration) keeps them in one commit instead of alternating
	// small and large ones. A single publisher never waits.
	wait := time.NewTimer(time.Hour)
	wait.Stop()
	var lastSize int
	var lastDur time.Duration
	for {
		batch = batch[:0]
		select {
		case <-s.quit:
			return
		case r := <-s.reqs:
			batch = append(batch, r)
		case <-tick:
			// Drop expired events even when nothing is appended. A
			// failure is retried on the next tick or append; reads apply
			// the TTL and KeepFor on their own meanwhile.
			_, _ = s.commit(nil)
			continue
		}
		s.gather(&batch)
		if target := min(lastSize, cap(batch)); len(batch) < target {
			wait.Reset(min(lastDur/4, maxGatherDelay))
		gather:
			for len(batch) < target {
				select {
				case r := <-s.reqs:
					batch = append(batch, r)
					s.gather(&batch)
				case <-wait.C:
					break gather
				}
			}
			wait.Stop()
		}
		start := time.Now()
		if _, err := s.commit(batch); err != nil {
			for _, r := range batch {
				if r.err == nil {
					r.err = err
				}
			}
		}
		lastSize, lastDur = len(batch), time.Since(start)
		for _, r := range batch {
			r.done <- struct{}{}
		}
	}
}

// maxGatherDelay bounds how long the writer waits for a batch to fill.
const maxGatherDelay = 500 * time.Microsecond

// gather adds to batch the appends already queued, up to its capacity.
func (s *Store) gather(batch *[]*appendReq) {
	for len(*batch) < cap(*batch) {
		select {
		case r := <-s.reqs:
			*batch = append(*batch, r)
		default:
			return
		}
	}
}

// commit appends batch and applies retention in one transaction. It reports
// whether retention has more to delete. On success it publishes the new
// state to readers and followers.
func (s *Store) commit(batch []*appendReq) (more bool, err error) {
	now := s.cfg.Now().UnixNano()
	st := s.w // copy: applied only if the transaction commits
	st.keys, st.vals = st.keys[:0], st.vals[:0]
	appended := 0
	keepCutoff := now - int64(s.cfg.KeepFor)
	err = s.db.Update(func(tx *bbolt.Tx) error {
		events, ids, meta := tx.Bucket(bucketEvents), tx.Bucket(bucketIDs), tx.Bucket(bucketMeta)
		events.FillPercent = 1 // keys only ever grow: pack pages full
		// The kept channels' buckets, once a commit keeps or drops.
		var kt *keepTx
		for _, r := range batch {
			r.err = nil
			e := &r.ev
			custom := e.ID != ""
			pos := st.last + 1
			if !custom {
				e.ID = s.epoch.ID(pos)
			}
			size := store.EventSize(e)
			if s.cfg.MaxBytes > 0 && int64(size) > s.cfg.MaxBytes {
				r.err = fmt.Errorf("boltstore: append: %w: event of %d bytes exceeds MaxBytes %d", store.ErrInvalidEvent, size, s.cfg.MaxBytes)
				continue
			}
			t := max(now, st.time)
			// bbolt keeps key and value slices until the commit: give
			// each its own bytes in buffers not reused before then.
			k0, v0 := len(st.keys), len(st.vals)
			st.keys = posKey(st.keys, pos)
			st.vals = encode(st.vals, e, custom, t)
			if err := events.Put(st.keys[k0:len(st.keys):len(st.keys)], st.vals[v0:len(st.vals):len(st.vals)]); err != nil {
				return fmt.Errorf("put event %d: %w", pos, err)
			}
			if custom {
				k1 := len(st.keys)
				st.keys = append(st.keys, e.ID...)
				st.keys = append(st.keys, 0)
				st.keys = posKey(st.keys, pos)
				if err := ids.Put(st.keys[k1:len(st.keys):len(st.keys)], nil); err != nil {
					return fmt.Errorf("index custom id of event %d: %w", pos, err)
				}
			}
			e.Pos, e.Time = pos, time.Unix(0, t)
			st.last, st.time, st.bytes = pos, t, st.bytes+uint64(size)
			appended++
			if s.keeping() && hasChannel(e.Topics) {
				if kt == nil {
					var err error
					if kt, err = newKeepTx(tx); err != nil {
						return err
					}
				}
				if err := s.keep(kt, &st, e, st.vals[v0:len(st.vals):len(st.vals)], size, keepCutoff); err != nil {
					return err
				}
			}
		}
		trimmed, m, err := s.trim(events, ids, &st, now, len(batch)+trimChunk)
		if err != nil {
			return err
		}
		if kt != nil || st.keepAny && st.keepOldest < keepCutoff || st.keepBytes > s.keepLimit() {
			if kt == nil {
				if kt, err = newKeepTx(tx); err != nil {
					return err
				}
			}
			n, m, err := s.trimKept(kt, &st, keepCutoff, len(batch)+trimChunk)
			if err != nil {
				return err
			}
			trimmed, more = trimmed+n, more || m
		}
		if appended == 0 && trimmed == 0 {
			return errNoop // nothing to write: no commit, no fsync
		}
		more = more || m
		kvs := [...]struct {
			k []byte
			v uint64
		}{
			{keyLast, st.last}, {keyOldest, st.oldest}, {keyBytes, st.bytes},
			{keyKeepLast, st.last}, {keyKeepBytes, st.keepBytes}, {keyKeepFloor, st.keepFloor},
		}
		n := 3 // with keeping off, keyKeepLast stops following the log
		if s.keeping() {
			n = len(kvs)
		}
		for _, kv := range kvs[:n] {
			k0 := len(st.vals)
			st.vals = posKey(st.vals, kv.v)
			if err := meta.Put(kv.k, st.vals[k0:len(st.vals):len(st.vals)]); err != nil {
				return fmt.Errorf("update meta: %w", err)
			}
		}
		return nil
	})
	if errors.Is(err, errNoop) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("boltstore: commit %s: %w", s.path, err)
	}
	keys, vals := s.w.keys, s.w.vals
	if cap(st.keys) > cap(keys) {
		keys = st.keys
	}
	if cap(st.vals) > cap(vals) && cap(st.vals) <= 16<<20 {
		vals = st.vals
	}
	s.w = st
	s.w.keys, s.w.vals = keys[:0], vals[:0]
	for _, r := range batch {
		if r.err == nil {
			r.res = r.ev
		}
	}
	if appended > 0 {
		s.last.Store(st.last)
		s.mu.Lock()
		if s.notify != nil {
			close(s.notify)
			s.notify = nil
		}
		s.mu.Unlock()
	}
	return more, nil
}

// trim deletes up to budget events from the front of the log while it
// exceeds the limits, and reports whether more remain to delete.
func (s *Store) trim(events, ids *bbolt.Bucket, st *writerState, now int64, budget int) (trimmed int, more bool, err error) {
	cutoff := now - int64(s.cfg.TTL)
	var k [8]byte
	var ik []byte
	for ; st.oldest <= st.last; st.oldest++ {
		over := s.cfg.MaxEvents > 0 && st.last-st.oldest+1 > uint64(s.cfg.MaxEvents) ||
			s.cfg.MaxBytes > 0 && st.bytes > uint64(s.cfg.MaxBytes)
		key := posKey(k[:0], st.oldest)
		v := events.Get(key)
		if v == nil {
			return trimmed, false, fmt.Errorf("event %d missing from the retained range", st.oldest)
		}
		if !over {
			t, _ := recordTime(v)
			if s.cfg.TTL <= 0 || t >= cutoff {
				return trimmed, false, nil
			}
		}
		if trimmed == budget {
			return trimmed, true, nil
		}
		trimmed++
		n, cid, ok := s.size(v, st.oldest)
		if !ok {
			return trimmed, false, fmt.Errorf("event %d: %w", st.oldest, errCorrupt)
		}
		if cid != nil {
			ik = append(append(append(ik[:0], cid...), 0), key...)
			if err := ids.Delete(ik); err != nil {
				return trimmed, false, fmt.Errorf("unindex event %d: %w", st.oldest, err)
			}
		}
		if err := events.Delete(key); err != nil {
			return trimmed, false, fmt.Errorf("delete event %d: %w", st.oldest, err)
		}
		st.bytes -= min(uint64(n), st.bytes)
	}
	return trimmed, false, nil
}

// size returns the bytes the record v at pos counts for in the meta byte
// count, and its custom id (nil for a generated one): its store.EventSize
// when it was appended, so without the "#" of a generated id for an event
// an earlier version appended (see keyIDPrefix).
func (s *Store) size(v []byte, pos uint64) (int, []byte, bool) {
	n, cid, ok := size(v, pos, s.epoch)
	if ok && cid == nil && pos < s.prefixFrom {
		n -= len(store.IDPrefix)
	}
	return n, cid, ok
}

// Append adds e to the log and returns once it is on disk. See
// [store.Store.Append]. ctx bounds the wait to enter the commit queue; once
// queued, Append waits for the commit (a few milliseconds), so that its
// result says whether the event is in the log.
func (s *Store) Append(ctx context.Context, e store.Event) (store.Event, error) {
	if err := ctx.Err(); err != nil {
		return store.Event{}, fmt.Errorf("boltstore: append: %w", err)
	}
	if err := store.ValidateEvent(&e); err != nil {
		return store.Event{}, fmt.Errorf("boltstore: append: %w", err)
	}
	if e.ID != "" {
		if _, ok := s.epoch.Pos(e.ID); ok {
			return store.Event{}, fmt.Errorf("boltstore: append: %w: custom id %q has the form of the ids this store generates", store.ErrInvalidEvent, e.ID)
		}
	}
	if store.EventSize(&e) > bbolt.MaxValueSize/2 {
		return store.Event{}, fmt.Errorf("boltstore: append: %w: event of %d bytes is too large for a bbolt value", store.ErrInvalidEvent, store.EventSize(&e))
	}
	if len(e.Topics) == 0 {
		e.Topics = nil
	} else {
		e.Topics = append([]string(nil), e.Topics...)
	}
	r := reqPool.Get().(*appendReq)
	r.ev = e
	select {
	case s.reqs <- r:
	case <-s.quit:
		return store.Event{}, fmt.Errorf("boltstore: append: %w", store.ErrClosed)
	case <-ctx.Done():
		*r = appendReq{done: r.done}
		reqPool.Put(r)
		return store.Event{}, fmt.Errorf("boltstore: append: %w", ctx.Err())
	}
	select {
	case <-r.done:
	case <-s.stopped:
		select {
		case <-r.done:
		default: // queued after the writer stopped: never committed
			return store.Event{}, fmt.Errorf("boltstore: append: %w", store.ErrClosed)
		}
	}
	res, err := r.res, r.err
	*r = appendReq{done: r.done}
	reqPool.Put(r)
	if err != nil {
		return store.Event{}, err
	}
	return res, nil
}

// bounds returns the retained range [first, last] as of tx, with the count
// and age limits applied (first is last+1 when nothing is retained).
func (s *Store) bounds(tx *bbolt.Tx) (first, last uint64, err error) {
	meta := tx.Bucket(bucketMeta)
	last, ok1 := u64(meta.Get(keyLast))
	first, ok2 := u64(meta.Get(keyOldest))
	if !ok1 || !ok2 {
		return 0, 0, fmt.Errorf("boltstore: %s: damaged meta bucket", s.path)
	}
	if s.cfg.MaxEvents > 0 && last+1-first > uint64(s.cfg.MaxEvents) {
		first = last + 1 - uint64(s.cfg.MaxEvents)
	}
	if s.cfg.TTL > 0 && first <= last {
		events := tx.Bucket(bucketEvents)
		cutoff := s.cfg.Now().UnixNano() - int64(s.cfg.TTL)
		expired := func(pos uint64) (bool, error) {
			t, ok := recordTime(events.Get(posKey(nil, pos)))
			if !ok {
				return false, fmt.Errorf("boltstore: %s: event %d missing or damaged", s.path, pos)
			}
			return t < cutoff, nil
		}
		if x, err := expired(first); err != nil || !x {
			return first, last, err
		}
		// Times never decrease along the log: binary search for the
		// first event still young enough.
		lo, hi := first+1, last+1
		for lo < hi {
			mid := lo + (hi-lo)/2
			x, err := expired(mid)
			if err != nil {
				return 0, 0, err
			}
			if x {
				lo = mid + 1
			} else {
				hi = mid
			}
		}
		first = lo
	}
	return first, last, nil
}

// view runs fn in a read transaction, reporting a closed store as
// store.ErrClosed.
func (s *Store) view(fn func(*bbolt.Tx) error) error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return store.ErrClosed
	}
	err := s.db.View(fn)
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return store.ErrClosed
	}
	return err
}

// resolve returns the position a cursor stands for and the last position.
func (s *Store) resolve(cursor string) (after, last uint64, err error) {
	err = s.view(func(tx *bbolt.Tx) error {
		first, l, err := s.bounds(tx)
		if err != nil {
			return err
		}
		last = l
		if cursor == "" {
			after = first - 1
			return nil
		}
		if pos, ok := s.epoch.Pos(cursor); ok {
			switch {
			case pos > last:
				return fmt.Errorf("%w: %q is beyond the end of the log", store.ErrUnknownID, cursor)
			case pos+1 < first:
				return fmt.Errorf("%w: %q", store.ErrExpired, cursor)
			}
			after = pos
			return nil
		}
		pos, ok := customPos(tx, cursor, first)
		if !ok {
			return fmt.Errorf("%w: %q", store.ErrUnknownID, cursor)
		}
		after = pos
		return nil
	})
	return after, last, err
}

// customPos returns the position of the first occurrence of custom id id
// at or after position first, through the index.
func customPos(tx *bbolt.Tx, id string, first uint64) (uint64, bool) {
	prefix := append([]byte(id), 0)
	c := tx.Bucket(bucketIDs).Cursor()
	for k, _ := c.Seek(prefix); bytes.HasPrefix(k, prefix) && len(k) == len(prefix)+8; k, _ = c.Next() {
		if pos := keyPos(k[len(prefix):]); pos >= first {
			return pos, true
		}
	}
	return 0, false
}

// Resolve returns the position a cursor stands for. See [store.Resolver].
func (s *Store) Resolve(ctx context.Context, cursor string) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	pos, _, err := s.resolve(cursor)
	if err != nil {
		return 0, fmt.Errorf("boltstore: resolve: %w", err)
	}
	return pos, nil
}

var _ store.Resolver = (*Store)(nil)

// PositionID returns the generated id of e's position. See
// [store.Positioner].
func (s *Store) PositionID(e *store.Event) string { return s.epoch.ID(e.Pos) }

// Lookup returns the first retained event with custom id id: one seek in
// the index and one lookup of the event. See [store.Positioner].
func (s *Store) Lookup(ctx context.Context, id string) (store.Event, bool, error) {
	if id == "" {
		return store.Event{}, false, nil
	}
	if _, ok := s.epoch.Pos(id); ok {
		return store.Event{}, false, nil
	}
	if err := ctx.Err(); err != nil {
		return store.Event{}, false, fmt.Errorf("boltstore: lookup: %w", err)
	}
	var e store.Event
	err := s.view(func(tx *bbolt.Tx) error {
		first, _, err := s.bounds(tx)
		if err != nil {
			return err
		}
		pos, ok := customPos(tx, id, first)
		if !ok {
			return fmt.Errorf("%w: %q", store.ErrUnknownID, id)
		}
		v := tx.Bucket(bucketEvents).Get(posKey(nil, pos))
		if v == nil {
			return fmt.Errorf("boltstore: %s: event %d missing from the retained range", s.path, pos)
		}
		if e, _, err = decode(v, pos, s.epoch, nil); err != nil {
			return fmt.Errorf("boltstore: %s: event %d: %w", s.path, pos, err)
		}
		return nil
	})
	if err != nil {
		return store.Event{}, false, fmt.Errorf("boltstore: lookup: %w", err)
	}
	return e, true, nil
}

var _ store.Positioner = (*Store)(nil)

// read appends to buf up to readBatch events after position after and up to
// position end.
func (s *Store) read(after, end uint64, buf []store.Event) ([]store.Event, error) {
	err := s.view(func(tx *bbolt.Tx) error {
		first, last, err := s.bounds(tx)
		if err != nil {
			return err
		}
		if after+1 < first {
			return fmt.Errorf("%w: events after position %d were evicted before they were read", store.ErrExpired, after)
		}
		end = min(end, last)
		var scratch [][2]int
		c := tx.Bucket(bucketEvents).Cursor()
		want := after + 1
		for k, v := c.Seek(posKey(nil, want)); want <= end && len(buf) < readBatch; k, v = c.Next() {
			if k == nil || keyPos(k) != want {
				return fmt.Errorf("boltstore: %s: event %d missing from the retained range", s.path, want)
			}
			var e store.Event
			if e, scratch, err = decode(v, want, s.epoch, scratch); err != nil {
				return fmt.Errorf("boltstore: %s: event %d: %w", s.path, want, err)
			}
			buf = append(buf, e)
			want++
		}
		return nil
	})
	return buf, err
}

// History yields the retained events after cursor that match filter, up to
// the end of the log as it is when iteration starts. See
// [store.Store.History]. If ctx is done before the end, the last element is
// ctx's error.
func (s *Store) History(ctx context.Context, cursor string, filter store.Filter) iter.Seq2[store.Event, error] {
	return func(yield func(store.Event, error) bool) {
		after, end, err := s.resolve(cursor)
		if err != nil {
			yield(store.Event{}, err)
			return
		}
		var buf []store.Event
		for after < end {
			if err := ctx.Err(); err != nil {
				yield(store.Event{}, fmt.Errorf("boltstore: history: %w", err))
				return
			}
			if buf, err = s.read(after, end, buf[:0]); err != nil {
				yield(store.Event{}, err)
				return
			}
			if len(buf) == 0 {
				return
			}
			for i := range buf {
				after = buf[i].Pos
				if filter != nil && !filter(&buf[i]) {
					continue
				}
				if !yield(buf[i], nil) {
					return
				}
			}
		}
	}
}

// Follow yields the events after cursor, then new ones as they are
// committed. See [store.Store.Follow].
func (s *Store) Follow(ctx context.Context, cursor string) iter.Seq2[store.Event, error] {
	return func(yield func(store.Event, error) bool) {
		after, _, err := s.resolve(cursor)
		if err != nil {
			yield(store.Event{}, err)
			return
		}
		var buf []store.Event
		for ctx.Err() == nil {
			if s.last.Load() <= after {
				s.mu.Lock()
				if s.closed {
					s.mu.Unlock()
					yield(store.Event{}, store.ErrClosed)
					return
				}
				if s.notify == nil {
					s.notify = make(chan struct{})
				}
				wait := s.notify
				s.mu.Unlock()
				if s.last.Load() <= after {
					select {
					case <-ctx.Done():
						return
					case <-wait:
					}
				}
				continue
			}
			if buf, err = s.read(after, ^uint64(0), buf[:0]); err != nil {
				yield(store.Event{}, err)
				return
			}
			for i := range buf {
				after = buf[i].Pos
				if !yield(buf[i], nil) {
					return
				}
			}
		}
	}
}

// Head returns the generated id of the last event committed, or "" if none
// was. See [store.Store.Head].
func (s *Store) Head(ctx context.Context) (string, error) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return "", fmt.Errorf("boltstore: head: %w", store.ErrClosed)
	}
	last := s.last.Load()
	if last == 0 {
		return "", nil
	}
	return s.epoch.ID(last), nil
}

// Close waits for the commit in progress, fails appends still queued with
// store.ErrClosed, ends every Follow with store.ErrClosed and closes the
// file. Closing a closed store does nothing.
func (s *Store) Close() error {
	var err error
	s.once.Do(func() {
		close(s.quit)
		<-s.stopped
		s.mu.Lock()
		s.closed = true
		if s.notify != nil {
			close(s.notify)
			s.notify = nil
		}
		s.mu.Unlock()
		if cerr := s.db.Close(); cerr != nil {
			err = fmt.Errorf("boltstore: close %s: %w", s.path, cerr)
		}
	})
	return err
}
