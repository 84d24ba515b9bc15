package hub

import (
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
	h.cursor, h.cursorOK, h.safeID = head, true, head // a generated id (store.Store.Head)
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

// dispatch delivers one event of the log to every matching subscriber. It
// runs on the follower goroutine only, so queues receive events in log
// order (Notify takes turns with it). The index lock is held only to
// collect the targets and to record the position: a subscriber
// registering afterwards finds this event in its replay, one registered
// before gets it here. Pattern subscriptions are matched by their groups,
// on goroutines of their own (patterns.go): here an event only costs them
// a hand-over per group.
func (h *Hub) dispatch(ev *store.Event) {
	reserved := hasReserved(ev.Topics)
	end := ev.Type == typeEnd
	if end {
		h.completed.add(ev.Topics)
	}
	h.dispatchMu.Lock()
	defer h.dispatchMu.Unlock()
	h.fanOut(ev, reserved, end, false)
}

// fanOut queues ev for the subscribers it reaches: those indexed on one of
// its topics directly, the pattern groups through their goroutines. A
// notice (Notify) takes the hub's position and leaves it unchanged.
// h.dispatchMu must be held.
func (h *Hub) fanOut(ev *store.Event, reserved, end, notice bool) {
	h.mu.Lock()
	h.seq++
	seq := h.seq
	targets := indexCollect(h.targets[:0], h.exact, ev.Topics, seq)
	groups := append(h.groupScratch[:0], h.groupList...)
	if notice {
		ev.Pos = h.lastPos
	} else {
		h.record(ev, reserved || ev.Private)
	}
	h.mu.Unlock()

	// Authorization runs outside the lock: it is the subscription's code.
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
	if len(targets) > 0 || len(groups) > 0 {
		it, ok := h.prepare(ev, end)
		it.notice = notice
		if ok {
			for _, s := range targets {
				s.enqueue(it)
			}
			if len(groups) > 0 {
				gi := groupItem{ev: new(store.Event), it: it, seq: seq, reserved: reserved}
				*gi.ev = *ev // the groups keep it after the follower moves on
				for _, g := range groups {
					g.push(gi)
				}
			}
		}
	}
	clear(targets)
	clear(groups)
	h.targets = targets[:0]
	h.groupScratch = groups[:0]
}

// prepare formats ev once for all its subscribers.
func (h *Hub) prepare(ev *store.Event, end bool) (item, bool) {
	it := item{pos: ev.Pos, end: end}
	if !end {
		pe, err := sse.Prepare(sse.Event{ID: ev.ID, Type: ev.Type, Data: ev.Data, Retry: ev.Retry})
		if err != nil {
			h.log.Error("hub: skipping an event the store holds that cannot be sent", "id", ev.ID, "err", err)
			return it, false
		}
		it.ev = pe
	}
	return it, true
}
