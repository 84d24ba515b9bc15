package boltstore

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/storetest"
)

// kept returns what s keeps of channel after cursor, failing the test on an
// error.
func kept(t *testing.T, s *Store, channel, cursor string) []store.Event {
	t.Helper()
	evs, err := storetest.KeptEvents(t, s, channel, cursor)
	if err != nil {
		t.Fatalf("Kept(%q, %q): %v after %d events", channel, cursor, err, len(evs))
	}
	return evs
}

func wantKeptErr(t *testing.T, s *Store, channel, cursor string, target error) {
	t.Helper()
	evs, err := storetest.KeptEvents(t, s, channel, cursor)
	if !errors.Is(err, target) {
		t.Fatalf("Kept(%q, %q): %d events, %v; want %v", channel, cursor, len(evs), err, target)
	}
}

func samePos(t *testing.T, what string, got, want []store.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d events, want %d", what, len(got), len(want))
	}
	for i := range got {
		if got[i].Pos != want[i].Pos || got[i].ID != want[i].ID || got[i].Data != want[i].Data {
			t.Fatalf("%s: event %d is %d %q %q, want %d %q %q", what, i, got[i].Pos, got[i].ID, got[i].Data, want[i].Pos, want[i].ID, want[i].Data)
		}
	}
}

// TestKeepMaxBytes checks the bound on everything the store keeps of its
// channels: past it, the channel written to least recently loses its oldest
// events first and says so, the channel being written keeps what it has,
// and the count is right after a restart, where a lowered bound applies at
// Open.
func TestKeepMaxBytes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	data := strings.Repeat("x", 100)
	// Sizes as stored: generated ids of one base-36 digit.
	probe := store.Event{ID: "#abcdefgh-1", Topics: []string{"sluice:old"}, Data: data}
	oldSize := int64(store.EventSize(&probe))
	probe.Topics = []string{"sluice:new"}
	newSize := int64(store.EventSize(&probe))
	cfg := Config{KeepMaxBytes: oldSize + 9*newSize}
	s := mustOpen(t, path, cfg)
	start := storetest.MustAppend(t, s, store.Event{Topics: []string{"public"}})
	old := storetest.MustAppend(t, s, store.Event{Topics: []string{"sluice:old"}, Data: data})
	var busy []store.Event
	for range 8 {
		busy = append(busy, storetest.MustAppend(t, s, store.Event{Topics: []string{"sluice:new"}, Data: data}))
	}
	samePos(t, "Kept(old) within the bound", kept(t, s, "sluice:old", start.ID), []store.Event{old})
	busy = append(busy, storetest.MustAppend(t, s, store.Event{Topics: []string{"sluice:new"}, Data: data}))
	samePos(t, "Kept(old) at the bound", kept(t, s, "sluice:old", start.ID), []store.Event{old})
	busy = append(busy, storetest.MustAppend(t, s, store.Event{Topics: []string{"sluice:new"}, Data: data}))
	wantKeptErr(t, s, "sluice:old", start.ID, store.ErrExpired)
	samePos(t, "Kept(new)", kept(t, s, "sluice:new", old.ID), busy)
	check(t, s)

	// The bound holds across a restart; a lower one is applied at Open.
	s.Close()
	cfg.KeepMaxBytes = 4 * newSize
	s = mustOpen(t, path, cfg)
	check(t, s)
	wantKeptErr(t, s, "sluice:new", old.ID, store.ErrExpired)
	samePos(t, "Kept(new) after lowering the bound", kept(t, s, "sluice:new", busy[5].ID), busy[6:])
	wantKeptErr(t, s, "sluice:new", busy[4].ID, store.ErrExpired)
}

// TestKeepOversizedEvent checks that an event larger than KeepMaxBytes on
// its own is not kept, at no cost to the other channels, and that its
// channel says what it lost.
func TestKeepOversizedEvent(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "events.db"), Config{KeepMaxBytes: 1000})
	start := storetest.MustAppend(t, s, store.Event{Topics: []string{"public"}})
	other := storetest.MustAppend(t, s, store.Event{Topics: []string{"sluice:other"}, Data: "small"})
	a1 := storetest.MustAppend(t, s, store.Event{Topics: []string{"sluice:a"}, Data: "small"})
	big := storetest.MustAppend(t, s, store.Event{Topics: []string{"sluice:a", "sluice:b"}, Data: strings.Repeat("x", 2000)})
	a2 := storetest.MustAppend(t, s, store.Event{Topics: []string{"sluice:a"}, Data: "after"})
	for _, c := range []string{start.ID, a1.ID} {
		wantKeptErr(t, s, "sluice:a", c, store.ErrExpired)
	}
	wantKeptErr(t, s, "sluice:b", start.ID, store.ErrExpired)
	samePos(t, "Kept(a) after the big event", kept(t, s, "sluice:a", big.ID), []store.Event{a2})
	samePos(t, "Kept(other)", kept(t, s, "sluice:other", start.ID), []store.Event{other})
	check(t, s)
}

// TestKeptForgottenChannel checks that a channel that lost everything it
// kept, and is written again, does not pass its new events off as all
// there was.
func TestKeptForgottenChannel(t *testing.T) {
	clk := storetest.NewClock(time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC))
	s := mustOpen(t, filepath.Join(t.TempDir(), "events.db"), Config{KeepFor: time.Minute, Now: clk.Now})
	start := storetest.MustAppend(t, s, store.Event{Topics: []string{"public"}})
	a1 := storetest.MustAppend(t, s, store.Event{Topics: []string{"sluice:a"}, Data: "1"})
	clk.Advance(2 * time.Minute)
	// A commit without a channel drops channels idle for KeepFor.
	mid := storetest.MustAppend(t, s, store.Event{Topics: []string{"public"}})
	if err := s.db.View(func(tx *bbolt.Tx) error {
		if v := tx.Bucket(bucketKeptChans).Get([]byte("sluice:a")); v != nil {
			return errors.New("the idle channel is still kept")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	check(t, s)
	a2 := storetest.MustAppend(t, s, store.Event{Topics: []string{"sluice:a"}, Data: "2"})
	wantKeptErr(t, s, "sluice:a", start.ID, store.ErrExpired)
	for _, c := range []string{a1.ID, mid.ID} {
		samePos(t, "Kept(a, "+c+")", kept(t, s, "sluice:a", c), []store.Event{a2})
	}
	// A channel never written since is as unknown as before.
	b := storetest.MustAppend(t, s, store.Event{Topics: []string{"sluice:b"}, Data: "b"})
	samePos(t, "Kept(b)", kept(t, s, "sluice:b", mid.ID), []store.Event{b})
	wantKeptErr(t, s, "sluice:b", start.ID, store.ErrExpired)
}

// TestKeptBatches checks a channel read in several batches, and that a
// drop between two batches ends the reading with ErrExpired rather than a
// gap.
func TestKeptBatches(t *testing.T) {
	const n = 2*readBatch + 10
	s := mustOpen(t, filepath.Join(t.TempDir(), "events.db"), Config{KeepPerChannel: n, MaxEvents: 10})
	ctx := context.Background()
	start := storetest.MustAppend(t, s, store.Event{Topics: []string{"public"}})
	var evs []store.Event
	for i := range n {
		evs = append(evs, storetest.MustAppend(t, s, store.Event{Topics: []string{"sluice:a"}, Data: fmt.Sprint(i)}))
	}
	samePos(t, "Kept(a)", kept(t, s, "sluice:a", start.ID), evs)
	samePos(t, "Kept(a) from the middle", kept(t, s, "sluice:a", evs[readBatch+3].ID), evs[readBatch+4:])

	got := 0
	var err error
	for e, e2 := range s.Kept(ctx, "sluice:a", start.ID) {
		if err = e2; err != nil {
			break
		}
		if e.Pos != evs[got].Pos {
			t.Fatalf("event %d is at %d, want %d", got, e.Pos, evs[got].Pos)
		}
		if got++; got == 1 {
			// The channel turns over before the second batch is read.
			for i := range readBatch + 1 {
				storetest.MustAppend(t, s, store.Event{Topics: []string{"sluice:a"}, Data: fmt.Sprint("later ", i)})
			}
		}
	}
	if got != readBatch || !errors.Is(err, store.ErrExpired) {
		t.Fatalf("Kept while the channel turned over: %d events, then %v; want %d, then ErrExpired", got, err, readBatch)
	}
}

// TestKeptLongChannel checks that channels too long for a bbolt key are
// kept, each apart from the others.
func TestKeptLongChannel(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "events.db"), Config{})
	long1 := store.ChannelPrefix + strings.Repeat("l", 40_000)
	long2 := long1 + "2"
	start := storetest.MustAppend(t, s, store.Event{Topics: []string{"public"}})
	e1 := storetest.MustAppend(t, s, store.Event{Topics: []string{long1, "sluice:a"}})
	e2 := storetest.MustAppend(t, s, store.Event{Topics: []string{long2}})
	samePos(t, "Kept(long1)", kept(t, s, long1, start.ID), []store.Event{e1})
	samePos(t, "Kept(long2)", kept(t, s, long2, start.ID), []store.Event{e2})
	samePos(t, "Kept(a)", kept(t, s, "sluice:a", start.ID), []store.Event{e1})
	check(t, s)
}

// TestKeepUpgradeAndGaps checks a file written by a version that did not
// keep channels: it opens with its log intact, channels are kept from then
// on, and Kept says ErrExpired for cursors from before. The same holds for
// a file appended to with keeping off.
func TestKeepUpgradeAndGaps(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	s := mustOpen(t, path, Config{})
	before := storetest.MustAppend(t, s, store.Event{Topics: []string{"sluice:a"}, Data: "before"})
	last := storetest.MustAppend(t, s, store.Event{Topics: []string{"public"}})
	s.Close()
	// What the previous version wrote: no kept buckets, no meta of theirs.
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{bucketKept, bucketKeptChans, bucketKeptLRU} {
			if err := tx.DeleteBucket(b); err != nil {
				return err
			}
		}
		for _, k := range [][]byte{keyKeepLast, keyKeepFloor, keyKeepBytes} {
			if err := tx.Bucket(bucketMeta).Delete(k); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s = mustOpen(t, path, Config{})
	check(t, s)
	n := 0
	for _, err := range s.History(ctx, "", nil) {
		if err != nil {
			t.Fatalf("History after the upgrade: %v", err)
		}
		n++
	}
	if n != 2 {
		t.Fatalf("History after the upgrade: %d events, want 2", n)
	}
	if evs := kept(t, s, "sluice:a", ""); len(evs) != 0 {
		t.Fatalf("Kept(a, \"\") after the upgrade: %d events", len(evs))
	}
	wantKeptErr(t, s, "sluice:a", before.ID, store.ErrExpired)
	after := storetest.MustAppend(t, s, store.Event{Topics: []string{"sluice:a"}, Data: "after"})
	wantKeptErr(t, s, "sluice:a", before.ID, store.ErrExpired)
	samePos(t, "Kept(a) from the upgrade", kept(t, s, "sluice:a", last.ID), []store.Event{after})
	check(t, s)
	s.Close()

	// Appended to without keeping: what was kept lacks an event.
	s = mustOpen(t, path, Config{KeepPerChannel: -1})
	wantKeptErr(t, s, "sluice:a", after.ID, store.ErrExpired)
	missed := storetest.MustAppend(t, s, store.Event{Topics: []string{"sluice:a"}, Data: "not kept"})
	s.Close()
	s = mustOpen(t, path, Config{})
	check(t, s)
	wantKeptErr(t, s, "sluice:a", after.ID, store.ErrExpired)
	later := storetest.MustAppend(t, s, store.Event{Topics: []string{"sluice:a"}, Data: "later"})
	wantKeptErr(t, s, "sluice:a", after.ID, store.ErrExpired)
	samePos(t, "Kept(a) after keeping resumed", kept(t, s, "sluice:a", missed.ID), []store.Event{later})
	if _, err := s.Append(ctx, store.Event{Topics: []string{"sluice:a"}}); err != nil {
		t.Fatal(err)
	}
	check(t, s)
}

// TestKeepLoweredPerChannel checks that a lowered KeepPerChannel applies
// at once to what the file kept, before the channel is written again.
func TestKeepLoweredPerChannel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	s := mustOpen(t, path, Config{KeepPerChannel: 10})
	var evs []store.Event
	for i := range 6 {
		evs = append(evs, storetest.MustAppend(t, s, store.Event{Topics: []string{"sluice:a"}, Data: fmt.Sprint(i)}))
	}
	s.Close()
	s = mustOpen(t, path, Config{KeepPerChannel: 3})
	samePos(t, "Kept(a, \"\")", kept(t, s, "sluice:a", ""), evs[3:])
	samePos(t, "Kept(a, evs[2])", kept(t, s, "sluice:a", evs[2].ID), evs[3:])
	wantKeptErr(t, s, "sluice:a", evs[1].ID, store.ErrExpired)
	e := storetest.MustAppend(t, s, store.Event{Topics: []string{"sluice:a"}})
	samePos(t, "Kept(a) after a write", kept(t, s, "sluice:a", evs[3].ID), append(evs[4:], e))
	check(t, s)
}
