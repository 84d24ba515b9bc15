package sse

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"math/bits"
	"time"
	"unicode/utf8"
	"unsafe"
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

	// onSilentID, when set, is called when a block with no data changes
	// the last event id: Next returns nothing for it (the Stream's
	// OnLastEventID).
	onSilentID func()

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
	typ        string // the event type buffer
	typCache   string // the last type seen, reused to avoid an allocation per event
	idBuf      []byte // the last event ID buffer (undecoded)
	lastID     string // the last event ID string
	arena      []byte // backing store of small strings: appended to, never rewritten
	crAt       int    // index in buf of the next CR at or after scan, or -1 for none before crEnd
	crEnd      int    // buf[scan:crEnd] has been searched for CR
	utf8From   int    // buf[utf8From:utf8To] is known to be valid UTF-8
	utf8To     int
	lineValid  bool          // the line just read lies in buf[utf8From:utf8To]
	dataValid  bool          // every data line of the current block was lineValid
	idValid    bool          // idBuf is known to be valid UTF-8
	eventRetry time.Duration // retry set within the current block
	retry      time.Duration // reconnection time set by the stream
	retrySet   bool
}

// NewReader returns a Reader that parses the stream read from r.
func NewReader(r io.Reader) *Reader {
	return &Reader{r: r, crAt: -1}
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
		onSilentID:    r.onSilentID,
		r:             src,
		buf:           r.buf,
		data:          r.data[:0],
		idBuf:         append(r.idBuf[:0], lastEventID...),
		idValid:       utf8.ValidString(lastEventID),
		lastID:        lastEventID,
		arena:         r.arena,
		crAt:          -1,
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
func (r *Reader) Next() (e Event, err error) {
	if r.fatal != nil {
		return Event{}, r.fatal
	}
	for {
		line, err := r.readLine()
		if err != nil {
			if err == io.EOF && r.DispatchAtEOF && !r.tailDone {
				r.tailDone = true
				if r.start < r.end {
					r.lineValid = false
					r.processLine(r.buf[r.start:r.end])
					r.start = r.end
				}
				if r.dispatch(&e) {
					return e, nil
				}
			}
			return Event{}, err
		}
		if len(line) == 0 {
			if r.dispatch(&e) {
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
	if r.crAt < 0 && r.crEnd >= r.end && !r.skipLF && r.bomDone {
		// Fast path: no CR in the buffered bytes, so lines end at LF.
		if i := indexLF(r.buf[r.scan:r.end]); i >= 0 {
			i += r.scan
			line := r.buf[r.start:i]
			r.lineValid = r.start >= r.utf8From && i <= r.utf8To
			r.start, r.scan = i+1, i+1
			return line, nil
		}
	}
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
		if i := r.indexLineBreak(); i >= 0 {
			line := r.buf[r.start:i]
			r.lineValid = r.start >= r.utf8From && i <= r.utf8To
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
		r.crEnd = max(r.crEnd-r.start, 0)
		r.utf8From, r.utf8To = max(r.utf8From-r.start, 0), max(r.utf8To-r.start, 0)
		if r.crAt >= 0 {
			r.crAt -= r.start
		}
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
		if n > 0 {
			r.validateUTF8()
		}
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

// validateUTF8 extends the range of buffered bytes known to be valid UTF-8
// up to the last LF read, so that lines inside it need no check of their
// own: one validation per read instead of one per value. Line ends are
// ASCII, so a multi-byte sequence never spans the range's end.
func (r *Reader) validateUTF8() {
	from := r.utf8To
	if from < r.start {
		from = r.start // lines start after a line end: a sequence boundary
		r.utf8From = from
	}
	const window = 4 << 10 // bound the backward search on long lines
	tail := max(from, r.end-window)
	k := bytes.LastIndexByte(r.buf[tail:r.end], '\n')
	if k < 0 {
		return
	}
	to := tail + k + 1
	if utf8.Valid(r.buf[from:to]) {
		r.utf8To = to
	} else {
		r.utf8From, r.utf8To = to, to
	}
}

func (r *Reader) processLine(line []byte) error {
	if line[0] == ':' {
		if r.OnComment != nil {
			r.OnComment(decodeUTF8(trimSpace(line[1:])))
		}
		return nil
	}
	field, value := splitField(line)
	switch string(field) {
	case "data":
		if len(r.data)+len(value)+1 > r.maxSize() {
			return fmt.Errorf("%w: event data over %d bytes", ErrEventTooLarge, r.maxSize())
		}
		if len(r.data) == 0 {
			r.dataValid = true
		}
		r.dataValid = r.dataValid && r.lineValid
		r.data = append(r.data, value...)
		r.data = append(r.data, '\n')
	case "event":
		if string(value) != r.typCache {
			r.typCache = decodeUTF8(value)
		}
		r.typ = r.typCache
	case "id":
		if bytes.IndexByte(value, 0) < 0 {
			r.idBuf = append(r.idBuf[:0], value...)
			r.idValid = r.lineValid
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
func (r *Reader) dispatch(e *Event) bool {
	idChanged := string(r.idBuf) != r.lastID
	if len(r.data) == 0 {
		r.typ, r.eventRetry = "", 0
		if idChanged {
			r.lastID = decodeUTF8(r.idBuf)
			if r.onSilentID != nil {
				r.onSilentID()
			}
		}
		return false
	}
	data := r.data[:len(r.data)-1]
	e.Type, e.Retry = r.typ, r.eventRetry
	if len(data)+len(r.idBuf) <= maxArenaString &&
		(r.dataValid || utf8.Valid(data)) && (!idChanged || r.idValid || utf8.Valid(r.idBuf)) {
		if idChanged {
			r.lastID = r.arenaString(r.idBuf)
		}
		e.Data = r.arenaString(data)
	} else {
		if idChanged {
			r.lastID = decodeUTF8(r.idBuf)
		}
		e.Data = decodeUTF8(data)
	}
	e.ID = r.lastID
	if e.Type == "" {
		e.Type = "message"
	}
	r.data, r.typ, r.eventRetry = r.data[:0], "", 0
	return true
}

// splitField splits a line at its first colon into field name and value
// (one leading space stripped); a line without a colon is all name. The
// common "data:" and "id:" prefixes are recognised without a search.
func splitField(line []byte) (field, value []byte) {
	if len(line) >= 5 && line[4] == ':' && string(line[:4]) == "data" {
		return line[:4], trimSpace(line[5:])
	}
	if len(line) >= 3 && line[2] == ':' && string(line[:2]) == "id" {
		return line[:2], trimSpace(line[3:])
	}
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		return line[:i], trimSpace(line[i+1:])
	}
	return line, nil
}

const (
	arenaSize      = 8 << 10
	maxArenaString = 512
)

// arenaString returns b as a string stored in the reader's arena: small
// strings of many events share one allocation instead of one each. Bytes
// of the arena are written once and never again (a full arena is replaced,
// not reused), so the strings are immutable as Go requires. A string kept
// alive keeps its arena (at most 8 KiB) alive.
func (r *Reader) arenaString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if cap(r.arena)-len(r.arena) < len(b) {
		r.arena = make([]byte, 0, arenaSize)
	}
	off := len(r.arena)
	r.arena = append(r.arena, b...)
	return unsafe.String(&r.arena[off], len(b))
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

// indexLF returns the index of the first LF in b, or -1. Event stream
// lines are short: eight bytes at a time in registers find their end
// sooner than the call into the vectorised search, which takes over for
// long lines.
func indexLF(b []byte) int {
	const ones, highs, lfs = 0x0101010101010101, 0x8080808080808080, 0x0A0A0A0A0A0A0A0A
	i := 0
	for ; i+8 <= len(b) && i < 64; i += 8 {
		v := binary.LittleEndian.Uint64(b[i:]) ^ lfs
		// The lowest set high bit marks the first zero byte of v exactly.
		if t := (v - ones) &^ v & highs; t != 0 {
			return i + bits.TrailingZeros64(t)/8
		}
	}
	if j := bytes.IndexByte(b[i:], '\n'); j >= 0 {
		return i + j
	}
	return -1
}

// indexLineBreak returns the index in buf of the first CR or LF in
// buf[scan:end], or -1. Streams rarely contain CR, so the position of the
// next CR is searched once over all buffered bytes and remembered, instead
// of once per line.
func (r *Reader) indexLineBreak() int {
	lf := bytes.IndexByte(r.buf[r.scan:r.end], '\n')
	limit := r.end
	if lf >= 0 {
		lf += r.scan
		limit = lf
	}
	if r.crAt >= 0 && r.crAt < r.scan {
		r.crAt, r.crEnd = -1, r.scan // consumed
	}
	if r.crAt < 0 && r.crEnd < limit {
		from := max(r.crEnd, r.scan)
		if j := bytes.IndexByte(r.buf[from:r.end], '\r'); j >= 0 {
			r.crAt = from + j
		}
		r.crEnd = r.end
	}
	if r.crAt >= 0 && (lf < 0 || r.crAt < lf) {
		return r.crAt
	}
	return lf
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
