package hub

import (
	"context"
)

// register adds s to the dispatcher's index, in the buffering phase: from
// now on every event dispatched (every event after h.lastPos) that matches
// goes to its queue, and s.start is a cursor before the first event it can
// receive live (see cursorLocked). It waits while the follower is not
// following.
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
		s.start, s.startSeq, s.registered = h.cursorLocked(), h.seq, true
		s.slots = make([]int, len(s.index))
		if s.match != nil {
			h.join(s)
		} else {
			indexAdd(h.exact, s)
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
	if s.group != nil {
		h.leave(s)
	} else {
		indexRemove(h.exact, s)
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

// indexAdd adds s to idx under each of its indexed topics, recording its
// positions in s.slots.
func indexAdd(idx map[string][]*Subscriber, s *Subscriber) {
	for i, t := range s.index {
		l := idx[t]
		s.slots[i] = len(l)
		idx[t] = append(l, s)
	}
}

// indexRemove removes s from idx.
func indexRemove(idx map[string][]*Subscriber, s *Subscriber) {
	for i, t := range s.index {
		l := idx[t]
		j := s.slots[i]
		last := len(l) - 1
		if j != last {
			moved := l[last]
			l[j] = moved
			moved.slots[moved.slotOf(t)] = j
		}
		l[last] = nil
		if last == 0 {
			delete(idx, t)
		} else {
			idx[t] = l[:last]
		}
	}
}

// indexHas reports whether a subscriber of idx is indexed on one of topics.
func indexHas(idx map[string][]*Subscriber, topics []string) bool {
	for _, t := range topics {
		if len(idx[t]) > 0 {
			return true
		}
	}
	return false
}

// indexCollect appends to targets the subscribers of idx indexed on one of
// topics, each once: seq is the event's mark, new for each event.
func indexCollect(targets []*Subscriber, idx map[string][]*Subscriber, topics []string, seq uint64) []*Subscriber {
	for _, t := range topics {
		for _, s := range idx[t] {
			if s.mark != seq {
				s.mark = seq
				targets = append(targets, s)
			}
		}
	}
	return targets
}

func (s *Subscriber) slotOf(t string) int {
	for i, x := range s.index {
		if x == t {
			return i
		}
	}
	panic("hub: subscriber index out of sync for topic " + t)
}
