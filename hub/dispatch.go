package hub

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sluicehq/sluice/sse"
	"github.com/sluicehq/sluice/store"
)

// follow is the hub's one follower goroutine: it follows the store from its
// head and dispatches every event in log order. When a Follow ends with an
// error it logs it, disconnects every subscriber (they resume from their
// Last-Event-ID, so nothing is lost) and starts again from the store's head;
// subscribers arriving meanwhile wait until it follows again, so none can
// register against a log position nobody will dispatch.
func (h *Hub) follow() {
	defer h.bg.Done()
	backoff := 50 * time.Millisecond
	for h.ctx.Err() == nil {
		head, err := h.store.Head(h.ctx)
		if err != nil {
			if h.ctx.Err() != nil {
				return
			}
			h.log.Error("hub: store head failed; retrying", "err", err, "backoff", backoff)
			if !h.sleep(backoff) {
				return
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		h.setReady(head)
		err = h.followFrom(head)
		if h.ctx.Err() != nil {
			return
		}
		h.log.Error("hub: following the store failed; disconnecting subscribers and following again from the head",
			"err", err, "after", head)
		h.unready()
		if !h.sleep(backoff) {
			return
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (h *Hub) followFrom(cursor string) error {
	for ev, err := range h.store.Follow(h.ctx, cursor) {
		if err != nil {
			return fmt.Errorf("follow after %q: %w", cursor, err)
		}
		h.dispatch(&ev)
	}
	if h.ctx.Err() != nil {
		return nil
	}
	return errors.New("follow ended without an error")
}

// sleep waits d (real time: it paces retries against a failing store) or
// until the hub shuts down, and reports whether the hub is still running.
func (h *Hub) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-h.ctx.Done():
		return false
	}
}

// setReady opens registration: the follower follows from head.
func (h *Hub) setReady(head string) {
	h.mu.Lock()
	h.lastID = head
	if !h.isReady {
		h.isReady = true
		close(h.ready)
	}
	h.mu.Unlock()
}

func (h *Hub) unready() {
	h.mu.Lock()
	if h.isReady {
		h.isReady = false
		h.ready = make(chan struct{})
	}
	for _, s := range h.subs {
		s.close(ReasonStoreError)
	}
	h.mu.Unlock()
}

// register adds s to the dispatcher's index, in the buffering phase: from
// now on every event dispatched (every event after h.lastPos) that matches
// goes to its queue, and s.start is the id of the event before the first
// one it can receive live. It waits while the follower is not following.
func (h *Hub) register(ctx context.Context, s *Subscriber) error {
	for {
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			return ErrHubClosed
		}
		if !h.isReady {
			ready := h.ready
			h.mu.Unlock()
			select {
			case <-ready:
				continue
			case <-ctx.Done():
				return ctx.Err()
			case <-h.ctx.Done():
				return ErrHubClosed
			}
		}
		s.buffering = true
		s.start, s.registered = h.lastID, true
		s.slots = make([]int, len(s.index))
		for i, t := range s.index {
			l := h.exact[t]
			s.slots[i] = len(l)
			h.exact[t] = append(l, s)
		}
		if s.match != nil {
			s.patSlot = len(h.patterns)
			h.patterns = append(h.patterns, s)
		}
		h.subs[s.id] = s
		h.mu.Unlock()
		h.stats.subscribers.Add(1)
		return nil
	}
}

// unregister removes s from the index and drops its queue.
func (h *Hub) unregister(s *Subscriber) {
	h.mu.Lock()
	if _, ok := h.subs[s.id]; !ok {
		h.mu.Unlock()
		return
	}
	delete(h.subs, s.id)
	for i, t := range s.index {
		l := h.exact[t]
		j := s.slots[i]
		last := len(l) - 1
		if j != last {
			moved := l[last]
			l[j] = moved
			moved.slots[moved.slotOf(t)] = j
		}
		l[last] = nil
		if last == 0 {
			delete(h.exact, t)
		} else {
			h.exact[t] = l[:last]
		}
	}
	if s.patSlot >= 0 {
		last := len(h.patterns) - 1
		if s.patSlot != last {
			moved := h.patterns[last]
			h.patterns[s.patSlot] = moved
			moved.patSlot = s.patSlot
		}
		h.patterns[last] = nil
		h.patterns = h.patterns[:last]
		s.patSlot = -1
	}
	h.mu.Unlock()
	h.stats.subscribers.Add(-1)
	s.mu.Lock()
	s.closeLocked(ReasonClient)
	n := len(s.q)
	clear(s.q)
	s.q = nil
	s.qBytes = 0
	s.mu.Unlock()
	h.stats.queued.Add(-int64(n))
}

func (s *Subscriber) slotOf(t string) int {
	for i, x := range s.index {
		if x == t {
			return i
		}
	}
	panic("hub: subscriber index out of sync for topic " + t)
}

// dispatch delivers one event of the log to every matching subscriber. It
// runs on the follower goroutine only, so queues receive events in log
// order. The index lock is held only to collect the targets and to record
// the position: a subscriber registering afterwards finds this event in its
// replay, one registered before gets it here.
func (h *Hub) dispatch(ev *store.Event) {
	reserved := hasReserved(ev.Topics)
	end := ev.Type == typeStreamEnd
	if end {
		if !reserved {
			h.mu.Lock()
			h.lastPos, h.lastID = ev.Pos, ev.ID
			h.mu.Unlock()
			return
		}
		h.streams.finished(ev.Topics, h.clock.Now())
	}
	h.seq++
	seq := h.seq
	targets := h.targets[:0]
	pats := h.pats[:0]
	h.mu.Lock()
	for _, t := range ev.Topics {
		for _, s := range h.exact[t] {
			if s.mark != seq {
				s.mark = seq
				targets = append(targets, s)
			}
		}
	}
	if !reserved {
		pats = append(pats, h.patterns...)
	}
	h.lastPos, h.lastID = ev.Pos, ev.ID
	h.mu.Unlock()

	// Patterns and authorization run outside the lock: they are the
	// subscription's code.
	if len(pats) > 0 {
		clear(h.mcache)
		for _, s := range pats {
			if s.mark == seq {
				continue
			}
			if h.matches(s, ev.Topics) {
				s.mark = seq
				targets = append(targets, s)
			}
		}
	}
	if !reserved {
		kept := targets[:0]
		for _, s := range targets {
			if s.visible(ev) {
				kept = append(kept, s)
			}
		}
		clear(targets[len(kept):])
		targets = kept
	}
	if len(targets) > 0 {
		h.deliver(ev, end, targets)
	}
	clear(targets)
	clear(pats)
	h.targets = targets[:0]
	h.pats = pats[:0]
}

func (h *Hub) deliver(ev *store.Event, end bool, targets []*Subscriber) {
	it := item{pos: ev.Pos, end: end}
	if !end {
		pe, err := sse.Prepare(sse.Event{ID: ev.ID, Type: ev.Type, Data: ev.Data, Retry: ev.Retry})
		if err != nil {
			h.log.Error("hub: skipping an event the store holds that cannot be sent", "id", ev.ID, "err", err)
			return
		}
		it.ev = pe
	}
	for _, s := range targets {
		s.enqueue(it)
	}
}

// matches runs a pattern subscriber's matcher, once per event for all
// subscribers sharing a MatchKey.
func (h *Hub) matches(s *Subscriber, topics []string) bool {
	if s.matchKey == "" {
		return s.match(topics)
	}
	if v, ok := h.mcache[s.matchKey]; ok {
		return v
	}
	v := s.match(topics)
	h.mcache[s.matchKey] = v
	return v
}
