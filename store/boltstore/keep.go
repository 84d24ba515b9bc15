package boltstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"math"

	"go.etcd.io/bbolt"

	"github.com/sluicehq/sluice/store"
)

// What the store keeps of its channels ([store.Keeper]) is in three
// buckets, written in the transaction of the appends it keeps, which name a
// channel by its channelKey:
//
//	sluice.kept        uvarint(len(channel)) channel position → the event's
//	                   record, as in the events bucket
//	sluice.kept.chans  channel → last, dropped, count, oldest (8 bytes each,
//	                   big endian)
//	sluice.kept.lru    last channel → Time of the event at last (8 bytes): the
//	                   channels in the order they were last written to
//
// last is the position of the channel's newest event, count how many of its
// events are kept (never 0: a channel that keeps nothing is forgotten),
// oldest the Time of the oldest of them, and dropped the position of its
// newest event no longer kept, or the floor
// (keyKeepFloor) when it was first written: nothing is known of the channel
// at or before dropped. The meta bucket holds the sum of store.EventSize over
// the kept events (keyKeepBytes), the floor and, in keyKeepLast, the last
// position of the log as of the last commit that kept channels: an Open that
// finds another value knows a version that does not keep channels (or this
// one with keeping off) appended since, and starts over.
var (
	bucketKept      = []byte("sluice.kept")
	bucketKeptChans = []byte("sluice.kept.chans")
	bucketKeptLRU   = []byte("sluice.kept.lru")
	keyKeepBytes    = []byte("keepbytes")
	// keyKeepFloor is the position at or before which nothing is known of
	// a channel the store does not keep: the newest event of any channel
	// forgotten, or the last position when keeping started on this file.
	keyKeepFloor = []byte("keepfloor")
	keyKeepLast  = []byte("keeplast")
)

// maxChannelKey is the longest channel name the buckets hold as it is; a
// longer one (a bbolt key is at most 32 KiB) is held as its hash.
const maxChannelKey = 512

// channelKey returns the name under which the buckets hold channel: the
// channel, or for a long one a NUL and its SHA-256, which no channel is
// since every channel starts with store.ChannelPrefix.
func channelKey(channel string) string {
	if len(channel) <= maxChannelKey {
		return channel
	}
	h := sha256.Sum256([]byte(channel))
	return "\x00" + string(h[:])
}

// chanState is the value of a channel in the sluice.kept.chans bucket.
type chanState struct {
	last, dropped, count uint64
	oldest               int64
}

const chanStateLen = 32

func (c *chanState) append(dst []byte) []byte {
	dst = binary.BigEndian.AppendUint64(dst, c.last)
	dst = binary.BigEndian.AppendUint64(dst, c.dropped)
	dst = binary.BigEndian.AppendUint64(dst, c.count)
	return binary.BigEndian.AppendUint64(dst, uint64(c.oldest))
}

func parseChanState(v []byte) (chanState, bool) {
	if len(v) != chanStateLen {
		return chanState{}, false
	}
	c := chanState{keyPos(v), keyPos(v[8:]), keyPos(v[16:]), int64(keyPos(v[24:]))}
	return c, c.count > 0 && c.dropped < c.last
}

// chanKey appends to dst the prefix of the keys of channel's events in the
// sluice.kept bucket. The length makes it prefix-free: a key that starts with
// it is one of channel's.
func chanKey(dst []byte, channel string) []byte {
	return append(binary.AppendUvarint(dst, uint64(len(channel))), channel...)
}

// keeping reports whether the store keeps channels.
func (s *Store) keeping() bool { return s.cfg.KeepPerChannel > 0 }

// keepLimit is KeepMaxBytes as a bound on the kept byte count.
func (s *Store) keepLimit() uint64 {
	if s.cfg.KeepMaxBytes < 0 {
		return math.MaxUint64
	}
	return uint64(s.cfg.KeepMaxBytes)
}

// loadKeep reads the state of the kept channels as Open finds it, or starts
// keeping from the last position when the file was appended to by a version
// that did not keep channels (or by this one with keeping off): what it kept
// before may lack events since.
func (s *Store) loadKeep(tx *bbolt.Tx, last uint64) error {
	if !s.keeping() {
		// Left as they are: keyKeepLast stops following the log, so they
		// are dropped if keeping is turned on after more appends.
		return nil
	}
	meta := tx.Bucket(bucketMeta)
	if kl, ok := u64(meta.Get(keyKeepLast)); ok && kl == last &&
		tx.Bucket(bucketKept) != nil && tx.Bucket(bucketKeptChans) != nil && tx.Bucket(bucketKeptLRU) != nil {
		floor, ok1 := u64(meta.Get(keyKeepFloor))
		n, ok2 := u64(meta.Get(keyKeepBytes))
		if !ok1 || !ok2 || floor > last {
			return fmt.Errorf("boltstore: open %s: %w: damaged meta bucket (kept channels)", s.path, ErrInvalidFile)
		}
		s.w.keepFloor, s.w.keepBytes = floor, n
		s.w.keepOldest, s.w.keepAny = lruOldest(tx.Bucket(bucketKeptLRU))
		return nil
	}
	for _, name := range [][]byte{bucketKept, bucketKeptChans, bucketKeptLRU} {
		if tx.Bucket(name) != nil {
			if err := tx.DeleteBucket(name); err != nil {
				return fmt.Errorf("boltstore: open %s: reset kept channels: %w", s.path, err)
			}
		}
		if _, err := tx.CreateBucket(name); err != nil {
			return fmt.Errorf("boltstore: open %s: create %s: %w", s.path, name, err)
		}
	}
	for _, kv := range [][2][]byte{{keyKeepLast, posKey(nil, last)}, {keyKeepFloor, posKey(nil, last)}, {keyKeepBytes, posKey(nil, 0)}} {
		if err := meta.Put(kv[0], kv[1]); err != nil {
			return fmt.Errorf("boltstore: open %s: %w", s.path, err)
		}
	}
	s.w.keepFloor, s.w.keepBytes, s.w.keepOldest, s.w.keepAny = last, 0, 0, false
	return nil
}

// lruOldest returns the Time of the last write to the channel written to
// least recently, if there is one.
func lruOldest(lru *bbolt.Bucket) (int64, bool) {
	k, v := lru.Cursor().First()
	if k == nil || len(v) != 8 {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(v)), true
}

// keepTx is the kept channels' buckets in a commit.
type keepTx struct {
	events, chans, lru *bbolt.Bucket
	scratch            []byte // keys of lookups and deletes
}

func newKeepTx(tx *bbolt.Tx) (*keepTx, error) {
	kt := &keepTx{events: tx.Bucket(bucketKept), chans: tx.Bucket(bucketKeptChans), lru: tx.Bucket(bucketKeptLRU)}
	if kt.events == nil || kt.chans == nil || kt.lru == nil {
		return nil, errors.New("kept channels' buckets missing")
	}
	return kt, nil
}

// key returns channel as a key valid until the next call.
func (kt *keepTx) key(channel string) []byte {
	kt.scratch = append(kt.scratch[:0], channel...)
	return kt.scratch
}

// lruKey returns the key of channel, last written at position last, in the
// lru bucket, valid until the next call.
func (kt *keepTx) lruKey(last uint64, channel string) []byte {
	kt.scratch = append(posKey(kt.scratch[:0], last), channel...)
	return kt.scratch
}

func (kt *keepTx) state(channel string) (chanState, bool, error) {
	v := kt.chans.Get(kt.key(channel))
	if v == nil {
		return chanState{}, false, nil
	}
	c, ok := parseChanState(v)
	if !ok {
		return c, false, fmt.Errorf("kept channel %q: damaged state", channel)
	}
	return c, true, nil
}

// save writes the state c of channel, written last at Time t, or forgets
// the channel when it keeps nothing. The previous lru entry is already
// deleted when c.last changed.
func (kt *keepTx) save(st *writerState, channel string, c *chanState, t int64) error {
	if c.count == 0 {
		st.keepFloor = max(st.keepFloor, c.last)
		if err := kt.lru.Delete(kt.lruKey(c.last, channel)); err != nil {
			return fmt.Errorf("forget kept channel %q: %w", channel, err)
		}
		if err := kt.chans.Delete(kt.key(channel)); err != nil {
			return fmt.Errorf("forget kept channel %q: %w", channel, err)
		}
		return nil
	}
	if err := kt.putState(st, channel, c); err != nil {
		return err
	}
	// bbolt keeps the slices put until the commit: st's buffers are not
	// reused before then.
	k0, v0 := len(st.keys), len(st.vals)
	st.keys = append(posKey(st.keys, c.last), channel...)
	st.vals = binary.BigEndian.AppendUint64(st.vals, uint64(t))
	if err := kt.lru.Put(st.keys[k0:len(st.keys):len(st.keys)], st.vals[v0:len(st.vals):len(st.vals)]); err != nil {
		return fmt.Errorf("kept channel %q: %w", channel, err)
	}
	return nil
}

// putState writes the state c of channel.
func (kt *keepTx) putState(st *writerState, channel string, c *chanState) error {
	k0, v0 := len(st.keys), len(st.vals)
	st.keys = append(st.keys, channel...)
	st.vals = c.append(st.vals)
	if err := kt.chans.Put(st.keys[k0:len(st.keys):len(st.keys)], st.vals[v0:len(st.vals):len(st.vals)]); err != nil {
		return fmt.Errorf("kept channel %q: %w", channel, err)
	}
	return nil
}

// keep keeps the event e at pos, whose record is rec, under each of its
// channels, and drops what their count and age limits no longer allow.
func (s *Store) keep(kt *keepTx, st *writerState, e *store.Event, rec []byte, size int, cutoff int64) error {
	t, _ := recordTime(rec)
	for _, tp := range e.Topics {
		if !store.IsChannel(tp) {
			continue
		}
		name := channelKey(tp)
		c, ok, err := kt.state(name)
		switch {
		case err != nil:
			return err
		case ok && c.last == e.Pos:
			continue // the topic is repeated in e.Topics
		case ok:
			if err := kt.lru.Delete(kt.lruKey(c.last, name)); err != nil {
				return fmt.Errorf("kept channel %q: %w", name, err)
			}
		default:
			c.dropped, c.oldest = st.keepFloor, t
		}
		c.last = e.Pos
		if uint64(size) > s.keepLimit() {
			// Too large to keep: the channel loses it, and with it
			// everything before it.
			if _, err := s.dropFront(kt, st, name, &c, 0, cutoff, math.MaxUint64, math.MaxInt); err != nil {
				return err
			}
			c.dropped = e.Pos
			if err := kt.save(st, name, &c, t); err != nil {
				return err
			}
			continue
		}
		k0 := len(st.keys)
		st.keys = posKey(chanKey(st.keys, name), e.Pos)
		if err := kt.events.Put(st.keys[k0:len(st.keys):len(st.keys)], rec); err != nil {
			return fmt.Errorf("keep event %d in channel %q: %w", e.Pos, name, err)
		}
		c.count++
		st.keepBytes += uint64(size)
		if c.count > uint64(s.cfg.KeepPerChannel) || c.oldest < cutoff {
			if _, err := s.dropFront(kt, st, name, &c, uint64(s.cfg.KeepPerChannel), cutoff, math.MaxUint64, math.MaxInt); err != nil {
				return err
			}
		}
		if err := kt.save(st, name, &c, t); err != nil {
			return err
		}
	}
	return nil
}

// dropFront drops the oldest events of channel, whose state is c, while it
// keeps more than keep or the oldest has a Time before cutoff or the kept
// byte count exceeds limit, up to budget events. It updates c and the byte
// count, and returns how many it dropped.
func (s *Store) dropFront(kt *keepTx, st *writerState, channel string, c *chanState, keep uint64, cutoff int64, limit uint64, budget int) (int, error) {
	prefix := chanKey(nil, channel)
	cur := kt.events.Cursor()
	n := 0
	for c.count > 0 {
		k, v := cur.Seek(prefix)
		if k == nil || !bytes.HasPrefix(k, prefix) || len(k) != len(prefix)+8 {
			return n, fmt.Errorf("kept channel %q: %d events counted, none stored", channel, c.count)
		}
		t, ok := recordTime(v)
		if !ok {
			return n, fmt.Errorf("kept channel %q: %w", channel, errCorrupt)
		}
		c.oldest = t
		if c.count <= keep && t >= cutoff && st.keepBytes <= limit || n == budget {
			break
		}
		pos := keyPos(k[len(prefix):])
		sz, _, ok := size(v, pos, s.epoch)
		if !ok {
			return n, fmt.Errorf("kept channel %q, event %d: %w", channel, pos, errCorrupt)
		}
		if err := cur.Delete(); err != nil {
			return n, fmt.Errorf("drop event %d of kept channel %q: %w", pos, channel, err)
		}
		st.keepBytes -= min(uint64(sz), st.keepBytes)
		c.count--
		c.dropped = max(c.dropped, pos)
		n++
	}
	return n, nil
}

// trimKept drops, from the channels written to least recently, what is
// older than KeepFor and what exceeds KeepMaxBytes, up to budget events,
// and reports whether more remain to drop. It updates st.keepOldest and
// st.keepAny.
func (s *Store) trimKept(kt *keepTx, st *writerState, cutoff int64, budget int) (dropped int, more bool, err error) {
	for {
		k, v := kt.lru.Cursor().First()
		st.keepAny = len(k) >= 8 && len(v) == 8 // else none (or damaged: left alone)
		if !st.keepAny {
			break
		}
		st.keepOldest = int64(binary.BigEndian.Uint64(v))
		if st.keepOldest >= cutoff && st.keepBytes <= s.keepLimit() {
			break
		}
		if dropped == budget {
			return dropped, true, nil
		}
		name := string(k[8:])
		c, ok, err := kt.state(name)
		if err == nil && !ok {
			err = fmt.Errorf("kept channel %q: in the lru bucket only", name)
		}
		if err != nil {
			return dropped, false, err
		}
		n, err := s.dropFront(kt, st, name, &c, uint64(s.cfg.KeepPerChannel), cutoff, s.keepLimit(), budget-dropped)
		if err != nil {
			return dropped, false, err
		}
		dropped += n
		if c.count > 0 {
			// What is kept is within the limits, or the budget ran
			// out: its state changes, not its place in the lru.
			return dropped, dropped == budget, kt.putState(st, name, &c)
		}
		if err := kt.save(st, name, &c, 0); err != nil {
			return dropped, false, err
		}
	}
	return dropped, false, nil
}

// Kept yields the kept events of channel after cursor. See [store.Keeper].
// The events are read in batches, each in its own read transaction: if the
// events after the last one yielded are dropped in between, the last
// element is store.ErrExpired.
func (s *Store) Kept(ctx context.Context, channel, cursor string) iter.Seq2[store.Event, error] {
	return func(yield func(store.Event, error) bool) {
		fail := func(err error) { yield(store.Event{}, fmt.Errorf("boltstore: kept %q: %w", channel, err)) }
		if err := ctx.Err(); err != nil {
			fail(err)
			return
		}
		var after uint64
		if cursor != "" {
			pos, ok := s.epoch.Pos(cursor)
			if !ok {
				fail(fmt.Errorf("%w: %q is not an id this log generated", store.ErrUnknownID, cursor))
				return
			}
			after = pos
		}
		check, end := cursor != "", uint64(0)
		var buf []store.Event
		for first := true; ; first = false {
			if !first {
				if err := ctx.Err(); err != nil {
					fail(err)
					return
				}
			}
			var err error
			if buf, end, err = s.readKept(channel, cursor, after, check, first, end, buf[:0]); err != nil {
				fail(err)
				return
			}
			for i := range buf {
				if !yield(buf[i], nil) {
					return
				}
			}
			if len(buf) < readBatch {
				return
			}
			after, check = buf[len(buf)-1].Pos, true
		}
	}
}

// readKept appends to buf up to readBatch kept events of channel after
// position after and up to position end, the channel's last when first.
// With check, it fails with store.ErrExpired if an event of the channel after
// after is no longer kept.
func (s *Store) readKept(channel, cursor string, after uint64, check, first bool, end uint64, buf []store.Event) ([]store.Event, uint64, error) {
	err := s.view(func(tx *bbolt.Tx) error {
		if first && cursor != "" {
			last, ok := u64(tx.Bucket(bucketMeta).Get(keyLast))
			switch {
			case !ok:
				return fmt.Errorf("boltstore: %s: damaged meta bucket", s.path)
			case after > last:
				return fmt.Errorf("%w: %q is beyond the end of the log", store.ErrUnknownID, cursor)
			}
		}
		nothing := func() error {
			if check {
				return fmt.Errorf("%w: nothing of the channel is kept", store.ErrExpired)
			}
			return nil
		}
		chans, events := tx.Bucket(bucketKeptChans), tx.Bucket(bucketKept)
		if !s.keeping() || chans == nil || events == nil {
			return nothing()
		}
		key := channelKey(channel)
		v := chans.Get([]byte(key))
		if v == nil {
			return nothing()
		}
		c, ok := parseChanState(v)
		if !ok {
			return fmt.Errorf("boltstore: %s: kept channel %q: damaged state", s.path, channel)
		}
		if first {
			end = c.last
		}
		// Apply the count and age limits as of now: the writer drops what
		// they exclude only when it next writes.
		skip := uint64(0)
		if c.count > uint64(s.cfg.KeepPerChannel) {
			skip = c.count - uint64(s.cfg.KeepPerChannel)
		}
		cutoff := s.cfg.Now().UnixNano() - int64(s.cfg.KeepFor)
		prefix := chanKey(nil, key)
		cur := events.Cursor()
		dropped := c.dropped
		k, v := cur.Seek(prefix)
		for ; k != nil && bytes.HasPrefix(k, prefix); k, v = cur.Next() {
			t, ok := recordTime(v)
			if !ok || len(k) != len(prefix)+8 {
				return fmt.Errorf("boltstore: %s: kept channel %q: %w", s.path, channel, errCorrupt)
			}
			if skip == 0 && t >= cutoff {
				break
			}
			skip = max(skip, 1) - 1
			dropped = keyPos(k[len(prefix):])
		}
		switch {
		case k == nil || !bytes.HasPrefix(k, prefix):
			return nothing()
		case check && dropped > after && first:
			return fmt.Errorf("%w: events of the channel after %q were dropped", store.ErrExpired, cursor)
		case check && dropped > after:
			return fmt.Errorf("%w: events of the channel after position %d were dropped before they were read", store.ErrExpired, after)
		}
		if keyPos(k[len(prefix):]) <= after {
			k, v = cur.Seek(posKey(prefix, after+1))
		}
		var scratch [][2]int
		for ; k != nil && bytes.HasPrefix(k, prefix) && len(buf) < readBatch; k, v = cur.Next() {
			pos := keyPos(k[len(prefix):])
			if pos > end {
				break
			}
			var e store.Event
			var err error
			if e, scratch, err = decode(v, pos, s.epoch, scratch); err != nil {
				return fmt.Errorf("boltstore: %s: kept channel %q, event %d: %w", s.path, channel, pos, err)
			}
			buf = append(buf, e)
		}
		return nil
	})
	return buf, end, err
}

var _ store.Keeper = (*Store)(nil)

// hasChannel reports whether a topic of topics is a channel.
func hasChannel(topics []string) bool {
	for _, tp := range topics {
		if store.IsChannel(tp) {
			return true
		}
	}
	return false
}
