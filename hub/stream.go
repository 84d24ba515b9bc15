package hub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice/sse"
	"github.com/sluicehq/sluice/store"
)

// typeStreamEnd is the type of the completion marker Stream.Finish appends
// to the log. It is never sent to a client: a response that reaches it ends.
const typeStreamEnd = ReservedTypePrefix + "stream-end"

const streamTopicPrefix = ReservedTopicPrefix + "stream:"

func streamTopic(id string) string { return streamTopicPrefix + id }

// Stream is a completable, request-scoped stream: an LLM answer, a job's
// progress. Write to it with Send, end it with Finish; serve it with
// Hub.ServeStream. It lives in the log on a reserved topic, so a client
// that drops mid-way resumes with its Last-Event-ID, and once the stream is
// finished a reconnection gets the rest and then 204 No Content, which
// stops a browser's EventSource from reconnecting.
//
// Its id is 128 random bits: whoever knows it can read the stream, so wrap
// Hub.ServeStream in the application's own authorization where that
// matters. A Stream is safe for concurrent use.
type Stream struct {
	h  *Hub
	id string

	mu       sync.Mutex
	finished bool
}

type streamInfo struct {
	start    string // the store's head when the stream was opened
	known    bool   // opened on this hub: start is meaningful
	finished bool
	touched  time.Time
}

type streamRegistry struct {
	mu sync.Mutex
	m  map[string]*streamInfo
}

func (r *streamRegistry) init() { r.m = make(map[string]*streamInfo) }

func (r *streamRegistry) get(id string) (streamInfo, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if i := r.m[id]; i != nil {
		return *i, true
	}
	return streamInfo{}, false
}

func (r *streamRegistry) isFinished(id string) bool {
	i, _ := r.get(id)
	return i.finished
}

// finished records a completion marker seen in the log (for streams opened
// on any hub sharing the store).
func (r *streamRegistry) finished(topics []string, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range topics {
		id, ok := strings.CutPrefix(t, streamTopicPrefix)
		if !ok {
			continue
		}
		i := r.m[id]
		if i == nil {
			i = &streamInfo{}
			r.m[id] = i
		}
		i.finished = true
		i.touched = now
	}
}

func (r *streamRegistry) touch(id string, now time.Time) {
	r.mu.Lock()
	if i := r.m[id]; i != nil {
		i.touched = now
	}
	r.mu.Unlock()
}

func (r *streamRegistry) sweep(now time.Time, ttl time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, i := range r.m {
		if now.Sub(i.touched) >= ttl {
			delete(r.m, id)
		}
	}
}

// OpenStream starts a completable stream. A client that reads it without a
// Last-Event-ID (Hub.ServeStream) gets it from its first event.
func (h *Hub) OpenStream(ctx context.Context) (*Stream, error) {
	if h.closing.Load() {
		return nil, fmt.Errorf("hub: open stream: %w", ErrHubClosed)
	}
	head, err := h.store.Head(ctx)
	if err != nil {
		return nil, fmt.Errorf("hub: open stream: %w", err)
	}
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+).
	id := hex.EncodeToString(b[:])
	h.streams.mu.Lock()
	h.streams.m[id] = &streamInfo{start: head, known: true, touched: h.clock.Now()}
	h.streams.mu.Unlock()
	return &Stream{h: h, id: id}, nil
}

// ID returns the stream's id: 32 hex digits.
func (s *Stream) ID() string { return s.id }

// Send appends e to the stream and returns its id. After Finish it fails
// with ErrStreamFinished.
func (s *Stream) Send(ctx context.Context, e sse.Event) (string, error) {
	if isReservedType(e.Type) {
		return "", fmt.Errorf("hub: stream send: %w: %q", ErrReservedType, e.Type)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.finished {
		return "", fmt.Errorf("hub: stream %s: %w", s.id, ErrStreamFinished)
	}
	id, err := s.h.append(ctx, store.Event{ID: e.ID, Topics: []string{streamTopic(s.id)}, Type: e.Type, Data: e.Data, Retry: e.Retry})
	if err != nil {
		return "", err
	}
	s.h.streams.touch(s.id, s.h.clock.Now())
	return id, nil
}

// Finish appends the stream's completion marker: readers get what remains
// and their responses end; later reads get 204 No Content. Finishing twice
// fails with ErrStreamFinished.
func (s *Stream) Finish(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.finished {
		return fmt.Errorf("hub: stream %s: %w", s.id, ErrStreamFinished)
	}
	if _, err := s.h.append(ctx, store.Event{Topics: []string{streamTopic(s.id)}, Type: typeStreamEnd}); err != nil {
		return err
	}
	s.finished = true
	return nil
}

// ServeStream serves the completable stream id to one client: from its
// first event, or after the request's Last-Event-ID; the response ends when
// the stream is finished, and a request after the end gets 204 No Content.
// An id the hub does not know gets 404 (without a Last-Event-ID: a stream
// opened on another hub can still be resumed with one). The stream id is
// the capability: no other subscription is asked for.
func (h *Hub) ServeStream(w http.ResponseWriter, r *http.Request, id string) {
	if !validStreamID(id) {
		http.Error(w, "unknown stream", http.StatusNotFound)
		return
	}
	info, _ := h.streams.get(id)
	h.serve(w, r, Subscription{Cursor: RequestCursor(r)}, streamTarget{id: id, start: info.start, known: info.known})
}

func validStreamID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
