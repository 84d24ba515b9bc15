package hub

import (
	"errors"
	"net"
	"sync"
	"syscall"
)

// On Linux one goroutine per process watches every hijacked connection for
// the client going away (EPOLLRDHUP, EPOLLHUP, EPOLLERR, never incoming
// bytes), so that a vanished client is noticed at once, as net/http's
// per-connection reader goroutine would, instead of at the next write. It
// starts with the first hijacked connection and ends with the last.

type peerWatch struct {
	w   *epoller
	key int32
}

type epoller struct {
	epfd, efd int // the epoll instance, and the eventfd that stops it
	subs      map[int32]*Subscriber
	next      int32
}

var peers struct {
	mu  sync.Mutex
	w   *epoller // the running watcher, or nil
	off bool     // tests: watch nothing, as on other systems
}

// watchPeer registers the hijacked connection; the subscriber is closed
// with ReasonClient when its client goes away. On failure the connection is
// only checked at heartbeats.
func (c *conn) watchPeer() {
	nc := c.nc
	if u, ok := nc.(interface{ NetConn() net.Conn }); ok {
		nc = u.NetConn()
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	peers.mu.Lock()
	defer peers.mu.Unlock()
	if peers.off {
		return
	}
	w := peers.w
	if w == nil {
		if w, err = newEpoller(); err != nil {
			return
		}
	}
	key := w.next
	for {
		if key++; key < 0 {
			key = 0
		}
		if _, used := w.subs[key]; !used {
			break
		}
	}
	var cerr error
	err = raw.Control(func(fd uintptr) {
		ev := syscall.EpollEvent{Events: syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: key}
		cerr = syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
	})
	if err != nil || cerr != nil {
		if peers.w == nil {
			w.close()
		}
		return
	}
	if peers.w == nil {
		peers.w = w
		go w.run()
	}
	w.next = key
	w.subs[key] = c.s
	c.watch = peerWatch{w: w, key: key}
}

// unwatchPeer removes the connection from the watcher; it must be called
// before the connection is closed.
func (c *conn) unwatchPeer() {
	w := c.watch.w
	if w == nil {
		return
	}
	c.watch.w = nil
	nc := c.nc
	if u, ok := nc.(interface{ NetConn() net.Conn }); ok {
		nc = u.NetConn()
	}
	peers.mu.Lock()
	defer peers.mu.Unlock()
	if raw, err := nc.(syscall.Conn).SyscallConn(); err == nil {
		_ = raw.Control(func(fd uintptr) {
			_ = syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_DEL, int(fd), nil)
		})
	}
	delete(w.subs, c.watch.key)
	if len(w.subs) == 0 && peers.w == w {
		peers.w = nil // w.run sees it and ends
		var one = [8]byte{1}
		_, _ = syscall.Write(w.efd, one[:])
	}
}

func newEpoller() (*epoller, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	r, _, errno := syscall.RawSyscall(syscall.SYS_EVENTFD2, 0, syscall.O_CLOEXEC, 0)
	if errno != 0 {
		syscall.Close(epfd)
		return nil, errno
	}
	efd := int(r)
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: -1}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, efd, &ev); err != nil {
		syscall.Close(efd)
		syscall.Close(epfd)
		return nil, err
	}
	return &epoller{epfd: epfd, efd: efd, subs: make(map[int32]*Subscriber)}, nil
}

func (w *epoller) close() {
	syscall.Close(w.efd)
	syscall.Close(w.epfd)
}

// run waits for hang-ups until the watcher is retired.
func (w *epoller) run() {
	var evs [64]syscall.EpollEvent
	var gone []*Subscriber
	for {
		n, err := syscall.EpollWait(w.epfd, evs[:], -1)
		if err != nil && !errors.Is(err, syscall.EINTR) {
			// Cannot happen with a valid epoll fd; stop watching, the
			// heartbeats still notice gone clients.
			peers.mu.Lock()
			if peers.w == w {
				peers.w = nil
			}
			peers.mu.Unlock()
			return
		}
		stop := false
		peers.mu.Lock()
		for _, ev := range evs[:max(n, 0)] {
			if ev.Fd < 0 {
				stop = peers.w != w
				continue
			}
			if s := w.subs[ev.Fd]; s != nil {
				gone = append(gone, s)
			}
		}
		peers.mu.Unlock()
		for i, s := range gone {
			s.close(ReasonClient)
			gone[i] = nil
		}
		gone = gone[:0]
		if stop {
			w.close()
			return
		}
	}
}
