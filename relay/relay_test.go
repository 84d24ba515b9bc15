package relay_test

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/sharedlog"
	"github.com/sluicehq/sluice/relay"
	"github.com/sluicehq/sluice/store"
)

// A client that drops 20 times at random points of an answer, resuming
// each time on the other instance, gets the whole answer, each token once
// and in order, and the upstream is called once.
func TestResumeAfterDrops(t *testing.T) {
	for _, kind := range sharedlog.Kinds {
		t.Run(kind, func(t *testing.T) {
			tokens := 1000
			if kind != "memory" {
				tokens = 300
			}
			seed := uint64(time.Now().UnixNano())
			t.Logf("seed %d", seed)
			rnd := rand.New(rand.NewPCG(seed, 0))
			llm := newFakeLLM(t, tokens, true)
			sa, sb := sharedlog.Open(t, kind)
			nodes := []*node{newNode(t, sa, llm, nil), newNode(t, sb, llm, nil)}
			var a answer
			resp := nodes[0].ask(&a)
			if a.id == "" {
				t.Fatal("no Answer-Id")
			}
			released := 0
			for drop := range 20 {
				batch := min(rnd.IntN(tokens/10), tokens-released)
				llm.release(batch)
				released += batch
				// The client reads at most what the upstream has sent, and
				// drops there: the rest comes while it is away.
				a.read(t, resp, rnd.IntN(released-len(a.evs)+1))
				if a.ended {
					t.Fatalf("drop %d: the answer ended early", drop)
				}
				resp = nodes[(drop+1)%2].resume(&a)
			}
			llm.release(tokens - released)
			a.read(t, resp, -1)
			a.complete(t, tokens)
			if n := llm.calls.Load(); n != 1 {
				t.Fatalf("the upstream was called %d times", n)
			}
			// After the end: nothing left, on either instance.
			for _, n := range nodes {
				b := answer{id: a.id, lastID: a.lastID}
				b.read(t, n.resume(&b), -1)
				if !b.ended || len(b.evs) != 0 {
					t.Fatalf("after the end: %s", short(b.evs))
				}
			}
			if err := nodes[0].relay(a.id).Err(); err != nil {
				t.Fatalf("Err %v", err)
			}
		})
	}
}

// endOf checks that the answer ends with a relay-error of the reason,
// after want tokens, and returns its data.
func endOf(t *testing.T, a *answer, typ string, want int) relay.ErrorData {
	t.Helper()
	if !a.ended || len(a.evs) != want+1 {
		t.Fatalf("ended %v after %d events, want %d then %s: %s", a.ended, len(a.evs), want, typ, short(a.evs))
	}
	last := a.evs[want]
	if last.Type != typ {
		t.Fatalf("last event %+v, want %s", last, typ)
	}
	var d relay.ErrorData
	if err := json.Unmarshal([]byte(last.Data), &d); err != nil {
		t.Fatalf("data %q: %v", last.Data, err)
	}
	return d
}

// An upstream that fails, before or during its answer, gives the tokens
// it sent, then relay-error with the reason, then the end.
func TestUpstreamFailures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		setup  func(f *fakeLLM)
		tokens int // before the error
		reason string
		status int
	}{
		{"status", func(f *fakeLLM) { f.status = http.StatusTooManyRequests }, 0, relay.ReasonUpstreamStatus, 429},
		{"content type", func(f *fakeLLM) { f.contentType = "application/json" }, 0, relay.ReasonUpstreamContentType, 0},
		{"broken mid-way", func(f *fakeLLM) { f.failAt = 7 }, 7, relay.ReasonUpstreamRead, 0},
		{"reserved type", func(f *fakeLLM) { f.eventType = relay.EventLost }, 0, relay.ReasonReservedType, 0},
		{"unreachable", func(f *fakeLLM) { f.srv.Close() }, 0, relay.ReasonUpstreamRequest, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			llm := newFakeLLM(t, 20, false)
			tc.setup(llm)
			m := store.NewMemory(store.MemoryConfig{})
			t.Cleanup(func() { m.Close() })
			n := newNode(t, m, llm, nil)
			var a answer
			a.read(t, n.ask(&a), -1)
			d := endOf(t, &a, relay.EventError, tc.tokens)
			if d.Reason != tc.reason || d.Status != tc.status {
				t.Fatalf("got %+v", d)
			}
			if strings.Contains(d.Message, llm.srv.URL) {
				t.Fatalf("the message shows the upstream's URL: %q", d.Message)
			}
			rel := n.relay(a.id)
			<-rel.Done()
			var e *relay.Error
			if !errors.As(rel.Err(), &e) || e.Reason != tc.reason {
				t.Fatalf("Err %v", rel.Err())
			}
			// A resumer after the end gets 204.
			b := answer{id: a.id, lastID: a.lastID}
			b.read(t, n.resume(&b), -1)
			if !b.ended || len(b.evs) != 0 {
				t.Fatalf("after the end: %s", short(b.evs))
			}
		})
	}
}

// The user pressed "stop": Relay.Cancel, or the end of the context given
// to Start, ends the answer with relay-cancelled and cancels the upstream
// request.
func TestCancel(t *testing.T) {
	for _, how := range []string{"Cancel", "context"} {
		t.Run(how, func(t *testing.T) {
			llm := newFakeLLM(t, 100, true)
			m := store.NewMemory(store.MemoryConfig{})
			t.Cleanup(func() { m.Close() })
			n := newNode(t, m, llm, nil)
			var a answer
			var resp *http.Response
			var rel *relay.Relay
			var cancel context.CancelFunc
			if how == "Cancel" {
				resp = n.ask(&a)
				rel = n.relay(a.id)
			} else {
				var ctx context.Context
				ctx, cancel = context.WithCancel(context.Background())
				t.Cleanup(cancel)
				up, _ := http.NewRequest(http.MethodPost, llm.srv.URL, strings.NewReader(`{"prompt":"hi"}`))
				up.Header.Set("Authorization", "Bearer upstream-key")
				var err error
				if rel, err = n.rl.Start(ctx, up); err != nil {
					t.Fatal(err)
				}
				a.id = rel.ID()
				resp = n.resume(&a)
			}
			llm.release(3)
			a.read(t, resp, 3)
			resp = n.resume(&a)
			if how == "Cancel" {
				rel.Cancel()
			} else {
				cancel()
			}
			a.read(t, resp, -1)
			if d := endOf(t, &a, relay.EventCancelled, 3); d.Reason != "cancelled" {
				t.Fatalf("got %+v", d)
			}
			<-rel.Done()
			if !errors.Is(rel.Err(), relay.ErrCancelled) {
				t.Fatalf("Err %v", rel.Err())
			}
			waitFor(t, "the upstream request to be cancelled", func() bool { return llm.aborted.Load() == 1 })
			rel.Cancel() // after the end: nothing
		})
	}
}

// Each limit ends the answer with relay-error and its reason.
func TestLimits(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    relay.Options
		advance time.Duration // on the relay's clock, after the first 2 tokens
		tokens  int           // before the error
		reason  string
	}{
		{"max events", relay.Options{MaxEvents: 5}, 0, 5, relay.ReasonMaxEvents},
		{"max bytes", relay.Options{MaxBytes: 3}, 0, 3, relay.ReasonMaxBytes},
		{"read timeout", relay.Options{ReadTimeout: time.Minute}, time.Minute, 2, relay.ReasonReadTimeout},
		{"max duration", relay.Options{MaxDuration: 10 * time.Minute, ReadTimeout: time.Hour}, 10 * time.Minute, 2, relay.ReasonMaxDuration},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			tc.opts.Clock = clock
			// The lease is not under test: the clock jumps past its TTL.
			tc.opts.LeaseInterval, tc.opts.LeaseTTL = time.Hour, 2*time.Hour
			llm := newFakeLLM(t, 10, true)
			m := store.NewMemory(store.MemoryConfig{})
			t.Cleanup(func() { m.Close() })
			n := newNode(t, m, llm, &tc.opts)
			var a answer
			resp := n.ask(&a)
			if tc.advance > 0 {
				llm.release(2)
				a.read(t, resp, 2)
				resp = n.resume(&a)
				clock.Advance(tc.advance)
			} else {
				llm.release(10)
			}
			a.read(t, resp, -1)
			if d := endOf(t, &a, relay.EventError, tc.tokens); d.Reason != tc.reason {
				t.Fatalf("got %+v", d)
			}
		})
	}
}

// Options.MaxInFlight bounds the relays in flight: Start refuses more with
// ErrTooManyRelays until one ends.
func TestMaxInFlight(t *testing.T) {
	llm := newFakeLLM(t, 2, true)
	m := store.NewMemory(store.MemoryConfig{})
	t.Cleanup(func() { m.Close() })
	n := newNode(t, m, llm, &relay.Options{MaxInFlight: 1})
	var first, second, third answer
	resp := n.ask(&first)
	if refused := n.ask(&second); refused.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("second relay: status %d", refused.StatusCode)
	}
	llm.release(2)
	first.read(t, resp, -1)
	first.complete(t, 2)
	<-n.relay(first.id).Done()
	llm.release(2)
	third.read(t, n.ask(&third), -1)
	third.complete(t, 2)
}

// Relayer.Close ends the relays in flight with relay-error "shutdown", so
// that their readers do not wait for the lease to lapse.
func TestClose(t *testing.T) {
	llm := newFakeLLM(t, 10, true)
	m := store.NewMemory(store.MemoryConfig{})
	t.Cleanup(func() { m.Close() })
	n := newNode(t, m, llm, nil)
	var a answer
	resp := n.ask(&a)
	llm.release(1)
	a.read(t, resp, 1)
	resp = n.resume(&a)
	if err := n.rl.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	a.read(t, resp, -1)
	if d := endOf(t, &a, relay.EventError, 1); d.Reason != relay.ReasonShutdown {
		t.Fatalf("got %+v", d)
	}
	if _, err := n.rl.Start(context.Background(), &http.Request{}); !errors.Is(err, relay.ErrClosed) {
		t.Fatalf("Start after Close: %v", err)
	}
}
