package hub

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/sluicehq/sluice/sse"
	"github.com/sluicehq/sluice/store"
)

// DisconnectReason says why a subscriber's response ended.
type DisconnectReason string

// Why a response ends.
const (
	// ReasonClient: the client went away, or a write failed or timed out.
	ReasonClient DisconnectReason = "client"
	// ReasonSlow: the subscriber's queue overflowed under PolicyDisconnect
	ReasonSlow DisconnectReason = "slow"
	// ReasonReplayOverflow: live events overflowed the replay allowance
	// while history was being replayed.
	ReasonReplayOverflow DisconnectReason = "replay-overflow"
	// ReasonLifetime: Config.MaxLifetime was reached.
	ReasonLifetime DisconnectReason = "lifetime"
	// ReasonClosed: Subscriber.Close or Hub.Disconnect.
	ReasonClosed DisconnectReason = "closed"
	// ReasonShutdown: Hub.Shutdown.
	ReasonShutdown DisconnectReason = "shutdown"
	// ReasonPoll: a polling response ended after what was available.
	ReasonPoll DisconnectReason = "poll"
	// ReasonCompleted: the response reached the completion of a private
	// channel it names (Hub.Complete).
	ReasonCompleted DisconnectReason = "completed"
	// ReasonStoreError: the store failed (replay or follow); the client
	// resumes from its Last-Event-ID.
	ReasonStoreError DisconnectReason = "store-error"
)

// retries reports whether the hub sends "retry:" before ending a response
// for this reason: only when the hub itself chose to end a healthy stream.
func (r DisconnectReason) retries() bool {
	switch r {
	case ReasonLifetime, ReasonClosed, ReasonShutdown, ReasonPoll:
		return true
	}
	return false
}

// item is one entry of a subscriber's queue: a formatted event and its log
// position, or the completion of a channel (Hub.Complete).
type item struct {
	ev     *sse.PreparedEvent
	pos    uint64
	end    bool
	notice bool // from Notify or Subscriber.Notify: no id, not in the log, at the position of the event before it
}

func (it item) size() int {
	if it.ev == nil {
		return 0
	}
	return it.ev.Len()
}

// Subscriber is one connected SSE response. The hub passes it to the
// OnConnect and OnDisconnect hooks; its methods are safe for concurrent use.
type Subscriber struct {
	hub       *Hub
	id        uint64
	idStr     string
	subject   string
	topics    []string // the subscription's exact topics, channels too
	index     []string // topics indexed for dispatch: topics
	slots     []int    // position in index[i]'s list of hub.exact or of group.index
	match     func(topics []string) bool
	matchKey  string
	authorize func(e *store.Event) bool
	policy    Policy
	onSlow    func(*Subscriber) Policy // Subscription.OnSlow, until called
	topicSet  map[string]struct{}      // for replay filtering of many topics
	mark      uint64                   // the goroutine filling the queue only: dedup per event
	// group is the pattern group of a subscription with a Match, which
	// fills its queue instead of the dispatcher (patterns.go); memberSlot
	// its position in group.members.
	group      *patGroup
	memberSlot int
	// Set by register: live events start after the event start names
	// (the hub's position then, "" before any event), the cursor a stream
	// opened without Last-Event-ID is given; startSeq is the hub's
	// dispatch sequence number then (Hub.seq).
	start      string
	startSeq   uint64
	registered bool

	wake chan struct{} // cap 1: something to write, or closed

	mu        sync.Mutex
	q         []item
	qBytes    int
	gap       uint64
	buffering bool
	closed    bool
	reason    DisconnectReason
	lastID    string // the client's cursor once the response ended
	// pending: something was queued since the stream last took the
	// queue, and the waker has it or has woken it (waker.go).
	pending bool

	delivered atomic.Uint64
	dropped   atomic.Uint64
}

func newSubscriber(h *Hub, sub Subscription) *Subscriber {
	id := h.nextID.Add(1)
	s := &Subscriber{
		hub:       h,
		id:        id,
		idStr:     strconv.FormatUint(id, 10),
		subject:   sub.Subject,
		topics:    sub.Topics,
		match:     sub.Match,
		matchKey:  sub.MatchKey,
		authorize: sub.Authorize,
		policy:    sub.Policy,
		onSlow:    sub.OnSlow,
		wake:      make(chan struct{}, 1),
	}
	s.index = sub.Topics
	if len(s.index) > 8 {
		s.topicSet = make(map[string]struct{}, len(s.index))
		for _, t := range s.index {
			s.topicSet[t] = struct{}{}
		}
	}
	return s
}

// ID returns the subscriber's id, unique within the hub (see
// Hub.Disconnect).
func (s *Subscriber) ID() string { return s.idStr }

// Subject returns the authenticated subject of the subscription.
func (s *Subscriber) Subject() string { return s.subject }

// Topics returns a copy of the subscription's exact topics, private
// channels included.
func (s *Subscriber) Topics() []string { return append([]string(nil), s.topics...) }

// LastEventID returns the id of the last event written to the response:
// the cursor the client resumes from. It is final once the response has
// ended (Subscription.OnDisconnect), "" before then.
func (s *Subscriber) LastEventID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastID
}

// Notify queues e for this subscriber only, as Hub.Notify does for all:
// it is written in order with the events queued before it, has no id (the
// client's cursor stays), and is never in the log, so it is not replayed.
// The queue's limits and the subscription's Policy apply to it. e.ID must
// be empty and e.Type outside the reserved namespace. A notice for a
// subscriber whose response ended is dropped without error.
func (s *Subscriber) Notify(e sse.Event) error {
	if e.ID != "" {
		return fmt.Errorf("hub: notify subscriber: %w: a notice has no id", sse.ErrInvalidID)
	}
	if isReservedType(e.Type) {
		return fmt.Errorf("hub: notify subscriber: %w: %q", ErrReservedType, e.Type)
	}
	pe, err := sse.Prepare(e)
	if err != nil {
		return fmt.Errorf("hub: notify subscriber: %w", err)
	}
	s.enqueue(item{ev: pe, notice: true})
	return nil
}

// Comment queues a comment line for this subscriber only (text with line
// breaks becomes several), in order with its events, as Notify does. A
// client sees no event for it; it keeps an idle connection alive through
// proxies, or annotates the stream.
func (s *Subscriber) Comment(text string) {
	s.enqueue(item{ev: sse.PrepareComment(text), notice: true})
}

// Close ends the subscriber's response with a "retry:" (Config.Retry), as
// for a server-initiated close under MCP SEP-1699: what is already queued
// is written first.
func (s *Subscriber) Close() { s.close(ReasonClosed) }

// SubscriberStats is a snapshot of one subscriber's counters.
type SubscriberStats struct {
	Queued      int    // events waiting in the queue
	QueuedBytes int    // their size on the wire
	Delivered   uint64 // events written to the response
	Dropped     uint64 // events dropped under PolicyDrop
}

// Stats returns a snapshot of the subscriber's counters.
func (s *Subscriber) Stats() SubscriberStats {
	s.mu.Lock()
	n, b := len(s.q), s.qBytes
	s.mu.Unlock()
	return SubscriberStats{Queued: n, QueuedBytes: b, Delivered: s.delivered.Load(), Dropped: s.dropped.Load()}
}

// close marks the subscriber closed and wakes its handler. The first
// reason wins.
func (s *Subscriber) close(reason DisconnectReason) {
	s.mu.Lock()
	s.closeLocked(reason)
	s.mu.Unlock()
}

func (s *Subscriber) closeLocked(reason DisconnectReason) {
	if s.closed {
		return
	}
	s.closed = true
	s.reason = reason
	if reason == ReasonSlow || reason == ReasonReplayOverflow {
		s.hub.stats.slow.Add(1)
	}
	s.signal()
}

// closeReason returns why the hub closed the subscriber, or "".
func (s *Subscriber) closeReason() DisconnectReason {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reason
}

func (s *Subscriber) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// enqueue adds it to the queue, applying the limits and the policy. Log
// events come, in log order, from the dispatcher only, or for a pattern
// subscriber from its group's goroutine only; a notice of
// Subscriber.Notify or Comment from anywhere. The stream is woken by the
// hub's waker (waker.go), not here.
func (s *Subscriber) enqueue(it item) {
	h := s.hub
	n := it.size()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	maxN, maxB := h.cfg.QueueEvents, h.cfg.QueueBytes
	if s.buffering {
		maxN, maxB = h.cfg.ReplayEvents, h.cfg.ReplayBytes
	}
	full := len(s.q) > 0 && (len(s.q) >= maxN || s.qBytes+n > maxB)
	if full && !s.buffering && s.onSlow != nil {
		onSlow := s.onSlow
		s.onSlow = nil
		s.mu.Unlock()
		p := onSlow(s)
		s.mu.Lock()
		s.policy = p
		s.mu.Unlock()
		s.enqueue(it) // the stream may have taken the queue meanwhile
		return
	}
	switch {
	case !full:
		s.q = append(s.q, it)
		s.qBytes += n
		if !s.pending {
			s.pending = true
			h.pend(s)
		}
		s.mu.Unlock()
		h.stats.queued.Add(1)
	case s.buffering:
		s.closeLocked(ReasonReplayOverflow)
		s.mu.Unlock()
		h.log.Warn("hub: live events overflowed a subscriber's replay allowance; disconnecting it, it resumes from its Last-Event-ID",
			"subscriber", s.idStr, "queued", maxN, "bytes", maxB)
	case s.policy == PolicyDrop:
		s.gap++
		s.mu.Unlock()
		s.dropped.Add(1)
		h.stats.dropped.Add(1)
		h.metrics.Dropped(1)
	default: // PolicyDisconnect
		s.closeLocked(ReasonSlow)
		s.mu.Unlock()
		h.log.Info("hub: slow subscriber disconnected; it resumes from its Last-Event-ID",
			"subscriber", s.idStr, "queued", len(s.q))
	}
}

// take hands the queued items to the handler, giving the queue the spare
// slice to fill next, and ends the buffering phase: the next enqueue
// hands the subscriber to the waker again. It returns the items,
// the number of events dropped since the last take, and the close reason
// ("" while open).
func (s *Subscriber) take(spare []item) ([]item, uint64, DisconnectReason) {
	s.mu.Lock()
	items := s.q
	s.q = spare[:0]
	s.qBytes = 0
	gap := s.gap
	s.gap = 0
	s.buffering = false
	s.pending = false
	var reason DisconnectReason
	if s.closed {
		reason = s.reason
	}
	s.mu.Unlock()
	if len(items) > 0 {
		s.hub.stats.queued.Add(-int64(len(items)))
	}
	return items, gap, reason
}

// visible reports whether the subscription may see ev. Events on private
// channels reach only the subscriptions naming them, and are always
// visible to them.
func (s *Subscriber) visible(ev *store.Event) bool {
	if s.authorize != nil {
		return s.authorize(ev)
	}
	return !ev.Private
}

// mayKnow reports whether the subscriber may learn that ev exists, as it
// does by resuming from its custom id: ev is visible to it (were it
// subscribed to ev's topics), or, on private channels, it names one.
func (s *Subscriber) mayKnow(ev *store.Event) bool {
	if !hasReserved(ev.Topics) {
		return s.visible(ev)
	}
	for _, t := range ev.Topics {
		if isReserved(t) && s.hasTopic(t) {
			return true
		}
	}
	return false
}

// wants is the replay filter: the same decision the dispatcher makes for a
// live event.
func (s *Subscriber) wants(ev *store.Event) bool {
	reserved := hasReserved(ev.Topics)
	matched := false
	for _, t := range ev.Topics {
		if s.hasTopic(t) {
			matched = true
			break
		}
	}
	if reserved {
		return matched
	}
	if !matched && s.match != nil {
		matched = s.match(ev.Topics)
	}
	return matched && s.visible(ev)
}

func (s *Subscriber) hasTopic(t string) bool {
	if s.topicSet != nil {
		_, ok := s.topicSet[t]
		return ok
	}
	for _, x := range s.index {
		if x == t {
			return true
		}
	}
	return false
}
