package mercure

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// TestOriginPatternsAnyCase: configured origins match whatever their case
// (they used to match only when written in lower case), for cookie
// publishes and CORS alike, and New leaves the caller's slices alone.
func TestOriginPatternsAnyCase(t *testing.T) {
	publish := []string{"https://App.Example.COM", "https://*.Trusted.Example"}
	cors := []string{"HTTPS://APP.EXAMPLE.COM"}
	e := newEnv(t, func(c *Config) { c.PublishOrigins, c.CORSOrigins = publish, cors })
	if publish[0] != "https://App.Example.COM" || cors[0] != "HTTPS://APP.EXAMPLE.COM" {
		t.Fatalf("New changed the caller's origins: %q %q", publish, cors)
	}
	tok := classicToken(t, e.pubKey, []string{"*"}, nil)
	for _, origin := range []string{"https://app.example.com", "https://APP.example.com", "https://x.trusted.example"} {
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+HubPath, strings.NewReader("topic=a"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", origin)
		req.AddCookie(&http.Cookie{Name: DefaultCookieName, Value: tok})
		if resp := e.do(req); resp.StatusCode != http.StatusOK {
			t.Errorf("cookie publish from %s with upper-case --publish-origins: %d, want 200", origin, resp.StatusCode)
		}
	}
	req, _ := http.NewRequest(http.MethodOptions, e.srv.URL+HubPath, nil)
	req.Header.Set("Origin", "https://app.example.com")
	req.Header.Set("Access-Control-Request-Method", "GET")
	if resp := e.do(req); resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Errorf("preflight with upper-case --cors-origins: %d %v, want the origin allowed", resp.StatusCode, resp.Header)
	}
}

// TestCookiePublishOriginNull: "Origin: null" (a sandboxed frame, a data:
// URL) hides where a request comes from; the hub must not believe its
// Referer instead, nor let "*" match it. A bearer-token publish does not
// depend on origins.
func TestCookiePublishOriginNull(t *testing.T) {
	for _, origins := range [][]string{{"https://app.example.com"}, {"*"}} {
		e := newEnv(t, func(c *Config) { c.PublishOrigins = origins })
		tok := classicToken(t, e.pubKey, []string{"*"}, nil)
		for _, tt := range []struct {
			name   string
			hdr    http.Header
			cookie bool
			want   int
		}{
			{"null origin, allowed referer", http.Header{"Origin": {"null"}, "Referer": {"https://app.example.com/page"}}, true, 400},
			{"null origin", http.Header{"Origin": {"null"}}, true, 400},
			{"empty origin, allowed referer", http.Header{"Origin": {""}, "Referer": {"https://app.example.com/page"}}, true, 400},
			{"no origin, allowed referer", http.Header{"Referer": {"https://app.example.com/page"}}, true, 200},
			{"null origin, bearer token", http.Header{"Origin": {"null"}, "Authorization": {"Bearer " + tok}}, false, 200},
		} {
			req, _ := http.NewRequest(http.MethodPost, e.srv.URL+HubPath, strings.NewReader("topic=a"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for k, v := range tt.hdr {
				req.Header[k] = v
			}
			if tt.cookie {
				req.AddCookie(&http.Cookie{Name: DefaultCookieName, Value: tok})
			}
			if resp := e.do(req); resp.StatusCode != tt.want {
				t.Errorf("publish origins %q, %s: %d, want %d", origins, tt.name, resp.StatusCode, tt.want)
			}
		}
	}
}

// TestHeadValidatesCursor: HEAD answers the cursor back in its headers;
// it refuses (400, nothing echoed) the cursors a GET is refused for.
func TestHeadValidatesCursor(t *testing.T) {
	e := newEnv(t, nil)
	long := strings.Repeat("x", 4096)
	for _, tt := range []struct {
		name  string
		query string
		hdr   http.Header
	}{
		{"LF in last_event_id", "&last_event_id=" + url.QueryEscape("a\nSet-Cookie: x=y"), nil},
		{"CR in lastEventID", "&lastEventID=" + url.QueryEscape("a\rb"), nil},
		{"NUL in lastEventId", "&lastEventId=" + url.QueryEscape("a\x00b"), nil},
		{"long last_event_id", "&last_event_id=" + long, nil},
		{"long header", "", http.Header{"Last-Event-Id": {long}}},
	} {
		for _, method := range []string{http.MethodHead, http.MethodGet} {
			req, _ := http.NewRequest(method, e.srv.URL+HubPath+"?topic=a"+tt.query, nil)
			for k, v := range tt.hdr {
				req.Header[k] = v
			}
			resp := e.do(req)
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Mercure-Last-Event-ID") != "" || resp.Header.Get("Last-Event-ID") != "" {
				t.Errorf("%s %s: %d, cursor headers %q %q; want 400 without them", method, tt.name,
					resp.StatusCode, resp.Header.Get("Mercure-Last-Event-ID"), resp.Header.Get("Last-Event-ID"))
			}
		}
	}
	// A valid cursor is still echoed.
	req, _ := http.NewRequest(http.MethodHead, e.srv.URL+HubPath+"?topic=a&last_event_id=abc", nil)
	if resp := e.do(req); resp.StatusCode != 200 || resp.Header.Get("Mercure-Last-Event-ID") != "abc" {
		t.Errorf("HEAD with a valid cursor: %d %v", resp.StatusCode, resp.Header)
	}
}

// TestClassicTokensIssuerAudience: with Issuers or Resource configured, a
// classic token must carry a listed iss and that aud (it used to skip
// both); ClassicSkipIssuerAudience accepts them without, as before. Modern
// tokens are checked either way.
func TestClassicTokensIssuerAudience(t *testing.T) {
	const res = "https://hub.example/.well-known/mercure"
	grant := map[string]any{"publish": []string{"*"}, "subscribe": []string{"*"}}
	claims := func(kv ...any) jwt.MapClaims {
		c := jwt.MapClaims{"mercure": grant}
		for i := 0; i+1 < len(kv); i += 2 {
			c[kv[i].(string)] = kv[i+1]
		}
		return c
	}
	type tokenCase struct {
		name   string
		claims jwt.MapClaims
		want   int
	}
	for _, cfg := range []struct {
		name     string
		issuers  []string
		resource string
		lax      bool
		tokens   []tokenCase
	}{
		{"issuers", []string{testIssuer}, "", false, []tokenCase{
			{"no iss", claims(), 401},
			{"other iss", claims("iss", "https://evil.example"), 401},
			{"listed iss", claims("iss", testIssuer), 200},
			{"listed iss, any aud (none configured)", claims("iss", testIssuer, "aud", "whatever"), 200},
		}},
		{"issuers and resource", []string{testIssuer}, res, false, []tokenCase{
			{"no iss nor aud", claims(), 401},
			{"listed iss, no aud", claims("iss", testIssuer), 401},
			{"listed iss, other aud", claims("iss", testIssuer, "aud", "https://other.example/.well-known/mercure"), 401},
			{"other iss, the aud", claims("iss", "https://evil.example", "aud", res), 401},
			{"listed iss, the aud", claims("iss", testIssuer, "aud", res), 200},
			{"listed iss, the aud among others", claims("iss", testIssuer, "aud", []string{"x", res}), 200},
		}},
		{"resource only", nil, res, false, []tokenCase{
			{"no aud", claims(), 401},
			{"the aud, no iss", claims("aud", res), 200},
		}},
		{"neither", nil, "", false, []tokenCase{
			{"no iss nor aud", claims(), 200},
			{"any iss and aud", claims("iss", "x", "aud", "y"), 200},
		}},
		{"lax", []string{testIssuer}, res, true, []tokenCase{
			{"no iss nor aud", claims(), 200},
			{"other iss and aud", claims("iss", "x", "aud", "y"), 200},
		}},
	} {
		t.Run(cfg.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) {
				c.Issuers, c.Resource, c.ClassicSkipIssuerAudience = cfg.issuers, cfg.resource, cfg.lax
			})
			for _, tt := range cfg.tokens {
				if resp := e.publish(signClaims(t, pubSecret, tt.claims, nil), form("topic", "a")); resp.StatusCode != tt.want {
					t.Errorf("publish, %s: %d, want %d", tt.name, resp.StatusCode, tt.want)
				}
				_, resp := e.open("topic=a", bearer(signClaims(t, subSecret, tt.claims, nil)))
				if resp.StatusCode != tt.want {
					t.Errorf("subscribe, %s: %d, want %d", tt.name, resp.StatusCode, tt.want)
				}
			}
			if cfg.lax && len(cfg.issuers) > 0 {
				// Modern tokens keep their checks.
				bad, err := NewAccessToken(e.pubKey, AccessToken{Issuer: "https://evil.example", Audience: cfg.resource, Publish: []Selector{{MatchExact, "a"}}})
				if err != nil {
					t.Fatal(err)
				}
				if resp := e.publish(bad, form("topic", "a")); resp.StatusCode != 401 {
					t.Errorf("lax: modern token from an unlisted issuer: %d, want 401", resp.StatusCode)
				}
			}
		})
	}
}
