package mercure

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/sluicehq/sluice/hub"
	"github.com/sluicehq/sluice/sse"
)

// registry is the set of connected subscribers of this hub instance.
type registry struct {
	mu      sync.Mutex
	m       map[*hub.Subscriber]*subState
	granted int // subscribers with subscribe grants: who may see a subscription event
}

func (r *registry) init() { r.m = make(map[*hub.Subscriber]*subState) }

func (st *subState) granted() bool { return st.claims != nil && len(st.claims.subscribe) > 0 }

func (r *registry) add(s *hub.Subscriber, st *subState) {
	r.mu.Lock()
	r.m[s] = st
	if st.granted() {
		r.granted++
	}
	r.mu.Unlock()
}

func (r *registry) remove(s *hub.Subscriber) *subState {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.m[s]
	delete(r.m, s)
	if st != nil && st.granted() {
		r.granted--
	}
	return st
}

// anyGranted reports whether a connected subscriber has subscribe grants:
// subscription events are private, so without one nobody may see them.
func (r *registry) anyGranted() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.granted > 0
}

// snapshot returns the connected subscribers, ordered by Mercure id.
func (r *registry) snapshot() []*subState {
	r.mu.Lock()
	out := make([]*subState, 0, len(r.m))
	for _, st := range r.m {
		out = append(out, st)
	}
	r.mu.Unlock()
	slices.SortFunc(out, func(a, b *subState) int { return strings.Compare(a.id, b.id) })
	return out
}

// escapeSegment percent-encodes s as one path segment, exactly once.
func escapeSegment(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }

// subscriptionTopic returns the topic (and id) of the subscription of one
// selector: /.well-known/mercure/subscriptions/{match_type}/{match}/{subscriber}
// for modern selectors and /.well-known/mercure/subscriptions/{topic}/{subscriber}
// for classic ones.
func subscriptionTopic(sel Selector, subscriber string) string {
	if sel.Type == MatchClassic {
		return subscriptionsPath + "/" + escapeSegment(sel.Value) + "/" + escapeSegment(subscriber)
	}
	return subscriptionsPath + "/" + escapeSegment(string(sel.Type)) + "/" + escapeSegment(sel.Value) + "/" + escapeSegment(subscriber)
}

// subscriptionDoc returns the document of one subscription: the modern
// plain JSON for match* selectors, the classic JSON-LD document for topic
// selectors (what classic clients of subscription events expect).
func (h *Hub) subscriptionDoc(st *subState, sel Selector, active bool) map[string]any {
	topic := subscriptionTopic(sel, st.id)
	doc := map[string]any{"id": topic, "subscriber": st.id, "active": active}
	if sel.Type == MatchClassic {
		doc["@context"] = "https://mercure.rocks/"
		doc["type"] = "Subscription"
		doc["topic"] = sel.Value
	} else {
		doc["type"] = "subscription"
		doc["match"] = sel.Value
		doc["match_type"] = string(sel.Type)
	}
	if p := h.payloadFor(st.claims, sel.Value); len(p) > 0 {
		doc["payload"] = p
	}
	return doc
}

// publishSubscriptionEvents sends one private update per selector of st:
// active when the subscriber connects, inactive when it leaves. Modern
// subscriptions use the event type "mercure"; classic ones none, as the
// classic hubs did. They are the engine's notices (hub.Hub.Notify), not
// log events: see the package doc (Active subscriptions).
func (h *Hub) publishSubscriptionEvents(ctx context.Context, st *subState, active bool) {
	if !h.subs.anyGranted() {
		return // nobody may see them: spare the documents
	}
	for _, sel := range st.sels {
		doc := h.subscriptionDoc(st, sel, active)
		data, err := json.MarshalIndent(doc, "", "  ")
		if err != nil {
			h.log.Error("mercure: encoding a subscription event", "err", err)
			continue
		}
		typ := "mercure"
		if sel.Type == MatchClassic {
			typ = ""
		}
		ev := sse.Event{Type: typ, Data: string(data)}
		if err := h.engine.Notify(ctx, hub.Message{Topics: []string{doc["id"].(string)}, Event: ev, Private: true}); err != nil {
			lvl := h.log.Error
			if errors.Is(err, hub.ErrHubClosed) || ctx.Err() != nil {
				lvl = h.log.Debug
			}
			lvl("mercure: publishing a subscription event", "err", err, "subscriber", st.id, "active", active)
		}
	}
}

// subscriptionsAPI serves the subscriptions API (MERCURE.md §6):
// /subscriptions, /subscriptions/{match_type}/{match},
// /subscriptions/{match_type}/{match}/{subscriber} and, with classic
// support, /subscriptions/{topic} and /subscriptions/{topic}/{subscriber}.
func (h *Hub) subscriptionsAPI(w http.ResponseWriter, r *http.Request) {
	if h.cfg.SubscriberKey == nil && h.keyed() {
		// Never anonymous when a key exists (MERCURE.md §6), and only a
		// subscriber token can grant it: without a subscriber key nobody
		// may read it. Only a hub without any key (no JWT at all) serves
		// it openly.
		h.writeAuthError(w, r, &authError{status: http.StatusUnauthorized,
			err: errors.New("the subscriptions API needs a subscriber key")})
		return
	}
	if h.cfg.SubscriberKey != nil {
		c, aerr := h.authenticate(r, h.cfg.SubscriberKey)
		if aerr == nil && c == nil {
			aerr = errNoToken
		}
		if aerr != nil {
			h.writeAuthError(w, r, aerr)
			return
		}
		path := r.URL.EscapedPath()
		if !h.subscribeMatcher(c).matchAny([]string{path}) {
			h.writeAuthError(w, r, errInsufficientScope("the token has no subscribe grant for %q", clip(path)))
			return
		}
	}

	var segs []string
	if rest := strings.TrimPrefix(r.URL.EscapedPath(), subscriptionsPath); rest != "" {
		for _, s := range strings.Split(strings.TrimPrefix(rest, "/"), "/") {
			v, err := url.PathUnescape(s)
			if err != nil {
				http.Error(w, "malformed path", http.StatusBadRequest)
				return
			}
			segs = append(segs, v)
		}
	}
	modernType := func(s string) bool { return s == string(MatchExact) || s == string(MatchURLPattern) }

	var (
		filter     func(sel Selector, st *subState) bool
		single     bool
		classicDoc bool
	)
	switch {
	case len(segs) == 0:
		filter = func(Selector, *subState) bool { return true }
	case len(segs) == 3:
		if !modernType(segs[0]) {
			http.Error(w, "unknown match type", http.StatusBadRequest)
			return
		}
		single = true
		filter = func(sel Selector, st *subState) bool {
			return string(sel.Type) == segs[0] && sel.Value == segs[1] && st.id == segs[2]
		}
	case len(segs) == 2 && modernType(segs[0]):
		filter = func(sel Selector, _ *subState) bool { return string(sel.Type) == segs[0] && sel.Value == segs[1] }
	case len(segs) == 2 && h.classic:
		single, classicDoc = true, true
		filter = func(sel Selector, st *subState) bool {
			return sel.Type == MatchClassic && sel.Value == segs[0] && st.id == segs[1]
		}
	case len(segs) == 1 && h.classic:
		classicDoc = true
		filter = func(sel Selector, _ *subState) bool { return sel.Type == MatchClassic && sel.Value == segs[0] }
	default:
		http.Error(w, "unknown match type", http.StatusBadRequest)
		return
	}

	cursor := h.engine.Stats().Position // the last update dispatched
	if cursor == "" {
		cursor = earliest
	}

	var docs []map[string]any
	for _, st := range h.subs.snapshot() {
		for _, sel := range st.sels {
			if filter(sel, st) {
				docs = append(docs, h.subscriptionDoc(st, sel, true))
			}
		}
	}
	if single && len(docs) == 0 {
		http.NotFound(w, r)
		return
	}

	hdr := w.Header()
	var body any
	if classicDoc {
		hdr.Set("Content-Type", "application/ld+json")
		hdr.Set("ETag", cursor)
		if single {
			docs[0]["lastEventID"] = cursor
			body = docs[0]
		} else {
			body = map[string]any{"@context": "https://mercure.rocks/", "id": r.URL.EscapedPath(), "type": "Subscriptions",
				"lastEventID": cursor, "subscriptions": nonNil(docs)}
		}
	} else {
		quoted := quoteCursor(cursor)
		hdr.Set("Content-Type", "application/json")
		hdr.Set("ETag", quoted)
		hdr.Set("Link", "<"+HubPath+`>; rel="mercure"; last-event-id=`+quoted+`; type="mercure"; content-type="application/json"`)
		if single {
			body = docs[0]
		} else {
			body = map[string]any{"id": r.URL.EscapedPath(), "type": "subscriptions", "subscriptions": nonNil(docs)}
		}
	}
	if inm := r.Header.Get("If-None-Match"); inm != "" && inm == hdr.Get("ETag") {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	data, err := json.Marshal(body)
	if err != nil {
		h.log.Error("mercure: encoding the subscriptions", "err", err)
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	_, _ = w.Write(data)
}

func nonNil(docs []map[string]any) []map[string]any {
	if docs == nil {
		return []map[string]any{}
	}
	return docs
}

// quoteCursor returns the cursor as an HTTP quoted string, with bytes below
// 0x21, '"', '%' and DEL percent-escaped.
func quoteCursor(cursor string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(cursor); i++ {
		c := cursor[i]
		if c < 0x21 || c == '"' || c == '%' || c == 0x7f {
			b.WriteByte('%')
			b.WriteByte("0123456789ABCDEF"[c>>4])
			b.WriteByte("0123456789ABCDEF"[c&15])
			continue
		}
		b.WriteByte(c)
	}
	b.WriteByte('"')
	return b.String()
}
