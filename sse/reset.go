package sse

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Names of sluice's reset signal (see the package documentation).
const (
	// ResetEventType is the event type of the reset signal.
	ResetEventType = "sluice-reset"
	// ResetHeader is the response header that carries the reset reason.
	ResetHeader = "Sluice-Reset"
	// ResetExpired is the reason when the id is older than the history kept.
	ResetExpired = "expired"
	// ResetUnknown is the reason when the server does not know the id.
	ResetUnknown = "unknown"
)

// ErrHistoryLost is matched (with errors.Is) by every *ResetError.
var ErrHistoryLost = errors.New("sse: the server cannot replay the events after the last event id")

// ResetError is the reset signal as a Stream yields it: the events between
// LastEventID and Head are gone, so the application must resynchronise its
// state (for instance by fetching a snapshot) before applying the live
// events that follow it in the iteration. It does not end the iteration.
type ResetError struct {
	// Reason is ResetExpired, ResetUnknown, or what the server sent.
	Reason string
	// Head is the id of the newest event the server has: the stream resumes
	// after it.
	Head string
	// LastEventID is the client's last event id when the reset arrived:
	// the id it asked to resume from, or, when the server replayed events
	// it kept before the reset (a sluice hub's private channels), the last
	// of those.
	LastEventID string
}

func (e *ResetError) Error() string {
	return fmt.Sprintf("sse: history lost (%s): cannot resume after id %q, resuming from head %q", e.Reason, e.LastEventID, e.Head)
}

// Unwrap returns ErrHistoryLost.
func (e *ResetError) Unwrap() error { return ErrHistoryLost }

// resetData is the JSON data of the reset event.
type resetData struct {
	Head   string `json:"head"`
	Reason string `json:"reason"`
}

// ResetEvent returns the reset signal a server sends when it cannot replay
// from the client's Last-Event-ID: an event of type ResetEventType, with id
// head and data {"head":head,"reason":reason}. reason is ResetExpired or
// ResetUnknown. Send ResetHeader: reason with the response headers too.
func ResetEvent(head, reason string) Event {
	data, _ := json.Marshal(resetData{Head: head, Reason: reason}) // cannot fail: two strings
	return Event{ID: head, Type: ResetEventType, Data: string(data)}
}

// newResetError reads a reset event received while resuming from lastID. A
// malformed payload still signals the loss, with empty fields.
func newResetError(e Event, lastID string) *ResetError {
	var d resetData
	_ = json.Unmarshal([]byte(e.Data), &d)
	return &ResetError{Reason: d.Reason, Head: d.Head, LastEventID: lastID}
}
