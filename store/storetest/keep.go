package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/store"
)

// This file is the contract of store.Keeper: the events of channels are
// kept apart from the log's retention.

// keeper returns st as a store.Keeper, or skips the test.
func keeper(t *testing.T, st store.Store) store.Keeper {
	t.Helper()
	k, ok := st.(store.Keeper)
	if !ok {
		t.Skip("the store does not implement store.Keeper")
	}
	return k
}

// channel returns a channel name unique to the running subtest.
func channel(t *testing.T, name string) string {
	return store.ChannelPrefix + "storetest:" + t.Name() + "/" + name
}

// KeptEvents returns what k keeps of channel after cursor, and the error
// that ended it.
func KeptEvents(t testing.TB, k store.Keeper, channel, cursor string) ([]store.Event, error) {
	t.Helper()
	return collect(t, k.Kept(context.Background(), channel, cursor))
}

func wantKept(t *testing.T, k store.Keeper, channel, cursor string, want []store.Event) {
	t.Helper()
	got, err := KeptEvents(t, k, channel, cursor)
	if err != nil {
		t.Fatalf("Kept(%q, %q): %v after %d events", channel, cursor, err, len(got))
	}
	sameEvents(t, fmt.Sprintf("Kept(%q, %q)", channel, cursor), got, want)
}

func wantKeptError(t *testing.T, k store.Keeper, channel, cursor string, target error) {
	t.Helper()
	wantError(t, fmt.Sprintf("Kept(%q, %q)", channel, cursor), k.Kept(context.Background(), channel, cursor), target)
}

func (s *suite) testKeptSurvivesEviction(t *testing.T) {
	st := s.open(t, Limits{MaxEvents: 10, KeepPerChannel: 100})
	k := keeper(t, st)
	ch, other := channel(t, "a"), channel(t, "b")
	tp := topic(t, "public")
	before := MustAppend(t, st, store.Event{Topics: []string{tp}})
	var sent []store.Event
	for i := range 3 {
		sent = append(sent, MustAppend(t, st, store.Event{Topics: []string{ch}, Type: "t", Data: fmt.Sprint("sent ", i), Retry: time.Second, Private: i == 1}))
		MustAppend(t, st, store.Event{Topics: []string{other}, Data: "to another channel"})
	}
	// Unrelated traffic turns the log over many times.
	n := 50
	if s.h.ApproximateCount {
		n = 1000
	}
	appendConcurrent(t, st, tp, n, 4)
	wantError(t, "History(cursor before the channel's events)", st.History(context.Background(), before.ID, nil), store.ErrExpired)
	wantKept(t, k, ch, before.ID, sent)
	wantKept(t, k, ch, legacy(before.ID), sent)
	wantKept(t, k, ch, "", sent)
	wantKept(t, k, ch, sent[0].ID, sent[1:])
	wantKept(t, k, ch, sent[2].ID, nil)
	head, err := st.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	wantKept(t, k, ch, head, nil)
	last := MustAppend(t, st, store.Event{Topics: []string{ch}, Data: "later"})
	wantKept(t, k, ch, head, []store.Event{last})
	wantKept(t, k, ch, before.ID, append(sent, last))
}

func (s *suite) testKeptPerChannel(t *testing.T) {
	st := s.open(t, Limits{KeepPerChannel: 3})
	k := keeper(t, st)
	ch, quiet := channel(t, "busy"), channel(t, "quiet")
	start := MustAppend(t, st, store.Event{Topics: []string{topic(t, "public")}})
	q := MustAppend(t, st, store.Event{Topics: []string{quiet}, Data: "quiet"})
	var evs []store.Event
	for i := range 5 {
		evs = append(evs, MustAppend(t, st, store.Event{Topics: []string{ch}, Data: fmt.Sprint(i)}))
	}
	// The newest three are kept; the cursor of the newest dropped one is
	// still complete, an older one is not.
	wantKept(t, k, ch, "", evs[2:])
	wantKept(t, k, ch, evs[1].ID, evs[2:])
	wantKept(t, k, ch, evs[3].ID, evs[4:])
	wantKeptError(t, k, ch, evs[0].ID, store.ErrExpired)
	wantKeptError(t, k, ch, start.ID, store.ErrExpired)
	// Another channel's traffic drops nothing of this one.
	wantKept(t, k, quiet, start.ID, []store.Event{q})
}

func (s *suite) testKeptChannels(t *testing.T) {
	st := s.open(t, Limits{})
	k := keeper(t, st)
	a, b := channel(t, "a"), channel(t, "b")
	tp := topic(t, "public")
	start := MustAppend(t, st, store.Event{Topics: []string{tp}})
	a1 := MustAppend(t, st, store.Event{Topics: []string{a}, Data: "a1"})
	both := MustAppend(t, st, store.Event{Topics: []string{tp, b, a, a}, Data: "both"})
	b1 := MustAppend(t, st, store.Event{Topics: []string{b}, Data: "b1"})
	MustAppend(t, st, store.Event{Topics: []string{tp}, Data: "public only"})
	custom := MustAppend(t, st, store.Event{ID: "kept-custom", Topics: []string{a}, Data: "custom id"})
	wantKept(t, k, a, start.ID, []store.Event{a1, both, custom})
	wantKept(t, k, b, start.ID, []store.Event{both, b1})
	wantKept(t, k, b, both.ID, []store.Event{b1})
	// A topic that is not a channel is not kept; neither is a channel
	// never written. Nothing kept is not "nothing missed".
	wantKeptError(t, k, tp, start.ID, store.ErrExpired)
	wantKeptError(t, k, channel(t, "never"), start.ID, store.ErrExpired)
	wantKept(t, k, channel(t, "never"), "", nil)
	// A signal (store.SignalPrefix) is private but not kept; an event on a
	// signal and a channel is kept under the channel.
	sig := store.SignalPrefix + "storetest:" + t.Name()
	mixed := MustAppend(t, st, store.Event{Topics: []string{sig, a}, Data: "signal and channel"})
	MustAppend(t, st, store.Event{Topics: []string{sig}, Data: "signal"})
	wantKeptError(t, k, sig, start.ID, store.ErrExpired)
	wantKept(t, k, a, both.ID, []store.Event{custom, mixed})
}

func (s *suite) testKeptCursors(t *testing.T) {
	st := s.open(t, Limits{})
	k := keeper(t, st)
	ch := channel(t, "a")
	e := MustAppend(t, st, store.Event{ID: "custom-cursor", Topics: []string{ch}})
	MustAppend(t, st, store.Event{Topics: []string{ch}})
	for _, c := range []string{"custom-cursor", "no such id", "#", strings.Repeat("z", 40)} {
		wantKeptError(t, k, ch, c, store.ErrUnknownID)
	}
	other := s.open(t, Limits{})
	o := MustAppend(t, other, store.Event{Topics: []string{ch}})
	if o.ID != e.ID {
		wantKeptError(t, k, ch, o.ID, store.ErrUnknownID)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	got, err := collect(t, k.Kept(ctx, ch, ""))
	if len(got) > 0 || !errors.Is(err, context.Canceled) {
		t.Fatalf("Kept with a canceled context: %d events, %v; want context.Canceled", len(got), err)
	}
	_ = other.Close()
	wantKeptError(t, other.(store.Keeper), ch, "", store.ErrClosed)
}

func (s *suite) testKeptFor(t *testing.T) {
	t0 := time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC)
	clk := NewClock(t0)
	st := s.open(t, Limits{KeepFor: time.Minute, Now: clk.Now})
	k := keeper(t, st)
	ch, idle := channel(t, "a"), channel(t, "idle")
	start := MustAppend(t, st, store.Event{Topics: []string{topic(t, "public")}})
	e1 := MustAppend(t, st, store.Event{Topics: []string{ch}, Data: "1"})
	i1 := MustAppend(t, st, store.Event{Topics: []string{idle}, Data: "idle"})
	clk.Advance(40 * time.Second)
	e2 := MustAppend(t, st, store.Event{Topics: []string{ch}, Data: "2"})
	wantKept(t, k, ch, start.ID, []store.Event{e1, e2})
	wantKept(t, k, idle, start.ID, []store.Event{i1})

	clk.Advance(30 * time.Second) // e1 and i1 are 70 s old, e2 30 s
	wantKept(t, k, ch, e1.ID, []store.Event{e2})
	wantKept(t, k, ch, "", []store.Event{e2})
	wantKeptError(t, k, ch, start.ID, store.ErrExpired)
	wantKeptError(t, k, idle, start.ID, store.ErrExpired)
	wantKept(t, k, idle, "", nil)
	e3 := MustAppend(t, st, store.Event{Topics: []string{ch}, Data: "3"})
	wantKept(t, k, ch, e1.ID, []store.Event{e2, e3})
	// A channel written again after everything in it was dropped: what
	// it had before is still missing.
	i2 := MustAppend(t, st, store.Event{Topics: []string{idle}, Data: "idle again"})
	wantKeptError(t, k, idle, start.ID, store.ErrExpired)
	wantKept(t, k, idle, i1.ID, []store.Event{i2})
	wantKept(t, k, idle, "", []store.Event{i2})
}

func (s *suite) testKeptConcurrentAppends(t *testing.T) {
	st := s.open(t, Limits{MaxEvents: 50, KeepPerChannel: 1000})
	k := keeper(t, st)
	ch := channel(t, "a")
	start := MustAppend(t, st, store.Event{Topics: []string{topic(t, "public")}})
	evs := appendConcurrent(t, st, ch, 400, 8)
	wantKept(t, k, ch, start.ID, evs)
	wantKept(t, k, ch, evs[199].ID, evs[200:])
}

func (s *suite) testKeptRestart(t *testing.T) {
	if s.h.Reopen == nil {
		t.Skip("Harness.Reopen is nil: not a durable store")
	}
	st := s.open(t, Limits{MaxEvents: 10, KeepPerChannel: 3})
	keeper(t, st)
	ch := channel(t, "a")
	start := MustAppend(t, st, store.Event{Topics: []string{topic(t, "public")}})
	evs := appendSeq(t, st, ch, 5)
	appendSeq(t, st, topic(t, "public"), 20)
	st2 := s.h.Reopen(t, st, Limits{MaxEvents: 10, KeepPerChannel: 3})
	if st2 == nil {
		t.Fatal("Reopen returned nil")
	}
	t.Cleanup(func() { _ = st2.Close() })
	k := keeper(t, st2)
	wantKept(t, k, ch, evs[1].ID, evs[2:])
	wantKeptError(t, k, ch, start.ID, store.ErrExpired)
	e := MustAppend(t, st2, store.Event{Topics: []string{ch}, Data: "after restart"})
	wantKept(t, k, ch, evs[2].ID, append(evs[3:], e))
	wantKeptError(t, k, ch, evs[1].ID, store.ErrExpired)
}
