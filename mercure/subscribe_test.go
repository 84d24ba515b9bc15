package mercure

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sluicehq/sluice/hub"
	"github.com/sluicehq/sluice/sse"
	"github.com/sluicehq/sluice/store"
)

func TestSubscribeResponse(t *testing.T) {
	e := newEnv(t, nil)
	e.mustPublish(form("topic", "a", "data", "old")) // the log is not empty
	c := e.subscribe("topic=a", nil)
	want := map[string]string{
		"Content-Type":           "text/event-stream",
		"Cache-Control":          "private, no-cache, no-store, must-revalidate, max-age=0",
		"Pragma":                 "no-cache",
		"Expire":                 "0",
		"X-Accel-Buffering":      "no",
		"X-Content-Type-Options": "nosniff",
		"X-Frame-Options":        "DENY",
		"Connection":             "keep-alive",
	}
	for k, v := range want {
		if got := c.resp.Header.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	for _, k := range []string{"Mercure-Last-Event-ID", "Last-Event-ID"} {
		if _, ok := c.resp.Header[http.CanonicalHeaderKey(k)]; ok {
			t.Errorf("%s sent without a cursor", k)
		}
	}
	id := e.mustPublish(form("topic", "a", "data", "new"))
	if ev := c.next(); ev.ID != id || ev.Data != "new" {
		t.Fatalf("first event %+v: the old update or a priming event leaked", ev)
	}
	// The stream opens with the ":" comment and carries no priming event.
	if raw := c.rawBytes(); !strings.HasPrefix(raw, ":\nid: "+id+"\n") {
		t.Fatalf("stream starts %q", raw)
	}
}

func TestSubscribeEmptyLogOpensAtOnce(t *testing.T) {
	e := newEnv(t, nil)
	c := e.subscribe("topic=a", nil) // returns only once headers arrived
	id := e.mustPublish(form("topic", "a"))
	if ev := c.next(); ev.ID != id {
		t.Fatalf("event %+v", ev)
	}
	if raw := c.rawBytes(); !strings.HasPrefix(raw, ":\nid: "+id+"\ndata: \n\n") {
		t.Fatalf("stream %q", raw)
	}
}

func TestSubscribeHeartbeat(t *testing.T) {
	e := newEnvEngine(t, store.NewMemory(store.MemoryConfig{}), func(ec *hub.Config) { ec.Heartbeat = 20 * time.Millisecond }, nil)
	c := e.subscribe("topic=a", nil)
	select {
	case <-c.comments: // the opening ":" comment
	case <-time.After(hang):
		t.Fatal("no opening comment")
	}
	select {
	case <-c.comments:
	case <-time.After(hang):
		t.Fatal("no heartbeat")
	}
}

func TestSubscribeErrors(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Anonymous = false; c.MaxMatchers = 2; c.MaxTopicParams = 2 })
	tok := classicToken(t, e.subKey, nil, nil)
	expired := signClaims(t, subSecret, jwt.MapClaims{"mercure": map[string]any{}, "exp": time.Now().Add(-time.Hour).Unix()}, nil)
	tests := []struct {
		name   string
		query  string
		hdr    http.Header
		status int
		errKey string
	}{
		{"no token", "topic=a", nil, 401, ""},
		{"invalid token", "topic=a", bearer(strings.Repeat("y", 60)), 401, "invalid_token"},
		{"expired token", "topic=a", bearer(expired), 401, "invalid_token"},
		{"publisher key token", "topic=a", bearer(classicToken(t, e.pubKey, nil, nil)), 401, "invalid_token"},
		{"malformed header", "topic=a", http.Header{"Authorization": {"Token x"}}, 400, "invalid_request"},
		{"no selector", "", bearer(tok), 400, "-"},
		{"unknown matcher", "match_uritemplate=a", bearer(tok), 400, "-"},
		{"capitalised matcher", "Match=a", bearer(tok), 400, "-"},
		{"matches", "match=a&matches=b", bearer(tok), 400, "-"},
		{"bad URL pattern", "match_urlpattern=" + url.QueryEscape("https://example.com/(["), bearer(tok), 400, "-"},
		{"control character", "match=" + url.QueryEscape("a\x7fb"), bearer(tok), 400, "-"},
		{"too many matchers", "match=a&match=b&match_exact=c", bearer(tok), 400, "-"},
		{"too many topics", "topic=a&topic=b&topic=c", bearer(tok), 400, "-"},
		{"cursor with CR", "topic=a&last_event_id=" + url.QueryEscape("a\rb"), bearer(tok), 400, "-"},
		{"valid", "topic=a&match=b", bearer(tok), 200, "-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, resp := e.open(tt.query, tt.hdr)
			if c != nil {
				c.close()
			}
			if resp.StatusCode != tt.status {
				body, _ := io.ReadAll(resp.Body)
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tt.status, body)
			}
			checkChallenge(t, resp, e.srv.URL, tt.errKey)
		})
	}
}

func TestSubscribeInvalidTokenRefusedEvenAnonymous(t *testing.T) {
	e := newEnv(t, nil) // anonymous
	_, resp := e.open("topic=a", bearer(strings.Repeat("z", 60)))
	if resp.StatusCode != 401 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	checkChallenge(t, resp, e.srv.URL, "invalid_token")
	// A bad cookie is refused too.
	_, resp = e.open("topic=a", http.Header{"Cookie": {DefaultCookieName + "=" + strings.Repeat("z", 60)}})
	if resp.StatusCode != 401 {
		t.Fatalf("cookie: status %d", resp.StatusCode)
	}
}

func TestSubscribeWithoutSubscriberKey(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.SubscriberKey = nil; c.Anonymous = false })
	if _, resp := e.open("topic=a", nil); resp.StatusCode != 401 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	e2 := newEnv(t, func(c *Config) { c.SubscriberKey = nil })
	// Anonymous without a key: no token is examined, even a garbage one.
	c := e2.subscribe("topic=a", bearer(strings.Repeat("z", 60)))
	id := e2.mustPublish(form("topic", "a"))
	if ev := c.next(); ev.ID != id {
		t.Fatalf("event %+v", ev)
	}
}

func TestSubscribeDisableClassic(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.DisableClassic = true })
	if _, resp := e.open("topic=a", nil); resp.StatusCode != 400 {
		t.Fatalf("topic= accepted without classic support: %d", resp.StatusCode)
	}
	// A classic token is validated as a modern one, and fails.
	if _, resp := e.open("match=a", bearer(classicToken(t, e.subKey, nil, []string{"*"}))); resp.StatusCode != 401 {
		t.Fatalf("classic token accepted: %d", resp.StatusCode)
	}
	// The query token is not read: the garbage one is ignored.
	c := e.subscribe("match=a&authorization="+strings.Repeat("z", 60), nil)
	c.close()
}

func TestPrivateUpdates(t *testing.T) {
	e := newEnv(t, nil)
	anon := e.subscribe("topic=https://example.com/books/{id}&topic=fence", nil)
	userTok := classicToken(t, e.subKey, nil, []string{"https://example.com/users/kevin"})
	// The user subscribes to the books; its grant is on its own user topic:
	// the alternate-topic trick delivers private book updates tagged with it.
	user := e.subscribe("topic=https://example.com/books/{id}&topic=fence", bearer(userTok))
	modern := e.subscribe("match_urlpattern="+url.QueryEscape("https://example.com/books/:id")+"&match=fence",
		bearer(e.modernToken(e.subKey, nil, []Selector{{MatchURLPattern, "https://example.com/books/*"}}, nil)))

	private := e.mustPublish(form("topic", "https://example.com/books/1", "topic", "https://example.com/users/kevin", "private", "on"))
	other := e.mustPublish(form("topic", "https://example.com/books/2", "topic", "https://example.com/users/dunglas", "private", "on"))
	public := e.mustPublish(form("topic", "https://example.com/books/3"))

	fence := e.mustPublish(form("topic", "fence"))
	got := func(c *client) []string {
		var ids []string
		for {
			ev := c.next()
			if ev.ID == fence {
				return ids
			}
			ids = append(ids, ev.ID)
		}
	}
	if ids := got(anon); strings.Join(ids, ",") != public {
		t.Errorf("anonymous got %v, want only the public %s", ids, public)
	}
	if ids := got(user); strings.Join(ids, ",") != private+","+public {
		t.Errorf("user got %v, want %s,%s", ids, private, public)
	}
	if ids := got(modern); strings.Join(ids, ",") != private+","+other+","+public {
		t.Errorf("modern got %v, want all three", ids)
	}
}

func TestPrivateUpdatesReplay(t *testing.T) {
	e := newEnv(t, nil)
	first := e.mustPublish(form("topic", "a"))
	secret := e.mustPublish(form("topic", "a", "private", ""))
	public := e.mustPublish(form("topic", "a", "data", "pub"))
	anon := e.subscribe("topic=a", http.Header{"Last-Event-ID": {first}})
	if ev := anon.next(); ev.ID != public {
		t.Fatalf("anonymous replay got %+v, want only %s", ev, public)
	}
	user := e.subscribe("topic=a", http.Header{"Last-Event-ID": {first}, "Authorization": {"Bearer " + classicToken(t, e.subKey, nil, []string{"a"})}})
	if a, b := user.next(), user.next(); a.ID != secret || b.ID != public {
		t.Fatalf("user replay got %s, %s", a.ID, b.ID)
	}
}

func TestSubscribeSelectors(t *testing.T) {
	e := newEnv(t, nil)
	type sub struct {
		query string
		want  []string // topics (of the published list below) delivered
	}
	topics := []string{
		"https://example.com/books/1",
		"https://example.com/books/1/reviews/2",
		"https://example.com/authors/1",
		"/relative/books/1",
		"urn:example:1",
	}
	subs := []sub{
		{"topic=*", topics},
		{"match=*", topics},
		{"match_urlpattern=*", topics},
		{"topic=https://example.com/books/1", topics[:1]},
		{"match=https://example.com/books/1", topics[:1]},
		{"match_exact=urn:example:1", topics[4:]},
		{"topic=" + url.QueryEscape("https://example.com/books/{id}"), topics[:1]},
		{"topic=" + url.QueryEscape("https://example.com/books/{+path}"), topics[:2]},
		{"topic=" + url.QueryEscape("https://example.com/{kind}/{id}"), []string{topics[0], topics[2]}},
		{"match_urlpattern=" + url.QueryEscape("https://example.com/books/:id"), topics[:1]},
		{"match_urlpattern=" + url.QueryEscape("https://example.com/books/*"), topics[:2]},
		{"match_urlpattern=" + url.QueryEscape("/relative/books/:id"), topics[3:4]},
		{"match_urlpattern=" + url.QueryEscape("https://EXAMPLE.com/authors/:id"), topics[2:3]},
		{"topic=urn:example:1&match_urlpattern=" + url.QueryEscape("https://example.com/authors/:id"), []string{topics[2], topics[4]}},
	}
	clients := make([]*client, len(subs))
	for i, s := range subs {
		clients[i] = e.subscribe(s.query+"&match=fence", nil)
	}
	ids := map[string]string{}
	for _, topic := range topics {
		ids[e.mustPublish(form("topic", topic))] = topic
	}
	fence := e.mustPublish(form("topic", "fence"))
	for i, s := range subs {
		var got []string
		for {
			ev := clients[i].next()
			if ev.ID == fence {
				break
			}
			got = append(got, ids[ev.ID])
		}
		if strings.Join(got, " ") != strings.Join(s.want, " ") {
			t.Errorf("?%s got %v, want %v", s.query, got, s.want)
		}
	}
}

func TestSelectorMatching(t *testing.T) {
	const budget = 20 << 10 // about two compiled patterns
	c, err := newSelectorCache("http://mercure.invalid", budget, selectorLimits{width: DefaultMaxSelectorCost})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		sel   Selector
		topic string
		want  bool
	}{
		{Selector{MatchExact, "https://a/b"}, "https://a/b", true},
		{Selector{MatchExact, "https://a/b"}, "https://a/B", false},
		{Selector{MatchExact, "*"}, "anything", true},
		{Selector{MatchClassic, "*"}, "anything", true},
		{Selector{MatchClassic, "https://a/{id}"}, "https://a/1", true},
		{Selector{MatchClassic, "https://a/{id}"}, "https://a/1/2", false},
		{Selector{MatchClassic, "https://a/{id}"}, "https://a/{id}", true}, // the template itself
		{Selector{MatchClassic, "https://a/{+rest}"}, "https://a/1/2", true},
		{Selector{MatchClassic, "https://a{/seg*}"}, "https://a/1/2", true},
		{Selector{MatchClassic, "https://a/b{?x,y}"}, "https://a/b?x=1&y=2", true},
		{Selector{MatchClassic, "https://a/b{?x,y}"}, "https://a/c?x=1", false},
		{Selector{MatchClassic, "https://a/{unclosed"}, "https://a/{unclosed", true}, // not a template: exact
		{Selector{MatchClassic, "https://a/{unclosed"}, "https://a/x", false},
		{Selector{MatchURLPattern, "https://example.net/foo/:random"}, "https://example.net/foo/abc", true},
		{Selector{MatchURLPattern, "https://example.net/foo/:random"}, "https://example.net/foo/a/b", false},
		{Selector{MatchURLPattern, "/foo/:id"}, "/foo/1", true},
		{Selector{MatchURLPattern, "/foo/:id"}, "https://other/foo/1", false},
		{Selector{MatchURLPattern, "https://example.net/foo/:id(\\d+)"}, "https://example.net/foo/12", true},
		{Selector{MatchURLPattern, "https://example.net/foo/:id(\\d+)"}, "https://example.net/foo/ab", false},
		{Selector{MatchURLPattern, "https://example.net/*"}, "not a url at all %%", false},
	}
	for _, tt := range tests {
		if got := c.matches(tt.sel, []string{tt.topic}); got != tt.want {
			t.Errorf("%v vs %q: %v, want %v", tt.sel, tt.topic, got, tt.want)
		}
	}
	if n, b := c.compiled.stats(); b > budget || n == 0 {
		t.Errorf("cache holds %d compiled selectors in %d bytes, budget %d", n, b, budget)
	}
	for _, bad := range []Selector{{MatchURLPattern, "https://example.com/(["}, {"regex", "a"}} {
		if _, err := c.get(bad); !errors.Is(err, ErrInvalidSelector) {
			t.Errorf("%v: err %v", bad, err)
		}
	}
	// The compiled form is shared.
	a, _ := c.get(Selector{MatchClassic, "https://x/{id}"})
	b, _ := c.get(Selector{MatchClassic, "https://x/{id}"})
	if a != b {
		t.Error("selector compiled twice")
	}
}

func TestCursors(t *testing.T) {
	e := newEnv(t, nil)
	ids := make([]string, 4)
	for i := range ids {
		ids[i] = e.mustPublish(form("topic", "a", "data", string(rune('0'+i))))
	}
	if id := e.mustPublish(form("topic", "a", "id", "my-custom-id")); id != "my-custom-id" {
		t.Fatalf("custom id %q", id)
	}
	after := e.mustPublish(form("topic", "a", "data", "after-custom"))

	tests := []struct {
		name     string
		query    string
		hdr      http.Header
		first    string // first event id expected
		header   string // cursor response header, "" = absent
		resetHdr bool
	}{
		{"header", "topic=a", http.Header{"Last-Event-ID": {ids[1]}}, ids[2], ids[1], false},
		{"last_event_id", "topic=a&last_event_id=" + url.QueryEscape(ids[2]), nil, ids[3], ids[2], false},
		{"lastEventID", "topic=a&lastEventID=" + url.QueryEscape(ids[0]), nil, ids[1], ids[0], false},
		{"lastEventId", "topic=a&lastEventId=" + url.QueryEscape(ids[0]), nil, ids[1], ids[0], false},
		{"header wins", "topic=a&last_event_id=" + url.QueryEscape(ids[0]), http.Header{"Last-Event-ID": {ids[2]}}, ids[3], ids[2], false},
		{"first non-empty wins", "topic=a&last_event_id=&lastEventID=" + url.QueryEscape(ids[2]), nil, ids[3], ids[2], false},
		{"custom id", "topic=a&last_event_id=my-custom-id", nil, after, "my-custom-id", false},
		{"earliest", "topic=a&last_event_id=earliest", nil, ids[0], "earliest", false},
		{"earliest header", "topic=a", http.Header{"Last-Event-ID": {"earliest"}}, ids[0], "earliest", false},
		{"unknown", "topic=a&last_event_id=never-issued", nil, "", "earliest", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := e.subscribe(tt.query, tt.hdr)
			defer c.close()
			for _, k := range []string{"Mercure-Last-Event-ID", "Last-Event-ID"} {
				if got := c.resp.Header.Get(k); got != tt.header {
					t.Errorf("%s: %q, want %q", k, got, tt.header)
				}
			}
			if got := c.resp.Header.Get("Sluice-Reset") != ""; got != tt.resetHdr {
				t.Errorf("Sluice-Reset present %v, want %v", got, tt.resetHdr)
			}
			ev := c.next()
			if tt.resetHdr {
				if ev.Type != sse.ResetEventType || ev.ID != after {
					t.Fatalf("want the reset event with the head id %s, got %+v", after, ev)
				}
				live := e.mustPublish(form("topic", "a"))
				if ev := c.next(); ev.ID != live {
					t.Fatalf("after the reset got %+v, want live %s", ev, live)
				}
				return
			}
			if ev.ID != tt.first {
				t.Fatalf("first event %+v, want id %s", ev, tt.first)
			}
		})
	}
}

func TestCursorPresentButEmpty(t *testing.T) {
	e := newEnv(t, nil)
	e.mustPublish(form("topic", "a"))
	c := e.subscribe("topic=a&last_event_id=", nil)
	if got := c.resp.Header.Get("Mercure-Last-Event-ID"); got != "earliest" {
		t.Fatalf("header %q", got)
	}
	// Nothing is replayed: the next event is a new one.
	id := e.mustPublish(form("topic", "a"))
	if ev := c.next(); ev.ID != id {
		t.Fatalf("event %+v", ev)
	}
}

func TestCursorLongHistory(t *testing.T) {
	e := newEnv(t, nil)
	for i := range 5000 {
		if _, err := e.h.Publish(t.Context(), Update{Topics: []string{"noise"}}); err != nil {
			t.Fatal(err)
		}
		if i == 4000 {
			e.mustPublish(form("topic", "a", "id", "checkpoint"))
		}
	}
	want := e.mustPublish(form("topic", "a", "data", "wanted"))
	c := e.subscribe("topic=a", http.Header{"Last-Event-ID": {"checkpoint"}})
	if ev := c.next(); ev.ID != want {
		t.Fatalf("event %+v", ev)
	}
}

func TestCursorExpired(t *testing.T) {
	e := newEnvStore(t, 3)
	old := e.mustPublish(form("topic", "a"))
	for range 5 {
		e.mustPublish(form("topic", "a"))
	}
	c := e.subscribe("topic=a", http.Header{"Last-Event-ID": {old}})
	if c.resp.Header.Get("Mercure-Last-Event-ID") != "earliest" || c.resp.Header.Get("Sluice-Reset") != "expired" {
		t.Fatalf("headers %v", c.resp.Header)
	}
	if ev := c.next(); ev.Type != sse.ResetEventType {
		t.Fatalf("event %+v", ev)
	}
}

func TestSubscribeQueryMethod(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxBodySize = 100 })
	first := e.mustPublish(form("topic", "a"))
	second := e.mustPublish(form("topic", "b"))
	req, _ := http.NewRequest("QUERY", e.srv.URL+HubPath+"?topic=a", strings.NewReader("topic=b&last_event_id="+url.QueryEscape(first)))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp := e.do(req.WithContext(ctx))
	if resp.StatusCode != 200 || resp.Header.Get("Mercure-Last-Event-ID") != first {
		t.Fatalf("status %d, headers %v", resp.StatusCode, resp.Header)
	}
	ev, err := sse.NewReader(resp.Body).Next()
	if err != nil || ev.ID != second {
		t.Fatalf("event %+v, %v", ev, err)
	}
	big, _ := http.NewRequest("QUERY", e.srv.URL+HubPath, strings.NewReader("topic="+strings.Repeat("x", 200)))
	if resp := e.do(big); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("big QUERY: %d", resp.StatusCode)
	}
}

func TestSubscribeHead(t *testing.T) {
	e := newEnv(t, nil)
	req, _ := http.NewRequest(http.MethodHead, e.srv.URL+HubPath+"?topic=a&last_event_id=x", nil)
	resp := e.do(req)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" || resp.Header.Get("Mercure-Last-Event-ID") != "x" {
		t.Fatalf("status %d, headers %v", resp.StatusCode, resp.Header)
	}
	req, _ = http.NewRequest(http.MethodHead, e.srv.URL+HubPath, nil)
	if resp := e.do(req); resp.StatusCode != 400 {
		t.Fatalf("HEAD without selector: %d", resp.StatusCode)
	}
}

func TestStreamEndsAtTokenExpiry(t *testing.T) {
	var now time.Time
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	now = exp.Add(-50 * time.Millisecond) // the hub believes the token expires in 50 ms
	e := newEnv(t, func(c *Config) { c.Now = func() time.Time { return now } })
	tok := signClaims(t, subSecret, jwt.MapClaims{"mercure": map[string]any{"subscribe": []string{"*"}}, "exp": exp.Unix()}, nil)
	c := e.subscribe("topic=a", bearer(tok))
	c.ended()
	if !strings.Contains(c.rawBytes(), "retry: ") {
		t.Errorf("stream ended without a retry: %q", c.rawBytes())
	}
}

func TestShutdownEndsStreams(t *testing.T) {
	e := newEnv(t, nil)
	c := e.subscribe("topic=a", nil)
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	if err := e.eng.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	c.ended()
	if !strings.Contains(c.rawBytes(), "retry: ") {
		t.Errorf("stream %q", c.rawBytes())
	}
	if _, resp := e.open("topic=a", nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("after shutdown: %d", resp.StatusCode)
	}
}

func TestHTTP2(t *testing.T) {
	st := newEnv(t, nil)
	srv := httptest.NewUnstartedServer(st.h)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	client := srv.Client()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+HubPath+"?topic=a", nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != 200 || resp.Header.Get("Connection") != "" {
		t.Fatalf("proto %s, status %d, headers %v", resp.Proto, resp.StatusCode, resp.Header)
	}
	id := st.mustPublish(form("topic", "a", "data", "over h2"))
	ev, err := sse.NewReader(resp.Body).Next()
	if err != nil || ev.ID != id || ev.Data != "over h2" {
		t.Fatalf("event %+v, %v", ev, err)
	}
}

// TestPrivateUpdateIDsNotRevealed: when the newest update is private and
// has a publisher's id, a subscriber not authorized for it learns neither
// the id (reset event, cursor headers, subscriptions API) nor whether it
// exists: resuming from it is answered exactly as resuming from an id never
// issued. An authorized subscriber resumes from it as usual.
func TestPrivateUpdateIDsNotRevealed(t *testing.T) {
	const secret = "urn:example:order-42-for-bob"
	// Without subscription events: they are updates too, and would move
	// the head between the two answers compared.
	e := newEnv(t, nil)
	e.mustPublish(form("topic", "a", "data", "public"))
	if id := e.mustPublish(form("topic", "a", "id", secret, "private", "on", "data", "for bob")); id != secret {
		t.Fatalf("published id %q", id)
	}

	answer := func(cursor string) (*client, http.Header) {
		t.Helper()
		c := e.subscribe("topic=a", http.Header{"Last-Event-ID": {cursor}})
		hdr := c.resp.Header.Clone()
		hdr.Del("Date")
		return c, hdr
	}
	c1, hdr1 := answer("never-issued")
	c2, hdr2 := answer(secret)
	if c1.resp.StatusCode != c2.resp.StatusCode || !reflect.DeepEqual(hdr1, hdr2) {
		t.Fatalf("an unknown id gets %d %v;\nthe private update's id %d %v", c1.resp.StatusCode, hdr1, c2.resp.StatusCode, hdr2)
	}
	ev1, ev2 := c1.next(), c2.next()
	if ev1 != ev2 {
		t.Fatalf("an unknown id gets %+v; the private update's id %+v", ev1, ev2)
	}
	if ev1.Type != sse.ResetEventType || hdr1.Get("Sluice-Reset") != "unknown" || hdr1.Get("Mercure-Last-Event-ID") != "earliest" {
		t.Fatalf("an unknown id gets %+v, headers %v; want a reset", ev1, hdr1)
	}
	if ev1.ID == secret || strings.Contains(ev1.Data, secret) {
		t.Fatalf("the reset event reveals the private update's id: %+v", ev1)
	}

	api := newEnv(t, func(c *Config) { c.Subscriptions = true })
	api.mustPublish(form("topic", "a", "id", secret, "private", "on", "data", "for bob"))
	apiTok := api.modernToken(api.subKey, nil, []Selector{{MatchURLPattern, "/.well-known/mercure/subscriptions{/*}?"}}, nil)
	resp, _ := api.get(subscriptionsPath, bearer(apiTok))
	if etag, link := resp.Header.Get("ETag"), resp.Header.Get("Link"); etag == "" || strings.Contains(etag, secret) || strings.Contains(link, secret) {
		t.Fatalf("subscriptions API cursor: ETag %s, Link %s; want one that is not the private update's id", etag, link)
	}

	user := e.subscribe("topic=a", http.Header{"Last-Event-ID": {secret}, "Authorization": {"Bearer " + classicToken(t, e.subKey, nil, []string{"a"})}})
	if got := user.resp.Header.Get("Mercure-Last-Event-ID"); got != secret || user.resp.Header.Get("Sluice-Reset") != "" {
		t.Fatalf("authorized subscriber: cursor header %q, reset %q; want %s and none", got, user.resp.Header.Get("Sluice-Reset"), secret)
	}
	after := e.mustPublish(form("topic", "a", "data", "after"))
	if ev := user.next(); ev.ID != after {
		t.Fatalf("authorized subscriber got %+v, want %s", ev, after)
	}
}
