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

// New returns a Backoff from min to max.
func New(min, max time.Duration) *Backoff { return &Backoff{Min: min, Max: max} }

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
