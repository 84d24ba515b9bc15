//go:build unix

package hub

import (
	"context"
	"net"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/sluicehq/sluice/store"
)

// netYield lets a goroutine whose network input has arrived run while
// the yielding goroutine keeps the only P busy: after two yields it has
// run. (runtime.Gosched would not do: the scheduler asks the network
// poller only once no goroutine is runnable, or every 10 ms.)
func TestNetYieldRunsNetworkInput(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	m := store.NewMemory(store.MemoryConfig{})
	t.Cleanup(func() { m.Close() })
	h, err := New(Config{Store: m, Logger: quietLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Shutdown(context.Background()) })

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	var y netYield
	defer y.stop()
	y.yield(h) // the pipe and its reader exist before the test proper
	var got atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		var buf [1]byte
		if _, err := b.Read(buf[:]); err == nil {
			got.Store(true)
		}
	}()
	y.yield(h) // the reader is parked in the poller
	if got.Load() {
		t.Fatal("read before anything was written")
	}
	if _, err := a.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	y.yield(h) // the poller readies the reader with the pipe's
	y.yield(h) // it runs before the pipe can be ready again
	if !got.Load() {
		t.Fatal("the reader did not run during two yields")
	}
	<-done
}
