package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/redisstore"
	"github.com/sluicehq/sluice/store/storetest"
)

const hang = 30 * time.Second // fails a wait instead of hanging

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

// Two stores on one Redis and prefix are one log: what A appends, B
// follows and replays in the same order, with the same ids; custom ids
// appended via A resolve on B.
func TestTwoInstances(t *testing.T) {
	a, prefix := newStore(t, redisstore.Config{})
	b := open(t, redisURL(t), redisstore.Config{Prefix: prefix})
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
	hb, err := b.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ha, err := a.Head(ctx)
	if err != nil || ha != hb {
		t.Fatalf("Head on A = %q, %v; on B %q", ha, err, hb)
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
	// A generated id from A is a cursor on B, and the reverse.
	mid := appended[len(appended)/2]
	got, err := history(t, b, mid.ID)
	if err != nil || len(got) != len(appended)/2-1+len(appended)%2 {
		t.Fatalf("History(A's id) on B: %d events, %v", len(got), err)
	}
}

// Cursor rules: ids of another prefix are unknown, ids beyond the head are
// unknown, a forged millisecond part is unknown, trimmed ids are expired.
func TestCursors(t *testing.T) {
	s, _ := newStore(t, redisstore.Config{MaxLen: 10})
	other, _ := newStore(t, redisstore.Config{})
	foreign := mustAppend(t, other, store.Event{Data: "x"})
	var evs []store.Event
	for i := range 300 {
		evs = append(evs, mustAppend(t, s, store.Event{Data: fmt.Sprint(i)}))
	}
	last := evs[len(evs)-1]
	ep, rest, _ := strings.Cut(last.ID, "-")
	n36, ms36, _ := strings.Cut(rest, "-")
	for _, c := range []struct {
		cursor string
		want   error
	}{
		{foreign.ID, store.ErrUnknownID},
		{ep + "-" + "zz" + "-" + ms36, store.ErrUnknownID},      // beyond the head
		{ep + "-" + n36 + "-" + "1", store.ErrUnknownID},        // the head's position, wrong ms
		{ep + "-" + "1" + "-" + "1", store.ErrExpired},          // trimmed
		{evs[0].ID, store.ErrExpired},                           // trimmed
		{ep + "-" + "z" + "-" + "zzzzzzzzzz", store.ErrExpired}, // a position before the head with a later ms: nothing after it is retained
		{strings.ToUpper(ep) + "-" + n36 + "-" + ms36, store.ErrUnknownID},
	} {
		got, err := history(t, s, c.cursor)
		if len(got) > 0 || !errors.Is(err, c.want) {
			t.Errorf("History(%q) = %d events, %v; want %v", c.cursor, len(got), err, c.want)
		}
	}
	if got, err := history(t, s, last.ID); err != nil || len(got) != 0 {
		t.Fatalf("History(head) = %d events, %v", len(got), err)
	}
	if _, err := s.Append(context.Background(), store.Event{ID: ep + "-zzz-1"}); !errors.Is(err, store.ErrInvalidEvent) {
		t.Fatalf("Append with a custom id in this log's generated form: %v, want ErrInvalidEvent", err)
	}
	// Another log's generated ids are ordinary custom ids here.
	c := mustAppend(t, s, store.Event{ID: foreign.ID, Data: "foreign id"})
	after := mustAppend(t, s, store.Event{Data: "after"})
	if got, err := history(t, s, foreign.ID); err != nil || len(got) != 1 || got[0].ID != after.ID || c.ID != foreign.ID {
		t.Fatalf("History(foreign id used as a custom id) = %v, %v", ids(got), err)
	}
}

// A repeated custom id resolves to its first occurrence still retained
// (checked with age retention, which reads apply exactly), and the index
// forgets what retention trimmed.
func TestCustomIDRetention(t *testing.T) {
	clk := storetest.NewClock(time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC))
	s, prefix := newStore(t, redisstore.Config{MaxAge: time.Minute, Now: clk.Now})
	mustAppend(t, s, store.Event{ID: "dup", Data: "1"})
	x := mustAppend(t, s, store.Event{Data: "x"})
	clk.Advance(45 * time.Second)
	d2 := mustAppend(t, s, store.Event{ID: "dup", Data: "2"})
	y := mustAppend(t, s, store.Event{Data: "y"})
	if got, err := history(t, s, "dup"); err != nil || !slices.Equal(ids(got), ids([]store.Event{x, d2, y})) {
		t.Fatalf(`History("dup") = %v, %v`, ids(got), err)
	}
	clk.Advance(30 * time.Second) // the first "dup" is 75 s old, the second 30 s
	if got, err := history(t, s, "dup"); err != nil || !slices.Equal(ids(got), ids([]store.Event{y})) {
		t.Fatalf(`History("dup") once the first occurrence expired = %v, %v; want the second occurrence's successors`, ids(got), err)
	}
	clk.Advance(time.Minute)
	if got, err := history(t, s, "dup"); len(got) > 0 || !errors.Is(err, store.ErrExpired) {
		t.Fatalf(`History("dup") once every occurrence expired = %v, %v; want ErrExpired`, ids(got), err)
	}

	// The index is bounded by retention.
	s2, prefix2 := newStore(t, redisstore.Config{MaxLen: 100})
	for i := range 3000 {
		mustAppend(t, s2, store.Event{ID: fmt.Sprintf("id-%d", i)})
	}
	c := rawClient(t)
	n1, _ := c.ZCard(context.Background(), prefix2+"ids").Result()
	n2, _ := c.ZCard(context.Background(), prefix2+"idq").Result()
	xl, _ := c.XLen(context.Background(), prefix2+"log").Result()
	if n1 != n2 || n1 > xl+600 || xl > 300 {
		t.Fatalf("after 3000 custom ids with MaxLen 100: the stream holds %d entries and the indexes %d and %d members", xl, n1, n2)
	}
	if _, err := history(t, s2, "id-0"); !errors.Is(err, store.ErrUnknownID) && !errors.Is(err, store.ErrExpired) {
		t.Fatalf(`History("id-0") after it was trimmed: %v`, err)
	}
	if got, err := history(t, s2, "id-2998"); err != nil || len(got) != 1 {
		t.Fatalf(`History("id-2998") = %d events, %v`, len(got), err)
	}
	_ = prefix
}

func rawClient(t testing.TB) *redis.Client {
	opts, err := redis.ParseURL(redisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Deleting the log under a running store starts a new log with a new
// epoch: the old ids are unknown, never misread as positions of the new
// log, and a Follow of the old log ends with ErrUnknownID.
func TestLogReplaced(t *testing.T) {
	s, prefix := newStore(t, redisstore.Config{})
	old := []store.Event{mustAppend(t, s, store.Event{Data: "1"}), mustAppend(t, s, store.Event{Data: "2"})}
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	evs, errc := follow(ctx, s, old[1].ID)
	if err := s.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	if h, err := s.Head(ctx); err != nil || h != "" {
		t.Fatalf("Head after Delete = %q, %v", h, err)
	}
	var fresh []store.Event
	for i := range 3 {
		fresh = append(fresh, mustAppend(t, s, store.Event{Data: fmt.Sprint("new", i)}))
	}
	if fresh[0].Pos != 1 {
		t.Fatalf("first position of the new log = %d", fresh[0].Pos)
	}
	for _, e := range old {
		if got, err := history(t, s, e.ID); !errors.Is(err, store.ErrUnknownID) {
			t.Fatalf("History(%q of the deleted log) = %v, %v; want ErrUnknownID", e.ID, ids(got), err)
		}
	}
	select {
	case e := <-evs:
		t.Fatalf("Follow of the deleted log yielded %+v", e)
	case err := <-errc:
		if !errors.Is(err, store.ErrUnknownID) {
			t.Fatalf("Follow of the deleted log ended with %v; want ErrUnknownID", err)
		}
	case <-time.After(hang):
		t.Fatal("Follow of the deleted log did not end")
	}
	// A second store on the prefix agrees on the new log.
	b := open(t, redisURL(t), redisstore.Config{Prefix: prefix})
	if got, err := history(t, b, fresh[0].ID); err != nil || !slices.Equal(ids(got), ids(fresh[1:])) {
		t.Fatalf("History on another store = %v, %v", ids(got), err)
	}
}

// Time never decreases along the log, even when the appending stores'
// clocks disagree.
func TestSkewedClocks(t *testing.T) {
	ahead := storetest.NewClock(time.Now().Add(time.Hour))
	a, prefix := newStore(t, redisstore.Config{Now: ahead.Now})
	b := open(t, redisURL(t), redisstore.Config{Prefix: prefix})
	e1 := mustAppend(t, a, store.Event{Data: "a"})
	e2 := mustAppend(t, b, store.Event{Data: "b"})
	if e2.Pos <= e1.Pos || e2.Time.Before(e1.Time) {
		t.Fatalf("event appended after another has Pos %d, Time %v; the first Pos %d, Time %v", e2.Pos, e2.Time, e1.Pos, e1.Time)
	}
	got, err := history(t, a, e1.ID)
	if err != nil || len(got) != 1 || got[0].ID != e2.ID || !got[0].Time.Equal(e2.Time) {
		t.Fatalf("History = %+v, %v", got, err)
	}
}

// Follow ends as soon as its context is canceled, even while XREAD blocks.
func TestFollowCancelIsPrompt(t *testing.T) {
	s, _ := newStore(t, redisstore.Config{BlockTimeout: time.Minute})
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
		t.Fatalf("Follow took %v to end after cancel (XREAD BLOCK is a minute)", d)
	}
}

func TestOversizedAndInvalid(t *testing.T) {
	s, _ := newStore(t, redisstore.Config{MaxBytes: 100})
	if _, err := s.Append(context.Background(), store.Event{Data: strings.Repeat("x", 101)}); !errors.Is(err, store.ErrInvalidEvent) {
		t.Fatalf("Append of an event larger than MaxBytes: %v", err)
	}
	if h, err := s.Head(context.Background()); err != nil || h != "" {
		t.Fatalf("Head after a refused append = %q, %v", h, err)
	}
}

func TestOpenErrors(t *testing.T) {
	url := redisURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := redisstore.Open(ctx, "http://localhost/", redisstore.Config{}); err == nil {
		t.Error("Open accepted an http URL")
	}
	if _, err := redisstore.Open(ctx, "redis://127.0.0.1:1/0", redisstore.Config{}); err == nil {
		t.Error("Open succeeded with no server")
	}
	prefix := uniquePrefix(t)
	deleteKeys(t, url, prefix)
	if err := rawClient(t).HSet(ctx, prefix+"meta", "epoch", "NOT AN EPOCH").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := redisstore.Open(ctx, url, redisstore.Config{Prefix: prefix}); err == nil || !strings.Contains(err.Error(), "epoch") {
		t.Errorf("Open on a foreign meta hash: %v", err)
	}
	// The DSN carries the prefix.
	prefix2 := uniquePrefix(t)
	deleteKeys(t, url, prefix2)
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	s := open(t, url+sep+"prefix="+prefix2+"&max_len=5", redisstore.Config{})
	mustAppend(t, s, store.Event{Data: "x"})
	if n, err := rawClient(t).XLen(ctx, prefix2+"log").Result(); err != nil || n != 1 {
		t.Fatalf("the DSN's prefix was not used: XLEN %s = %d, %v", prefix2+"log", n, err)
	}
}

// Close ends Follow with ErrClosed and fails Appends waiting in the queue.
func TestCloseUnderLoad(t *testing.T) {
	s, _ := newStore(t, redisstore.Config{})
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
