package store_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/storetest"
)

func newMemory(t *testing.T, l storetest.Limits) store.Store {
	return store.NewMemory(store.MemoryConfig{MaxEvents: l.MaxEvents, MaxBytes: l.MaxBytes, TTL: l.TTL, Now: l.Now,
		KeepPerChannel: l.KeepPerChannel, KeepFor: l.KeepFor})
}

func TestMemoryContract(t *testing.T) {
	storetest.Run(t, storetest.Harness{New: newMemory})
}

// TestMemoryKeepMaxBytes checks the bound on everything a Memory store
// keeps of its channels: past it, the channel written to least recently
// loses its oldest events first, and says so (ErrExpired), while the
// channel being written keeps what it has.
func TestMemoryKeepMaxBytes(t *testing.T) {
	// Sizes as stored: generated ids of one base-36 digit.
	probe := store.Event{ID: "#abcdefgh-1", Topics: []string{"sluice:old"}, Data: strings.Repeat("x", 100)}
	oldSize := int64(store.EventSize(&probe)) + store.KeptOverhead
	probe.Topics = []string{"sluice:new"}
	m := store.NewMemory(store.MemoryConfig{KeepMaxBytes: oldSize + 9*(int64(store.EventSize(&probe))+store.KeptOverhead)})
	defer m.Close()
	start := storetest.MustAppend(t, m, store.Event{Topics: []string{"public"}})
	old := storetest.MustAppend(t, m, store.Event{Topics: []string{"sluice:old"}, Data: probe.Data})
	var busy []store.Event
	for range 9 {
		busy = append(busy, storetest.MustAppend(t, m, store.Event{Topics: []string{"sluice:new"}, Data: probe.Data}))
	}
	if got, err := storetest.KeptEvents(t, m, "sluice:old", start.ID); err != nil || len(got) != 1 {
		t.Fatalf("Kept(old) within the bound: %d events, %v", len(got), err)
	}
	busy = append(busy, storetest.MustAppend(t, m, store.Event{Topics: []string{"sluice:new"}, Data: probe.Data}))
	if got, err := storetest.KeptEvents(t, m, "sluice:old", start.ID); !errors.Is(err, store.ErrExpired) {
		t.Fatalf("Kept(old) past the bound: %d events, %v; want ErrExpired", len(got), err)
	}
	if got, err := storetest.KeptEvents(t, m, "sluice:new", old.ID); err != nil || len(got) != len(busy) {
		t.Fatalf("Kept(busy): %d events, %v; want all %d", len(got), err, len(busy))
	}
	// An event larger than the bound is not kept, and costs the other
	// channels nothing; its own channel is incomplete from then on.
	huge := storetest.MustAppend(t, m, store.Event{Topics: []string{"sluice:huge"}, Data: strings.Repeat("x", 40*len(probe.Data))})
	if got, err := storetest.KeptEvents(t, m, "sluice:new", old.ID); err != nil || len(got) != len(busy) {
		t.Fatalf("Kept(busy) after an oversized event: %d events, %v; want all %d", len(got), err, len(busy))
	}
	if got, err := storetest.KeptEvents(t, m, "sluice:huge", start.ID); !errors.Is(err, store.ErrExpired) {
		t.Fatalf("Kept(huge): %d events, %v; want ErrExpired", len(got), err)
	}
	after := storetest.MustAppend(t, m, store.Event{Topics: []string{"sluice:huge"}, Data: "small"})
	if got, err := storetest.KeptEvents(t, m, "sluice:huge", huge.ID); err != nil || len(got) != 1 || got[0].ID != after.ID {
		t.Fatalf("Kept(huge) after the oversized event: %v, %v", storetest.IDs(got), err)
	}
}

func TestEpochIDs(t *testing.T) {
	ep := store.NewEpoch()
	if !ep.Valid() || len(ep) != 8 {
		t.Fatalf("NewEpoch() = %q", ep)
	}
	if store.NewEpoch() == ep {
		t.Fatalf("two NewEpoch calls returned %q", ep)
	}
	for _, pos := range []uint64{1, 9, 35, 36, 1295, 1296, 1 << 32, 1<<64 - 1} {
		id := ep.ID(pos)
		if got, ok := ep.Pos(id); !ok || got != pos {
			t.Fatalf("Pos(ID(%d) = %q) = %d, %v", pos, id, got, ok)
		}
		if ep.IDLen(pos) != len(id) {
			t.Fatalf("IDLen(%d) = %d, len(%q) = %d", pos, ep.IDLen(pos), id, len(id))
		}
	}
	if id := ep.ID(36); id != "#"+string(ep)+"-10" {
		t.Fatalf("ID(36) = %q, want a fragment: #<epoch>-10", id)
	}
	// The legacy form of earlier versions, without "#", names the same
	// position, so cursors issued before an upgrade keep working.
	for _, pos := range []uint64{1, 36, 1<<64 - 1} {
		legacy := strings.TrimPrefix(ep.ID(pos), "#")
		if got, ok := ep.Pos(legacy); !ok || got != pos {
			t.Fatalf("Pos(legacy %q) = %d, %v; want %d", legacy, got, ok, pos)
		}
	}
	other := store.Epoch("other")
	for _, id := range []string{
		"", "#", string(ep), "#" + string(ep), string(ep) + "-", "#" + string(ep) + "-", string(ep) + "-0", "#" + string(ep) + "-0",
		string(ep) + "-01", string(ep) + "-A", "#" + string(ep) + "-A",
		string(ep) + "-1-", string(ep) + "_1", string(ep) + "-zzzzzzzzzzzzz", string(ep) + "-4" + strings.Repeat("0", 12),
		other.ID(5), strings.TrimPrefix(other.ID(5), "#"), "x" + ep.ID(5), "#" + ep.ID(5), ep.ID(5) + "#", " " + ep.ID(5),
	} {
		if pos, ok := ep.Pos(id); ok {
			t.Errorf("Pos(%q) = %d, true; want not a generated id", id, pos)
		}
	}
	for _, bad := range []store.Epoch{"", "ABC", "a-b", "a\n", store.Epoch(strings.Repeat("a", 17))} {
		if bad.Valid() {
			t.Errorf("Epoch(%q).Valid() = true", bad)
		}
	}
}

func TestEventSize(t *testing.T) {
	e := store.Event{ID: "abc", Type: "tt", Data: "12345", Topics: []string{"x", "yy"}}
	if got := store.EventSize(&e); got != 3+2+5+1+2 {
		t.Fatalf("EventSize = %d, want 13", got)
	}
}

// idOf returns the generated id of pos in the store whose head is head.
func idOf(head string, pos uint64) string {
	return store.Epoch(head[1:strings.IndexByte(head, '-')]).ID(pos)
}

func TestMemoryCursorRules(t *testing.T) {
	ctx := context.Background()
	m := store.NewMemory(store.MemoryConfig{MaxEvents: 4})
	defer m.Close()
	var evs []store.Event
	for i := range 10 {
		e, err := m.Append(ctx, store.Event{Data: fmt.Sprint(i)})
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, e)
	}
	head, _ := m.Head(ctx)
	for _, c := range []struct {
		cursor string
		n      int
		err    error
	}{
		{idOf(head, 11), 0, store.ErrUnknownID}, // beyond the head
		{idOf(head, 1000), 0, store.ErrUnknownID},
		{evs[0].ID, 0, store.ErrExpired},
		{evs[4].ID, 0, store.ErrExpired},
		{evs[5].ID, 4, nil}, // newest evicted: nothing after it is missing
		{evs[6].ID, 3, nil},
		{evs[9].ID, 0, nil},
		{"", 4, nil},
	} {
		var n int
		var err error
		for _, e := range m.History(ctx, c.cursor, nil) {
			if e != nil {
				err = e
				continue
			}
			n++
		}
		if n != c.n || !errors.Is(err, c.err) || (c.err == nil) != (err == nil) {
			t.Errorf("History(%q) = %d events, %v; want %d, %v", c.cursor, n, err, c.n, c.err)
		}
	}
}

func TestMemoryRefusesItsOwnIDForm(t *testing.T) {
	ctx := context.Background()
	m := store.NewMemory(store.MemoryConfig{})
	defer m.Close()
	e, err := m.Append(ctx, store.Event{})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{
		e.ID, idOf(e.ID, 2), idOf(e.ID, 99),
		strings.TrimPrefix(e.ID, "#"), strings.TrimPrefix(idOf(e.ID, 99), "#"), // the legacy form
	} {
		if _, err := m.Append(ctx, store.Event{ID: id}); !errors.Is(err, store.ErrInvalidEvent) {
			t.Errorf("Append(custom id %q in the store's generated form) = %v; want ErrInvalidEvent", id, err)
		}
	}
	// Another store's generated ids are ordinary custom ids here.
	m2 := store.NewMemory(store.MemoryConfig{})
	defer m2.Close()
	foreign, _ := m2.Append(ctx, store.Event{})
	if got, err := m.Append(ctx, store.Event{ID: foreign.ID}); err != nil || got.ID != foreign.ID {
		t.Fatalf("Append(foreign generated id as custom id) = %+v, %v", got, err)
	}
}

func TestMemoryOversizedEvent(t *testing.T) {
	ctx := context.Background()
	m := store.NewMemory(store.MemoryConfig{MaxBytes: 100})
	defer m.Close()
	if _, err := m.Append(ctx, store.Event{Data: strings.Repeat("x", 101)}); !errors.Is(err, store.ErrInvalidEvent) {
		t.Fatalf("Append of an event larger than MaxBytes: %v, want ErrInvalidEvent", err)
	}
	if h, _ := m.Head(ctx); h != "" {
		t.Fatalf("Head = %q after a refused append", h)
	}
}

func TestMemoryTimeNeverDecreases(t *testing.T) {
	ctx := context.Background()
	clk := storetest.NewClock(time.Unix(1000, 0))
	m := store.NewMemory(store.MemoryConfig{Now: clk.Now})
	defer m.Close()
	e1, _ := m.Append(ctx, store.Event{})
	clk.Advance(-time.Hour)
	e2, _ := m.Append(ctx, store.Event{})
	if e2.Time.Before(e1.Time) {
		t.Fatalf("Time went backwards along the log: %v then %v", e1.Time, e2.Time)
	}
}

func TestMemoryDefaultsAndNoLimits(t *testing.T) {
	ctx := context.Background()
	count := func(m *store.Memory) int {
		n := 0
		for _, err := range m.History(ctx, "", nil) {
			if err != nil {
				t.Fatal(err)
			}
			n++
		}
		return n
	}
	m := store.NewMemory(store.MemoryConfig{})
	defer m.Close()
	for range store.DefaultMemoryMaxEvents + 10 {
		if _, err := m.Append(ctx, store.Event{Data: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(m); n != store.DefaultMemoryMaxEvents {
		t.Fatalf("default store retained %d events, want %d", n, store.DefaultMemoryMaxEvents)
	}
	u := store.NewMemory(store.MemoryConfig{MaxEvents: -1, MaxBytes: -1})
	defer u.Close()
	for range 1000 {
		if _, err := u.Append(ctx, store.Event{Data: strings.Repeat("y", 100_000)}); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(u); n != 1000 {
		t.Fatalf("unlimited store retained %d events, want 1000", n)
	}
}

// TestMemoryModel checks the ring against a plain slice under random
// appends (sizes, custom ids, duplicates) with count, byte and age limits,
// so wrap-around, growth while the ring is offset and the custom index are
// all exercised.
func TestMemoryModel(t *testing.T) {
	ctx := context.Background()
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 42))
		clk := storetest.NewClock(time.Unix(0, 0))
		cfg := store.MemoryConfig{
			MaxEvents: 1 + rng.IntN(300),
			MaxBytes:  int64(200 + rng.IntN(20000)),
			TTL:       time.Duration(1+rng.IntN(100)) * time.Second,
			Now:       clk.Now,
		}
		m := store.NewMemory(cfg)
		var model []store.Event // retained, oldest first
		var evicted []store.Event
		for op := range 2000 {
			if rng.IntN(10) == 0 {
				clk.Advance(time.Duration(rng.IntN(5000)) * time.Millisecond)
			}
			e := store.Event{Data: strings.Repeat("d", rng.IntN(150))}
			if rng.IntN(4) == 0 {
				e.ID = fmt.Sprintf("c%d", rng.IntN(8))
			}
			got, err := m.Append(ctx, e)
			if err != nil {
				t.Fatalf("seed %d op %d: %v", seed, op, err)
			}
			model = append(model, got)
			// Apply the documented rules to the model.
			now := clk.Now()
			var bytes int64
			for _, x := range model {
				bytes += int64(store.EventSize(&x))
			}
			for len(model) > 0 && (len(model) > cfg.MaxEvents || bytes > cfg.MaxBytes || now.Sub(model[0].Time) > cfg.TTL) {
				bytes -= int64(store.EventSize(&model[0]))
				evicted = append(evicted, model[0])
				model = model[1:]
			}
			if op%97 != 0 {
				continue
			}
			var hist []store.Event
			for x, err := range m.History(ctx, "", nil) {
				if err != nil {
					t.Fatalf("seed %d op %d: History: %v", seed, op, err)
				}
				hist = append(hist, x)
			}
			if len(hist) != len(model) || len(hist) > 0 && hist[0].Pos != model[0].Pos {
				t.Fatalf("seed %d op %d: store keeps %d events from Pos %v, model %d", seed, op, len(hist), positions(hist), len(model))
			}
			for i := range hist {
				if hist[i].ID != model[i].ID || hist[i].Pos != model[i].Pos || hist[i].Data != model[i].Data {
					t.Fatalf("seed %d op %d: event %d differs", seed, op, i)
				}
			}
			// Every custom id resolves to its first retained occurrence.
			for c := range 8 {
				id := fmt.Sprintf("c%d", c)
				first := -1
				for i, x := range model {
					if x.ID == id {
						first = i
						break
					}
				}
				n, err := 0, error(nil)
				for _, e := range m.History(ctx, id, nil) {
					if e != nil {
						err = e
					} else {
						n++
					}
				}
				if first < 0 && !errors.Is(err, store.ErrUnknownID) || first >= 0 && (err != nil || n != len(model)-first-1) {
					t.Fatalf("seed %d op %d: History(%q) = %d events, %v; first retained at %d of %d", seed, op, id, n, err, first, len(model))
				}
			}
			// A random evicted generated id is expired, except the newest
			// evicted one, which is still a valid cursor.
			if len(evicted) > 1 {
				x := evicted[rng.IntN(len(evicted)-1)]
				if x.Pos+1 < model[0].Pos && len(x.ID) != 2 { // not a custom id "cN"
					for _, err := range m.History(ctx, x.ID, nil) {
						if !errors.Is(err, store.ErrExpired) {
							t.Fatalf("seed %d op %d: History(evicted %q) = %v, want ErrExpired", seed, op, x.ID, err)
						}
					}
				}
			}
		}
		m.Close()
	}
}

func positions(evs []store.Event) []uint64 {
	var ps []uint64
	for i, e := range evs {
		if i == 5 {
			break
		}
		ps = append(ps, e.Pos)
	}
	return ps
}
