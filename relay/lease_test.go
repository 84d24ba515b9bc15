package relay_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/sharedlog"
	"github.com/sluicehq/sluice/internal/ssetest"
	"github.com/sluicehq/sluice/relay"
	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/stream"
)

// A relay started on A and read on B. While A renews its lease, B never
// declares it lost, however long the upstream is silent. When A's relay
// dies mid-answer (its goroutine stops without an end, as when the
// instance dies), the reader on B gets relay-lost within LeaseTTL +
// LeaseInterval, then the end; a reader resuming later, on A or B, gets
// the same end; the upstream was called once.
func TestRelayLost(t *testing.T) {
	const (
		interval = time.Second
		ttl      = 3 * time.Second
	)
	for _, kind := range sharedlog.Kinds {
		t.Run(kind, func(t *testing.T) {
			clock := newFakeClock()
			opts := &relay.Options{Clock: clock, LeaseInterval: interval, LeaseTTL: ttl,
				ReadTimeout: time.Hour, MaxDuration: 2 * time.Hour}
			llm := newFakeLLM(t, 100, true)
			sa, sb := sharedlog.Open(t, kind)
			a, b := newNode(t, sa, llm, opts), newNode(t, sb, llm, opts)

			var ans answer
			resp := a.ask(&ans)
			llm.release(5)
			ans.read(t, resp, 5)
			rel := a.relay(ans.id)
			// The client resumes on B, and waits there: the upstream is
			// silent.
			resp = b.resume(&ans)
			waitFor(t, "B to watch the lease", func() bool {
				_, _, running, watching := relay.MonitorState(b.rl, ans.id)
				return running && watching
			})

			// Alive: B reads the renewals, and never declares A lost.
			step := func() (lost int) {
				t.Helper()
				passes, _, _, _ := relay.MonitorState(b.rl, ans.id)
				renewals := relay.Renewals(rel)
				clock.Advance(interval)
				waitFor(t, "a pass of B's monitor", func() bool {
					p, _, running, _ := relay.MonitorState(b.rl, ans.id)
					return p > passes || !running
				})
				if rel.Err() == nil {
					select {
					case <-rel.Done():
					default:
						waitFor(t, "A's renewal", func() bool { return relay.Renewals(rel) > renewals })
					}
				}
				_, lost, _, _ = relay.MonitorState(b.rl, ans.id)
				return lost
			}
			for range 3 * ttl / interval {
				if lost := step(); lost != 0 {
					t.Fatal("B declared a live relay lost")
				}
			}
			llm.release(1)
			ans.read(t, resp, 1) // still live: the next token comes
			if ans.evs[5].Data != "5" {
				t.Fatalf("got %+v", ans.evs[5])
			}
			resp = b.resume(&ans)
			waitFor(t, "B to watch the lease", func() bool {
				_, _, running, watching := relay.MonitorState(b.rl, ans.id)
				return running && watching
			})

			// A's relay dies.
			relay.Kill(rel)
			steps := 0
			for {
				steps++
				if step() > 0 {
					break
				}
				if time.Duration(steps)*interval > ttl+interval {
					t.Fatalf("no relay-lost %d steps after the relay died", steps)
				}
			}
			ans.read(t, resp, -1)
			endOf(t, &ans, relay.EventLost, 6)
			waitFor(t, "B's monitor to stop", func() bool {
				_, _, running, _ := relay.MonitorState(b.rl, ans.id)
				return !running
			})
			// Later readers, on either instance, get the same end.
			for _, n := range []*node{a, b} {
				late := answer{id: ans.id}
				late.read(t, n.resume(&late), -1)
				endOf(t, &late, relay.EventLost, 6)
			}
			if n := llm.calls.Load(); n != 1 {
				t.Fatalf("the upstream was called %d times", n)
			}
		})
	}
}

// The lease watch of an id that no Start returned (made up by a client:
// GET /answers/{id} needs no token in sluice serve) lapses without an
// append: nothing a client sends makes the hub write to the log. A relay
// that died before this instance began to watch it is still declared
// lost: its first renewal is in the log right after its stream's start.
//
// With a store.Keeper the first renewal is kept apart from the log, and
// found even once other traffic has evicted it from the log ("evicted",
// on every store of this module); with a store.Positioner only, by its
// custom id; without either (a store of the application's), by a bounded
// scan.
func TestLeaseOfMadeUpID(t *testing.T) {
	memory := func(t *testing.T) *store.Memory {
		m := store.NewMemory(store.MemoryConfig{})
		t.Cleanup(func() { m.Close() })
		return m
	}
	t.Run("Keeper", func(t *testing.T) { leaseOfMadeUpID(t, memory(t), false) })
	t.Run("Positioner", func(t *testing.T) {
		m := memory(t)
		leaseOfMadeUpID(t, struct { // hides Kept
			store.Store
			store.Positioner
		}{m, m}, false)
	})
	t.Run("scan", func(t *testing.T) { leaseOfMadeUpID(t, struct{ store.Store }{memory(t)}, false) }) // hides Lookup and Kept
	for _, kind := range sharedlog.Kinds {
		t.Run("evicted/"+kind, func(t *testing.T) {
			st, _ := sharedlog.OpenRetaining(t, kind, 16)
			leaseOfMadeUpID(t, st, true)
		})
	}
}

// leaseOfMadeUpID runs TestLeaseOfMadeUpID on st; with evict, traffic
// evicts the dead relay's first renewal from the log before it is watched.
func leaseOfMadeUpID(t *testing.T, st store.Store, evict bool) {
	const (
		interval = time.Second
		ttl      = 3 * time.Second
	)
	clock := newFakeClock()
	var logs ssetest.Buffer
	opts := &relay.Options{Clock: clock, LeaseInterval: interval, LeaseTTL: ttl,
		ReadTimeout: time.Hour, MaxDuration: 2 * time.Hour, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	llm := newFakeLLM(t, 100, true)
	n := newNode(t, st, llm, opts)
	ctx := context.Background()

	// pass advances the clock by one interval and waits for the monitor
	// (no relay runs meanwhile: its timer is the only one).
	pass := func() {
		t.Helper()
		passes, _, running, _ := relay.MonitorState(n.rl, "")
		if !running {
			return
		}
		waitFor(t, "the monitor's timer", func() bool {
			_, _, running, _ := relay.MonitorState(n.rl, "")
			return clock.armed() == 1 || !running
		})
		clock.Advance(interval)
		waitFor(t, "a pass of the monitor", func() bool {
			p, _, running, _ := relay.MonitorState(n.rl, "")
			return p > passes || !running
		})
	}

	// A stream that is no relay: its reader waits, the watch lapses, and
	// nothing is appended.
	s, err := stream.Open(ctx, n.h)
	if err != nil {
		t.Fatal(err)
	}
	made := answer{id: s.ID()}
	resp := n.resume(&made)
	defer resp.Body.Close()
	waitFor(t, "the made-up id to be watched", func() bool {
		_, _, _, watching := relay.MonitorState(n.rl, made.id)
		return watching
	})
	head, _ := st.Head(ctx)
	for range (ttl + 2*interval) / interval {
		pass()
	}
	if _, lost, _, watching := relay.MonitorState(n.rl, made.id); lost != 0 || watching {
		t.Fatalf("made-up id: %d declared lost, still watched %v", lost, watching)
	}
	if now, _ := st.Head(ctx); now != head {
		t.Fatalf("the log grew from %s to %s for a made-up id", head, now)
	}

	// A relay that died before anyone here watched it.
	var ans answer
	first := n.ask(&ans)
	llm.release(2)
	ans.read(t, first, 2)
	relay.Kill(n.relay(ans.id))
	// evictUntil publishes other traffic until gone (Redis trims
	// approximately).
	evictUntil := func(what string, gone func() bool) {
		t.Helper()
		for i := 0; !gone(); i++ {
			if i == 10_000 {
				t.Fatalf("%s is still in the log after 10,000 other events", what)
			}
			publishOther(t, n.h, i, n.h)
		}
	}
	if evict {
		evictUntil("the first renewal", func() bool {
			_, found, err := st.(store.Positioner).Lookup(ctx, relay.StartID(ans.id))
			if err != nil && !errors.Is(err, store.ErrUnknownID) {
				t.Fatal(err)
			}
			return !found
		})
	}
	late := n.resume(&ans)
	waitFor(t, "the dead relay to be watched", func() bool {
		_, _, _, watching := relay.MonitorState(n.rl, ans.id)
		return watching
	})
	if evict {
		// The log turns over before the monitor's next pass: it cannot
		// read the renewals after its cursor, says so, and counts every
		// lease renewed once.
		head, err := st.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		evictUntil("the monitor's cursor", func() bool {
			for _, err := range st.History(ctx, head, nil) {
				return errors.Is(err, store.ErrExpired)
			}
			return false
		})
	}
	for range (ttl + 3*interval) / interval {
		pass()
	}
	ans.read(t, late, -1)
	endOf(t, &ans, relay.EventLost, 2)
	if warned := strings.Contains(logs.String(), "the log turned over"); warned != evict {
		t.Fatalf("warned of the evicted renewals: %v, want %v; log:\n%s", warned, evict, logs.String())
	}
}
