package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/redisstore"
	"github.com/sluicehq/sluice/store/storetest"
)

// Two stores on one Redis and prefix are one log (see
// storetest.RunShared).
func TestTwoInstances(t *testing.T) {
	storetest.RunShared(t, storetest.SharedHarness{
		Open: func(t *testing.T) (store.Store, store.Store) {
			a, prefix := newStore(t, redisstore.Config{})
			return a, open(t, redisURL(t), redisstore.Config{Prefix: prefix})
		},
		Timeout: hang,
	})
}

// Cursor rules: ids of another prefix are unknown, ids beyond the head are
// unknown, a forged millisecond part is unknown, trimmed ids are expired.
func TestCursors(t *testing.T) {
	s, _ := newStore(t, redisstore.Config{MaxLen: 10})
	other, _ := newStore(t, redisstore.Config{})
	foreign := storetest.MustAppend(t, other, store.Event{Data: "x"})
	var evs []store.Event
	for i := range 300 {
		evs = append(evs, storetest.MustAppend(t, s, store.Event{Data: fmt.Sprint(i)}))
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
		{strings.TrimPrefix(ep, "#") + "-" + "1" + "-" + "1", store.ErrExpired},     // the legacy form, trimmed
		{strings.TrimPrefix(ep, "#") + "-" + "zz" + "-" + ms36, store.ErrUnknownID}, // the legacy form, beyond the head
	} {
		got, err := storetest.History(t, s, c.cursor)
		if len(got) > 0 || !errors.Is(err, c.want) {
			t.Errorf("History(%q) = %d events, %v; want %v", c.cursor, len(got), err, c.want)
		}
	}
	if got, err := storetest.History(t, s, last.ID); err != nil || len(got) != 0 {
		t.Fatalf("History(head) = %d events, %v", len(got), err)
	}
	for _, id := range []string{ep + "-zzz-1", strings.TrimPrefix(ep, "#") + "-zzz-1"} {
		if _, err := s.Append(context.Background(), store.Event{ID: id}); !errors.Is(err, store.ErrInvalidEvent) {
			t.Fatalf("Append with custom id %q in this log's generated form: %v, want ErrInvalidEvent", id, err)
		}
	}
	// Another log's generated ids are ordinary custom ids here.
	c := storetest.MustAppend(t, s, store.Event{ID: foreign.ID, Data: "foreign id"})
	after := storetest.MustAppend(t, s, store.Event{Data: "after"})
	if got, err := storetest.History(t, s, foreign.ID); err != nil || len(got) != 1 || got[0].ID != after.ID || c.ID != foreign.ID {
		t.Fatalf("History(foreign id used as a custom id) = %v, %v", storetest.IDs(got), err)
	}
}

// A repeated custom id resolves to its first occurrence still retained
// (checked with age retention, which reads apply exactly), and the index
// forgets what retention trimmed.
func TestCustomIDRetention(t *testing.T) {
	clk := storetest.NewClock(time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC))
	s, prefix := newStore(t, redisstore.Config{MaxAge: time.Minute, Now: clk.Now})
	storetest.MustAppend(t, s, store.Event{ID: "dup", Data: "1"})
	x := storetest.MustAppend(t, s, store.Event{Data: "x"})
	clk.Advance(45 * time.Second)
	d2 := storetest.MustAppend(t, s, store.Event{ID: "dup", Data: "2"})
	y := storetest.MustAppend(t, s, store.Event{Data: "y"})
	if got, err := storetest.History(t, s, "dup"); err != nil || !slices.Equal(storetest.IDs(got), storetest.IDs([]store.Event{x, d2, y})) {
		t.Fatalf(`History("dup") = %v, %v`, storetest.IDs(got), err)
	}
	clk.Advance(30 * time.Second) // the first "dup" is 75 s old, the second 30 s
	if got, err := storetest.History(t, s, "dup"); err != nil || !slices.Equal(storetest.IDs(got), storetest.IDs([]store.Event{y})) {
		t.Fatalf(`History("dup") once the first occurrence expired = %v, %v; want the second occurrence's successors`, storetest.IDs(got), err)
	}
	clk.Advance(time.Minute)
	if got, err := storetest.History(t, s, "dup"); len(got) > 0 || !errors.Is(err, store.ErrExpired) {
		t.Fatalf(`History("dup") once every occurrence expired = %v, %v; want ErrExpired`, storetest.IDs(got), err)
	}

	// The index is bounded by retention.
	s2, prefix2 := newStore(t, redisstore.Config{MaxLen: 100})
	for i := range 3000 {
		storetest.MustAppend(t, s2, store.Event{ID: fmt.Sprintf("id-%d", i)})
	}
	c := rawClient(t)
	n1, _ := c.ZCard(context.Background(), prefix2+"ids").Result()
	n2, _ := c.ZCard(context.Background(), prefix2+"idq").Result()
	xl, _ := c.XLen(context.Background(), prefix2+"log").Result()
	if n1 != n2 || n1 > xl+600 || xl > 300 {
		t.Fatalf("after 3000 custom ids with MaxLen 100: the stream holds %d entries and the indexes %d and %d members", xl, n1, n2)
	}
	if _, err := storetest.History(t, s2, "id-0"); !errors.Is(err, store.ErrUnknownID) && !errors.Is(err, store.ErrExpired) {
		t.Fatalf(`History("id-0") after it was trimmed: %v`, err)
	}
	if got, err := storetest.History(t, s2, "id-2998"); err != nil || len(got) != 1 {
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
	old := []store.Event{storetest.MustAppend(t, s, store.Event{Data: "1"}), storetest.MustAppend(t, s, store.Event{Data: "2"})}
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	f := storetest.StartFollow(ctx, s, old[1].ID)
	if err := s.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	if h, err := s.Head(ctx); err != nil || h != "" {
		t.Fatalf("Head after Delete = %q, %v", h, err)
	}
	var fresh []store.Event
	for i := range 3 {
		fresh = append(fresh, storetest.MustAppend(t, s, store.Event{Data: fmt.Sprint("new", i)}))
	}
	if fresh[0].Pos != 1 {
		t.Fatalf("first position of the new log = %d", fresh[0].Pos)
	}
	for _, e := range old {
		if got, err := storetest.History(t, s, e.ID); !errors.Is(err, store.ErrUnknownID) {
			t.Fatalf("History(%q of the deleted log) = %v, %v; want ErrUnknownID", e.ID, storetest.IDs(got), err)
		}
	}
	select {
	case e := <-f.Events():
		t.Fatalf("Follow of the deleted log yielded %+v", e)
	case <-f.Done():
		err := f.Err()
		if !errors.Is(err, store.ErrUnknownID) {
			t.Fatalf("Follow of the deleted log ended with %v; want ErrUnknownID", err)
		}
	case <-time.After(hang):
		t.Fatal("Follow of the deleted log did not end")
	}
	// A second store on the prefix agrees on the new log.
	b := open(t, redisURL(t), redisstore.Config{Prefix: prefix})
	if got, err := storetest.History(t, b, fresh[0].ID); err != nil || !slices.Equal(storetest.IDs(got), storetest.IDs(fresh[1:])) {
		t.Fatalf("History on another store = %v, %v", storetest.IDs(got), err)
	}
}

// Time never decreases along the log, even when the appending stores'
// clocks disagree.
func TestSkewedClocks(t *testing.T) {
	ahead := storetest.NewClock(time.Now().Add(time.Hour))
	a, prefix := newStore(t, redisstore.Config{Now: ahead.Now})
	b := open(t, redisURL(t), redisstore.Config{Prefix: prefix})
	e1 := storetest.MustAppend(t, a, store.Event{Data: "a"})
	e2 := storetest.MustAppend(t, b, store.Event{Data: "b"})
	if e2.Pos <= e1.Pos || e2.Time.Before(e1.Time) {
		t.Fatalf("event appended after another has Pos %d, Time %v; the first Pos %d, Time %v", e2.Pos, e2.Time, e1.Pos, e1.Time)
	}
	got, err := storetest.History(t, a, e1.ID)
	if err != nil || len(got) != 1 || got[0].ID != e2.ID || !got[0].Time.Equal(e2.Time) {
		t.Fatalf("History = %+v, %v", got, err)
	}
}

// Follow ends as soon as its context is canceled, even while XREAD blocks.
func TestFollowCancelIsPrompt(t *testing.T) {
	s, _ := newStore(t, redisstore.Config{BlockTimeout: time.Minute})
	storetest.MustAppend(t, s, store.Event{Data: "x"})
	ctx, cancel := context.WithCancel(context.Background())
	f := storetest.StartFollow(ctx, s, "")
	f.Next(t, hang)
	cancel()
	// hang is shorter than the XREAD BLOCK: a Follow that waited for the
	// BLOCK to end instead of interrupting it fails here.
	select {
	case <-f.Done():
		if err := f.Err(); err != nil {
			t.Fatalf("Follow ended with %v after cancel; want no error", err)
		}
	case <-time.After(hang):
		t.Fatal("Follow did not end after cancel (XREAD BLOCK is a minute)")
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
	if _, err := redisstore.Open(ctx, url, redisstore.Config{KeepFor: -time.Second}); err == nil {
		t.Error("Open accepted a negative KeepFor")
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
	storetest.MustAppend(t, s, store.Event{Data: "x"})
	if n, err := rawClient(t).XLen(ctx, prefix2+"log").Result(); err != nil || n != 1 {
		t.Fatalf("the DSN's prefix was not used: XLEN %s = %d, %v", prefix2+"log", n, err)
	}
}

// Close ends Follow with ErrClosed and fails Appends waiting in the queue.
func TestCloseUnderLoad(t *testing.T) {
	s, _ := newStore(t, redisstore.Config{})
	storetest.CloseUnderLoad(t, s, hang)
}
