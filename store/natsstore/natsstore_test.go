package natsstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/natsstore"
	"github.com/sluicehq/sluice/store/storetest"
)

// Two stores on one stream are one log (see storetest.RunShared).
func TestTwoInstances(t *testing.T) {
	storetest.RunShared(t, storetest.SharedHarness{
		Open: func(t *testing.T) (store.Store, store.Store) {
			a, stream := newStore(t, natsstore.Config{})
			return a, open(t, natsURL(t), natsstore.Config{Stream: stream})
		},
		Timeout: hang,
	})
}

// Cursor rules: ids of another stream or of a stream created again are
// unknown, ids beyond the head are unknown, evicted ids are expired.
func TestCursors(t *testing.T) {
	s, stream := newStore(t, natsstore.Config{MaxMsgs: 10})
	other, _ := newStore(t, natsstore.Config{})
	foreign := storetest.MustAppend(t, other, store.Event{Data: "x"})
	var evs []store.Event
	for i := range 30 {
		evs = append(evs, storetest.MustAppend(t, s, store.Event{Data: fmt.Sprint(i)}))
	}
	last := evs[len(evs)-1]
	ep := store.Epoch(last.ID[len(store.IDPrefix):strings.IndexByte(last.ID, '-')])
	for _, c := range []struct {
		cursor string
		want   error
	}{
		{foreign.ID, store.ErrUnknownID},
		{ep.ID(31), store.ErrUnknownID}, // beyond the head
		{ep.ID(1000), store.ErrUnknownID},
		{evs[0].ID, store.ErrExpired},
		{evs[18].ID, store.ErrExpired},
		{strings.TrimPrefix(evs[18].ID, "#"), store.ErrExpired}, // the legacy form
		{"nope", store.ErrUnknownID},
	} {
		got, err := storetest.History(t, s, c.cursor)
		if len(got) > 0 || !errors.Is(err, c.want) {
			t.Errorf("History(%q) = %d events, %v; want %v", c.cursor, len(got), err, c.want)
		}
	}
	// MaxMsgs is exact: the newest evicted id is still valid.
	if got, err := storetest.History(t, s, evs[19].ID); err != nil || !slices.Equal(storetest.IDs(got), storetest.IDs(evs[20:])) {
		t.Fatalf("History(newest evicted) = %v, %v", storetest.IDs(got), err)
	}
	for _, id := range []string{ep.ID(5), strings.TrimPrefix(ep.ID(5), "#")} {
		if _, err := s.Append(context.Background(), store.Event{ID: id}); !errors.Is(err, store.ErrInvalidEvent) {
			t.Fatalf("Append with custom id %q in this log's generated form: %v, want ErrInvalidEvent", id, err)
		}
	}
	// Another stream's generated ids are ordinary custom ids here.
	storetest.MustAppend(t, s, store.Event{ID: foreign.ID, Data: "foreign id"})
	after := storetest.MustAppend(t, s, store.Event{Data: "after"})
	if got, err := storetest.History(t, s, foreign.ID); err != nil || len(got) != 1 || got[0].ID != after.ID {
		t.Fatalf("History(foreign id used as a custom id) = %v, %v", storetest.IDs(got), err)
	}

	// The stream deleted and created again: the old ids are unknown.
	if err := s.Delete(context.Background()); err != nil {
		t.Fatal(err)
	}
	s2 := open(t, natsURL(t), natsstore.Config{Stream: stream})
	fresh := storetest.MustAppend(t, s2, store.Event{Data: "new"})
	if fresh.Pos != 1 || fresh.ID == evs[0].ID {
		t.Fatalf("first event of the new stream: %+v", fresh)
	}
	for _, st := range []store.Store{s, s2} {
		if got, err := storetest.History(t, st, evs[len(evs)-1].ID); !errors.Is(err, store.ErrUnknownID) {
			t.Fatalf("History(id of the deleted stream) = %v, %v; want ErrUnknownID", storetest.IDs(got), err)
		}
	}
	if h, err := s.Head(context.Background()); err != nil || h != fresh.ID {
		t.Fatalf("Head of the old store after the stream was created again = %q, %v; want %q", h, err, fresh.ID)
	}
}

// A repeated custom id resolves to its first retained occurrence; once
// every occurrence is gone it is unknown (the contract suite's
// CustomIDEvicted also accepts ErrExpired there).
func TestCustomIDEvicted(t *testing.T) {
	s, _ := newStore(t, natsstore.Config{MaxMsgs: 3})
	storetest.MustAppend(t, s, store.Event{ID: "dup"})
	a := storetest.MustAppend(t, s, store.Event{})
	d3 := storetest.MustAppend(t, s, store.Event{ID: "dup"})
	if got, err := storetest.History(t, s, "dup"); err != nil || !slices.Equal(storetest.IDs(got), storetest.IDs([]store.Event{a, d3})) {
		t.Fatalf(`History("dup") = %v, %v`, storetest.IDs(got), err)
	}
	b := storetest.MustAppend(t, s, store.Event{}) // evicts the first "dup"
	if got, err := storetest.History(t, s, "dup"); err != nil || !slices.Equal(storetest.IDs(got), storetest.IDs([]store.Event{b})) {
		t.Fatalf(`History("dup") after the first was evicted = %v, %v; want the next occurrence's successors`, storetest.IDs(got), err)
	}
	storetest.MustAppend(t, s, store.Event{})
	storetest.MustAppend(t, s, store.Event{}) // evicts the last "dup"
	if got, err := storetest.History(t, s, "dup"); len(got) > 0 || !errors.Is(err, store.ErrUnknownID) {
		t.Fatalf(`History("dup") after every occurrence was evicted = %v, %v; want ErrUnknownID`, storetest.IDs(got), err)
	}
}

// With MaxAge, reads apply the store's clock: an occurrence of a custom id
// past MaxAge gives way to the next one.
func TestCustomIDMaxAge(t *testing.T) {
	clk := storetest.NewClock(time.Now())
	s, _ := newStore(t, natsstore.Config{MaxAge: time.Hour, Now: clk.Now})
	storetest.MustAppend(t, s, store.Event{ID: "dup", Data: "1"})
	x := storetest.MustAppend(t, s, store.Event{Data: "x"})
	clk.Advance(45 * time.Minute)
	d2 := storetest.MustAppend(t, s, store.Event{ID: "dup", Data: "2"})
	y := storetest.MustAppend(t, s, store.Event{Data: "y"})
	if got, err := storetest.History(t, s, "dup"); err != nil || !slices.Equal(storetest.IDs(got), storetest.IDs([]store.Event{x, d2, y})) {
		t.Fatalf(`History("dup") = %v, %v`, storetest.IDs(got), err)
	}
	clk.Advance(30 * time.Minute)
	if got, err := storetest.History(t, s, "dup"); err != nil || !slices.Equal(storetest.IDs(got), storetest.IDs([]store.Event{y})) {
		t.Fatalf(`History("dup") once the first occurrence is past MaxAge = %v, %v`, storetest.IDs(got), err)
	}
	clk.Advance(time.Hour)
	if got, err := storetest.History(t, s, "dup"); len(got) > 0 || !errors.Is(err, store.ErrExpired) {
		t.Fatalf(`History("dup") once every occurrence is past MaxAge = %v, %v; want ErrExpired`, storetest.IDs(got), err)
	}
}

// Follow ends as soon as its context is canceled.
func TestOversized(t *testing.T) {
	s, _ := newStore(t, natsstore.Config{MaxBytes: 1000})
	if _, err := s.Append(context.Background(), store.Event{Data: strings.Repeat("x", 1001)}); !errors.Is(err, store.ErrInvalidEvent) {
		t.Fatalf("Append of an event larger than MaxBytes: %v", err)
	}
	big, _ := newStore(t, natsstore.Config{})
	if _, err := big.Append(context.Background(), store.Event{Data: strings.Repeat("x", 8<<20)}); !errors.Is(err, store.ErrInvalidEvent) {
		t.Fatalf("Append of an event larger than the server's max payload: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	url := natsURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := natsstore.Open(ctx, "nats://127.0.0.1:1", natsstore.Config{}); err == nil {
		t.Error("Open succeeded with no server")
	}
	if _, err := natsstore.Open(ctx, url, natsstore.Config{Stream: "bad.name"}); err == nil {
		t.Error("Open accepted an invalid stream name")
	}
	// The DSN carries the stream.
	stream := uniqueStream(t)
	deleteStream(t, url, stream)
	s := open(t, url+"?stream="+stream+"&max_msgs=5", natsstore.Config{})
	for range 8 {
		storetest.MustAppend(t, s, store.Event{Data: "x"})
	}
	if got, err := storetest.History(t, s, ""); err != nil || len(got) != 5 {
		t.Fatalf("store opened from a DSN with max_msgs=5 kept %d events, %v", len(got), err)
	}
}

// Close ends Follow with ErrClosed and fails Appends in progress.
func TestCloseUnderLoad(t *testing.T) {
	s, _ := newStore(t, natsstore.Config{})
	storetest.CloseUnderLoad(t, s, hang)
}

// A Follow whose stream is deleted retries (the stream may come back) and,
// when a new stream of the same name appears, ends with ErrUnknownID rather
// than yielding the new stream's events as if they followed the old ones.
func TestFollowStreamReplaced(t *testing.T) {
	s, stream := newStore(t, natsstore.Config{})
	old := storetest.MustAppend(t, s, store.Event{Data: "old"})
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	f := storetest.StartFollow(ctx, s, "")
	if e := f.Next(t, hang); e.ID != old.ID {
		t.Fatalf("Follow yielded %+v", e)
	}
	if err := s.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Head(ctx); err == nil {
		t.Fatal("Head succeeded with the stream deleted")
	}
	s2 := open(t, natsURL(t), natsstore.Config{Stream: stream})
	for i := range 3 {
		storetest.MustAppend(t, s2, store.Event{Data: fmt.Sprint("new", i)})
	}
	select {
	case e := <-f.Events():
		t.Fatalf("Follow of the deleted stream yielded %+v", e)
	case <-f.Done():
		err := f.Err()
		if !errors.Is(err, store.ErrUnknownID) {
			t.Fatalf("Follow of the deleted stream ended with %v; want ErrUnknownID", err)
		}
	case <-ctx.Done():
		t.Fatal("Follow of the deleted stream did not end")
	}
}

// A Follow whose consumer stops delivering while its heartbeats go on (as
// seen after a server of the stream restarted; here the consumer is
// paused) gives it up once the stream has held undelivered events for two
// stall checks, and yields them: every event once, in order. An idle
// stream is no stall: the Follow keeps its consumer across the checks.
// No test checked either before: the HA test only stalls a whole server.
func TestFollowStalledConsumer(t *testing.T) {
	s, stream := newStore(t, natsstore.Config{})
	natsstore.SetStallCheck(s, 20*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	nc, err := nats.Connect(natsURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	// consumer returns the name of the stream's one consumer, the Follow's.
	consumer := func() string {
		t.Helper()
		var names []string
		lister := st.ConsumerNames(ctx)
		for name := range lister.Name() {
			names = append(names, name)
		}
		if err := lister.Err(); err != nil || len(names) != 1 {
			t.Fatalf("the stream's consumers: %v, %v; want the Follow's only", names, err)
		}
		return names[0]
	}

	f := storetest.StartFollow(ctx, s, "")
	evs := []store.Event{storetest.MustAppend(t, s, store.Event{Data: "before"})}
	if got := f.Next(t, hang); got.ID != evs[0].ID {
		t.Fatalf("Follow yielded %s, want %s", got.ID, evs[0].ID)
	}
	name := consumer()
	// Idle for many stall checks (the Follow reads the stream's state at
	// each): the consumer stays.
	for range 5 {
		if _, err := st.Info(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond) // idle time is what is tested
	}
	if got := consumer(); got != name {
		t.Fatalf("the Follow replaced its consumer %s with %s while the stream was idle", name, got)
	}

	if _, err := st.PauseConsumer(ctx, name, time.Now().Add(time.Hour)); err != nil {
		t.Skipf("cannot pause a consumer (nats-server 2.11+): %v", err)
	}
	for i := range 3 {
		evs = append(evs, storetest.MustAppend(t, s, store.Event{Data: fmt.Sprint("while paused ", i)}))
	}
	// The paused consumer delivers nothing: the events come through what
	// replaces it.
	for _, want := range evs[1:] {
		if got := f.Next(t, hang); got.ID != want.ID {
			t.Fatalf("Follow yielded %s, want %s", got.ID, want.ID)
		}
	}
}
