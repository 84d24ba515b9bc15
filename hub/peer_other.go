//go:build !unix

package hub

import "net"

// peerClosed cannot tell without blocking on this platform: a client that
// went away is noticed when a write fails.
func peerClosed(net.Conn) bool { return false }
