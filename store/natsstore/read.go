package natsstore

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice/internal/backoff"
	"github.com/sluicehq/sluice/store"
)

// Batch sizes of reads.
const (
	historyBatch = 1024 // messages per fetch
	followBuffer = 256  // messages Follow's consumer buffers: bounds read-ahead

	// followHeartbeat is the idle heartbeat of Follow's pull requests: a
	// consumer lost with a server restart is noticed within two of them.
	followHeartbeat = time.Second
)

// reader is where a read stands.
type reader struct {
	epoch   store.Epoch
	next    uint64    // the sequence to read next
	exact   bool      // the next message must be sequence next (false for "" before the first)
	leading bool      // nothing read yet: MaxAge applies to what comes first
	cutoff  time.Time // events before it are past MaxAge (zero: no limit)
	end     uint64    // History's end: the last sequence when it started
	read    time.Time // the Time of the event at next-1, once read (zero before)
	// arena, when not nil, makes events alias the records read, which are
	// never modified or reused, and take their topic lists and ids from it.
	arena *arena
}

// resolve turns cursor into a reader positioned after it. Errors:
// ErrUnknownID, ErrExpired, or NATS's.
func (s *Store) resolve(ctx context.Context, cursor string) (*reader, error) {
	st, err := s.info(ctx)
	if err != nil {
		return nil, err
	}
	rd := &reader{epoch: st.epoch, end: st.last, leading: true}
	if s.cfg.MaxAge > 0 {
		rd.cutoff = s.now().Add(-s.cfg.MaxAge)
	}
	if cursor == "" {
		rd.next = st.first
		return rd, nil
	}
	seq, ok := st.epoch.Pos(cursor)
	if ok {
		switch {
		case seq > st.last:
			return nil, fmt.Errorf("%w: %q is beyond the end of the log", store.ErrUnknownID, cursor)
		case seq+1 < st.first:
			return nil, fmt.Errorf("%w: %q", store.ErrExpired, cursor)
		}
	} else if st.first > st.last {
		return nil, fmt.Errorf("%w: %q", store.ErrUnknownID, cursor)
	} else if seq, err = s.lookup(ctx, cursor, st.first, rd.cutoff); err != nil {
		return nil, err
	}
	rd.next, rd.exact = seq+1, true
	return rd, nil
}

// lookup returns the sequence of the first retained occurrence of custom id
// id: the first message on its subject from sequence from (the first
// retained one, or 1) on, found by the stream's subject index.
func (s *Store) lookup(ctx context.Context, id string, from uint64, cutoff time.Time) (uint64, error) {
	msg, err := s.lookupMsg(ctx, id, from, cutoff)
	if err != nil {
		return 0, err
	}
	return msg.Sequence, nil
}

// lookupMsg is lookup returning the message.
func (s *Store) lookupMsg(ctx context.Context, id string, from uint64, cutoff time.Time) (*jetstream.RawStreamMsg, error) {
	subj := s.subjIDPrefix + idToken(id)
	expired := false
	for seq := from; ; {
		msg, err := s.stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subj))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			if expired {
				return nil, fmt.Errorf("%w: every event with custom id %q was evicted", store.ErrExpired, id)
			}
			return nil, fmt.Errorf("%w: %q", store.ErrUnknownID, id)
		}
		if err != nil {
			return nil, err
		}
		if msg.Sequence < seq {
			return nil, fmt.Errorf("lookup of %q: sequence %d before %d: %w", id, msg.Sequence, seq, errCorrupt)
		}
		cid, ok := customID(msg.Data)
		if ok && cid == id {
			t, _ := recordTime(msg.Data)
			if cutoff.IsZero() || !t.Before(cutoff) {
				return msg, nil
			}
			expired = true // past MaxAge by our clock: a later occurrence may do
		}
		seq = msg.Sequence + 1 // a hash collision, or an expired occurrence
	}
}

// take checks that message seq comes where rd expects it and decodes it. It
// returns skip for a message to pass over (a leading event past MaxAge, when
// reading from the start), and ErrExpired when messages were evicted before
// they were read or the first event after a cursor is past MaxAge.
func (rd *reader) take(seq uint64, data []byte) (e store.Event, skip bool, err error) {
	if rd.exact && seq != rd.next {
		if seq < rd.next {
			return store.Event{}, true, nil // already read
		}
		return store.Event{}, false, fmt.Errorf("%w: events %d to %d were evicted before they were read", store.ErrExpired, rd.next, seq-1)
	}
	if rd.leading && !rd.cutoff.IsZero() {
		if t, ok := recordTime(data); ok && t.Before(rd.cutoff) {
			if rd.exact {
				return store.Event{}, false, fmt.Errorf("%w: the events after the cursor are older than MaxAge", store.ErrExpired)
			}
			rd.next = seq + 1
			return store.Event{}, true, nil
		}
	}
	e, err = decode(rd.epoch, seq, data, rd.arena)
	if err != nil {
		return store.Event{}, false, fmt.Errorf("message %d: %w", seq, err)
	}
	rd.next, rd.exact, rd.leading, rd.read = seq+1, true, false, e.Time
	return e, false, nil
}

// wrapRead wraps a read error, turning the errors of a closed connection
// into ErrClosed.
func (s *Store) wrapRead(op string, err error) error {
	if s.closed() && !errors.Is(err, store.ErrUnknownID) && !errors.Is(err, store.ErrExpired) {
		err = store.ErrClosed
	}
	return fmt.Errorf("natsstore: %s: %w", op, err)
}

// deleteConsumer deletes a consumer of stream in the background: a reader
// does not wait for it, Close does.
func (s *Store) deleteConsumer(stream, name string) {
	s.bgMu.Lock()
	if s.closing {
		// The connection is closing: the server removes the consumer once
		// it has been inactive for its InactiveThreshold.
		s.bgMu.Unlock()
		return
	}
	s.bg.Add(1)
	s.bgMu.Unlock()
	go func() {
		defer s.bg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.js.DeleteConsumer(ctx, stream, name)
	}()
}

// createConsumer creates the ephemeral consumer History reads with,
// starting at sequence start (0: at the first retained message).
func (s *Store) createConsumer(ctx context.Context, start uint64) (jetstream.Consumer, error) {
	cfg := jetstream.ConsumerConfig{
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		AckPolicy:         jetstream.AckNonePolicy,
		MemoryStorage:     true,
		InactiveThreshold: time.Minute,
	}
	if start > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, start
	}
	return s.stream.CreateConsumer(ctx, cfg)
}

// openHistory resolves cursor and creates a consumer at the sequence after
// it; a nil consumer means there is nothing to read. For "" and this log's
// generated ids, the start is known before the stream's state is: the
// stream info and the consumer creation then run in parallel, and the
// cursor is checked against the state before anything is read.
func (s *Store) openHistory(ctx context.Context, cursor string) (*reader, jetstream.Consumer, error) {
	ep := s.currentEpoch()
	seq, generated := ep.Pos(cursor)
	if cursor == "" || generated {
		type infoRes struct {
			st  state
			err error
		}
		ic := make(chan infoRes, 1)
		go func() {
			st, err := s.info(ctx)
			ic <- infoRes{st, err}
		}()
		start := uint64(0)
		if generated {
			start = seq + 1
		}
		cons, cerr := s.createConsumer(ctx, start)
		ir := <-ic
		drop := func() {
			if cerr == nil {
				s.deleteConsumer(s.cfg.Stream, cons.CachedInfo().Name)
			}
		}
		switch {
		case ir.err != nil:
			drop()
			return nil, nil, ir.err
		case cerr != nil:
			return nil, nil, cerr
		case ir.st.epoch == ep:
			st := ir.st
			rd := &reader{epoch: st.epoch, end: st.last, leading: true, next: st.first}
			if s.cfg.MaxAge > 0 {
				rd.cutoff = s.now().Add(-s.cfg.MaxAge)
			}
			if generated {
				switch {
				case seq > st.last:
					drop()
					return nil, nil, fmt.Errorf("%w: %q is beyond the end of the log", store.ErrUnknownID, cursor)
				case seq+1 < st.first:
					drop()
					return nil, nil, fmt.Errorf("%w: %q", store.ErrExpired, cursor)
				}
				rd.next, rd.exact = seq+1, true
			}
			if rd.next > rd.end {
				drop()
				return rd, nil, nil
			}
			return rd, cons, nil
		}
		// The stream was created again since this store last looked: start
		// over with its new epoch.
		drop()
	}
	rd, err := s.resolve(ctx, cursor)
	if err != nil || rd.next > rd.end {
		return rd, nil, err
	}
	cons, err := s.createConsumer(ctx, rd.next)
	return rd, cons, err
}

// Resolve returns the position of the event cursor names, reading the
// stream: History and Follow from cursor yield the retained events after
// it. See [store.Resolver].
func (s *Store) Resolve(ctx context.Context, cursor string) (uint64, error) {
	if s.closed() {
		return 0, fmt.Errorf("natsstore: resolve: %w", store.ErrClosed)
	}
	rd, err := s.resolve(ctx, cursor)
	if err != nil {
		return 0, s.wrapRead("resolve", err)
	}
	if rd.exact && !rd.cutoff.IsZero() && rd.next <= rd.end {
		// History refuses a cursor whose next event is past MaxAge.
		msg, err := s.stream.GetMsg(ctx, rd.next)
		if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return 0, s.wrapRead("resolve", err)
		}
		if err == nil {
			if _, _, err := rd.take(msg.Sequence, msg.Data); err != nil {
				return 0, s.wrapRead("resolve", err)
			}
		}
	}
	return rd.next - 1, nil
}

// PositionID returns the generated id of e's position: the epoch of the
// stream as this store last saw it (Open, Head, History, Follow) and
// e.Pos. See [store.Positioner].
func (s *Store) PositionID(e *store.Event) string { return s.currentEpoch().ID(e.Pos) }

// Lookup returns the first retained event with custom id id: one direct get
// on the id's subject (more only on a hash collision). See
// [store.Positioner].
func (s *Store) Lookup(ctx context.Context, id string) (store.Event, bool, error) {
	if id == "" {
		return store.Event{}, false, nil
	}
	ep := s.currentEpoch()
	if _, ok := ep.Pos(id); ok {
		return store.Event{}, false, nil
	}
	if s.closed() {
		return store.Event{}, false, fmt.Errorf("natsstore: lookup: %w", store.ErrClosed)
	}
	var cutoff time.Time
	if s.cfg.MaxAge > 0 {
		cutoff = s.now().Add(-s.cfg.MaxAge)
	}
	// From sequence 1: the subject index starts at the first retained
	// message.
	msg, err := s.lookupMsg(ctx, id, 1, cutoff)
	if err != nil {
		if errors.Is(err, store.ErrExpired) {
			err = fmt.Errorf("%w: %q", store.ErrUnknownID, id) // see store.Positioner
		}
		return store.Event{}, false, s.wrapRead("lookup", err)
	}
	e, err := decode(ep, msg.Sequence, msg.Data, nil)
	if err != nil {
		return store.Event{}, false, s.wrapRead("lookup", fmt.Errorf("message %d: %w", msg.Sequence, err))
	}
	return e, true, nil
}

// History yields the retained events after cursor that match filter, up to
// the last message when it starts. See [store.Store.History].
func (s *Store) History(ctx context.Context, cursor string, filter store.Filter) iter.Seq2[store.Event, error] {
	return func(yield func(store.Event, error) bool) {
		if s.closed() {
			yield(store.Event{}, fmt.Errorf("natsstore: history: %w", store.ErrClosed))
			return
		}
		var err error
		if s.directBatch() {
			err = s.historyDirect(ctx, cursor, filter, yield)
		} else {
			err = s.historyConsumer(ctx, cursor, nil, filter, yield)
		}
		if err != nil && err != errStopped {
			yield(store.Event{}, s.wrapRead("history", err))
		}
	}
}

// historyDirect is History with batched direct gets. The stream's info is
// asked for first, then at once the first batch (for "" and this log's
// generated ids, whose sequence is known) or the custom id's lookup; the
// batch's messages that come before the info wait for it, nothing is
// yielded before the cursor was checked against it. On a server that turns
// out not to batch direct gets it goes on with a consumer. It returns
// errStopped when yield does.
func (s *Store) historyDirect(ctx context.Context, cursor string, filter store.Filter, yield func(store.Event, error) bool) error {
	ep := s.currentEpoch()
	seq, generated := ep.Pos(cursor)
	custom := cursor != "" && !generated
	var cutoff time.Time
	if s.cfg.MaxAge > 0 {
		cutoff = s.now().Add(-s.cfg.MaxAge)
	}
	r, err := s.newReplies(historyBatch)
	if err != nil {
		return err
	}
	defer func() {
		if r != nil {
			r.close()
		}
	}()
	if err := r.requestInfo(); err != nil {
		return err
	}
	var found uint64 // the custom id's sequence
	var lerr error   // the lookup's or the first request's error
	if custom {
		found, lerr = s.lookup(ctx, cursor, 1, cutoff)
	} else {
		// For "", sequence 1 is no bound of what comes: with headers.
		lerr = r.requestBatch(seq+1, historyBatch, generated)
	}
	var st state
	for {
		m, err := r.next(ctx)
		if err != nil {
			return err
		}
		if !r.isInfo(m) {
			r.early = append(r.early, m) // the batch's, before the info
			continue
		}
		if st, err = s.infoState(m); err != nil {
			return err
		}
		break
	}
	var rd *reader
	switch {
	case st.epoch != ep:
		// The stream was created again since this store last looked:
		// start over with its new epoch, on a new inbox (the replies to
		// come of the first request would crowd the next).
		r.close()
		r2, err := s.newReplies(historyBatch)
		if err != nil {
			r = nil
			return err
		}
		r = r2
		if rd, err = s.resolve(ctx, cursor); err != nil {
			return err
		}
	case lerr != nil:
		return lerr
	default:
		rd = &reader{epoch: st.epoch, end: st.last, leading: true, next: st.first, cutoff: cutoff}
		switch {
		case custom:
			rd.next, rd.exact = found+1, true
		case generated && seq > st.last:
			return fmt.Errorf("%w: %q is beyond the end of the log", store.ErrUnknownID, cursor)
		case generated && seq+1 < st.first:
			return fmt.Errorf("%w: %q", store.ErrExpired, cursor)
		case generated:
			rd.next, rd.exact = seq+1, true
		}
	}
	// The messages' payloads are fresh copies nats.go hands over: the
	// events alias them.
	rd.arena = new(arena)
	var e store.Event // one for all: filter(&e) would move each to the heap
	requested := r.n > 0
	// The first batch, requested with the info, may have been served
	// before it: an empty one does not mean that what the info counts was
	// evicted, only that it was not appended yet then.
	early := requested
	for rd.next <= rd.end {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !requested {
			// Without headers once the first sequence to come is known.
			if err := r.requestBatch(rd.next, int(min(rd.end-rd.next+1, historyBatch)), rd.exact); err != nil {
				return err
			}
		}
		msgs, seqs, ok, err := r.readBatch(ctx)
		if errors.Is(err, errNoBatch) {
			rd.arena = nil
			return s.historyConsumer(ctx, cursor, rd, filter, yield)
		}
		if err != nil {
			return err
		}
		if !ok {
			// Messages without headers that are not the whole range from
			// rd.next (some were evicted): again, with their sequences.
			if err := r.requestBatch(rd.next, int(min(rd.end-rd.next+1, historyBatch)), false); err != nil {
				return err
			}
			requested, early = true, false
			continue
		}
		requested = false
		if len(msgs) == 0 && early {
			early = false
			continue // again, after the info
		}
		early = false
		if len(msgs) == 0 {
			// What remained up to the end was evicted meanwhile.
			if rd.exact {
				return fmt.Errorf("%w: events after sequence %d were evicted before they were read", store.ErrExpired, rd.next-1)
			}
			return nil
		}
		for i, m := range msgs {
			var skip bool
			e, skip, err = rd.take(seqs[i], m.Data)
			if err != nil {
				return err
			}
			if !skip && (filter == nil || filter(&e)) && !yield(e, nil) {
				return errStopped
			}
			if seqs[i] >= rd.end {
				return nil
			}
		}
	}
	return nil
}

// historyConsumer is History with an ephemeral consumer: from cursor, or
// from rd.next when rd is not nil. It returns errStopped when yield does.
func (s *Store) historyConsumer(ctx context.Context, cursor string, rd *reader, filter store.Filter, yield func(store.Event, error) bool) error {
	var cons jetstream.Consumer
	var err error
	if rd == nil {
		rd, cons, err = s.openHistory(ctx, cursor)
	} else if rd.next <= rd.end {
		cons, err = s.createConsumer(ctx, rd.next)
	}
	if err != nil || cons == nil {
		return err
	}
	defer s.deleteConsumer(s.cfg.Stream, cons.CachedInfo().Name)
	var e store.Event // one for all: filter(&e) would move each to the heap
	for rd.next <= rd.end {
		if err := ctx.Err(); err != nil {
			return err
		}
		batch, err := cons.FetchNoWait(int(min(rd.end-rd.next+1, historyBatch)))
		if err != nil {
			return err
		}
		got := 0
		for msg := range batch.Messages() {
			got++
			seq, ok := streamSeq(msg.Reply())
			if !ok {
				return fmt.Errorf("reply subject %q: %w", msg.Reply(), errCorrupt)
			}
			var skip bool
			e, skip, err = rd.take(seq, msg.Data())
			if err != nil {
				return err
			}
			if !skip && (filter == nil || filter(&e)) && !yield(e, nil) {
				return errStopped
			}
			if seq >= rd.end {
				return nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return err
		}
		if got == 0 {
			// What remained up to the end was evicted meanwhile.
			if rd.exact {
				return fmt.Errorf("%w: events after sequence %d were evicted before they were read", store.ErrExpired, rd.next-1)
			}
			return nil
		}
	}
	return nil
}

// Follow yields the events after cursor, then new ones as they are
// appended, through an ephemeral pull consumer. See [store.Store.Follow].
// Connection errors are retried with backoff, resuming after the last event
// yielded; only ErrUnknownID, ErrExpired and ErrClosed end it with an error.
func (s *Store) Follow(ctx context.Context, cursor string) iter.Seq2[store.Event, error] {
	return func(yield func(store.Event, error) bool) {
		if ctx.Err() != nil {
			return
		}
		if s.closed() {
			yield(store.Event{}, fmt.Errorf("natsstore: follow: %w", store.ErrClosed))
			return
		}
		// fctx ends with ctx or when the store closes.
		fctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stop := context.AfterFunc(s.ctx, cancel)
		defer stop()
		ended := func() bool {
			if ctx.Err() != nil {
				return true
			}
			if s.closed() {
				yield(store.Event{}, fmt.Errorf("natsstore: follow: %w", store.ErrClosed))
				return true
			}
			return false
		}
		bo := backoff.New(s.minBO, s.maxBO)
		retry := func(what string, err error) bool {
			d := bo.Next()
			s.log.Warn("natsstore: follow: "+what+" failed; retrying", "stream", s.cfg.Stream, "cursor", cursor, "err", err, "backoff", d)
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-t.C:
				return true
			case <-fctx.Done():
				return false
			}
		}

		var rd *reader
		for {
			var err error
			if rd, err = s.resolve(fctx, cursor); err == nil {
				break
			}
			if ended() {
				return
			}
			if errors.Is(err, store.ErrUnknownID) || errors.Is(err, store.ErrExpired) {
				yield(store.Event{}, s.wrapRead("follow", err))
				return
			}
			if !retry("reading the stream", err) {
				ended()
				return
			}
		}
		for {
			err := s.followFrom(fctx, rd, yield)
			if err == errStopped || ended() {
				return
			}
			if errors.Is(err, store.ErrUnknownID) || errors.Is(err, store.ErrExpired) {
				yield(store.Event{}, s.wrapRead("follow", err))
				return
			}
			switch cerr := s.catchUp(fctx, rd, yield); {
			case cerr == errStopped || ended():
				return
			case cerr != nil:
				yield(store.Event{}, s.wrapRead("follow", cerr))
				return
			}
			if !retry("following the stream", err) {
				ended()
				return
			}
			// Back: make sure the stream is still the same one.
			for {
				err := s.sameLog(fctx, rd)
				if errors.Is(err, store.ErrUnknownID) {
					yield(store.Event{}, s.wrapRead("follow", err))
					return
				}
				if err == nil {
					s.log.Info("natsstore: follow: following the stream again", "stream", s.cfg.Stream, "from", rd.next)
					bo.Reset()
					break
				}
				if ended() {
					return
				}
				if !retry("reading the stream", err) {
					ended()
					return
				}
			}
		}
	}
}

// same checks, given the stream's state, that the stream is still the one
// rd read: the same epoch, and not ending before what rd read. See
// [Store.sameLog].
func (rd *reader) same(st state) error {
	if st.epoch != rd.epoch {
		return fmt.Errorf("%w: the stream was deleted and created again", store.ErrUnknownID)
	}
	if st.last+1 < rd.next {
		return fmt.Errorf("%w: the stream ends at sequence %d, before sequence %d already read: it lost events", store.ErrUnknownID, st.last, rd.next-1)
	}
	return nil
}

// sameLog checks, when a Follow comes back after its consumer failed, that
// the stream is still the one it read: the same epoch, and the last event
// it yielded still there at its sequence (unless retention evicted it). A
// stream may lose events: restored from an older copy, or the servers that
// had them lost (a memory stream restarted, an R1 stream's server
// replaced). The events appended next take the sequences, and so the ids,
// of events already delivered, and soon the stream no longer ends before
// them: the event at the last sequence yielded tells, by its time. The
// Follow then ends with ErrUnknownID, so that the hub resets its
// subscribers, instead of a silent gap. Other errors are NATS's.
func (s *Store) sameLog(ctx context.Context, rd *reader) error {
	st, err := s.info(ctx)
	if err != nil {
		return err
	}
	if err := rd.same(st); err != nil || rd.read.IsZero() || rd.next-1 < st.first {
		return err
	}
	msg, err := s.stream.GetMsg(ctx, rd.next-1)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil // evicted since the state was read
	}
	if err != nil {
		return err
	}
	if t, ok := recordTime(msg.Data); !ok || !t.Equal(rd.read) {
		return fmt.Errorf("%w: the event at sequence %d, already read, is no longer in the stream: it lost events", store.ErrUnknownID, rd.next-1)
	}
	return nil
}

// catchUp yields the events after rd up to the stream's last one, read as
// History reads them (batched direct gets from nats-server 2.11 on), for a
// Follow whose consumer was lost or could not be created. When the server
// of JetStream's meta leader dies, no consumer can be created until the
// meta group has a leader again (and the first it elects may not serve),
// which has taken 15 s in the HA test, while the stream's new leader
// takes appends within a few seconds and answers direct gets: the hub's
// subscribers then receive those appends between the attempts to
// recreate the consumer. It returns errStopped if the caller stopped, a
// cursor error (ErrUnknownID, ErrExpired) that ends the Follow, or nil,
// having yielded what it could read (other errors are the next attempt's
// business).
func (s *Store) catchUp(ctx context.Context, rd *reader, yield func(store.Event, error) bool) error {
	cursor := ""
	if rd.exact {
		cursor = rd.epoch.ID(rd.next - 1)
	}
	// Bounded: a request sent to a server that died is never answered.
	ctx, cancel := context.WithTimeout(ctx, catchUpTimeout)
	defer cancel()
	if err := s.sameLog(ctx, rd); err != nil {
		if errors.Is(err, store.ErrUnknownID) {
			return err
		}
		return nil
	}
	for e, err := range s.History(ctx, cursor, nil) {
		if err != nil {
			if errors.Is(err, store.ErrUnknownID) || errors.Is(err, store.ErrExpired) {
				return err
			}
			return nil
		}
		if !yield(e, nil) {
			return errStopped
		}
		rd.next, rd.exact, rd.leading, rd.read = e.Pos+1, true, false, e.Time
	}
	return nil
}

// followStallCheck is how long Follow waits for a message before it checks
// that its consumer is not stalled.
const followStallCheck = 3 * time.Second

// catchUpTimeout bounds one catchUp: what it has not read by then, the
// next attempt reads.
const catchUpTimeout = 5 * time.Second

// followCreateTimeout bounds the creation of Follow's consumer, so that
// when it cannot be created, Follow catches up with direct gets (catchUp)
// between attempts.
const followCreateTimeout = 5 * time.Second

// errStopped reports that the caller stopped iterating.
var errStopped = errors.New("stopped")

// followFrom follows the stream from rd.next with an ephemeral pull
// consumer (memory storage, no acks), yielding events, until ctx ends, the
// caller stops (errStopped) or an error. It never recreates the consumer
// itself: any failure (missed heartbeats, a lost server, messages missed
// across a reconnection) returns, and Follow catches up with direct gets
// (catchUp) and comes back with a new consumer after the last event
// yielded.
func (s *Store) followFrom(ctx context.Context, rd *reader, yield func(store.Event, error) bool) error {
	cctx, cancel := context.WithTimeout(ctx, followCreateTimeout)
	cons, err := s.createConsumer(cctx, rd.next)
	cancel()
	if err != nil {
		return err
	}
	defer s.deleteConsumer(s.cfg.Stream, cons.CachedInfo().Name)
	it, err := cons.Messages(jetstream.PullMaxMessages(followBuffer), jetstream.PullHeartbeat(followHeartbeat),
		jetstream.WithMessagesErrOnMissingHeartbeat(true))
	if err != nil {
		return err
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop) // ends a Next that would not return
	defer stop()
	// Next waits at most s.stallCheck for a message: idle ends when
	// timer fires, which each message re-arms, so that a message costs no
	// context or timer of its own (6 allocations); only an idle that ended
	// is replaced.
	idle, fire := context.WithCancel(ctx)
	timer := time.AfterFunc(s.stallCheck, fire)
	defer func() { timer.Stop(); fire() }()
	next := jetstream.NextContext(idle)
	var waiting uint64 // rd.next at the last check that found it in the stream
	for {
		msg, err := it.Next(next)
		if err != nil && idle.Err() != nil && ctx.Err() == nil && errors.Is(err, context.Canceled) {
			// Nothing for a while: the stream is idle, or the consumer
			// stalls with its heartbeats going (seen after a server of the
			// stream restarted). It stalls if the stream has held what it
			// should deliver since the previous check.
			st, err := s.info(ctx)
			if err != nil {
				return err
			}
			if err := rd.same(st); err != nil {
				return err
			}
			if st.last >= rd.next {
				if waiting == rd.next {
					return fmt.Errorf("the consumer delivered nothing from sequence %d for %v while the stream ends at %d", rd.next, 2*s.stallCheck, st.last)
				}
				waiting = rd.next
			}
			idle, fire = context.WithCancel(ctx)
			timer = time.AfterFunc(s.stallCheck, fire)
			next = jetstream.NextContext(idle)
			continue
		}
		if err != nil {
			return err
		}
		waiting = 0
		seq, ok := streamSeq(msg.Reply())
		if !ok {
			return fmt.Errorf("reply subject %q: %w", msg.Reply(), errCorrupt)
		}
		if rd.exact && seq > rd.next {
			// Without acks, what the server sent while the connection was
			// down is lost to the consumer: read it again (catchUp tells an
			// eviction from a loss in transit).
			return fmt.Errorf("messages %d to %d were not received", rd.next, seq-1)
		}
		e, skip, err := rd.take(seq, msg.Data())
		if err != nil {
			return err
		}
		if !skip && !yield(e, nil) {
			return errStopped
		}
		timer.Reset(s.stallCheck)
	}
}
