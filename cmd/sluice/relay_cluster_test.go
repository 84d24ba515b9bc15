package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/relay"
	"github.com/sluicehq/sluice/sse"
)

// relayHang bounds every wait of the relay cluster tests: a hang guard,
// far above the lease bound the hubs run with.
const relayHang = 20 * time.Second

// relayReader reads one relay response to its end: each event, then the
// end (err set, io.EOF for a clean one), in order on one channel.
type relayReader struct {
	items chan relayItem
}

type relayItem struct {
	ev  sse.Event
	err error
}

// readRelay starts reading the GET of the relay id on base, from after
// lastID ("" for the start).
func readRelay(t *testing.T, base, id, lastID string) *relayReader {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), relayHang) // a hang guard
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/relay/streams/"+id, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		t.Fatalf("GET /relay/streams/%s on %s: %d", id, base, resp.StatusCode)
	}
	return readRelayBody(t, resp.Body)
}

func readRelayBody(t *testing.T, body io.ReadCloser) *relayReader {
	rr := &relayReader{items: make(chan relayItem, 100)}
	go func() {
		defer body.Close()
		for ev, err := range sse.Read(body) {
			if err != nil {
				rr.items <- relayItem{err: err}
				return
			}
			rr.items <- relayItem{ev: ev}
		}
		rr.items <- relayItem{err: io.EOF}
	}()
	return rr
}

// resumeStatus returns the status of a GET of the relay id on base
// resuming after lastID.
func resumeStatus(t *testing.T, base, id, lastID string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), relayHang) // a hang guard
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/relay/streams/"+id, nil)
	req.Header.Set("Last-Event-ID", lastID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// next returns the reader's next event, failing on its end or a hang.
func (rr *relayReader) next(t *testing.T, what string) sse.Event {
	t.Helper()
	select {
	case it := <-rr.items:
		if it.err != nil {
			t.Fatalf("%s: the response ended (%v) before the next event", what, it.err)
		}
		return it.ev
	case <-time.After(relayHang):
		t.Fatalf("%s: no event within %v", what, relayHang)
	}
	return sse.Event{}
}

// tokens reads the tokens from..to-1 of the fake upstream.
func (rr *relayReader) tokens(t *testing.T, what string, from, to int) (lastID string) {
	t.Helper()
	for i := from; i < to; i++ {
		ev := rr.next(t, what)
		if ev.Type != "message" || ev.Data != strconv.Itoa(i) {
			t.Fatalf("%s: got %q %q, want token %d", what, ev.Type, ev.Data, i)
		}
		lastID = ev.ID
	}
	return lastID
}

// end waits for the response to end cleanly after no further event.
func (rr *relayReader) end(t *testing.T, what string) {
	t.Helper()
	select {
	case it := <-rr.items:
		if it.err == nil {
			t.Fatalf("%s: an event after the end: %+v", what, it.ev)
		}
		if !errors.Is(it.err, io.EOF) {
			t.Fatalf("%s: the response ended with %v", what, it.err)
		}
	case <-time.After(relayHang):
		t.Fatalf("%s: the response did not end within %v", what, relayHang)
	}
}

// TestRelayCluster runs two "sluice serve" processes on one Redis log, then
// on one NATS stream, with short leases (issue 17). An answer started on A
// is resumed on B mid-way and completes there, read once. A second answer
// is started on A and read on B by two resumers (one mid-way, one from the
// start); A is killed with SIGKILL: both resumers, and a third that
// arrives after the kill, get relay-lost and the end of their response
// within the lease bound, never a hang; the answer is then over (204).
// The upstream is called once per answer.
func TestRelayCluster(t *testing.T) {
	for _, ss := range sharedStores {
		t.Run(ss.kind, func(t *testing.T) { testRelayCluster(t, ss.kind) })
	}
}

func testRelayCluster(t *testing.T, kind string) {
	const (
		key      = "relay-cluster-key-at-least-256-bits-long"
		n        = 10
		interval = 100 * time.Millisecond
		ttl      = 400 * time.Millisecond
	)
	dsn := sharedStoreDSN(t, kind)
	bin := buildSluice(t)
	llm := newLLMUpstream(t, n)
	args := []string{"--addr", "127.0.0.1:0", "--store", dsn, "--jwt-key", key, "--relay", "chat=" + llm.srv.URL,
		"--relay-lease-interval", interval.String(), "--relay-lease-ttl", ttl.String()}
	hubA := startHubProc(t, bin, args...)
	hubB := startHubProc(t, bin, args...)
	tok := relayToken(t, key, "chat")
	release := func(k int) {
		for range k {
			llm.gate <- struct{}{}
		}
	}
	start := func() (string, *relayReader) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), relayHang) // a hang guard
		t.Cleanup(cancel)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, hubA.base+"/relay/chat", strings.NewReader(`{"prompt":"hi"}`))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		id := resp.Header.Get(relayIDHeader)
		if resp.StatusCode != http.StatusOK || id == "" {
			resp.Body.Close()
			t.Fatalf("POST /relay/chat on A: %d, id %q", resp.StatusCode, id)
		}
		return id, readRelayBody(t, resp.Body)
	}

	// A complete answer: started on A, resumed on B mid-way.
	id, onA := start()
	release(3)
	last := onA.tokens(t, "answer 1 on A", 0, 3)
	onB := readRelay(t, hubB.base, id, last)
	release(n - 3)
	last = onB.tokens(t, "answer 1 resumed on B", 3, n)
	onB.end(t, "answer 1 resumed on B")
	if code := resumeStatus(t, hubB.base, id, last); code != http.StatusNoContent {
		t.Fatalf("a finished answer resumed after its last event on B: %d, want 204", code)
	}

	// An answer whose hub dies: A is killed mid-answer.
	id, onA = start()
	release(3)
	last = onA.tokens(t, "answer 2 on A", 0, 3)
	mid := readRelay(t, hubB.base, id, last)
	fromStart := readRelay(t, hubB.base, id, "")
	release(2)
	mid.tokens(t, "answer 2 resumed on B mid-way", 3, 5)
	last = fromStart.tokens(t, "answer 2 read on B from the start", 0, 5)
	killed := time.Now()
	if err := hubA.stop(t, syscall.SIGKILL); err == nil {
		t.Fatal("A exited cleanly after SIGKILL")
	}
	late := readRelay(t, hubB.base, id, last)
	var lostID string
	for _, r := range []struct {
		name string
		rr   *relayReader
	}{{"mid-way", mid}, {"from the start", fromStart}, {"arrived after the kill", late}} {
		ev := r.rr.next(t, "resumer "+r.name+" after A died")
		if ev.Type != relay.EventLost || ev.Data != `{"reason":"lost"}` {
			t.Fatalf("resumer %s: got %q %q, want %s", r.name, ev.Type, ev.Data, relay.EventLost)
		}
		r.rr.end(t, "resumer "+r.name)
		if lostID == "" {
			lostID = ev.ID
		}
		t.Logf("%s: resumer %s got %s %v after the kill (bound: TTL %v + interval %v, after it started waiting)",
			kind, r.name, relay.EventLost, time.Since(killed).Round(time.Millisecond), ttl, interval)
	}
	if since := time.Since(killed); since >= 10*time.Second {
		// A hang guard that also tells the flags apart from the 20 s default.
		t.Fatalf("relay-lost came %v after the kill: the lease flags are not in effect", since)
	}
	if code := resumeStatus(t, hubB.base, id, lostID); code != http.StatusNoContent {
		t.Fatalf("the lost answer resumed after relay-lost: %d, want 204", code)
	}
	if c := llm.calls.Load(); c != 2 {
		t.Fatalf("the upstream was called %d times for 2 answers", c)
	}
}
