//go:build !unix

package hub

import "runtime"

// netYield: elsewhere than on Unix a pipe is not watched by the network
// poller, so a yield only lets the goroutines already runnable go first.
type netYield struct{}

func (y *netYield) yield(*Hub) { runtime.Gosched() }

func (y *netYield) stop() {}
