package redisstore_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/redisstore"
	"github.com/sluicehq/sluice/store/storetest"
)

// keepKeys names the keys a store under prefix keeps channel ch of the log
// of event e in, and the index keys.
func keepKeys(prefix string, e store.Event, ch string) (chKey, last, when string) {
	ep, _, _ := strings.Cut(strings.TrimPrefix(e.ID, store.IDPrefix), "-")
	sum := sha256.Sum256([]byte(ch))
	base := prefix + "keep:" + ep + ":"
	return base + hex.EncodeToString(sum[:]), base + "last", base + "when"
}

func wantKept(t *testing.T, k store.Keeper, ch, cursor string, want []store.Event) {
	t.Helper()
	got, err := storetest.KeptEvents(t, k, ch, cursor)
	if err != nil || !slices.Equal(storetest.IDs(got), storetest.IDs(want)) {
		t.Fatalf("Kept(%q, %q) = %v, %v; want %v", ch, cursor, storetest.IDs(got), err, storetest.IDs(want))
	}
}

func wantKeptErr(t *testing.T, k store.Keeper, ch, cursor string, target error) {
	t.Helper()
	got, err := storetest.KeptEvents(t, k, ch, cursor)
	if len(got) > 0 || !errors.Is(err, target) {
		t.Fatalf("Kept(%q, %q) = %v, %v; want %v", ch, cursor, storetest.IDs(got), err, target)
	}
}

// Two stores on one log keep one channel together: events appended
// through either, concurrently, are kept once each and in log order, and
// the chain runs across them, so that a store's trimming of what the
// other appended is seen as a drop.
func TestKeptTwoInstances(t *testing.T) {
	a, prefix := newStore(t, redisstore.Config{KeepPerChannel: 1000, MaxLen: 10})
	b := open(t, redisURL(t), redisstore.Config{Prefix: prefix, KeepPerChannel: 50, MaxLen: 10})
	ch := store.ChannelPrefix + "two"
	start := storetest.MustAppend(t, a, store.Event{Topics: []string{"public"}})
	evs := storetest.AppendConcurrent(t, []store.Store{a, b}, []string{ch}, 200, 8)
	// b appended last, and trimmed the channel to its 50: what a keeps
	// more is not kept any longer.
	last := storetest.MustAppend(t, b, store.Event{Topics: []string{ch}, Data: "last"})
	evs = append(evs, last)
	kept := evs[len(evs)-50:]
	for _, k := range []store.Keeper{a, b} {
		wantKept(t, k, ch, "", kept)
		wantKept(t, k, ch, evs[len(evs)-51].ID, kept)
		wantKept(t, k, ch, evs[180].ID, evs[181:])
		wantKeptErr(t, k, ch, evs[len(evs)-52].ID, store.ErrExpired)
		wantKeptErr(t, k, ch, start.ID, store.ErrExpired)
	}
}

// Kept reads a channel of more events than one read fetches, from any
// cursor, in order.
func TestKeptPages(t *testing.T) {
	s, _ := newStore(t, redisstore.Config{KeepPerChannel: 3000, MaxLen: 100})
	ch := store.ChannelPrefix + "pages"
	start := storetest.MustAppend(t, s, store.Event{Topics: []string{"public"}})
	evs := storetest.AppendConcurrent(t, []store.Store{s}, []string{ch, "public"}, 2500, 10)
	wantKept(t, s, ch, start.ID, evs)
	wantKept(t, s, ch, "", evs)
	wantKept(t, s, ch, evs[1000].ID, evs[1001:])
	wantKept(t, s, ch, evs[2498].ID, evs[2499:])
	// A reader that stops early stops reading.
	n := 0
	for _, err := range s.Kept(context.Background(), ch, start.ID) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 700 {
			break
		}
	}
}

// Whatever makes the store lose a channel's events — its KeepFor passing
// while nobody writes to it, Redis expiring or evicting its key, Redis
// evicting the index — the next event of the channel starts its chain at
// the lost ones or later: Kept from a cursor before them is ErrExpired,
// never the new events alone.
func TestKeptLosses(t *testing.T) {
	clk := storetest.NewClock(time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC))
	s, prefix := newStore(t, redisstore.Config{KeepFor: time.Minute, Now: clk.Now})
	c := rawClient(t)
	ctx := context.Background()
	ch, other := store.ChannelPrefix+"lost", store.ChannelPrefix+"other"
	start := storetest.MustAppend(t, s, store.Event{Topics: []string{"public"}})
	e1 := storetest.MustAppend(t, s, store.Event{Topics: []string{ch}, Data: "1"})
	chKey, last, when := keepKeys(prefix, e1, ch)

	t.Run("idle for KeepFor", func(t *testing.T) {
		clk.Advance(2 * time.Minute)
		o := storetest.MustAppend(t, s, store.Event{Topics: []string{other}}) // forgets ch
		if n, err := c.HExists(ctx, last, chKey[len(chKey)-64:]).Result(); err != nil || n {
			t.Fatalf("the index still knows the idle channel: %v, %v", n, err)
		}
		e2 := storetest.MustAppend(t, s, store.Event{Topics: []string{ch}, Data: "2"})
		wantKeptErr(t, s, ch, start.ID, store.ErrExpired)
		wantKept(t, s, ch, e1.ID, []store.Event{e2})
		wantKept(t, s, ch, "", []store.Event{e2})
		wantKept(t, s, other, e1.ID, []store.Event{o})
		e1 = e2
	})
	t.Run("key expired or evicted", func(t *testing.T) {
		if err := c.Del(ctx, chKey).Err(); err != nil {
			t.Fatal(err)
		}
		wantKeptErr(t, s, ch, start.ID, store.ErrExpired)
		wantKeptErr(t, s, ch, e1.ID, store.ErrExpired) // nothing kept
		wantKept(t, s, ch, "", nil)
		e3 := storetest.MustAppend(t, s, store.Event{Topics: []string{ch}, Data: "3"})
		wantKeptErr(t, s, ch, start.ID, store.ErrExpired)
		wantKept(t, s, ch, e1.ID, []store.Event{e3})
		e1 = e3
	})
	t.Run("index evicted", func(t *testing.T) {
		// With the channel's key, as a maxmemory policy may evict both.
		for _, k := range []string{last, when} {
			before := storetest.MustAppend(t, s, store.Event{Topics: []string{ch}, Data: "before " + k})
			if err := c.Del(ctx, k, chKey).Err(); err != nil {
				t.Fatal(err)
			}
			e := storetest.MustAppend(t, s, store.Event{Topics: []string{ch}, Data: "after " + k})
			wantKeptErr(t, s, ch, e1.ID, store.ErrExpired)
			wantKept(t, s, ch, before.ID, []store.Event{e})
			e1 = e
		}
	})
}

// An event of a channel appended without keeping it — by a store with
// KeepPerChannel negative, or by a version of the store before keeping
// (simulated: kn left behind n, the event not kept) — makes Kept refuse
// a channel whose newest kept event is older, and the chain of the next
// event kept starts after it.
func TestKeptUnkeptAppends(t *testing.T) {
	a, prefix := newStore(t, redisstore.Config{})
	none := open(t, redisURL(t), redisstore.Config{Prefix: prefix, KeepPerChannel: -1})
	ch := store.ChannelPrefix + "mixed"
	e1 := storetest.MustAppend(t, a, store.Event{Topics: []string{ch}, Data: "1"})
	e2 := storetest.MustAppend(t, none, store.Event{Topics: []string{ch}, Data: "2, not kept"})
	for _, k := range []store.Keeper{a, none} {
		wantKeptErr(t, k, ch, e1.ID, store.ErrExpired)
		wantKeptErr(t, k, ch, "", store.ErrExpired)
	}
	e3 := storetest.MustAppend(t, a, store.Event{Topics: []string{ch}, Data: "3"})
	wantKeptErr(t, a, ch, e1.ID, store.ErrExpired)
	wantKept(t, a, ch, e2.ID, []store.Event{e3})

	// An older version appends e4 (to the log only) and leaves kn behind.
	e4 := storetest.MustAppend(t, a, store.Event{Topics: []string{ch}, Data: "4, by an older version"})
	c := rawClient(t)
	ctx := context.Background()
	chKey, _, _ := keepKeys(prefix, e4, ch)
	if err := c.XDel(ctx, chKey, fmt.Sprintf("%d-%d", e4.Time.UnixMilli(), e4.Pos)).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.HSet(ctx, prefix+"meta", "kn", e3.Pos).Err(); err != nil {
		t.Fatal(err)
	}
	wantKeptErr(t, a, ch, e3.ID, store.ErrExpired)
	storetest.MustAppend(t, a, store.Event{Topics: []string{"public"}}) // kn is n again
	wantKeptErr(t, a, ch, e3.ID, store.ErrExpired)
	e5 := storetest.MustAppend(t, a, store.Event{Topics: []string{ch}, Data: "5"})
	wantKeptErr(t, a, ch, e3.ID, store.ErrExpired)
	wantKept(t, a, ch, e4.ID, []store.Event{e5})
}

// The keys of kept channels: a channel's name of any length and content
// makes a key of bounded length; every key of the keeping expires KeepFor
// (here from the DSN) after its last write, so that idle channels leave
// nothing behind; events without a channel write no key of the keeping;
// Delete removes them all.
func TestKeptKeys(t *testing.T) {
	url, prefix := redisURL(t), uniquePrefix(t)
	deleteKeys(t, url, prefix)
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	s := open(t, url+sep+"keep_for=10m", redisstore.Config{Prefix: prefix})
	c := rawClient(t)
	ctx := context.Background()
	for i := range 20 {
		storetest.MustAppend(t, s, store.Event{Topics: []string{fmt.Sprint("public", i)}})
	}
	keys, err := prefixKeys(ctx, c, prefix)
	if err != nil || len(keys) != 2 { // log, meta
		t.Fatalf("keys without channels: %v, %v", keys, err)
	}
	long := store.ChannelPrefix + strings.Repeat("ü\x00{}*? ", 2000)
	e := storetest.MustAppend(t, s, store.Event{Topics: []string{long, "public", store.ChannelPrefix + "b"}})
	wantKept(t, s, long, "", []store.Event{e})
	wantKept(t, s, store.ChannelPrefix+"b", "", []store.Event{e})
	chKey, last, when := keepKeys(prefix, e, long)
	keys, _ = prefixKeys(ctx, c, prefix+"keep:")
	if len(keys) != 4 || !slices.Contains(keys, chKey) || !slices.Contains(keys, last) || !slices.Contains(keys, when) {
		t.Fatalf("keys of the keeping = %q", keys)
	}
	for _, k := range keys {
		if len(k) > len(prefix)+100 {
			t.Errorf("key %q: %d bytes", k, len(k))
		}
		if ttl, err := c.PTTL(ctx, k).Result(); err != nil || ttl <= 9*time.Minute || ttl > 10*time.Minute {
			t.Errorf("PTTL(%q) = %v, %v; want KeepFor", k, ttl, err)
		}
	}
	if err := s.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	if keys, err := prefixKeys(ctx, c, prefix); err != nil || len(keys) != 0 {
		t.Fatalf("keys after Delete: %q, %v", keys, err)
	}
}

// Kept refuses a cursor whose millisecond part is not its event's, as
// History does, and any id that is not one of the log's positions.
func TestKeptCursorForms(t *testing.T) {
	s, _ := newStore(t, redisstore.Config{MaxLen: 10})
	ch := store.ChannelPrefix + "forms"
	var evs []store.Event
	for i := range 300 {
		evs = append(evs, storetest.MustAppend(t, s, store.Event{Topics: []string{ch, "public"}, Data: fmt.Sprint(i)}))
	}
	lastEv := evs[len(evs)-1]
	ep, rest, _ := strings.Cut(lastEv.ID, "-")
	n36, ms36, _ := strings.Cut(rest, "-")
	for _, c := range []struct {
		cursor string
		want   error
	}{
		{ep + "-zz-" + ms36, store.ErrUnknownID},           // beyond the head
		{ep + "-" + n36 + "-1", store.ErrUnknownID},        // the head's position, wrong ms
		{ep + "-z-zzzzzzzzzz", store.ErrUnknownID},         // a position before the head with a later ms
		{strings.ToUpper(ep) + "-1-1", store.ErrUnknownID}, // not canonical
		{"", nil},
		{evs[0].ID, nil},
		{strings.TrimPrefix(evs[0].ID, "#"), nil}, // the legacy form
	} {
		got, err := storetest.KeptEvents(t, s, ch, c.cursor)
		if c.want == nil {
			want := evs[1:]
			if c.cursor == "" {
				want = evs
			}
			if err != nil || len(got) != len(want) {
				t.Errorf("Kept(%q) = %d events, %v; want %d", c.cursor, len(got), err, len(want))
			}
			continue
		}
		if len(got) > 0 || !errors.Is(err, c.want) {
			t.Errorf("Kept(%q) = %d events, %v; want %v", c.cursor, len(got), err, c.want)
		}
	}
}

// A log deleted (by hand: only its own keys) and created again keeps its
// channels apart from those of the log before: Kept never yields an event
// of the old log, and the old log's ids are unknown.
func TestKeptLogReplaced(t *testing.T) {
	s, prefix := newStore(t, redisstore.Config{})
	ch := store.ChannelPrefix + "replaced"
	var old []store.Event
	for i := range 3 {
		old = append(old, storetest.MustAppend(t, s, store.Event{Topics: []string{ch}, Data: fmt.Sprint("old ", i)}))
	}
	if err := rawClient(t).Del(context.Background(), prefix+"log", prefix+"meta").Err(); err != nil {
		t.Fatal(err)
	}
	wantKept(t, s, ch, "", nil)
	e := storetest.MustAppend(t, s, store.Event{Topics: []string{ch}, Data: "new"})
	if e.Pos != 1 {
		t.Fatalf("the new log's first event has position %d", e.Pos)
	}
	wantKept(t, s, ch, "", []store.Event{e})
	wantKeptErr(t, s, ch, old[0].ID, store.ErrUnknownID)
}

// keptHashOf returns the member of the index keys that names the channel
// of chKey.
func keptHashOf(chKey string) string { return chKey[len(chKey)-64:] }

// Channels going idle faster than a tick forgets them: each tick forgets a
// page of idle channels, and while a page is full the next call sweeps
// again rather than wait a second, so that the index forgets every idle
// channel within a few appends and its memory stays bounded by the
// channels written within KeepFor. A channel new after the sweep starts
// after the newest event it forgot.
func TestKeptSweepBacklog(t *testing.T) {
	clk := storetest.NewClock(time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC))
	s, prefix := newStore(t, redisstore.Config{KeepFor: time.Minute, Now: clk.Now})
	c := rawClient(t)
	ctx := context.Background()
	var idle []store.Event
	var hashes []string
	for i := range 150 {
		ch := fmt.Sprint(store.ChannelPrefix, "idle/", i)
		e := storetest.MustAppend(t, s, store.Event{Topics: []string{ch}})
		chKey, _, _ := keepKeys(prefix, e, ch)
		idle, hashes = append(idle, e), append(hashes, keptHashOf(chKey))
	}
	_, last, when := keepKeys(prefix, idle[0], "")
	clk.Advance(2 * time.Minute)
	ch := store.ChannelPrefix + "new"
	var evs []store.Event
	for range 3 { // 150 idle channels: three pages at most
		evs = append(evs, storetest.MustAppend(t, s, store.Event{Topics: []string{ch}}))
	}
	fields, err := c.HKeys(ctx, last).Result()
	if err != nil {
		t.Fatal(err)
	}
	members, err := c.ZRange(ctx, when, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hashes {
		if slices.Contains(fields, h) || slices.Contains(members, h) {
			t.Fatalf("the index still knows an idle channel after 3 appends: %d fields in last, %d members in when", len(fields), len(members))
		}
	}
	wantKept(t, s, ch, idle[149].ID, evs)
	late := store.ChannelPrefix + "late"
	l := storetest.MustAppend(t, s, store.Event{Topics: []string{late}})
	wantKept(t, s, late, idle[149].ID, []store.Event{l})
	wantKeptErr(t, s, late, idle[148].ID, store.ErrExpired)
}

// A channel written more often than once a second has its time in the
// index and its age trim written once a second, not at each event: it
// stays known to the index while it is written (so that a channel new
// since is not refused a cursor younger than KeepFor), its events older
// than KeepFor are trimmed all the same, and its chain is whole.
func TestKeptBusyChannel(t *testing.T) {
	clk := storetest.NewClock(time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC))
	s, prefix := newStore(t, redisstore.Config{KeepFor: time.Minute, Now: clk.Now})
	c := rawClient(t)
	ctx := context.Background()
	ch := store.ChannelPrefix + "busy"
	var evs []store.Event
	for range 140 { // 70 s, two events a second
		evs = append(evs, storetest.MustAppend(t, s, store.Event{Topics: []string{ch}}))
		clk.Advance(500 * time.Millisecond)
	}
	chKey, last, _ := keepKeys(prefix, evs[0], ch)
	if ok, err := c.HExists(ctx, last, keptHashOf(chKey)).Result(); err != nil || !ok {
		t.Fatalf("the index forgot a channel written twice a second: %v, %v", ok, err)
	}
	other := store.ChannelPrefix + "other"
	o := storetest.MustAppend(t, s, store.Event{Topics: []string{other}})
	wantKept(t, s, other, evs[100].ID, []store.Event{o})
	wantKept(t, s, ch, evs[30].ID, evs[31:])
	// The last second's events and those of KeepFor before it: 122.
	if n, err := c.XLen(ctx, chKey).Result(); err != nil || n > 122 {
		t.Fatalf("the busy channel's stream holds %d entries, %v; want its events of the last 61 s at most", n, err)
	}
}

// The index times a channel by its first event in a second, but forgets
// it only once its last event is older than KeepFor: a channel new before
// then is refused no cursor younger than KeepFor.
func TestKeptForgetsAfterKeepFor(t *testing.T) {
	clk := storetest.NewClock(time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC))
	s, _ := newStore(t, redisstore.Config{KeepFor: time.Minute, Now: clk.Now})
	ch, n1, n2 := store.ChannelPrefix+"a", store.ChannelPrefix+"new1", store.ChannelPrefix+"new2"
	storetest.MustAppend(t, s, store.Event{Topics: []string{ch}}) // at 0 s: the channel's time
	clk.Advance(900 * time.Millisecond)
	p := storetest.MustAppend(t, s, store.Event{Topics: []string{"public"}})
	clk.Advance(50 * time.Millisecond)
	e := storetest.MustAppend(t, s, store.Event{Topics: []string{ch}}) // 0.95 s: the same second
	clk.Advance(time.Minute - 50*time.Millisecond)                     // 60.9 s: p is KeepFor old, e younger
	e1 := storetest.MustAppend(t, s, store.Event{Topics: []string{n1}})
	wantKept(t, s, n1, p.ID, []store.Event{e1})
	clk.Advance(time.Second) // 61.9 s: e is older than KeepFor
	e2 := storetest.MustAppend(t, s, store.Event{Topics: []string{n2}})
	wantKeptErr(t, s, n2, p.ID, store.ErrExpired)
	wantKept(t, s, n2, e.ID, []store.Event{e2})
}

// The index's time set lost (evicted) and written again between two ticks
// is found at the next tick, and the index starts again, so that channels
// no longer timed are not remembered for ever; meanwhile it expires as
// the index does. A channel's key lost between two ticks has an expiry
// again after its next event.
func TestKeptLostBetweenTicks(t *testing.T) {
	clk := storetest.NewClock(time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC))
	s, prefix := newStore(t, redisstore.Config{KeepFor: time.Minute, Now: clk.Now})
	c := rawClient(t)
	ctx := context.Background()
	a, b := store.ChannelPrefix+"a", store.ChannelPrefix+"b"
	start := storetest.MustAppend(t, s, store.Event{Topics: []string{"public"}})
	ea := storetest.MustAppend(t, s, store.Event{Topics: []string{a}})
	keyA, last, when := keepKeys(prefix, ea, a)
	if err := c.Del(ctx, when).Err(); err != nil {
		t.Fatal(err)
	}
	eb := storetest.MustAppend(t, s, store.Event{Topics: []string{b}}) // no tick
	if ttl, err := c.PTTL(ctx, when).Result(); err != nil || ttl <= 0 {
		t.Fatalf("PTTL of the index's time set written again = %v, %v; want KeepFor", ttl, err)
	}
	keyB, _, _ := keepKeys(prefix, eb, b)
	if err := c.Del(ctx, keyB).Err(); err != nil {
		t.Fatal(err)
	}
	eb2 := storetest.MustAppend(t, s, store.Event{Topics: []string{b}})
	if ttl, err := c.PTTL(ctx, keyB).Result(); err != nil || ttl <= 0 {
		t.Fatalf("PTTL of a channel's key written again = %v, %v; want KeepFor", ttl, err)
	}
	wantKeptErr(t, s, b, start.ID, store.ErrExpired)
	wantKept(t, s, b, eb.ID, []store.Event{eb2})
	clk.Advance(2 * time.Minute)
	eb3 := storetest.MustAppend(t, s, store.Event{Topics: []string{b}}) // a tick
	if ok, err := c.HExists(ctx, last, keptHashOf(keyA)).Result(); err != nil || ok {
		t.Fatalf("the index still knows a channel it no longer times: %v, %v", ok, err)
	}
	wantKept(t, s, b, eb2.ID, []store.Event{eb3})
}

// An index written by the version of the store before the index's mark is
// taken over as it is: the chains of its channels go on, and a loss of
// the index is still seen afterwards.
func TestKeptIndexWithoutMark(t *testing.T) {
	s, prefix := newStore(t, redisstore.Config{})
	c := rawClient(t)
	ctx := context.Background()
	a, b := store.ChannelPrefix+"a", store.ChannelPrefix+"b"
	start := storetest.MustAppend(t, s, store.Event{Topics: []string{"public"}})
	ea := storetest.MustAppend(t, s, store.Event{Topics: []string{a}})
	eb := storetest.MustAppend(t, s, store.Event{Topics: []string{b}})
	_, last, when := keepKeys(prefix, ea, a)
	keyB, _, _ := keepKeys(prefix, eb, b)
	if err := c.HDel(ctx, last, "-").Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.ZRem(ctx, when, "-").Err(); err != nil {
		t.Fatal(err)
	}
	ea2 := storetest.MustAppend(t, s, store.Event{Topics: []string{a}})
	wantKept(t, s, a, ea.ID, []store.Event{ea2})
	if err := c.Del(ctx, last, keyB).Err(); err != nil {
		t.Fatal(err)
	}
	eb2 := storetest.MustAppend(t, s, store.Event{Topics: []string{b}})
	wantKeptErr(t, s, b, start.ID, store.ErrExpired)
	wantKept(t, s, b, ea2.ID, []store.Event{eb2})
}

// With a KeepFor of a few seconds, ticks come every quarter of it rather
// than every second, so that the expiry of the index, refreshed at ticks,
// never lapses while channels are written.
func TestKeptShortKeepFor(t *testing.T) {
	clk := storetest.NewClock(time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC))
	s, prefix := newStore(t, redisstore.Config{KeepFor: 2 * time.Second, Now: clk.Now})
	c := rawClient(t)
	ctx := context.Background()
	ch := store.ChannelPrefix + "short"
	e := storetest.MustAppend(t, s, store.Event{Topics: []string{ch}})
	_, last, when := keepKeys(prefix, e, ch)
	for _, k := range []string{last, when} {
		if err := c.PExpire(ctx, k, time.Hour).Err(); err != nil { // to see the next refresh
			t.Fatal(err)
		}
	}
	clk.Advance(600 * time.Millisecond)
	storetest.MustAppend(t, s, store.Event{Topics: []string{ch}})
	for _, k := range []string{last, when} {
		if ttl, err := c.PTTL(ctx, k).Result(); err != nil || ttl <= 0 || ttl > 2*time.Second {
			t.Errorf("PTTL(%q) = %v, %v 600 ms after the last tick; want KeepFor", k, ttl, err)
		}
	}
}
