// Package relay makes an upstream SSE response resumable: typically an LLM
// answer, a POST to an OpenAI-compatible API that streams tokens for a
// minute. A Relayer consumes the upstream on its own goroutine, whatever
// becomes of the client that asked for it, and appends every upstream
// event to a completable stream (package stream) in the hub's log; the
// client reads that stream (Relayer.Serve) and, when its connection drops,
// resumes it with its Last-Event-ID, on this instance or any other sharing
// the log, without the upstream being called (and paid for) again.
//
// # Ends
//
// A relay ends when the upstream response ends: the stream is finished and
// readers' responses end after the last event (a later read gets 204 No
// Content). Any other end appends one last event, of a type of its own,
// before the finish, so that a client can tell a complete answer from a
// cut one:
//
//   - EventError ("relay-error"): the upstream failed (a non-2xx status, a
//     response that is not text/event-stream, a request or read error, no
//     event for Options.ReadTimeout) or a limit was reached
//     (Options.MaxDuration, MaxEvents, MaxBytes), or the instance shut down
//     (Relayer.Close). Its data is the JSON ErrorData.
//   - EventCancelled ("relay-cancelled"): Relay.Cancel, or the context
//     given to Start ended (the user pressed "stop"), or Relayer.Cancel
//     on any instance sharing the log (within a LeaseInterval when
//     another instance relays it). Data {"reason":"cancelled"}.
//   - EventLost ("relay-lost"): the instance consuming the upstream died
//     mid-way (see "Lease" below). Data {"reason":"lost"}.
//
// All three are terminal: the response ends right after (a reader may, in
// a rare race between instances, see relay-lost twice). An upstream event
// whose type starts with "relay-" or "sluice-" ends the relay with a
// relay-error (reason "reserved-type"), so that the upstream cannot pass
// for the relay. Upstream events keep their type and data; their ids and
// retry fields are dropped (the log gives every event its id).
//
// # Lease
//
// The upstream is consumed once, by the instance that started the relay.
// While it runs, that instance appends a renewal to a signal channel of
// the relay every Options.LeaseInterval (5 s), and a release at the end.
// Every instance serving a reader of the relay (Relayer.Serve) watches for
// them: it reads the log's new events once every Options.LeaseInterval,
// with one store.Store.History per instance for all the relays it watches,
// and only while it watches one. When it has seen no renewal of a relay for
// Options.LeaseTTL (15 s) while a reader waits, it appends relay-lost and
// finishes the stream. So a reader waiting on a relay whose instance died
// gets relay-lost at most LeaseTTL + LeaseInterval (20 s by default) after
// the later of the last renewal and the moment it started waiting on its
// instance, plus one store round trip. A relay is never declared lost while
// its instance renews on time, as long as LeaseTTL exceeds two
// LeaseIntervals (one for the renewal, one for the reading) plus the
// store's latency; New refuses less than two. The renewals are signals
// (store.SignalPrefix): private, but not kept apart from the log, so the
// log must hold one LeaseInterval of traffic. Where it turns over faster,
// an instance cannot read them, counts every relay alive (a dead one goes
// undetected meanwhile), and logs a warning.
//
// # Security
//
// A relay stream's id is its read capability (see stream.Stream.ID): wrap
// Serve in the application's authorization where that matters. Serve
// ids that Start returned: an instance watches the lease of any id it
// serves, and declares lost a relay that stopped renewing, but only one
// whose first renewal it finds in the log (one lookup of its custom id;
// without a store.Positioner, among the maxLeaseScan events after the
// stream's start): a made-up id costs one lookup once its lease would
// have lapsed, and never an append.
package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/hub"
	"github.com/sluicehq/sluice/sse"
	"github.com/sluicehq/sluice/stream"
)

// The types of the events a relay appends itself. See the package doc.
const (
	// EventError ends a relay that failed; its data is ErrorData in JSON.
	EventError = "relay-error"
	// EventCancelled ends a cancelled relay.
	EventCancelled = "relay-cancelled"
	// EventLost ends a relay whose instance died.
	EventLost = "relay-lost"
)

// Reasons of an EventError (ErrorData.Reason).
const (
	ReasonUpstreamStatus      = "upstream-status"       // a non-2xx response; Status is set
	ReasonUpstreamContentType = "upstream-content-type" // a response that is not text/event-stream
	ReasonUpstreamRequest     = "upstream-request"      // the request failed (connection, TLS, ...)
	ReasonUpstreamRead        = "upstream-read"         // reading the response failed
	ReasonReadTimeout         = "read-timeout"          // no event for Options.ReadTimeout
	ReasonMaxDuration         = "max-duration"          // Options.MaxDuration reached
	ReasonMaxEvents           = "max-events"            // Options.MaxEvents reached
	ReasonMaxBytes            = "max-bytes"             // Options.MaxBytes reached
	ReasonReservedType        = "reserved-type"         // the upstream sent a relay-… or sluice-… type
	ReasonStore               = "store"                 // the hub refused an event (too large, ...)
	ReasonShutdown            = "shutdown"              // Relayer.Close
)

// ErrorData is the data of an EventError, in JSON.
type ErrorData struct {
	// Reason is one of the Reason constants.
	Reason string `json:"reason"`
	// Status is the upstream's HTTP status, for ReasonUpstreamStatus.
	Status int `json:"status,omitempty"`
	// Message says more, for people. It never contains the upstream's
	// URL, headers or body.
	Message string `json:"message,omitempty"`
}

// Errors a caller must tell apart.
var (
	// ErrTooManyRelays is Start's refusal when Options.MaxInFlight relays
	// are in flight.
	ErrTooManyRelays = errors.New("relay: too many relays in flight")
	// ErrCancelled is the end of a cancelled relay (Relay.Err).
	ErrCancelled = errors.New("relay: cancelled")
	// ErrClosed is Start's refusal after Relayer.Close, and the end of the
	// relays Close ended.
	ErrClosed = errors.New("relay: relayer closed")
)

// Error is how a relay ended with an EventError (Relay.Err).
type Error struct {
	ErrorData
	Err error // the cause, when there is one
}

func (e *Error) Error() string {
	s := "relay: " + e.Reason
	if e.Status != 0 {
		s += fmt.Sprintf(" (%d)", e.Status)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Defaults of Options, used where a field is zero.
const (
	DefaultMaxEvents     = 100_000
	DefaultMaxBytes      = 16 << 20
	DefaultMaxDuration   = 15 * time.Minute
	DefaultReadTimeout   = 60 * time.Second
	DefaultMaxInFlight   = 1000
	DefaultLeaseInterval = 5 * time.Second
	DefaultLeaseTTL      = 15 * time.Second
)

// Options configures a Relayer. A nil *Options, and every zero field, take
// the defaults.
type Options struct {
	// MaxEvents and MaxBytes bound one relay's stream: its events, and
	// their types and data together. Defaults 100,000 events and 16 MiB.
	// The event over the limit is not appended: the relay ends with a
	// relay-error (ReasonMaxEvents, ReasonMaxBytes).
	MaxEvents int
	MaxBytes  int64
	// MaxDuration bounds a relay from its start. Default 15 minutes.
	MaxDuration time.Duration
	// ReadTimeout bounds the wait for the upstream's response and then for
	// each of its events. Default 60 s.
	ReadTimeout time.Duration
	// MaxInFlight bounds the relays in flight on this Relayer: Start
	// refuses more with ErrTooManyRelays. Default 1000.
	MaxInFlight int
	// LeaseInterval is how often a relay renews its lease, and how often an
	// instance with readers waiting reads the log for renewals. Default 5 s.
	LeaseInterval time.Duration
	// LeaseTTL is how long without a renewal makes a relay lost. Default
	// 15 s; at least two LeaseIntervals.
	LeaseTTL time.Duration
	// Client sends the upstream requests. Default: a client without a
	// timeout (ReadTimeout and MaxDuration bound a relay).
	Client *http.Client
	// Clock times the limits and the lease. Default: the hub's clock.
	Clock hub.Clock
	// Logger receives the relays' logs. Default: the hub's logger.
	Logger *slog.Logger
}

// Relayer starts relays on a hub and serves their streams. It is safe for
// concurrent use.
type Relayer struct {
	h      *hub.Hub
	opts   Options
	ctx    context.Context // ends with Close
	cancel context.CancelCauseFunc
	mon    monitor
	reg    registry

	inFlight atomic.Int64
	wg       sync.WaitGroup
}

// New returns a Relayer on h.
func New(h *hub.Hub, opts *Options) (*Relayer, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	cfg := h.Config()
	defInt := func(n *int, v int) {
		if *n <= 0 {
			*n = v
		}
	}
	defDur := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	defInt(&o.MaxEvents, DefaultMaxEvents)
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	defDur(&o.MaxDuration, DefaultMaxDuration)
	defDur(&o.ReadTimeout, DefaultReadTimeout)
	defInt(&o.MaxInFlight, DefaultMaxInFlight)
	defDur(&o.LeaseInterval, DefaultLeaseInterval)
	defDur(&o.LeaseTTL, DefaultLeaseTTL)
	if o.LeaseTTL < 2*o.LeaseInterval {
		return nil, fmt.Errorf("relay: LeaseTTL %v is less than two LeaseIntervals (%v): live relays would be declared lost", o.LeaseTTL, o.LeaseInterval)
	}
	if o.Client == nil {
		o.Client = &http.Client{}
	}
	if o.Clock == nil {
		o.Clock = cfg.Clock
	}
	if o.Logger == nil {
		o.Logger = cfg.Logger
	}
	rl := &Relayer{h: h, opts: o}
	rl.ctx, rl.cancel = context.WithCancelCause(context.Background())
	rl.mon.rl = rl
	return rl, nil
}

// Close ends the relays in flight with a relay-error (ReasonShutdown) and
// the finish, so that their readers do not wait for the lease to lapse,
// and waits for them, or for ctx. Start refuses new relays afterwards.
// Call it before shutting the hub down.
func (rl *Relayer) Close(ctx context.Context) error {
	rl.cancel(ErrClosed)
	done := make(chan struct{})
	go func() {
		rl.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("relay: close: %w", ctx.Err())
	}
}

// Relay is one relay in flight.
type Relay struct {
	rl     *Relayer
	s      *stream.Stream
	req    *http.Request
	ctx    context.Context
	cancel context.CancelCauseFunc
	done   chan struct{}
	err    error // set before done is closed

	renewals atomic.Int64 // for tests
}

// errKilled ends a relay without its end, as the death of its instance
// would (tests).
var errKilled = errors.New("relay: killed")

// Start starts relaying the response to req, and returns once the stream
// is open, before the upstream answers: the stream's id (Relay.ID) is at
// once what the client reads with Serve. The relay goes on, on its own
// goroutine, after the handler that called Start returns, until the
// upstream response ends or the relay does (see the package doc). req is
// sent with the Relayer's client, with its method, headers and body; its
// context is replaced. The body is read on the relay's goroutine, after
// the handler may have returned: do not pass a handler's r.Body (read it
// first, with a bound).
//
// Cancelling ctx cancels the relay (EventCancelled), as Relay.Cancel does:
// from a handler, pass context.WithoutCancel(r.Context()), or the relay
// would end when its client drops. ctx also bounds the opening of the
// stream. Start refuses with ErrTooManyRelays when Options.MaxInFlight
// relays are in flight, and with ErrClosed after Close.
func (rl *Relayer) Start(ctx context.Context, req *http.Request) (*Relay, error) {
	if rl.ctx.Err() != nil {
		return nil, ErrClosed
	}
	if n := rl.inFlight.Add(1); n > int64(rl.opts.MaxInFlight) {
		rl.inFlight.Add(-1)
		return nil, fmt.Errorf("%w (%d)", ErrTooManyRelays, rl.opts.MaxInFlight)
	}
	s, err := stream.Open(ctx, rl.h)
	if err == nil {
		// The first renewal, right after the stream's start and kept on
		// a channel of its own, is how an instance tells a relay that
		// died from an id never started.
		_, err = rl.h.Publish(ctx, hub.Message{Topics: []string{leaseTopic(s.ID()), startTopic(s.ID())}, Event: sse.Event{ID: startID(s.ID()), Type: leaseRenew}})
	}
	if err != nil {
		rl.inFlight.Add(-1)
		return nil, fmt.Errorf("relay: start: %w", err)
	}
	r := &Relay{rl: rl, s: s, done: make(chan struct{})}
	r.ctx, r.cancel = context.WithCancelCause(context.WithoutCancel(ctx))
	r.req = req.Clone(r.ctx)
	stop := context.AfterFunc(ctx, func() { r.cancel(ErrCancelled) })
	stopClose := context.AfterFunc(rl.ctx, func() { r.cancel(ErrClosed) })
	rl.track(r, s.Start())
	rl.wg.Add(1)
	go func() {
		defer rl.wg.Done()
		defer rl.inFlight.Add(-1)
		defer stop()
		defer stopClose()
		defer rl.untrack(r)
		r.err = r.run()
		close(r.done)
	}()
	return r, nil
}

// ID returns the id of the relay's stream: what Serve takes.
func (r *Relay) ID() string { return r.s.ID() }

// Cancel ends the relay with EventCancelled (the user pressed "stop"):
// the upstream request is cancelled. Cancelling an ended relay does
// nothing.
func (r *Relay) Cancel() { r.cancel(ErrCancelled) }

// Done is closed when the relay has ended and its stream is finished.
func (r *Relay) Done() <-chan struct{} { return r.done }

// Err returns why the relay ended, once Done is closed: nil when the
// upstream response ended, ErrCancelled, ErrClosed, or an *Error.
func (r *Relay) Err() error {
	select {
	case <-r.done:
		return r.err
	default:
		return nil
	}
}

// upstreamItem is what the reading goroutine hands the relay: an event,
// or the end of the upstream (err, io.EOF for a clean end).
type upstreamItem struct {
	ev  sse.Event
	err *Error
}

// run relays until the end and returns why it ended.
func (r *Relay) run() error {
	o := &r.rl.opts
	log := o.Logger.With("relay", r.ID())
	ctx := context.WithoutCancel(r.ctx) // the relay's own appends outlive its cancellation
	items := make(chan upstreamItem)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		r.read(items)
	}()
	defer func() {
		r.cancel(nil) // stops the reading goroutine
		<-readDone
	}()

	clock := o.Clock
	idle := clock.NewTimer(o.ReadTimeout)
	defer idle.Stop()
	maxDur := clock.NewTimer(o.MaxDuration)
	defer maxDur.Stop()
	renew := clock.NewTimer(o.LeaseInterval)
	defer renew.Stop()
	lease := leaseTopic(r.ID())

	var events int
	var bytes int64
	for {
		var end *Error
		select {
		case it := <-items:
			if it.err != nil {
				end = it.err
				break
			}
			if events+1 > o.MaxEvents {
				end = &Error{ErrorData: ErrorData{Reason: ReasonMaxEvents, Message: fmt.Sprintf("more than %d events", o.MaxEvents)}}
				break
			}
			n := int64(len(it.ev.Type) + len(it.ev.Data))
			if bytes+n > o.MaxBytes {
				end = &Error{ErrorData: ErrorData{Reason: ReasonMaxBytes, Message: fmt.Sprintf("more than %d bytes", o.MaxBytes)}}
				break
			}
			if _, err := r.s.Send(ctx, sse.Event{Type: it.ev.Type, Data: it.ev.Data}); err != nil {
				if errors.Is(err, hub.ErrHubClosed) {
					log.Warn("relay: the hub is closed; the relay ends without its end, readers get relay-lost", "err", err)
					return err
				}
				end = &Error{ErrorData: ErrorData{Reason: ReasonStore, Message: "the hub refused an upstream event"}, Err: err}
				break
			}
			events++
			bytes += n
			idle.Stop()
			idle.Reset(o.ReadTimeout)
			continue
		case <-idle.C():
			end = &Error{ErrorData: ErrorData{Reason: ReasonReadTimeout, Message: fmt.Sprintf("no upstream event for %v", o.ReadTimeout)}}
		case <-maxDur.C():
			end = &Error{ErrorData: ErrorData{Reason: ReasonMaxDuration, Message: fmt.Sprintf("the relay lasted %v", o.MaxDuration)}}
		case <-renew.C():
			if _, err := r.rl.h.Publish(ctx, hub.Message{Topics: []string{lease}, Event: sse.Event{Type: leaseRenew}}); err != nil {
				log.Warn("relay: lease renewal failed", "err", err)
			}
			r.renewals.Add(1)
			renew.Reset(o.LeaseInterval)
			r.rl.checkCancels(ctx)
			continue
		case <-r.ctx.Done():
		}
		return r.end(ctx, end, log)
	}
}

// end appends the relay's end (nil: the upstream ended), finishes the
// stream and releases the lease. A relay cancelled because its instance
// died appends nothing.
func (r *Relay) end(ctx context.Context, end *Error, log *slog.Logger) error {
	var ev sse.Event
	var result error
	cause := context.Cause(r.ctx)
	switch {
	case end != nil && end.Reason == "": // the upstream ended
	case end != nil:
		data, _ := json.Marshal(end.ErrorData)
		ev, result = sse.Event{Type: EventError, Data: string(data)}, end
	case errors.Is(cause, errKilled):
		return cause
	case errors.Is(cause, ErrClosed):
		data, _ := json.Marshal(ErrorData{Reason: ReasonShutdown, Message: "the instance relaying the answer shut down"})
		ev, result = sse.Event{Type: EventError, Data: string(data)}, ErrClosed
	default:
		ev, result = sse.Event{Type: EventCancelled, Data: `{"reason":"cancelled"}`}, ErrCancelled
	}
	if ev.Type != "" {
		if _, err := r.s.Send(ctx, ev); err != nil {
			log.Warn("relay: appending the end failed", "err", err)
		}
	}
	if err := r.s.Finish(ctx); err != nil {
		log.Warn("relay: finishing the stream failed; readers get relay-lost", "err", err)
		return errors.Join(result, err)
	}
	if _, err := r.rl.h.Publish(ctx, hub.Message{Topics: []string{leaseTopic(r.ID())}, Event: sse.Event{Type: leaseRelease}}); err != nil {
		log.Debug("relay: lease release failed", "err", err)
	}
	if result != nil {
		log.Info("relay: ended", "end", result)
	}
	return result
}

// read sends the upstream request and hands its events, then its end, to
// items, until r.ctx ends.
func (r *Relay) read(items chan<- upstreamItem) {
	send := func(it upstreamItem) bool {
		select {
		case items <- it:
			return true
		case <-r.ctx.Done():
			return false
		}
	}
	fail := func(reason string, status int, msg string, err error) {
		send(upstreamItem{err: &Error{ErrorData: ErrorData{Reason: reason, Status: status, Message: msg}, Err: err}})
	}
	resp, err := r.rl.opts.Client.Do(r.req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which may carry a key
		}
		fail(ReasonUpstreamRequest, 0, "the upstream request failed", err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		fail(ReasonUpstreamStatus, resp.StatusCode, "the upstream answered "+resp.Status, nil)
		return
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		fail(ReasonUpstreamContentType, 0, fmt.Sprintf("the upstream answered %q, not text/event-stream", clip(resp.Header.Get("Content-Type"))), nil)
		return
	}
	rd := sse.NewReader(resp.Body)
	for {
		ev, err := rd.Next()
		if err != nil {
			if r.ctx.Err() != nil {
				return
			}
			if errors.Is(err, io.EOF) {
				send(upstreamItem{err: &Error{}}) // the clean end
				return
			}
			fail(ReasonUpstreamRead, 0, "reading the upstream response failed", err)
			return
		}
		if ev.Type == "message" {
			ev.Type = "" // the default: not stored, not sent
		}
		if isReservedType(ev.Type) {
			fail(ReasonReservedType, 0, fmt.Sprintf("the upstream sent an event of type %q", clip(ev.Type)), nil)
			return
		}
		if !send(upstreamItem{ev: ev}) {
			return
		}
	}
}

func isReservedType(t string) bool {
	return strings.HasPrefix(t, "relay-") || strings.HasPrefix(t, hub.ReservedTypePrefix)
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
