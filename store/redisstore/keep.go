package redisstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicehq/sluice/store"
)

// Keeping channels ([store.Keeper]). The append script keeps each event of
// a channel in a stream of the channel's own, PREFIXkeep:EPOCH:HASH (HASH:
// the hex SHA-256 of the channel, which may be long and hold any
// character; the epoch, so that a log created again never reads the kept
// events of the one before), under the event's own entry id ms-n, with
// the fields of the log's entry and p, the position of the channel's
// previous event. These prev positions chain the channel's events: Kept
// knows nothing after its cursor was dropped when the first kept event
// after the cursor has its prev at or before the cursor, and each later
// one the position of the one before it. Whatever drops events (the
// trimming by count and age, the key's expiry, eviction under maxmemory,
// an append by a store that keeps nothing), the next event's prev still
// names the newest one before it or a position after it, never an older
// one, so a drop is never mistaken for a complete channel. See
// appendScript for the index and the watermarks that make this so.

// Batch sizes of Kept's reads.
const (
	keptFirst = 512  // entries read with the meta hash
	keptNext  = 1024 // entries per later XRANGE
)

// channelHashes returns the hex SHA-256 of each distinct channel among
// topics, or nil if there is none.
func channelHashes(topics []string) []string {
	var hs []string
	for _, tp := range topics {
		if !store.IsChannel(tp) {
			continue
		}
		if h := keptHash(tp); !slices.Contains(hs, h) {
			hs = append(hs, h)
		}
	}
	return hs
}

// keptHash names channel in the key of its kept events.
func keptHash(channel string) string {
	sum := sha256.Sum256([]byte(channel))
	return hex.EncodeToString(sum[:])
}

// keepKeys returns the keys of an append script call that keeps events of
// channels of log ep: the store's keys, the index (last, when) and the
// streams of the channels hashes name.
func (s *Store) keepKeys(ep store.Epoch, hashes []string) []string {
	base := s.kKeep + string(ep) + ":"
	keys := make([]string, 0, len(s.keys)+2+len(hashes))
	keys = append(keys, s.keys...)
	keys = append(keys, base+"last", base+"when")
	for _, h := range hashes {
		keys = append(keys, base+h)
	}
	return keys
}

// keepArgs appends to args the keeping part of the append script's ARGV
// for batch (see appendScript) and returns the hashes of the channels it
// names, in the order of their keys after the index's (keepKeys). A batch
// without events of channels adds one argument and no key.
func (s *Store) keepArgs(args []any, batch []*appendReq, now time.Time) ([]any, []string) {
	np, lastCh := 0, 0
	for i, r := range batch {
		if len(r.chans) > 0 {
			np += len(r.chans)
			lastCh = i + 1
		}
	}
	switch {
	case np == 0:
		return append(args, 0), nil
	case s.keepPer < 0:
		return append(args, -lastCh), nil
	}
	ttl := (s.keepFor + time.Millisecond - 1).Milliseconds()
	args = append(args, np, s.keepCutoff(now), ttl, s.keepPer)
	idx := make(map[string]int, np)
	var hashes []string
	for i, r := range batch {
		for _, h := range r.chans {
			k, ok := idx[h]
			if !ok {
				k = len(s.keys) + 3 + len(hashes) // KEYS is 1-based
				idx[h] = k
				hashes = append(hashes, h)
			}
			args = append(args, i+1, k)
		}
	}
	return args, hashes
}

// keepCutoff returns the milliseconds of the oldest event time kept at
// now: an event is kept for KeepFor after its Time.
func (s *Store) keepCutoff(now time.Time) int64 {
	return max(ceilMilli(now.Add(-s.keepFor)), 0)
}

// Kept yields, in log order, the kept events of channel after cursor, a
// generated id of the log in either form (also of an evicted event), or
// "" for every event kept. It reads the meta hash and the channel's first
// events in one round trip, and the rest keptNext at a time. When it
// cannot prove that no event of the channel after the cursor was dropped,
// or nothing of the channel is kept and the cursor is not "", the first
// and only element is [store.ErrExpired]; an event dropped while Kept
// reads (the channel trimmed by appends meanwhile) ends it with
// store.ErrExpired after the events before it. See [store.Keeper].
func (s *Store) Kept(ctx context.Context, channel, cursor string) iter.Seq2[store.Event, error] {
	return func(yield func(store.Event, error) bool) {
		if err := s.kept(ctx, channel, cursor, yield); err != nil {
			if ctx.Err() != nil && !errors.Is(err, store.ErrUnknownID) && !errors.Is(err, store.ErrExpired) {
				err = ctx.Err()
			}
			yield(store.Event{}, s.wrapRead(fmt.Sprintf("kept %q", channel), err))
		}
	}
}

// kept yields what Kept yields and returns the error that ends it, nil
// when it ends because yield returned false or there is nothing more.
func (s *Store) kept(ctx context.Context, channel, cursor string, yield func(store.Event, error) bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed() {
		return store.ErrClosed
	}
	var cpos position // zero for ""
	ep := s.currentEpoch()
	if cursor != "" {
		var ok bool
		if ep, cpos, ok = parseID(cursor); !ok {
			return fmt.Errorf("%w: %q is not an id this log generated", store.ErrUnknownID, cursor)
		}
	}
	cut := position{ms: uint64(s.keepCutoff(s.now()))}
	start := maxPos(cpos, cut)
	hash := keptHash(channel)
	var key string
	var m meta
	var kx uint64
	var newest, first []redis.XMessage
	for attempt := 0; ; attempt++ {
		key = s.keepKeys(ep, []string{hash})[len(s.keys)+2]
		// One snapshot: the newest event kept (not past KeepFor), the first
		// ones after the cursor, and the watermark they are checked against.
		pipe := s.read.TxPipeline()
		metaCmd := pipe.HMGet(ctx, s.kMeta, "epoch", "n", "ms", "f", "kx", "kn")
		nc := pipe.XRevRangeN(ctx, key, "+", cut.streamID(), 1)
		fc := pipe.XRangeN(ctx, key, "("+start.streamID(), "+", keptFirst)
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		vals := metaCmd.Val()
		var err error
		if m, err = parseMeta(vals[:4]); err != nil {
			return err
		}
		var kn uint64
		for i, f := range []*uint64{&kx, &kn} {
			if v, _ := vals[4+i].(string); v != "" {
				if *f, err = strconv.ParseUint(v, 10, 64); err != nil {
					return fmt.Errorf("corrupt meta hash: %w", err)
				}
			}
		}
		if kn != m.last.n {
			kx = m.last.n // the last appends kept no channel (an older version)
		}
		newest, first = nc.Val(), fc.Val()
		if m.epoch == ep {
			break
		}
		switch {
		case cursor != "":
			return fmt.Errorf("%w: %q is not an id of this log", store.ErrUnknownID, cursor)
		case m.epoch == "" || attempt > 0:
			return nil // no log: nothing kept
		}
		// The log was created again since this store last saw it.
		ep = m.epoch
		s.epochMu.Lock()
		s.epoch = ep
		s.epochMu.Unlock()
	}
	if cpos.n > m.last.n || cpos.n == m.last.n && cpos.ms != m.last.ms {
		return fmt.Errorf("%w: %q is beyond the end of the log", store.ErrUnknownID, cursor)
	}
	if len(newest) == 0 {
		if cursor == "" {
			return nil
		}
		return fmt.Errorf("%w: nothing of the channel is kept", store.ErrExpired)
	}
	end, ok := parseStreamID(newest[0].ID)
	if !ok {
		return fmt.Errorf("kept entry id %q: %w", newest[0].ID, errCorrupt)
	}
	if kx > max(cpos.n, end.n) {
		return fmt.Errorf("%w: events of channels up to position %d were appended by a store that did not keep them", store.ErrExpired, kx)
	}

	after := cpos.n // the position of the last event yielded, or the cursor's
	checked := cursor != ""
	batch, full := first, len(first) == keptFirst
	for page := 0; ; page++ {
		var last position
		for i := range batch {
			x := &batch[i]
			p, ok := parseStreamID(x.ID)
			if !ok {
				return fmt.Errorf("kept entry id %q: %w", x.ID, errCorrupt)
			}
			last = p
			if p.n <= after {
				continue // before the cursor (whose ms part sorts it too early)
			}
			ps, _ := x.Values["p"].(string)
			prev, err := strconv.ParseUint(ps, 10, 64)
			if err != nil {
				return fmt.Errorf("kept entry %s: %w", x.ID, errCorrupt)
			}
			if checked && prev > after {
				if after == cpos.n {
					return fmt.Errorf("%w: events of the channel after %q were dropped", store.ErrExpired, cursor)
				}
				return fmt.Errorf("%w: events of the channel after position %d were dropped while they were read", store.ErrExpired, after)
			}
			mf, _ := x.Values["m"].(string)
			d, _ := x.Values["d"].(string)
			e, err := decodeEntry(ep, p, mf, d)
			if err != nil {
				return fmt.Errorf("kept entry %s: %w", x.ID, err)
			}
			if !slices.Contains(e.Topics, channel) {
				return fmt.Errorf("kept entry %s is not of the channel: %w", x.ID, errCorrupt)
			}
			if !yield(e, nil) {
				return nil
			}
			after, checked = p.n, true
		}
		switch {
		case after >= end.n:
			return nil
		case page == 0 && len(batch) == 0:
			// The newest kept event is after the cursor, which sorts after
			// it: its millisecond part is not its event's.
			return fmt.Errorf("%w: %q", store.ErrUnknownID, cursor)
		case !full:
			return fmt.Errorf("%w: events of the channel after position %d were dropped while they were read", store.ErrExpired, after)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		var err error
		batch, err = s.read.XRangeN(ctx, key, "("+last.streamID(), end.streamID(), keptNext).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		full = len(batch) == keptNext
	}
}
