//go:build unix

package hub

import (
	"os"
	"runtime"
)

// netYield lets the scheduler poll the network in the middle of a fan-out
// (see waker.go). runtime.Gosched does not: the goroutine it requeues is
// found again before the poller is asked. The waker writes a byte to a
// pipe and parks until a goroutine of its own, blocked in a read of the
// pipe, has it: that read is readied only by the network poller, which
// the scheduler asks once the goroutines woken before have run, and which
// returns with it every connection that has a request waiting. So a
// yield costs two small system calls and lets everything pending in
// between, never a timer's millisecond. The pipe and its reader are made
// at the first yield: a hub that never wakes more than wakeChunk streams
// at once has neither.
type netYield struct {
	w    *os.File      // the pipe's write end, once made
	done chan struct{} // the reader got a byte
	off  bool          // no pipe: yield with runtime.Gosched
}

func (y *netYield) yield(h *Hub) {
	if y.w == nil && !y.off {
		y.start(h)
	}
	if y.off {
		runtime.Gosched()
		return
	}
	if _, err := y.w.Write([]byte{0}); err != nil {
		runtime.Gosched()
		return
	}
	<-y.done
}

func (y *netYield) start(h *Hub) {
	r, w, err := os.Pipe()
	if err != nil {
		h.log.Warn("hub: no pipe for the waker; fan-outs will not let publishes in", "err", err)
		y.off = true
		return
	}
	if !h.spawn() {
		_ = r.Close()
		_ = w.Close()
		y.off = true
		return
	}
	y.w, y.done = w, make(chan struct{}, 1)
	go func() {
		defer h.bg.Done()
		defer r.Close()
		var b [1]byte
		for {
			if _, err := r.Read(b[:]); err != nil {
				return // stop closed the write end
			}
			y.done <- struct{}{}
		}
	}()
}

// stop ends the reader: it runs on the waker goroutine, as it exits.
func (y *netYield) stop() {
	if y.w != nil {
		_ = y.w.Close()
	}
}
