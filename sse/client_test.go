package sse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// hangTimeout only fails a test that hangs; no test waits for it to pass.
const hangTimeout = 10 * time.Second

// fakeClock is a Clock that moves only when the test advances it. Every
// After call is reported on calls, so a test can wait until the stream is
// blocked on the clock before advancing it.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
	calls   chan time.Duration
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), calls: make(chan time.Duration, 1000)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.mu.Lock()
	if d <= 0 {
		ch <- c.now
	} else {
		c.waiters = append(c.waiters, fakeWaiter{c.now.Add(d), ch})
	}
	c.mu.Unlock()
	c.calls <- d
	return ch
}

// Advance moves the clock forward by d, firing the waiters that are due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(c.now) {
			w.ch <- c.now
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
}

// nextAfter waits until the stream calls After, and returns its duration.
func (c *fakeClock) nextAfter(t *testing.T) time.Duration {
	t.Helper()
	select {
	case d := <-c.calls:
		return d
	case <-time.After(hangTimeout):
		t.Fatal("the stream never waited on the clock")
		return 0
	}
}

// noAfter checks that the stream has not called After so far.
func (c *fakeClock) noAfter(t *testing.T) {
	t.Helper()
	select {
	case d := <-c.calls:
		t.Fatalf("unexpected wait of %v", d)
	default:
	}
}

// fakeServer is a ConnectFunc whose every attempt the test answers.
type fakeServer struct {
	attempts chan *fakeAttempt
}

type fakeAttempt struct {
	ctx    context.Context
	lastID string
	reply  chan fakeReply
}

type fakeReply struct {
	body io.ReadCloser
	err  error
}

func newFakeServer() *fakeServer { return &fakeServer{attempts: make(chan *fakeAttempt)} }

func (s *fakeServer) connect(ctx context.Context, lastID string) (io.ReadCloser, error) {
	a := &fakeAttempt{ctx: ctx, lastID: lastID, reply: make(chan fakeReply, 1)}
	select {
	case s.attempts <- a:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case r := <-a.reply:
		return r.body, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// accept waits for the next attempt.
func (s *fakeServer) accept(t *testing.T) *fakeAttempt {
	t.Helper()
	select {
	case a := <-s.attempts:
		return a
	case <-time.After(hangTimeout):
		t.Fatal("the stream never connected")
		return nil
	}
}

// noAttempt checks that no attempt is pending.
func (s *fakeServer) noAttempt(t *testing.T) {
	t.Helper()
	select {
	case a := <-s.attempts:
		t.Fatalf("unexpected attempt with last event id %q", a.lastID)
	default:
	}
}

// open answers the attempt with a stream the test writes to.
func (a *fakeAttempt) open() *io.PipeWriter {
	pr, pw := io.Pipe()
	a.reply <- fakeReply{body: pr}
	return pw
}

func (a *fakeAttempt) fail(err error) { a.reply <- fakeReply{err: err} }

// streamItem is one element the iterator yielded.
type streamItem struct {
	e   Event
	err error
}

// run ranges over the stream in a goroutine, sending what it yields to
// items, which is closed when the iteration ends.
func runStream(ctx context.Context, connect ConnectFunc, opts ...Option) chan streamItem {
	items := make(chan streamItem, 100)
	go func() {
		defer close(items)
		for e, err := range Stream(ctx, connect, opts...) {
			items <- streamItem{e, err}
		}
	}()
	return items
}

func nextItem(t *testing.T, items chan streamItem) streamItem {
	t.Helper()
	select {
	case it, ok := <-items:
		if !ok {
			t.Fatal("the iteration ended")
		}
		return it
	case <-time.After(hangTimeout):
		t.Fatal("the stream yielded nothing")
		return streamItem{}
	}
}

func nextEvent(t *testing.T, items chan streamItem) Event {
	t.Helper()
	it := nextItem(t, items)
	if it.err != nil {
		t.Fatalf("unexpected error %v", it.err)
	}
	return it.e
}

func expectEnd(t *testing.T, items chan streamItem) {
	t.Helper()
	select {
	case it, ok := <-items:
		if ok {
			t.Fatalf("yielded %+v after the end", it)
		}
	case <-time.After(hangTimeout):
		t.Fatal("the iteration did not end")
	}
}

func pipeWrite(t *testing.T, w *io.PipeWriter, s string) {
	t.Helper()
	if _, err := io.WriteString(w, s); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// retries records what OnRetry reports.
type retries struct {
	ch chan *RetryError
}

func newRetries() *retries { return &retries{ch: make(chan *RetryError, 100)} }

func (r *retries) option() Option {
	return OnRetry(func(e *RetryError) { r.ch <- e })
}

func (r *retries) next(t *testing.T) *RetryError {
	t.Helper()
	select {
	case e := <-r.ch:
		return e
	case <-time.After(hangTimeout):
		t.Fatal("no retry reported")
		return nil
	}
}

func (r *retries) none(t *testing.T) {
	t.Helper()
	select {
	case e := <-r.ch:
		t.Fatalf("unexpected retry %v", e)
	default:
	}
}

func TestStreamReconnectsWithLastEventID(t *testing.T) {
	srv, clk, rs := newFakeServer(), newFakeClock(), newRetries()
	items := runStream(t.Context(), srv.connect, WithClock(clk), rs.option())

	a := srv.accept(t)
	if a.lastID != "" {
		t.Fatalf("first attempt with last event id %q", a.lastID)
	}
	w := a.open()
	pipeWrite(t, w, "id: 1\ndata: one\n\ndata: two\n\n")
	if e := nextEvent(t, items); e != (Event{ID: "1", Type: "message", Data: "one"}) {
		t.Fatalf("got %+v", e)
	}
	if e := nextEvent(t, items); e != (Event{ID: "1", Type: "message", Data: "two"}) {
		t.Fatalf("got %+v", e)
	}
	w.Close()

	r := rs.next(t)
	if r.Err != io.EOF || r.Attempt != 1 || r.Delay != DefaultRetry {
		t.Fatalf("retry %+v, want io.EOF, attempt 1, %v", r, DefaultRetry)
	}
	if d := clk.nextAfter(t); d != DefaultRetry {
		t.Fatalf("waited %v, want the default %v", d, DefaultRetry)
	}
	clk.Advance(DefaultRetry - time.Millisecond)
	srv.noAttempt(t)
	clk.Advance(time.Millisecond)
	a = srv.accept(t)
	if a.lastID != "1" {
		t.Fatalf("reconnected with last event id %q, want 1", a.lastID)
	}
	w = a.open()
	pipeWrite(t, w, "data: three\n\n")
	if e := nextEvent(t, items); e != (Event{ID: "1", Type: "message", Data: "three"}) {
		t.Fatalf("got %+v", e)
	}
}

func TestStreamEmptyIDClearsLastEventID(t *testing.T) {
	srv, clk := newFakeServer(), newFakeClock()
	items := runStream(t.Context(), srv.connect, WithClock(clk), WithRetry(0))
	w := srv.accept(t).open()
	pipeWrite(t, w, "id: abc\ndata: one\n\nid:\ndata: two\n\n")
	nextEvent(t, items)
	if e := nextEvent(t, items); e.ID != "" {
		t.Fatalf("event after an empty id field has id %q", e.ID)
	}
	w.Close()
	if a := srv.accept(t); a.lastID != "" {
		t.Fatalf("reconnected with last event id %q, want none", a.lastID)
	}
}

func TestStreamIDOfBlockWithoutData(t *testing.T) {
	srv, clk := newFakeServer(), newFakeClock()
	var ids []string
	items := runStream(t.Context(), srv.connect, WithClock(clk), WithRetry(0), OnLastEventID(func(id string) { ids = append(ids, id) }))
	w := srv.accept(t).open()
	pipeWrite(t, w, "id: 7\n\n")
	w.Close()
	clk.Advance(clk.nextAfter(t)) // a connection with no event is a failure
	if a := srv.accept(t); a.lastID != "7" {
		t.Fatalf("reconnected with last event id %q, want 7 (set by a block with no data)", a.lastID)
	}
	select {
	case it := <-items:
		t.Fatalf("a block with no data yielded %+v", it)
	default:
	}
	if !slices.Equal(ids, []string{"7"}) {
		t.Fatalf("OnLastEventID got %q", ids)
	}
}

// A priming id (a lone id field) reaches OnLastEventID as soon as it is
// read, not with the next event: a process that persists the cursor has
// it even if no event follows.
func TestStreamOnLastEventIDOfPriming(t *testing.T) {
	srv := newFakeServer()
	ids := make(chan string, 10)
	items := runStream(t.Context(), srv.connect, OnLastEventID(func(id string) { ids <- id }))
	w := srv.accept(t).open()
	pipeWrite(t, w, "id: primed\n\n")
	select {
	case id := <-ids:
		if id != "primed" {
			t.Fatalf("OnLastEventID(%q), want primed", id)
		}
	case <-time.After(hangTimeout):
		t.Fatal("OnLastEventID not called for the priming")
	}
	pipeWrite(t, w, "data: x\n\n")
	if e := nextEvent(t, items); e.ID != "primed" || e.Data != "x" {
		t.Fatalf("got %+v", e)
	}
	if len(ids) != 0 {
		t.Fatalf("OnLastEventID(%q) again", <-ids)
	}
}

func TestStreamInitialLastEventID(t *testing.T) {
	srv := newFakeServer()
	runStream(t.Context(), srv.connect, WithLastEventID("42"))
	if a := srv.accept(t); a.lastID != "42" {
		t.Fatalf("first attempt with last event id %q, want 42", a.lastID)
	}
}

func TestStreamHonoursServerRetry(t *testing.T) {
	srv, clk := newFakeServer(), newFakeClock()
	items := runStream(t.Context(), srv.connect, WithClock(clk), WithRetry(time.Second))
	w := srv.accept(t).open()
	// A retry field takes effect even in a block that dispatches nothing.
	pipeWrite(t, w, "data: x\n\nretry: 250\n\n")
	nextEvent(t, items)
	w.Close()
	if d := clk.nextAfter(t); d != 250*time.Millisecond {
		t.Fatalf("waited %v, want the server's 250ms", d)
	}
	clk.Advance(250 * time.Millisecond)
	w = srv.accept(t).open()
	// The server's retry stays in force on later connections.
	pipeWrite(t, w, "data: y\n\n")
	nextEvent(t, items)
	w.Close()
	if d := clk.nextAfter(t); d != 250*time.Millisecond {
		t.Fatalf("waited %v on the second reconnection, want 250ms", d)
	}
}

func TestStreamDiscardsPartialEvent(t *testing.T) {
	srv, clk, rs := newFakeServer(), newFakeClock(), newRetries()
	items := runStream(t.Context(), srv.connect, WithClock(clk), WithRetry(0), rs.option())
	w := srv.accept(t).open()
	pipeWrite(t, w, "id: abc\ndata: Hello\n\nid: def\ndata: Goodbye")
	nextEvent(t, items)
	broken := errors.New("connection reset")
	w.CloseWithError(broken)
	if r := rs.next(t); r.Err != broken {
		t.Fatalf("retry cause %v, want the read error", r.Err)
	}
	a := srv.accept(t)
	if a.lastID != "abc" {
		t.Fatalf("reconnected with last event id %q, want abc", a.lastID)
	}
	w = a.open()
	pipeWrite(t, w, "data: We meet again\n\n")
	if e := nextEvent(t, items); e != (Event{ID: "abc", Type: "message", Data: "We meet again"}) {
		t.Fatalf("got %+v", e)
	}
}

// maxJitter makes the backoff deterministic: the longest wait allowed.
func maxJitter(d time.Duration) time.Duration { return d }

func TestStreamBackoff(t *testing.T) {
	srv, clk, rs := newFakeServer(), newFakeClock(), newRetries()
	var asked []time.Duration
	jitter := func(d time.Duration) time.Duration { asked = append(asked, d); return d }
	items := runStream(t.Context(), srv.connect, WithClock(clk), WithRetry(time.Second), WithMaxDelay(5*time.Second),
		WithJitter(jitter), rs.option())

	refused := errors.New("connection refused")
	for i, want := range []time.Duration{2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second} {
		srv.accept(t).fail(refused)
		if r := rs.next(t); r.Err != refused || r.Attempt != i+2 || r.Delay != want {
			t.Fatalf("failure %d: retry %+v, want attempt %d after %v", i+1, r, i+2, want)
		}
		if d := clk.nextAfter(t); d != want {
			t.Fatalf("failure %d: waited %v, want %v", i+1, d, want)
		}
		clk.Advance(want)
	}
	// The jitter is asked for the spread above the reconnection time.
	if want := []time.Duration{time.Second, 3 * time.Second, 4 * time.Second, 4 * time.Second}; !slices.Equal(asked, want) {
		t.Fatalf("jitter asked for %v, want %v", asked, want)
	}

	// A connection that delivers an event is healthy: the backoff resets.
	w := srv.accept(t).open()
	pipeWrite(t, w, "data: ok\n\n")
	nextEvent(t, items)
	w.Close()
	if r := rs.next(t); r.Attempt != 1 || r.Delay != time.Second {
		t.Fatalf("after a healthy connection: retry %+v, want attempt 1 after 1s", r)
	}
	clk.nextAfter(t)
	clk.Advance(time.Second)
	srv.accept(t).fail(refused)
	if r := rs.next(t); r.Delay != 2*time.Second {
		t.Fatalf("first failure after a healthy connection waits %v, want 2s", r.Delay)
	}
}

func TestStreamBackoffJitterBounds(t *testing.T) {
	for _, tc := range []struct {
		name   string
		jitter func(time.Duration) time.Duration
		want   time.Duration
	}{
		{"none", func(time.Duration) time.Duration { return 0 }, time.Second},
		{"negative is clamped", func(time.Duration) time.Duration { return -time.Hour }, time.Second},
		{"too much is clamped", func(time.Duration) time.Duration { return time.Hour }, 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, clk, rs := newFakeServer(), newFakeClock(), newRetries()
			runStream(t.Context(), srv.connect, WithClock(clk), WithRetry(time.Second), WithJitter(tc.jitter), rs.option())
			srv.accept(t).fail(errors.New("refused"))
			if r := rs.next(t); r.Delay != tc.want {
				t.Fatalf("waits %v, want %v", r.Delay, tc.want)
			}
		})
	}
}

func TestStreamDefaultJitterStaysInRange(t *testing.T) {
	c := newStreamConfig(nil)
	for range 1000 {
		if j := c.jitter(10 * time.Millisecond); j < 0 || j > 10*time.Millisecond {
			t.Fatalf("jitter %v out of [0, 10ms]", j)
		}
	}
	if j := c.jitter(0); j != 0 {
		t.Fatalf("jitter(0) = %v", j)
	}
}

func TestStreamBackoffFromZeroRetry(t *testing.T) {
	srv, clk, rs := newFakeServer(), newFakeClock(), newRetries()
	items := runStream(t.Context(), srv.connect, WithClock(clk), WithRetry(0), WithJitter(maxJitter), rs.option())
	w := srv.accept(t).open()
	pipeWrite(t, w, "data: ok\n\n")
	nextEvent(t, items)
	w.Close()
	// After a healthy connection: at once, as the server asked.
	if r := rs.next(t); r.Delay != 0 {
		t.Fatalf("waits %v, want 0", r.Delay)
	}
	// A server that keeps failing is not hammered.
	for _, want := range []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond} {
		srv.accept(t).fail(errors.New("refused"))
		if r := rs.next(t); r.Delay != want {
			t.Fatalf("waits %v, want %v", r.Delay, want)
		}
		clk.nextAfter(t)
		clk.Advance(want)
	}
}

func TestStreamUnhealthyConnectionCountsAsFailure(t *testing.T) {
	srv, clk, rs := newFakeServer(), newFakeClock(), newRetries()
	runStream(t.Context(), srv.connect, WithClock(clk), WithRetry(time.Second), WithJitter(maxJitter), rs.option())
	w := srv.accept(t).open()
	pipeWrite(t, w, ": only a comment\n\n")
	w.Close()
	if r := rs.next(t); r.Attempt != 2 || r.Delay != 2*time.Second {
		t.Fatalf("retry %+v, want attempt 2 after 2s", r)
	}
	clk.nextAfter(t)
	clk.Advance(2 * time.Second)

	// Open for the max delay without an event: healthy.
	w = srv.accept(t).open()
	clk.Advance(DefaultMaxDelay)
	w.Close()
	if r := rs.next(t); r.Attempt != 1 || r.Delay != time.Second {
		t.Fatalf("retry %+v, want attempt 1 after 1s", r)
	}
}

func TestStreamMaxAttempts(t *testing.T) {
	srv, clk := newFakeServer(), newFakeClock()
	items := runStream(t.Context(), srv.connect, WithClock(clk), WithRetry(0), WithMaxAttempts(3), WithJitter(maxJitter))
	refused := errors.New("refused")
	for i := range 3 {
		srv.accept(t).fail(refused)
		if i < 2 {
			clk.Advance(clk.nextAfter(t))
		}
	}
	it := nextItem(t, items)
	if !errors.Is(it.err, ErrRetryLimit) || !errors.Is(it.err, refused) {
		t.Fatalf("got %v, want ErrRetryLimit wrapping the last error", it.err)
	}
	expectEnd(t, items)
	srv.noAttempt(t)
}

// WithMaxAttempts(1), as documented: a stream that keeps working goes on
// reconnecting after each healthy connection ends; the first attempt that
// fails ends it.
func TestStreamMaxAttemptsCountsFailuresInARow(t *testing.T) {
	srv, clk := newFakeServer(), newFakeClock()
	items := runStream(t.Context(), srv.connect, WithClock(clk), WithRetry(0), WithMaxAttempts(1), WithJitter(maxJitter))
	for i := range 3 {
		w := srv.accept(t).open()
		pipeWrite(t, w, fmt.Sprintf("id: %d\ndata: x\n\n", i))
		nextEvent(t, items)
		w.Close()
	}
	refused := errors.New("refused")
	srv.accept(t).fail(refused)
	if it := nextItem(t, items); !errors.Is(it.err, ErrRetryLimit) || !errors.Is(it.err, refused) {
		t.Fatalf("got %v, want ErrRetryLimit wrapping the failure", it.err)
	}
	expectEnd(t, items)
	srv.noAttempt(t)
	clk.noAfter(t) // WithRetry(0): no wait was ever armed
}

// WithOneShot connects once, whatever the ConnectFunc answers.
func TestStreamOneShot(t *testing.T) {
	refused := errors.New("refused")
	for _, tc := range []struct {
		name  string
		serve func(a *fakeAttempt)
		check func(error) bool
	}{
		{"clean end", func(a *fakeAttempt) {
			w := a.open()
			io.WriteString(w, "data: x\n\n")
			w.Close()
		}, func(err error) bool { return err == nil }},
		{"drop", func(a *fakeAttempt) {
			w := a.open()
			io.WriteString(w, "data: x\n\n")
			w.CloseWithError(io.ErrUnexpectedEOF)
		}, func(err error) bool { return errors.Is(err, ErrConnectionLost) && errors.Is(err, io.ErrUnexpectedEOF) }},
		{"failed attempt", func(a *fakeAttempt) { a.fail(refused) }, func(err error) bool { return err == refused }},
		{"done", func(a *fakeAttempt) { a.fail(ErrDone) }, func(err error) bool { return err == nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, rs := newFakeServer(), newRetries()
			items := runStream(t.Context(), srv.connect, WithOneShot(), rs.option())
			tc.serve(srv.accept(t))
			var err error
			for it := range items {
				if it.err != nil {
					err = it.err
				}
			}
			if !tc.check(err) {
				t.Fatalf("ended with %v", err)
			}
			srv.noAttempt(t)
			rs.none(t)
		})
	}
}

// A one-shot stream that goes quiet for the read timeout ends with
// ErrConnectionLost wrapping ErrReadTimeout, and does not reconnect.
func TestStreamOneShotReadTimeout(t *testing.T) {
	srv, clk, rs := newFakeServer(), newFakeClock(), newRetries()
	items := runStream(t.Context(), srv.connect, WithOneShot(), WithClock(clk), WithReadTimeout(time.Second), rs.option())
	a := srv.accept(t)
	if d := clk.nextAfter(t); d != time.Second {
		t.Fatalf("watchdog armed for %v, want 1s", d)
	}
	pipeWrite(t, a.open(), "data: x\n\n")
	nextEvent(t, items) // the stream has opened and read its bytes at 0s
	clk.Advance(time.Second)
	if it := nextItem(t, items); !errors.Is(it.err, ErrConnectionLost) || !errors.Is(it.err, ErrReadTimeout) {
		t.Fatalf("got %+v, want ErrConnectionLost wrapping ErrReadTimeout", it)
	}
	expectEnd(t, items)
	srv.noAttempt(t)
	rs.none(t)
}

func TestStreamMaxElapsed(t *testing.T) {
	srv, clk, rs := newFakeServer(), newFakeClock(), newRetries()
	items := runStream(t.Context(), srv.connect, WithClock(clk), WithRetry(time.Second), WithMaxElapsed(5*time.Second),
		WithJitter(maxJitter), rs.option())
	refused := errors.New("refused")
	srv.accept(t).fail(refused) // t=0, waits 2s
	clk.Advance(clk.nextAfter(t))
	srv.accept(t).fail(refused) // t=2s: would wait 4s, past 5s
	it := nextItem(t, items)
	if !errors.Is(it.err, ErrRetryLimit) || !errors.Is(it.err, refused) {
		t.Fatalf("got %v, want ErrRetryLimit wrapping the last error", it.err)
	}
	expectEnd(t, items)
	if len(rs.ch) != 1 {
		t.Fatalf("%d retries reported, want 1", len(rs.ch))
	}
}

func TestStreamPermanentError(t *testing.T) {
	srv := newFakeServer()
	items := runStream(t.Context(), srv.connect)
	se := &StatusError{StatusCode: 401}
	srv.accept(t).fail(Permanent(se))
	it := nextItem(t, items)
	if it.err != error(se) {
		t.Fatalf("yielded %v, want the StatusError itself", it.err)
	}
	expectEnd(t, items)

	// Wrapped with context, the chain is kept.
	srv = newFakeServer()
	items = runStream(t.Context(), srv.connect)
	srv.accept(t).fail(fmt.Errorf("auth: %w", Permanent(se)))
	it = nextItem(t, items)
	if got, ok := errors.AsType[*StatusError](it.err); !ok || got != se || !strings.HasPrefix(it.err.Error(), "auth: ") {
		t.Fatalf("yielded %v", it.err)
	}
	expectEnd(t, items)
	if Permanent(nil) != nil {
		t.Fatal("Permanent(nil) is not nil")
	}
}

func TestStreamDone(t *testing.T) {
	srv, rs := newFakeServer(), newRetries()
	items := runStream(t.Context(), srv.connect, rs.option())
	srv.accept(t).fail(fmt.Errorf("wrapped: %w", ErrDone))
	expectEnd(t, items)
	rs.none(t)
}

func TestStreamEventTooLargeEnds(t *testing.T) {
	srv := newFakeServer()
	items := runStream(t.Context(), srv.connect, WithMaxEventSize(16))
	w := srv.accept(t).open()
	go io.WriteString(w, "data: "+strings.Repeat("x", 100)+"\n\n")
	if it := nextItem(t, items); !errors.Is(it.err, ErrEventTooLarge) {
		t.Fatalf("got %+v, want ErrEventTooLarge", it)
	}
	expectEnd(t, items)
}

func TestStreamCancelDuringWait(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	srv, clk := newFakeServer(), newFakeClock()
	items := runStream(ctx, srv.connect, WithClock(clk))
	srv.accept(t).fail(errors.New("refused"))
	clk.nextAfter(t)
	cancel()
	if it := nextItem(t, items); it.err != context.Canceled {
		t.Fatalf("got %+v, want context.Canceled", it)
	}
	expectEnd(t, items)
	srv.noAttempt(t)
}

func TestStreamCancelDuringRead(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	srv, clk, rs := newFakeServer(), newFakeClock(), newRetries()
	items := runStream(ctx, srv.connect, WithClock(clk), WithRetry(0), rs.option())
	a := srv.accept(t)
	w := a.open()
	pipeWrite(t, w, "data: one\n\n")
	nextEvent(t, items)
	cancel()
	if it := nextItem(t, items); it.err != context.Canceled {
		t.Fatalf("got %+v, want context.Canceled", it)
	}
	expectEnd(t, items)
	if _, err := io.WriteString(w, "data: x\n\n"); err == nil {
		t.Fatal("the body is still open")
	}
	if a.ctx.Err() == nil {
		t.Fatal("the connection's context is still live")
	}
	srv.noAttempt(t)
	rs.none(t)
	clk.noAfter(t)
}

func TestStreamCancelDuringConnect(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	srv := newFakeServer()
	items := runStream(ctx, srv.connect)
	srv.accept(t) // never answered
	cancel()
	if it := nextItem(t, items); it.err != context.Canceled {
		t.Fatalf("got %+v, want context.Canceled", it)
	}
	expectEnd(t, items)
}

func TestStreamBreakClosesBody(t *testing.T) {
	srv := newFakeServer()
	var a *fakeAttempt
	done := make(chan struct{})
	go func() {
		defer close(done)
		a = srv.accept(t)
		w := a.open()
		io.WriteString(w, "data: one\n\ndata: two\n\n")
	}()
	for e, err := range Stream(t.Context(), srv.connect) {
		if err != nil || e.Data != "one" {
			t.Fatalf("got %+v, %v", e, err)
		}
		break
	}
	<-done
	if a.ctx.Err() == nil {
		t.Fatal("the connection's context is still live after break")
	}
	srv.noAttempt(t)
}

func TestStreamReadTimeout(t *testing.T) {
	srv, clk, rs := newFakeServer(), newFakeClock(), newRetries()
	comments := make(chan string, 10)
	items := runStream(t.Context(), srv.connect, WithClock(clk), WithRetry(0), WithReadTimeout(10*time.Second), rs.option(),
		OnComment(func(c string) { comments <- c }))
	a := srv.accept(t)
	if d := clk.nextAfter(t); d != 10*time.Second {
		t.Fatalf("watchdog armed for %v, want 10s", d)
	}
	w := a.open()
	pipeWrite(t, w, "data: one\n\n")
	nextEvent(t, items)
	clk.Advance(6 * time.Second)
	// A heartbeat comment at 6s counts as data: the deadline moves to 16s.
	pipeWrite(t, w, ": hb\n")
	<-comments
	clk.Advance(4 * time.Second)
	if d := clk.nextAfter(t); d != 6*time.Second {
		t.Fatalf("watchdog re-armed for %v, want the 6s left", d)
	}
	rs.none(t)
	clk.Advance(6 * time.Second)
	r := rs.next(t)
	if !errors.Is(r.Err, ErrReadTimeout) {
		t.Fatalf("retry cause %v, want ErrReadTimeout", r.Err)
	}
	if a.ctx.Err() == nil {
		t.Fatal("the timed-out connection's context is still live")
	}
	if a2 := srv.accept(t); a2.lastID != "" {
		t.Fatalf("reconnected with %q", a2.lastID)
	}
}

func TestStreamReadTimeoutWhileConnecting(t *testing.T) {
	srv, clk, rs := newFakeServer(), newFakeClock(), newRetries()
	runStream(t.Context(), srv.connect, WithClock(clk), WithRetry(0), WithReadTimeout(time.Second), WithJitter(maxJitter), rs.option())
	a := srv.accept(t) // never answered
	clk.Advance(clk.nextAfter(t))
	if r := rs.next(t); !errors.Is(r.Err, ErrReadTimeout) {
		t.Fatalf("retry cause %v, want ErrReadTimeout", r.Err)
	}
	if a.ctx.Err() == nil {
		t.Fatal("the attempt's context is still live")
	}
	if d := clk.nextAfter(t); d != 200*time.Millisecond {
		t.Fatalf("waits %v after a failed attempt, want 200ms", d)
	}
	clk.Advance(200 * time.Millisecond)
	srv.accept(t)
}

func TestStreamRestart(t *testing.T) {
	srv, clk, rs := newFakeServer(), newFakeClock(), newRetries()
	var r Restarter
	items := runStream(t.Context(), srv.connect, WithClock(clk), WithRestarter(&r), rs.option())
	a := srv.accept(t)
	w := a.open()
	pipeWrite(t, w, "id: 5\ndata: Hello\n\n")
	nextEvent(t, items)
	r.Restart()
	a2 := srv.accept(t)
	if a2.lastID != "5" {
		t.Fatalf("restarted with last event id %q, want 5", a2.lastID)
	}
	if a.ctx.Err() == nil {
		t.Fatal("the first connection is still live")
	}
	w2 := a2.open()
	pipeWrite(t, w2, "data: Thanks\n\n")
	if e := nextEvent(t, items); e.Data != "Thanks" {
		t.Fatalf("got %+v", e)
	}
	rs.none(t)
	clk.noAfter(t)
}

func TestStreamRestartDuringWaitResetsBackoff(t *testing.T) {
	srv, clk, rs := newFakeServer(), newFakeClock(), newRetries()
	var r Restarter
	runStream(t.Context(), srv.connect, WithClock(clk), WithRetry(time.Second), WithJitter(maxJitter), WithRestarter(&r), rs.option())
	srv.accept(t).fail(errors.New("refused"))
	clk.Advance(clk.nextAfter(t))
	srv.accept(t).fail(errors.New("refused"))
	if r := rs.next(t); r.Delay != 2*time.Second {
		t.Fatalf("first failure waits %v", r.Delay)
	}
	if r := rs.next(t); r.Delay != 4*time.Second {
		t.Fatalf("second failure waits %v", r.Delay)
	}
	clk.nextAfter(t)
	r.Restart() // no clock advance: the wait ends now
	srv.accept(t).fail(errors.New("refused"))
	if r := rs.next(t); r.Attempt != 2 || r.Delay != 2*time.Second {
		t.Fatalf("after a restart: retry %+v, want attempt 2 after 2s", r)
	}
}

func TestStreamRestartWhileConnecting(t *testing.T) {
	srv := newFakeServer()
	var r Restarter
	runStream(t.Context(), srv.connect, WithRestarter(&r))
	a := srv.accept(t) // never answered
	r.Restart()
	srv.accept(t)
	if a.ctx.Err() == nil {
		t.Fatal("the abandoned attempt's context is still live")
	}
}

func TestStreamReset(t *testing.T) {
	srv := newFakeServer()
	items := runStream(t.Context(), srv.connect, WithLastEventID("old"), WithRetry(0))
	a := srv.accept(t)
	w := a.open()
	wire, err := AppendEvent(nil, ResetEvent("h9", ResetExpired))
	if err != nil {
		t.Fatal(err)
	}
	pipeWrite(t, w, string(wire)+"id: h10\ndata: live\n\n")
	it := nextItem(t, items)
	re, ok := errors.AsType[*ResetError](it.err)
	if !ok || !errors.Is(it.err, ErrHistoryLost) {
		t.Fatalf("got %+v, want a *ResetError", it)
	}
	if *re != (ResetError{Reason: ResetExpired, Head: "h9", LastEventID: "old"}) {
		t.Fatalf("got %+v", *re)
	}
	// The iteration goes on with live events.
	if e := nextEvent(t, items); e != (Event{ID: "h10", Type: "message", Data: "live"}) {
		t.Fatalf("got %+v", e)
	}
	w.Close()
	if a := srv.accept(t); a.lastID != "h10" {
		t.Fatalf("reconnected with %q", a.lastID)
	}
}

func TestStreamResetMalformedPayload(t *testing.T) {
	srv := newFakeServer()
	items := runStream(t.Context(), srv.connect, WithTypes("x"))
	w := srv.accept(t).open()
	pipeWrite(t, w, "event: sluice-reset\ndata: not json\n\n")
	it := nextItem(t, items)
	if re, ok := errors.AsType[*ResetError](it.err); !ok || re.Reason != "" || re.Head != "" {
		t.Fatalf("got %+v, want an empty *ResetError even with a type filter", it)
	}
}

func TestResetEvent(t *testing.T) {
	e := ResetEvent("42", ResetUnknown)
	want := Event{ID: "42", Type: "sluice-reset", Data: `{"head":"42","reason":"unknown"}`}
	if e != want {
		t.Fatalf("got %+v, want %+v", e, want)
	}
	err := &ResetError{Reason: "unknown", Head: "42", LastEventID: "7"}
	if got := err.Error(); got != `sse: history lost (unknown): cannot resume after id "7", resuming from head "42"` {
		t.Fatalf("message %q", got)
	}
}

func TestStreamTypes(t *testing.T) {
	srv := newFakeServer()
	var ids []string
	items := runStream(t.Context(), srv.connect, WithRetry(0), WithTypes("a", "message"), OnLastEventID(func(id string) { ids = append(ids, id) }))
	w := srv.accept(t).open()
	pipeWrite(t, w, "event: a\nid: 1\ndata: x\n\nevent: b\nid: 2\ndata: y\n\ndata: z\n\n")
	if e := nextEvent(t, items); e.Type != "a" || e.ID != "1" {
		t.Fatalf("got %+v", e)
	}
	if e := nextEvent(t, items); e.Type != "message" || e.ID != "2" {
		t.Fatalf("got %+v", e)
	}
	w.Close()
	// The skipped event still moved the last event id.
	if a := srv.accept(t); a.lastID != "2" {
		t.Fatalf("reconnected with %q, want 2", a.lastID)
	}
	if !slices.Equal(ids, []string{"1", "2"}) {
		t.Fatalf("OnLastEventID got %q", ids)
	}
}

func TestStreamComments(t *testing.T) {
	srv := newFakeServer()
	comments := make(chan string, 10)
	items := runStream(t.Context(), srv.connect, OnComment(func(c string) { comments <- c }))
	w := srv.accept(t).open()
	// A comment is reported as soon as its line is read, with no event.
	pipeWrite(t, w, ":Hello\n")
	select {
	case c := <-comments:
		if c != "Hello" {
			t.Fatalf("comment %q", c)
		}
	case <-time.After(hangTimeout):
		t.Fatal("comment not reported")
	}
	pipeWrite(t, w, ": two\ndata: x\n\n")
	nextEvent(t, items)
	if c := <-comments; c != "two" {
		t.Fatalf("comment %q", c)
	}
}

func TestStreamOnLastEventIDAfterYield(t *testing.T) {
	srv := newFakeServer()
	go func() {
		w := srv.accept(t).open()
		io.WriteString(w, "id: 1\ndata: a\n\nid: 2\ndata: b\n\n")
	}()
	var log []string
	for e, err := range Stream(t.Context(), srv.connect, OnLastEventID(func(id string) { log = append(log, "persist "+id) })) {
		if err != nil {
			t.Fatal(err)
		}
		log = append(log, "event "+e.ID)
		if e.ID == "2" {
			break
		}
	}
	want := []string{"event 1", "persist 1", "event 2"}
	if !reflect.DeepEqual(log, want) {
		t.Fatalf("order %q, want %q", log, want)
	}
}

func TestStreamRetryAfter(t *testing.T) {
	srv, clk, rs := newFakeServer(), newFakeClock(), newRetries()
	runStream(t.Context(), srv.connect, WithClock(clk), rs.option())
	h := make(map[string][]string)
	h["Retry-After"] = []string{"7"}
	srv.accept(t).fail(&StatusError{StatusCode: 503, Header: h})
	if r := rs.next(t); r.Delay != 7*time.Second {
		t.Fatalf("waits %v, want Retry-After's 7s", r.Delay)
	}
	if d := clk.nextAfter(t); d != 7*time.Second {
		t.Fatalf("waited %v", d)
	}
	clk.Advance(7 * time.Second)
	srv.accept(t)
}

func TestStreamRangesAfresh(t *testing.T) {
	srv := newFakeServer()
	seq := Stream(t.Context(), srv.connect, WithLastEventID("1"))
	for range 2 {
		go func() {
			a := srv.accept(t)
			if a.lastID != "1" {
				t.Errorf("attempt with %q, want the initial id", a.lastID)
			}
			io.WriteString(a.open(), "id: 9\ndata: x\n\n")
		}()
		for _, err := range seq {
			if err != nil {
				t.Fatal(err)
			}
			break
		}
	}
}
