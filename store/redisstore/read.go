package redisstore

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicehq/sluice/internal/backoff"
	"github.com/sluicehq/sluice/store"
)

// Batch sizes of reads.
const (
	historyFirst = 512  // entries fetched with the cursor's resolution
	historyNext  = 1024 // entries per later XRANGE
	followCount  = 256  // entries per XREAD: bounds how far Follow reads ahead
)

// cursorReader is where a read stands: after a position, with the next
// entries already fetched.
type cursorReader struct {
	epoch store.Epoch
	after position // the last position consumed
	known bool     // after.n is exact (false only for "" before the first entry)
	end   position // History's end: the last event when it started
	batch []redis.XMessage
	more  bool // the batch was full: more entries may follow it up to end
}

// resolve turns cursor into a reader positioned after it, with the first
// entries after it (up to count). It reads the meta hash and, for a
// generated cursor, the entries from the cursor on, in one round trip; a
// custom id costs one more. Errors: ErrUnknownID, ErrExpired, or Redis's.
func (s *Store) resolve(ctx context.Context, cursor string, count int64) (*cursorReader, error) {
	var minMS uint64
	if s.cfg.MaxAge > 0 {
		minMS = uint64(max(ceilMilli(s.now().Add(-s.cfg.MaxAge)), 0))
	}
	ageStart := position{ms: minMS}

	var cep store.Epoch
	var cpos position
	generated := false
	if cursor != "" {
		cep, cpos, generated = parseID(cursor)
	}
	pipe := s.read.Pipeline()
	metaCmd := pipe.HMGet(ctx, s.kMeta, "epoch", "n", "ms", "f")
	var xr *redis.XMessageSliceCmd
	var ix *redis.StringSliceCmd
	switch {
	case cursor == "":
		xr = pipe.XRangeN(ctx, s.kLog, ageStart.streamID(), "+", count)
	case generated:
		xr = pipe.XRangeN(ctx, s.kLog, maxPos(cpos, ageStart).streamID(), "+", count+1)
		fallthrough // another log's generated id is a custom id here
	default:
		ix = pipe.ZRangeArgs(ctx, idRange(s.kIDs, cursor, 0, idxPage))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	m, err := parseMeta(metaCmd.Val())
	if err != nil {
		return nil, err
	}
	rd := &cursorReader{epoch: m.epoch, end: m.last}

	if cursor == "" {
		rd.batch = trimTo(xr.Val(), m.last.n)
		rd.more = int64(len(xr.Val())) == count
		if len(rd.batch) == 0 {
			// Nothing retained: new events come after the last one.
			rd.after, rd.known = m.last, true
		} else {
			rd.after = position{ms: minMS}
		}
		return rd, nil
	}

	var entries []redis.XMessage
	if generated && (cep != m.epoch || m.epoch == "") && len(ix.Val()) == 0 {
		return nil, fmt.Errorf("%w: %q is not an id of this log", store.ErrUnknownID, cursor)
	}
	if generated && cep == m.epoch {
		if cpos.n > m.last.n || cpos.n == m.last.n && cpos.ms != m.last.ms {
			return nil, fmt.Errorf("%w: %q", store.ErrUnknownID, cursor)
		}
		entries = xr.Val()
	} else {
		if cpos, err = s.findCustom(ctx, cursor, ix.Val(), m, minMS); err != nil {
			return nil, err
		}
		entries, err = s.read.XRangeN(ctx, s.kLog, maxPos(cpos, ageStart).streamID(), "+", count+1).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, err
		}
	}
	full := int64(len(entries)) == count+1
	entries = trimTo(entries, m.last.n)
	if len(entries) == 0 {
		if cpos.n < m.last.n {
			return nil, fmt.Errorf("%w: %q: the events after it were evicted", store.ErrExpired, cursor)
		}
		rd.after, rd.known = cpos, true
		return rd, nil
	}
	p0, ok := parseStreamID(entries[0].ID)
	switch {
	case !ok:
		return nil, fmt.Errorf("stream entry id %q: %w", entries[0].ID, errCorrupt)
	case p0 == cpos:
		entries = entries[1:]
	case p0.n == cpos.n+1 && (cpos.n < m.first || cpos.ms < minMS):
		// The cursor's own event was evicted, but nothing after it is
		// missing.
	case p0.n == cpos.n+1:
		// The cursor's event should be retained but is not there: the log
		// lost it (a failover to a replica that lacked it) and its position
		// now holds another event, or will.
		return nil, fmt.Errorf("%w: %q is not in the log", store.ErrUnknownID, cursor)
	case p0.n > cpos.n+1:
		return nil, fmt.Errorf("%w: %q", store.ErrExpired, cursor)
	default:
		// An entry at or before the cursor's position sorts after it: the
		// id's millisecond part is not the event's.
		return nil, fmt.Errorf("%w: %q", store.ErrUnknownID, cursor)
	}
	rd.after, rd.known, rd.batch, rd.more = cpos, true, entries, full
	return rd, nil
}

// idxPage is how many index members of one custom id a read fetches at a
// time.
const idxPage = 16

// findCustom returns the position of the first retained occurrence of
// custom id id, given the log's meta and the first page of the id's index
// members (fetching more pages if needed). Events below minMS are past
// MaxAge. Errors: ErrExpired when the id is indexed but none of its
// occurrences is retained, ErrUnknownID when it is not indexed.
func (s *Store) findCustom(ctx context.Context, id string, members []string, m meta, minMS uint64) (position, error) {
	seen := false
	for offset := int64(0); ; {
		for _, mem := range members {
			p, ok := parseIndexMember(mem)
			if !ok {
				continue
			}
			seen = true
			if p.n >= m.first && p.n <= m.last.n && p.ms >= minMS {
				return p, nil
			}
		}
		if len(members) < idxPage {
			break
		}
		offset += idxPage
		var err error
		members, err = s.read.ZRangeArgs(ctx, idRange(s.kIDs, id, offset, idxPage)).Result()
		if err != nil {
			return position{}, err
		}
	}
	if seen {
		return position{}, fmt.Errorf("%w: every event with custom id %q was evicted", store.ErrExpired, id)
	}
	return position{}, fmt.Errorf("%w: %q", store.ErrUnknownID, id)
}

// idRange selects the index members of custom id id, in position order.
func idRange(key, id string, offset, count int64) redis.ZRangeArgs {
	return redis.ZRangeArgs{Key: key, ByLex: true, Start: "[" + id + "\x00", Stop: "(" + id + "\x01", Offset: offset, Count: count}
}

func maxPos(a, b position) position {
	if a.ms > b.ms || a.ms == b.ms && a.n >= b.n {
		return a
	}
	return b
}

// trimTo drops the entries after position last.
func trimTo(entries []redis.XMessage, last uint64) []redis.XMessage {
	for i := len(entries) - 1; i >= 0; i-- {
		p, ok := parseStreamID(entries[i].ID)
		if !ok || p.n <= last {
			return entries[:i+1]
		}
	}
	return entries[:0]
}

// decode appends to dst the events of entries, checking that they follow
// rd.after without a gap, and advances rd.after. A gap (events trimmed
// before they were read) returns the events before it and ErrExpired.
func (rd *cursorReader) decode(dst []store.Event, entries []redis.XMessage) ([]store.Event, error) {
	for i := range entries {
		x := &entries[i]
		p, ok := parseStreamID(x.ID)
		if !ok {
			return dst, fmt.Errorf("stream entry id %q: %w", x.ID, errCorrupt)
		}
		if rd.known && p.n != rd.after.n+1 {
			if p.n <= rd.after.n {
				// Positions went back: the log was deleted and created
				// again under the same prefix.
				return dst, fmt.Errorf("%w: the log was replaced (position %d after %d)", store.ErrUnknownID, p.n, rd.after.n)
			}
			return dst, fmt.Errorf("%w: events %d to %d were evicted before they were read", store.ErrExpired, rd.after.n+1, p.n-1)
		}
		m, _ := x.Values["m"].(string)
		d, _ := x.Values["d"].(string)
		e, err := decodeEntry(rd.epoch, p, m, d)
		if err != nil {
			return dst, fmt.Errorf("stream entry %s: %w", x.ID, err)
		}
		dst = append(dst, e)
		rd.after, rd.known = p, true
	}
	return dst, nil
}

// wrapRead wraps a read error, turning the errors of a closed client into
// ErrClosed.
func (s *Store) wrapRead(op string, err error) error {
	if s.closed() && !errors.Is(err, store.ErrUnknownID) && !errors.Is(err, store.ErrExpired) {
		err = store.ErrClosed
	}
	return fmt.Errorf("redisstore: %s: %w", op, err)
}

// Resolve returns the position of the event cursor names, reading Redis:
// History and Follow from cursor yield the retained events after it. See
// [store.Resolver].
func (s *Store) Resolve(ctx context.Context, cursor string) (uint64, error) {
	if s.closed() {
		return 0, fmt.Errorf("redisstore: resolve: %w", store.ErrClosed)
	}
	rd, err := s.resolve(ctx, cursor, 1)
	if err != nil {
		return 0, s.wrapRead("resolve", err)
	}
	// For "", rd.after is below the first retained event (n == 0), or the
	// last event when none is retained.
	return rd.after.n, nil
}

// PositionID returns the generated id of e's position: the epoch of the
// log as this store last saw it (Open, an append, Head), e.Pos and e.Time's
// milliseconds. See [store.Positioner].
func (s *Store) PositionID(e *store.Event) string {
	return formatID(s.currentEpoch(), position{ms: uint64(e.Time.UnixMilli()), n: e.Pos})
}

// Lookup returns the first retained event with custom id id, in two round
// trips: the meta hash and the id's index, then the entry. An id in the
// form of this log's generated ids costs none. See [store.Positioner].
func (s *Store) Lookup(ctx context.Context, id string) (store.Event, bool, error) {
	if id == "" {
		return store.Event{}, false, nil
	}
	cep, _, generated := parseID(id)
	if generated && cep == s.currentEpoch() {
		return store.Event{}, false, nil
	}
	if s.closed() {
		return store.Event{}, false, fmt.Errorf("redisstore: lookup: %w", store.ErrClosed)
	}
	e, ok, err := s.lookup(ctx, id, cep, generated)
	if err != nil {
		if errors.Is(err, store.ErrExpired) {
			err = fmt.Errorf("%w: %q", store.ErrUnknownID, id) // see store.Positioner
		}
		return store.Event{}, false, s.wrapRead("lookup", err)
	}
	return e, ok, nil
}

func (s *Store) lookup(ctx context.Context, id string, cep store.Epoch, generated bool) (store.Event, bool, error) {
	var minMS uint64
	if s.cfg.MaxAge > 0 {
		minMS = uint64(max(ceilMilli(s.now().Add(-s.cfg.MaxAge)), 0))
	}
	pipe := s.read.Pipeline()
	metaCmd := pipe.HMGet(ctx, s.kMeta, "epoch", "n", "ms", "f")
	ix := pipe.ZRangeArgs(ctx, idRange(s.kIDs, id, 0, idxPage))
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return store.Event{}, false, err
	}
	m, err := parseMeta(metaCmd.Val())
	if err != nil {
		return store.Event{}, false, err
	}
	if generated && cep == m.epoch && m.epoch != "" {
		// A generated id of the log, whose epoch this store had not seen.
		return store.Event{}, false, nil
	}
	p, err := s.findCustom(ctx, id, ix.Val(), m, minMS)
	if err != nil {
		return store.Event{}, false, err
	}
	entries, err := s.read.XRangeN(ctx, s.kLog, p.streamID(), p.streamID(), 1).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return store.Event{}, false, err
	}
	if len(entries) == 0 {
		return store.Event{}, false, fmt.Errorf("%w: %q was trimmed", store.ErrUnknownID, id)
	}
	mf, _ := entries[0].Values["m"].(string)
	d, _ := entries[0].Values["d"].(string)
	e, err := decodeEntry(m.epoch, p, mf, d)
	if err != nil {
		return store.Event{}, false, fmt.Errorf("stream entry %s: %w", entries[0].ID, err)
	}
	return e, true, nil
}

// History yields the retained events after cursor that match filter, up to
// the last event when it starts. See [store.Store.History]. A Redis error
// while reading is the last element.
func (s *Store) History(ctx context.Context, cursor string, filter store.Filter) iter.Seq2[store.Event, error] {
	return func(yield func(store.Event, error) bool) {
		if s.closed() {
			yield(store.Event{}, fmt.Errorf("redisstore: history: %w", store.ErrClosed))
			return
		}
		rd, err := s.resolve(ctx, cursor, historyFirst)
		if err != nil {
			yield(store.Event{}, s.wrapRead("history", err))
			return
		}
		var evs []store.Event
		for {
			evs, err = rd.decode(evs[:0], rd.batch)
			for i := range evs {
				if filter != nil && !filter(&evs[i]) {
					continue
				}
				if !yield(evs[i], nil) {
					return
				}
			}
			if err != nil {
				yield(store.Event{}, s.wrapRead("history", err))
				return
			}
			if !rd.more || rd.after.n >= rd.end.n {
				return
			}
			if err := ctx.Err(); err != nil {
				yield(store.Event{}, fmt.Errorf("redisstore: history: %w", err))
				return
			}
			batch, err := s.read.XRangeN(ctx, s.kLog, "("+rd.after.streamID(), rd.end.streamID(), historyNext).Result()
			if err != nil && !errors.Is(err, redis.Nil) {
				yield(store.Event{}, s.wrapRead("history", err))
				return
			}
			rd.batch, rd.more = batch, len(batch) == historyNext
			if len(batch) == 0 && rd.known && rd.after.n < rd.end.n {
				yield(store.Event{}, fmt.Errorf("redisstore: history: %w: events after position %d were evicted before they were read", store.ErrExpired, rd.after.n))
				return
			}
		}
	}
}

// tailMsg is what Follow's reader goroutine hands over: events, then
// possibly a final error.
type tailMsg struct {
	evs []store.Event
	err error
}

// Follow yields the events after cursor, then new ones as they are appended,
// reading with XREAD BLOCK. See [store.Store.Follow]. Connection errors are
// retried with backoff, resuming after the last event yielded; only
// ErrUnknownID, ErrExpired and ErrClosed end it with an error. When ctx ends
// Follow returns at once; its reading goroutine ends when its XREAD returns,
// within Config.BlockTimeout.
func (s *Store) Follow(ctx context.Context, cursor string) iter.Seq2[store.Event, error] {
	return func(yield func(store.Event, error) bool) {
		if ctx.Err() != nil {
			return
		}
		if s.closed() {
			yield(store.Event{}, fmt.Errorf("redisstore: follow: %w", store.ErrClosed))
			return
		}
		var rd *cursorReader
		bo := backoff.New(s.minBO, s.maxBO)
		for {
			var err error
			rd, err = s.resolve(ctx, cursor, followCount)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return
			}
			if s.closed() || errors.Is(err, store.ErrUnknownID) || errors.Is(err, store.ErrExpired) {
				yield(store.Event{}, s.wrapRead("follow", err))
				return
			}
			s.clusterError(err)
			d := bo.Next()
			s.log.Warn("redisstore: follow: cannot reach Redis; retrying", "prefix", s.cfg.Prefix, "cursor", cursor, "err", err, "backoff", d)
			if !s.sleep(ctx, d) {
				if ctx.Err() == nil {
					yield(store.Event{}, fmt.Errorf("redisstore: follow: %w", store.ErrClosed))
				}
				return
			}
		}
		first, err := rd.decode(nil, rd.batch)
		for _, e := range first {
			if !yield(e, nil) {
				return
			}
		}
		if err != nil {
			yield(store.Event{}, s.wrapRead("follow", err))
			return
		}
		tctx, cancel := context.WithCancel(ctx)
		defer cancel()
		ch := make(chan tailMsg, 1)
		go s.tail(tctx, rd, ch)
		for {
			select {
			case msg := <-ch:
				for _, e := range msg.evs {
					if !yield(e, nil) {
						return
					}
				}
				if msg.err != nil {
					yield(store.Event{}, s.wrapRead("follow", msg.err))
					return
				}
			case <-ctx.Done():
				return
			case <-s.ctx.Done():
				yield(store.Event{}, fmt.Errorf("redisstore: follow: %w", store.ErrClosed))
				return
			}
		}
	}
}

// tail reads the entries after rd.after with XREAD BLOCK and sends them on
// ch until ctx ends or an error that retrying cannot cure. Reading ahead is
// bounded: one batch in ch and one being sent.
func (s *Store) tail(ctx context.Context, rd *cursorReader, ch chan<- tailMsg) {
	bo := backoff.New(s.minBO, s.maxBO)
	failing := false
	var lastErr error
	for ctx.Err() == nil {
		// Before the first entry (cursor ""), rd.after is "ms-0", which never
		// names an entry: reading after it starts at ms.
		res, err := s.block.XRead(ctx, &redis.XReadArgs{
			Streams: []string{s.kLog, rd.after.streamID()},
			Count:   followCount,
			Block:   s.blockTimeout,
		}).Result()
		if errors.Is(err, redis.Nil) {
			err = nil
		}
		if err == nil && failing {
			// Back after an outage: make sure the log is still the same one,
			// with every event read so far.
			var lost error
			if lost, err = s.sameLog(ctx, rd); lost != nil {
				s.send(ctx, ch, tailMsg{err: lost})
				return
			}
		}
		if err != nil {
			if ctx.Err() != nil || s.closed() {
				return
			}
			s.clusterError(err)
			d := bo.Next()
			if !failing || err.Error() != lastErr.Error() {
				s.log.Warn("redisstore: follow: reading the stream failed; retrying", "prefix", s.cfg.Prefix, "after", rd.after.streamID(), "err", err, "backoff", d)
			}
			failing, lastErr = true, err
			if !s.sleep(ctx, d) {
				return
			}
			continue
		}
		if failing {
			s.log.Info("redisstore: follow: reading the stream again", "prefix", s.cfg.Prefix, "after", rd.after.streamID())
			failing = false
			bo.Reset()
		}
		if len(res) == 0 || len(res[0].Messages) == 0 {
			continue
		}
		evs, derr := rd.decode(make([]store.Event, 0, len(res[0].Messages)), res[0].Messages)
		if !s.send(ctx, ch, tailMsg{evs: evs, err: derr}) || derr != nil {
			return
		}
	}
}

// sameLog checks, when Follow is back after an outage, that the log is the
// one rd read: the same epoch, and the last event read still there under
// its id (unless retention trimmed it). After a failover to a replica that
// lacked the last events (Redis replication is asynchronous), the log goes
// on from an earlier position: the next appends would take the positions
// of events already delivered. lost is then ErrUnknownID, so that the hub
// resets its subscribers instead of a silent gap; err is Redis's.
func (s *Store) sameLog(ctx context.Context, rd *cursorReader) (lost, err error) {
	pipe := s.read.Pipeline()
	metaCmd := pipe.HMGet(ctx, s.kMeta, "epoch", "n", "ms", "f")
	var last *redis.XMessageSliceCmd
	if rd.known && rd.after.n > 0 {
		last = pipe.XRangeN(ctx, s.kLog, rd.after.streamID(), rd.after.streamID(), 1)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	m, err := parseMeta(metaCmd.Val())
	if err != nil {
		return nil, err
	}
	switch {
	case m.epoch != rd.epoch:
		return fmt.Errorf("%w: the log was deleted or replaced while Redis was unreachable", store.ErrUnknownID), nil
	case last == nil:
		return nil, nil
	case m.last.n < rd.after.n:
		return fmt.Errorf("%w: the log ends at position %d, before position %d already read: it lost events (a failover to a replica that lacked them?)", store.ErrUnknownID, m.last.n, rd.after.n), nil
	case rd.after.n >= m.first && len(last.Val()) == 0:
		return fmt.Errorf("%w: the event at position %d, already read, is not in the log: it lost events (a failover to a replica that lacked them?)", store.ErrUnknownID, rd.after.n), nil
	}
	return nil, nil
}

func (s *Store) send(ctx context.Context, ch chan<- tailMsg, m tailMsg) bool {
	select {
	case ch <- m:
		return true
	case <-ctx.Done():
		return false
	case <-s.ctx.Done():
		return false
	}
}

// sleep waits d, or until ctx ends or the store closes; it reports whether
// d passed.
func (s *Store) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.ctx.Done():
		return false
	}
}
