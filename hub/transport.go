package hub

import (
	"errors"
	"net"
	"net/http"
	"time"
)

// transport is where a stream's bytes go: through net/http's
// ResponseWriter (httpTransport: the headers and the first batch of every
// stream, and whole streams over HTTP/2 or wherever the connection cannot
// be taken over), or straight to a connection taken over from net/http,
// one chunk of the body per batch (chunkTransport, see hijack.go). A conn
// writes through its transport and knows nothing else of it.
type transport interface {
	// send writes b in one write and one flush under the write deadline.
	// It returns the buffer, which it may have grown, for reuse.
	send(b []byte) ([]byte, error)
	// end ends the response for reason: cleanly, or at once for a client
	// that failed or was too slow, so that nothing waits on it. wrote
	// says whether the response has started.
	end(reason DisconnectReason, wrote bool)
}

// abrupt reports whether a response ending for reason is cut short rather
// than finished: the client failed, or could not keep up.
func abrupt(reason DisconnectReason) bool {
	return reason == ReasonClient || reason == ReasonSlow || reason == ReasonReplayOverflow
}

// httpTransport writes through net/http.
type httpTransport struct {
	w          http.ResponseWriter
	rc         *http.ResponseController
	timeout    time.Duration
	noDeadline bool // the writer does not support write deadlines
}

func (t *httpTransport) send(b []byte) ([]byte, error) {
	if !t.noDeadline {
		if err := t.rc.SetWriteDeadline(time.Now().Add(t.timeout)); errors.Is(err, http.ErrNotSupported) {
			t.noDeadline = true
		}
	}
	if _, err := t.w.Write(b); err != nil {
		return b, err
	}
	if err := t.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return b, err
	}
	return b, nil
}

func (t *httpTransport) end(reason DisconnectReason, wrote bool) {
	if wrote && (reason == ReasonSlow || reason == ReasonReplayOverflow) {
		// Do not let net/http wait on a client that does not read to
		// finish the response: fail its last writes now. (net/http clears
		// the deadline itself once the response is finished.)
		_ = t.rc.SetWriteDeadline(time.Now())
	}
}

// chunkTransport writes the chunked body of a response to the connection
// taken over from net/http, and closes it at the end.
type chunkTransport struct {
	nc      net.Conn
	timeout time.Duration
	broken  bool // a write failed: the body cannot be ended cleanly
}

func (t *chunkTransport) send(b []byte) ([]byte, error) {
	if len(b) == 0 {
		return b, nil // a zero-size chunk would end the body
	}
	b = frameChunk(b)
	err := t.nc.SetWriteDeadline(time.Now().Add(t.timeout))
	if err == nil {
		_, err = t.nc.Write(b)
	}
	if err != nil {
		t.broken = true
	}
	return b, err
}

func (t *chunkTransport) end(reason DisconnectReason, _ bool) {
	if !t.broken && !abrupt(reason) {
		if t.nc.SetWriteDeadline(time.Now().Add(t.timeout)) == nil {
			_, _ = t.nc.Write([]byte("0\r\n\r\n"))
		}
		if cw, ok := t.nc.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
	}
	_ = t.nc.Close()
}
