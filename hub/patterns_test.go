package hub

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/sse"
	"github.com/sluicehq/sluice/store"
)

// patternHook serves /events?pat=KEY with a pattern subscription whose
// Match accepts topic "a" (MatchKey KEY), first waiting for gates[KEY]
// when the test set one; other requests get exact topics.
type patternHook struct {
	mu    sync.Mutex
	gates map[string]chan struct{}
}

func (p *patternHook) gate(key string) chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gates == nil {
		p.gates = make(map[string]chan struct{})
	}
	if p.gates[key] == nil {
		p.gates[key] = make(chan struct{})
	}
	return p.gates[key]
}

func (p *patternHook) subscription(r *http.Request) (Subscription, error) {
	key := r.URL.Query().Get("pat")
	if key == "" {
		return Subscription{Topics: r.URL.Query()["topic"]}, nil
	}
	var gate chan struct{}
	if key != "fast" {
		gate = p.gate(key)
	}
	return Subscription{MatchKey: key, Match: func(topics []string) bool {
		if gate != nil {
			<-gate
		}
		return topics[0] == "a"
	}}, nil
}

func (e *env) publishNoWait(topic, data string) string {
	e.t.Helper()
	id, err := e.h.Publish(context.Background(), Message{Topics: []string{topic}, Event: sse.Event{Data: data}})
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

// A subscription whose matcher is stuck delays neither the subscribers of
// exact topics nor other pattern subscriptions: its group falls behind
// alone, and is disconnected as slow once it is a queue behind.
func TestStuckMatcherDelaysOnlyItsGroup(t *testing.T) {
	checkGoroutines(t)
	hook := &patternHook{}
	reasons := make(chan DisconnectReason, 4)
	e := newEnvHooks(t, Config{QueueEvents: 16}, false, &hooks{sub: hook.subscription, onDisconnect: func(_ *Subscriber, r DisconnectReason) { reasons <- r }})
	stuck := hook.gate("stuck")
	defer close(stuck) // lets the group's goroutine finish
	hostile := e.get("/events?pat=stuck", nil)
	exact := e.subscribe("", "a")
	fast := e.get("/events?pat=fast", nil)
	waitFor(t, "three subscribers", func() bool { return e.h.Subscribers() == 3 })

	const n = 40 // more than a queue
	for i := range n {
		e.publishNoWait("a", strconv.Itoa(i))
		for _, c := range []*client{exact, fast} { // lockstep: never a queue behind
			if ev := c.next(); ev.Data != strconv.Itoa(i) {
				t.Fatalf("event %d: got %q", i, ev.Data)
			}
		}
	}
	if r := <-reasons; r != ReasonSlow {
		t.Fatalf("the stuck subscription ended with %q, want %q", r, ReasonSlow)
	}
	select {
	case <-hostile.Done(): // cut short, as slow subscribers are
	case <-time.After(hang):
		t.Fatal("the stuck subscription's stream did not end")
	}
	if n := hostile.Pending(); n != 0 {
		t.Errorf("the stuck subscription received %d events", n)
	}
}

// A subscriber joining a group whose goroutine is still matching earlier
// events receives only the events dispatched after it registered, and the
// earlier members all of them, in order.
func TestGroupJoinStartsAtItsPosition(t *testing.T) {
	hook := &patternHook{}
	e := newEnvHooks(t, Config{}, false, &hooks{sub: hook.subscription})
	gate := hook.gate("gate")
	first := e.get("/events?pat=gate", nil)
	waitFor(t, "the first member", func() bool { return e.h.Subscribers() == 1 })
	for i := 1; i <= 3; i++ {
		e.publishNoWait("a", strconv.Itoa(i)) // matched only once the gate opens
	}
	last := e.publishNoWait("a", "3b")
	waitFor(t, "the dispatch", func() bool { return e.h.Stats().Position == last })
	second := e.get("/events?pat=gate", nil)
	waitFor(t, "the second member", func() bool { return e.h.Subscribers() == 2 })
	if id := second.primed(); id != last {
		t.Fatalf("second member primed with %s, want %s", id, last)
	}
	e.publishNoWait("a", "4")
	close(gate)
	for _, want := range []string{"1", "2", "3", "3b", "4"} { // the log was empty: no priming
		if ev := first.next(); ev.Data != want {
			t.Fatalf("first member: got %q, want %q", ev.Data, want)
		}
	}
	if ev := second.next(); ev.Data != "4" {
		t.Fatalf("second member: got %q, want only the event after it joined", ev.Data)
	}
}

// A private event costs no matching to a group none of whose members may
// see private events (no Authorize), nor to one whose members all refuse
// it; a group with a member that may see it matches it.
func TestPrivateEventsSkipUnauthorizedGroups(t *testing.T) {
	var calls atomic.Int64
	e := newEnvHooks(t, Config{}, false, &hooks{sub: func(r *http.Request) (Subscription, error) {
		sub := Subscription{MatchKey: r.URL.RawQuery, Match: func(topics []string) bool {
			calls.Add(1)
			return topics[0] == "a"
		}}
		switch r.URL.Query().Get("auth") {
		case "no":
			sub.Authorize = func(e *store.Event) bool { return !e.Private }
		case "yes":
			sub.Authorize = func(*store.Event) bool { return true }
		}
		return sub, nil
	}})
	anon := e.get("/events?auth=none", nil)
	refuses := e.get("/events?auth=no", nil)
	waitFor(t, "two subscribers", func() bool { return e.h.Subscribers() == 2 })
	if _, err := e.h.Publish(context.Background(), Message{Topics: []string{"a"}, Event: sse.Event{Data: "secret"}, Private: true}); err != nil {
		t.Fatal(err)
	}
	e.publishNoWait("a", "public")
	for _, c := range []*client{anon, refuses} {
		if ev := c.next(); ev.Data != "public" {
			t.Fatalf("got %q, want the public event", ev.Data)
		}
	}
	if n := calls.Load(); n != 2 { // the public event, once per group
		t.Fatalf("Match called %d times, want 2 (the private event matched by nobody)", n)
	}
	granted := e.get("/events?auth=yes", nil)
	waitFor(t, "three subscribers", func() bool { return e.h.Subscribers() == 3 })
	granted.primed()
	if _, err := e.h.Publish(context.Background(), Message{Topics: []string{"a"}, Event: sse.Event{Data: "secret"}, Private: true}); err != nil {
		t.Fatal(err)
	}
	if ev := granted.next(); ev.Data != "secret" {
		t.Fatalf("the authorized subscriber got %q", ev.Data)
	}
}
