package backoff

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	want := []time.Duration{10, 20, 40, 75, 75} // ms: doubling from Min, capped at Max
	for range 200 {
		b := New(10*time.Millisecond, 75*time.Millisecond)
		for round := range 2 {
			for i, d := range want {
				d *= time.Millisecond
				if got := b.Next(); got < d/2 || got > d {
					t.Fatalf("round %d, wait %d: %v, want in [%v, %v]", round, i, got, d/2, d)
				}
			}
			b.Reset()
		}
	}
}

func TestNewDefaults(t *testing.T) {
	for _, c := range []struct{ lo, hi, wantLo, wantHi time.Duration }{
		{0, 0, DefaultMin, DefaultMax},
		{-1, -1, DefaultMin, DefaultMax},
		{time.Second, 0, time.Second, DefaultMax},
		{10 * time.Second, time.Second, 10 * time.Second, 10 * time.Second}, // hi raised to lo
	} {
		b := New(c.lo, c.hi)
		if b.Min != c.wantLo || b.Max != c.wantHi {
			t.Errorf("New(%v, %v) = [%v, %v], want [%v, %v]", c.lo, c.hi, b.Min, b.Max, c.wantLo, c.wantHi)
		}
	}
}
