package mercure

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestPublishDelivers(t *testing.T) {
	e := newEnv(t, nil)
	c := e.subscribe("topic=https://example.com/books/1", nil)
	resp := e.publish(classicToken(t, e.pubKey, []string{"*"}, nil),
		form("topic", "https://example.com/books/1", "topic", "https://example.com/alt", "data", "line1\r\nline2\nline3",
			"type", "update", "retry", "2500", "unknown", "ignored"))
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	id := string(body)
	if id == "" || strings.ContainsAny(id, "\r\n") {
		t.Fatalf("id %q", id)
	}
	ev := c.next()
	if ev.ID != id || ev.Type != "update" || ev.Data != "line1\nline2\nline3" || ev.Retry != 2500*time.Millisecond {
		t.Fatalf("event %+v, want id %q", ev, id)
	}
	// Serialisation: every line of data is its own data line.
	if raw := c.rawBytes(); !strings.Contains(raw, "data: line1\ndata: line2\ndata: line3\n\n") {
		t.Errorf("raw stream %q", raw)
	}
}

func TestPublishCustomIDsAndEmptyData(t *testing.T) {
	e := newEnv(t, nil)
	c := e.subscribe("topic=a", nil)
	for range 2 { // duplicates are accepted
		if id := e.mustPublish(form("topic", "a", "id", "urn:uuid:my-id")); id != "urn:uuid:my-id" {
			t.Fatalf("id %q", id)
		}
	}
	for range 2 {
		ev := c.next()
		if ev.ID != "urn:uuid:my-id" || ev.Data != "" {
			t.Fatalf("event %+v", ev)
		}
	}
	// An empty update still has a data line, so browsers dispatch it.
	if raw := c.rawBytes(); !strings.Contains(raw, "id: urn:uuid:my-id\ndata: \n\n") {
		t.Errorf("raw stream %q", raw)
	}
}

// The Mercure spec: an id the hub generates is an IRI or a relative
// reference consisting of a fragment. Ours are fragments, the same string
// in the publish response, on the stream's id line, and as a cursor.
func TestPublishGeneratedIDIsFragment(t *testing.T) {
	e := newEnv(t, nil)
	c := e.subscribe("topic=a", nil)
	e.fence(c, "a")
	first := e.mustPublish(form("topic", "a", "data", "first"))
	if !strings.HasPrefix(first, "#") || len(first) < 4 || strings.ContainsAny(first[1:], "#?/ ") {
		t.Fatalf("generated id %q is not a fragment #<id>", first)
	}
	if u, err := url.Parse(first); err != nil || u.Fragment != first[1:] || u.Path != "" || u.Scheme != "" {
		t.Fatalf("url.Parse(%q) = %+v, %v; want a relative reference consisting of a fragment", first, u, err)
	}
	second := e.mustPublish(form("topic", "a", "data", "second"))
	for _, want := range []string{first, second} { // live
		if ev := c.next(); ev.ID != want {
			t.Fatalf("live event %+v, want id %q", ev, want)
		}
	}
	if raw := c.rawBytes(); !strings.Contains(raw, "\nid: "+first+"\ndata: first\n\n") || !strings.Contains(raw, "\nid: "+second+"\n") {
		t.Fatalf("raw stream %q lacks the id lines of %q and %q", raw, first, second)
	}
	replay := e.subscribe("topic=a&last_event_id=earliest", nil)
	replay.next() // the fence
	if ev := replay.next(); ev.ID != first || !strings.Contains(replay.rawBytes(), "\nid: "+first+"\n") {
		t.Fatalf("replayed event %+v, want id line %q", ev, first)
	}
	// As a cursor: the header as EventSource sends it, and the query
	// parameter percent-encoded ("#" included), as clients must send it.
	for name, c := range map[string]*client{
		"header": e.subscribe("topic=a", http.Header{"Last-Event-ID": {first}}),
		"query":  e.subscribe("topic=a&last_event_id="+url.QueryEscape(first), nil),
	} {
		if got := c.resp.Header.Get("Last-Event-ID"); got != first {
			t.Errorf("%s: Last-Event-ID response header %q, want %q", name, got, first)
		}
		if ev := c.next(); ev.ID != second {
			t.Fatalf("%s: resumed from %q with %+v, want %q", name, first, ev, second)
		}
	}
}

// A cursor issued before generated ids were fragments (the same id without
// "#") resumes where it did, and a publisher cannot take that form.
func TestLegacyCursor(t *testing.T) {
	e := newEnv(t, nil)
	first := e.mustPublish(form("topic", "a", "data", "first"))
	second := e.mustPublish(form("topic", "a", "data", "second"))
	old := strings.TrimPrefix(first, "#")
	for name, c := range map[string]*client{
		"header": e.subscribe("topic=a", http.Header{"Last-Event-ID": {old}}),
		"query":  e.subscribe("topic=a&lastEventID="+old, nil),
	} {
		if got := c.resp.Header.Get("Last-Event-ID"); got != old || c.resp.Header.Get("Sluice-Reset") != "" {
			t.Errorf("%s: Last-Event-ID response header %q, reset %q; want %q and no reset", name, got, c.resp.Header.Get("Sluice-Reset"), old)
		}
		if ev := c.next(); ev.ID != second {
			t.Fatalf("%s: resumed from legacy %q with %+v, want %q", name, old, ev, second)
		}
	}
	resp := e.publish(classicToken(t, e.pubKey, []string{"*"}, nil), form("topic", "a", "id", strings.TrimPrefix(second, "#")+"0"))
	if body, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("publish with an id in the legacy form of the hub's ids: %d %s, want 400", resp.StatusCode, body)
	}
}

func TestPublishUUIDIDs(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.UUIDIDs = true })
	id := e.mustPublish(form("topic", "a"))
	if !strings.HasPrefix(id, "urn:uuid:") || len(id) != len("urn:uuid:")+36 || id[len("urn:uuid:")+14] != '7' {
		t.Fatalf("id %q is not an urn:uuid v7", id)
	}
}

func TestPublishStatusCodes(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxPublishTopics = 3; c.MaxBodySize = 4096; c.MaxSelectorLen = 1024 })
	all := classicToken(t, e.pubKey, []string{"*"}, nil)
	limited := classicToken(t, e.pubKey, []string{"https://example.com/books/{id}"}, nil)
	feed := classicToken(t, e.pubKey, []string{"https://example.com/users/{id}/feed"}, nil)
	noClaim := classicToken(t, e.pubKey, nil, nil)
	wrongKey := classicToken(t, e.subKey, []string{"*"}, nil)
	tests := []struct {
		name   string
		token  string
		form   url.Values
		status int
		errKey string // WWW-Authenticate error, "" for none; "-" for no header
	}{
		{"no token", "", form("topic", "a"), 401, ""},
		{"wrong key", wrongKey, form("topic", "a"), 401, "invalid_token"},
		{"garbage token", strings.Repeat("x", 50), form("topic", "a"), 401, "invalid_token"},
		{"missing topic", all, form("data", "x"), 400, "-"},
		{"too many topics", all, form("topic", "a", "topic", "b", "topic", "c", "topic", "d"), 400, "-"},
		{"control char in topic", all, form("topic", "a\x01b"), 400, "-"},
		{"C1 control in topic", all, form("topic", "a\u0085b"), 400, "-"},
		{"format char in topic", all, form("topic", "a\u200bb"), 400, "-"},
		{"invalid UTF-8 topic", all, form("topic", "a\xffb"), 400, "-"},
		{"retry not digits", all, form("topic", "a", "retry", "-1"), 400, "-"},
		{"retry overflow", all, form("topic", "a", "retry", "99999999999999999999999"), 400, "-"},
		{"no grant", limited, form("topic", "https://example.com/authors/1"), 403, "insufficient_scope"},
		{"grant for one topic of two", limited, form("topic", "https://example.com/books/1", "topic", "https://example.com/authors/1"), 403, "insufficient_scope"},
		{"no mercure claim", noClaim, form("topic", "a"), 403, "insufficient_scope"},
		{"star topic", all, form("topic", "*"), 400, "-"},
		{"reserved topic", all, form("topic", "/.well-known/mercure/subscriptions/x"), 400, "-"},
		{"reserved absolute", all, form("topic", "https://other.example/.well-known/mercure"), 400, "-"},
		{"reserved escaped", all, form("topic", "/.well%2Dknown/mercure/x"), 400, "-"},
		{"reserved dot segments", all, form("topic", "/a/../.well-known/mercure/x"), 400, "-"},
		{"reserved http slash-less", all, form("topic", "http:/.well-known/mercure/subscriptions/x"), 400, "-"},
		{"reserved http relative", all, form("topic", "http:.well-known/mercure/subscriptions/x"), 400, "-"},
		{"reserved HTTP", all, form("topic", "HTTP:/.well-known/mercure/subscriptions/x"), 400, "-"},
		{"reserved backslashes", all, form("topic", "http:\\.well-known\\mercure\\subscriptions\\x"), 400, "-"},
		{"reserved after query", all, form("topic", "x?/.well-known/mercure/subscriptions/a/b"), 400, "-"},
		{"dot segments escape a grant", feed, form("topic", "https://example.com/users/../feed"), 400, "-"},
		{"encoded dot segments escape a grant", feed, form("topic", "https://example.com/users/%2e%2e/feed"), 400, "-"},
		{"mixed dot segments escape a grant", feed, form("topic", "https://example.com/users/.%2E/feed"), 400, "-"},
		{"single dot segment", all, form("topic", "https://example.com/./feed"), 400, "-"},
		{"topic too long", all, form("topic", "https://example.com/"+strings.Repeat("x", 4000)), 400, "-"},
		{"granted feed", feed, form("topic", "https://example.com/users/42/feed"), 200, "-"},
		{"dots inside a segment", all, form("topic", "https://example.com/a..b/.c/d."), 200, "-"},
		{"dot segment in the query", all, form("topic", "https://example.com/a?b=../c"), 200, "-"},
		{"id starting with #", all, form("topic", "a", "id", "#1"), 400, "-"},
		{"id earliest", all, form("topic", "a", "id", "earliest"), 400, "-"},
		{"id with control", all, form("topic", "a", "id", "a\nb"), 400, "-"},
		{"type mercure", all, form("topic", "a", "type", "mercure"), 400, "-"},
		{"type with LF", all, form("topic", "a", "type", "a\nb"), 400, "-"},
		{"data not UTF-8", all, form("topic", "a", "data", "\xff"), 400, "-"},
		{"body too large", all, form("topic", "a", "data", strings.Repeat("x", 5000)), 413, "-"},
		{"granted template", limited, form("topic", "https://example.com/books/42"), 200, "-"},
		{"not reserved lookalike", all, form("topic", "/.well-known/mercurex"), 200, "-"},
		{"not a URL", all, form("topic", "urn:example:.well-known/mercure"), 200, "-"},
		{"private", all, form("topic", "a", "private", ""), 200, "-"},
		{"retry zero", all, form("topic", "a", "retry", "0"), 200, "-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := e.publish(tt.token, tt.form)
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tt.status, body)
			}
			checkChallenge(t, resp, e.srv.URL, tt.errKey)
		})
	}
}

// checkChallenge checks the WWW-Authenticate header: errKey "-" means none,
// "" a bare challenge with the metadata URL, else that error code.
func checkChallenge(t *testing.T, resp *http.Response, base, errKey string) {
	t.Helper()
	got := resp.Header.Get("WWW-Authenticate")
	meta := `resource_metadata="` + base + MetadataPath + `"`
	switch errKey {
	case "-":
		if got != "" {
			t.Errorf("unexpected WWW-Authenticate %q", got)
		}
	case "":
		if got != "Bearer "+meta {
			t.Errorf("WWW-Authenticate %q, want %q", got, "Bearer "+meta)
		}
	default:
		prefix, suffix := `Bearer error="`+errKey+`", error_description="`, `", `+meta
		if !strings.HasPrefix(got, prefix) || !strings.HasSuffix(got, suffix) || len(got) <= len(prefix)+len(suffix) {
			t.Errorf("WWW-Authenticate %q, want %q, a description, and %q", got, prefix, suffix)
		}
	}
}

func TestPublishContentType(t *testing.T) {
	e := newEnv(t, nil)
	tok := classicToken(t, e.pubKey, []string{"*"}, nil)
	for ct, want := range map[string]int{
		"application/x-www-form-urlencoded; charset=UTF-8": 200,
		"text/plain":       400,
		"application/json": 400,
	} {
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+HubPath, strings.NewReader("topic=a&data=b"))
		req.Header.Set("Content-Type", ct)
		req.Header.Set("Authorization", "Bearer "+tok)
		if resp := e.do(req); resp.StatusCode != want {
			t.Errorf("Content-Type %q: status %d, want %d", ct, resp.StatusCode, want)
		}
	}
	// No Content-Type at all: the body is not parsed.
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+HubPath, strings.NewReader("topic=a"))
	req.Header.Set("Authorization", "Bearer "+tok)
	if resp := e.do(req); resp.StatusCode != 400 {
		t.Errorf("no Content-Type: status %d, want 400", resp.StatusCode)
	}
}

func TestPublishMalformedAuthorization(t *testing.T) {
	e := newEnv(t, nil)
	tok := classicToken(t, e.pubKey, []string{"*"}, nil)
	for name, hdr := range map[string][]string{
		"basic":        {"Basic " + tok},
		"short":        {"Bearer abc"},
		"two headers":  {"Bearer " + tok, "Bearer " + tok},
		"no separator": {"Bearer"},
	} {
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+HubPath, strings.NewReader("topic=a"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header["Authorization"] = hdr
		// A valid cookie does not rescue a malformed header.
		req.AddCookie(&http.Cookie{Name: DefaultCookieName, Value: tok})
		resp := e.do(req)
		if resp.StatusCode != 400 {
			t.Errorf("%s: status %d, want 400", name, resp.StatusCode)
		}
		checkChallenge(t, resp, e.srv.URL, "invalid_request")
	}
	// The scheme is case-insensitive.
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+HubPath, strings.NewReader("topic=a"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "bEaReR "+tok)
	if resp := e.do(req); resp.StatusCode != 200 {
		t.Errorf("bEaReR: status %d", resp.StatusCode)
	}
}

func TestPublishWithCookie(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.PublishOrigins = []string{"https://app.example.com", "https://*.trusted.example"} })
	tok := classicToken(t, e.pubKey, []string{"*"}, nil)
	post := func(cookie string, hdr map[string]string) int {
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+HubPath, strings.NewReader("topic=a"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(&http.Cookie{Name: cookie, Value: tok})
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp := e.do(req)
		if resp.StatusCode == 400 {
			checkChallenge(t, resp, e.srv.URL, "invalid_request")
		}
		return resp.StatusCode
	}
	tests := []struct {
		name   string
		cookie string
		hdr    map[string]string
		want   int
	}{
		{"allowed origin", DefaultCookieName, map[string]string{"Origin": "https://app.example.com"}, 200},
		{"allowed origin, other case", DefaultCookieName, map[string]string{"Origin": "HTTPS://APP.example.com"}, 200},
		{"wildcard origin", DefaultCookieName, map[string]string{"Origin": "https://a.trusted.example"}, 200},
		{"referer fallback", DefaultCookieName, map[string]string{"Referer": "https://app.example.com/page?x=1"}, 200},
		{"classic cookie", "mercureAuthorization", map[string]string{"Origin": "https://app.example.com"}, 200},
		{"no origin", DefaultCookieName, nil, 400},
		{"other origin", DefaultCookieName, map[string]string{"Origin": "https://evil.example"}, 400},
		{"other referer", DefaultCookieName, map[string]string{"Referer": "https://evil.example/"}, 400},
		{"suffix trick", DefaultCookieName, map[string]string{"Origin": "https://app.example.com.evil.example"}, 400},
	}
	for _, tt := range tests {
		if got := post(tt.cookie, tt.hdr); got != tt.want {
			t.Errorf("%s: status %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestPublishWithoutPublisherKey(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.PublisherKey = nil })
	resp := e.publish("", form("topic", "a"))
	if resp.StatusCode != http.StatusMethodNotAllowed || !strings.Contains(resp.Header.Get("Allow"), "GET") {
		t.Fatalf("status %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	req, _ := http.NewRequest(http.MethodPut, e.srv.URL+HubPath, nil)
	if resp := e.do(req); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("PUT: status %d", resp.StatusCode)
	}
}

func TestPublishFromGo(t *testing.T) {
	e := newEnv(t, nil)
	c := e.subscribe("topic=a", nil)
	id, err := e.h.Publish(t.Context(), Update{Topics: []string{"a"}, Data: "x", Type: "t", Retry: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if ev := c.next(); ev.ID != id || ev.Data != "x" || ev.Type != "t" {
		t.Fatalf("event %+v", ev)
	}
	if _, err := e.h.Publish(t.Context(), Update{Topics: []string{"/.well-known/mercure/x"}}); err == nil {
		t.Fatal("reserved topic accepted")
	}
	if _, err := e.h.Publish(t.Context(), Update{}); err == nil {
		t.Fatal("update without topic accepted")
	}
}
