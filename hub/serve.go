package hub

import (
	"errors"
	"net/http"
)

// ServeHTTP serves the default subscription of a request: the exact
// topics of its "topic" query parameters, no private event, resumed from
// its Last-Event-ID header or, without one, its "lastEventID" query
// parameter (see Serve). A request without a topic is refused with 400.
// For anything else (patterns, authorization, another cursor, callbacks),
// build the Subscription and call Serve.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	topics := r.URL.Query()["topic"]
	if len(topics) == 0 {
		http.Error(w, `missing "topic" query parameter`, http.StatusBadRequest)
		return
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

// Serve serves one subscriber with sub: it registers the subscriber, sends
// the stream's headers, the priming (sub.Priming), the history after
// sub.Cursor or a reset event, and then live events until the client goes
// away or the hub ends the stream. The request is read for its context
// and its connection only: what the subscriber asks for is all in sub. A
// cursor too long or with CR, LF or NUL is refused with 400.
//
// On HTTP/1.1 the hub takes the connection over once the stream is live
// (see hijack.go) and Serve returns then, while the stream goes on on a
// goroutine of the hub's (one per subscriber either way): middleware that
// times requests sees the setup, not the stream. sub.OnDisconnect reports
// the end of every stream. On HTTP/2, and where the connection cannot be
// taken over, Serve returns when the stream ends.
func (h *Hub) Serve(w http.ResponseWriter, r *http.Request, sub Subscription) {
	h.serve(w, r, sub, streamTarget{})
}

// streamTarget names the completable stream a request reads, if any.
type streamTarget struct {
	id    string
	start string // cursor before the stream's first event
	known bool   // start is known (the stream was opened on this hub)
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

func (h *Hub) serve(w http.ResponseWriter, r *http.Request, sub Subscription, st streamTarget) {
	if !h.enter() {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	defer h.conns.Done()
	ctx := r.Context()

	sessions := h.cfg.Session.TTL > 0 && st.id == ""
	if err := h.normalize(&sub, !sessions && st.id == ""); err != nil {
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
	if st.id != "" && !replay {
		if !st.known {
			if h.streams.isFinished(st.id) {
				w.WriteHeader(http.StatusNoContent)
			} else {
				http.Error(w, "unknown stream", http.StatusNotFound)
			}
			return
		}
		cursor, replay = st.start, true
	}

	if sub.Priming < PrimingID || sub.Priming > PrimingNone || sub.Policy < PolicyDisconnect || sub.Policy > PolicyDrop {
		http.Error(w, "invalid subscription", http.StatusInternalServerError)
		return
	}
	c := &conn{h: h, w: w, rc: http.NewResponseController(w), onResume: sub.OnResume, deadline: sub.Deadline,
		onConnect: sub.OnConnect, onDisconnect: sub.OnDisconnect, priming: sub.Priming}
	c.ht = httpTransport{w: w, rc: c.rc, timeout: h.cfg.WriteTimeout}
	c.tr = &c.ht
	if sessions {
		var scursor string
		c.session, scursor = h.attachSession(w, r, sub.Subject)
		if !replay && scursor != "" {
			cursor, replay = scursor, true
		}
	}

	s := newSubscriber(h, sub, c.session, st.id)
	c.s = s
	if poll <= 0 {
		if err := h.register(ctx, s); err != nil {
			if c.session != "" {
				h.detachSession(c.session, "")
			}
			if errors.Is(err, ErrHubClosed) {
				w.Header().Set("Retry-After", "1")
				http.Error(w, "shutting down", http.StatusServiceUnavailable)
			}
			return
		}
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
	reason = c.run(ctx, cursor, replay, poll, st.id)
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
