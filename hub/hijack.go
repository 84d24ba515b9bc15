package hub

import (
	"bufio"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// hijacked counts the connections taken over (tests).
var hijacked atomic.Int64

// Taking over HTTP/1.1 connections.
//
// net/http keeps two goroutines per connection while a handler runs: the
// handler's and a background reader that watches for the client going away,
// plus a 4 KiB read buffer and a 4 KiB write buffer. A live SSE stream
// needs none of that: once its headers and first bytes are sent, the hub
// takes the connection over (http.ResponseController.Hijack) and writes
// the rest of the chunked body itself, one chunk per batch, under a write
// deadline. net/http's reader goroutine ends with the hijack and its
// buffers are released. The live loop then moves to a fresh goroutine and
// the handler returns (conn.detach): the handler's stack, grown to 16 KiB
// or more while the request was parsed and the subscription set up, goes
// with it, and the new goroutine's stays at a few KiB while it waits.
//
// The status line, the headers and the first batch (priming event or
// replay) are always written by net/http, through whatever wrappers the
// ResponseWriter has: the headers are exactly those of the non-hijacked
// path, and a wrapper (like the Mercure one) that rewrites the start of the
// body still does. After the hijack, bytes go straight to the connection:
// a wrapper that must transform every write (compression, say) must not
// expose Hijack through Unwrap, or must set Content-Encoding, which turns
// the hijack off.
//
// Without the reader goroutine, a client that goes away is noticed at
// once on Linux, where one goroutine per process watches every hijacked
// connection with epoll (watch_linux.go). Elsewhere, and should that watch
// fail, it is noticed when a write fails or, at the latest, at the next
// heartbeat: before writing it the stream's goroutine checks, without blocking,
// whether the peer closed its side (a first write to a closed TCP
// connection usually succeeds). Shutdown, Disconnect, Close and
// MaxLifetime wake the stream's goroutine as before; it writes "retry:" and the final
// chunk and closes the connection. The connection is never reused for
// another request.
//
// HTTP/2 responses, HTTP/1.0 and HEAD requests, polling responses, hubs
// with heartbeats off (nothing would notice a client gone) and any
// ResponseWriter that cannot hijack (httptest.ResponseRecorder, wrappers
// without Unwrap) keep writing through net/http.

// canHijack reports whether r's response may be taken over once its
// headers are sent: HTTP/1.1 or later over HTTP/1, with a body net/http
// frames in chunks.
func canHijack(r *http.Request) bool {
	return r.ProtoMajor == 1 && r.ProtoMinor >= 1 && r.Method != http.MethodHead
}

// hijack takes the connection over after the first write. It is called
// once, when the stream goes live; on any doubt it leaves the response to
// net/http. An error means the connection was taken over but failed.
func (c *conn) hijack() error {
	c.mayHijack = false
	hdr := c.w.Header()
	if hdr.Get("Content-Length") != "" || hdr.Get("Content-Encoding") != "" ||
		(hdr.Get("Transfer-Encoding") != "" && !strings.EqualFold(hdr.Get("Transfer-Encoding"), "chunked")) {
		return nil // net/http does not frame this body in chunks, or a wrapper rewrites it
	}
	nc, rw, err := c.rc.Hijack()
	if err != nil {
		return nil // HTTP/2, or a writer that cannot hijack: stay on net/http
	}
	// net/http flushed the response before handing the connection over.
	// Whatever its read buffer holds is a pipelined request, which an SSE
	// response never answers (the connection is closed at the end), so it
	// is dropped with the buffers. The buffers are ours now: empty the
	// structs so that the 8 KiB they hold can be collected although
	// net/http's connection state stays reachable from this goroutine.
	c.nc = nc
	c.ct = chunkTransport{nc: nc, timeout: c.h.cfg.WriteTimeout}
	c.tr = &c.ct
	hijacked.Add(1)
	if rw != nil {
		var err error
		if rw.Writer.Buffered() > 0 {
			if err = nc.SetWriteDeadline(time.Now().Add(c.h.cfg.WriteTimeout)); err == nil {
				err = rw.Writer.Flush()
			}
		}
		*rw.Writer = bufio.Writer{}
		*rw.Reader = bufio.Reader{}
		if err != nil {
			c.ct.broken = true
			return err
		}
	}
	c.watchPeer()
	return nil
}

// frameChunk turns b into a chunk: its size in hex, CRLF, b, CRLF.
func frameChunk(b []byte) []byte {
	n := len(b)
	var head [18]byte
	h := strconv.AppendUint(head[:0], uint64(n), 16)
	h = append(h, '\r', '\n')
	b = slices.Grow(b, len(h)+2)[:n+len(h)]
	copy(b[len(h):], b[:n])
	copy(b, h)
	return append(b, '\r', '\n')
}

// peerGone reports whether the client of a hijacked connection closed it,
// without blocking. Only a closed or reset connection counts: bytes the
// client sends are read and ignored.
func (c *conn) peerGone() bool {
	nc := c.nc
	if u, ok := nc.(interface{ NetConn() net.Conn }); ok {
		nc = u.NetConn() // TLS: look at the TCP connection under it
	}
	return peerClosed(nc)
}
