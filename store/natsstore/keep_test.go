package natsstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/natsstore"
	"github.com/sluicehq/sluice/store/storetest"
)

// channelOf returns a channel name unique to the test.
func channelOf(t *testing.T, name string) string {
	return store.ChannelPrefix + t.Name() + "/" + name
}

func wantKept(t *testing.T, k store.Keeper, ch, cursor string, want []store.Event) {
	t.Helper()
	got, err := storetest.KeptEvents(t, k, ch, cursor)
	if err != nil || !slices.Equal(storetest.IDs(got), storetest.IDs(want)) {
		t.Fatalf("Kept(%q, %q) = %v, %v; want %v", ch, cursor, storetest.IDs(got), err, storetest.IDs(want))
	}
}

func wantKeptExpired(t *testing.T, k store.Keeper, ch, cursor string) {
	t.Helper()
	if got, err := storetest.KeptEvents(t, k, ch, cursor); len(got) > 0 || !errors.Is(err, store.ErrExpired) {
		t.Fatalf("Kept(%q, %q) = %v, %v; want ErrExpired", ch, cursor, storetest.IDs(got), err)
	}
}

// keptMsgs returns how many messages the kept stream of stream holds.
func keptMsgs(t *testing.T, stream string) uint64 {
	t.Helper()
	nc, err := nats.Connect(natsURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	ks, err := js.Stream(ctx, stream+"_KEPT")
	if err != nil {
		t.Fatal(err)
	}
	return ks.CachedInfo().State.Msgs
}

// A store that dies between the log's acknowledgement of an event of a
// channel and its kept copy leaves the event's intent in the channel's
// chain: Kept reports the channel incomplete after any cursor before the
// event, never a complete channel without it.
func TestKeptCrashBeforeCopy(t *testing.T) {
	clk := storetest.NewClock(time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC))
	s, _ := newStore(t, natsstore.Config{Now: clk.Now})
	var crash atomic.Bool
	natsstore.SetBeforeCopies(s, func() bool { return !crash.Load() })
	ch := channelOf(t, "a")
	start := storetest.MustAppend(t, s, store.Event{Topics: []string{"https://example.com/t"}})
	e1 := storetest.MustAppend(t, s, store.Event{Topics: []string{ch}, Data: "1"})
	crash.Store(true)
	e2 := storetest.MustAppend(t, s, store.Event{Topics: []string{ch}, Data: "2: in the log, never kept"})
	crash.Store(false)
	// Long after: no copy will come.
	clk.Advance(natsstore.KeptGrace(s) + time.Second)
	for _, c := range []string{start.ID, e1.ID} {
		wantKeptExpired(t, s, ch, c)
	}
	wantKept(t, s, ch, e2.ID, nil)
	wantKept(t, s, ch, "", nil) // whatever was dropped before
	// The next copy folds the intent: the lost event is before it.
	other := storetest.MustAppend(t, s, store.Event{Topics: []string{"https://example.com/t"}})
	e3 := storetest.MustAppend(t, s, store.Event{Topics: []string{ch}, Data: "3"})
	wantKeptExpired(t, s, ch, e1.ID)
	wantKept(t, s, ch, other.ID, []store.Event{e3})
	wantKept(t, s, ch, "", []store.Event{e3})
	e4 := storetest.MustAppend(t, s, store.Event{Topics: []string{ch}, Data: "4"})
	wantKept(t, s, ch, e3.ID, []store.Event{e4})
}

// While the copy of an event in the log may still come, Kept waits for
// it (its context ends the wait); once it cannot, the channel is
// incomplete.
func TestKeptCopyNeverComes(t *testing.T) {
	s, _ := newStore(t, natsstore.Config{})
	natsstore.SetKeptGrace(s, 300*time.Millisecond)
	var crash atomic.Bool
	natsstore.SetBeforeCopies(s, func() bool { return !crash.Load() })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	waits := make(chan struct{}, 1)
	natsstore.SetKeptWaiting(s, func() {
		select {
		case waits <- struct{}{}:
		default:
		}
	})
	ch := channelOf(t, "a")
	start := storetest.MustAppend(t, s, store.Event{Topics: []string{"https://example.com/t"}})
	storetest.MustAppend(t, s, store.Event{Topics: []string{ch}, Data: "1"})
	crash.Store(true)
	storetest.MustAppend(t, s, store.Event{Topics: []string{ch}, Data: "2: in the log, never kept"})
	kept := make(chan error, 1)
	go func() {
		_, err := storetest.KeptEvents(t, s, ch, start.ID)
		kept <- err
	}()
	guard := time.NewTimer(hang)
	defer guard.Stop()
	select {
	case <-waits:
	case <-guard.C:
		t.Fatal("Kept did not wait for the copy")
	}
	select {
	case err := <-kept:
		if !errors.Is(err, store.ErrExpired) {
			t.Fatalf("Kept after the grace: %v, want ErrExpired", err)
		}
	case <-guard.C:
		t.Fatal("Kept did not end")
	}
	// The caller's context ends the wait.
	natsstore.SetKeptGrace(s, hang)
	go func() {
		var err error
		for _, err = range s.Kept(ctx, ch, start.ID) {
		}
		kept <- err
	}()
	select {
	case <-waits:
		cancel()
	case <-guard.C:
		t.Fatal("Kept did not wait for the copy")
	}
	select {
	case err := <-kept:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Kept canceled while it waited: %v, want context.Canceled", err)
		}
	case <-guard.C:
		t.Fatal("Kept did not end when its context did")
	}
}

// Kept waits for the copy of an append in progress, also when another
// store on the log makes it.
func TestKeptAppendInProgress(t *testing.T) {
	a, stream := newStore(t, natsstore.Config{})
	b := open(t, natsURL(t), natsstore.Config{Stream: stream})
	reached, release := make(chan struct{}), make(chan struct{})
	var hold atomic.Bool
	natsstore.SetBeforeCopies(a, func() bool {
		if hold.CompareAndSwap(true, false) {
			close(reached)
			<-release
		}
		return true
	})
	waiting := make(chan struct{}, 1)
	natsstore.SetKeptWaiting(b, func() {
		select {
		case waiting <- struct{}{}:
		default:
		}
	})
	ch := channelOf(t, "a")
	start := storetest.MustAppend(t, a, store.Event{Topics: []string{"https://example.com/t"}})
	e1 := storetest.MustAppend(t, a, store.Event{Topics: []string{ch}, Data: "1"})
	hold.Store(true)
	appended := make(chan store.Event, 1)
	go func() {
		e, err := a.Append(context.Background(), store.Event{Topics: []string{ch}, Data: "2"})
		if err != nil {
			t.Error(err)
		}
		appended <- e
	}()
	guard := time.NewTimer(hang)
	defer guard.Stop()
	select {
	case <-reached: // in the log, not yet kept
	case <-guard.C:
		t.Fatal("the append did not reach its copies")
	}
	type result struct {
		evs []store.Event
		err error
	}
	kept := make(chan result, 1)
	go func() {
		evs, err := storetest.KeptEvents(t, b, ch, start.ID)
		kept <- result{evs, err}
	}()
	select {
	case <-waiting:
	case <-guard.C:
		t.Fatal("Kept did not wait for the copy")
	}
	close(release)
	e2 := <-appended
	select {
	case r := <-kept:
		if r.err != nil || !slices.Equal(storetest.IDs(r.evs), storetest.IDs([]store.Event{e1, e2})) {
			t.Fatalf("Kept during the append = %v, %v; want %v", storetest.IDs(r.evs), r.err, storetest.IDs([]store.Event{e1, e2}))
		}
	case <-guard.C:
		t.Fatal("Kept did not end")
	}
}

// Two stores on one log append to the same channels at once: their chains
// interleave, events are dropped (KeepPerChannel, KeepFor), and Kept,
// from either store or a third, never reports a channel complete that is
// not.
func TestKeptTwoInstances(t *testing.T) {
	const n, workers = 120, 4
	clk := storetest.NewClock(time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC))
	// appendAll appends n events from workers goroutines on each store,
	// to ch and sometimes also to another channel.
	appendAll := func(t *testing.T, ch string, a, b *natsstore.Store) []store.Event {
		var mu sync.Mutex
		var evs []store.Event
		var wg sync.WaitGroup
		for w := range 2 * workers {
			st := a
			if w%2 == 1 {
				st = b
			}
			wg.Go(func() {
				for i := range n / workers / 2 {
					topics := []string{ch}
					if i%3 == 0 {
						topics = []string{ch + "/too", "https://example.com/t", ch}
					}
					e, err := st.Append(context.Background(), store.Event{Topics: topics, Data: fmt.Sprint(w, "/", i)})
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					evs = append(evs, e)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		slices.SortFunc(evs, func(x, y store.Event) int { return int(x.Pos) - int(y.Pos) })
		return evs
	}
	// check checks Kept after each cursor from every store: ErrExpired, or
	// every event after it; complete from at least minComplete.
	check := func(t *testing.T, ch string, start store.Event, evs []store.Event, minComplete int, stores ...*natsstore.Store) {
		for _, k := range stores {
			complete := 0
			for i, e := range append([]store.Event{start}, evs...) {
				got, err := storetest.KeptEvents(t, k, ch, e.ID)
				if errors.Is(err, store.ErrExpired) {
					continue
				}
				if want := evs[i:]; err != nil || !slices.Equal(storetest.IDs(got), storetest.IDs(want)) {
					t.Fatalf("Kept(%q) = %v, %v; want ErrExpired or %v", e.ID, storetest.IDs(got), err, storetest.IDs(want))
				}
				complete++
			}
			if complete < minComplete {
				t.Fatalf("Kept was complete from only %d cursors of %d events", complete, len(evs))
			}
		}
	}
	t.Run("KeepPerChannel", func(t *testing.T) {
		t.Parallel()
		const per = 10
		a, stream := newStore(t, natsstore.Config{KeepPerChannel: per})
		b := open(t, natsURL(t), natsstore.Config{Stream: stream, KeepPerChannel: per})
		ch := channelOf(t, "a")
		start := storetest.MustAppend(t, a, store.Event{Topics: []string{"https://example.com/t"}})
		evs := appendAll(t, ch, a, b)
		if got := keptMsgs(t, stream); got >= 2*n {
			t.Fatalf("the kept stream holds %d messages: it dropped none", got)
		}
		c := open(t, natsURL(t), natsstore.Config{Stream: stream, KeepPerChannel: per})
		check(t, ch, start, evs, per/2, a, b, c)
		for _, k := range []*natsstore.Store{a, b, c} {
			if got, err := storetest.KeptEvents(t, k, ch, ""); err != nil || len(got) == 0 || len(got) > per {
				t.Fatalf(`Kept(%q, "") = %d events, %v; want 1 to %d`, ch, len(got), err, per)
			}
		}
	})
	// The first events kept after those KeepFor dropped carry, in their
	// chain, the newest dropped event, whichever store wrote it.
	t.Run("KeepFor", func(t *testing.T) {
		t.Parallel()
		cfg := natsstore.Config{KeepFor: time.Minute, Now: clk.Now}
		a, stream := newStore(t, cfg)
		cfg.Stream = stream
		b := open(t, natsURL(t), cfg)
		ch := channelOf(t, "a")
		start := storetest.MustAppend(t, a, store.Event{Topics: []string{"https://example.com/t"}})
		old := appendAll(t, ch, a, b)
		clk.Advance(30 * time.Second)
		evs := appendAll(t, ch, a, b)
		clk.Advance(40 * time.Second) // the first n are 70 s old
		wantKeptExpired(t, a, ch, start.ID)
		wantKeptExpired(t, b, ch, old[len(old)-2].ID)
		check(t, ch, old[len(old)-1], evs, len(evs), b, open(t, natsURL(t), cfg))
	})
}

// At the kept stream's byte limit its oldest messages go, whatever their
// channel: Kept says so.
func TestKeptMaxBytes(t *testing.T) {
	s, stream := newStore(t, natsstore.Config{KeepMaxBytes: 32 << 10})
	quiet, busy := channelOf(t, "quiet"), channelOf(t, "busy")
	start := storetest.MustAppend(t, s, store.Event{Topics: []string{"https://example.com/t"}})
	q := storetest.MustAppend(t, s, store.Event{Topics: []string{quiet}, Data: "quiet"})
	wantKept(t, s, quiet, start.ID, []store.Event{q})
	var evs []store.Event
	for i := range 300 {
		evs = append(evs, storetest.MustAppend(t, s, store.Event{Topics: []string{busy}, Data: fmt.Sprint(i, strings.Repeat("x", 100))}))
	}
	if got := keptMsgs(t, stream); got >= 2*301 {
		t.Fatalf("the kept stream holds %d messages: it dropped none", got)
	}
	wantKeptExpired(t, s, quiet, start.ID)
	wantKept(t, s, quiet, "", nil)
	wantKeptExpired(t, s, busy, start.ID)
	got, err := storetest.KeptEvents(t, s, busy, "")
	if err != nil || len(got) == 0 || len(got) == len(evs) {
		t.Fatalf(`Kept(busy, "") = %d events, %v`, len(got), err)
	}
	first := slices.IndexFunc(evs, func(e store.Event) bool { return e.ID == got[0].ID })
	wantKept(t, s, busy, evs[first-1].ID, evs[first:])
	wantKeptExpired(t, s, busy, evs[first-2].ID)
}

// A channel the kept stream dropped whole, then written again, does not
// pass off what it lost as complete: a reader from before the drop gets
// ErrExpired, one from after it the new events. Another store on the log,
// which never saw the channel, says the same.
func TestKeptDroppedWholeRewritten(t *testing.T) {
	s, stream := newStore(t, natsstore.Config{KeepMaxBytes: 32 << 10})
	quiet, busy := channelOf(t, "quiet"), channelOf(t, "busy")
	start := storetest.MustAppend(t, s, store.Event{Topics: []string{"https://example.com/t"}})
	storetest.MustAppend(t, s, store.Event{Topics: []string{quiet}, Data: "before"})
	for i := range 300 {
		storetest.MustAppend(t, s, store.Event{Topics: []string{busy}, Data: fmt.Sprint(i, strings.Repeat("x", 100))})
	}
	wantKept(t, s, quiet, "", nil) // pushed out whole
	mid := storetest.MustAppend(t, s, store.Event{Topics: []string{"https://example.com/t"}})
	again := storetest.MustAppend(t, s, store.Event{Topics: []string{quiet}, Data: "again"})
	wantKeptExpired(t, s, quiet, start.ID)
	wantKept(t, s, quiet, mid.ID, []store.Event{again})
	other := open(t, natsURL(t), natsstore.Config{Stream: stream, KeepMaxBytes: 32 << 10})
	wantKeptExpired(t, other, quiet, start.ID)
	wantKept(t, other, quiet, mid.ID, []store.Event{again})
}

// Events without a channel cost the kept stream nothing; with
// KeepPerChannel < 0 there is no kept stream.
func TestKeptOnlyChannels(t *testing.T) {
	s, stream := newStore(t, natsstore.Config{})
	for i := range 5 {
		storetest.MustAppend(t, s, store.Event{Topics: []string{"https://example.com/t"}, Data: fmt.Sprint(i)})
		storetest.MustAppend(t, s, store.Event{ID: fmt.Sprint("custom-", i)})
		storetest.MustAppend(t, s, store.Event{Topics: []string{"sluice"}}) // not a channel
	}
	if got := keptMsgs(t, stream); got != 0 {
		t.Fatalf("the kept stream holds %d messages after events without channels", got)
	}
	ch := channelOf(t, "a")
	storetest.MustAppend(t, s, store.Event{Topics: []string{ch, ch, "https://example.com/t"}})
	if got := keptMsgs(t, stream); got != 2 {
		t.Fatalf("the kept stream holds %d messages after one event of a channel; want its intent and its copy", got)
	}

	none, stream := newStore(t, natsstore.Config{KeepPerChannel: -1})
	start := storetest.MustAppend(t, none, store.Event{Topics: []string{ch}})
	wantKeptExpired(t, none, ch, start.ID)
	wantKept(t, none, ch, "", nil)
	nc, err := nats.Connect(natsURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := js.Stream(context.Background(), stream+"_KEPT"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("KeepPerChannel -1: the kept stream: %v, want none", err)
	}
}

// A log whose stream was deleted and created again does not take the kept
// events of the old one for its own.
func TestKeptStreamReplaced(t *testing.T) {
	s, stream := newStore(t, natsstore.Config{})
	ch := channelOf(t, "a")
	storetest.MustAppend(t, s, store.Event{Topics: []string{ch}, Data: "old"})
	nc, err := nats.Connect(natsURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if err := js.DeleteStream(context.Background(), stream); err != nil { // the log's, not the kept one
		t.Fatal(err)
	}
	s2 := open(t, natsURL(t), natsstore.Config{Stream: stream})
	start := storetest.MustAppend(t, s2, store.Event{Topics: []string{"https://example.com/t"}})
	wantKept(t, s2, ch, "", nil)
	wantKeptExpired(t, s2, ch, start.ID)
	e := storetest.MustAppend(t, s2, store.Event{Topics: []string{ch}, Data: "new"})
	for _, k := range []*natsstore.Store{s, s2} {
		wantKept(t, k, ch, start.ID, []store.Event{e})
		wantKept(t, k, ch, "", []store.Event{e})
	}
}

func TestKeptOpenErrors(t *testing.T) {
	url := natsURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	stream := uniqueStream(t)
	deleteStream(t, url, stream)
	if s, err := natsstore.Open(ctx, url, natsstore.Config{Stream: stream, KeepFor: -time.Second}); err == nil {
		_ = s.Close()
		t.Error("Open accepted a negative KeepFor")
	}
	// Another log named like this one's kept stream.
	other := open(t, url, natsstore.Config{Stream: stream + "_KEPT"})
	deleteStream(t, url, stream+"_KEPT")
	_ = other.Close()
	if s, err := natsstore.Open(ctx, url, natsstore.Config{Stream: stream}); err == nil || !strings.Contains(err.Error(), "another log") {
		if s != nil {
			_ = s.Close()
		}
		t.Fatalf("Open with a kept stream that is another log's: %v", err)
	}
	// The DSN carries the keeping limits.
	dsnStream := uniqueStream(t) + "x"
	deleteStream(t, url, dsnStream)
	s := open(t, url+"?stream="+dsnStream+"&keep_per_channel=2", natsstore.Config{})
	ch := channelOf(t, "a")
	var evs []store.Event
	for range 4 {
		evs = append(evs, storetest.MustAppend(t, s, store.Event{Topics: []string{ch}}))
	}
	wantKept(t, s, ch, "", evs[2:])
}
