// Package stream serves completable, request-scoped event streams on a
// hub: an LLM answer, a job's progress, anything that has an end. The
// producer writes to a Stream with Send and ends it with Finish; readers
// are served by Serve. A reader that drops mid-way resumes with its
// Last-Event-ID, on this hub or on any other sharing the log; once the
// stream is finished, a reader gets the rest and then the end of its
// response, and a reader with nothing left gets 204 No Content, which
// stops a browser's EventSource from reconnecting.
//
// A stream is a private channel of the hub (hub.ReservedTopicPrefix) that
// hub.Hub.Complete ends: its events are in the log like any other, so they
// outlive the producer's request and the hub's process (with a durable
// store), and a store that keeps channels (store.Keeper) keeps the newest
// events of each stream apart from the log's retention, so other traffic
// does not evict a long answer before its readers are done. The package keeps no state of its
// own: a stream's id carries everything a hub needs to serve it.
package stream

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/sluicehq/sluice/hub"
	"github.com/sluicehq/sluice/sse"
)

// Errors a caller must tell apart.
var (
	// ErrFinished reports a Send or a Finish after Finish.
	ErrFinished = errors.New("stream: finished")
	// ErrUnknown reports an id that no stream has: not one Open returns.
	ErrUnknown = errors.New("stream: unknown stream")
)

// topicPrefix starts the channel of every stream.
const topicPrefix = hub.ReservedTopicPrefix + "stream:"

// keyLen is the length of the random part of an id, in hex digits.
const keyLen = 32

// Stream is the producer's side of a completable stream. It is safe for
// concurrent use.
type Stream struct {
	h     *hub.Hub
	id    string
	topic string
	start string // the cursor it starts after

	mu       sync.Mutex
	finished bool
}

// Open starts a stream on h. A reader without a Last-Event-ID gets it from
// its first event.
func Open(ctx context.Context, h *hub.Hub) (*Stream, error) {
	start, err := h.Config().Store.Head(ctx)
	if err != nil {
		return nil, fmt.Errorf("stream: open: %w", err)
	}
	var b [keyLen / 2]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+).
	key := hex.EncodeToString(b[:])
	return &Stream{h: h, id: key + base64.RawURLEncoding.EncodeToString([]byte(start)), topic: topicPrefix + key, start: start}, nil
}

// Attach returns a producer's handle on the stream id, opened by Open on
// this hub or on another sharing its log: Send and Finish on it append to
// that stream, so any instance can end a stream whose producer is gone
// (package relay ends a relay whose instance died this way). Finishing a
// stream already finished elsewhere appends a completion that no reader
// reaches: readers end at the first. An id Open did not make is
// ErrUnknown.
func Attach(h *hub.Hub, id string) (*Stream, error) {
	key, start, ok := parseID(id)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknown, clip(id))
	}
	return &Stream{h: h, id: id, topic: topicPrefix + key, start: start}, nil
}

// Start returns the cursor the stream starts after: the log's head when
// it was opened ("" for an empty log). History after it holds the
// stream's events, and the first are close to it.
func (s *Stream) Start() string { return s.start }

// ID returns the stream's id: 32 random hex digits, which are the
// capability to read it, and the log's position when it was opened, in
// base64url. It is URL-safe. Whoever knows it can read the stream: wrap
// Serve in the application's own authorization where that matters.
func (s *Stream) ID() string { return s.id }

// Send appends e to the stream and returns its id. After Finish it fails
// with ErrFinished. e.Type must not be in the hub's reserved namespace.
func (s *Stream) Send(ctx context.Context, e sse.Event) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.finished {
		return "", fmt.Errorf("stream %s: send: %w", s.id, ErrFinished)
	}
	id, err := s.h.Publish(ctx, hub.Message{Topics: []string{s.topic}, Event: e})
	if err != nil {
		return "", fmt.Errorf("stream: send: %w", err)
	}
	return id, nil
}

// Finish ends the stream: readers get what remains and their responses
// end; later reads get 204 No Content. Finishing twice fails with
// ErrFinished.
func (s *Stream) Finish(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.finished {
		return fmt.Errorf("stream %s: finish: %w", s.id, ErrFinished)
	}
	if err := s.h.Complete(ctx, s.topic); err != nil {
		return fmt.Errorf("stream: finish: %w", err)
	}
	s.finished = true
	return nil
}

// Subscription returns the subscription that reads the stream id for r:
// from the request's Last-Event-ID (hub.RequestCursor), or without one
// from the stream's first event. Pass it to hub.Hub.Serve, after setting
// what else the application wants on it (callbacks, a deadline, a
// policy). An id that Open did not make is ErrUnknown.
func Subscription(r *http.Request, id string) (hub.Subscription, error) {
	key, start, ok := parseID(id)
	if !ok {
		return hub.Subscription{}, fmt.Errorf("%w: %q", ErrUnknown, clip(id))
	}
	sub := hub.Subscription{Topics: []string{topicPrefix + key}, Cursor: hub.RequestCursor(r)}
	if sub.Cursor == "" {
		sub.Cursor, sub.FromStart = start, start == ""
	}
	return sub, nil
}

// Serve serves the stream id to one reader (see Subscription and
// hub.Hub.Serve): from its first event, or after the request's
// Last-Event-ID; the response ends when the stream is finished, and a
// request with nothing left gets 204 No Content. An id Open did not make
// gets 404 Not Found.
func Serve(h *hub.Hub, w http.ResponseWriter, r *http.Request, id string) {
	sub, err := Subscription(r, id)
	if err != nil {
		http.Error(w, "unknown stream", http.StatusNotFound)
		return
	}
	h.Serve(w, r, sub)
}

// parseID splits an id into its key and the cursor it started at.
func parseID(id string) (key, start string, ok bool) {
	if len(id) < keyLen {
		return "", "", false
	}
	key = id[:keyLen]
	for i := 0; i < keyLen; i++ {
		if c := key[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return "", "", false
		}
	}
	b, err := base64.RawURLEncoding.DecodeString(id[keyLen:])
	if err != nil {
		return "", "", false
	}
	return key, string(b), true
}

// clip shortens an id quoted in an error.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
