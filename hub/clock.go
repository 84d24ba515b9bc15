package hub

import (
	"math/rand/v2"
	"time"
)

// Clock is the hub's source of time for heartbeats, connection lifetimes,
// and session and stream TTLs. The default is the real clock;
// tests inject a fake one so that nothing depends on sleeping. Network
// write deadlines always use real time.
type Clock interface {
	Now() time.Time
	// NewTimer returns a started timer that fires once after d.
	NewTimer(d time.Duration) Timer
}

// Timer is a one-shot timer made by a Clock.
type Timer interface {
	// C returns the channel the timer sends on when it fires.
	C() <-chan time.Time
	// Reset re-arms the timer to fire after d. Call it only after the
	// timer fired and its value was received, or after Stop.
	Reset(d time.Duration)
	// Stop prevents the timer from firing.
	Stop()
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time   { return t.t.C }
func (t realTimer) Reset(d time.Duration) { t.t.Reset(d) }
func (t realTimer) Stop()                 { t.t.Stop() }

func defaultJitter(max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	return rand.N(max)
}
