package hub

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/sluicehq/sluice/sse"
	"github.com/sluicehq/sluice/store"
)

// replayBatch is how much replayed history is buffered per write.
const replayBatch = 64 << 10

// maxPooledBuf bounds the buffers kept for reuse.
const maxPooledBuf = 1 << 20

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

func getBuf() []byte { return (*bufPool.Get().(*[]byte))[:0] }

func putBuf(b []byte) {
	if cap(b) == 0 || cap(b) > maxPooledBuf {
		return
	}
	b = b[:0]
	bufPool.Put(&b)
}

// end ends the response for reason: the last bytes, then the subscriber
// leaves the hub before anyone is told it disconnected. It runs on the
// goroutine that ran the stream, the handler's or the detached one.
func (c *conn) end(reason DisconnectReason) {
	h, s := c.h, c.s
	putBuf(c.buf)
	c.buf = nil
	if c.nc != nil {
		c.unwatchPeer()
	}
	c.tr.end(reason, c.wrote) // the last bytes, or an abrupt end
	if r := s.closeReason(); r != "" && reason == ReasonClient {
		reason = r // the write failed because the hub had given up on it
	}
	h.unregister(s)
	s.mu.Lock()
	s.lastID = c.lastID
	s.mu.Unlock()
	h.metrics.SubscriberDisconnected(reason)
	if c.onDisconnect != nil {
		c.onDisconnect(s, reason)
	}
}

// conn is the state of one response, used by the goroutine serving it only
// (the handler's, then the detached one's).
type conn struct {
	h      *Hub
	s      *Subscriber
	w      http.ResponseWriter // the response, until the stream detaches: for its headers
	rc     *http.ResponseController
	tr     transport // &ht, then &ct once the connection is taken over
	ht     httpTransport
	ct     chunkTransport
	buf    []byte
	wrote  bool   // status and headers are sent
	lastID string // the last id written (the client's cursor)

	pendingReplay int // replayed events buffered but not yet written

	mayHijack bool     // the connection may be taken over once live (hijack.go)
	nc        net.Conn // the hijacked connection, or nil
	watch     peerWatch
	detached  bool // the live loop went on on its own goroutine

	onResume     func(http.Header, Resume)           // Subscription.OnResume
	onConnect    func(*Subscriber)                   // Subscription.OnConnect
	onDisconnect func(*Subscriber, DisconnectReason) // Subscription.OnDisconnect
	priming      Priming                             // Subscription.Priming
	resume       Resume                              // the outcome, for onResume
	deadline     time.Time                           // Subscription.Deadline
}

// run sends the stream and returns why it ended.
func (c *conn) run(ctx context.Context, cursor string, replay bool, poll time.Duration) DisconnectReason {
	var maxSent uint64
	c.opening()
	if replay {
		var reason DisconnectReason
		maxSent, reason = c.replay(ctx, cursor)
		if reason != "" {
			return reason
		}
	} else {
		head, err := c.head(ctx)
		if err != nil {
			return c.storeFailed(ctx, err)
		}
		c.resume.Head = head
		c.prime(head)
	}
	if poll > 0 {
		c.buf = sse.AppendRetry(c.buf, poll)
		if c.flush(0) != nil {
			return ReasonClient
		}
		return ReasonPoll
	}
	return c.live(ctx, maxSent)
}

// head returns the cursor of a stream that starts now: for a registered
// subscriber the hub's position when it registered, after which every
// event reaches it live (the store's head may be further on while the
// follower catches up: those events arrive live, and a cursor past them
// would make them duplicates); for a polling response, the store's head.
func (c *conn) head(ctx context.Context) (string, error) {
	if c.s.registered {
		return c.s.start, nil
	}
	return c.h.store.Head(ctx)
}

// opening resets the buffer to the start of the stream: empty, or under
// PrimingNone the ":" comment that stands for the priming.
func (c *conn) opening() {
	c.buf = c.buf[:0]
	if c.priming == PrimingNone {
		c.buf = append(c.buf, ":\n"...)
	}
}

// prime appends the priming of Subscription.Priming for the cursor id.
func (c *conn) prime(id string) {
	if id == "" {
		return
	}
	switch c.priming {
	case PrimingID:
		c.buf, _ = sse.AppendID(c.buf, id)
	case PrimingEmptyData:
		c.buf, _ = sse.AppendEvent(c.buf, sse.Event{ID: id})
	}
	c.lastID = id
}

// replay sends the history after cursor. It returns the highest position
// sent, and a reason when the response is over.
func (c *conn) replay(ctx context.Context, cursor string) (uint64, DisconnectReason) {
	h := c.h
	began := h.clock.Now()
	c.resume.Replayed = true
	from, hidden, err := c.lookup(ctx, cursor)
	if err != nil {
		return 0, c.storeFailed(ctx, err)
	}
	c.prime(cursor)
	history := h.store.History(ctx, from, c.s.wants)
	if hidden {
		history = unknownCursor(cursor)
	}
	r := c.send(history)
	if r.err != nil && r.n == 0 && !c.wrote && (errors.Is(r.err, store.ErrUnknownID) || errors.Is(r.err, store.ErrExpired)) {
		kept, mixed, head, err := c.kept(ctx, from, r.err)
		switch {
		case err != nil:
			return 0, c.storeFailed(ctx, err)
		case kept == nil:
			if err := c.reset(ctx, cursor, r.err); err != nil {
				return 0, c.storeFailed(ctx, err)
			}
			r.err = nil
		case mixed:
			// The reset follows the kept events; OnResume and the
			// header, written with the first of them, tell it already.
			c.resume.Reset, c.resume.Head = sse.ResetExpired, head
			c.w.Header().Set(ResetHeader, sse.ResetExpired)
			if r = c.send(kept); r.err == nil && !r.ended {
				c.resetAfter(cursor, sse.ResetExpired, head)
				r.maxSent = 0 // live goes on from the head the reset names
			}
		default:
			r = c.send(kept)
		}
	}
	if r.err != nil {
		if errors.Is(r.err, errClientGone) {
			return 0, ReasonClient
		}
		return 0, c.storeFailed(ctx, r.err)
	}
	n, pending := r.n, r.pending
	h.stats.replayed.Add(uint64(n))
	h.metrics.Replayed(n, h.clock.Now().Sub(began))
	if r.ended || (n == 0 && h.completed.any(c.s.topics)) {
		if n == 0 && !c.wrote {
			// Nothing left: 204 tells a browser to stop reconnecting.
			hdr := c.w.Header()
			hdr.Del("Content-Type")
			hdr.Del("X-Accel-Buffering")
			hdr.Del(ResetHeader)
			c.w.WriteHeader(http.StatusNoContent)
			c.wrote = true
			c.buf = c.buf[:0]
			return 0, ReasonCompleted
		}
		if c.flush(pending) != nil {
			return 0, ReasonClient
		}
		return 0, ReasonCompleted
	}
	c.pendingReplay = pending
	if r.maxSent > 0 || c.resume.Reset != "" {
		// Every event up to the cursor is below the first one replayed.
		return r.maxSent, ""
	}
	floor, err := c.resolve(ctx, from)
	if err != nil {
		return 0, c.storeFailed(ctx, err)
	}
	return floor, ""
}

// errClientGone reports a write to the client that failed.
var errClientGone = errors.New("hub: client gone")

// sent is what send wrote of a history.
type sent struct {
	n, pending int    // events sent, and of them those not yet written
	maxSent    uint64 // the highest position sent
	ended      bool   // the history reached the completion of a channel
	err        error  // what ended the history early, or errClientGone
}

// send buffers the events of history, writing every replayBatch bytes,
// up to the completion of a channel if it has one.
func (c *conn) send(history iter.Seq2[store.Event, error]) sent {
	var r sent
	for ev, err := range history {
		if err != nil {
			r.err = err
			return r
		}
		if ev.Type == typeEnd {
			r.ended = true
			return r
		}
		r.maxSent = ev.Pos
		buf, err := sse.AppendEvent(c.buf, sse.Event{ID: ev.ID, Type: ev.Type, Data: ev.Data, Retry: ev.Retry})
		if err != nil {
			c.h.log.Error("hub: skipping an event the store holds that cannot be sent", "id", ev.ID, "err", err)
			continue
		}
		c.buf = buf
		c.lastID = ev.ID
		r.n++
		r.pending++
		if len(c.buf) >= replayBatch {
			if c.flush(r.pending) != nil {
				r.err = errClientGone
				return r
			}
			r.pending = 0
		}
	}
	return r
}

// kept returns the history of the subscription's private channels after
// cursor when the log could not serve the cursor (cause) but the store
// keeps every event of those channels after it (store.Keeper): the events
// sent to a session stay deliverable whatever other traffic evicted from
// the log. It returns nil when that is not so (no Keeper, no private
// channel, an unknown cursor, or a channel that lost events after it:
// each channel's first answer decides, before anything is written), and
// mixed when the subscription also has topics that are not private
// channels, whose events after the cursor are lost: a reset follows the
// kept events, at head. The history merges the channels in log order as
// it is read, one event of each at a time, up to the subscriber's start
// (head); the later events arrive live.
func (c *conn) kept(ctx context.Context, cursor string, cause error) (history iter.Seq2[store.Event, error], mixed bool, head string, err error) {
	k, ok := c.h.store.(store.Keeper)
	rs, ok2 := c.h.store.(store.Resolver)
	if !ok || !ok2 || !errors.Is(cause, store.ErrExpired) {
		return nil, false, "", nil
	}
	var channels []string
	for _, t := range c.s.topics {
		if store.IsChannel(t) {
			channels = append(channels, t)
		} else {
			mixed = true
		}
	}
	if len(channels) == 0 {
		return nil, false, "", nil
	}
	mixed = mixed || c.s.match != nil
	if head, err = c.head(ctx); err != nil || head == "" {
		return nil, false, "", err
	}
	end, err := rs.Resolve(ctx, head)
	if err != nil {
		return nil, false, "", fmt.Errorf("resolve the head %q: %w", head, err)
	}
	heads := make([]*keptHead, 0, len(channels))
	stop := func() {
		for _, h := range heads {
			h.stop()
		}
	}
	for _, ch := range channels {
		next, stopCh := iter.Pull2(k.Kept(ctx, ch, cursor))
		h := &keptHead{next: next, stop: stopCh, end: end, wants: c.s.wants}
		heads = append(heads, h)
		switch err := h.advance(); {
		case errors.Is(err, store.ErrExpired) || errors.Is(err, store.ErrUnknownID):
			stop()
			return nil, false, "", nil
		case err != nil:
			stop()
			return nil, false, "", fmt.Errorf("kept events of %q: %w", ch, err)
		}
	}
	return func(yield func(store.Event, error) bool) {
		defer stop()
		var last uint64
		for {
			var first *keptHead
			for _, h := range heads {
				if h.ok && (first == nil || h.ev.Pos < first.ev.Pos) {
					first = h
				}
			}
			if first == nil {
				return
			}
			ev := first.ev
			if err := first.advance(); err != nil {
				yield(store.Event{}, err)
				return
			}
			if ev.Pos == last {
				continue // on two of the channels
			}
			last = ev.Pos
			if !yield(ev, nil) {
				return
			}
		}
	}, mixed, head, nil
}

// keptHead is the next event of one channel's kept history, for kept's
// merge.
type keptHead struct {
	next  func() (store.Event, error, bool)
	stop  func()
	end   uint64
	wants func(*store.Event) bool
	ev    store.Event
	ok    bool // ev is the channel's next event
}

// advance reads the channel's next event the subscriber wants, up to end.
func (h *keptHead) advance() error {
	for {
		ev, err, more := h.next()
		switch {
		case !more:
			h.ok = false
			return nil
		case err != nil:
			h.ok = false
			return err
		case ev.Pos > h.end:
			h.ok = false
			h.stop()
			return nil
		case h.wants(&ev):
			h.ev, h.ok = ev, true
			return nil
		}
	}
}

// lookup checks a cursor that may be a custom id against the subscription,
// when the store can tell what event a custom id names (store.Positioner).
// It returns the cursor to replay from: the generated id of the event the
// custom id names, which is the same position and spares the store a
// second search. It reports hidden when the custom id names no retained
// event, or one the subscriber may not see (Subscriber.mayKnow): the
// subscriber then gets exactly the reset an id never issued gets, so
// resuming from a guessed custom id tells nothing of an event it may not
// see. Generated ids cost nothing here (Lookup answers them without I/O)
// and are left to History; so is every cursor with a store without
// store.Positioner.
func (c *conn) lookup(ctx context.Context, cursor string) (from string, hidden bool, err error) {
	p := c.h.positioner
	if p == nil || cursor == "" {
		return cursor, false, nil
	}
	ev, ok, err := p.Lookup(ctx, cursor)
	switch {
	case errors.Is(err, store.ErrUnknownID):
		return cursor, true, nil
	case err != nil:
		return "", false, fmt.Errorf("look up %q: %w", cursor, err)
	case !ok:
		return cursor, false, nil
	case !c.s.mayKnow(&ev):
		return cursor, true, nil
	}
	return p.PositionID(&ev), false, nil
}

// unknownCursor is the history of a cursor that names nothing the
// subscriber may know of: what History yields for an id never issued.
func unknownCursor(cursor string) iter.Seq2[store.Event, error] {
	return func(yield func(store.Event, error) bool) {
		yield(store.Event{}, fmt.Errorf("hub: %w: %q", store.ErrUnknownID, cursor))
	}
}

// resolve returns the position of cursor when the store can tell it
// (store.Resolver), else 0. The live events up to it are skipped like the
// replayed ones: with a follower behind the cursor (a cursor read from
// another hub on a shared store, or returned by Publish), History after it
// yields nothing while the live queue still brings the events before it.
// It is asked only when History yielded nothing (otherwise the first
// replayed event is above the cursor already), which spares a replay from
// a shared store a round trip. A cursor the store refuses is left to
// History, which reports it.
func (c *conn) resolve(ctx context.Context, cursor string) (uint64, error) {
	rs, ok := c.h.store.(store.Resolver)
	if !ok || cursor == "" || c.resume.Reset != "" {
		return 0, nil // after a reset, every live event is after the head
	}
	pos, err := rs.Resolve(ctx, cursor)
	if err != nil && !errors.Is(err, store.ErrUnknownID) && !errors.Is(err, store.ErrExpired) {
		return 0, fmt.Errorf("resolve %q: %w", cursor, err)
	}
	return pos, nil
}

// reset replaces the replay with the reset signal.
func (c *conn) reset(ctx context.Context, cursor string, cause error) error {
	reason := sse.ResetUnknown
	if errors.Is(cause, store.ErrExpired) {
		reason = sse.ResetExpired
	}
	head, err := c.head(ctx)
	if err != nil {
		return fmt.Errorf("head for reset: %w", err)
	}
	c.opening() // the priming event would repeat the useless cursor
	c.resume = Resume{Reset: reason, Head: head}
	c.w.Header().Set(ResetHeader, reason)
	c.resetAfter(cursor, reason, head)
	return nil
}

// resetAfter appends the reset signal to what is buffered: the cursor
// could not be served, and the stream goes on from head.
func (c *conn) resetAfter(cursor, reason, head string) {
	h := c.h
	if head == "" {
		// An empty log has no id to move to: clear the client's cursor.
		c.buf = append(c.buf, "id\n"...)
	}
	c.buf, _ = sse.AppendEvent(c.buf, sse.ResetEvent(head, reason))
	c.lastID = head
	h.stats.resets.Add(1)
	h.metrics.Reset(reason)
	h.log.Debug("hub: cursor cannot be replayed; sent a reset event", "reason", reason,
		"last_event_id", cursor, "head", head, "subscriber", c.s.idStr)
}

// storeFailed ends a response after a store error: with 503 when nothing
// was sent yet, else by ending the stream (the client resumes).
func (c *conn) storeFailed(ctx context.Context, err error) DisconnectReason {
	if ctx.Err() != nil {
		return ReasonClient
	}
	c.h.log.Error("hub: store failed while serving a subscriber", "err", err, "subscriber", c.s.idStr)
	if !c.wrote {
		c.wrote = true
		c.w.Header().Set("Retry-After", "1")
		http.Error(c.w, "event store unavailable", http.StatusServiceUnavailable)
	}
	return ReasonStoreError
}

// liveState is what the live loop carries from one wait to the next.
type liveState struct {
	maxSent  uint64 // the highest position replayed: skip live events up to it
	pending  int    // events buffered but not yet written
	timer    Timer
	timerC   <-chan time.Time
	nextBeat time.Time
	end      time.Time
	beat     bool
	recycle  bool // a heartbeat was due: see restack
	spare    []item
}

// live writes queued events until the stream ends, or until it detaches
// (reasonDetached).
func (c *conn) live(ctx context.Context, maxSent uint64) DisconnectReason {
	h, s := c.h, c.s
	ls := &liveState{maxSent: maxSent, pending: c.pendingReplay}
	now := h.clock.Now()
	if h.cfg.Heartbeat > 0 {
		ls.nextBeat = now.Add(h.cfg.Heartbeat)
	}
	if lt := h.cfg.MaxLifetime; lt > 0 {
		ls.end = now.Add(lt - h.cfg.Jitter(lt/10))
	}
	if d := c.deadline; !d.IsZero() && (ls.end.IsZero() || d.Before(ls.end)) {
		ls.end = d
		if !now.Before(ls.end) {
			s.close(ReasonLifetime)
		}
	}
	ls.arm(h.clock, now)
	return c.loop(ctx, ls)
}

// arm sets the timer to the next heartbeat or the end, whichever is first.
func (ls *liveState) arm(clock Clock, now time.Time) {
	next := ls.nextBeat
	if next.IsZero() || (!ls.end.IsZero() && ls.end.Before(next)) {
		next = ls.end
	}
	if next.IsZero() {
		return
	}
	if ls.timer == nil {
		ls.timer = clock.NewTimer(next.Sub(now))
		ls.timerC = ls.timer.C()
	} else {
		ls.timer.Reset(next.Sub(now))
	}
}

// reasonDetached is returned by loop when the stream goes on on a
// goroutine of its own.
const reasonDetached DisconnectReason = "detached"

// loop writes queued events, waiting for more in between, until the
// stream ends. Once a connection is hijacked, the loop moves to a fresh
// goroutine and the handler returns (detach).
//
// Its body is in functions of their own (fill, write, wait), so that
// loop's own frame is small: an idle stream parks in wait with little of
// its stack in use, and the deepest chain (a write to the connection) fits
// in a goroutine's first 2 KiB, which it then does not outgrow while it
// keeps up (the runtime does not shrink a stack back once it grew, at the
// depth a parked stream has; what a burst or a slow client grows, restack
// gives back at the next heartbeat). That is half the memory of a parked
// stream's stack.
func (c *conn) loop(ctx context.Context, ls *liveState) (reason DisconnectReason) {
	defer func() {
		if reason != reasonDetached && ls.timer != nil {
			ls.timer.Stop()
		}
	}()
	for {
		closed, ended := c.fill(ls)
		if r := c.write(ls, closed, ended); r != "" {
			return r
		}
		if c.mayHijack {
			if c.hijack() != nil {
				return ReasonClient
			}
			if c.nc != nil {
				c.detach(ls)
				return reasonDetached
			}
		}
		if ls.recycle && c.restack(ls) {
			return reasonDetached
		}
		if r := c.wait(ctx, ls); r != "" {
			return r
		}
	}
}

// fill appends the queued items to the buffer. It returns why the hub
// closed the subscriber ("" while open) and whether a channel it follows
// ended.
//
//go:noinline
func (c *conn) fill(ls *liveState) (closed DisconnectReason, ended bool) {
	if c.buf == nil {
		c.buf = getBuf()
	}
	items, gap, reason := c.s.take(ls.spare)
	for _, it := range items {
		if it.notice {
			c.buf = append(c.buf, it.ev.Bytes()...) // no id: the cursor stays
			ls.pending++
			continue
		}
		if it.pos <= ls.maxSent {
			continue // already replayed
		}
		if it.end {
			ended = true
			break
		}
		c.buf = append(c.buf, it.ev.Bytes()...)
		c.lastID = it.ev.Event().ID
		ls.pending++
	}
	clear(items)
	ls.spare = items
	if cap(ls.spare) > 64 && len(items) < cap(ls.spare)/4 {
		ls.spare = nil // a burst is over: do not keep its room
	}
	if gap > 0 {
		c.buf = appendGap(c.buf, gap)
	}
	if ls.beat {
		c.buf = sse.AppendComment(c.buf, "")
		ls.beat = false
	}
	return reason, ended
}

// write sends what fill buffered. It returns a reason when the stream is
// over: closed by the hub (with a "retry:" when the reason calls for
// one), a channel ended, or the client gone.
//
//go:noinline
func (c *conn) write(ls *liveState, closed DisconnectReason, ended bool) DisconnectReason {
	if closed != "" {
		if !closed.retries() {
			return closed
		}
		c.buf = sse.AppendRetry(c.buf, c.h.cfg.Retry)
		_ = c.flush(ls.pending)
		return closed
	}
	if len(c.buf) > 0 || !c.wrote {
		if c.flush(ls.pending) != nil {
			return ReasonClient
		}
		ls.pending = 0
	}
	if ended {
		return ReasonCompleted
	}
	putBuf(c.buf)
	c.buf = nil
	return ""
}

// wait parks until the subscriber is signalled, its timer fires (a
// heartbeat is due, or its lifetime is over) or ctx is done.
//
//go:noinline
func (c *conn) wait(ctx context.Context, ls *liveState) DisconnectReason {
	h, s := c.h, c.s
	select {
	case <-s.wake:
	case <-ls.timerC:
		now := h.clock.Now()
		if !ls.end.IsZero() && !now.Before(ls.end) {
			s.close(ReasonLifetime)
			return ""
		}
		if !ls.nextBeat.IsZero() && !now.Before(ls.nextBeat) {
			if c.nc != nil && c.peerGone() {
				return ReasonClient // nothing else watches a hijacked connection
			}
			ls.beat, ls.recycle = true, true
			ls.nextBeat = now.Add(h.cfg.Heartbeat)
		}
		ls.arm(h.clock, now)
	case <-ctx.Done():
		return ReasonClient
	}
	return ""
}

// restack moves a detached stream to a fresh goroutine at each heartbeat,
// and reports whether it did. A goroutine's stack grows when it goes
// deeper than a parked stream ever does: a write that waits for a slow
// client, an allocation that helps the garbage collector (a burst, a
// reconnect storm), or a start during a storm, when the runtime starts
// goroutines with the larger stacks it sees in use. The runtime never
// shrinks a stack back to the 2 KiB a parked stream needs (see loop), so
// without this a stream would keep 4 KiB or more for the rest of its
// life; with it, within a heartbeat. It costs a goroutine's start per
// stream and heartbeat, off the path of events.
//
//go:noinline
func (c *conn) restack(ls *liveState) bool {
	ls.recycle = false
	if !c.detached {
		return false // the handler's goroutine: it detaches when it can
	}
	c.spawn(ls)
	return true
}

// detach moves the live loop of a hijacked connection to a goroutine of
// its own, so that the handler can return: the goroutine that parsed the
// request and set the subscription up has a stack grown to 16 KiB or more,
// which an idle stream would keep for its lifetime, while a fresh
// goroutine parked in the loop needs a few KiB. The request's context ends
// when the handler returns; from then on the client going away is noticed
// by the peer watcher, by a failed write or at a heartbeat.
func (c *conn) detach(ls *liveState) {
	c.detached = true
	c.w, c.rc, c.onResume = nil, nil, nil // the response is over for net/http
	// OnConnect ran before the stream opened; its closure may hold the
	// request's context (Mercure's does), which holds net/http's
	// per-connection contexts and values: ~0.5 KiB per idle subscriber.
	c.onConnect = nil
	c.ht = httpTransport{}
	c.spawn(ls)
}

// spawn runs the live loop on a new goroutine: from the handler's
// (detach), then from the loop's own (restack).
func (c *conn) spawn(ls *liveState) {
	c.h.conns.Add(1)
	go func() {
		defer c.h.conns.Done()
		if r := c.loop(context.Background(), ls); r != reasonDetached {
			c.end(r)
		}
	}()
}

// flush writes the buffer in one write and one flush, under the write
// deadline, and counts n delivered events.
func (c *conn) flush(n int) error {
	if !c.wrote && c.onResume != nil {
		c.onResume(c.w.Header(), c.resume)
	}
	c.wrote = true
	buf, err := c.tr.send(c.buf)
	c.buf = buf[:0]
	if err != nil {
		return err
	}
	c.count(n)
	return nil
}

func (c *conn) count(n int) {
	if n <= 0 {
		return
	}
	c.s.delivered.Add(uint64(n))
	c.h.stats.delivered.Add(uint64(n))
	c.h.metrics.Delivered(n)
}

// appendGap appends the PolicyDrop gap marker.
func appendGap(dst []byte, dropped uint64) []byte {
	dst = append(dst, "event: "+GapEventType+"\ndata: {\"dropped\":"...)
	dst = strconv.AppendUint(dst, dropped, 10)
	return append(dst, "}\n\n"...)
}
