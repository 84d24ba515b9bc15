// Package backoff is capped exponential backoff with jitter, for the
// stores' reconnection loops.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Backoff is capped exponential backoff with jitter: the n-th wait since
// the last Reset is a uniform random duration in [d/2, d], where d is Min
// doubled n-1 times, capped at Max. The zero Reset state is ready to use.
// A Backoff is not safe for concurrent use.
type Backoff struct {
	Min, Max time.Duration
	cur      time.Duration
}

// Defaults New applies to a zero (or negative) bound.
const (
	DefaultMin = 50 * time.Millisecond
	DefaultMax = 5 * time.Second
)

// New returns a Backoff from lo to hi: DefaultMin and DefaultMax stand in
// for bounds that are not positive, and hi is raised to lo if below it.
func New(lo, hi time.Duration) *Backoff {
	if lo <= 0 {
		lo = DefaultMin
	}
	if hi <= 0 {
		hi = DefaultMax
	}
	return &Backoff{Min: lo, Max: max(hi, lo)}
}

// Next returns the next wait.
func (b *Backoff) Next() time.Duration {
	if b.cur == 0 {
		b.cur = b.Min
	} else {
		b.cur = min(2*b.cur, b.Max)
	}
	return b.cur/2 + rand.N(b.cur/2+1)
}

// Reset makes the next wait the shortest again.
func (b *Backoff) Reset() { b.cur = 0 }
