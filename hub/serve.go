package hub

import (
	"errors"
	"fmt"
	"net/http"
)

// ServeHTTP serves the default subscription of a request: the exact
// topics of its "topic" query parameters, no private event, resumed from
// its Last-Event-ID header or, without one, its "lastEventID" query
// parameter (see Serve). A request without a topic, or naming a private
// channel (ReservedTopicPrefix), is refused with 400.
// For anything else (patterns, authorization, another cursor, callbacks),
// build the Subscription and call Serve.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	topics := r.URL.Query()["topic"]
	if len(topics) == 0 {
		http.Error(w, `missing "topic" query parameter`, http.StatusBadRequest)
		return
	}
	for _, t := range topics {
		if isReserved(t) {
			http.Error(w, fmt.Sprintf("%v: %q", ErrReservedTopic, t), http.StatusBadRequest)
			return
		}
	}
	h.Serve(w, r, Subscription{Topics: topics, Cursor: RequestCursor(r)})
}

// RequestCursor returns the cursor a request resumes from: its
// Last-Event-ID header (what EventSource sends), or without one its
// "lastEventID" query parameter (for clients that cannot set headers).
func RequestCursor(r *http.Request) string {
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		return id
	}
	return r.URL.Query().Get("lastEventID")
}

// enter counts a request being served, unless the hub is shut down.
func (h *Hub) enter() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.conns.Add(1)
	return true
}

// Serve serves one subscriber with sub: it registers the subscriber, sends
// the stream's headers, the priming (sub.Priming), the history after
// sub.Cursor or a reset event, and then live events until the client goes
// away or the hub ends the stream. The request is read for its context
// and its connection only: what the subscriber asks for is all in sub. A
// cursor too long or with CR, LF or NUL is refused with 400. A
// subscription naming a completed channel (Hub.Complete) gets what remains
// before the completion, then the end of the response, or 204 No Content
// when nothing remains.
//
// On HTTP/1.1 the hub takes the connection over once the stream is live
// (see hijack.go) and Serve returns then, while the stream goes on on a
// goroutine of the hub's (one per subscriber either way): middleware that
// times requests sees the setup, not the stream. sub.OnDisconnect reports
// the end of every stream. On HTTP/2, and where the connection cannot be
// taken over, Serve returns when the stream ends.
func (h *Hub) Serve(w http.ResponseWriter, r *http.Request, sub Subscription) {
	if !h.enter() {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	defer h.conns.Done()
	ctx := r.Context()

	if err := h.normalize(&sub); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	cursor, err := h.cursorOf(&sub)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	poll := sub.PollInterval
	replay := cursor != "" || sub.FromStart

	if sub.Priming < PrimingID || sub.Priming > PrimingNone || sub.Policy < PolicyDisconnect || sub.Policy > PolicyDrop {
		http.Error(w, "invalid subscription", http.StatusInternalServerError)
		return
	}
	c := &conn{h: h, w: w, rc: http.NewResponseController(w), onResume: sub.OnResume, deadline: sub.Deadline,
		onConnect: sub.OnConnect, onDisconnect: sub.OnDisconnect, priming: sub.Priming}
	c.ht = httpTransport{w: w, rc: c.rc, timeout: h.cfg.WriteTimeout}
	c.tr = &c.ht
	s := newSubscriber(h, sub)
	c.s = s
	if poll <= 0 {
		if err := h.register(ctx, s); err != nil {
			if errors.Is(err, ErrHubClosed) {
				w.Header().Set("Retry-After", "1")
				http.Error(w, "shutting down", http.StatusServiceUnavailable)
			}
			return
		}
	}
	// Nothing will ever come to a subscription without a cursor on a
	// completed channel. Asked once registered: a completion dispatched
	// before is remembered by now, one after reaches the queue.
	if !replay && h.completed.any(s.topics) {
		if poll <= 0 {
			h.unregister(s)
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	h.metrics.SubscriberConnected()
	reason := ReasonClient // should the hook or run panic
	defer func() {
		if !c.detached {
			c.end(reason)
		}
	}()
	if c.onConnect != nil {
		c.onConnect(s)
	}

	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Accel-Buffering", "no")

	c.buf = getBuf()
	// Without heartbeats nothing would notice a hijacked client going away.
	c.mayHijack = poll <= 0 && h.cfg.Heartbeat > 0 && canHijack(r)
	if c.mayHijack {
		// The hub closes a connection it took over when the stream ends:
		// say so, or a client that read a stream to its clean end (a
		// completion, a retry) puts the connection back in its pool and
		// its next request, a POST it will not retry, fails.
		hdr.Set("Connection", "close")
	}
	reason = c.run(ctx, cursor, replay, poll)
}

// cursorOf returns the subscription's cursor: its Cursor, "" with
// FromStart. An id too long or with CR, LF or NUL is refused.
func (h *Hub) cursorOf(sub *Subscription) (string, error) {
	if sub.FromStart {
		return "", nil
	}
	if err := ValidateLastEventID(sub.Cursor, h.cfg.MaxLastEventIDLen); err != nil {
		return "", err
	}
	return sub.Cursor, nil
}
