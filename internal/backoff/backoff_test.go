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
