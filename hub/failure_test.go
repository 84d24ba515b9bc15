package hub

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/sse"
	"github.com/sluicehq/sluice/store"
)

func newFlaky(t *testing.T) *flakyStore {
	m := store.NewMemory(store.MemoryConfig{})
	t.Cleanup(func() { m.Close() })
	return &flakyStore{Store: m, followErr: make(chan error, 1)}
}

func TestStoreFailures(t *testing.T) {
	protocols(t, func(t *testing.T, h2 bool) {
		checkGoroutines(t)
		fs := newFlaky(t)
		e := newEnv(t, Config{Store: fs}, h2)
		seed := e.publish("a", "seed")
		c := e.subscribe("", "a")
		if id := c.primed(); id != seed {
			t.Fatalf("primed with %s, want %s", id, seed)
		}

		// Append fails: Publish returns the error, the subscriber is
		// untouched and goes on with the next events.
		boom := errors.New("disk on fire")
		fs.mu.Lock()
		fs.appendErr = boom
		fs.mu.Unlock()
		if _, err := e.h.Publish(context.Background(), Message{Topics: []string{"a"}, Event: sse.Event{Data: "lost"}}); !errors.Is(err, boom) {
			t.Fatalf("publish: %v", err)
		}
		fs.mu.Lock()
		fs.appendErr = nil
		fs.mu.Unlock()
		id1 := e.publish("a", "1")
		if ev := c.next(); ev.ID != id1 || ev.Data != "1" {
			t.Fatalf("got %+v", ev)
		}

		// History fails: a resuming client gets 503, not a partial replay.
		fs.mu.Lock()
		fs.historyErr = boom
		fs.mu.Unlock()
		r := e.get("/events?topic=a", http.Header{"Last-Event-Id": {id1}})
		if r.resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("status %d", r.resp.StatusCode)
		}
		r.close()
		fs.mu.Lock()
		fs.historyErr = nil
		fs.mu.Unlock()

		// Follow fails: subscribers are disconnected, the follower starts
		// again, and a client resuming with its id misses nothing.
		fs.followErr <- boom
		c.end()
		id2 := e.publish("a", "2")
		c = e.subscribe(id1, "a")
		if id := c.primed(); id != id1 {
			t.Fatalf("primed with %s, want the cursor %s", id, id1)
		}
		if ev := c.next(); ev.ID != id2 {
			t.Fatalf("after follow failure got %+v", ev)
		}
		id3 := e.publish("a", "3")
		if ev := c.next(); ev.ID != id3 {
			t.Fatalf("live after follow failure got %+v", ev)
		}
		if n := fs.followCount(); n != 2 {
			t.Fatalf("%d follows, want 2", n)
		}
	})
}

// Authorize filters every event, live and replayed; private events need
// it.
func TestEventAuthorization(t *testing.T) {
	protocols(t, func(t *testing.T, h2 bool) {
		e := newEnvHooks(t, Config{}, h2, &hooks{sub: func(r *http.Request) (Subscription, error) {
			sub := Subscription{Topics: []string{"a"}}
			if user := r.URL.Query().Get("user"); user != "" {
				sub.Authorize = func(ev *store.Event) bool {
					return !ev.Private || strings.HasPrefix(ev.Data, user+":")
				}
			}
			return sub, nil
		}})
		ctx := context.Background()
		publish := func(data string, private bool) string {
			id, err := e.h.Publish(ctx, Message{Topics: []string{"a"}, Event: sse.Event{Data: data}, Private: private})
			if err != nil {
				t.Fatal(err)
			}
			return id
		}
		first := publish("public 1", false)
		publish("bob: secret", true)
		publish("alice: hi", true)
		publish("public 2", false)

		check := func(c *client, want ...string) {
			t.Helper()
			for _, w := range want {
				if ev := c.next(); ev.Data != w {
					t.Fatalf("got %q, want %q", ev.Data, w)
				}
			}
		}
		alice := e.get("/events?user=alice&lastEventID="+url.QueryEscape(first), nil)
		anon := e.get("/events?lastEventID="+url.QueryEscape(first), nil)
		for _, c := range []*client{alice, anon} {
			if id := c.primed(); id != first {
				t.Fatalf("primed with %s, want the cursor %s", id, first)
			}
		}
		check(alice, "alice: hi", "public 2")
		check(anon, "public 2")
		publish("bob: live secret", true)
		publish("alice: live", true)
		last := publish("public 3", false)
		check(alice, "alice: live", "public 3")
		check(anon, "public 3")
		if anon.reader.LastEventID() != last {
			t.Fatal("cursor mismatch")
		}
	})
}

// Match extends exact topics with patterns; subscribers sharing a MatchKey
// share one evaluation per event.
func TestPatternMatch(t *testing.T) {
	var calls atomic.Int64
	e := newEnvHooks(t, Config{}, false, &hooks{sub: func(r *http.Request) (Subscription, error) {
		prefix := r.URL.Query().Get("prefix")
		return Subscription{
			MatchKey: "prefix:" + prefix,
			Match: func(topics []string) bool {
				calls.Add(1)
				for _, t := range topics {
					if strings.HasPrefix(t, prefix) {
						return true
					}
				}
				return false
			},
		}, nil
	}})
	e.publish("seed", "seed")
	var cs []*client
	for range 3 {
		c := e.get("/events?prefix=books/", nil)
		c.primed()
		cs = append(cs, c)
	}
	e.publish("music/1", "no")
	id := e.publish("books/1", "yes")
	for _, c := range cs {
		if ev := c.next(); ev.ID != id {
			t.Fatalf("got %+v", ev)
		}
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("Match called %d times for 2 events and 3 subscribers with one key", n)
	}
}

type countingMetrics struct {
	NopMetrics
	connected, disconnected, published, delivered, replayed, resets atomic.Int64
}

func (m *countingMetrics) SubscriberConnected()                    { m.connected.Add(1) }
func (m *countingMetrics) SubscriberDisconnected(DisconnectReason) { m.disconnected.Add(1) }
func (m *countingMetrics) Published(n int)                         { m.published.Add(int64(n)) }
func (m *countingMetrics) Delivered(n int)                         { m.delivered.Add(int64(n)) }
func (m *countingMetrics) Replayed(n int, _ time.Duration)         { m.replayed.Add(int64(n)) }
func (m *countingMetrics) Reset(string)                            { m.resets.Add(1) }

func TestMetrics(t *testing.T) {
	m := &countingMetrics{}
	e := newEnv(t, Config{Metrics: m}, false)
	first := e.publish("a", "0")
	for i := 1; i < 5; i++ {
		e.publish("a", strconv.Itoa(i))
	}
	c := e.subscribe(first, "a")
	c.primed()
	for range 4 {
		c.next()
	}
	e.publish("a", "live")
	c.next()
	r := e.subscribe("unknown", "a")
	r.next()
	c.close()
	r.close()
	waitFor(t, "disconnects", func() bool { return m.disconnected.Load() == 2 })
	if m.connected.Load() != 2 || m.published.Load() != 6 || m.delivered.Load() != 5 ||
		m.replayed.Load() != 4 || m.resets.Load() != 1 {
		t.Fatalf("metrics: connected %d published %d delivered %d replayed %d resets %d",
			m.connected.Load(), m.published.Load(), m.delivered.Load(), m.replayed.Load(), m.resets.Load())
	}
	if st := e.h.Stats(); st.Delivered != 5 || st.Replayed != 4 || st.Published != 6 {
		t.Fatalf("stats %+v", st)
	}
}

// TestStatsLastPublishError: a failed store append is recorded in Stats
// with its time until an append succeeds; what is not the store's fault
// (an invalid event, a context that ended) is not.
func TestStatsLastPublishError(t *testing.T) {
	fs := newFlaky(t)
	clock := newFakeClock()
	h, err := New(Config{Store: fs, Clock: clock, Logger: quietLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Shutdown(context.Background()) })
	ctx := context.Background()
	if st := h.Stats(); st.LastPublishError != "" || !st.LastPublishErrorAt.IsZero() {
		t.Fatalf("new hub: %q at %v", st.LastPublishError, st.LastPublishErrorAt)
	}

	boom := errors.New("no space left on device")
	fs.mu.Lock()
	fs.appendErr = boom
	fs.mu.Unlock()
	if _, err := h.Publish(ctx, Message{Topics: []string{"a"}, Event: sse.Event{Data: "x"}}); !errors.Is(err, boom) {
		t.Fatalf("publish: %v", err)
	}
	st := h.Stats()
	if !strings.Contains(st.LastPublishError, boom.Error()) || !st.LastPublishErrorAt.Equal(clock.Now()) {
		t.Fatalf("after a failed append: %q at %v, want %q at %v", st.LastPublishError, st.LastPublishErrorAt, boom, clock.Now())
	}

	// Not the store's failures: they leave the record as it is.
	failedAt := clock.Now()
	clock.Advance(time.Minute)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	fs.mu.Lock()
	fs.appendErr = context.Canceled
	fs.mu.Unlock()
	if _, err := h.Publish(cctx, Message{Topics: []string{"a"}, Event: sse.Event{Data: "x"}}); err == nil {
		t.Fatal("publish with a canceled context succeeded")
	}
	fs.mu.Lock()
	fs.appendErr = fmt.Errorf("memory: %w", store.ErrInvalidEvent)
	fs.mu.Unlock()
	if _, err := h.Publish(ctx, Message{Topics: []string{"a"}, Event: sse.Event{Data: "x"}}); !errors.Is(err, store.ErrInvalidEvent) {
		t.Fatalf("publish of an invalid event: %v", err)
	}
	if _, err := h.Publish(ctx, Message{Topics: []string{""}, Event: sse.Event{Data: "x"}}); !errors.Is(err, ErrReservedTopic) {
		t.Fatalf("publish to an empty topic: %v", err)
	}
	if st := h.Stats(); !st.LastPublishErrorAt.Equal(failedAt) || !strings.Contains(st.LastPublishError, boom.Error()) {
		t.Fatalf("after failures that are not the store's: %q at %v, want the earlier %q at %v", st.LastPublishError, st.LastPublishErrorAt, boom, failedAt)
	}

	// A successful append clears it.
	fs.mu.Lock()
	fs.appendErr = nil
	fs.mu.Unlock()
	if _, err := h.Publish(ctx, Message{Topics: []string{"a"}, Event: sse.Event{Data: "x"}}); err != nil {
		t.Fatal(err)
	}
	if st := h.Stats(); st.LastPublishError != "" || !st.LastPublishErrorAt.IsZero() {
		t.Fatalf("after a successful append: %q at %v, want none", st.LastPublishError, st.LastPublishErrorAt)
	}
}
