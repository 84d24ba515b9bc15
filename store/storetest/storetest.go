// Package storetest is the contract suite of [store.Store]: every store in
// this module runs it, and so can a third-party store.
//
//	func TestContract(t *testing.T) {
//		storetest.Run(t, storetest.Harness{
//			New: func(t *testing.T, l storetest.Limits) store.Store {
//				return mystore.Open(t.TempDir(), mystore.Config{MaxEvents: l.MaxEvents, ...})
//			},
//		})
//	}
//
// The suite checks ordering, exclusive cursors, topic filters, multi-topic
// events, typed errors for unknown and expired cursors, retention by count,
// bytes and age, custom ids and their duplicates, concurrent appends, Follow
// while appends race (no gap, no duplicate), followers that fall behind
// retention, iterators stopped early, cancellation, Close while following,
// given a Reopen hook, restarts, and the optional interfaces
// ([store.Resolver], [store.Positioner]) of the stores that implement them.
// It never sleeps to pass: it waits on channels, with a timeout only to fail
// instead of hanging.
//
// Generated ids (those Append gives events without an id, Head, and
// [store.Positioner.PositionID]) must start with "#" ([store.IDPrefix]):
// they are then URI fragments, the form the Mercure protocol requires of
// the ids a hub generates. The same id without its "#" — the legacy form
// the stores of this module generated before — must still be a cursor for
// the same position (History, Follow, Resolve, Lookup treat it as the id
// itself), so that clients holding one resume across an upgrade. A custom
// id in the form of a generated id, with or without the "#", must be
// refused with [store.ErrInvalidEvent], so that a generated id always keeps
// its meaning.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/store"
)

// Limits is the retention a subtest asks of a new store. Zero fields mean
// "the store's default", which must keep at least the few thousand events
// the suite appends.
type Limits struct {
	// MaxEvents is the most events retained.
	MaxEvents int
	// MaxBytes bounds the sum of store.EventSize over retained events.
	MaxBytes int64
	// TTL is the longest an event is retained, measured from its Time.
	TTL time.Duration
	// Now, when not nil, is the clock the store must use for Event.Time,
	// TTL and KeepFor. The suite sets it only together with TTL or KeepFor.
	Now func() time.Time
	// KeepPerChannel is how many events of each channel a store.Keeper
	// keeps (its config's KeepPerChannel).
	KeepPerChannel int
	// KeepFor is how long a store.Keeper keeps an event of a channel.
	KeepFor time.Duration
}

// Harness tells the suite how to make the stores it tests.
type Harness struct {
	// New returns a new, empty store with retention l. It is required and
	// may be called from parallel subtests. The suite closes every store it
	// gets. A store that cannot honour l (it has no byte limit, or cannot
	// take an injected clock) calls t.Skip: only that subtest is skipped.
	New func(t *testing.T, l Limits) store.Store

	// Reopen, for durable stores, closes s and opens the same log again
	// with retention l. Nil skips the restart subtests.
	Reopen func(t *testing.T, s store.Store, l Limits) store.Store

	// ApproximateCount declares that the store may keep more events than
	// Limits.MaxEvents asks for (Redis MAXLEN ~, for example). The suite
	// then checks that count retention trims and that trimmed cursors
	// yield store.ErrExpired, not exact counts, and skips CustomIDEvicted,
	// which needs to know exactly which occurrence of an id was evicted.
	ApproximateCount bool

	// ApproximateBytes declares that the store may keep more than
	// Limits.MaxBytes asks for, or count bytes otherwise than
	// store.EventSize (JetStream's max_bytes counts what it stores, for
	// example). The suite then checks that byte retention trims and that
	// trimmed cursors yield store.ErrExpired, not exact sizes.
	ApproximateBytes bool

	// Timeout bounds every wait of the suite (an event to be followed, an
	// iterator to end). Zero means 30 seconds.
	Timeout time.Duration
}

// Run runs the contract suite against the stores h makes. The subtests run in
// parallel with each other; Run returns when all are done.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.New == nil {
		t.Fatal("storetest: Harness.New is nil")
	}
	if h.Timeout <= 0 {
		h.Timeout = 30 * time.Second
	}
	s := &suite{h: h}
	tests := []struct {
		name string
		fn   func(*testing.T)
	}{
		{"AppendAndHistory", s.testAppendAndHistory},
		{"EmptyStore", s.testEmptyStore},
		{"ExclusiveCursor", s.testExclusiveCursor},
		{"TopicFilter", s.testTopicFilter},
		{"UnknownCursor", s.testUnknownCursor},
		{"InvalidEvent", s.testInvalidEvent},
		{"CanceledContext", s.testCanceledContext},
		{"CustomIDs", s.testCustomIDs},
		{"CustomIDDuplicates", s.testCustomIDDuplicates},
		{"CustomIDLikeGenerated", s.testCustomIDLikeGenerated},
		{"GeneratedIDLegacyForm", s.testGeneratedIDLegacyForm},
		{"GeneratedIDLegacyFormExpired", s.testGeneratedIDLegacyFormExpired},
		{"CustomIDEvicted", s.testCustomIDEvicted},
		{"RetentionCount", s.testRetentionCount},
		{"RetentionBytes", s.testRetentionBytes},
		{"RetentionTTL", s.testRetentionTTL},
		{"ConcurrentAppends", s.testConcurrentAppends},
		{"FollowLive", s.testFollowLive},
		{"FollowRacingAppends", s.testFollowRacingAppends},
		{"FollowFallsBehind", s.testFollowFallsBehind},
		{"FollowCancel", s.testFollowCancel},
		{"FollowClose", s.testFollowClose},
		{"StopEarly", s.testStopEarly},
		{"AppendWhileIterating", s.testAppendWhileIterating},
		{"Restart", s.testRestart},
		{"RestartRetention", s.testRestartRetention},
		{"Resolve", s.testResolve},
		{"Positioner", s.testPositioner},
		{"PositionerEvicted", s.testPositionerEvicted},
		{"PositionerTTL", s.testPositionerTTL},
		{"KeptSurvivesEviction", s.testKeptSurvivesEviction},
		{"KeptPerChannel", s.testKeptPerChannel},
		{"KeptChannels", s.testKeptChannels},
		{"KeptCursors", s.testKeptCursors},
		{"KeptFor", s.testKeptFor},
		{"KeptConcurrentAppends", s.testKeptConcurrentAppends},
		{"KeptRestart", s.testKeptRestart},
	}
	t.Run("contract", func(t *testing.T) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				tc.fn(t)
			})
		}
	})
}

type suite struct{ h Harness }

// open returns a new store from the harness, closed when t ends.
func (s *suite) open(t *testing.T, l Limits) store.Store {
	t.Helper()
	st := s.h.New(t, l)
	if st == nil {
		t.Fatal("storetest: Harness.New returned nil")
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// topic returns a topic name unique to the running subtest.
func topic(t *testing.T, name string) string {
	return "https://storetest.example/" + t.Name() + "/" + name
}

// MustAppend appends e to st and returns the appended event, failing t on
// error.
func MustAppend(t testing.TB, st store.Store, e store.Event) store.Event {
	t.Helper()
	got, err := st.Append(context.Background(), e)
	if err != nil {
		t.Fatalf("Append(%+v): %v", e, err)
	}
	return got
}

// appendSeq appends n events to topic tp one after the other.
func appendSeq(t *testing.T, st store.Store, tp string, n int) []store.Event {
	t.Helper()
	out := make([]store.Event, n)
	for i := range out {
		out[i] = MustAppend(t, st, store.Event{Topics: []string{tp}, Data: fmt.Sprintf("%s #%d", tp, i)})
	}
	return out
}

// appendConcurrent appends n events to topic tp from several goroutines
// and returns them in log order.
func appendConcurrent(t *testing.T, st store.Store, tp string, n, workers int) []store.Event {
	t.Helper()
	return AppendConcurrent(t, []store.Store{st}, []string{tp}, n, workers)
}

// AppendConcurrent appends n events to topics from workers goroutines,
// worker w through stores[w % len(stores)] (several stores on one log
// stand for several hub instances), and returns them in log order. It
// fails t on the first error.
func AppendConcurrent(t testing.TB, stores []store.Store, topics []string, n, workers int) []store.Event {
	t.Helper()
	out := make([]store.Event, n)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		st := stores[w%len(stores)]
		wg.Go(func() {
			for i := w; i < n; i += workers {
				e, err := st.Append(context.Background(), store.Event{Topics: topics, Data: fmt.Sprintf("%s #%d", topics[0], i)})
				if err != nil {
					errs <- err
					return
				}
				out[i] = e
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent Append: %v", err)
	}
	slices.SortFunc(out, func(a, b store.Event) int { return cmpPos(a.Pos, b.Pos) })
	return out
}

func cmpPos(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// collect runs a History to its end. It fails t if an element follows an
// error.
func collect(t testing.TB, seq iter.Seq2[store.Event, error]) ([]store.Event, error) {
	t.Helper()
	var evs []store.Event
	var last error
	for e, err := range seq {
		if last != nil {
			t.Fatalf("element (%+v, %v) after error %v", e, err, last)
		}
		if err != nil {
			last = err
			continue
		}
		evs = append(evs, e)
	}
	return evs, last
}

// History returns the complete, unfiltered history of st after cursor and
// the error that ended it, if any. It fails t if an element follows an
// error.
func History(t testing.TB, st store.Store, cursor string) ([]store.Event, error) {
	t.Helper()
	return collect(t, st.History(context.Background(), cursor, nil))
}

// history returns the complete history after cursor, failing t on error.
func history(t *testing.T, st store.Store, cursor string, f store.Filter) []store.Event {
	t.Helper()
	evs, err := collect(t, st.History(context.Background(), cursor, f))
	if err != nil {
		t.Fatalf("History(%q): %v", cursor, err)
	}
	return evs
}

// wantHistory checks that History(cursor) is exactly want.
func wantHistory(t *testing.T, st store.Store, cursor string, f store.Filter, want []store.Event) {
	t.Helper()
	sameEvents(t, fmt.Sprintf("History(%q)", cursor), history(t, st, cursor, f), want)
}

// wantError checks that seq yields only an error matching target.
func wantError(t *testing.T, what string, seq iter.Seq2[store.Event, error], target error) {
	t.Helper()
	evs, err := collect(t, seq)
	if len(evs) > 0 || !errors.Is(err, target) {
		t.Fatalf("%s yielded %d events then error %v; want only %v", what, len(evs), err, target)
	}
}

// wantFollowError checks that Follow(cursor) yields only an error matching
// target and ends.
func (s *suite) wantFollowError(t *testing.T, st store.Store, cursor string, target error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), s.h.Timeout)
	defer cancel()
	evs, err := collect(t, st.Follow(ctx, cursor))
	if ctx.Err() != nil {
		t.Fatalf("Follow(%q) did not end within %v; want only %v", cursor, s.h.Timeout, target)
	}
	if len(evs) > 0 || !errors.Is(err, target) {
		t.Fatalf("Follow(%q) yielded %d events then error %v; want only %v", cursor, len(evs), err, target)
	}
}

// sameEvent reports how got differs from want, or "".
func sameEvent(got, want store.Event) string {
	var d []string
	if got.ID != want.ID {
		d = append(d, fmt.Sprintf("ID %q, want %q", got.ID, want.ID))
	}
	if got.Pos != want.Pos {
		d = append(d, fmt.Sprintf("Pos %d, want %d", got.Pos, want.Pos))
	}
	if !slices.Equal(got.Topics, want.Topics) {
		d = append(d, fmt.Sprintf("Topics %q, want %q", got.Topics, want.Topics))
	}
	if got.Type != want.Type {
		d = append(d, fmt.Sprintf("Type %q, want %q", got.Type, want.Type))
	}
	if got.Data != want.Data {
		d = append(d, fmt.Sprintf("Data %.40q (len %d), want %.40q (len %d)", got.Data, len(got.Data), want.Data, len(want.Data)))
	}
	if got.Retry != want.Retry {
		d = append(d, fmt.Sprintf("Retry %v, want %v", got.Retry, want.Retry))
	}
	if got.Private != want.Private {
		d = append(d, fmt.Sprintf("Private %v, want %v", got.Private, want.Private))
	}
	if !got.Time.Equal(want.Time) {
		d = append(d, fmt.Sprintf("Time %v, want %v", got.Time, want.Time))
	}
	return strings.Join(d, "; ")
}

func sameEvents(t *testing.T, what string, got, want []store.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d events %v, want %d %v", what, len(got), positions(got), len(want), positions(want))
	}
	for i := range got {
		if d := sameEvent(got[i], want[i]); d != "" {
			t.Fatalf("%s: event %d: %s", what, i, d)
		}
	}
}

func positions(evs []store.Event) []uint64 {
	ps := make([]uint64, 0, min(len(evs), 20))
	for i, e := range evs {
		if i == 20 {
			break
		}
		ps = append(ps, e.Pos)
	}
	return ps
}

func hasTopic(tp string) store.Filter {
	return func(e *store.Event) bool { return slices.Contains(e.Topics, tp) }
}

// within runs f, which may call t.Fatal, on the test's goroutine. If f has
// not returned after the suite's timeout (a deadlock, an iterator that never
// ends), a watchdog panics with what was running: a hung store must fail the
// test run, not stall it.
func (s *suite) within(t *testing.T, what string, f func()) {
	t.Helper()
	name := t.Name()
	watchdog := time.AfterFunc(s.h.Timeout, func() {
		panic(fmt.Sprintf("storetest: %s: %s did not finish within %v", name, what, s.h.Timeout))
	})
	defer watchdog.Stop()
	f()
}

// Follower runs a Follow in a goroutine and delivers its events on a
// channel. Start one with [StartFollow].
type Follower struct {
	events chan store.Event
	err    error // the error element, if any; read after done is closed
	extra  bool  // an element came after the error
	done   chan struct{}
}

// StartFollow starts st.Follow(ctx, cursor) in a goroutine. The Follow
// ends when ctx is canceled, or on its own with an error.
func StartFollow(ctx context.Context, st store.Store, cursor string) *Follower {
	f := &Follower{events: make(chan store.Event), done: make(chan struct{})}
	go func() {
		defer close(f.done)
		for e, err := range st.Follow(ctx, cursor) {
			if f.err != nil {
				f.extra = true
				return
			}
			if err != nil {
				f.err = err
				continue
			}
			select {
			case f.events <- e:
			case <-ctx.Done():
				return
			}
		}
	}()
	return f
}

// Events delivers the Follow's events, unbuffered.
func (f *Follower) Events() <-chan store.Event { return f.events }

// Done is closed when the Follow has ended.
func (f *Follower) Done() <-chan struct{} { return f.done }

// Err returns the error the Follow ended with, or nil if it ended without
// one (its context was canceled). Call it after Done is closed.
func (f *Follower) Err() error { return f.err }

// Next returns the follower's next event, failing t if the Follow ends or
// none comes within timeout.
func (f *Follower) Next(t testing.TB, timeout time.Duration) store.Event {
	t.Helper()
	select {
	case e := <-f.events:
		return e
	case <-f.done:
		t.Fatalf("Follow ended (error %v) while an event was expected", f.err)
	case <-time.After(timeout):
		t.Fatalf("Follow delivered no event within %v", timeout)
	}
	return store.Event{}
}

// End waits up to timeout for the Follow to end and returns its error
// element. It fails t if the Follow yields an event instead, does not end
// in time, or yields an element after its error.
func (f *Follower) End(t testing.TB, timeout time.Duration) error {
	t.Helper()
	select {
	case <-f.done:
	case e := <-f.events:
		t.Fatalf("Follow yielded %+v while it was expected to end", e)
	case <-time.After(timeout):
		t.Fatalf("Follow did not end within %v", timeout)
	}
	if f.extra {
		t.Fatalf("Follow yielded an element after error %v", f.err)
	}
	return f.err
}

// next returns the follower's next event, failing t if none comes in time.
func (s *suite) next(t *testing.T, f *Follower) store.Event {
	t.Helper()
	return f.Next(t, s.h.Timeout)
}

// end waits for the follower to end and returns its error element.
func (s *suite) end(t *testing.T, f *Follower) error {
	t.Helper()
	return f.End(t, s.h.Timeout)
}

func (s *suite) testAppendAndHistory(t *testing.T) {
	st := s.open(t, Limits{})
	ta, tb := topic(t, "a"), topic(t, "b")
	in := []store.Event{
		{Topics: []string{ta}, Data: "hello"},
		{Topics: []string{ta, tb}, Type: "update", Data: "line1\nline2\r\nline3 ünïcødé", Retry: 1500 * time.Millisecond, Private: true},
		{Topics: []string{tb}, Data: ""},
		{Data: "no topic"},
		{Topics: []string{ta}, Type: "big", Data: strings.Repeat("0123456789abcdef", 4096)},
	}
	var out []store.Event
	seen := map[string]bool{}
	for i, e := range in {
		got := MustAppend(t, st, e)
		if got.ID == "" || seen[got.ID] {
			t.Fatalf("event %d: generated id %q empty or repeated", i, got.ID)
		}
		seen[got.ID] = true
		if !strings.HasPrefix(got.ID, store.IDPrefix) {
			t.Fatalf("event %d: generated id %q does not start with %q", i, got.ID, store.IDPrefix)
		}
		for _, c := range []byte(got.ID) {
			if c < 0x21 || c > 0x7e {
				t.Fatalf("event %d: generated id %q is not printable ASCII", i, got.ID)
			}
		}
		if i > 0 && got.Pos <= out[i-1].Pos {
			t.Fatalf("event %d: Pos %d not after previous %d", i, got.Pos, out[i-1].Pos)
		}
		if got.Time.IsZero() || i > 0 && got.Time.Before(out[i-1].Time) {
			t.Fatalf("event %d: Time %v zero or before the previous event's", i, got.Time)
		}
		want := e
		want.ID, want.Pos, want.Time = got.ID, got.Pos, got.Time
		if d := sameEvent(got, want); d != "" {
			t.Fatalf("Append returned event %d: %s", i, d)
		}
		out = append(out, got)
	}
	sameEvents(t, `History("")`, history(t, st, "", nil), out)

	head, err := st.Head(context.Background())
	if err != nil {
		t.Fatalf("Head: %v", err)
	}
	if head != out[len(out)-1].ID {
		t.Fatalf("Head = %q, want the last id %q", head, out[len(out)-1].ID)
	}
	wantHistory(t, st, head, nil, nil)

	// Modifying the caller's Topics after Append must not change the log.
	topics := []string{ta}
	e := MustAppend(t, st, store.Event{Topics: topics, Data: "aliased"})
	topics[0] = "changed"
	if h := history(t, st, out[len(out)-1].ID, nil); len(h) != 1 || h[0].Topics[0] != ta || e.Topics[0] != ta {
		t.Fatalf("the store kept the caller's Topics slice: history %+v", h)
	}
}

func (s *suite) testEmptyStore(t *testing.T) {
	st := s.open(t, Limits{})
	head, err := st.Head(context.Background())
	if err != nil || head != "" {
		t.Fatalf(`Head of an empty store = %q, %v; want "", nil`, head, err)
	}
	wantHistory(t, st, "", nil, nil)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := StartFollow(ctx, st, "")
	e := MustAppend(t, st, store.Event{Topics: []string{topic(t, "a")}, Data: "first"})
	if d := sameEvent(s.next(t, f), e); d != "" {
		t.Fatalf(`Follow("") on an empty store: %s`, d)
	}
}

func (s *suite) testExclusiveCursor(t *testing.T) {
	st := s.open(t, Limits{})
	evs := appendSeq(t, st, topic(t, "a"), 10)
	for k := range evs {
		wantHistory(t, st, evs[k].ID, nil, evs[k+1:])
	}
	wantHistory(t, st, "", nil, evs)
	head, err := st.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	wantHistory(t, st, head, nil, nil)
	e := MustAppend(t, st, store.Event{Topics: []string{topic(t, "a")}, Data: "after head"})
	wantHistory(t, st, head, nil, []store.Event{e})
}

func (s *suite) testTopicFilter(t *testing.T) {
	st := s.open(t, Limits{})
	ta, tb, tc := topic(t, "a"), topic(t, "b"), topic(t, "c")
	var all, withA, withB []store.Event
	for i := range 20 {
		var tps []string
		switch i % 3 {
		case 0:
			tps = []string{ta}
		case 1:
			tps = []string{tb}
		case 2:
			tps = []string{ta, tb}
		}
		e := MustAppend(t, st, store.Event{Topics: tps, Data: fmt.Sprint(i)})
		all = append(all, e)
		if slices.Contains(tps, ta) {
			withA = append(withA, e)
		}
		if slices.Contains(tps, tb) {
			withB = append(withB, e)
		}
	}
	wantHistory(t, st, "", hasTopic(ta), withA)
	wantHistory(t, st, "", hasTopic(tb), withB)
	wantHistory(t, st, "", hasTopic(tc), nil)
	wantHistory(t, st, "", nil, all)
	both := func(e *store.Event) bool { return slices.Contains(e.Topics, ta) || slices.Contains(e.Topics, tb) }
	wantHistory(t, st, "", both, all) // a multi-topic event comes once
	wantHistory(t, st, all[9].ID, hasTopic(ta), withA[slices.IndexFunc(withA, func(e store.Event) bool { return e.Pos > all[9].Pos }):])
	// The cursor need not match the filter.
	wantHistory(t, st, all[1].ID, hasTopic(ta), withA[1:])
}

func (s *suite) testUnknownCursor(t *testing.T) {
	st := s.open(t, Limits{})
	appendSeq(t, st, topic(t, "a"), 3)
	other := s.open(t, Limits{})
	foreign := appendSeq(t, other, topic(t, "other"), 5)
	head, err := st.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{
		"nope", "0", "-1", "1", "3", "#", "#1", head + "0", head + "x", "x" + head, "#" + head, " " + head,
		foreign[4].ID, foreign[0].ID, legacy(foreign[4].ID), strings.Repeat("x", store.MaxIDLen+1),
	} {
		if c == head {
			continue
		}
		wantError(t, fmt.Sprintf("History(%q)", c), st.History(context.Background(), c, nil), store.ErrUnknownID)
		s.wantFollowError(t, st, c, store.ErrUnknownID)
	}
}

func (s *suite) testInvalidEvent(t *testing.T) {
	st := s.open(t, Limits{})
	tp := topic(t, "a")
	for _, e := range []store.Event{
		{ID: "a\rb"}, {ID: "a\nb"}, {ID: "a\x00b"}, {ID: "\xff\xfe"},
		{ID: strings.Repeat("x", store.MaxIDLen+1)},
		{Type: "a\nb"}, {Type: "a\rb"}, {Type: "a\x00"},
		{Retry: -time.Second},
	} {
		e.Topics = []string{tp}
		if got, err := st.Append(context.Background(), e); !errors.Is(err, store.ErrInvalidEvent) {
			t.Fatalf("Append(ID %.20q, Type %q, Retry %v) = %+v, %v; want ErrInvalidEvent", e.ID, e.Type, e.Retry, got, err)
		}
	}
	if head, err := st.Head(context.Background()); err != nil || head != "" {
		t.Fatalf("Head after refused appends = %q, %v; want empty", head, err)
	}
	wantHistory(t, st, "", nil, nil)

	long := strings.Repeat("é", store.MaxIDLen/2) // exactly MaxIDLen bytes
	e := MustAppend(t, st, store.Event{ID: long, Topics: []string{tp}})
	next := MustAppend(t, st, store.Event{Topics: []string{tp}})
	if e.ID != long {
		t.Fatalf("custom id of MaxIDLen bytes came back as %.20q", e.ID)
	}
	wantHistory(t, st, long, nil, []store.Event{next})
}

func (s *suite) testCanceledContext(t *testing.T) {
	st := s.open(t, Limits{})
	tp := topic(t, "a")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := st.Append(ctx, store.Event{Topics: []string{tp}}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append with a canceled context: %v, want context.Canceled", err)
	}
	if head, err := st.Head(context.Background()); err != nil || head != "" {
		t.Fatalf("Head after a canceled Append = %q, %v; want empty", head, err)
	}
	evs := appendSeq(t, st, tp, 5)
	got, err := collect(t, st.History(ctx, "", nil))
	if err == nil {
		sameEvents(t, "History with a canceled context", got, evs)
	} else if !errors.Is(err, context.Canceled) {
		t.Fatalf("History with a canceled context ended with %v, want nil or context.Canceled", err)
	}
	var ferr error
	s.within(t, "Follow with a canceled context", func() {
		_, ferr = collect(t, st.Follow(ctx, ""))
	})
	if ferr != nil {
		t.Fatalf("Follow with a canceled context yielded error %v; it must stop without one", ferr)
	}
}

func (s *suite) testCustomIDs(t *testing.T) {
	st := s.open(t, Limits{})
	tp := topic(t, "a")
	before := MustAppend(t, st, store.Event{Topics: []string{tp}})
	c := MustAppend(t, st, store.Event{ID: "order-1", Topics: []string{tp}, Data: "custom"})
	if c.ID != "order-1" || c.Pos <= before.Pos {
		t.Fatalf("Append with a custom id returned ID %q Pos %d", c.ID, c.Pos)
	}
	after := appendSeq(t, st, tp, 2)
	wantHistory(t, st, "order-1", nil, after)
	wantHistory(t, st, "", nil, append([]store.Event{before, c}, after...))
	wantHistory(t, st, before.ID, nil, append([]store.Event{c}, after...))

	c2 := MustAppend(t, st, store.Event{ID: "order-2", Topics: []string{tp}})
	head, err := st.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if head == "order-2" || head == "" {
		t.Fatalf("Head after a custom-id event = %q; want a generated id", head)
	}
	wantHistory(t, st, head, nil, nil)
	e := MustAppend(t, st, store.Event{Topics: []string{tp}})
	wantHistory(t, st, head, nil, []store.Event{e})
	wantHistory(t, st, "order-2", nil, []store.Event{e})
	_ = c2

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := StartFollow(ctx, st, "order-1")
	for i, want := range append(append(after, c2), e) {
		if d := sameEvent(s.next(t, f), want); d != "" {
			t.Fatalf(`Follow("order-1") event %d: %s`, i, d)
		}
	}
}

func (s *suite) testCustomIDDuplicates(t *testing.T) {
	st := s.open(t, Limits{})
	tp := topic(t, "a")
	MustAppend(t, st, store.Event{ID: "dup", Topics: []string{tp}, Data: "first"})
	x := MustAppend(t, st, store.Event{Topics: []string{tp}})
	d2 := MustAppend(t, st, store.Event{ID: "dup", Topics: []string{tp}, Data: "second"})
	y := MustAppend(t, st, store.Event{Topics: []string{tp}})
	wantHistory(t, st, "dup", nil, []store.Event{x, d2, y})
	if d2.ID != "dup" {
		t.Fatalf("duplicate custom id came back as %q", d2.ID)
	}
}

// testCustomIDLikeGenerated checks that a custom id in the form of the
// store's generated ids, current or legacy, is refused, so that a generated
// id keeps meaning its own position.
func (s *suite) testCustomIDLikeGenerated(t *testing.T) {
	st := s.open(t, Limits{})
	tp := topic(t, "a")
	evs := appendSeq(t, st, tp, 3)
	for _, id := range []string{evs[0].ID, evs[2].ID, legacy(evs[0].ID), legacy(evs[2].ID)} {
		if e, err := st.Append(context.Background(), store.Event{ID: id, Topics: []string{tp}}); !errors.Is(err, store.ErrInvalidEvent) {
			t.Fatalf("Append with custom id %q (a generated id) = %+v, %v; want ErrInvalidEvent", id, e, err)
		}
	}
	wantHistory(t, st, evs[0].ID, nil, evs[1:])
	wantHistory(t, st, evs[2].ID, nil, nil)
}

// legacy returns a generated id in the legacy form: without its "#".
func legacy(id string) string { return strings.TrimPrefix(id, store.IDPrefix) }

// testGeneratedIDLegacyForm checks that a generated id without its "#" (the
// form stores generated before) is a cursor for the same position as the
// id: History, Follow, Resolve and Lookup answer it as the id itself.
func (s *suite) testGeneratedIDLegacyForm(t *testing.T) {
	st := s.open(t, Limits{})
	ctx := context.Background()
	done, cancel := context.WithCancel(ctx)
	cancel()
	tp := topic(t, "a")
	evs := appendSeq(t, st, tp, 3)
	evs = append(evs, MustAppend(t, st, store.Event{ID: "custom", Topics: []string{tp}}))
	evs = append(evs, appendSeq(t, st, tp, 2)...)
	head, err := st.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := st.(store.Resolver)
	p, _ := st.(store.Positioner)
	for i, e := range evs {
		id := e.ID
		if e.ID == "custom" {
			if p == nil {
				continue
			}
			id = p.PositionID(&e)
		}
		old := legacy(id)
		if old == id {
			t.Fatalf("generated id %q does not start with %q", id, store.IDPrefix)
		}
		wantHistory(t, st, old, nil, evs[i+1:])
		wantHistory(t, st, old, hasTopic(tp), evs[i+1:])
		if r != nil {
			if pos, err := r.Resolve(ctx, old); err != nil || pos != e.Pos {
				t.Fatalf("Resolve(legacy %q) = %d, %v; want %d", old, pos, err, e.Pos)
			}
		}
		if p != nil {
			if _, ok, err := p.Lookup(done, old); ok || err != nil {
				t.Fatalf("Lookup(legacy generated id %q) with a done context = %v, %v; want false, nil without I/O", old, ok, err)
			}
		}
	}
	wantHistory(t, st, legacy(head), nil, nil)

	fctx, stop := context.WithCancel(ctx)
	defer stop()
	f := StartFollow(fctx, st, legacy(evs[1].ID))
	for i, want := range evs[2:] {
		if d := sameEvent(s.next(t, f), want); d != "" {
			t.Fatalf("Follow(legacy %q) event %d: %s", legacy(evs[1].ID), i, d)
		}
	}
	live := MustAppend(t, st, store.Event{Topics: []string{tp}, Data: "live"})
	if d := sameEvent(s.next(t, f), live); d != "" {
		t.Fatalf("Follow(legacy %q) live event: %s", legacy(evs[1].ID), d)
	}
	wantHistory(t, st, legacy(head), nil, []store.Event{live})
}

// testGeneratedIDLegacyFormExpired checks that the legacy form of an
// evicted id is expired as the id is, and that of the newest evicted event
// still a cursor.
func (s *suite) testGeneratedIDLegacyFormExpired(t *testing.T) {
	tp := topic(t, "a")
	if s.h.ApproximateCount {
		st := s.open(t, Limits{MaxEvents: 10})
		evs := appendConcurrent(t, st, tp, 1000, 8)
		wantError(t, "History(legacy form of an evicted id)", st.History(context.Background(), legacy(evs[0].ID), nil), store.ErrExpired)
		s.wantFollowError(t, st, legacy(evs[0].ID), store.ErrExpired)
		return
	}
	st := s.open(t, Limits{MaxEvents: 3})
	evs := appendSeq(t, st, tp, 6)
	wantError(t, "History(legacy form of an evicted id)", st.History(context.Background(), legacy(evs[1].ID), nil), store.ErrExpired)
	s.wantFollowError(t, st, legacy(evs[1].ID), store.ErrExpired)
	wantHistory(t, st, legacy(evs[2].ID), nil, evs[3:]) // the newest evicted: nothing after it is missing
}

func (s *suite) testCustomIDEvicted(t *testing.T) {
	if s.h.ApproximateCount {
		t.Skip("count retention is approximate: which duplicate is evicted is not exact")
	}
	st := s.open(t, Limits{MaxEvents: 3})
	tp := topic(t, "a")
	MustAppend(t, st, store.Event{ID: "dup", Topics: []string{tp}})
	a := MustAppend(t, st, store.Event{Topics: []string{tp}})
	d3 := MustAppend(t, st, store.Event{ID: "dup", Topics: []string{tp}})
	wantHistory(t, st, "dup", nil, []store.Event{a, d3})
	b := MustAppend(t, st, store.Event{Topics: []string{tp}}) // evicts the first "dup"
	wantHistory(t, st, "", nil, []store.Event{a, d3, b})
	wantHistory(t, st, "dup", nil, []store.Event{b}) // the next occurrence took over
	appendSeq(t, st, tp, 2)                          // evicts the last "dup"
	evs, err := collect(t, st.History(context.Background(), "dup", nil))
	if len(evs) > 0 || !errors.Is(err, store.ErrUnknownID) && !errors.Is(err, store.ErrExpired) {
		t.Fatalf(`History("dup") after every "dup" was evicted: %d events, %v; want ErrUnknownID or ErrExpired`, len(evs), err)
	}
}

func (s *suite) testRetentionCount(t *testing.T) {
	tp := topic(t, "a")
	if s.h.ApproximateCount {
		st := s.open(t, Limits{MaxEvents: 10})
		evs := appendConcurrent(t, st, tp, 1000, 8)
		s.checkTrimmed(t, st, evs)
		return
	}
	st := s.open(t, Limits{MaxEvents: 5})
	evs := appendSeq(t, st, tp, 12)
	wantHistory(t, st, "", nil, evs[7:])
	wantHistory(t, st, "", hasTopic(tp), evs[7:])
	for _, e := range evs[:6] {
		wantError(t, fmt.Sprintf("History(evicted %q)", e.ID), st.History(context.Background(), e.ID, nil), store.ErrExpired)
	}
	s.wantFollowError(t, st, evs[0].ID, store.ErrExpired)
	// The newest evicted id may still be served (nothing after it is
	// missing) or be expired; it must not yield a partial history.
	if got, err := collect(t, st.History(context.Background(), evs[6].ID, nil)); err != nil {
		if len(got) > 0 || !errors.Is(err, store.ErrExpired) {
			t.Fatalf("History(newest evicted id): %d events then %v", len(got), err)
		}
	} else {
		sameEvents(t, "History(newest evicted id)", got, evs[7:])
	}
	for k := 7; k < 12; k++ {
		wantHistory(t, st, evs[k].ID, nil, evs[k+1:])
	}
	head, err := st.Head(context.Background())
	if err != nil || head != evs[11].ID {
		t.Fatalf("Head = %q, %v; want %q", head, err, evs[11].ID)
	}
}

// checkTrimmed checks approximate retention: the history is a strict,
// contiguous suffix of evs and the first event's id has expired.
func (s *suite) checkTrimmed(t *testing.T, st store.Store, evs []store.Event) {
	t.Helper()
	got := history(t, st, "", nil)
	if len(got) == 0 || len(got) >= len(evs) {
		t.Fatalf("retention kept %d of %d events; want some trimmed and the newest kept", len(got), len(evs))
	}
	sameEvents(t, "retained history", got, evs[len(evs)-len(got):])
	wantError(t, "History(first, evicted id)", st.History(context.Background(), evs[0].ID, nil), store.ErrExpired)
	s.wantFollowError(t, st, evs[0].ID, store.ErrExpired)
}

func (s *suite) testRetentionBytes(t *testing.T) {
	tp := topic(t, "a")
	data := strings.Repeat("x", 100)
	probe := store.Event{ID: strings.Repeat("i", 20), Topics: []string{tp}, Data: data}
	maxBytes := int64(10 * store.EventSize(&probe))
	st := s.open(t, Limits{MaxBytes: maxBytes})
	n := 60
	if s.h.ApproximateBytes {
		n = 1000
	}
	evs := make([]store.Event, n)
	for i := range evs {
		evs[i] = MustAppend(t, st, store.Event{Topics: []string{tp}, Data: data})
	}
	if s.h.ApproximateBytes {
		s.checkTrimmed(t, st, evs)
		return
	}
	// Exact: the longest suffix whose sizes fit in maxBytes.
	k, sum := n, int64(0)
	for k > 0 && sum+int64(store.EventSize(&evs[k-1])) <= maxBytes {
		k--
		sum += int64(store.EventSize(&evs[k]))
	}
	wantHistory(t, st, "", nil, evs[k:])
	wantError(t, "History(evicted id)", st.History(context.Background(), evs[0].ID, nil), store.ErrExpired)
}

func (s *suite) testRetentionTTL(t *testing.T) {
	t0 := time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC)
	clk := NewClock(t0)
	st := s.open(t, Limits{TTL: time.Minute, Now: clk.Now})
	tp := topic(t, "a")
	e1 := MustAppend(t, st, store.Event{Topics: []string{tp}, Data: "1"})
	e2 := MustAppend(t, st, store.Event{Topics: []string{tp}, Data: "2"})
	if !e1.Time.Equal(t0) {
		t.Fatalf("Event.Time = %v; want the injected clock's %v", e1.Time, t0)
	}
	clk.Advance(30 * time.Second)
	e3 := MustAppend(t, st, store.Event{Topics: []string{tp}, Data: "3"})
	wantHistory(t, st, "", nil, []store.Event{e1, e2, e3})

	clk.Advance(31 * time.Second) // e1 and e2 are 61s old, e3 31s
	wantHistory(t, st, "", nil, []store.Event{e3})
	wantError(t, "History(expired id)", st.History(context.Background(), e1.ID, nil), store.ErrExpired)
	s.wantFollowError(t, st, e1.ID, store.ErrExpired)
	if got, err := collect(t, st.History(context.Background(), e2.ID, nil)); err != nil {
		if len(got) > 0 || !errors.Is(err, store.ErrExpired) {
			t.Fatalf("History(newest expired id): %d events then %v", len(got), err)
		}
	} else {
		sameEvents(t, "History(newest expired id)", got, []store.Event{e3})
	}
	wantHistory(t, st, e3.ID, nil, nil)

	clk.Advance(31 * time.Second) // everything has expired, with no append since
	wantHistory(t, st, "", nil, nil)
	head, err := st.Head(context.Background())
	if err != nil || head != e3.ID {
		t.Fatalf("Head once every event expired = %q, %v; want the last id %q", head, err, e3.ID)
	}
	wantHistory(t, st, head, nil, nil) // Head stays a valid cursor
	e4 := MustAppend(t, st, store.Event{Topics: []string{tp}, Data: "4"})
	wantHistory(t, st, head, nil, []store.Event{e4})
	wantHistory(t, st, "", nil, []store.Event{e4})
	wantError(t, "History(expired id)", st.History(context.Background(), e2.ID, nil), store.ErrExpired)
}

func (s *suite) testConcurrentAppends(t *testing.T) {
	st := s.open(t, Limits{})
	tp := topic(t, "a")
	const workers, per = 8, 100
	res := make([][]store.Event, workers)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				e, err := st.Append(context.Background(), store.Event{Topics: []string{tp}, Data: fmt.Sprintf("w%d-%d", w, i)})
				if err != nil {
					errs <- err
					return
				}
				res[w] = append(res[w], e)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Append: %v", err)
	}
	byID := map[string]store.Event{}
	byPos := map[uint64]bool{}
	for w := range res {
		for i, e := range res[w] {
			if _, dup := byID[e.ID]; dup || byPos[e.Pos] {
				t.Fatalf("id %q or Pos %d returned twice", e.ID, e.Pos)
			}
			byID[e.ID], byPos[e.Pos] = e, true
			if i > 0 && e.Pos <= res[w][i-1].Pos {
				t.Fatalf("worker %d: append %d got Pos %d, not after its previous %d", w, i, e.Pos, res[w][i-1].Pos)
			}
		}
	}
	got := history(t, st, "", nil)
	if len(got) != workers*per {
		t.Fatalf("History has %d events, want %d", len(got), workers*per)
	}
	for i, e := range got {
		if i > 0 && e.Pos <= got[i-1].Pos {
			t.Fatalf("History not in order: Pos %d after %d", e.Pos, got[i-1].Pos)
		}
		if d := sameEvent(e, byID[e.ID]); d != "" {
			t.Fatalf("History event %d differs from what Append returned: %s", i, d)
		}
	}
}

func (s *suite) testFollowLive(t *testing.T) {
	st := s.open(t, Limits{})
	tp := topic(t, "a")
	pre := appendSeq(t, st, tp, 3)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := StartFollow(ctx, st, pre[0].ID)
	for _, want := range pre[1:] {
		if d := sameEvent(s.next(t, f), want); d != "" {
			t.Fatalf("Follow history: %s", d)
		}
	}
	for i := range 20 {
		want := MustAppend(t, st, store.Event{Topics: []string{tp}, Data: fmt.Sprint(i)})
		if d := sameEvent(s.next(t, f), want); d != "" {
			t.Fatalf("Follow live event %d: %s", i, d)
		}
	}
}

func (s *suite) testFollowRacingAppends(t *testing.T) {
	st := s.open(t, Limits{})
	tp := topic(t, "a")
	pre := appendConcurrent(t, st, tp, 100, 4)
	const workers, per = 4, 250
	want := len(pre) - 50 + workers*per

	ctx, cancel := context.WithTimeout(context.Background(), s.h.Timeout)
	defer cancel()
	start := make(chan struct{})
	var got []store.Event
	var ferr error
	followed := make(chan struct{})
	go func() {
		defer close(followed)
		<-start
		for e, err := range st.Follow(ctx, pre[49].ID) {
			if err != nil {
				ferr = err
				return
			}
			got = append(got, e)
			if len(got) == want {
				return
			}
		}
	}()
	appended := make([][]store.Event, workers)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := range per {
				e, err := st.Append(context.Background(), store.Event{Topics: []string{tp}, Data: fmt.Sprintf("w%d-%d", w, i)})
				if err != nil {
					errs <- err
					return
				}
				appended[w] = append(appended[w], e)
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Append: %v", err)
	}
	<-followed
	if ferr != nil || len(got) != want {
		t.Fatalf("Follow got %d of %d events (error %v, context %v)", len(got), want, ferr, ctx.Err())
	}
	expect := map[string]store.Event{}
	for _, e := range pre[50:] {
		expect[e.ID] = e
	}
	for _, es := range appended {
		for _, e := range es {
			expect[e.ID] = e
		}
	}
	for i, e := range got {
		if i > 0 && e.Pos <= got[i-1].Pos {
			t.Fatalf("Follow out of order or duplicated: Pos %d after %d", e.Pos, got[i-1].Pos)
		}
		w, ok := expect[e.ID]
		if !ok {
			t.Fatalf("Follow yielded %q, which is not after the cursor or was never appended", e.ID)
		}
		if d := sameEvent(e, w); d != "" {
			t.Fatalf("Follow event %d: %s", i, d)
		}
		delete(expect, e.ID)
	}
	if len(expect) != 0 {
		t.Fatalf("Follow missed %d events", len(expect))
	}
}

func (s *suite) testFollowFallsBehind(t *testing.T) {
	st := s.open(t, Limits{MaxEvents: 10})
	tp := topic(t, "a")
	all := appendSeq(t, st, tp, 5)
	burst := 300
	if s.h.ApproximateCount {
		burst = 2000
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.h.Timeout)
	defer cancel()
	var got []store.Event
	var ferr error
	s.within(t, "a Follow that fell behind retention", func() {
		for e, err := range st.Follow(ctx, "") {
			if ferr != nil {
				t.Errorf("Follow yielded an element after error %v", ferr)
				return
			}
			if err != nil {
				ferr = err
				continue
			}
			got = append(got, e)
			if len(got) == 1 {
				// Fall behind: the events after this one are evicted.
				all = append(all, appendConcurrent(t, st, tp, burst, 8)...)
			}
			if e.ID == all[len(all)-1].ID {
				return
			}
		}
	})
	if t.Failed() {
		return
	}
	if !errors.Is(ferr, store.ErrExpired) {
		t.Fatalf("a Follow that fell behind retention got %d events and error %v; want ErrExpired", len(got), ferr)
	}
	sameEvents(t, "events before ErrExpired", got, all[:len(got)])
}

func (s *suite) testFollowCancel(t *testing.T) {
	st := s.open(t, Limits{})
	pre := appendSeq(t, st, topic(t, "a"), 3)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := StartFollow(ctx, st, "")
	for range pre {
		s.next(t, f)
	}
	cancel()
	if err := s.end(t, f); err != nil {
		t.Fatalf("Follow ended with %v after its context was canceled; want no error", err)
	}
}

func (s *suite) testFollowClose(t *testing.T) {
	st := s.open(t, Limits{})
	tp := topic(t, "a")
	pre := appendSeq(t, st, tp, 3)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := StartFollow(ctx, st, "")
	for range pre {
		s.next(t, f)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.end(t, f); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Follow ended with %v when the store was closed; want ErrClosed", err)
	}

	if _, err := st.Append(context.Background(), store.Event{Topics: []string{tp}}); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Append after Close: %v, want ErrClosed", err)
	}
	if _, err := st.Head(context.Background()); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Head after Close: %v, want ErrClosed", err)
	}
	wantError(t, "History after Close", st.History(context.Background(), "", nil), store.ErrClosed)
	wantError(t, "History(id) after Close", st.History(context.Background(), pre[0].ID, nil), store.ErrClosed)
	s.wantFollowError(t, st, "", store.ErrClosed)
	if err := st.Close(); err != nil && !errors.Is(err, store.ErrClosed) {
		t.Fatalf("second Close: %v, want nil or ErrClosed", err)
	}
}

func (s *suite) testStopEarly(t *testing.T) {
	st := s.open(t, Limits{})
	tp := topic(t, "a")
	evs := appendConcurrent(t, st, tp, 600, 8)
	var got []store.Event
	s.within(t, "History stopped early", func() {
		for e, err := range st.History(context.Background(), "", nil) {
			if err != nil {
				t.Errorf("History: %v", err)
				return
			}
			if got = append(got, e); len(got) == 3 {
				break
			}
		}
	})
	sameEvents(t, "History stopped after 3", got, evs[:3])

	got = got[:0]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.within(t, "Follow stopped early", func() {
		for e, err := range st.Follow(ctx, evs[100].ID) {
			if err != nil {
				t.Errorf("Follow: %v", err)
				return
			}
			if got = append(got, e); len(got) == 3 {
				break
			}
		}
	})
	sameEvents(t, "Follow stopped after 3", got, evs[101:104])

	// Nothing stays locked or blocked by the abandoned iterators.
	s.within(t, "Append after iterators stopped early", func() {
		e := MustAppend(t, st, store.Event{Topics: []string{tp}})
		wantHistory(t, st, evs[len(evs)-1].ID, nil, []store.Event{e})
	})
}

func (s *suite) testAppendWhileIterating(t *testing.T) {
	st := s.open(t, Limits{})
	tp := topic(t, "a")
	evs := appendSeq(t, st, tp, 10)
	s.within(t, "Append inside a History loop", func() {
		var got []store.Event
		for e, err := range st.History(context.Background(), "", nil) {
			if err != nil {
				t.Errorf("History: %v", err)
				return
			}
			if len(got) < 2 {
				MustAppend(t, st, store.Event{Topics: []string{tp}, Data: "during history"})
			}
			got = append(got, e)
		}
		if len(got) < len(evs) {
			t.Errorf("History yielded %d events, want at least %d", len(got), len(evs))
			return
		}
		sameEvents(t, "History with appends in its loop", got[:len(evs)], evs)
	})
	ctx, cancel := context.WithTimeout(context.Background(), s.h.Timeout)
	defer cancel()
	s.within(t, "Append inside a Follow loop", func() {
		var added store.Event
		for e, err := range st.Follow(ctx, evs[len(evs)-2].ID) {
			if err != nil {
				t.Errorf("Follow: %v", err)
				return
			}
			if added.ID == "" {
				added = MustAppend(t, st, store.Event{Topics: []string{tp}, Data: "during follow"})
			}
			if e.ID == added.ID {
				return
			}
		}
		t.Errorf("Follow ended (context: %v) without yielding the event appended in its loop", ctx.Err())
	})
}

func (s *suite) testRestart(t *testing.T) {
	if s.h.Reopen == nil {
		t.Skip("Harness.Reopen is nil: not a durable store")
	}
	st := s.open(t, Limits{})
	tp := topic(t, "a")
	var evs []store.Event
	for i := range 10 {
		e := store.Event{Topics: []string{tp}, Data: fmt.Sprint(i), Type: "t", Retry: time.Duration(i) * time.Second, Private: i%2 == 0}
		if i == 3 {
			e.ID = "restart-custom"
		}
		evs = append(evs, MustAppend(t, st, e))
	}
	head, err := st.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	st2 := s.h.Reopen(t, st, Limits{})
	if st2 == nil {
		t.Fatal("Reopen returned nil")
	}
	t.Cleanup(func() { _ = st2.Close() })

	wantHistory(t, st2, "", nil, evs)
	if h2, err := st2.Head(context.Background()); err != nil || h2 != head {
		t.Fatalf("Head after restart = %q, %v; want %q", h2, err, head)
	}
	wantHistory(t, st2, evs[4].ID, nil, evs[5:])
	wantHistory(t, st2, legacy(evs[4].ID), nil, evs[5:])
	wantHistory(t, st2, "restart-custom", nil, evs[4:])
	e := MustAppend(t, st2, store.Event{Topics: []string{tp}, Data: "after restart"})
	if e.Pos <= evs[9].Pos {
		t.Fatalf("Pos after restart %d, not after %d", e.Pos, evs[9].Pos)
	}
	for _, old := range evs {
		if old.ID == e.ID {
			t.Fatalf("id %q issued again after restart", e.ID)
		}
	}
	wantHistory(t, st2, head, nil, []store.Event{e})
	wantHistory(t, st2, "", hasTopic(tp), append(evs, e))
}

func (s *suite) testRestartRetention(t *testing.T) {
	if s.h.Reopen == nil {
		t.Skip("Harness.Reopen is nil: not a durable store")
	}
	tp := topic(t, "a")
	st := s.open(t, Limits{})
	evs := appendConcurrent(t, st, tp, 200, 8)
	// Reopen with a smaller retention: the store trims what it keeps.
	st2 := s.h.Reopen(t, st, Limits{MaxEvents: 20})
	if st2 == nil {
		t.Fatal("Reopen returned nil")
	}
	t.Cleanup(func() { _ = st2.Close() })
	evs = append(evs, appendSeq(t, st2, tp, 5)...)
	if s.h.ApproximateCount {
		s.checkTrimmed(t, st2, evs)
		return
	}
	wantHistory(t, st2, "", nil, evs[len(evs)-20:])
	wantError(t, "History(evicted id) after restart", st2.History(context.Background(), evs[0].ID, nil), store.ErrExpired)
}

// testResolve checks store.Resolver, for stores that implement it: a
// cursor resolves to the position History starts after.
func (s *suite) testResolve(t *testing.T) {
	st := s.open(t, Limits{})
	r, ok := st.(store.Resolver)
	if !ok {
		t.Skip("the store does not implement store.Resolver")
	}
	ctx := context.Background()
	tp := topic(t, "a")
	evs := appendSeq(t, st, tp, 3)
	first := MustAppend(t, st, store.Event{ID: "dup", Topics: []string{tp}})
	evs = append(evs, first, MustAppend(t, st, store.Event{ID: "single", Topics: []string{tp}}))
	evs = append(evs, appendSeq(t, st, tp, 2)...)
	evs = append(evs, MustAppend(t, st, store.Event{ID: "dup", Topics: []string{tp}}))
	evs = append(evs, appendSeq(t, st, tp, 1)...)
	head, err := st.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range append([]string{head}, IDs(evs)...) {
		pos, err := r.Resolve(ctx, c)
		if err != nil {
			t.Fatalf("Resolve(%q): %v", c, err)
		}
		want := evs[len(evs)-1].Pos // head
		for _, e := range evs {
			if e.ID == c {
				want = e.Pos // the first occurrence
				break
			}
		}
		if pos != want {
			t.Fatalf("Resolve(%q) = %d, want %d", c, pos, want)
		}
		// History yields exactly the events after that position.
		var after []store.Event
		for _, e := range evs {
			if e.Pos > pos {
				after = append(after, e)
			}
		}
		wantHistory(t, st, c, nil, after)
	}
	if pos, err := r.Resolve(ctx, ""); err != nil || pos >= evs[0].Pos {
		t.Fatalf(`Resolve("") = %d, %v; want a position below %d`, pos, err, evs[0].Pos)
	}

	other := s.open(t, Limits{})
	foreign := appendSeq(t, other, topic(t, "other"), 5)
	for _, c := range []string{"nope", "0", head + "0", head + "x", foreign[4].ID, foreign[0].ID} {
		if _, err := r.Resolve(ctx, c); !errors.Is(err, store.ErrUnknownID) {
			t.Fatalf("Resolve(%q): %v, want ErrUnknownID", c, err)
		}
	}

	// An id older than retention is expired, as for History.
	var old []store.Event
	if s.h.ApproximateCount {
		small := s.open(t, Limits{MaxEvents: 10})
		old = appendConcurrent(t, small, tp, 1000, 8)
		r = small.(store.Resolver)
		st = small
	} else {
		small := s.open(t, Limits{MaxEvents: 3})
		old = appendSeq(t, small, tp, 6)
		r = small.(store.Resolver)
		st = small
	}
	if _, err := r.Resolve(ctx, old[0].ID); !errors.Is(err, store.ErrExpired) {
		t.Fatalf("Resolve(expired %q): %v, want ErrExpired", old[0].ID, err)
	}
	last := old[len(old)-1]
	if pos, err := r.Resolve(ctx, last.ID); err != nil || pos != last.Pos {
		t.Fatalf("Resolve(%q) = %d, %v; want %d", last.ID, pos, err, last.Pos)
	}

	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Resolve(ctx, last.ID); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Resolve after Close: %v, want ErrClosed", err)
	}
}

// positioner returns st as a store.Positioner, or skips t.
func positioner(t *testing.T, st store.Store) store.Positioner {
	t.Helper()
	p, ok := st.(store.Positioner)
	if !ok {
		t.Skip("the store does not implement store.Positioner")
	}
	return p
}

// wantLookup checks that Lookup(id) finds want.
func wantLookup(t *testing.T, p store.Positioner, id string, want store.Event) {
	t.Helper()
	got, ok, err := p.Lookup(context.Background(), id)
	if err != nil || !ok {
		t.Fatalf("Lookup(%q) = %v, %v; want the event at %d", id, ok, err, want.Pos)
	}
	if d := sameEvent(got, want); d != "" {
		t.Fatalf("Lookup(%q): %s", id, d)
	}
}

// wantLookupUnknown checks that Lookup(id) is ErrUnknownID.
func wantLookupUnknown(t *testing.T, p store.Positioner, id string) {
	t.Helper()
	if e, ok, err := p.Lookup(context.Background(), id); ok || !errors.Is(err, store.ErrUnknownID) {
		t.Fatalf("Lookup(%q) = %v (Pos %d), %v; want ErrUnknownID", id, ok, e.Pos, err)
	}
}

// testPositioner checks store.Positioner, for stores that implement it:
// PositionID names the position of any event, as Append, History and Follow
// return it, with a generated id that is a cursor for the events after it;
// Lookup finds the event a custom id names (its first occurrence, the one
// History starts after), answers generated ids without I/O, and unknown
// ids with ErrUnknownID.
func (s *suite) testPositioner(t *testing.T) {
	st := s.open(t, Limits{})
	p := positioner(t, st)
	ctx := context.Background()
	done, cancel := context.WithCancel(ctx)
	cancel()
	tp := topic(t, "a")
	var evs []store.Event
	add := func(e store.Event) store.Event {
		e.Topics = []string{tp}
		got := MustAppend(t, st, e)
		evs = append(evs, got)
		return got
	}
	add(store.Event{Data: "g1"})
	d1 := add(store.Event{ID: "dup", Type: "secret", Data: "d1", Private: true})
	add(store.Event{Data: "g2"})
	solo := add(store.Event{ID: "solo", Data: "solo", Retry: time.Second})
	add(store.Event{ID: "dup", Data: "d2"})
	add(store.Event{Data: "g3"})

	replayed := history(t, st, "", nil)
	sameEvents(t, `History("")`, replayed, evs)
	fctx, stop := context.WithCancel(ctx)
	defer stop()
	f := StartFollow(fctx, st, "")
	for i, e := range evs {
		id := p.PositionID(&e)
		custom := e.ID == "dup" || e.ID == "solo"
		if !strings.HasPrefix(id, store.IDPrefix) || custom && id == e.ID || !custom && id != e.ID {
			t.Fatalf("PositionID of the event %d with id %q = %q; want its generated id", e.Pos, e.ID, id)
		}
		followed := s.next(t, f)
		bare := store.Event{Pos: e.Pos, Time: e.Time}
		for what, x := range map[string]*store.Event{"History": &replayed[i], "Follow": &followed, "Pos and Time only": &bare} {
			if got := p.PositionID(x); got != id {
				t.Fatalf("PositionID of event %d from %s = %q; from Append %q", e.Pos, what, got, id)
			}
		}
		wantHistory(t, st, id, nil, evs[i+1:])
		if _, ok, err := p.Lookup(done, id); ok || err != nil {
			t.Fatalf("Lookup(generated id %q) with a done context = %v, %v; want false, nil without I/O", id, ok, err)
		}
	}
	if _, ok, err := p.Lookup(done, ""); ok || err != nil {
		t.Fatalf(`Lookup("") = %v, %v; want false, nil`, ok, err)
	}
	wantLookup(t, p, "dup", d1)
	wantLookup(t, p, "solo", solo)
	for _, id := range []string{"dup", "solo"} {
		got, _, _ := p.Lookup(ctx, id)
		wantHistory(t, st, p.PositionID(&got), nil, history(t, st, id, nil))
	}

	other := s.open(t, Limits{})
	foreign := appendSeq(t, other, topic(t, "other"), 2)
	for _, id := range []string{"nope", "Dup", "dup ", foreign[0].ID, foreign[1].ID} {
		wantLookupUnknown(t, p, id)
	}

	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.Lookup(ctx, "dup"); !errors.Is(err, store.ErrClosed) {
		t.Fatalf(`Lookup("dup") after Close: %v, want ErrClosed`, err)
	}
}

// testPositionerEvicted checks that Lookup follows retention as History
// does, except that an id whose every occurrence was evicted is
// ErrUnknownID, never ErrExpired.
func (s *suite) testPositionerEvicted(t *testing.T) {
	tp := topic(t, "a")
	if s.h.ApproximateCount {
		st := s.open(t, Limits{MaxEvents: 10})
		p := positioner(t, st)
		MustAppend(t, st, store.Event{ID: "gone", Topics: []string{tp}, Private: true})
		appendConcurrent(t, st, tp, 1000, 8)
		if evs, err := History(t, st, "gone"); err == nil {
			t.Fatalf(`History("gone") after 1000 events with MaxEvents 10: %d events, no error`, len(evs))
		}
		wantLookupUnknown(t, p, "gone")
		return
	}
	st := s.open(t, Limits{MaxEvents: 3})
	p := positioner(t, st)
	MustAppend(t, st, store.Event{ID: "dup", Topics: []string{tp}, Private: true})
	MustAppend(t, st, store.Event{Topics: []string{tp}})
	d2 := MustAppend(t, st, store.Event{ID: "dup", Topics: []string{tp}, Data: "second"})
	MustAppend(t, st, store.Event{Topics: []string{tp}}) // evicts the first "dup"
	wantLookup(t, p, "dup", d2)
	appendSeq(t, st, tp, 2) // evicts the last "dup"
	wantLookupUnknown(t, p, "dup")
}

// testPositionerTTL checks that Lookup skips the occurrences of a custom id
// older than the TTL, as History does.
func (s *suite) testPositionerTTL(t *testing.T) {
	clk := NewClock(time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC))
	st := s.open(t, Limits{TTL: time.Minute, Now: clk.Now})
	p := positioner(t, st)
	tp := topic(t, "a")
	old := MustAppend(t, st, store.Event{ID: "aged", Topics: []string{tp}, Data: "old", Private: true})
	clk.Advance(30 * time.Second)
	young := MustAppend(t, st, store.Event{ID: "aged", Topics: []string{tp}, Data: "young"})
	wantLookup(t, p, "aged", old)
	clk.Advance(31 * time.Second) // old is 61s old, young 31s
	wantLookup(t, p, "aged", young)
	wantHistory(t, st, "aged", nil, nil)
	clk.Advance(31 * time.Second)
	wantLookupUnknown(t, p, "aged")
}

// IDs returns the ids of evs.
func IDs(evs []store.Event) []string {
	ids := make([]string, len(evs))
	for i, e := range evs {
		ids[i] = e.ID
	}
	return ids
}
