package hub

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// streamGoroutine returns the header line ("goroutine N [...]") of the
// goroutine running the one detached stream's loop, "" while there is
// none.
func streamGoroutine() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "hub.(*conn).loop(") && strings.Contains(g, "created by github.com/sluicehq/sluice/hub.(*conn).spawn") {
			id, _, _ := strings.Cut(g, " [")
			return id
		}
	}
	return ""
}

// At each heartbeat a detached stream goes on on a fresh goroutine, so
// that a stack grown by a burst, a slow client or a storm is given back
// (BenchmarkStackAfterBurst), and it loses, repeats and leaks nothing.
func TestRestack(t *testing.T) {
	checkGoroutines(t)
	clock := newFakeClock()
	e := newEnv(t, Config{Clock: clock, Heartbeat: time.Second}, false)
	s := e.tcpSubscribe("/events?topic=a")
	want := func(what, part string) {
		t.Helper()
		if got := s.chunk(); !strings.Contains(got, part) {
			t.Fatalf("got %q, want %s", got, what)
		}
	}
	e.publish("a", "one")
	want("the first event", "data: one\n")
	var g string
	waitFor(t, "the detached stream", func() bool { g = streamGoroutine(); return g != "" })
	goroutines := runtime.NumGoroutine()
	for i := range 3 {
		waitArmed(t, clock, 1)
		clock.Advance(time.Second)
		want("a heartbeat", ": \n")
		prev := g
		waitFor(t, "the stream on a new goroutine", func() bool { g = streamGoroutine(); return g != "" && g != prev })
		data := strings.Repeat("x", i+1)
		e.publish("a", data)
		want("the next event", "data: "+data+"\n")
	}
	if n := runtime.NumGoroutine(); n > goroutines {
		t.Fatalf("%d goroutines, %d before the moves", n, goroutines)
	}
}
