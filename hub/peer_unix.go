//go:build unix

package hub

import (
	"errors"
	"net"
	"syscall"
)

// peerClosed reports whether the peer of nc closed or reset the
// connection, reading without blocking whatever it sent (and discarding
// it). It reports false when it cannot tell.
func peerClosed(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	gone := false
	var buf [64]byte
	err = raw.Read(func(fd uintptr) bool {
		for range 16 {
			n, err := syscall.Read(int(fd), buf[:])
			switch {
			case errors.Is(err, syscall.EINTR):
				continue
			case errors.Is(err, syscall.EAGAIN):
			case err != nil || n == 0:
				gone = true // reset, or EOF: the client closed its side
			case n == len(buf):
				continue // more may follow
			}
			return true // never wait for the socket to be readable
		}
		return true
	})
	return gone || err != nil
}
