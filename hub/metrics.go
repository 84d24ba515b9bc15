package hub

import (
	"sync/atomic"
	"time"
)

// Metrics receives the hub's counters as they change. Implementations must
// be safe for concurrent use and fast: they are called on the dispatcher
// and handler goroutines. The sluice binary adapts it to Prometheus; embed
// NopMetrics to implement only some methods.
type Metrics interface {
	// SubscriberConnected is called when a subscriber is registered.
	SubscriberConnected()
	// SubscriberDisconnected is called when a subscriber's response ends.
	SubscriberDisconnected(reason DisconnectReason)
	// Published is called with the number of events appended by Publish
	// and Complete (the sends of packages session, stream and relay are
	// Publishes).
	Published(n int)
	// Delivered is called with the number of events written to one
	// response in one write.
	Delivered(n int)
	// Dropped is called with the number of events dropped under PolicyDrop.
	Dropped(n int)
	// Replayed is called after a replay with the number of events it sent
	// and how long it took.
	Replayed(n int, d time.Duration)
	// Reset is called when a subscriber's cursor could not be served and
	// it got a reset event; reason is "expired" or "unknown".
	Reset(reason string)
}

// NopMetrics is a Metrics that does nothing.
type NopMetrics struct{}

// SubscriberConnected implements Metrics.
func (NopMetrics) SubscriberConnected() {}

// SubscriberDisconnected implements Metrics.
func (NopMetrics) SubscriberDisconnected(DisconnectReason) {}

// Published implements Metrics.
func (NopMetrics) Published(int) {}

// Delivered implements Metrics.
func (NopMetrics) Delivered(int) {}

// Dropped implements Metrics.
func (NopMetrics) Dropped(int) {}

// Replayed implements Metrics.
func (NopMetrics) Replayed(int, time.Duration) {}

// Reset implements Metrics.
func (NopMetrics) Reset(string) {}

// Stats is a snapshot of a hub's counters.
type Stats struct {
	Subscribers int64  // connected subscribers
	Queued      int64  // events waiting in all subscribers' queues
	Published   uint64 // events appended through this hub
	Delivered   uint64 // events written to subscribers (live and replay)
	Replayed    uint64 // of which replayed from history
	Dropped     uint64 // events dropped under PolicyDrop
	Slow        uint64 // subscribers disconnected for a full queue
	Resets      uint64 // reset events sent for unknown or expired cursors
	// Position is the hub's position as a cursor: the generated id of the
	// last event it dispatched (before the first, the store's head when it
	// started following), never a publisher's custom id. A stream opened
	// now without Last-Event-ID is primed with it. Behind the store's head
	// while the hub catches up with a shared log. (With a store that does
	// not implement store.Positioner: the id of the last event dispatched
	// that was neither private nor on a private channel.)
	Position string
	// LastPublishError is the error of the last failed store append
	// (Publish and the hub's own appends) when no append succeeded since,
	// and LastPublishErrorAt when it failed (by Config.Clock); both are
	// zero otherwise. Events the hub or the store refuse as invalid and
	// appends whose context ended do not count: they say nothing of the
	// store's health.
	LastPublishError   string
	LastPublishErrorAt time.Time
}

type hubCounters struct {
	subscribers atomic.Int64
	queued      atomic.Int64
	published   atomic.Uint64
	delivered   atomic.Uint64
	replayed    atomic.Uint64
	dropped     atomic.Uint64
	slow        atomic.Uint64
	resets      atomic.Uint64
}

// Stats returns a snapshot of the hub's counters.
func (h *Hub) Stats() Stats {
	c := &h.stats
	st := Stats{
		Subscribers: c.subscribers.Load(),
		Queued:      c.queued.Load(),
		Published:   c.published.Load(),
		Delivered:   c.delivered.Load(),
		Replayed:    c.replayed.Load(),
		Dropped:     c.dropped.Load(),
		Slow:        c.slow.Load(),
		Resets:      c.resets.Load(),
		Position:    h.position(),
	}
	if f := h.lastAppendErr.Load(); f != nil {
		st.LastPublishError, st.LastPublishErrorAt = f.err, f.at
	}
	return st
}

func (h *Hub) position() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cursorLocked()
}
