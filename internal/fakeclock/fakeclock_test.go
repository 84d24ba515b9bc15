package fakeclock

import (
	"testing"
	"time"
)

// TestTimer: a timer fires only once the clock reaches it, once, and Stop
// and Reset drop a fire not received, as a time.Timer's do.
func TestTimer(t *testing.T) {
	c := New()
	start := c.Now()
	tm := c.NewTimer(time.Second)
	c.Advance(999 * time.Millisecond)
	select {
	case <-tm.C():
		t.Fatal("fired before its time")
	default:
	}
	if c.Armed() != 1 {
		t.Fatalf("Armed = %d, want 1", c.Armed())
	}
	c.Advance(time.Millisecond)
	select {
	case at := <-tm.C():
		if want := start.Add(time.Second); !at.Equal(want) {
			t.Fatalf("fired at %v, want %v", at, want)
		}
	default:
		t.Fatal("did not fire at its time")
	}
	if c.Armed() != 0 {
		t.Fatalf("Armed = %d after firing, want 0", c.Armed())
	}
	c.Advance(time.Hour)
	select {
	case <-tm.C():
		t.Fatal("fired twice")
	default:
	}

	tm.Reset(time.Second)
	c.Advance(time.Second) // fires, not received
	tm.Reset(time.Minute)
	select {
	case <-tm.C():
		t.Fatal("Reset kept a stale fire")
	default:
	}
	c.Advance(time.Second)
	tm.Stop()
	c.Advance(time.Hour)
	select {
	case <-tm.C():
		t.Fatal("fired after Stop")
	default:
	}
	if c.Armed() != 0 {
		t.Fatalf("Armed = %d after Stop, want 0", c.Armed())
	}
}
