package mercure

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/sluicehq/sluice/hub"
	"github.com/sluicehq/sluice/store"
)

// ErrNoSelector reports a subscription without any topic selector.
var ErrNoSelector = errors.New("mercure: missing topic selector")

// subState is what the hub knows of one subscriber connection: its
// selectors, its token and its Mercure subscriber id.
type subState struct {
	id      string // urn:uuid:<v4>
	sels    []Selector
	claims  *claims
	sub     hub.Subscription
	timer   *time.Timer // ends the stream when the token expires
	started time.Time
}

type ctxKey struct{}

// engineSubscription is the engine's Config.Subscription hook: the
// subscription was built by subscribe and travels in the request context.
func (h *Hub) engineSubscription(r *http.Request) (hub.Subscription, error) {
	st, _ := r.Context().Value(ctxKey{}).(*subState)
	if st == nil {
		return hub.Subscription{}, hub.Reject(http.StatusNotFound, "not a Mercure subscription")
	}
	return st.sub, nil
}

// subscribe serves GET, HEAD and QUERY on the hub path (MERCURE.md §3).
func (h *Hub) subscribe(w http.ResponseWriter, r *http.Request) {
	q, status, err := h.subscribeValues(w, r)
	if err != nil {
		h.log.Debug("mercure: bad subscribe request", "err", err, "remote", r.RemoteAddr)
		http.Error(w, http.StatusText(status), status)
		return
	}
	cursor, cursorSent := h.cursor(r, q)

	var c *claims
	if h.cfg.SubscriberKey != nil {
		var aerr *authError
		c, _, aerr = h.authenticate(r, h.cfg.SubscriberKey)
		if aerr == nil && c == nil && !h.cfg.Anonymous {
			aerr = errNoToken
		}
		if aerr != nil {
			h.writeAuthError(w, r, aerr)
			return
		}
	} else if !h.cfg.Anonymous {
		h.writeAuthError(w, r, errNoToken)
		return
	}

	sels, err := h.parseSelectors(q)
	if err != nil {
		h.badRequest(w, r, err)
		return
	}
	st := &subState{id: "urn:uuid:" + newUUIDv4(), sels: sels, claims: c, started: h.now()}
	st.sub = h.buildSubscription(sels, c)

	if r.Method == http.MethodHead {
		setStreamHeaders(w.Header(), r)
		if cursorSent {
			setCursorHeaders(w.Header(), cursorValue(cursor))
		}
		w.WriteHeader(http.StatusOK)
		return
	}

	// The engine always gets a cursor, so that it replays (possibly
	// nothing) and its first write is predictable: the client's cursor,
	// "earliest", or the head of the log (the events after it are exactly
	// those published from now on).
	engineCursor := cursor
	if engineCursor == "" {
		head, err := h.store.Head(r.Context())
		if err != nil {
			h.log.Error("mercure: store head failed", "err", err)
			w.Header().Set("Retry-After", "1")
			http.Error(w, "event store unavailable", http.StatusServiceUnavailable)
			return
		}
		engineCursor = head
		if head == "" {
			engineCursor = earliest // an empty log: everything is new
		}
	}
	r2 := r.Clone(context.WithValue(r.Context(), ctxKey{}, st))
	r2.Header.Set("Last-Event-ID", engineCursor)
	sw := &streamWriter{ResponseWriter: w, r: r, prime: engineCursor, cursorSent: cursorSent, cursor: cursor}
	h.engine.ServeHTTP(sw, r2)
}

// subscribeValues returns the request's parameters: the query, followed for
// QUERY requests by the form-encoded body.
func (h *Hub) subscribeValues(w http.ResponseWriter, r *http.Request) (url.Values, int, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, http.StatusBadRequest, fmt.Errorf("query: %w", err)
	}
	if r.Method != "QUERY" || r.Body == nil {
		return q, 0, nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBodySize))
	if err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			return nil, http.StatusRequestEntityTooLarge, err
		}
		return nil, http.StatusBadRequest, err
	}
	bq, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, http.StatusBadRequest, fmt.Errorf("body: %w", err)
	}
	for k, vs := range bq {
		q[k] = append(q[k], vs...)
	}
	return q, 0, nil
}

// cursor returns the request's cursor and whether one was sent (even
// empty): the Last-Event-ID header, then the last_event_id parameter, then
// (classic) lastEventID and lastEventId. The first non-empty value wins.
func (h *Hub) cursor(r *http.Request, q url.Values) (string, bool) {
	sent := false
	first := ""
	try := func(vs []string, ok bool) {
		if !ok {
			return
		}
		sent = true
		for _, v := range vs {
			if first == "" && v != "" {
				first = v
			}
		}
	}
	vs, ok := r.Header[http.CanonicalHeaderKey("Last-Event-ID")]
	try(vs, ok)
	vs, ok = q["last_event_id"]
	try(vs, ok)
	if h.classic {
		vs, ok = q["lastEventID"]
		try(vs, ok)
		vs, ok = q["lastEventId"]
		try(vs, ok)
	}
	return first, sent
}

// parseSelectors reads the topic selectors of a subscription: match and
// match_exact (exact), match_urlpattern (URL Pattern), and with classic
// support topic (classic selectors). Any other parameter starting with
// "match" (in any case) is refused, as is a subscription with none.
func (h *Hub) parseSelectors(q url.Values) ([]Selector, error) {
	names := make([]string, 0, len(q))
	for name := range q {
		names = append(names, name)
	}
	slices.Sort(names)
	var sels []Selector
	matchers, topics := 0, 0
	for _, name := range names {
		var typ MatchType
		switch {
		case name == "match", name == "match_exact":
			typ = MatchExact
		case name == "match_urlpattern":
			typ = MatchURLPattern
		case name == "topic" && h.classic:
			typ = MatchClassic
		case name == "topic", len(name) >= 5 && strings.EqualFold(name[:5], "match"):
			return nil, fmt.Errorf("%w: unknown matcher parameter %q", ErrInvalidSelector, name)
		default:
			continue
		}
		for _, v := range q[name] {
			if typ == MatchClassic {
				if topics++; topics > h.cfg.MaxTopicParams {
					return nil, fmt.Errorf("%w: more than %d topic parameters", ErrInvalidSelector, h.cfg.MaxTopicParams)
				}
			} else if matchers++; matchers > h.cfg.MaxMatchers {
				return nil, fmt.Errorf("%w: more than %d matchers", ErrInvalidSelector, h.cfg.MaxMatchers)
			}
			sel := Selector{Type: typ, Value: v}
			if err := h.checkSelector(sel); err != nil {
				return nil, err
			}
			sels = append(sels, sel)
		}
	}
	if len(sels) == 0 {
		if h.classic {
			return nil, fmt.Errorf(`%w: missing "topic" or "match" parameter`, ErrNoSelector)
		}
		return nil, fmt.Errorf(`%w: missing "match" parameter`, ErrNoSelector)
	}
	return sels, nil
}

// buildSubscription turns selectors and grants into the engine's
// subscription. Exact selectors go to the engine's topic index; the others
// form one matcher shared (through MatchKey) by every subscription with the
// same pattern set. An update is delivered when a selector matches one of
// its topics and it is public or a subscribe grant matches one of its
// topics (possibly another one).
func (h *Hub) buildSubscription(sels []Selector, c *claims) hub.Subscription {
	var sub hub.Subscription
	var pats selectorSet
	var keys []string
	for _, sel := range sels {
		m, err := h.selectors.get(sel)
		if err != nil {
			continue // checked by parseSelectors
		}
		if ex, ok := m.(matchExact); ok && ex != "" && !strings.HasPrefix(string(ex), "sluice:") {
			sub.Topics = append(sub.Topics, string(ex))
			continue
		}
		pats = append(pats, m)
		keys = append(keys, string(sel.Type)+"\x00"+sel.Value)
	}
	if len(pats) > 0 {
		slices.Sort(keys)
		sub.Match = pats.matchAny
		sub.MatchKey = "mercure\x01" + strings.Join(slices.Compact(keys), "\x01")
	}
	grants := h.subscribeMatcher(c)
	sub.Authorize = func(e *store.Event) bool { return !e.Private || grants.matchAny(e.Topics) }
	return sub
}

// cursorValue is the cursor response header for a requested cursor that
// the store can serve.
func cursorValue(cursor string) string {
	if cursor == "" {
		return earliest
	}
	return cursor
}

// setStreamHeaders sets the headers of a Mercure event stream.
func setStreamHeaders(hdr http.Header, r *http.Request) {
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "private, no-cache, no-store, must-revalidate, max-age=0")
	hdr.Set("Pragma", "no-cache")
	hdr.Set("Expire", "0")
	hdr.Set("X-Accel-Buffering", "no")
	if r.ProtoMajor == 1 {
		hdr.Set("Connection", "keep-alive")
	}
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("X-Frame-Options", "DENY")
	hdr.Set("X-XSS-Protection", "1; mode=block")
	hdr.Set("Content-Security-Policy", "default-src 'self'")
}

// setCursorHeaders sets both the modern and the classic cursor response
// headers.
func setCursorHeaders(hdr http.Header, v string) {
	hdr.Set("Mercure-Last-Event-ID", v)
	hdr.Set("Last-Event-ID", v)
}

// streamWriter adapts the engine's event stream to the Mercure wire
// format. Before the first byte it sets the Mercure headers, including
// the cursor headers: the requested cursor when the engine could replay
// from it, "earliest" when it could not (the engine then sent its reset
// header, and sends its reset event). The stream opens with the ":"
// comment, and the engine's priming event (the cursor it was given, with
// empty data, which would reach EventSource listeners as an empty message)
// is removed.
type streamWriter struct {
	http.ResponseWriter
	r          *http.Request
	prime      string
	cursor     string
	cursorSent bool
	started    bool // headers sent
	primed     bool // the first write was handled
}

// Unwrap lets http.ResponseController reach the connection (flushes,
// write deadlines).
func (w *streamWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// WriteHeader sends the headers, completed with the Mercure ones for a
// stream.
func (w *streamWriter) WriteHeader(code int) {
	if w.started {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.started = true
	hdr := w.Header()
	if code == http.StatusOK && strings.HasPrefix(hdr.Get("Content-Type"), "text/event-stream") {
		setStreamHeaders(hdr, w.r)
		if w.cursorSent {
			v := cursorValue(w.cursor)
			if hdr.Get(hub.ResetHeader) != "" {
				v = earliest
			}
			setCursorHeaders(hdr, v)
		}
	} else {
		w.primed = true // not a stream: pass everything through
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write writes the engine's bytes, the first time after the ":" comment and
// without the priming event.
func (w *streamWriter) Write(p []byte) (int, error) {
	if !w.started {
		w.WriteHeader(http.StatusOK)
	}
	if w.primed {
		return w.ResponseWriter.Write(p)
	}
	w.primed = true
	n := len(p)
	out := make([]byte, 0, len(p)+2)
	out = append(out, ":\n"...)
	out = append(out, stripPriming(p, w.prime)...)
	_, err := w.ResponseWriter.Write(out)
	return n, err
}

// stripPriming removes the priming event for id from the start of p.
func stripPriming(p []byte, id string) []byte {
	pre := "id: " + id + "\n"
	if !bytes.HasPrefix(p, []byte(pre)) {
		return p
	}
	rest := p[len(pre):]
	for _, d := range []string{"data: \n\n", "data\n\n", "data:\n\n", "\n"} {
		if bytes.HasPrefix(rest, []byte(d)) {
			return rest[len(d):]
		}
	}
	return p
}

// cursorStore is the store as the engine sees it: the reserved cursor
// "earliest" (which no update can have as its id) means the start of the
// retained history.
type cursorStore struct{ store.Store }

// History implements store.Store.
func (s cursorStore) History(ctx context.Context, cursor string, filter store.Filter) iter.Seq2[store.Event, error] {
	if cursor == earliest {
		cursor = ""
	}
	return s.Store.History(ctx, cursor, filter)
}

// Follow implements store.Store.
func (s cursorStore) Follow(ctx context.Context, cursor string) iter.Seq2[store.Event, error] {
	if cursor == earliest {
		cursor = ""
	}
	return s.Store.Follow(ctx, cursor)
}

// onConnect runs once a subscriber is registered with the engine, before
// its response starts: it records the subscription, arms the token expiry
// and publishes the subscription events.
func (h *Hub) onConnect(s *hub.Subscriber, r *http.Request) {
	st, _ := r.Context().Value(ctxKey{}).(*subState)
	if st == nil {
		return
	}
	if st.claims != nil && !st.claims.expires.IsZero() {
		st.timer = time.AfterFunc(st.claims.expires.Sub(h.now()), s.Close)
	}
	h.subs.add(s, st)
	if h.cfg.Subscriptions {
		h.publishSubscriptionEvents(r.Context(), st, true)
	}
}

// onDisconnect runs when a subscriber's response ends.
func (h *Hub) onDisconnect(s *hub.Subscriber, _ hub.DisconnectReason) {
	st := h.subs.remove(s)
	if st == nil {
		return
	}
	if st.timer != nil {
		st.timer.Stop()
	}
	if h.cfg.Subscriptions {
		ctx, cancel := context.WithTimeout(context.Background(), h.cfg.DispatchTimeout)
		defer cancel()
		h.publishSubscriptionEvents(ctx, st, false)
	}
}
