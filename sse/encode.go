package sse

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// AppendEvent appends the wire form of e to dst and returns the extended
// buffer. It writes, in order, "id", "event", "retry" (in whole milliseconds,
// rounded down; a positive Retry under 1 ms is written as 0) and one "data"
// line for every line of e.Data — splitting on CR, LF and CRLF, so no payload
// can start a new field or event — then the blank line that dispatches it.
//
// It returns dst unchanged and an error wrapping ErrInvalidID, ErrInvalidType
// or ErrInvalidRetry when e cannot be written exactly. It allocates nothing
// when dst has room.
func AppendEvent(dst []byte, e Event) ([]byte, error) {
	if err := e.Validate(); err != nil {
		return dst, err
	}
	if e.ID != "" {
		dst = append(dst, "id: "...)
		dst = append(dst, e.ID...)
		dst = append(dst, '\n')
	}
	if e.Type != "" {
		dst = append(dst, "event: "...)
		dst = append(dst, e.Type...)
		dst = append(dst, '\n')
	}
	if e.Retry > 0 {
		dst = appendRetry(dst, e.Retry)
	}
	dst = appendLines(dst, "data: ", e.Data)
	return append(dst, '\n'), nil
}

// AppendComment appends text as a comment: one ":" line per line of text,
// so a line break in text can never end the comment and start a field. A
// comment is ignored by clients; servers send them as heartbeats.
func AppendComment(dst []byte, text string) []byte {
	return appendLines(dst, ": ", text)
}

// AppendID appends a lone "id" field followed by a blank line: it sets the
// client's last event id without dispatching an event, so no EventSource
// fires a message for it (an empty id clears the last event id). A server
// opens a stream with it to give a client a cursor before any event: the
// client resumes from there if the connection breaks. It returns dst
// unchanged and an error wrapping ErrInvalidID when id contains CR, LF or
// NUL.
func AppendID(dst []byte, id string) ([]byte, error) {
	if !validField(id) {
		return dst, fmt.Errorf("%w: %q", ErrInvalidID, id)
	}
	dst = append(dst, "id: "...)
	dst = append(dst, id...)
	return append(dst, '\n', '\n'), nil
}

// AppendRetry appends a lone "retry" field followed by a blank line: it sets
// the client's reconnection time without dispatching an event. Servers send
// it before closing a stream they want the client to poll. d is written in
// whole milliseconds; d ≤ 0 writes "retry: 0".
func AppendRetry(dst []byte, d time.Duration) []byte {
	return append(appendRetry(dst, max(d, 0)), '\n')
}

func appendRetry(dst []byte, d time.Duration) []byte {
	dst = append(dst, "retry: "...)
	dst = strconv.AppendInt(dst, d.Milliseconds(), 10)
	return append(dst, '\n')
}

// appendLines writes prefix+line+"\n" for every line of s, where lines are
// separated by CRLF, CR or LF. An empty s yields one empty line.
func appendLines(dst []byte, prefix, s string) []byte {
	for {
		i := indexLineBreak(s)
		if i < 0 {
			dst = append(dst, prefix...)
			dst = append(dst, s...)
			return append(dst, '\n')
		}
		dst = append(dst, prefix...)
		dst = append(dst, s[:i]...)
		dst = append(dst, '\n')
		if s[i] == '\r' && i+1 < len(s) && s[i+1] == '\n' {
			i++
		}
		s = s[i+1:]
	}
}

// PreparedEvent holds the wire form of one event, formatted once and then
// written, unchanged, to any number of streams. It is immutable and safe for
// concurrent use.
type PreparedEvent struct {
	event Event
	wire  []byte
}

// Prepare formats e once. It fails like AppendEvent.
func Prepare(e Event) (*PreparedEvent, error) {
	wire, err := AppendEvent(make([]byte, 0, encodedSizeHint(e)), e)
	if err != nil {
		return nil, err
	}
	return &PreparedEvent{event: e, wire: wire}, nil
}

// PrepareComment formats a comment once, for a server that queues comments
// with prepared events (to one subscriber, say): its Bytes are the comment
// lines of text, as AppendComment writes them, and its Event is the zero
// Event. Comments reach no event listener; they keep a connection alive or
// annotate the stream.
func PrepareComment(text string) *PreparedEvent {
	return &PreparedEvent{wire: AppendComment(nil, text)}
}

// Event returns the event p was prepared from.
func (p *PreparedEvent) Event() Event { return p.event }

// Bytes returns the wire form. The caller must not modify it.
func (p *PreparedEvent) Bytes() []byte { return p.wire }

// Len returns the size of the wire form in bytes.
func (p *PreparedEvent) Len() int { return len(p.wire) }

// WriteTo writes the wire form to w.
func (p *PreparedEvent) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(p.wire)
	return int64(n), err
}

// encodedSizeHint is an upper bound for small data and close for large data,
// so Prepare usually allocates once.
func encodedSizeHint(e Event) int {
	n := len("id: \nevent: \nretry: 12345678901234567890\n\n") + len(e.ID) + len(e.Type) + len(e.Data)
	lines := 1 + strings.Count(e.Data, "\n") + strings.Count(e.Data, "\r")
	return n + lines*len("data: \n")
}

// indexLineBreak returns the index of the first CR or LF in s, or -1. Two
// vectorised single-byte searches beat a byte-set scan on long lines.
func indexLineBreak(s string) int {
	if len(s) <= 32 {
		for i := 0; i < len(s); i++ {
			if c := s[i]; c <= '\r' && (c == '\r' || c == '\n') {
				return i
			}
		}
		return -1
	}
	i := strings.IndexByte(s, '\n')
	end := i
	if end < 0 {
		end = len(s)
	}
	if j := strings.IndexByte(s[:end], '\r'); j >= 0 {
		return j
	}
	return i
}
