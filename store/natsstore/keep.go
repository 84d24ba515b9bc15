package natsstore

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice/store"
)

// Keeping channels ([store.Keeper]); the package doc's "Keeping channels"
// describes the layout. Each channel has a chain on its subject of the
// kept stream, written only through Nats-Expected-Last-Subject-Sequence,
// so that every message carries the chain's state before it, whoever
// wrote the one before:
//
//	version  1 byte (1)
//	kind     1 byte: kindIntent, kindCopy or kindAbort
//	epoch    uvarint length + bytes: the log's epoch when it was written
//	time     8 bytes, big-endian Unix nanoseconds: the event's Time
//	state    the chain's state before the message: uvarint hwm, uvarint
//	         lost, uvarint count of pending intents, then for each its
//	         uvarint kept-stream sequence and 8-byte time
//	intent   uvarint kept-stream sequence of the intent (copy, abort)
//	pos      uvarint position of the event in the log (copy)
//	record   the event's record as the log holds it (copy): the rest
const (
	keptVersion = 1
	kindIntent  = 1 // an append of an event to the channel begins
	kindCopy    = 2 // the event, appended at pos: its intent is done
	kindAbort   = 3 // the append of the intent's event surely failed

	// keptSlack is how many messages per channel the kept stream holds
	// beyond two per kept event (an intent and a copy): room for the
	// intents of appends in progress, and for aborts. Kept applies
	// KeepPerChannel exactly.
	keptSlack = 64
	// keptSkew is the clock difference between stores on one log that a
	// pending intent's age tolerates.
	keptSkew = 2 * time.Second
	// maxKeptChannels bounds the channels whose chain a store remembers
	// between appends (a miss costs one direct get).
	maxKeptChannels = 4096
	// maxPending bounds the pending intents a chain's state carries.
	maxPending = 256
	// keptBatch is the most messages Kept fetches at once.
	keptBatch = 256
	// keptOverhead bounds what a copy adds to the event's record, headers
	// included.
	keptOverhead = 256 + 18*maxPending
)

// pendingIntent is an intent whose copy is not in the chain yet.
type pendingIntent struct {
	seq uint64 // its kept-stream sequence
	t   int64  // its event's Time, Unix nanoseconds
}

// keptState is a chain's state before one of its messages: what the
// messages before it tell of the events whose copies may not come after.
type keptState struct {
	// hwm is the greatest position of a copy before the message: the
	// newest dropped event, once the copies before it are dropped.
	hwm uint64
	// lost bounds the positions of the events whose intents were folded:
	// no copy came within the grace (the appending store died, or its
	// connection did, between the log's acknowledgement and the copy).
	lost uint64
	// pending are the intents before the message whose copies were not
	// written before it, oldest first.
	pending []pendingIntent
}

func (st keptState) clone() keptState {
	st.pending = slices.Clone(st.pending)
	return st
}

func (st *keptState) resolve(intent uint64) {
	st.pending = slices.DeleteFunc(st.pending, func(p pendingIntent) bool { return p.seq == intent })
}

// fold removes the pending intents older than grace at now (and the
// oldest beyond maxPending), other than except, raising lost to bound: the
// position before an event appended after them.
func (st *keptState) fold(now int64, grace time.Duration, bound, except uint64) {
	n := len(st.pending)
	st.pending = slices.DeleteFunc(st.pending, func(p pendingIntent) bool {
		if p.seq == except || now-p.t <= int64(grace) && n <= maxPending {
			return false
		}
		n--
		st.lost = max(st.lost, bound)
		return true
	})
}

// keptMsg is a message of a chain.
type keptMsg struct {
	seq    uint64 // kept-stream sequence
	kind   byte
	epoch  store.Epoch
	t      int64 // the event's Time, Unix nanoseconds
	prev   keptState
	intent uint64 // copy, abort: the intent's sequence
	pos    uint64 // copy: the event's position
	record []byte // copy: the event's record
}

// after returns the chain's state after m.
func (m *keptMsg) after() keptState {
	st := m.prev.clone()
	switch m.kind {
	case kindIntent:
		st.pending = append(st.pending, pendingIntent{m.seq, m.t})
	case kindCopy:
		st.hwm = max(st.hwm, m.pos)
		st.resolve(m.intent)
	case kindAbort:
		st.resolve(m.intent)
	}
	return st
}

func encodeKept(m *keptMsg) []byte {
	dst := make([]byte, 0, 64+len(m.epoch)+12*len(m.prev.pending)+len(m.record))
	dst = append(dst, keptVersion, m.kind)
	dst = binary.AppendUvarint(dst, uint64(len(m.epoch)))
	dst = append(dst, m.epoch...)
	dst = binary.BigEndian.AppendUint64(dst, uint64(m.t))
	dst = binary.AppendUvarint(dst, m.prev.hwm)
	dst = binary.AppendUvarint(dst, m.prev.lost)
	dst = binary.AppendUvarint(dst, uint64(len(m.prev.pending)))
	for _, p := range m.prev.pending {
		dst = binary.AppendUvarint(dst, p.seq)
		dst = binary.BigEndian.AppendUint64(dst, uint64(p.t))
	}
	if m.kind != kindIntent {
		dst = binary.AppendUvarint(dst, m.intent)
	}
	if m.kind == kindCopy {
		dst = binary.AppendUvarint(dst, m.pos)
		dst = append(dst, m.record...)
	}
	return dst
}

// decodeKept decodes the message at kept-stream sequence seq. The record
// aliases b.
func decodeKept(seq uint64, b []byte) (keptMsg, error) {
	m := keptMsg{seq: seq}
	if len(b) < 2 || b[0] != keptVersion || b[1] < kindIntent || b[1] > kindAbort {
		return m, errCorrupt
	}
	m.kind = b[1]
	b = b[2:]
	bad := false
	uv := func() uint64 {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			bad = true
			return 0
		}
		b = b[n:]
		return v
	}
	u64 := func() int64 {
		if len(b) < 8 {
			bad = true
			return 0
		}
		v := binary.BigEndian.Uint64(b)
		b = b[8:]
		return int64(v)
	}
	if n := uv(); !bad && n <= uint64(len(b)) {
		m.epoch, b = store.Epoch(b[:n]), b[n:]
	} else {
		return m, errCorrupt
	}
	m.t = u64()
	m.prev.hwm, m.prev.lost = uv(), uv()
	n := uv()
	if bad || n > uint64(len(b)) {
		return m, errCorrupt
	}
	if n > 0 {
		m.prev.pending = make([]pendingIntent, n)
		for i := range m.prev.pending {
			m.prev.pending[i] = pendingIntent{uv(), u64()}
		}
	}
	if m.kind != kindIntent {
		m.intent = uv()
	}
	if m.kind == kindCopy {
		m.pos = uv()
		m.record = b
	}
	if bad {
		return m, errCorrupt
	}
	return m, nil
}

// keptChan is what a store knows of a channel's chain: the last message
// it wrote or read there. Its mutex serializes the store's writes to the
// chain, so that they do not race each other for the last sequence.
type keptChan struct {
	subj  string
	mu    sync.Mutex
	refs  int  // users, under Store.keepMu
	known bool // seq and state are the chain's last message's, in epoch
	epoch store.Epoch
	seq   uint64
	state keptState
}

// openKept creates the kept stream of cfg's log, or updates its limits.
// A stream of that name with other subjects (another log's) is refused.
func (s *Store) openKept(ctx context.Context, cfg *Config) (jetstream.Stream, error) {
	subjects := []string{s.keptPrefix + ">"}
	if ks, err := s.js.Stream(ctx, s.keptName); err == nil {
		if got := ks.CachedInfo().Config.Subjects; !slices.Equal(got, subjects) {
			return nil, fmt.Errorf("it exists with subjects %q, not %q: is it another log's stream?", got, subjects)
		}
	} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, err
	}
	maxBytes := cfg.KeepMaxBytes
	if maxBytes < 0 {
		maxBytes = -1
	}
	return s.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:              s.keptName,
		Subjects:          subjects,
		Storage:           cfg.Storage,
		Retention:         jetstream.LimitsPolicy,
		Discard:           jetstream.DiscardOld,
		MaxMsgs:           -1,
		MaxBytes:          maxBytes,
		MaxAge:            cfg.KeepFor,
		MaxMsgsPerSubject: 2*int64(cfg.KeepPerChannel) + keptSlack,
		Replicas:          cfg.Replicas,
		AllowDirect:       true,
	})
}

// keptChannels returns the distinct channels among topics, sorted, or nil
// when there is none or the store keeps none: no allocation for an event
// without a channel.
func (s *Store) keptChannels(topics []string) []string {
	if s.keptStream == nil {
		return nil
	}
	var chs []string
	for _, tp := range topics {
		if store.IsChannel(tp) && !slices.Contains(chs, tp) {
			chs = append(chs, tp)
		}
	}
	slices.Sort(chs)
	return chs
}

// acquireKept returns the chains of the channels names, held until
// releaseKept.
func (s *Store) acquireKept(names []string) []*keptChan {
	s.keepMu.Lock()
	defer s.keepMu.Unlock()
	chs := make([]*keptChan, len(names))
	for i, name := range names {
		c := s.keptChans[name]
		if c == nil {
			c = &keptChan{subj: s.keptPrefix + idToken(name)}
			s.keptChans[name] = c
		}
		c.refs++
		chs[i] = c
	}
	return chs
}

func (s *Store) releaseKept(chs []*keptChan) {
	s.keepMu.Lock()
	defer s.keepMu.Unlock()
	for _, c := range chs {
		c.refs--
	}
	if len(s.keptChans) > maxKeptChannels {
		for name, c := range s.keptChans {
			if c.refs == 0 {
				delete(s.keptChans, name)
			}
		}
	}
}

// readLast learns the last message of c's chain.
func (s *Store) readLast(ctx context.Context, c *keptChan, ep store.Epoch) error {
	raw, err := s.keptStream.GetLastMsgForSubject(ctx, c.subj)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		// A new chain, or one the kept stream dropped whole: it starts
		// as one that dropped everything up to the floor.
		floor, err := s.keptFloor(ctx, ep)
		if err != nil {
			return fmt.Errorf("kept floor: %w", err)
		}
		c.seq, c.state = 0, keptState{hwm: floor}
	case err != nil:
		return err
	default:
		m, err := decodeKept(raw.Sequence, raw.Data)
		if err != nil {
			return fmt.Errorf("kept message %d: %w", raw.Sequence, err)
		}
		c.seq, c.state = raw.Sequence, keptState{}
		if m.epoch == ep {
			c.state = m.after()
		}
		// else: a chain of a stream deleted since; this log's starts
		// here.
	}
	c.known, c.epoch = true, ep
	return nil
}

// keepWrite writes a message on the chain of each channel of chs, after
// its last message, and returns their kept-stream sequences (0 where it
// failed) and the first error. fill completes the message for chs[i]:
// its prev is the chain's state before it, which fill may fold. A chain
// another store wrote to meanwhile is read again and the message built
// again. The messages go out together, so that an event with several
// channels costs one round trip.
func (s *Store) keepWrite(ctx context.Context, chs []*keptChan, ep store.Epoch, fill func(i int, m *keptMsg)) ([]uint64, error) {
	for _, c := range chs {
		c.mu.Lock()
	}
	defer func() {
		for _, c := range chs {
			c.mu.Unlock()
		}
	}()
	msgs := make([]keptMsg, len(chs))
	build := func(i int) (*nats.Msg, error) {
		c := chs[i]
		if !c.known || c.epoch != ep {
			if err := s.readLast(ctx, c, ep); err != nil {
				return nil, err
			}
		}
		msgs[i] = keptMsg{epoch: ep, prev: c.state.clone()}
		fill(i, &msgs[i])
		return &nats.Msg{Subject: c.subj, Data: encodeKept(&msgs[i])}, nil
	}
	opts := func(i int) []jetstream.PublishOpt {
		return []jetstream.PublishOpt{jetstream.WithExpectLastSequencePerSubject(chs[i].seq), jetstream.WithExpectStream(s.keptName)}
	}
	futs := make([]jetstream.PubAckFuture, len(chs))
	acks := make([]*jetstream.PubAck, len(chs))
	errs := make([]error, len(chs))
	for i := range chs {
		var msg *nats.Msg
		if msg, errs[i] = build(i); errs[i] != nil {
			continue
		}
		futs[i], errs[i] = s.js.PublishMsgAsync(msg, opts(i)...)
		if errors.Is(errs[i], jetstream.ErrTooManyStalledMsgs) {
			// MaxPending publishes in flight: wait for this one alone.
			acks[i], errs[i] = s.js.PublishMsg(ctx, msg, opts(i)...)
		}
	}
	seqs := make([]uint64, len(chs))
	var first error
	for i, f := range futs {
		ack, err := acks[i], errs[i]
		if f != nil && err == nil && ack == nil {
			ack, err = s.awaitAck(ctx, f)
		}
		for isWrongLastSeq(err) {
			// Another store wrote to the chain: build on its message.
			chs[i].known = false
			var msg *nats.Msg
			if msg, err = build(i); err == nil {
				ack, err = s.js.PublishMsg(ctx, msg, opts(i)...)
			}
		}
		if err != nil {
			// The message may or may not be in the chain: read it again
			// next time.
			chs[i].known = false
			first = cmp.Or(first, err)
			continue
		}
		msgs[i].seq = ack.Sequence
		chs[i].seq, chs[i].state = ack.Sequence, msgs[i].after()
		seqs[i] = ack.Sequence
	}
	return seqs, first
}

// awaitAck waits for a publish's acknowledgement.
func (s *Store) awaitAck(ctx context.Context, f jetstream.PubAckFuture) (*jetstream.PubAck, error) {
	select {
	case ack := <-f.Ok():
		return ack, nil
	case err := <-f.Err():
		return nil, err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func isWrongLastSeq(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// keepIntents writes the intents of an event appended at t to the chains
// of chs, before the event goes to the log. If one fails, the others are
// aborted and the event must not be appended.
func (s *Store) keepIntents(ctx context.Context, chs []*keptChan, ep store.Epoch, t time.Time) ([]uint64, error) {
	seqs, err := s.keepWrite(ctx, chs, ep, func(_ int, m *keptMsg) {
		m.kind, m.t = kindIntent, t.UnixNano()
	})
	if err != nil {
		s.keepAbort(chs, ep, t, seqs)
		return nil, fmt.Errorf("keeping channels: %w", err)
	}
	return seqs, nil
}

// keepAbort tells the chains that the appends of their intents failed
// before reaching the log. Best effort: an intent left pending only makes
// Kept more cautious.
func (s *Store) keepAbort(chs []*keptChan, ep store.Epoch, t time.Time, intents []uint64) {
	var sub []*keptChan
	var seqs []uint64
	for i, seq := range intents {
		if seq != 0 {
			sub, seqs = append(sub, chs[i]), append(seqs, seq)
		}
	}
	if len(sub) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.ackTimeout)
	defer cancel()
	if _, err := s.keepWrite(ctx, sub, ep, func(i int, m *keptMsg) {
		m.kind, m.t, m.intent = kindAbort, t.UnixNano(), seqs[i]
	}); err != nil {
		s.log.Warn("natsstore: could not abort the intents of a failed append", "stream", s.keptName, "err", err)
	}
}

// keepCopies writes the copies of e, appended to the log with record
// payload, to the chains of chs, resolving their intents. It runs to its
// end (within AckTimeout) even when the caller gives up, and Close waits
// for it. A copy that cannot be written leaves its intent pending: Kept
// then reports the channel incomplete rather than miss the event.
func (s *Store) keepCopies(chs []*keptChan, ep store.Epoch, e *store.Event, payload []byte, intents []uint64) {
	if s.beforeCopies != nil && !s.beforeCopies() {
		return // a test's crash between the log's acknowledgement and the copies
	}
	s.bgMu.Lock()
	if s.closing {
		s.bgMu.Unlock()
		return
	}
	s.bg.Add(1)
	s.bgMu.Unlock()
	defer s.bg.Done()
	ctx, cancel := context.WithTimeout(context.Background(), s.ackTimeout)
	defer cancel()
	now := s.now().UnixNano()
	if _, err := s.keepWrite(ctx, chs, ep, func(i int, m *keptMsg) {
		m.kind, m.t, m.intent, m.pos, m.record = kindCopy, e.Time.UnixNano(), intents[i], e.Pos, payload
		// An intent pending for longer than an append takes is of an
		// append that ended before this one's: before e.Pos.
		m.prev.fold(now, s.keptGrace, e.Pos-1, intents[i])
	}); err != nil {
		s.log.Warn("natsstore: could not keep an event of a channel; Kept reports its channels incomplete before it",
			"stream", s.keptName, "pos", e.Pos, "err", err)
	}
}

// keptView is what a chain's messages say of the channel.
type keptView struct {
	copies  []*keptMsg // the kept copies of the channel, by position
	dropped uint64     // a bound of the positions of the events dropped before them
	lost    uint64     // a bound of the positions of events never copied
	pending []pendingIntent
}

// viewKept reads a chain, its messages in stream order: what is kept
// after the newest message that is of another epoch than ep, or older
// than cutoff (Unix nanoseconds) by its event's Time, with at most per
// copies.
func viewKept(msgs []keptMsg, ep store.Epoch, cutoff int64, per int) keptView {
	start := 0
	for i := range msgs {
		if msgs[i].epoch != ep || msgs[i].t < cutoff {
			start = i + 1
		}
	}
	var v keptView
	suffix := msgs[start:]
	if len(suffix) == 0 {
		return v
	}
	v.dropped = suffix[0].prev.hwm
	end := suffix[len(suffix)-1].after()
	v.lost, v.pending = end.lost, end.pending
	for i := range suffix {
		if suffix[i].kind == kindCopy {
			v.copies = append(v.copies, &suffix[i])
		}
	}
	if n := len(v.copies) - per; n > 0 {
		for _, m := range v.copies[:n] {
			v.dropped = max(v.dropped, m.pos)
		}
		v.copies = v.copies[n:]
	}
	slices.SortStableFunc(v.copies, func(a, b *keptMsg) int { return cmp.Compare(a.pos, b.pos) })
	v.copies = slices.CompactFunc(v.copies, func(a, b *keptMsg) bool { return a.pos == b.pos })
	return v
}

// Kept yields the kept events of channel after cursor: see
// [store.Keeper]. It reads the channel's chain with an ephemeral
// consumer. When an append to the channel is in progress (its intent is
// in the chain, its copy not yet), Kept waits for its copy, up to four
// AckTimeouts and a little from the event's Time; an intent older than
// that, whose copy never came, makes the channel incomplete up to the end
// of the log. From "", Kept yields the kept events after the newest
// position where one may be missing: a complete end of the channel.
func (s *Store) Kept(ctx context.Context, channel, cursor string) iter.Seq2[store.Event, error] {
	return func(yield func(store.Event, error) bool) {
		evs, err := s.kept(ctx, channel, cursor)
		if err != nil {
			yield(store.Event{}, s.wrapRead(fmt.Sprintf("kept %q", channel), err))
			return
		}
		for _, e := range evs {
			if !yield(e, nil) {
				return
			}
		}
	}
}

func (s *Store) kept(ctx context.Context, channel, cursor string) ([]store.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.closed() {
		return nil, store.ErrClosed
	}
	st, err := s.info(ctx)
	if err != nil {
		return nil, err
	}
	after, err := keptCursor(st, cursor)
	if err != nil {
		return nil, err
	}
	if s.keptStream == nil {
		if cursor == "" {
			return nil, nil
		}
		return nil, fmt.Errorf("%w: the store keeps no channel", store.ErrExpired)
	}
	cons, err := s.keptStream.CreateConsumer(ctx, jetstream.ConsumerConfig{
		FilterSubject:     s.keptPrefix + idToken(channel),
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		AckPolicy:         jetstream.AckNonePolicy,
		MemoryStorage:     true,
		InactiveThreshold: time.Minute,
	})
	if err != nil {
		return nil, err
	}
	defer s.deleteConsumer(s.keptName, cons.CachedInfo().Name)
	var msgs []keptMsg
	add := func(msg jetstream.Msg) error {
		meta, err := msg.Metadata()
		if err != nil {
			return err
		}
		m, err := decodeKept(meta.Sequence.Stream, msg.Data())
		if err != nil {
			return fmt.Errorf("kept message %d: %w", meta.Sequence.Stream, err)
		}
		msgs = append(msgs, m)
		return nil
	}
	// What the chain holds now.
	for n := cons.CachedInfo().NumPending; uint64(len(msgs)) < n; {
		batch, err := cons.FetchNoWait(int(min(n-uint64(len(msgs)), keptBatch)))
		if err != nil {
			return nil, err
		}
		got := 0
		for msg := range batch.Messages() {
			got++
			if err := add(msg); err != nil {
				return nil, err
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, err
		}
		if got == 0 {
			break // dropped meanwhile
		}
	}
	// The copies of the appends in progress when the chain was read:
	// their events may be in the log already. Intents after that are of
	// events appended after the log's end was read.
	var snap uint64
	if len(msgs) > 0 {
		snap = msgs[len(msgs)-1].seq
	}
waiting:
	for {
		wait := s.keptWait(msgs, snap)
		if wait < 10*time.Millisecond {
			break
		}
		if s.keptWaiting != nil {
			s.keptWaiting()
		}
		wctx, cancel := context.WithTimeout(ctx, wait)
		stop := context.AfterFunc(s.ctx, cancel)
		got, err := func() (int, error) {
			defer func() { stop(); cancel() }()
			batch, err := cons.Fetch(keptBatch, jetstream.FetchContext(wctx))
			if err != nil {
				return 0, err
			}
			got := 0
			for msg := range batch.Messages() {
				got++
				if err := add(msg); err != nil {
					return got, err
				}
				if s.keptWait(msgs, snap) <= 0 {
					return got, nil // the next turn ends the loop: no fetch in flight is left behind
				}
			}
			return got, batch.Error()
		}()
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case s.closed():
			return nil, store.ErrClosed
		case err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded):
			return nil, err
		case got == 0:
			break waiting // waited long enough
		}
	}
	v := viewKept(msgs, st.epoch, s.now().Add(-s.keepFor).UnixNano(), s.keepPer)
	bound := max(v.dropped, v.lost)
	if slices.ContainsFunc(v.pending, func(p pendingIntent) bool { return p.seq <= snap }) {
		// Their copies never came: those events are in the log before its
		// end, if at all.
		bound = max(bound, st.last)
	}
	switch {
	case cursor == "":
		after = bound // whatever was dropped before what is yielded
	case len(v.copies) == 0:
		return nil, fmt.Errorf("%w: nothing of the channel is kept", store.ErrExpired)
	case bound > after:
		return nil, fmt.Errorf("%w: events of the channel after %q were dropped", store.ErrExpired, cursor)
	}
	i, _ := slices.BinarySearchFunc(v.copies, after+1, func(m *keptMsg, pos uint64) int { return cmp.Compare(m.pos, pos) })
	evs := make([]store.Event, 0, len(v.copies)-i)
	for _, m := range v.copies[i:] {
		e, err := decode(st.epoch, m.pos, m.record, nil)
		if err != nil {
			return nil, fmt.Errorf("kept message %d: %w", m.seq, err)
		}
		if slices.Contains(e.Topics, channel) { // else another channel's, with the same token
			evs = append(evs, e)
		}
	}
	return evs, nil
}

// keptCursor returns the position of a Kept cursor: a generated id of
// the log, not beyond its end, or "".
func keptCursor(st state, cursor string) (uint64, error) {
	if cursor == "" {
		return 0, nil
	}
	pos, ok := st.epoch.Pos(cursor)
	switch {
	case !ok:
		return 0, fmt.Errorf("%w: %q is not an id this log generated", store.ErrUnknownID, cursor)
	case pos > st.last:
		return 0, fmt.Errorf("%w: %q is beyond the end of the log", store.ErrUnknownID, cursor)
	}
	return pos, nil
}

// keptWait returns how long Kept waits for the copies of the intents of
// its chain msgs that were pending at sequence snap and still are: until
// the youngest is keptGrace old. Zero when none is younger.
func (s *Store) keptWait(msgs []keptMsg, snap uint64) time.Duration {
	if len(msgs) == 0 {
		return 0
	}
	now := s.now().UnixNano()
	var wait time.Duration
	for _, p := range msgs[len(msgs)-1].after().pending {
		if p.seq <= snap {
			wait = max(wait, s.keptGrace-time.Duration(now-p.t))
		}
	}
	return min(wait, s.keptGrace)
}

// keptFloor bounds the positions of the events whose copies the kept
// stream has dropped, so that a chain that starts now, which cannot tell
// whether it is new or was dropped whole (nothing written to it for
// KeepFor, or pushed out at KeepMaxBytes), never passes off what it lost
// as complete: the memory and bolt stores keep such a floor as they drop.
// Whatever JetStream dropped came before the kept stream's oldest message,
// so its event's Time was at most that message's, plus the time a copy
// may take (keptGrace); the floor is the last log position before the
// first message the log received after that. With nothing dropped it is 0;
// when the server cannot search the log by time (no direct gets), the
// log's head.
func (s *Store) keptFloor(ctx context.Context, ep store.Epoch) (uint64, error) {
	info, err := s.keptStream.Info(ctx)
	if err != nil {
		return 0, err
	}
	if info.State.FirstSeq <= 1 {
		return 0, nil // nothing dropped
	}
	t := s.now()
	if info.State.Msgs > 0 {
		raw, err := s.keptStream.GetMsg(ctx, info.State.FirstSeq)
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
			// dropped meanwhile: now bounds it
		case err != nil:
			return 0, err
		default:
			if m, err := decodeKept(raw.Sequence, raw.Data); err == nil && m.epoch == ep {
				t = time.Unix(0, m.t)
			}
		}
	}
	return s.lastBefore(ctx, t.Add(s.keptGrace))
}

// lastBefore returns the position of the last event of the log that the
// server received before t: one below its first message at or after t
// (a direct get by start time), or the head when there is none or the
// server cannot tell.
func (s *Store) lastBefore(ctx context.Context, t time.Time) (uint64, error) {
	head := func() (uint64, error) {
		st, err := s.info(ctx)
		return st.last, err
	}
	req, err := json.Marshal(struct {
		StartTime time.Time `json:"start_time"`
	}{t.UTC()})
	if err != nil {
		return 0, err
	}
	rctx, cancel := context.WithTimeout(ctx, directTimeout)
	defer cancel()
	msg, err := s.nc.RequestWithContext(rctx, s.directSubj, req)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return head()
	case err != nil:
		return 0, err
	case msg.Header.Get("Status") != "":
		return head() // 404: nothing after t
	}
	seq, err := strconv.ParseUint(msg.Header.Get("Nats-Sequence"), 10, 64)
	if err != nil || seq == 0 {
		return head()
	}
	return seq - 1, nil
}
