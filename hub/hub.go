// Package hub is sluice's server engine: it fans events out from an ordered
// log (a [store.Store]) to Server-Sent Events subscribers over net/http, and
// resumes every subscriber exactly where it left off.
//
// # Embedding
//
//	h, err := hub.New(hub.Config{Store: st})
//	...
//	mux.Handle("GET /events", h) // ?topic=a&topic=b
//	id, err := h.Publish(ctx, hub.Message{Topics: []string{"a"}, Event: sse.Event{Data: "hello"}})
//	...
//	h.Shutdown(ctx) // before http.Server.Shutdown
//
// # The log is the bus
//
// [Hub.Publish] appends to the store and returns; it never touches a
// subscriber. One follower goroutine per hub follows the store and
// dispatches every event, in log order, to the subscribers whose
// subscription matches: each event is formatted once and a pointer to it is
// put in each subscriber's bounded queue. Each connection is served by one
// goroutine, which writes everything queued in one write and one flush
// under a write deadline: the handler's, or on HTTP/1.1, once the stream is
// live, a fresh one of the hub's that takes the connection over while the
// handler returns (its grown stack goes with it). A full queue is handled
// by the subscription's [Policy]. Exact topics are matched by the dispatcher
// through a map; pattern subscriptions (Subscription.Match) by groups of
// their own, off the dispatch loop, so that what one connection asks for
// does not delay the others (patterns.go). [Hub.Notify] delivers a notice
// in order with the log's events without writing it to the log.
//
// # Resuming
//
// A subscriber is registered with the dispatcher before its response
// headers are sent, so an event published after the client sees the stream
// open is never missed. With a Last-Event-ID the handler then replays the
// store's history after that id while live events queue up, and switches to
// live events skipping those already replayed (store positions are
// comparable, so the handoff has no gap and no duplicate). A cursor the
// store cannot serve gets an explicit reset event ([ResetEventType]) and a
// Sluice-Reset response header, never silent loss. Every stream opens with
// its cursor as a lone id field, so a client that received nothing still
// has a cursor to resume from; EventSource fires no event for it.
// Subscription.Priming chooses the id with empty data of MCP SEP-1699
// instead, or
// no cursor.
//
// The cursors the hub hands out (the priming event, a reset event's head,
// Stats.Position) reveal nothing a subscriber may not see: with a
// [store.Positioner] (every store of this module) they are the store's
// generated id of the hub's position, never a publisher's custom id, which
// may name a private event. A custom id as Last-Event-ID is looked up first
// (store.Positioner.Lookup: free for generated ids, a read of the store for
// custom ones, two round trips on Redis): if it names no retained event, or
// one the subscription may not see (Authorize, or without it a private
// event; an event sent to another session), the subscriber gets exactly the
// reset an id never issued gets, so it cannot probe which custom ids exist.
// With a store without store.Positioner the hub cannot do either: it hands
// out the id of the last event that is neither private nor on a reserved
// topic (a cursor before its position, so a stream resumed from it may
// replay the events between that it may see), and custom ids can be
// probed.
//
// A store that implements [store.Resolver] also tells the hub the position
// of the cursor, so that a client resuming with a cursor ahead of this
// hub's follower (read from another hub on a shared store, or returned by
// Publish) does not get the events up to it a second time from the live
// queue. Without it, such a client may receive events it already had.
//
// # Sessions and completable streams
//
// Targeted sends ([Hub.SendToSessions]) and completable streams
// ([Hub.OpenStream]) are log events on reserved topics ("sluice:…") that
// only their owner matches, so they are buffered by the log while a client
// is away and replayed like everything else. The session and stream
// registries are in memory: they are per hub instance.
//
// The package imports only the standard library and sluice's sse and store
// packages.
package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/sse"
	"github.com/sluicehq/sluice/store"
)

// Errors a caller must tell apart. They are returned wrapped with context:
// test them with errors.Is.
var (
	// ErrHubClosed reports use of a hub after Shutdown.
	ErrHubClosed = errors.New("hub: closed")
	// ErrEventTooLarge reports an event larger than Config.MaxEventSize.
	ErrEventTooLarge = errors.New("hub: event too large")
	// ErrTooManyTopics reports a publish or subscription with more than
	// Config.MaxTopics topics.
	ErrTooManyTopics = errors.New("hub: too many topics")
	// ErrNoTopics reports a publish or subscription without any topic.
	ErrNoTopics = errors.New("hub: no topics")
	// ErrReservedTopic reports a topic in the namespace the hub reserves for
	// sessions and streams (prefix "sluice:"), or an empty topic.
	ErrReservedTopic = errors.New("hub: reserved or empty topic")
	// ErrReservedType reports an event type in the namespace the hub
	// reserves for its own signals (prefix "sluice-").
	ErrReservedType = errors.New("hub: reserved event type")
	// ErrUnknownSession reports a send to a session the hub does not know
	// (never issued, or expired).
	ErrUnknownSession = errors.New("hub: unknown session")
	// ErrStreamFinished reports a send to a completable stream that was
	// already finished.
	ErrStreamFinished = errors.New("hub: stream finished")
	// ErrUnknownStream reports a completable stream the hub does not know.
	ErrUnknownStream = errors.New("hub: unknown stream")
	// ErrInvalidLastEventID reports a cursor (Last-Event-ID) that no hub
	// could have issued: too long, or containing CR, LF or NUL. The handler
	// answers it with 400 Bad Request.
	ErrInvalidLastEventID = errors.New("hub: invalid Last-Event-ID")
)

// ValidateLastEventID checks a cursor a subscriber sent as the hub's
// handler does (Config.MaxLastEventIDLen is max): at most max bytes and no
// CR, LF or NUL. Its error wraps ErrInvalidLastEventID. Protocols on the
// hub that read the cursor themselves (HEAD answers, say) use it to refuse
// exactly what the handler refuses.
func ValidateLastEventID(id string, max int) error {
	if len(id) > max {
		return fmt.Errorf("%w: longer than %d bytes", ErrInvalidLastEventID, max)
	}
	if !sse.ValidID(id) {
		return fmt.Errorf("%w: contains CR, LF or NUL", ErrInvalidLastEventID)
	}
	return nil
}

// Policy decides what happens when a subscriber's queue is full.
type Policy int

const (
	// PolicyDisconnect (the default) ends the slow subscriber's response.
	// Nothing is lost: the client resumes from the store with its
	// Last-Event-ID.
	PolicyDisconnect Policy = iota
	// PolicyDrop drops the events that do not fit and sends a gap marker
	// (an event of type [GapEventType]) before the next event delivered,
	// so the client knows it missed some.
	PolicyDrop
)

// String returns the policy's name.
func (p Policy) String() string {
	switch p {
	case PolicyDisconnect:
		return "disconnect"
	case PolicyDrop:
		return "drop"
	}
	return fmt.Sprintf("Policy(%d)", int(p))
}

// Priming is what a stream opens with, so that a client that receives no
// event still has a cursor to resume from: the hub's position when the
// stream opened, or the cursor it resumes from.
type Priming int

const (
	// PrimingID (the default) sends the cursor as a lone id field, "id:
	// <cursor>" and a blank line. An EventSource (and sluice's client)
	// sets its last event id from it and fires no event: the priming is
	// invisible to the application.
	PrimingID Priming = iota
	// PrimingEmptyData sends the cursor as an event with an id and an
	// empty data line, the priming event MCP SEP-1699 asks for. Every
	// EventSource delivers it as an empty "message" event, and sluice's
	// client yields it.
	PrimingEmptyData
	// PrimingNone sends no cursor: the stream opens with an empty comment
	// line (":"), so the response still starts at once and EventSource
	// fires "open", but a client that receives no event has no cursor.
	PrimingNone
)

// String returns the priming's name.
func (p Priming) String() string {
	switch p {
	case PrimingID:
		return "id"
	case PrimingEmptyData:
		return "empty-data"
	case PrimingNone:
		return "none"
	}
	return fmt.Sprintf("Priming(%d)", int(p))
}

// Default limits, used where a Config field is zero.
const (
	DefaultHeartbeat         = 15 * time.Second
	DefaultWriteTimeout      = 10 * time.Second
	DefaultQueueEvents       = 1024
	DefaultQueueBytes        = 4 << 20
	DefaultReplayEvents      = 64 << 10
	DefaultReplayBytes       = 64 << 20
	DefaultMaxTopics         = 64
	DefaultMaxEventSize      = 1 << 20
	DefaultMaxLastEventIDLen = 1024
	DefaultRetry             = time.Second
	DefaultStreamTTL         = time.Hour
	DefaultSessionHeader     = "Sluice-Session"
	DefaultSessionCookie     = "sluice_session"
)

// Config configures a Hub. Only Store is required; every zero field takes
// the documented default.
type Config struct {
	// Store is the log the hub publishes to and follows. Required. The hub
	// does not close it.
	Store store.Store

	// Logger receives the hub's logs. Default slog.Default().
	Logger *slog.Logger
	// Metrics receives counters. Default: none.
	Metrics Metrics
	// Clock drives heartbeats, lifetimes, the block policy and TTLs.
	// Default: the real clock. Tests inject a fake one.
	Clock Clock
	// Jitter returns a random duration in [0, max). It shortens each
	// connection's MaxLifetime by up to a tenth so that connections opened
	// together do not all rotate together. Default: math/rand/v2.
	Jitter func(max time.Duration) time.Duration

	// Heartbeat is the interval between comment lines sent to keep idle
	// connections alive through proxies. Zero means DefaultHeartbeat
	// (15 s); a negative value turns heartbeats off. (The zero value cannot
	// mean both "default" and "off"; like every other field here, zero is
	// the default.)
	Heartbeat time.Duration
	// WriteTimeout bounds each write to a subscriber. Default 10 s.
	WriteTimeout time.Duration
	// Retry is the reconnection time sent in a "retry:" field before the
	// hub closes a stream itself (lifetime, Disconnect, Shutdown).
	// Default 1 s.
	Retry time.Duration
	// MaxLifetime, when positive, ends every connection after this long
	// (minus up to a tenth of jitter) with a "retry:", so connections
	// rotate across instances behind a load balancer. Default: no limit.
	MaxLifetime time.Duration

	// QueueEvents and QueueBytes bound each subscriber's queue of live
	// events. Defaults 1024 events and 4 MiB. An event larger than
	// QueueBytes is still queued when the queue is empty.
	QueueEvents int
	QueueBytes  int
	// ReplayEvents and ReplayBytes bound the live events a subscriber may
	// buffer while its history is being replayed (the handler is busy
	// replaying, so the usual queue limits do not apply then). A
	// subscriber that goes over is disconnected, whatever the Policy, and
	// resumes from its Last-Event-ID. Defaults 65536 events and 64 MiB.
	ReplayEvents int
	ReplayBytes  int

	// MaxTopics bounds the topics of one publish or subscription.
	// Default 64. More is refused with ErrTooManyTopics (400 for a
	// subscriber).
	MaxTopics int
	// MaxEventSize bounds an event's id, type and data together on
	// Publish. Default 1 MiB. Larger events are refused with
	// ErrEventTooLarge.
	MaxEventSize int
	// MaxLastEventIDLen bounds the Last-Event-ID a subscriber may send.
	// Default 1024 bytes. A longer one, or one containing CR, LF or NUL, is
	// refused with 400 Bad Request: no id this hub issued looks like that.
	// A well-formed id the store does not know gets a reset event instead.
	MaxLastEventIDLen int
	// Session enables sessions when Session.TTL is positive.
	Session SessionConfig
	// StreamTTL is how long the hub remembers a completable stream after
	// its last send or its finish. Default 1 h.
	StreamTTL time.Duration

	swept chan struct{} // tests: signalled after each janitor sweep
}

func (c *Config) setDefaults() error {
	if c.Store == nil {
		return errors.New("hub: Config.Store is required")
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Metrics == nil {
		c.Metrics = NopMetrics{}
	}
	if c.Clock == nil {
		c.Clock = realClock{}
	}
	if c.Jitter == nil {
		c.Jitter = defaultJitter
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	defInt := func(n *int, v int) {
		if *n <= 0 {
			*n = v
		}
	}
	def(&c.Heartbeat, DefaultHeartbeat)
	def(&c.WriteTimeout, DefaultWriteTimeout)
	def(&c.Retry, DefaultRetry)
	def(&c.StreamTTL, DefaultStreamTTL)
	defInt(&c.QueueEvents, DefaultQueueEvents)
	defInt(&c.QueueBytes, DefaultQueueBytes)
	defInt(&c.ReplayEvents, DefaultReplayEvents)
	defInt(&c.ReplayBytes, DefaultReplayBytes)
	defInt(&c.MaxTopics, DefaultMaxTopics)
	defInt(&c.MaxEventSize, DefaultMaxEventSize)
	defInt(&c.MaxLastEventIDLen, DefaultMaxLastEventIDLen)
	if c.Session.Header == "" {
		c.Session.Header = DefaultSessionHeader
	}
	if c.Session.Cookie == "" {
		c.Session.Cookie = DefaultSessionCookie
	}
	if c.ReplayEvents < c.QueueEvents {
		c.ReplayEvents = c.QueueEvents
	}
	if c.ReplayBytes < c.QueueBytes {
		c.ReplayBytes = c.QueueBytes
	}
	return nil
}

// Hub fans events out from a store to SSE subscribers. It is an
// http.Handler for subscribers; create it with New. A Hub is safe for
// concurrent use.
type Hub struct {
	cfg     Config
	store   store.Store
	log     *slog.Logger
	metrics Metrics
	clock   Clock

	ctx    context.Context // ends when the hub is shut down
	cancel context.CancelFunc
	bg     sync.WaitGroup // the follower and the janitor
	conns  sync.WaitGroup // requests being served

	closing atomic.Bool
	nextID  atomic.Uint64

	// positioner is the store's store.Positioner, or nil.
	positioner store.Positioner

	// mu guards the dispatcher's view of subscribers (the topic index),
	// its position and its readiness.
	mu        sync.Mutex
	closed    bool
	ready     chan struct{} // closed while the follower is following
	isReady   bool
	lastPos   uint64                   // Pos of the last event dispatched
	lastTime  time.Time                // its Time
	safeID    string                   // without positioner: the id of the last event anyone may see (see cursorLocked)
	cursor    string                   // the hub's position as a cursor, when cursorOK
	cursorOK  bool                     // cursor is up to date: computed on demand, not per event
	posEv     store.Event              // scratch for positioner.PositionID
	exact     map[string][]*Subscriber // subscribers without a Match
	groups    map[string]*patGroup     // pattern groups by key (patterns.go)
	groupList []*patGroup
	subs      map[uint64]*Subscriber

	// dispatchMu serializes dispatch and Notify, which share the scratch
	// space below; seq numbers what they hand out (under mu too, for
	// register).
	dispatchMu   sync.Mutex
	targets      []*Subscriber
	groupScratch []*patGroup
	seq          uint64

	sessions sessionRegistry
	streams  streamRegistry

	stats hubCounters
	// lastAppendErr is the store's last Append failure, nil once an
	// append succeeded since (Stats.LastPublishError).
	lastAppendErr atomic.Pointer[appendFailure]
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

// New returns a hub following cfg.Store from its current head. It starts
// the follower goroutine; stop it with Shutdown.
func New(cfg Config) (*Hub, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &Hub{
		cfg:      cfg,
		store:    cfg.Store,
		log:      cfg.Logger,
		metrics:  cfg.Metrics,
		clock:    cfg.Clock,
		ctx:      ctx,
		cancel:   cancel,
		ready:    make(chan struct{}),
		cursorOK: true, // "" until the follower starts
		exact:    make(map[string][]*Subscriber),
		groups:   make(map[string]*patGroup),
		subs:     make(map[uint64]*Subscriber),
	}
	h.positioner, _ = cfg.Store.(store.Positioner)
	h.sessions.init()
	h.streams.init()
	h.bg.Add(2)
	go h.follow()
	go h.janitor()
	return h, nil
}

// Message is what Publish appends to the log (and Notify delivers): an
// event, the topics it is published to, and whether it is private.
type Message struct {
	// Topics are the message's topics: at least one, none empty or in
	// the reserved namespace (ReservedTopicPrefix), at most
	// Config.MaxTopics.
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

// checkTopics refuses an event without topics or on a reserved one, and a
// reserved event type.
func checkTopics(topics []string, e *sse.Event) error {
	if len(topics) == 0 {
		return ErrNoTopics
	}
	for _, t := range topics {
		if t == "" || isReserved(t) {
			return fmt.Errorf("%w: %q", ErrReservedTopic, t)
		}
	}
	if isReservedType(e.Type) {
		return fmt.Errorf("%w: %q", ErrReservedType, e.Type)
	}
	return nil
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

// Shutdown stops the hub gracefully: new subscribers are refused with 503,
// Publish fails with ErrHubClosed, and every connected subscriber gets what
// is already queued for it, a "retry:" asking it to come back after
// Config.Retry, and the end of its response. Shutdown waits for the
// responses to end, or for ctx, and stops the follower. It does not close
// the store. Call it before http.Server.Shutdown.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.closing.Store(true)
	h.mu.Lock()
	h.closed = true
	for _, s := range h.subs {
		s.close(ReasonShutdown)
	}
	h.mu.Unlock()

	done := make(chan struct{})
	go func() { h.conns.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("hub: shutdown: %w", ctx.Err())
	}
	h.cancel()
	h.bg.Wait()
	return err
}

// Config returns the hub's configuration, with every default filled in:
// what a protocol layer on the hub checks its own limits against.
func (h *Hub) Config() Config { return h.cfg }

// Subscribers returns the number of connected subscribers.
func (h *Hub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// Disconnect ends the response of the subscriber with the given id (see
// Subscriber.ID) with a "retry:", as Subscriber.Close does. It reports
// whether the subscriber was connected.
func (h *Hub) Disconnect(id string) bool {
	n, err := strconv.ParseUint(id, 10, 64)
	if err != nil {
		return false
	}
	h.mu.Lock()
	s := h.subs[n]
	h.mu.Unlock()
	if s == nil {
		return false
	}
	s.close(ReasonClosed)
	return true
}

func isReserved(topic string) bool { return strings.HasPrefix(topic, ReservedTopicPrefix) }

func isReservedType(typ string) bool { return strings.HasPrefix(typ, ReservedTypePrefix) }

func hasReserved(topics []string) bool {
	for _, t := range topics {
		if isReserved(t) {
			return true
		}
	}
	return false
}
