package fakeclock

import (
	"testing"
	"time"
)

// fired returns the time tm sent, if it has fired and was not received.
func fired(tm *Timer) (time.Time, bool) {
	select {
	case at := <-tm.C():
		return at, true
	default:
		return time.Time{}, false
	}
}

// TestTimer: a timer fires only once the clock reaches it, once, and Stop
// and Reset drop a fire not received, as a time.Timer's do.
func TestTimer(t *testing.T) {
	c := New()
	start := c.Now()
	tm := c.NewTimer(time.Second)
	c.Advance(999 * time.Millisecond)
	if _, ok := fired(tm); ok {
		t.Fatal("fired before its time")
	}
	if c.Armed() != 1 {
		t.Fatalf("Armed = %d, want 1", c.Armed())
	}
	c.Advance(time.Millisecond)
	at, ok := fired(tm)
	if want := start.Add(time.Second); !ok || !at.Equal(want) {
		t.Fatalf("fired %v at %v, want at %v", ok, at, want)
	}
	if c.Armed() != 0 {
		t.Fatalf("Armed = %d after firing, want 0", c.Armed())
	}
	c.Advance(time.Hour)
	if _, ok := fired(tm); ok {
		t.Fatal("fired twice")
	}

	tm.Reset(time.Second)
	c.Advance(time.Second) // fires, not received
	tm.Reset(time.Minute)
	if _, ok := fired(tm); ok {
		t.Fatal("Reset kept a stale fire")
	}
	c.Advance(time.Second)
	tm.Stop()
	c.Advance(time.Hour)
	if _, ok := fired(tm); ok {
		t.Fatal("fired after Stop")
	}
	if c.Armed() != 0 {
		t.Fatalf("Armed = %d after Stop, want 0", c.Armed())
	}
}
