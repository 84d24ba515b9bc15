package natsstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/natsstore"
	"github.com/sluicehq/sluice/store/storetest"
)

func mustAppend(t testing.TB, s store.Store, e store.Event) store.Event {
	t.Helper()
	got, err := s.Append(context.Background(), e)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return got
}

func history(t testing.TB, s store.Store, cursor string) ([]store.Event, error) {
	t.Helper()
	var evs []store.Event
	for e, err := range s.History(context.Background(), cursor, nil) {
		if err != nil {
			return evs, err
		}
		evs = append(evs, e)
	}
	return evs, nil
}

func ids(evs []store.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

// follow collects a Follow's events on a channel.
func follow(ctx context.Context, s store.Store, cursor string) (<-chan store.Event, <-chan error) {
	evs, errc := make(chan store.Event, 1024), make(chan error, 1)
	go func() {
		defer close(errc)
		for e, err := range s.Follow(ctx, cursor) {
			if err != nil {
				errc <- err
				return
			}
			select {
			case evs <- e:
			case <-ctx.Done():
				return
			}
		}
	}()
	return evs, errc
}

func next(t testing.TB, evs <-chan store.Event, errc <-chan error) store.Event {
	t.Helper()
	select {
	case e := <-evs:
		return e
	case err := <-errc:
		t.Fatalf("Follow ended with %v while an event was expected", err)
	case <-time.After(hang):
		t.Fatalf("no event within %v", hang)
	}
	return store.Event{}
}

// Two stores on one stream are one log: what A appends, B follows and
// replays in the same order, with the same ids; custom ids appended via A
// resolve on B.
func TestTwoInstances(t *testing.T) {
	a, stream := newStore(t, natsstore.Config{})
	b := open(t, natsURL(t), natsstore.Config{Stream: stream})
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	evs, errc := follow(ctx, b, "")

	const workers, per = 8, 200
	var mu sync.Mutex
	var appended []store.Event
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				e := store.Event{Topics: []string{"t"}, Data: fmt.Sprintf("w%d-%d", w, i)}
				if i == 50 {
					e.ID = fmt.Sprintf("custom-%d", w)
				}
				got, err := a.Append(context.Background(), e)
				if err != nil {
					t.Errorf("Append: %v", err)
					return
				}
				mu.Lock()
				appended = append(appended, got)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	slices.SortFunc(appended, func(x, y store.Event) int { return int(x.Pos) - int(y.Pos) })
	for i := range appended {
		if i > 0 && appended[i].Pos != appended[i-1].Pos+1 {
			t.Fatalf("positions not contiguous: %d after %d", appended[i].Pos, appended[i-1].Pos)
		}
		got := next(t, evs, errc)
		if got.ID != appended[i].ID || got.Pos != appended[i].Pos || got.Data != appended[i].Data || !got.Time.Equal(appended[i].Time) {
			t.Fatalf("B followed %+v at %d; A appended %+v", got, i, appended[i])
		}
	}
	ha, err := a.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if hb, err := b.Head(ctx); err != nil || ha != hb {
		t.Fatalf("Head on A = %q; on B %q, %v", ha, hb, err)
	}
	all, err := history(t, b, "")
	if err != nil || !slices.Equal(ids(all), ids(appended)) {
		t.Fatalf("History on B: %d events, %v; want the %d appended via A", len(all), err, len(appended))
	}
	for w := range workers {
		id := fmt.Sprintf("custom-%d", w)
		k := slices.IndexFunc(appended, func(e store.Event) bool { return e.ID == id })
		got, err := history(t, b, id)
		if err != nil || !slices.Equal(ids(got), ids(appended[k+1:])) {
			t.Fatalf("History(%q) on B: %d events, %v; want %d", id, len(got), err, len(appended)-k-1)
		}
		// B resolves A's ids to the positions A appended them at.
		for _, c := range []store.Event{appended[k], appended[k/2]} {
			if pos, err := b.Resolve(ctx, c.ID); err != nil || pos != c.Pos {
				t.Fatalf("Resolve(%q) on B = %d, %v; want %d", c.ID, pos, err, c.Pos)
			}
		}
	}
}

// Cursor rules: ids of another stream or of a stream created again are
// unknown, ids beyond the head are unknown, evicted ids are expired.
func TestCursors(t *testing.T) {
	s, stream := newStore(t, natsstore.Config{MaxMsgs: 10})
	other, _ := newStore(t, natsstore.Config{})
	foreign := mustAppend(t, other, store.Event{Data: "x"})
	var evs []store.Event
	for i := range 30 {
		evs = append(evs, mustAppend(t, s, store.Event{Data: fmt.Sprint(i)}))
	}
	last := evs[len(evs)-1]
	ep := store.Epoch(last.ID[:strings.IndexByte(last.ID, '-')])
	for _, c := range []struct {
		cursor string
		want   error
	}{
		{foreign.ID, store.ErrUnknownID},
		{ep.ID(31), store.ErrUnknownID}, // beyond the head
		{ep.ID(1000), store.ErrUnknownID},
		{evs[0].ID, store.ErrExpired},
		{evs[18].ID, store.ErrExpired},
		{"nope", store.ErrUnknownID},
	} {
		got, err := history(t, s, c.cursor)
		if len(got) > 0 || !errors.Is(err, c.want) {
			t.Errorf("History(%q) = %d events, %v; want %v", c.cursor, len(got), err, c.want)
		}
	}
	// MaxMsgs is exact: the newest evicted id is still valid.
	if got, err := history(t, s, evs[19].ID); err != nil || !slices.Equal(ids(got), ids(evs[20:])) {
		t.Fatalf("History(newest evicted) = %v, %v", ids(got), err)
	}
	if _, err := s.Append(context.Background(), store.Event{ID: ep.ID(5)}); !errors.Is(err, store.ErrInvalidEvent) {
		t.Fatalf("Append with a custom id in this log's generated form: %v, want ErrInvalidEvent", err)
	}
	// Another stream's generated ids are ordinary custom ids here.
	mustAppend(t, s, store.Event{ID: foreign.ID, Data: "foreign id"})
	after := mustAppend(t, s, store.Event{Data: "after"})
	if got, err := history(t, s, foreign.ID); err != nil || len(got) != 1 || got[0].ID != after.ID {
		t.Fatalf("History(foreign id used as a custom id) = %v, %v", ids(got), err)
	}

	// The stream deleted and created again: the old ids are unknown.
	if err := s.Delete(context.Background()); err != nil {
		t.Fatal(err)
	}
	s2 := open(t, natsURL(t), natsstore.Config{Stream: stream})
	fresh := mustAppend(t, s2, store.Event{Data: "new"})
	if fresh.Pos != 1 || fresh.ID == evs[0].ID {
		t.Fatalf("first event of the new stream: %+v", fresh)
	}
	for _, st := range []store.Store{s, s2} {
		if got, err := history(t, st, evs[len(evs)-1].ID); !errors.Is(err, store.ErrUnknownID) {
			t.Fatalf("History(id of the deleted stream) = %v, %v; want ErrUnknownID", ids(got), err)
		}
	}
	if h, err := s.Head(context.Background()); err != nil || h != fresh.ID {
		t.Fatalf("Head of the old store after the stream was created again = %q, %v; want %q", h, err, fresh.ID)
	}
}

// A repeated custom id resolves to its first retained occurrence; once
// every occurrence is gone it is unknown. MaxMsgs is exact, so this is the
// contract suite's CustomIDEvicted, which it skips for approximate stores.
func TestCustomIDEvicted(t *testing.T) {
	s, _ := newStore(t, natsstore.Config{MaxMsgs: 3})
	mustAppend(t, s, store.Event{ID: "dup"})
	a := mustAppend(t, s, store.Event{})
	d3 := mustAppend(t, s, store.Event{ID: "dup"})
	if got, err := history(t, s, "dup"); err != nil || !slices.Equal(ids(got), ids([]store.Event{a, d3})) {
		t.Fatalf(`History("dup") = %v, %v`, ids(got), err)
	}
	b := mustAppend(t, s, store.Event{}) // evicts the first "dup"
	if got, err := history(t, s, "dup"); err != nil || !slices.Equal(ids(got), ids([]store.Event{b})) {
		t.Fatalf(`History("dup") after the first was evicted = %v, %v; want the next occurrence's successors`, ids(got), err)
	}
	mustAppend(t, s, store.Event{})
	mustAppend(t, s, store.Event{}) // evicts the last "dup"
	if got, err := history(t, s, "dup"); len(got) > 0 || !errors.Is(err, store.ErrUnknownID) {
		t.Fatalf(`History("dup") after every occurrence was evicted = %v, %v; want ErrUnknownID`, ids(got), err)
	}
}

// With MaxAge, reads apply the store's clock: an occurrence of a custom id
// past MaxAge gives way to the next one.
func TestCustomIDMaxAge(t *testing.T) {
	clk := storetest.NewClock(time.Now())
	s, _ := newStore(t, natsstore.Config{MaxAge: time.Hour, Now: clk.Now})
	mustAppend(t, s, store.Event{ID: "dup", Data: "1"})
	x := mustAppend(t, s, store.Event{Data: "x"})
	clk.Advance(45 * time.Minute)
	d2 := mustAppend(t, s, store.Event{ID: "dup", Data: "2"})
	y := mustAppend(t, s, store.Event{Data: "y"})
	if got, err := history(t, s, "dup"); err != nil || !slices.Equal(ids(got), ids([]store.Event{x, d2, y})) {
		t.Fatalf(`History("dup") = %v, %v`, ids(got), err)
	}
	clk.Advance(30 * time.Minute)
	if got, err := history(t, s, "dup"); err != nil || !slices.Equal(ids(got), ids([]store.Event{y})) {
		t.Fatalf(`History("dup") once the first occurrence is past MaxAge = %v, %v`, ids(got), err)
	}
	clk.Advance(time.Hour)
	if got, err := history(t, s, "dup"); len(got) > 0 || !errors.Is(err, store.ErrExpired) {
		t.Fatalf(`History("dup") once every occurrence is past MaxAge = %v, %v; want ErrExpired`, ids(got), err)
	}
}

// Follow ends as soon as its context is canceled.
func TestFollowCancelIsPrompt(t *testing.T) {
	s, _ := newStore(t, natsstore.Config{})
	mustAppend(t, s, store.Event{Data: "x"})
	ctx, cancel := context.WithCancel(context.Background())
	evs, errc := follow(ctx, s, "")
	next(t, evs, errc)
	cancel()
	start := time.Now()
	select {
	case err, ok := <-errc:
		if ok && err != nil {
			t.Fatalf("Follow ended with %v after cancel; want no error", err)
		}
	case <-time.After(hang):
		t.Fatal("Follow did not end after cancel")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Follow took %v to end after cancel", d)
	}
}

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
		mustAppend(t, s, store.Event{Data: "x"})
	}
	if got, err := history(t, s, ""); err != nil || len(got) != 5 {
		t.Fatalf("store opened from a DSN with max_msgs=5 kept %d events, %v", len(got), err)
	}
}

// Close ends Follow with ErrClosed and fails Appends in progress.
func TestCloseUnderLoad(t *testing.T) {
	s, _ := newStore(t, natsstore.Config{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if _, err := s.Append(context.Background(), store.Event{Data: "x"}); err != nil {
					if !errors.Is(err, store.ErrClosed) {
						t.Errorf("Append during Close: %v; want ErrClosed", err)
					}
					return
				}
			}
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	evs, errc := follow(ctx, s, "")
	for range 100 {
		next(t, evs, errc)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for {
		select {
		case <-evs:
			continue
		case err := <-errc:
			if !errors.Is(err, store.ErrClosed) {
				t.Fatalf("Follow ended with %v on Close; want ErrClosed", err)
			}
			return
		case <-ctx.Done():
			t.Fatal("Follow did not end on Close")
		}
	}
}

// A Follow whose stream is deleted retries (the stream may come back) and,
// when a new stream of the same name appears, ends with ErrUnknownID rather
// than yielding the new stream's events as if they followed the old ones.
func TestFollowStreamReplaced(t *testing.T) {
	s, stream := newStore(t, natsstore.Config{})
	old := mustAppend(t, s, store.Event{Data: "old"})
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	evs, errc := follow(ctx, s, "")
	if e := next(t, evs, errc); e.ID != old.ID {
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
		mustAppend(t, s2, store.Event{Data: fmt.Sprint("new", i)})
	}
	select {
	case e := <-evs:
		t.Fatalf("Follow of the deleted stream yielded %+v", e)
	case err := <-errc:
		if !errors.Is(err, store.ErrUnknownID) {
			t.Fatalf("Follow of the deleted stream ended with %v; want ErrUnknownID", err)
		}
	case <-ctx.Done():
		t.Fatal("Follow of the deleted stream did not end")
	}
}
