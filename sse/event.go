package sse

import (
	"errors"
	"fmt"
	"time"
)

// Event is one server-sent event.
//
// When an Event comes from a [Reader], ID is the last event ID in effect when
// the event was dispatched (the id persists across events, as in a browser),
// Type is "message" when the stream named no type, and Retry is the
// reconnection time set by a retry field inside this event's block (zero if
// none).
//
// When an Event is encoded, ID and Type are written only when non-empty, Data
// is always written (as one data line per line of Data, so an empty Data still
// dispatches an event), and Retry only when positive.
type Event struct {
	// ID is the event's id: the value a client sends back as Last-Event-ID.
	ID string
	// Type is the event type ("event" field). Empty means "message".
	Type string
	// Data is the payload. Line breaks (CR, LF or CRLF) separate data lines.
	Data string
	// Retry is the reconnection time the server asks the client to use.
	// It is carried on the wire in whole milliseconds.
	Retry time.Duration
}

// Errors returned when an event cannot be written without changing its meaning.
var (
	// ErrInvalidID reports an id containing CR, LF or NUL: such an id would
	// inject fields or be ignored by clients.
	ErrInvalidID = errors.New("sse: event id contains CR, LF or NUL")
	// ErrInvalidType reports an event type containing CR, LF or NUL.
	ErrInvalidType = errors.New("sse: event type contains CR, LF or NUL")
	// ErrInvalidRetry reports a negative retry.
	ErrInvalidRetry = errors.New("sse: negative retry")
)

// Validate reports whether e can be encoded exactly: its ID and Type must not
// contain CR, LF or NUL and its Retry must not be negative. Data needs no
// validation: every line break in it becomes a new data line.
func (e Event) Validate() error {
	if !validField(e.ID) {
		return fmt.Errorf("%w: %q", ErrInvalidID, e.ID)
	}
	if !validField(e.Type) {
		return fmt.Errorf("%w: %q", ErrInvalidType, e.Type)
	}
	if e.Retry < 0 {
		return fmt.Errorf("%w: %v", ErrInvalidRetry, e.Retry)
	}
	return nil
}

// ValidID reports whether id can be sent as an event id: it contains no CR,
// LF or NUL.
func ValidID(id string) bool { return validField(id) }

func validField(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= '\r' && (c == '\r' || c == '\n' || c == 0) {
			return false
		}
	}
	return true
}
