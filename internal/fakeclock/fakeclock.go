// Package fakeclock is a clock for tests that moves only when told to, so
// that heartbeats, lifetimes and leases are tested without sleeping. Its
// timers behave as a time.Timer does since Go 1.23: Stop and Reset drop a
// fire that was not received.
package fakeclock

import (
	"sync"
	"time"
)

// Clock is a clock whose time changes only on Advance. The zero value is
// not usable; call New.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	timers map[*Timer]struct{}
}

// New returns a clock at 2026-01-01 00:00 UTC with no timers.
func New() *Clock {
	return &Clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), timers: map[*Timer]struct{}{}}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTimer returns a timer that fires once the clock has advanced by d.
func (c *Clock) NewTimer(d time.Duration) *Timer {
	t := &Timer{c: c, ch: make(chan time.Time, 1)}
	t.Reset(d)
	return t
}

// Armed returns the number of timers waiting to fire.
func (c *Clock) Armed() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// Advance moves the clock by d and fires the timers due.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for t := range c.timers {
		if !t.when.After(c.now) {
			delete(c.timers, t)
			select {
			case t.ch <- c.now:
			default:
			}
		}
	}
}

// Timer is a one-shot timer of a Clock.
type Timer struct {
	c    *Clock
	ch   chan time.Time
	when time.Time
}

// C returns the channel the timer sends the clock's time on when it fires.
func (t *Timer) C() <-chan time.Time { return t.ch }

// Reset re-arms the timer to fire once the clock has advanced by d from
// now, dropping a fire not received.
func (t *Timer) Reset(d time.Duration) {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	t.drain()
	t.when = t.c.now.Add(d)
	t.c.timers[t] = struct{}{}
}

// Stop disarms the timer, dropping a fire not received.
func (t *Timer) Stop() {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	t.drain()
	delete(t.c.timers, t)
}

func (t *Timer) drain() {
	select {
	case <-t.ch:
	default:
	}
}
