package sse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of a Stream.
const (
	// DefaultRetry is the reconnection time before a server sets one with a
	// retry field, as in browsers.
	DefaultRetry = 3 * time.Second
	// DefaultMaxDelay caps the backoff between failed attempts.
	DefaultMaxDelay = 30 * time.Second
)

// minBackoffStep is the unit the backoff grows from when the reconnection
// time is shorter, so that a server asking for "retry: 0" that keeps failing
// is not hammered in a tight loop.
const minBackoffStep = 100 * time.Millisecond

// ConnectFunc opens a fresh event stream. Stream calls it for the first
// connection and for every reconnection, with the last event id in effect
// ("" for none: then no Last-Event-ID must be sent). ctx is cancelled when
// the connection is dropped (by the stream's context, Restart or the read
// timeout), so a ConnectFunc may bind the stream to it as an HTTP request
// does; Stream closes the returned body when it is done with it.
//
// An error is retried unless it is marked with Permanent, which ends the
// Stream with that error, or matches ErrDone, which ends it cleanly. A
// *StatusError with a Retry-After header makes the next attempt wait that
// long.
type ConnectFunc func(ctx context.Context, lastEventID string) (io.ReadCloser, error)

// Errors of a Stream.
var (
	// ErrDone, returned (possibly wrapped) by a ConnectFunc, ends a Stream
	// cleanly: the iteration ends with no error and no reconnection. The
	// HTTP layer returns it for 204 No Content, the status with which a
	// server tells clients to stop reconnecting.
	ErrDone = errors.New("sse: the server ended the stream for good")
	// ErrReadTimeout reports a connection dropped because no bytes, not even
	// a comment, arrived for the read timeout. The stream reconnects.
	ErrReadTimeout = errors.New("sse: read timeout")
	// ErrRetryLimit ends a Stream whose attempts or outage went over the
	// limits set by WithMaxAttempts or WithMaxElapsed. The yielded error
	// wraps it and the last failure.
	ErrRetryLimit = errors.New("sse: reconnection limit reached")
	// ErrConnectionLost ends a Stream that does not reconnect (WithOneShot,
	// or a request other than GET with neither WithResume nor WithResend)
	// when its connection breaks before the server ended the stream: a read
	// error, the read timeout, or a Restart. The yielded error wraps it and
	// the cause. The events yielded before are all the stream delivered: an
	// LLM answer, say, was cut short.
	ErrConnectionLost = errors.New("sse: connection lost")
)

// errRestarted is the cause of a connection that Restart dropped.
var errRestarted = errors.New("sse: restarted")

// Permanent marks err as not worth retrying: a ConnectFunc that returns it
// ends the Stream, which yields err itself (without the mark). Permanent(nil)
// is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// RetryError describes a failed connection attempt or a lost connection that
// the Stream is about to retry. It is passed to the OnRetry hook and never
// yielded by the iterator.
type RetryError struct {
	// Err is the cause: a connect error, a read error, io.EOF when the
	// server ended the stream, ErrReadTimeout (wrapped), a retryable
	// *StatusError.
	Err error
	// Attempt numbers the attempt that follows, counted from the last
	// healthy connection (or the start): 1 after a healthy connection ends.
	Attempt int
	// Delay is the wait before that attempt.
	Delay time.Duration
}

func (e *RetryError) Error() string {
	return fmt.Sprintf("sse: reconnecting in %v (attempt %d): %v", e.Delay, e.Attempt, e.Err)
}

// Unwrap returns the cause.
func (e *RetryError) Unwrap() error { return e.Err }

// Clock is the time source of a Stream: the wait between attempts and the
// read timeout go through it, so tests can replace real time with a clock
// they advance themselves.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// After returns a channel that receives once d has elapsed.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Restarter lets any goroutine make a Stream drop its connection and
// reconnect at once with its last event id, resetting the backoff; a
// Restart during a wait ends the wait. A Stream that may not reconnect
// (WithOneShot, a request other than GET with neither WithResume nor
// WithResend) ends instead, with ErrConnectionLost. Pass it with
// WithRestarter, one Restarter per Stream. The zero value is ready to use;
// Restart never blocks, and restarts requested before the stream gets to
// them collapse into one.
type Restarter struct {
	once sync.Once
	ch   chan struct{}
}

// Restart asks the stream to reconnect now.
func (r *Restarter) Restart() {
	select {
	case r.c() <- struct{}{}:
	default:
	}
}

func (r *Restarter) c() chan struct{} {
	r.once.Do(func() { r.ch = make(chan struct{}, 1) })
	return r.ch
}

// Option configures a Stream (and Connect).
type Option func(*streamConfig)

type streamConfig struct {
	reconnect     reconnection
	oneShot       bool
	resend        bool
	resume        func(lastEventID string) (*http.Request, error)
	lastEventID   string
	retry         time.Duration
	maxDelay      time.Duration
	maxAttempts   int
	maxElapsed    time.Duration
	readTimeout   time.Duration
	types         []string
	maxEventSize  int
	dispatchAtEOF bool
	clock         Clock
	jitter        func(time.Duration) time.Duration
	restart       chan struct{}
	onComment     func(string)
	onRetry       func(*RetryError)
	onLastEventID func(string)
}

// WithOneShot makes one connection and never reconnects, whatever the
// request: the iteration ends when the server ends the stream (or answers
// 204), and with an error when the attempt fails (even with a status that
// is otherwise retried) or the connection breaks (ErrConnectionLost). It
// takes precedence over WithResume and WithResend.
func WithOneShot() Option {
	return func(c *streamConfig) { c.oneShot = true }
}

// WithResume makes Connect resume a stream with a different request: once
// the first request has opened a stream, every reconnection — after the
// connection broke, and after the server ended the stream, for protocols
// whose streams go on after that — sends the request resume returns for
// the last event id in effect (empty when none) instead of the first one.
// This is the resumption of the MCP streamable HTTP transport: the stream
// a POST opened is resumed with a GET carrying Last-Event-ID. A request
// other than GET that has no resume function (nor WithResend) is never
// sent twice.
//
// The resumed request is sent as the first one is: the same headers are
// added (Last-Event-ID with the last event id, unless the request sets
// one), the same status, Content-Type and 204 rules apply, its failures are
// retried with the same backoff and limits, and its context is replaced.
// resume is called for every attempt, on the goroutine ranging over the
// stream. An error it returns ends the iteration with that error; one
// matching ErrDone ends it cleanly (say, when lastEventID is empty and the
// protocol has nothing to resume from). The first request is not sent
// again when it fails before opening a stream, unless WithResend.
//
// WithResume is an option of Connect and Client.Connect: Stream ignores it.
func WithResume(resume func(lastEventID string) (*http.Request, error)) Option {
	return func(c *streamConfig) { c.resume = resume }
}

// WithResend makes Connect send the same request again on every
// reconnection, whatever its method, as a browser's EventSource and
// LaunchDarkly's clients do (a GET stream does it without this option):
// the body is sent again, so a server that acts on the request, such as an
// LLM API answering a prompt, acts (and bills) again. With WithResume too,
// the request is sent again only while no stream has opened. Stream, which
// always calls its ConnectFunc again, ignores it.
func WithResend() Option {
	return func(c *streamConfig) { c.resend = true }
}

// WithLastEventID sets the last event id of the first connection, so a
// process resumes where an earlier one stopped (see OnLastEventID).
func WithLastEventID(id string) Option {
	return func(c *streamConfig) { c.lastEventID = id }
}

// WithRetry sets the reconnection time in force until the server sends a
// retry field (default DefaultRetry). A negative d means zero.
func WithRetry(d time.Duration) Option {
	return func(c *streamConfig) { c.retry = max(d, 0) }
}

// WithMaxDelay caps the backoff after repeated failures (default
// DefaultMaxDelay). A server's retry longer than the cap is still honoured.
// It also sets how long a connection that delivers no event must stay open
// to count as healthy.
func WithMaxDelay(d time.Duration) Option {
	return func(c *streamConfig) {
		if d > 0 {
			c.maxDelay = d
		}
	}
}

// WithMaxAttempts ends the Stream with ErrRetryLimit when n attempts in a
// row have failed, n ≥ 1. An attempt fails when it opens no stream (a
// network error, a retryable status such as 429 with Retry-After) or when
// the connection it opened ends before it was healthy (see Stream). A
// healthy connection resets the count: the limit bounds each outage, never
// the reconnections of a stream that keeps working, which a GET stream
// makes after every clean end. So under WithMaxAttempts(1) the first
// attempt that fails ends the stream, while a GET stream whose connections
// each deliver events reconnects after every one of them; under
// WithMaxAttempts(3) at most 3 requests in a row fail. To connect once and
// never reconnect, use WithOneShot. n ≤ 0, the default, means no limit.
func WithMaxAttempts(n int) Option {
	return func(c *streamConfig) { c.maxAttempts = n }
}

// WithMaxElapsed ends the Stream with ErrRetryLimit rather than wait past d
// since the last healthy connection ended (or the start) without a new one.
// d ≤ 0, the default, means no limit.
func WithMaxElapsed(d time.Duration) Option {
	return func(c *streamConfig) { c.maxElapsed = d }
}

// WithReadTimeout drops and retries a connection on which no bytes (not
// even a heartbeat comment or part of a line) arrived for d, counted from
// the start of the attempt, so it also bounds the wait for the response.
// d ≤ 0, the default, means none.
func WithReadTimeout(d time.Duration) Option {
	return func(c *streamConfig) { c.readTimeout = d }
}

// WithTypes makes the Stream yield only events of the given types (an event
// with no event field has type "message"). The reset signal is yielded
// whatever the types; skipped events still advance the last event id.
func WithTypes(types ...string) Option {
	return func(c *streamConfig) { c.types = slices.Clone(types) }
}

// WithMaxEventSize sets the Reader's MaxEventSize. An event over it ends the
// Stream with ErrEventTooLarge: resuming would only meet it again.
func WithMaxEventSize(n int) Option {
	return func(c *streamConfig) { c.maxEventSize = n }
}

// WithDispatchAtEOF sets the Reader's DispatchAtEOF: a final event with no
// blank line after it is dispatched when the server ends the stream.
func WithDispatchAtEOF() Option {
	return func(c *streamConfig) { c.dispatchAtEOF = true }
}

// WithClock replaces real time, for the waits between attempts and the read
// timeout.
func WithClock(clock Clock) Option {
	return func(c *streamConfig) {
		if clock != nil {
			c.clock = clock
		}
	}
}

// WithJitter replaces the random source of the backoff: f must return a
// duration in [0, max]. The default is uniform.
func WithJitter(f func(max time.Duration) time.Duration) Option {
	return func(c *streamConfig) {
		if f != nil {
			c.jitter = f
		}
	}
}

// WithRestarter connects r to the Stream: r.Restart drops the connection and
// reconnects at once. A nil r is ignored.
func WithRestarter(r *Restarter) Option {
	return func(c *streamConfig) {
		if r != nil {
			c.restart = r.c()
		}
	}
}

// OnComment calls f with the text of every comment line (after the colon,
// one leading space stripped) as soon as it is read, on the goroutine
// ranging over the Stream.
func OnComment(f func(text string)) Option {
	return func(c *streamConfig) { c.onComment = f }
}

// OnRetry calls f before every wait and reconnection that the Stream makes
// on its own: after a failed attempt or a lost connection, including a
// clean end of stream and a read timeout. Restarts are not reported. This is
// the only place transient errors appear: the iterator yields none.
func OnRetry(f func(*RetryError)) Option {
	return func(c *streamConfig) { c.onRetry = f }
}

// OnLastEventID calls f whenever the last event id changes: after the event
// that changed it has been yielded and the loop body returned (so an
// application that persists the id and resumes from it with WithLastEventID
// gets every event at least once), or, for blocks with no data (a
// server's priming id) and for skipped events, as soon as the stream reads
// them. It is not called for the event the loop broke on.
func OnLastEventID(f func(id string)) Option {
	return func(c *streamConfig) { c.onLastEventID = f }
}

func newStreamConfig(opts []Option) streamConfig {
	c := streamConfig{
		retry:    DefaultRetry,
		maxDelay: DefaultMaxDelay,
		clock:    realClock{},
		jitter: func(max time.Duration) time.Duration {
			if max <= 0 {
				return 0
			}
			return rand.N(max + 1)
		},
	}
	for _, o := range opts {
		o(&c)
	}
	if c.oneShot {
		c.reconnect = reconnectNever
	}
	return c
}

// reconnection says when a Stream may connect again.
type reconnection int8

const (
	// reconnectAlways: after every end, drop and failure, as EventSource.
	reconnectAlways reconnection = iota
	// reconnectOpened: only once a connection has opened a stream (a
	// request that may not be resent, with WithResume).
	reconnectOpened
	// reconnectNever: WithOneShot, or a request that may not be resent and
	// has no WithResume.
	reconnectNever
)

// Stream returns an iterator over the events of a stream that reconnects
// like a browser's EventSource: it connects, yields the events it reads, and
// when the stream ends or breaks it waits the reconnection time and
// reconnects with the last event id in effect, so the server can resume
// after the last event received. An event that was only partly received
// when the connection broke is discarded, and so is a block with no data
// line (a lone id field updates the last event id and yields nothing), as
// in a browser. Stream calls connect for every attempt; WithOneShot makes
// it connect once. Connect applies the rules of HTTP methods on top: a
// request other than GET is not sent twice unless the caller says how.
//
// Waiting: the reconnection time r is the server's latest retry field, else
// WithRetry's, else DefaultRetry. The first reconnection after a healthy
// connection waits exactly r, as a browser does. After n consecutive failed
// attempts the wait is r plus a uniform random jitter, for a total of at
// most max(r, 100ms)·2ⁿ, capped at WithMaxDelay (or at r when r is longer).
// A *StatusError carrying a Retry-After of more than zero waits that long
// instead. A connection is healthy when it delivered at least one event or
// stayed open for the max delay; a healthy connection resets the backoff and
// the limits of WithMaxAttempts and WithMaxElapsed.
//
// Errors: the iterator yields an error with a zero Event in two cases only.
// A *ResetError (sluice's reset signal: the server could not replay from the
// last event id) does not end the iteration: live events follow it, so
// handle it and keep ranging. Any other error ends the iteration: a
// permanent error from the ConnectFunc (a *StatusError, ErrNotEventStream…),
// ErrEventTooLarge, ErrRetryLimit, the context's error when ctx is done,
// and for a stream that does not reconnect the error of its failed attempt
// or ErrConnectionLost. Transient errors that lead to a reconnection are
// reported only to OnRetry. When the ConnectFunc returns ErrDone, or a
// stream that does not reconnect ends cleanly, the iteration ends without
// an error.
//
// Cancelling ctx stops the stream at once, during a read or a wait, and
// never leads to a reconnection. Breaking out of the loop closes the
// connection. Each range over the returned iterator starts a new stream with
// the options' initial state.
func Stream(ctx context.Context, connect ConnectFunc, opts ...Option) iter.Seq2[Event, error] {
	cfg := newStreamConfig(opts)
	return stream(ctx, connect, nil, &cfg)
}

// stream is Stream with its configuration made. Once an attempt has opened
// a stream, resume, when not nil, connects instead of connect (Connect's
// WithResume).
func stream(ctx context.Context, connect, resume ConnectFunc, cfg *streamConfig) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		s := &streamer{cfg: cfg, connect: connect, resume: resume, yield: yield, lastID: cfg.lastEventID, retry: cfg.retry}
		s.run(ctx)
	}
}

// streamer is the state of one run of a Stream.
type streamer struct {
	cfg     *streamConfig
	connect ConnectFunc
	resume  ConnectFunc // connects once opened, when not nil
	yield   func(Event, error) bool
	rd      *Reader
	lastID  string
	retry   time.Duration
	failed  int       // consecutive failed attempts since the last healthy connection
	outage  time.Time // when the current run of failures started
	opened  bool      // an attempt has opened a stream
}

// Reasons a watchdog drops a connection.
const (
	dropNone int32 = iota
	dropRestart
	dropIdle
	dropCanceled
)

func (s *streamer) run(ctx context.Context) {
	c := s.cfg
	s.rd = NewReader(nil)
	s.rd.MaxEventSize = c.maxEventSize
	s.rd.DispatchAtEOF = c.dispatchAtEOF
	s.rd.OnComment = c.onComment
	s.rd.onSilentID = s.noteLastID
	s.outage = c.clock.Now()
	for {
		if err := ctx.Err(); err != nil {
			s.yield(Event{}, err)
			return
		}
		// A restart asked for before this attempt is satisfied by it.
		select {
		case <-c.restart:
		default:
		}
		out := s.session(ctx)
		if out.stop {
			return
		}
		err := out.err
		if err := ctx.Err(); err != nil {
			s.yield(Event{}, err)
			return
		}
		if out.reason == dropRestart {
			if !s.mayReconnect() {
				s.yield(Event{}, fmt.Errorf("%w: %w", ErrConnectionLost, errRestarted))
				return
			}
			s.failed, s.outage = 0, c.clock.Now()
			continue
		}
		if errors.Is(err, ErrDone) {
			return
		}
		if pe, ok := errors.AsType[*permanentError](err); ok {
			if err == error(pe) {
				err = pe.err
			}
			s.yield(Event{}, err)
			return
		}
		if errors.Is(err, ErrEventTooLarge) {
			s.yield(Event{}, err)
			return
		}
		if !s.mayReconnect() {
			// This was the only attempt, or none has opened a stream.
			switch {
			case !s.opened:
				s.yield(Event{}, err) // the attempt itself failed
			case err != io.EOF:
				s.yield(Event{}, fmt.Errorf("%w: %w", ErrConnectionLost, err))
			}
			return // a clean end
		}
		if out.healthy {
			s.failed, s.outage = 0, c.clock.Now()
		} else {
			s.failed++
		}
		if !s.wait(ctx, err) {
			return
		}
	}
}

// mayReconnect reports whether the stream may connect again.
func (s *streamer) mayReconnect() bool {
	switch s.cfg.reconnect {
	case reconnectAlways:
		return true
	case reconnectOpened:
		return s.opened
	}
	return false
}

// attemptOutcome is how one attempt ended.
type attemptOutcome struct {
	err     error // what ended it: io.EOF for a clean end
	reason  int32 // why the watchdog dropped it, if it did
	healthy bool  // it delivered an event or stayed open for the max delay
	stop    bool  // the loop body broke out: the iteration must end
}

// session makes one attempt and reads the stream it opens until it ends.
func (s *streamer) session(ctx context.Context) attemptOutcome {
	c := s.cfg
	start := c.clock.Now()
	connCtx, cancel := context.WithCancel(ctx)
	cn := &clientConn{cancel: cancel, clock: c.clock, idle: c.readTimeout, base: start, stop: make(chan struct{}), done: make(chan struct{})}
	go cn.watch(ctx, c.restart)
	defer cn.finish()

	connect := s.connect
	if s.opened && s.resume != nil {
		connect = s.resume
	}
	body, err := connect(connCtx, s.lastID)
	if err != nil {
		cn.finish()
		reason := cn.reason.Load()
		if reason == dropIdle {
			err = fmt.Errorf("%w: no response for %v", ErrReadTimeout, c.readTimeout)
		}
		return attemptOutcome{err: err, reason: reason}
	}
	s.opened = true
	cn.setBody(body)
	s.rd.Reset(cn, s.lastID)
	events := 0
	for {
		e, rerr := s.rd.Next()
		if rerr != nil {
			err = rerr
			break
		}
		events++
		if e.Type == ResetEventType {
			if !s.yield(Event{}, newResetError(e, s.lastID)) {
				return attemptOutcome{stop: true}
			}
		} else if c.types == nil || slices.Contains(c.types, e.Type) {
			if !s.yield(e, nil) {
				return attemptOutcome{stop: true}
			}
		}
		s.noteLastID()
	}
	cn.finish()
	s.noteLastID()
	if d, ok := s.rd.Retry(); ok {
		s.retry = d
	}
	reason := cn.reason.Load()
	if reason == dropIdle {
		err = fmt.Errorf("%w: no data for %v", ErrReadTimeout, c.readTimeout)
	}
	healthy := events > 0 || c.clock.Now().Sub(start) >= c.maxDelay
	return attemptOutcome{err: err, reason: reason, healthy: healthy}
}

func (s *streamer) noteLastID() {
	if id := s.rd.LastEventID(); id != s.lastID {
		s.lastID = id
		if s.cfg.onLastEventID != nil {
			s.cfg.onLastEventID(id)
		}
	}
}

// wait reports err and waits before the next attempt. It returns false when
// the iteration must end: a limit was reached or ctx is done.
func (s *streamer) wait(ctx context.Context, err error) bool {
	c := s.cfg
	now := c.clock.Now()
	delay := s.delay(err, now)
	if c.maxAttempts > 0 && s.failed >= c.maxAttempts {
		s.yield(Event{}, fmt.Errorf("%w: %d failed attempts: %w", ErrRetryLimit, s.failed, err))
		return false
	}
	if c.maxElapsed > 0 && s.failed > 0 && now.Add(delay).Sub(s.outage) > c.maxElapsed {
		s.yield(Event{}, fmt.Errorf("%w: no healthy connection for %v: %w", ErrRetryLimit, now.Sub(s.outage), err))
		return false
	}
	if c.onRetry != nil {
		c.onRetry(&RetryError{Err: err, Attempt: s.failed + 1, Delay: delay})
	}
	if delay <= 0 {
		return true
	}
	select {
	case <-ctx.Done():
		s.yield(Event{}, ctx.Err())
		return false
	case <-c.clock.After(delay):
	case <-c.restart:
		s.failed, s.outage = 0, c.clock.Now()
	}
	return true
}

// delay returns the wait before the next attempt.
func (s *streamer) delay(err error, now time.Time) time.Duration {
	if se, ok := errors.AsType[*StatusError](err); ok {
		// A Retry-After of zero (or a past date) falls back to the backoff,
		// so a server that keeps saying "now" is not hammered.
		if d, ok := se.RetryAfter(now); ok && d > 0 {
			return d
		}
	}
	base := s.retry
	if s.failed == 0 {
		return base
	}
	ceiling := max(s.cfg.maxDelay, base)
	hi := ceiling
	if s.failed < 32 {
		if step := max(base, minBackoffStep) << s.failed; step > 0 && step < ceiling {
			hi = step
		}
	}
	if hi <= base {
		return base
	}
	return base + min(max(s.cfg.jitter(hi-base), 0), hi-base)
}

// clientConn is one connection's body, wrapped to record when bytes arrive, and
// the watchdog that drops it on a restart, the read timeout or the end of
// the stream's context.
type clientConn struct {
	cancel context.CancelFunc
	clock  Clock
	idle   time.Duration
	base   time.Time
	last   atomic.Int64 // time of the latest read, as an offset from base
	reason atomic.Int32

	mu        sync.Mutex
	body      io.ReadCloser
	closeOnce sync.Once

	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

func (c *clientConn) Read(p []byte) (int, error) {
	n, err := c.body.Read(p)
	if n > 0 && c.idle > 0 {
		c.last.Store(int64(c.clock.Now().Sub(c.base)))
	}
	return n, err
}

func (c *clientConn) setBody(b io.ReadCloser) {
	c.mu.Lock()
	c.body = b
	dropped := c.reason.Load() != dropNone
	c.mu.Unlock()
	if dropped {
		c.closeBody()
	}
}

func (c *clientConn) closeBody() {
	c.mu.Lock()
	b := c.body
	c.mu.Unlock()
	if b != nil {
		c.closeOnce.Do(func() { b.Close() })
	}
}

// drop ends the connection for reason, unless it was already dropped.
func (c *clientConn) drop(reason int32) {
	if c.reason.CompareAndSwap(dropNone, reason) {
		c.cancel()
		c.closeBody()
	}
}

// finish stops the watchdog, waits for it, and releases the connection. It
// may be called more than once.
func (c *clientConn) finish() {
	c.stopOnce.Do(func() {
		close(c.stop)
		<-c.done
		c.cancel()
		c.closeBody()
	})
}

func (c *clientConn) watch(ctx context.Context, restart <-chan struct{}) {
	defer close(c.done)
	var timer <-chan time.Time
	arm := func() bool {
		if c.idle <= 0 {
			return true
		}
		quiet := c.clock.Now().Sub(c.base) - time.Duration(c.last.Load())
		if quiet >= c.idle {
			c.drop(dropIdle)
			return false
		}
		timer = c.clock.After(c.idle - quiet)
		return true
	}
	if !arm() {
		return
	}
	for {
		select {
		case <-c.stop:
			return
		case <-ctx.Done():
			c.drop(dropCanceled)
			return
		case <-restart:
			c.drop(dropRestart)
			return
		case <-timer:
			if !arm() {
				return
			}
		}
	}
}
