package hub

import "sync"

// Waking subscribers: how a busy hub batches its writes by itself.
//
// Each stream's goroutine writes everything queued for it in one write
// (conn.loop), so the cost of a delivery falls with the events a write
// carries: a write to a socket costs microseconds, an event in it tenths
// of one. Events batch only if they are queued while the streams are busy
// writing the ones before. With one P that does not happen when the
// dispatcher wakes the streams itself: the goroutines it readies run
// before the scheduler next asks the network poller for new requests
// (findRunnable polls it only when the run queues are empty, or every
// 10 ms from sysmon), so a fan-out to 1,000 subscribers runs to its end
// with one event and the next publish is read only then: one event per
// write, however loaded the hub.
//
// So the dispatcher does not wake the streams. An enqueue marks its
// subscriber pending (Subscriber.pending, until its stream takes the
// queue) and hands it, once, to the hub's waker goroutine, which wakes
// pending subscribers wakeChunk at a time and, between two chunks, lets
// the scheduler poll the network (netYield): publishes that arrived
// meanwhile are read and dispatched while the fan-out goes on, and reach
// the streams not yet written in the same write as the events before
// them. A hub with nothing else to do pays one extra goroutine hop per
// event and nothing per write; a loaded one batches as much as arrives
// during a fan-out, with no delay added and no setting to tune.

// wakeChunk is how many streams are woken between two polls of the
// network: at a few microseconds per write, a poll every few hundred
// microseconds of fan-out, which costs a few microseconds itself.
const wakeChunk = 64

// waker is the hub's wake-up of pending subscribers.
type waker struct {
	mu      sync.Mutex
	list    []*Subscriber // pending, not yet woken, in the order they became pending
	started bool          // the goroutine runs (or the hub was stopped before it could)
	stopped bool          // it could not be started: wake at once
	poke    chan struct{} // cap 1: list is not empty
	yield   netYield
}

// pend hands s, which just became pending, to the waker. It is called with
// s.mu held (lock order: s.mu, then waker.mu).
func (h *Hub) pend(s *Subscriber) {
	w := &h.waker
	w.mu.Lock()
	if !w.started {
		w.started = true
		w.poke = make(chan struct{}, 1)
		if h.spawn() {
			go h.wake()
		} else {
			w.stopped = true
		}
	}
	if w.stopped {
		w.mu.Unlock()
		s.signal()
		return
	}
	w.list = append(w.list, s)
	w.mu.Unlock()
	select {
	case w.poke <- struct{}{}:
	default:
	}
}

// wake is the waker goroutine: it wakes pending subscribers, polling the
// network between chunks, until the hub shuts down.
func (h *Hub) wake() {
	defer h.bg.Done()
	w := &h.waker
	defer w.yield.stop()
	var batch []*Subscriber
	woken := 0 // since the last poll
	for {
		select {
		case <-w.poke:
		case <-h.ctx.Done():
			return
		}
		for {
			w.mu.Lock()
			batch, w.list = w.list, batch[:0]
			w.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			for _, s := range batch {
				if woken == wakeChunk {
					w.yield.yield(h)
					woken = 0
				}
				s.signal()
				woken++
			}
			clear(batch)
		}
		woken = 0 // parked: the scheduler polls the network anyway
	}
}
