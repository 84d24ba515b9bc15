package hub

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/sluicehq/sluice/store"
)

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
	// Clock drives heartbeats and lifetimes.
	// Default: the real clock. Tests inject a fake one.
	Clock Clock
	// Jitter returns a random duration in [0, max). It shortens each
	// connection's MaxLifetime by up to a tenth so that connections opened
	// together do not all rotate together. Default: math/rand/v2.
	Jitter func(max time.Duration) time.Duration

	// Heartbeat is the interval between comment lines sent to keep idle
	// connections alive through proxies; at each, a stream on a connection
	// taken over from net/http also gives back the stack a burst or a slow
	// client grew (it goes on on a fresh goroutine). Zero means DefaultHeartbeat
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
	defInt(&c.QueueEvents, DefaultQueueEvents)
	defInt(&c.QueueBytes, DefaultQueueBytes)
	defInt(&c.ReplayEvents, DefaultReplayEvents)
	defInt(&c.ReplayBytes, DefaultReplayBytes)
	defInt(&c.MaxTopics, DefaultMaxTopics)
	defInt(&c.MaxEventSize, DefaultMaxEventSize)
	defInt(&c.MaxLastEventIDLen, DefaultMaxLastEventIDLen)
	if c.ReplayEvents < c.QueueEvents {
		c.ReplayEvents = c.QueueEvents
	}
	if c.ReplayBytes < c.QueueBytes {
		c.ReplayBytes = c.QueueBytes
	}
	return nil
}
