package mercure

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/sluicehq/sluice/hub"
	"github.com/sluicehq/sluice/store"
)

// ErrNoSelector reports a subscription without any topic selector.
var ErrNoSelector = errors.New("mercure: missing topic selector")

// subState is what the hub knows of one subscriber connection: its
// selectors, its token and its Mercure subscriber id.
type subState struct {
	id     string // urn:uuid:<v4>
	sels   []Selector
	claims *claims
}

// subscribe serves GET, HEAD and QUERY on the hub path (MERCURE.md §3).
func (h *Hub) subscribe(w http.ResponseWriter, r *http.Request) {
	// The token comes from the headers, the cookie or the query, never
	// the body: a request that cannot subscribe is refused before its body
	// is read.
	var c *claims
	var aerr *authError
	if h.cfg.SubscriberKey != nil {
		c, aerr = h.authenticate(r, h.cfg.SubscriberKey)
		if aerr == nil && c == nil && !h.cfg.Anonymous {
			aerr = errNoToken
		}
	} else if !h.cfg.Anonymous {
		aerr = errNoToken
	}
	if aerr != nil {
		skipBody(w, r)
		h.writeAuthError(w, r, aerr)
		return
	}

	q, ok := h.subscribeValues(w, r)
	if !ok {
		return
	}
	cursor, cursorSent := h.cursor(r, q)

	sels, err := h.parseSelectors(q)
	if err != nil {
		h.badRequest(w, r, err)
		return
	}
	if r.Method == http.MethodHead {
		// The engine, which validates a GET's cursor, never sees a HEAD:
		// refuse here what it would refuse before echoing the cursor.
		if err := hub.ValidateLastEventID(cursor, h.maxCursor); err != nil {
			h.badRequest(w, r, err)
			return
		}
		setStreamHeaders(w.Header(), r.ProtoMajor == 1)
		if cursorSent {
			setCursorHeaders(w.Header(), cursorValue(cursor))
		}
		w.WriteHeader(http.StatusOK)
		return
	}

	st := &subState{id: "urn:uuid:" + newUUIDv4(), sels: sels, claims: c}
	sub := h.buildSubscription(sels, c)
	sub.FromStart = cursor == earliest
	if !sub.FromStart {
		sub.Cursor = cursor
	}
	// The cursor headers carry the requested cursor when the engine can
	// replay from it, "earliest" when it cannot (it then sends its reset
	// header and event).
	// The hook must not hold the request: the subscription outlives it.
	http1 := r.ProtoMajor == 1
	sub.OnResume = func(hdr http.Header, res hub.Resume) {
		setStreamHeaders(hdr, http1)
		if cursorSent {
			v := cursorValue(cursor)
			if res.Reset != "" {
				v = earliest
			}
			setCursorHeaders(hdr, v)
		}
	}
	if c != nil && !c.expires.IsZero() {
		sub.Deadline = h.engineNow().Add(c.expires.Sub(h.now()))
	}
	sub.Priming = hub.PrimingNone // the stream opens with ":"
	ctx := r.Context()
	sub.OnConnect = func(s *hub.Subscriber) { h.onConnect(ctx, s, st) }
	sub.OnDisconnect = func(s *hub.Subscriber, _ hub.DisconnectReason) { h.onDisconnect(s) }
	h.engine.Serve(w, r, sub)
}

// subscribeValues returns the request's parameters: the query, followed for
// QUERY requests by the form-encoded body. The body of a GET or HEAD, which
// carries nothing, is read and dropped under the same bounds. On failure it
// answers the request and returns false.
func (h *Hub) subscribeValues(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		h.badRequest(w, r, fmt.Errorf("query: %w", err))
		return nil, false
	}
	if !hasBody(r) {
		return q, true
	}
	var body []byte
	read := func(b io.Reader) error {
		if r.Method != "QUERY" {
			_, err := io.Copy(io.Discard, b)
			return err
		}
		var err error
		body, err = io.ReadAll(b)
		return err
	}
	if !h.readBody(w, r, read) {
		return nil, false
	}
	if r.Method != "QUERY" {
		return q, true
	}
	bq, err := url.ParseQuery(string(body))
	if err != nil {
		h.badRequest(w, r, fmt.Errorf("body: %w", err))
		return nil, false
	}
	for k, vs := range bq {
		q[k] = append(q[k], vs...)
	}
	return q, true
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
	matchers, topics, patternBytes, width := 0, 0, 0, 0
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
			m, err := h.checkSelector(sel)
			if err != nil {
				return nil, err
			}
			if m.isPattern() {
				if typ == MatchClassic {
					if matchers++; matchers > h.cfg.MaxMatchers {
						return nil, fmt.Errorf("%w: more than %d matchers and patterns", ErrInvalidSelector, h.cfg.MaxMatchers)
					}
				}
				if patternBytes += len(v); patternBytes > h.cfg.MaxPatternBytes {
					return nil, fmt.Errorf("%w: patterns longer than %d bytes in all", ErrInvalidSelector, h.cfg.MaxPatternBytes)
				}
				if width += m.width; width > h.cfg.MaxSelectorCost {
					return nil, fmt.Errorf("%w: the patterns together are too costly to match (their wildcards, groups and template variables: more than %d)", ErrInvalidSelector, h.cfg.MaxSelectorCost)
				}
			}
			sels = append(sels, sel)
		}
	}
	if h.cfg.Subscriptions && len(sels) > h.cfg.MaxActiveSubscriptions {
		return nil, fmt.Errorf("%w: more than %d selectors, each an active subscription", ErrInvalidSelector, h.cfg.MaxActiveSubscriptions)
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
	var pats []*matcher
	var keys []string
	for _, sel := range sels {
		m, err := h.selectors.get(sel)
		if err != nil {
			continue // checked by parseSelectors
		}
		if m.kind == matchExact && m.value != "" && !strings.HasPrefix(m.value, hub.ReservedTopicPrefix) {
			sub.Topics = append(sub.Topics, m.value)
			continue
		}
		pats = append(pats, m)
		keys = append(keys, string(sel.Type)+"\x00"+sel.Value)
	}
	if len(pats) > 0 {
		slices.Sort(keys)
		sub.Match = h.selectors.set(pats).matchAny
		sub.MatchKey = "mercure\x01" + strings.Join(slices.Compact(keys), "\x01")
	}
	if c != nil && len(c.subscribe) > 0 {
		grants := h.subscribeMatcher(c)
		sub.Authorize = func(e *store.Event) bool { return !e.Private || grants.matchAny(e.Topics) }
	} // else no private update: without Authorize the engine skips them at no cost
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
func setStreamHeaders(hdr http.Header, http1 bool) {
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "private, no-cache, no-store, must-revalidate, max-age=0")
	hdr.Set("Pragma", "no-cache")
	hdr.Set("Expire", "0")
	hdr.Set("X-Accel-Buffering", "no")
	if http1 {
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

// onConnect runs once a subscriber is registered with the engine, before
// its response starts: it records the subscription and publishes the
// subscription events.
func (h *Hub) onConnect(ctx context.Context, s *hub.Subscriber, st *subState) {
	h.subs.add(s, st)
	if h.cfg.Subscriptions {
		h.publishSubscriptionEvents(ctx, st, true)
	}
}

// onDisconnect runs when a subscriber's response ends.
func (h *Hub) onDisconnect(s *hub.Subscriber) {
	st := h.subs.remove(s)
	if st == nil {
		return
	}
	if h.cfg.Subscriptions {
		h.publishSubscriptionEvents(context.Background(), st, false)
	}
}
