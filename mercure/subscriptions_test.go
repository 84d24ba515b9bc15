package mercure

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/store"
)

func TestSubscriptionEvents(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Subscriptions = true })
	watcherTok := e.modernToken(e.subKey, nil, []Selector{{MatchURLPattern, "/.well-known/mercure/subscriptions/*"}}, nil)
	watcher := e.subscribe("match_urlpattern="+url.QueryEscape("/.well-known/mercure/subscriptions/:match_type/:match/:subscriber")+
		"&topic="+url.QueryEscape("/.well-known/mercure/subscriptions/{topic}/{subscriber}"), bearer(watcherTok))
	// The watcher sees its own two subscriptions first.
	for range 2 {
		if ev := watcher.next(); ev.Type != "mercure" && !strings.Contains(ev.Data, "Subscription") {
			t.Fatalf("own subscription event %+v", ev)
		}
	}

	userTok := e.modernToken(e.subKey, nil, []Selector{{MatchExact, "https://example.com/books/1"}}, map[string]any{"user": "kevin"})
	user := e.subscribe("match="+url.QueryEscape("https://example.com/books/1"), bearer(userTok))
	ev := watcher.next()
	if ev.Type != "mercure" {
		t.Fatalf("event type %q", ev.Type)
	}
	if !strings.Contains(ev.Data, "\n") {
		t.Errorf("data is not indented JSON: %q", ev.Data)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(ev.Data), &doc); err != nil {
		t.Fatal(err)
	}
	sid, _ := doc["subscriber"].(string)
	wantID := "/.well-known/mercure/subscriptions/exact/" + url.QueryEscape("https://example.com/books/1") + "/" + url.QueryEscape(sid)
	if !strings.HasPrefix(sid, "urn:uuid:") || doc["id"] != wantID || doc["type"] != "subscription" || doc["match"] != "https://example.com/books/1" ||
		doc["match_type"] != "exact" || doc["active"] != true || doc["@context"] != nil {
		t.Fatalf("document %v (want id %s)", doc, wantID)
	}
	if p, _ := doc["payload"].(map[string]any); p["user"] != "kevin" {
		t.Errorf("payload %v", doc["payload"])
	}

	// The API lists it.
	apiTok := e.modernToken(e.subKey, nil, []Selector{{MatchURLPattern, "/.well-known/mercure/subscriptions{/*}?"}}, nil)
	resp, body := e.get(subscriptionsPath, bearer(apiTok))
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("API: %d %s", resp.StatusCode, body)
	}
	var coll struct {
		ID            string           `json:"id"`
		Type          string           `json:"type"`
		Subscriptions []map[string]any `json:"subscriptions"`
	}
	if err := json.Unmarshal([]byte(body), &coll); err != nil {
		t.Fatal(err)
	}
	if coll.Type != "subscriptions" || coll.ID != subscriptionsPath || len(coll.Subscriptions) != 3 {
		t.Fatalf("collection %s", body)
	}
	etag := resp.Header.Get("ETag")
	if !strings.HasPrefix(etag, `"`) || !strings.Contains(resp.Header.Get("Link"), `rel="mercure"`) ||
		!strings.Contains(resp.Header.Get("Link"), "last-event-id="+etag) {
		t.Fatalf("ETag %q, Link %q", etag, resp.Header.Get("Link"))
	}
	hdr := bearer(apiTok)
	hdr.Set("If-None-Match", etag)
	if resp, _ := e.get(subscriptionsPath, hdr); resp.StatusCode != http.StatusNotModified {
		t.Fatalf("If-None-Match: %d", resp.StatusCode)
	}

	// One subscription, by type, match and subscriber.
	one := subscriptionsPath + "/exact/" + url.QueryEscape("https://example.com/books/1") + "/" + url.QueryEscape(sid)
	resp, body = e.get(one, bearer(apiTok))
	if resp.StatusCode != 200 || !strings.Contains(body, `"subscriber":"`+sid+`"`) {
		t.Fatalf("single: %d %s", resp.StatusCode, body)
	}
	resp, body = e.get(subscriptionsPath+"/exact/"+url.QueryEscape("https://example.com/books/1"), bearer(apiTok))
	if resp.StatusCode != 200 || !strings.Contains(body, sid) {
		t.Fatalf("by matcher: %d %s", resp.StatusCode, body)
	}
	if resp, _ := e.get(subscriptionsPath+"/exact/x/urn:uuid:nobody", bearer(apiTok)); resp.StatusCode != 404 {
		t.Fatalf("unknown subscriber: %d", resp.StatusCode)
	}
	if resp, _ := e.get(subscriptionsPath+"/regex/x/y", bearer(apiTok)); resp.StatusCode != 400 {
		t.Fatalf("unknown match type: %d", resp.StatusCode)
	}

	// Authorization of the API.
	resp, _ = e.get(subscriptionsPath, nil)
	if resp.StatusCode != 401 {
		t.Fatalf("anonymous API: %d", resp.StatusCode)
	}
	resp, _ = e.get(subscriptionsPath, bearer(userTok))
	if resp.StatusCode != 403 {
		t.Fatalf("API without grant: %d", resp.StatusCode)
	}
	checkChallenge(t, resp, e.srv.URL, "insufficient_scope")

	// Disconnecting publishes active:false.
	user.close()
	ev = watcher.next()
	if !strings.Contains(ev.Data, `"active": false`) || !strings.Contains(ev.Data, sid) {
		t.Fatalf("termination event %+v", ev)
	}
	resp, body = e.get(one, bearer(apiTok))
	if resp.StatusCode != 404 {
		t.Fatalf("after disconnect: %d %s", resp.StatusCode, body)
	}
}

func TestSubscriptionEventsArePrivate(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Subscriptions = true })
	anon := e.subscribe("match_urlpattern="+url.QueryEscape("/.well-known/mercure/subscriptions/*")+"&match=fence", nil)
	other := e.subscribe("match=x", nil)
	other.close()
	e.fence(anon, "fence") // fails on any subscription event before the fence
}

func TestClassicSubscriptionAPI(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Subscriptions = true })
	watcher := e.subscribe("topic="+url.QueryEscape("/.well-known/mercure/subscriptions/{topic}/{subscriber}")+"&topic=fence", nil)
	e.subscribe("topic="+url.QueryEscape("https://example.com/{id}"), nil)
	// Anonymous subscribers never get subscription events.
	e.fence(watcher, "fence")

	reader := bearer(classicToken(t, e.subKey, nil, []string{"*"}))
	resp, body := e.get(subscriptionsPath+"/"+url.QueryEscape("https://example.com/{id}"), reader)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/ld+json" {
		t.Fatalf("classic API: %d %s", resp.StatusCode, body)
	}
	var coll map[string]any
	if err := json.Unmarshal([]byte(body), &coll); err != nil {
		t.Fatal(err)
	}
	subs, _ := coll["subscriptions"].([]any)
	if coll["@context"] != "https://mercure.rocks/" || coll["type"] != "Subscriptions" || coll["lastEventID"] == nil || len(subs) != 1 {
		t.Fatalf("collection %s", body)
	}
	doc := subs[0].(map[string]any)
	if doc["type"] != "Subscription" || doc["topic"] != "https://example.com/{id}" || doc["active"] != true {
		t.Fatalf("document %v", doc)
	}
	if etag := resp.Header.Get("ETag"); etag == "" || strings.HasPrefix(etag, `"`) {
		t.Fatalf("classic ETag %q", etag)
	}
	single := subscriptionsPath + "/" + url.QueryEscape("https://example.com/{id}") + "/" + url.QueryEscape(doc["subscriber"].(string))
	resp, body = e.get(single, reader)
	if resp.StatusCode != 200 || !strings.Contains(body, `"lastEventID"`) {
		t.Fatalf("classic single: %d %s", resp.StatusCode, body)
	}
}

// TestSubscriptionsAPINeverAnonymousWithAKey: with a publisher key but no
// subscriber key, no token can grant the API, so it is refused to
// everyone (it used to list every subscription to anonymous clients).
// Without any key at all (no JWT) it stays open.
func TestSubscriptionsAPINeverAnonymousWithAKey(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Subscriptions = true; c.SubscriberKey = nil })
	e.subscribe("topic=secret-topic", nil)
	for _, hdr := range []http.Header{nil, bearer(classicToken(t, e.pubKey, []string{"*"}, []string{"*"}))} {
		for _, path := range []string{subscriptionsPath, subscriptionsPath + "/secret-topic"} {
			resp, body := e.get(path, hdr)
			if resp.StatusCode != http.StatusUnauthorized || strings.Contains(body, "secret-topic") {
				t.Errorf("GET %s (token: %v) with a publisher key only: %d %s, want 401", path, hdr != nil, resp.StatusCode, body)
			}
			if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("GET %s: WWW-Authenticate %q", path, resp.Header.Get("WWW-Authenticate"))
			}
		}
	}

	open := newEnv(t, func(c *Config) { c.Subscriptions = true; c.PublisherKey, c.SubscriberKey = nil, nil })
	open.subscribe("topic=public-topic", nil)
	if resp, body := open.get(subscriptionsPath, nil); resp.StatusCode != 200 || !strings.Contains(body, "public-topic") {
		t.Errorf("GET %s without any key: %d %s, want 200 listing the subscription", subscriptionsPath, resp.StatusCode, body)
	}
}

func TestSubscriptionsDisabled(t *testing.T) {
	e := newEnv(t, nil)
	if resp, _ := e.get(subscriptionsPath, nil); resp.StatusCode != 404 {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

func TestQuoteCursor(t *testing.T) {
	if got := quoteCursor("a\"b%c d\x7f"); got != `"a%22b%25c%20d%7F"` {
		t.Fatalf("%s", got)
	}
}

func TestClassicSubscriptionEvents(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Subscriptions = true })
	tok := signClaims(t, subSecret, map[string]any{"mercure": map[string]any{
		"subscribe": []string{"/.well-known/mercure/subscriptions/{topic}/{subscriber}", "https://example.com/{id}"},
		"payload":   map[string]any{"user": "classic"},
	}}, nil)
	watcher := e.subscribe("topic="+url.QueryEscape("/.well-known/mercure/subscriptions/{topic}/{subscriber}"), bearer(tok))
	if ev := watcher.next(); !strings.Contains(ev.Data, `"Subscription"`) { // its own
		t.Fatalf("own event %+v", ev)
	}
	e.subscribe("topic="+url.QueryEscape("https://example.com/1"), bearer(tok))
	ev := watcher.next()
	if ev.Type != "message" {
		t.Fatalf("classic subscription event has type %q", ev.Type)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(ev.Data), &doc); err != nil {
		t.Fatal(err)
	}
	sid, _ := doc["subscriber"].(string)
	want := "/.well-known/mercure/subscriptions/" + url.QueryEscape("https://example.com/1") + "/" + url.QueryEscape(sid)
	if doc["@context"] != "https://mercure.rocks/" || doc["type"] != "Subscription" || doc["topic"] != "https://example.com/1" ||
		doc["id"] != want || doc["active"] != true {
		t.Fatalf("document %v, want id %s", doc, want)
	}
	if p, _ := doc["payload"].(map[string]any); p["user"] != "classic" {
		t.Fatalf("payload %v", doc["payload"])
	}
}

// Subscription events never take room from the application's history: an
// anonymous client opening connections with as many selectors as allowed
// writes nothing to the log, and a client resuming from an old update still
// gets what it missed. One selector over the bound is refused.
func TestSubscriptionEventsKeepHistory(t *testing.T) {
	e := newEnvWith(t, store.NewMemory(store.MemoryConfig{MaxEvents: 50}), func(c *Config) {
		c.Subscriptions = true
		c.MaxActiveSubscriptions = 40
	})
	watcherTok := e.modernToken(e.subKey, nil, []Selector{{MatchURLPattern, "/.well-known/mercure/subscriptions/*"}}, nil)
	watcher := e.subscribe("match_urlpattern="+url.QueryEscape("/.well-known/mercure/subscriptions/*"), bearer(watcherTok))
	watcher.next() // its own subscription
	first := e.mustPublish(form("topic", "https://example.com/books/1", "data", "first"))
	missed := e.mustPublish(form("topic", "https://example.com/books/1", "data", "missed"))

	q := url.Values{}
	for i := range 40 {
		q.Add("topic", "https://example.com/t/"+strconv.Itoa(i))
	}
	for range 10 {
		c := e.subscribe(q.Encode(), nil)
		c.close()
	}
	// Every connection was announced and every disconnection too.
	for range 10 * 40 * 2 {
		if ev := watcher.next(); !strings.Contains(ev.Data, "https://example.com/t/") {
			t.Fatalf("watcher got %+v", ev)
		}
	}
	n := 0
	for _, err := range e.st.History(t.Context(), "", nil) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 2 {
		t.Fatalf("the log holds %d events, want the 2 updates", n)
	}
	c := e.subscribe("topic="+url.QueryEscape("https://example.com/books/1"), http.Header{"Last-Event-ID": {first}})
	if ev := c.next(); ev.ID != missed || ev.Data != "missed" {
		t.Fatalf("resumed with %+v, want the missed update", ev)
	}

	q.Add("topic", "one-too-many")
	if resp, _ := e.get(HubPath+"?"+q.Encode(), nil); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("41 selectors: status %d, want 400", resp.StatusCode)
	}
}
