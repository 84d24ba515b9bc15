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
// handler returns (its grown stack goes with it). The dispatcher does not
// wake these goroutines itself: one waker goroutine per hub wakes those with
// something queued, a few dozen at a time, and lets the network poller run
// in between, so that events published during a fan-out join the writes of
// the streams not yet written: a loaded hub writes several events per
// write by itself, an idle one each event at once (waker.go). A full queue
// is handled by the subscription's [Policy]. Exact topics are matched by
// the dispatcher through a map; pattern subscriptions (Subscription.Match)
// by groups of their own, off the dispatch loop, so that what one
// connection asks for does not delay the others (patterns.go).
// [Hub.Notify] delivers a notice in order with the log's events without
// writing it to the log.
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
// Subscription.Priming chooses instead the id with empty data of MCP
// SEP-1699, or no cursor (a ":" comment opens the stream).
//
// The cursors the hub hands out (the priming event, a reset event's head,
// Stats.Position) reveal nothing a subscriber may not see: with a
// [store.Positioner] (every store of this module) they are the store's
// generated id of the hub's position, never a publisher's custom id, which
// may name a private event. A custom id as Last-Event-ID is looked up first
// (store.Positioner.Lookup: free for generated ids, a read of the store for
// custom ones, two round trips on Redis): if it names no retained event, or
// one the subscription may not see (Authorize, or without it a private
// event; an event on a private channel it does not name), the subscriber gets exactly the
// reset an id never issued gets, so it cannot probe which custom ids exist.
// With a store without store.Positioner the hub cannot do either: it hands
// out the id of the last event that is neither private nor on a private
// channel (a cursor before its position, so a stream resumed from it may
// replay the events between that it may see), and custom ids can be
// probed.
//
// A store that implements [store.Resolver] also tells the hub the position
// of the cursor, so that a client resuming with a cursor ahead of this
// hub's follower (read from another hub on a shared store, or returned by
// Publish) does not get the events up to it a second time from the live
// queue. Without it, such a client may receive events it already had.
//
// # Private channels
//
// Topics in the reserved namespace ("sluice:…", ReservedTopicPrefix) are
// the application's private channels: one session's, one stream's, one
// connection's. Their events are log events like any other, so they are
// kept while a client is away and replayed when it comes back, on any hub
// sharing the log; but only a subscription naming the channel exactly
// receives them. Hub.Complete ends a channel: its readers' responses end,
// and later ones get 204 No Content. Packages session and stream build
// sessions with targeted sends and completable request-scoped streams on
// them; the engine knows neither.
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
	// ErrReservedTopic reports an empty topic, a private channel (prefix
	// "sluice:") where a client named it (ServeHTTP's query), or Complete
	// of a topic that is not a private channel.
	ErrReservedTopic = errors.New("hub: reserved or empty topic")
	// ErrReservedType reports an event type in the namespace the hub
	// reserves for its own signals (prefix "sluice-").
	ErrReservedType = errors.New("hub: reserved event type")
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
	bg     sync.WaitGroup // the follower, the waker and the pattern groups' goroutines
	// spawnMu orders adding to bg (spawn) with Shutdown's wait for it.
	spawnMu sync.Mutex
	stopped bool
	conns   sync.WaitGroup // requests being served

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

	// completed remembers the channels the follower saw completed.
	completed completions

	waker waker // wakes the streams with something queued (waker.go)

	stats hubCounters
	// lastAppendErr is the store's last Append failure, nil once an
	// append succeeded since (Stats.LastPublishError).
	lastAppendErr atomic.Pointer[appendFailure]
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
	h.bg.Add(1)
	go h.follow()
	return h, nil
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
	h.spawnMu.Lock()
	h.stopped = true // no goroutine is added to h.bg from now on
	h.spawnMu.Unlock()
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
