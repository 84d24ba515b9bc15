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
	"github.com/sluicehq/sluice/stream"
)

// The user presses "stop" on a page connected to B while A relays the
// answer: Relayer.Cancel on B reaches A's relay through the log within a
// LeaseInterval, and the reader on B gets relay-cancelled; the upstream
// was called once. On A itself Cancel is immediate.
func TestCancelAcrossHubs(t *testing.T) {
	const interval = time.Second
	for _, kind := range sharedlog.Kinds {
		t.Run(kind, func(t *testing.T) {
			clock := newFakeClock()
			opts := &relay.Options{Clock: clock, LeaseInterval: interval, LeaseTTL: 3 * interval,
				ReadTimeout: time.Hour, MaxDuration: 2 * time.Hour}
			llm := newFakeLLM(t, 100, true)
			sa, sb := sharedlog.Open(t, kind)
			a, b := newNode(t, sa, llm, opts), newNode(t, sb, llm, opts)
			ctx := context.Background()

			var ans answer
			resp := a.ask(&ans)
			llm.release(3)
			ans.read(t, resp, 3)
			rel := a.relay(ans.id)
			resp = b.resume(&ans)
			if err := b.rl.Cancel(ctx, ans.id); err != nil {
				t.Fatal(err)
			}
			// A reads the request on its relay's next renewal (its timer
			// was armed when the relay started, before the tokens read).
			clock.Advance(interval)
			select {
			case <-rel.Done():
			case <-time.After(ssetest.Hang): // a hang guard
				t.Fatal("the relay on A was not cancelled")
			}
			if !errors.Is(rel.Err(), relay.ErrCancelled) {
				t.Fatalf("A's relay ended with %v", rel.Err())
			}
			ans.read(t, resp, -1)
			if d := endOf(t, &ans, relay.EventCancelled, 3); d.Reason != "cancelled" {
				t.Fatalf("got %+v", d)
			}
			if n := llm.calls.Load(); n != 1 {
				t.Fatalf("the upstream was called %d times", n)
			}

			// On the instance relaying it, at once.
			var second answer
			resp = a.ask(&second)
			llm.release(1)
			second.read(t, resp, 1)
			if err := a.rl.Cancel(ctx, second.id); err != nil {
				t.Fatal(err)
			}
			<-a.relay(second.id).Done()
			if err := a.rl.Cancel(ctx, "not-a-stream"); !errors.Is(err, stream.ErrUnknown) {
				t.Fatalf("cancel of a made-up id: %v", err)
			}
		})
	}
}

// A cancel request from another instance that the log evicts before the
// relaying instance reads it is lost, and that instance says so in its
// log, with what to change: the log holds less than one LeaseInterval of
// traffic.
func TestCancelEvictedIsReported(t *testing.T) {
	const interval = time.Second
	clock := newFakeClock()
	var logs ssetest.Buffer
	opts := &relay.Options{Clock: clock, LeaseInterval: interval, LeaseTTL: 3 * interval,
		ReadTimeout: time.Hour, MaxDuration: 2 * time.Hour, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	llm := newFakeLLM(t, 100, true)
	sa, sb := sharedlog.OpenRetaining(t, "memory", 16)
	a, b := newNode(t, sa, llm, opts), newNode(t, sb, llm, opts)
	ctx := context.Background()
	publishOther(t, b.h, -1, a.h, b.h) // the stream starts after it, not at an empty log's start

	var ans answer
	resp := a.ask(&ans)
	llm.release(3)
	ans.read(t, resp, 3)
	resp.Body.Close()
	rel := a.relay(ans.id)
	if err := b.rl.Cancel(ctx, ans.id); err != nil {
		t.Fatal(err)
	}
	for i := range 32 { // other traffic evicts the request
		publishOther(t, b.h, i, a.h, b.h)
	}
	clock.Advance(interval) // A's relay renews its lease and reads the requests
	waitFor(t, "the lost request to be reported", func() bool {
		return strings.Contains(logs.String(), "cancel requests from other instances are lost")
	})
	if rel.Err() != nil {
		t.Fatalf("the relay ended with %v", rel.Err())
	}
	llm.release(97)
	select {
	case <-rel.Done():
	case <-time.After(ssetest.Hang): // a hang guard
		t.Fatal("the relay did not end")
	}
	if rel.Err() != nil {
		t.Fatalf("the relay ended with %v, want its answer whole", rel.Err())
	}
}
