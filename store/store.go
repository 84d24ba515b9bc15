// Package store defines the ordered event log that sluice is built on, and an
// in-memory implementation of it.
//
// Every published event is appended to a Store before anyone sees it. The
// store gives each event its position in one total order and an id made from
// that position. Replay (History), live fan-out (Follow) and, with a shared
// store, fan-out across several hub instances all read the same log, so they
// cannot disagree about order.
//
// Ids and cursors, as the stores of this module implement them: a generated
// id is "#" ([IDPrefix]), the log's [Epoch] and the position (for example
// "#k3j9x0a2-1z"), so it is a URI fragment, as the Mercure protocol requires
// of ids a hub generates, and an id of another log is [ErrUnknownID]. The
// same id without the "#" is the form earlier versions generated: it is
// still a cursor for the same position, so Last-Event-IDs that clients, and
// bolt files, hold from before an upgrade resume exactly as they did.
// [ValidateEvent] states which custom ids are accepted; a custom id in the
// form of the store's own generated ids, with or without the "#", is
// refused ([ErrInvalidEvent]), so an issued id always keeps its meaning; the
// id of the newest evicted event is still a valid cursor (nothing after it
// is missing), older ones are [ErrExpired]. Package store/storetest is the
// contract suite every store passes.
//
// A custom id is the publisher's, and may name an event not everyone may
// see (a private one): the stores of this module implement [Positioner],
// so that a caller (the hub) hands out only generated ids as cursors and can
// tell which event a custom id names before it answers a client that
// resumes from one.
package store

import (
	"context"
	"errors"
	"iter"
	"strings"
	"time"
)

// Errors a caller must tell apart.
var (
	// ErrUnknownID reports a cursor the store has never issued or indexed:
	// a malformed id, an id from another store, or a custom id never seen.
	ErrUnknownID = errors.New("store: unknown event id")
	// ErrExpired reports a cursor the store did issue but whose position is
	// older than what retention keeps: history after it is incomplete.
	ErrExpired = errors.New("store: event id expired from history")
	// ErrClosed reports use of a closed store.
	ErrClosed = errors.New("store: closed")
	// ErrInvalidEvent reports an event the store refuses to append (an
	// invalid custom id, for example).
	ErrInvalidEvent = errors.New("store: invalid event")
)

// Event is one entry of the log.
type Event struct {
	// ID is the event's id on the wire and as a cursor. On Append it is
	// either empty (the store generates one from the position) or a
	// publisher-supplied custom id, which must be a valid SSE id (no CR, LF
	// or NUL) and may repeat: as a cursor, the first occurrence still
	// retained wins.
	ID string
	// Pos is the event's position in the log, set by Append: it strictly
	// increases in log order within one store, so a caller can tell which of
	// two events came first and skip what it has already seen. Positions are
	// not cursors: pass IDs (or Head) to History and Follow.
	Pos uint64
	// Topics the event was published to. An event may have several.
	Topics []string
	// Type is the SSE event type (empty for "message").
	Type string
	// Data is the payload.
	Data string
	// Retry is an optional reconnection time to send with the event.
	Retry time.Duration
	// Private marks an event only authorized subscribers may receive.
	Private bool
	// Time is when the store appended the event; set by Append.
	Time time.Time
}

// Filter selects events during replay. A nil Filter selects every event.
type Filter func(*Event) bool

// Store is an ordered, append-only log of events with bounded retention.
// Implementations must be safe for concurrent use.
type Store interface {
	// Append adds e at the end of the log and returns it as stored, with its
	// ID (generated unless e.ID was set) and Time. When Append returns nil
	// the event is in the log (durably so for durable stores) and will be
	// seen by every History and Follow that reaches its position.
	Append(ctx context.Context, e Event) (Event, error)

	// History yields, in log order, the retained events strictly after the
	// cursor that match filter, then stops: it never waits for new events.
	// An empty cursor means the start of the retained history. A cursor the
	// store does not know yields ErrUnknownID and one older than retention
	// yields ErrExpired, as the first and only element, so a caller never
	// mistakes a partial history for a complete one. The events are read
	// lazily: a caller that stops early stops the reading.
	History(ctx context.Context, cursor string, filter Filter) iter.Seq2[Event, error]

	// Follow yields, in log order and with no gap or duplicate, every event
	// strictly after the cursor (empty: the start of retained history),
	// first those already in the log and then new ones as they are
	// appended. It runs until ctx is done (it then stops without an
	// error), the caller stops iterating, the store is closed (ErrClosed) or
	// the cursor cannot be served (ErrUnknownID, ErrExpired: the last element
	// yielded). A store that loses its connection (Redis, NATS) retries with
	// backoff inside Follow and resumes after the last event it yielded, so
	// transient outages never end a Follow and never skip or repeat events.
	Follow(ctx context.Context, cursor string) iter.Seq2[Event, error]

	// Head returns a cursor for the end of the log: the generated id of the
	// last event (never a custom id, which may repeat), or "" when the log is
	// empty. History and Follow from Head yield only events appended after
	// the call. Head also serves as a readiness probe: it fails while the
	// store cannot be reached.
	Head(ctx context.Context) (string, error)

	// Close releases the store. Follow iterators in progress end with
	// ErrClosed; later calls fail with ErrClosed.
	Close() error
}

// Resolver is implemented by stores that can tell the position a cursor
// stands for. It is optional: a hub uses it, when the store has it, so that
// a client resuming with a cursor ahead of the hub's own follower (a cursor
// read from another hub on a shared store, or the id returned by an
// Append) does not receive the events up to that cursor again from the
// live stream.
type Resolver interface {
	// Resolve returns the position of the event the cursor names: History
	// and Follow from the cursor yield exactly the retained events with a
	// greater Pos. A repeated custom id resolves to its first occurrence
	// still retained; an empty cursor to a position below every retained
	// event. A cursor that History would refuse is refused with the same
	// error (ErrUnknownID, ErrExpired), and a closed store with ErrClosed.
	// Resolve reads the store itself, never a cache that may lag behind
	// it.
	Resolve(ctx context.Context, cursor string) (pos uint64, err error)
}

// Positioner is implemented by stores whose generated ids are made from the
// position alone (the log's [Epoch] and Pos, plus what else of the event the
// store needs, such as Redis's entry time), so that a caller can name any
// event's position without its custom id, and can find the event a custom
// id names. It is optional. A hub uses it, when the store has it, so that
// the cursors it hands out (the priming event, the head of a reset event,
// Stats) are never a publisher's custom id, which may name an event the
// subscriber may not see, and so that a client resuming from a custom id
// learns nothing about an event it may not see: such a cursor gets the
// reset an unknown id gets.
type Positioner interface {
	// PositionID returns the generated id of e's position, for e as
	// Append, History or Follow returned it: a cursor equivalent to e.ID
	// (History and Follow from it yield exactly the events after e) that is
	// never a custom id; for an event without a custom id it is e.ID. It
	// reads only e.Pos and e.Time (a caller may pass an Event with only
	// those set) and does no I/O.
	PositionID(e *Event) string

	// Lookup returns the event a custom id names, as History yields it: its
	// first occurrence still retained, after which History and Follow from
	// id start. For "" and for an id in the form of the store's own
	// generated ids it returns ok false and a nil error, without I/O (even
	// with ctx done): those name positions, which carry no publisher's
	// name. A custom id no retained event has is ErrUnknownID, never
	// ErrExpired, even where History reports it expired: a caller must be
	// able to answer an id that named an event once exactly like one never
	// seen. A closed store is ErrClosed.
	Lookup(ctx context.Context, id string) (e Event, ok bool, err error)
}

// ChannelPrefix starts the topics that are channels: the private channels
// of a hub (hub.ReservedTopicPrefix is this string), on which a session,
// a stream or a relay sends what only its own subscribers receive. A
// [Keeper] keeps the newest events of each channel apart from the log's
// retention.
const ChannelPrefix = "sluice:"

// SignalPrefix starts the channels that carry signals between the
// instances sharing a log (a relay's lease renewals and cancel requests).
// They are private as every topic under [ChannelPrefix] is, but they are
// read from the log as they come, never resumed after a drop: a [Keeper]
// does not keep them, so that a signal costs what an event on a public
// topic does and takes no room from the kept backlogs of sessions and
// streams.
const SignalPrefix = ChannelPrefix + "signal:"

// IsChannel reports whether topic is a channel a [Keeper] keeps: it starts
// with [ChannelPrefix] and not with [SignalPrefix].
func IsChannel(topic string) bool {
	return strings.HasPrefix(topic, ChannelPrefix) && !strings.HasPrefix(topic, SignalPrefix)
}

// Defaults of the keeping of channels ([Keeper]) by the stores of this
// module; each store's config names the same three limits.
const (
	// DefaultKeepPerChannel is how many of the newest events of each
	// channel a store keeps.
	DefaultKeepPerChannel = 4096
	// DefaultKeepFor is how long a store keeps an event of a channel,
	// measured from its Time.
	DefaultKeepFor = time.Hour
)

// Keeper is implemented by stores that keep the newest events of every
// channel (a topic that [IsChannel]) apart from the log's own retention,
// so that the rest of the traffic cannot evict them: a session away for
// an hour while the log turned over many times still finds the events
// sent to it, and the answer of a stream can be read again from its start.
// Each event appended with a channel among its topics is kept under each
// of its channels, with the same ID, Pos, Time and content, until one of
// the store's keeping limits drops it: the newest KeepPerChannel events of
// the channel are kept, each for KeepFor after its Time, and the store
// bounds what it keeps in total (see its config).
//
// A keeper never lets a caller mistake an incomplete channel for a
// complete one: when an event of the channel after the cursor was dropped,
// or when the store keeps nothing of the channel (it was never written, or
// everything in it was dropped, and the store cannot tell what was there),
// Kept yields [ErrExpired].
type Keeper interface {
	// Kept yields, in log order, the kept events of channel with a
	// position after the cursor's, then stops: it never waits for new
	// events. The cursor is a generated id of this log (one Append, Head or
	// PositionID returned, in either form), including the id of an event
	// the log's retention evicted — the case Kept is for — or "", which
	// means every event kept, whatever was dropped before them. A custom
	// id, an id of another log or anything else is [ErrUnknownID]. When an
	// event of the channel after the cursor's position is no longer kept,
	// or nothing of the channel is kept (and the cursor is not ""), the
	// first and only element is [ErrExpired]; a store that reads a long
	// channel in pages may find a page trimmed by concurrent appends and
	// end with ErrExpired after some events, which the caller must then
	// discard as it would discard a History ended by an error. A closed
	// store yields [ErrClosed].
	Kept(ctx context.Context, channel, cursor string) iter.Seq2[Event, error]
}
