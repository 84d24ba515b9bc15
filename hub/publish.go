package hub

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sluicehq/sluice/sse"
	"github.com/sluicehq/sluice/store"
)

// Message is what Publish appends to the log (and Notify delivers): an
// event, the topics it is published to, and whether it is private.
type Message struct {
	// Topics are the message's topics: at least one, none empty, at
	// most Config.MaxTopics. Those in the reserved namespace
	// (ReservedTopicPrefix) are private channels.
	Topics []string
	// Event is what subscribers receive. A non-empty ID is a publisher's
	// custom id, which the store indexes as a cursor (Notify takes none);
	// Type must not be in the reserved namespace (ReservedTypePrefix).
	Event sse.Event
	// Private restricts the message to subscribers whose
	// Subscription.Authorize accepts it (a subscription without Authorize
	// never receives private messages).
	Private bool
}

// Publish appends m to the store and returns the event's id. It returns
// once the store has the event; subscribers get it from the follower,
// never from Publish, so Publish never blocks on a subscriber.
func (h *Hub) Publish(ctx context.Context, m Message) (string, error) {
	if err := checkTopics(m.Topics, &m.Event); err != nil {
		return "", fmt.Errorf("hub: publish: %w", err)
	}
	return h.append(ctx, store.Event{ID: m.Event.ID, Topics: m.Topics, Type: m.Event.Type, Data: m.Event.Data,
		Retry: m.Event.Retry, Private: m.Private})
}

// append validates and appends an event built by the hub or a caller.
func (h *Hub) append(ctx context.Context, se store.Event) (string, error) {
	if err := h.check(&se); err != nil {
		return "", fmt.Errorf("hub: publish: %w", err)
	}
	stored, err := h.store.Append(ctx, se)
	if err != nil {
		h.appendFailed(ctx, err)
		return "", fmt.Errorf("hub: publish to %v: %w", se.Topics, err)
	}
	if h.lastAppendErr.Load() != nil {
		h.lastAppendErr.Store(nil)
	}
	h.stats.published.Add(1)
	h.metrics.Published(1)
	return stored.ID, nil
}

// check applies the limits every event of the hub passes.
func (h *Hub) check(se *store.Event) error {
	if h.closing.Load() {
		return ErrHubClosed
	}
	if len(se.Topics) > h.cfg.MaxTopics {
		return fmt.Errorf("%w: %d > %d", ErrTooManyTopics, len(se.Topics), h.cfg.MaxTopics)
	}
	if n := len(se.ID) + len(se.Type) + len(se.Data); n > h.cfg.MaxEventSize {
		return fmt.Errorf("%w: %d bytes > %d", ErrEventTooLarge, n, h.cfg.MaxEventSize)
	}
	return (sse.Event{ID: se.ID, Type: se.Type, Retry: se.Retry}).Validate()
}

// checkTopics refuses an event without topics or with an empty one, and a
// reserved event type.
func checkTopics(topics []string, e *sse.Event) error {
	if len(topics) == 0 {
		return ErrNoTopics
	}
	for _, t := range topics {
		if t == "" {
			return fmt.Errorf("%w: %q", ErrReservedTopic, t)
		}
	}
	if isReservedType(e.Type) {
		return fmt.Errorf("%w: %q", ErrReservedType, e.Type)
	}
	return nil
}

// Complete ends the private channel topic (ReservedTopicPrefix): it
// appends the channel's completion to the log. A response that reaches it,
// live or in its replay, ends there, after the events before it
// (ReasonCompleted); one whose replay has nothing before it answers 204 No
// Content, which tells an EventSource to stop reconnecting; and so does a
// later subscription to the channel while the hub remembers the
// completion (the last 16,384 completions it saw, on any hub sharing the
// log). A subscription that names several topics ends with any channel it
// names. The completion is in the log: a reader on another hub sharing it
// ends there too.
func (h *Hub) Complete(ctx context.Context, topic string) error {
	if !isReserved(topic) {
		return fmt.Errorf("hub: complete %q: %w: only a private channel (%s…) is completed", topic, ErrReservedTopic, ReservedTopicPrefix)
	}
	_, err := h.append(ctx, store.Event{Topics: []string{topic}, Type: typeEnd})
	return err
}

// Completed reports whether this hub has seen the completion (Complete)
// of the private channel topic, made on it or on any hub sharing the log
// since it started, among the last 16,384 completions it saw. It reads
// no store: a completion older than that is found only by reading the
// channel (its replay ends there).
func (h *Hub) Completed(topic string) bool {
	return h.completed.any([]string{topic})
}

// Notify delivers m now to this hub's subscribers whose subscription
// matches its topics (and whose authorization allows it, when private), in
// order with the log's events, without appending it to the log: it takes
// no room from the history and costs the store nothing, but it is never
// replayed, a subscriber connected to another hub on a shared log does not
// get it, and a subscriber away when it is sent misses it. It is meant for
// signals whose value is now, such as presence (Mercure's subscription
// events are notices). It has no id: m.Event.ID must be empty, and a
// client's cursor stays on the last event of the log it received. Topics
// and type follow Publish's rules.
func (h *Hub) Notify(ctx context.Context, m Message) error {
	if err := checkTopics(m.Topics, &m.Event); err != nil {
		return fmt.Errorf("hub: notify: %w", err)
	}
	if m.Event.ID != "" {
		return fmt.Errorf("hub: notify: %w: a notice has no id", sse.ErrInvalidID)
	}
	se := store.Event{Topics: m.Topics, Type: m.Event.Type, Data: m.Event.Data, Retry: m.Event.Retry, Private: m.Private}
	if err := h.check(&se); err != nil {
		return fmt.Errorf("hub: notify: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("hub: notify: %w", err)
	}
	h.dispatchMu.Lock()
	defer h.dispatchMu.Unlock()
	h.fanOut(&se, false, false, true)
	return nil
}

// appendFailure is a failed store append: its error and when it happened.
type appendFailure struct {
	err string
	at  time.Time
}

// appendFailed records a store append failure for Stats, unless it is the
// caller's doing: an event the store refuses as invalid, or a context
// that ended.
func (h *Hub) appendFailed(ctx context.Context, err error) {
	if errors.Is(err, store.ErrInvalidEvent) || ctx.Err() != nil {
		return
	}
	h.lastAppendErr.Store(&appendFailure{err: err.Error(), at: h.clock.Now()})
}
