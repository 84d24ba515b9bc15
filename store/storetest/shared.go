package storetest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/store"
)

// SharedHarness tells [RunShared] how to open stores that share one log
// (stores of several processes on one server, say).
type SharedHarness struct {
	// Open returns two stores on one new, empty log. The caller of
	// RunShared closes them (t.Cleanup).
	Open func(t *testing.T) (a, b store.Store)

	// Timeout bounds every wait. Zero means 30 seconds.
	Timeout time.Duration
}

// RunShared checks that two stores on one shared log are one log: what A
// appends from several goroutines, B follows and replays in the same order,
// with the same ids, positions, data and times; Head agrees on both; custom
// ids and generated ids appended via A are cursors on B; when B implements
// [store.Resolver], B resolves A's ids to the positions A appended them
// at; when it implements [store.Positioner], B finds the events A's
// custom ids name and names their positions as A does; and when both keep
// channels ([store.Keeper]), what A and B append to one channel at once is
// one channel on both.
func RunShared(t *testing.T, h SharedHarness) {
	t.Helper()
	if h.Open == nil {
		t.Fatal("storetest: SharedHarness.Open is nil")
	}
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	a, b := h.Open(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	fol := StartFollow(ctx, b, "")

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
	slices.SortFunc(appended, func(x, y store.Event) int { return cmpPos(x.Pos, y.Pos) })
	for i := range appended {
		if i > 0 && appended[i].Pos != appended[i-1].Pos+1 {
			t.Fatalf("positions not contiguous: %d after %d", appended[i].Pos, appended[i-1].Pos)
		}
		got := fol.Next(t, timeout)
		if d := sameEvent(got, appended[i]); d != "" {
			t.Fatalf("B followed %+v at %d; A appended %+v: %s", got, i, appended[i], d)
		}
	}
	ha, err := a.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if hb, err := b.Head(ctx); err != nil || ha != hb {
		t.Fatalf("Head on A = %q; on B %q, %v", ha, hb, err)
	}
	all, err := History(t, b, "")
	if err != nil || !slices.Equal(IDs(all), IDs(appended)) {
		t.Fatalf("History on B: %d events, %v; want the %d appended via A", len(all), err, len(appended))
	}
	r, resolves := b.(store.Resolver)
	for w := range workers {
		id := fmt.Sprintf("custom-%d", w)
		k := slices.IndexFunc(appended, func(e store.Event) bool { return e.ID == id })
		got, err := History(t, b, id)
		if err != nil || !slices.Equal(IDs(got), IDs(appended[k+1:])) {
			t.Fatalf("History(%q) on B: %d events, %v; want %d", id, len(got), err, len(appended)-k-1)
		}
		if !resolves {
			continue
		}
		// B resolves A's ids to the positions A appended them at.
		for _, c := range []store.Event{appended[k], appended[k/2]} {
			if pos, err := r.Resolve(ctx, c.ID); err != nil || pos != c.Pos {
				t.Fatalf("Resolve(%q) on B = %d, %v; want %d", c.ID, pos, err, c.Pos)
			}
		}
	}
	// B names the positions of A's events as A does, and finds the events
	// A's custom ids name.
	if pb, ok := b.(store.Positioner); ok {
		pa, _ := a.(store.Positioner)
		for w := range workers {
			id := fmt.Sprintf("custom-%d", w)
			k := slices.IndexFunc(appended, func(e store.Event) bool { return e.ID == id })
			got, ok, err := pb.Lookup(ctx, id)
			if err != nil || !ok || sameEvent(got, appended[k]) != "" {
				t.Fatalf("Lookup(%q) on B = %+v, %v, %v; want %+v", id, got, ok, err, appended[k])
			}
			pid := pb.PositionID(&appended[k])
			if pa != nil && pa.PositionID(&appended[k]) != pid {
				t.Fatalf("PositionID of %q on B = %q; on A %q", id, pid, pa.PositionID(&appended[k]))
			}
			if got, err := History(t, b, pid); err != nil || !slices.Equal(IDs(got), IDs(appended[k+1:])) {
				t.Fatalf("History(%q) on B: %d events, %v; want %d", pid, len(got), err, len(appended)-k-1)
			}
		}
	}
	// A generated id from A is a cursor on B.
	mid := appended[len(appended)/2]
	if got, err := History(t, b, mid.ID); err != nil || !slices.Equal(IDs(got), IDs(appended[len(appended)/2+1:])) {
		t.Fatalf("History(A's id %q) on B: %d events, %v; want %d", mid.ID, len(got), err, len(appended)-len(appended)/2-1)
	}
	sharedKept(t, a, b, mid.ID)
}

// sharedKept checks, when both stores keep channels (store.Keeper), that
// A and B appending to one channel at once keep one channel: each yields
// every event of it, in log order, from a cursor before them.
func sharedKept(t *testing.T, a, b store.Store, cursor string) {
	t.Helper()
	ka, okA := a.(store.Keeper)
	kb, okB := b.(store.Keeper)
	if !okA || !okB {
		return
	}
	ch := store.ChannelPrefix + "storetest:shared"
	evs := AppendConcurrent(t, []store.Store{a, b}, []string{ch}, 200, 8)
	for name, k := range map[string]store.Keeper{"A": ka, "B": kb} {
		got, err := KeptEvents(t, k, ch, cursor)
		if err != nil || !slices.Equal(IDs(got), IDs(evs)) {
			t.Fatalf("Kept on %s: %d events, %v; want the %d A and B appended", name, len(got), err, len(evs))
		}
	}
}

// Server is a server process a test owns, which [RestartUnderLoad] stops
// and starts again.
type Server interface {
	// Stop sends sig to the server and waits for it to exit.
	Stop(sig os.Signal) error
	// Start starts the server again, on the same address and data, and
	// returns once it accepts connections.
	Start() error
}

// RestartHarness tells [RestartUnderLoad] what to restart and how to open
// stores on it.
type RestartHarness struct {
	// Server is running when RestartUnderLoad is called.
	Server Server
	// Open opens a store on Server's shared log. The store must survive a
	// restart of the server (reconnect, retry). The caller closes it
	// (t.Cleanup).
	Open func(t *testing.T) store.Store
	// Signal stops the server: os.Kill, syscall.SIGTERM...
	Signal os.Signal
	// Down is how long the server stays stopped, beyond the time it takes
	// appends to fail.
	Down time.Duration
	// Timeout bounds every wait. Zero means 30 seconds.
	Timeout time.Duration
}

// RestartUnderLoad stops the server with h.Signal while publishers append
// through store A and two other stores B and C follow, then starts it
// again: publishes fail during the outage and Head reports it, the
// followers keep going without an error, Head succeeds again on every
// store, and in the end every acknowledged event reaches every follower
// exactly once, in log order, and is in the log where Append said.
func RestartUnderLoad(t *testing.T, h RestartHarness) {
	t.Helper()
	if h.Server == nil || h.Open == nil || h.Signal == nil {
		t.Fatal("storetest: RestartHarness needs Server, Open and Signal")
	}
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	a, b, c := h.Open(t), h.Open(t), h.Open(t)

	ctx, cancel := context.WithTimeout(context.Background(), 3*timeout)
	defer cancel()

	// Followers on B and C, from the start of the log.
	type followed struct {
		mu  sync.Mutex
		evs []store.Event
		err error
	}
	fol := []*followed{{}, {}}
	fctx, stopFollow := context.WithCancel(ctx)
	defer stopFollow()
	var fwg sync.WaitGroup
	for i, s := range []store.Store{b, c} {
		fwg.Add(1)
		go func() {
			defer fwg.Done()
			for e, err := range s.Follow(fctx, "") {
				fol[i].mu.Lock()
				if err != nil {
					fol[i].err = err
				} else {
					fol[i].evs = append(fol[i].evs, e)
				}
				fol[i].mu.Unlock()
			}
		}()
	}

	// Publishers on A: each remembers what was acknowledged.
	var acked sync.Map // data -> store.Event
	var nAcked, nFailed atomic.Int64
	pctx, stopPublish := context.WithCancel(ctx)
	defer stopPublish()
	var pwg sync.WaitGroup
	for w := range 4 {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			for i := 0; pctx.Err() == nil; i++ {
				data := fmt.Sprintf("w%d-%d", w, i)
				e, err := a.Append(pctx, store.Event{Topics: []string{"t"}, Data: data})
				if err != nil {
					if pctx.Err() == nil {
						nFailed.Add(1)
						time.Sleep(5 * time.Millisecond) // pace retries against a dead server
					}
					continue
				}
				acked.Store(data, e)
				nAcked.Add(1)
			}
		}()
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s (acked %d, failed %d)", what, nAcked.Load(), nFailed.Load())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor("500 acknowledged appends", func() bool { return nAcked.Load() >= 500 })

	if err := h.Server.Stop(h.Signal); err != nil {
		t.Fatalf("stopping the server: %v", err)
	}
	waitFor("appends to fail", func() bool { return nFailed.Load() >= 10 })
	hctx, hcancel := context.WithTimeout(ctx, time.Second)
	if _, err := a.Head(hctx); err == nil {
		t.Fatal("Head succeeded while the server was down; readiness must report the outage")
	}
	hcancel()
	if h.Down > 0 {
		select { // the length of the outage, a parameter of the scenario
		case <-time.After(h.Down):
		case <-ctx.Done():
		}
	}
	before := nAcked.Load()
	if err := h.Server.Start(); err != nil {
		t.Fatalf("starting the server again: %v", err)
	}
	for _, s := range []store.Store{a, b, c} {
		waitFor("Head to succeed again on every store", func() bool {
			hctx, hcancel := context.WithTimeout(ctx, time.Second)
			defer hcancel()
			_, err := s.Head(hctx)
			return err == nil
		})
	}
	waitFor("500 more acknowledged appends", func() bool { return nAcked.Load() >= before+500 })
	stopPublish()
	pwg.Wait()
	t.Logf("acknowledged %d appends; %d failed during the outage", nAcked.Load(), nFailed.Load())

	head, err := a.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	all, err := History(t, c, "")
	if err != nil || len(all) == 0 || all[len(all)-1].ID != head {
		t.Fatalf("History after the restart: %d events, %v; want up to the head %q", len(all), err, head)
	}
	last := all[len(all)-1].Pos
	for i, f := range fol {
		waitFor(fmt.Sprintf("follower %d to reach the head", i), func() bool {
			f.mu.Lock()
			defer f.mu.Unlock()
			return f.err != nil || len(f.evs) > 0 && f.evs[len(f.evs)-1].Pos >= last
		})
	}
	stopFollow()
	fwg.Wait()

	for i, f := range fol {
		if f.err != nil {
			t.Fatalf("follower %d ended with %v; an outage must not end a Follow", i, f.err)
		}
		seen := map[string]bool{}
		for k, e := range f.evs {
			if k > 0 && e.Pos != f.evs[k-1].Pos+1 {
				t.Fatalf("follower %d: Pos %d after %d: a gap or a repeat", i, e.Pos, f.evs[k-1].Pos)
			}
			if seen[e.Data] {
				t.Fatalf("follower %d: %q delivered twice", i, e.Data)
			}
			seen[e.Data] = true
			if k < len(all) && (all[k].ID != e.ID || all[k].Data != e.Data) {
				t.Fatalf("follower %d: event %d is %q, the log has %q", i, k, e.Data, all[k].Data)
			}
		}
		missing := 0
		acked.Range(func(k, v any) bool {
			if !seen[k.(string)] {
				missing++
			}
			return true
		})
		if missing > 0 {
			t.Fatalf("follower %d: %d acknowledged events were never delivered", i, missing)
		}
	}
	// Every acknowledged event is in the log where Append said.
	byID := map[string]store.Event{}
	for _, e := range all {
		byID[e.ID] = e
	}
	acked.Range(func(k, v any) bool {
		e := v.(store.Event)
		if got, ok := byID[e.ID]; !ok || got.Data != e.Data || got.Pos != e.Pos {
			t.Errorf("acknowledged %q at Pos %d (%s) is not in the log as acknowledged", e.Data, e.Pos, e.ID)
			return false
		}
		return true
	})
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatal("the test ran out of time")
	}
}

// CloseUnderLoad closes s while eight goroutines append to it and a Follow
// reads it: every Append then fails with store.ErrClosed and the Follow
// ends with store.ErrClosed, within timeout.
func CloseUnderLoad(t *testing.T, s store.Store, timeout time.Duration) {
	t.Helper()
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
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	f := StartFollow(ctx, s, "")
	for range 100 {
		f.Next(t, timeout)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for {
		select {
		case <-f.Events():
			continue
		case <-f.Done():
			if err := f.Err(); !errors.Is(err, store.ErrClosed) {
				t.Fatalf("Follow ended with %v on Close; want ErrClosed", err)
			}
			return
		case <-ctx.Done():
			t.Fatal("Follow did not end on Close")
		}
	}
}
