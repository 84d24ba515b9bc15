package sse

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"time"
	"unicode/utf8"
)

// DefaultMaxEventSize is the bound on one event (and on one line) that a
// Reader applies when its MaxEventSize is zero.
const DefaultMaxEventSize = 32 << 20

// ErrEventTooLarge reports a line or an event larger than the Reader's
// MaxEventSize. The stream cannot be read further: the reader would have to
// buffer without bound to find the end of the event.
var ErrEventTooLarge = errors.New("sse: event too large")

const initialReadBufferSize = 16 << 10

var bom = []byte{0xEF, 0xBB, 0xBF}

// Reader parses an event stream as the WHATWG HTML standard's event stream
// interpretation does: one leading byte order mark is skipped; lines end in
// CRLF, LF or CR (also when a CR ends one read and its LF starts the next);
// one space after the colon is stripped from a value; lines starting with a
// colon are comments; unknown fields are ignored; an id containing NUL is
// ignored; retry is honoured only when all ASCII digits; a block with no
// data dispatches nothing but still sets the last event id; bytes that are
// not valid UTF-8 decode to U+FFFD as the standard's UTF-8 decoder does.
//
// Set the exported fields before the first call to Next. A Reader is not
// safe for concurrent use.
type Reader struct {
	// MaxEventSize bounds the bytes one event may buffer (its data lines
	// together) and the length of any one line. Zero means
	// DefaultMaxEventSize. Going over it fails with ErrEventTooLarge.
	MaxEventSize int

	// DispatchAtEOF makes the reader process a final line that has no line
	// end and dispatch a final event that has no blank line after it when
	// the stream ends. The standard discards both (the default); some LLM
	// APIs end their streams that way.
	DispatchAtEOF bool

	// OnComment, when set, is called with the text of every comment line
	// (after the colon, one leading space stripped), in stream order.
	OnComment func(text string)

	r          io.Reader
	buf        []byte
	start, end int   // unread bytes are buf[start:end]
	scan       int   // buf[start:scan] is known to hold no line break
	err        error // the read error that ended the input
	fatal      error // an error that ends parsing
	bomDone    bool
	tailDone   bool // the DispatchAtEOF tail has been processed
	skipLF     bool // the last line ended in CR: drop an LF that follows

	data       []byte
	typ        string
	idBuf      string        // the last event ID buffer
	lastID     string        // the last event ID string
	eventRetry time.Duration // retry set within the current block
	retry      time.Duration // reconnection time set by the stream
	retrySet   bool
}

// NewReader returns a Reader that parses the stream read from r.
func NewReader(r io.Reader) *Reader {
	return &Reader{r: r}
}

// Reset makes the reader parse a new stream from r, keeping its buffers and
// its exported settings. lastEventID becomes the last event id in effect, as
// when a client reconnects with a Last-Event-ID: events of the new stream
// that carry no id field report it.
func (r *Reader) Reset(src io.Reader, lastEventID string) {
	*r = Reader{
		MaxEventSize:  r.MaxEventSize,
		DispatchAtEOF: r.DispatchAtEOF,
		OnComment:     r.OnComment,
		r:             src,
		buf:           r.buf,
		data:          r.data[:0],
		idBuf:         lastEventID,
		lastID:        lastEventID,
	}
}

// LastEventID returns the last event id in effect: the value a client sends
// as Last-Event-ID when it reconnects. It changes when a block is
// dispatched, even a block with no data.
func (r *Reader) LastEventID() string { return r.lastID }

// Retry returns the reconnection time most recently set by a retry field of
// this stream, and whether any was set.
func (r *Reader) Retry() (time.Duration, bool) { return r.retry, r.retrySet }

// Next returns the next dispatched event. At the end of the stream it
// returns io.EOF (an unterminated final event is discarded unless
// DispatchAtEOF is set); a read error is returned as it is, and
// ErrEventTooLarge (wrapped) when the size bound is crossed. After an error
// every call returns an error.
func (r *Reader) Next() (Event, error) {
	if r.fatal != nil {
		return Event{}, r.fatal
	}
	for {
		line, err := r.readLine()
		if err != nil {
			if err == io.EOF && r.DispatchAtEOF && !r.tailDone {
				r.tailDone = true
				if r.start < r.end {
					r.processLine(r.buf[r.start:r.end])
					r.start = r.end
				}
				if e, ok := r.dispatch(); ok {
					return e, nil
				}
			}
			return Event{}, err
		}
		if len(line) == 0 {
			if e, ok := r.dispatch(); ok {
				return e, nil
			}
			continue
		}
		if err := r.processLine(line); err != nil {
			r.fatal = err
			return Event{}, err
		}
	}
}

// All returns an iterator over the events of the stream. It ends after the
// last event at a clean end of stream, or yields one final non-nil error.
func (r *Reader) All() iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		for {
			e, err := r.Next()
			if err != nil {
				if err != io.EOF {
					yield(Event{}, err)
				}
				return
			}
			if !yield(e, nil) {
				return
			}
		}
	}
}

// Read returns an iterator over the events of the stream read from src,
// parsed with a Reader's defaults. Use NewReader for settings, comments, the
// last event id and retry.
func Read(src io.Reader) iter.Seq2[Event, error] {
	return NewReader(src).All()
}

func (r *Reader) maxSize() int {
	if r.MaxEventSize > 0 {
		return r.MaxEventSize
	}
	return DefaultMaxEventSize
}

// readLine returns the next line without its line end. The line aliases the
// read buffer and is valid until the next call. At the end of input it
// returns the read error, leaving an unterminated line in buf[start:end].
func (r *Reader) readLine() ([]byte, error) {
	if !r.bomDone {
		for r.end-r.start < len(bom) && r.err == nil && bytes.HasPrefix(bom, r.buf[r.start:r.end]) {
			r.fill()
		}
		if bytes.HasPrefix(r.buf[r.start:r.end], bom) {
			r.start += len(bom)
		}
		r.scan = r.start
		r.bomDone = true
	}
	for {
		if r.skipLF && r.start < r.end {
			if r.buf[r.start] == '\n' {
				r.start++
				r.scan = max(r.scan, r.start)
			}
			r.skipLF = false
		}
		if i := indexLineBreakBytes(r.buf[r.scan:r.end]); i >= 0 {
			i += r.scan
			line := r.buf[r.start:i]
			if r.buf[i] == '\r' {
				if i+1 < r.end {
					if r.buf[i+1] == '\n' {
						i++
					}
				} else {
					r.skipLF = true
				}
			}
			r.start = i + 1
			r.scan = r.start
			return line, nil
		}
		r.scan = r.end
		if r.err != nil {
			return nil, r.err
		}
		if r.end-r.start > r.maxSize() {
			r.fatal = fmt.Errorf("%w: a line or event over %d bytes", ErrEventTooLarge, r.maxSize())
			return nil, r.fatal
		}
		r.fill()
	}
}

// fill reads more input after buf[end], compacting or growing buf first.
func (r *Reader) fill() {
	if r.start > 0 {
		n := copy(r.buf, r.buf[r.start:r.end])
		r.scan -= r.start
		r.start, r.end = 0, n
	}
	if r.end == len(r.buf) {
		size := max(2*len(r.buf), initialReadBufferSize)
		// Never grow far past what the size bound lets one line hold.
		size = min(size, max(r.maxSize()+1, len(r.buf)+1))
		nb := make([]byte, size)
		copy(nb, r.buf[:r.end])
		r.buf = nb
	}
	for range 100 {
		n, err := r.r.Read(r.buf[r.end:])
		r.end += n
		if err != nil {
			r.err = err
			return
		}
		if n > 0 {
			return
		}
	}
	r.err = io.ErrNoProgress
}

func (r *Reader) processLine(line []byte) error {
	if line[0] == ':' {
		if r.OnComment != nil {
			r.OnComment(decodeUTF8(trimSpace(line[1:])))
		}
		return nil
	}
	field, value := line, []byte(nil)
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		field, value = line[:i], trimSpace(line[i+1:])
	}
	switch string(field) {
	case "data":
		if len(r.data)+len(value)+1 > r.maxSize() {
			return fmt.Errorf("%w: event data over %d bytes", ErrEventTooLarge, r.maxSize())
		}
		r.data = append(r.data, value...)
		r.data = append(r.data, '\n')
	case "event":
		if string(value) != r.typ {
			r.typ = decodeUTF8(value)
		}
	case "id":
		if bytes.IndexByte(value, 0) < 0 && string(value) != r.idBuf {
			r.idBuf = decodeUTF8(value)
		}
	case "retry":
		if d, ok := parseRetry(value); ok {
			r.retry, r.retrySet, r.eventRetry = d, true, d
		}
	}
	return nil
}

// dispatch ends the current block as the standard's "dispatch the event"
// steps do, returning the event if the block had data.
func (r *Reader) dispatch() (Event, bool) {
	r.lastID = r.idBuf
	if len(r.data) == 0 {
		r.typ, r.eventRetry = "", 0
		return Event{}, false
	}
	e := Event{
		ID:    r.lastID,
		Type:  r.typ,
		Data:  decodeUTF8(r.data[:len(r.data)-1]),
		Retry: r.eventRetry,
	}
	if e.Type == "" {
		e.Type = "message"
	}
	r.data, r.typ, r.eventRetry = r.data[:0], "", 0
	return e, true
}

func trimSpace(v []byte) []byte {
	if len(v) > 0 && v[0] == ' ' {
		return v[1:]
	}
	return v
}

// maxRetryMillis keeps a retry in milliseconds within time.Duration.
const maxRetryMillis = math.MaxInt64 / int64(time.Millisecond)

// parseRetry accepts a non-empty value of ASCII digits, saturating at the
// largest Duration.
func parseRetry(v []byte) (time.Duration, bool) {
	if len(v) == 0 {
		return 0, false
	}
	var ms int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		if ms <= maxRetryMillis {
			ms = ms*10 + int64(c-'0')
		}
	}
	return time.Duration(min(ms, maxRetryMillis)) * time.Millisecond, true
}

func indexLineBreakBytes(b []byte) int {
	i := bytes.IndexByte(b, '\n')
	end := i
	if end < 0 {
		end = len(b)
	}
	if j := bytes.IndexByte(b[:end], '\r'); j >= 0 {
		return j
	}
	return i
}

// decodeUTF8 converts b to a string as the WHATWG "UTF-8 decode" algorithm
// does: every maximal invalid subsequence becomes one U+FFFD. Valid input
// costs one validation pass and one copy.
func decodeUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	out := make([]byte, 0, len(b)+8)
	var (
		needed, seen int
		lower, upper byte = 0x80, 0xBF
		start        int  // index of the first byte of the sequence being decoded
	)
	for i := 0; i < len(b); i++ {
		c := b[i]
		if needed == 0 {
			switch {
			case c <= 0x7F:
				out = append(out, c)
			case c >= 0xC2 && c <= 0xDF:
				needed, start = 1, i
			case c >= 0xE0 && c <= 0xEF:
				if c == 0xE0 {
					lower = 0xA0
				} else if c == 0xED {
					upper = 0x9F
				}
				needed, start = 2, i
			case c >= 0xF0 && c <= 0xF4:
				if c == 0xF0 {
					lower = 0x90
				} else if c == 0xF4 {
					upper = 0x8F
				}
				needed, start = 3, i
			default:
				out = utf8.AppendRune(out, utf8.RuneError)
			}
			continue
		}
		if c < lower || c > upper {
			needed, seen, lower, upper = 0, 0, 0x80, 0xBF
			out = utf8.AppendRune(out, utf8.RuneError)
			i-- // the byte starts over
			continue
		}
		lower, upper = 0x80, 0xBF
		seen++
		if seen == needed {
			out = append(out, b[start:i+1]...)
			needed, seen = 0, 0
		}
	}
	if needed != 0 {
		out = utf8.AppendRune(out, utf8.RuneError)
	}
	return string(out)
}
