package mercure

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/ssetest"

	"github.com/golang-jwt/jwt/v5"
)

// TestAuthErrorsSayWhy: a refused request learns why, in the challenge's
// error_description and in the body, in words it can act on; a request
// without a token gets a bare challenge (RFC 6750 §3.1) and the reason in
// the body. The hub logs the reason at debug level.
func TestAuthErrorsSayWhy(t *testing.T) {
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	const aud = "https://hub.example/.well-known/mercure"
	e := newEnv(t, func(c *Config) { c.Anonymous = false; c.Logger = logger })
	pinned := newEnv(t, func(c *Config) { c.Resource = aud; c.ClassicSkipIssuerAudience = false; c.Issuers = nil })
	expired := signClaims(t, subSecret, jwt.MapClaims{"mercure": map[string]any{}, "exp": time.Now().Add(-time.Hour).Unix()}, nil)
	notYet := signClaims(t, subSecret, jwt.MapClaims{"mercure": map[string]any{}, "nbf": time.Now().Add(time.Hour).Unix()}, nil)
	otherAud := signClaims(t, subSecret, jwt.MapClaims{"mercure": map[string]any{}, "aud": "https://other.example/.well-known/mercure"}, nil)
	books := classicToken(t, e.pubKey, []string{"https://example.com/books/{id}"}, nil)

	get := func(e *env, hdr http.Header) *http.Response {
		_, resp := e.open("topic=a", hdr)
		return resp
	}
	tests := []struct {
		name   string
		do     func() *http.Response
		status int
		code   string // the challenge's error, "" for a bare one
		why    string // in the body, and with ' for " in the description (when there is one)
	}{
		{"subscribe without a token", func() *http.Response { return get(e, nil) }, 401, "",
			"no token, and this hub admits no anonymous subscribers"},
		{"publish without a token", func() *http.Response { return e.publish("", form("topic", "a")) }, 401, "",
			"no token: publishing needs a JWT"},
		{"expired", func() *http.Response { return get(e, bearer(expired)) }, 401, "invalid_token", "the token has expired"},
		{"not valid yet", func() *http.Response { return get(e, bearer(notYet)) }, 401, "invalid_token", "not valid yet"},
		{"wrong audience", func() *http.Response { return get(pinned, bearer(otherAud)) }, 401, "invalid_token",
			`wrong audience: the token's aud must contain "` + aud + `"`},
		{"wrong key", func() *http.Response { return get(e, bearer(classicToken(t, e.pubKey, nil, nil))) }, 401, "invalid_token",
			"bad signature: the token is not signed with the hub's key"},
		{"no grant for the topic", func() *http.Response {
			return e.publish(books, form("topic", "https://example.com/books/1", "topic", "https://example.com/authors/1"))
		}, 403, "insufficient_scope", `the token has no publish grant for topic "https://example.com/authors/1"`},
		{"malformed header", func() *http.Response { return get(e, http.Header{"Authorization": {"Token x"}}) }, 400, "invalid_request",
			"the Authorization header is not a Bearer token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := tt.do()
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tt.status, body)
			}
			challenge := resp.Header.Get("WWW-Authenticate")
			desc := regexp.MustCompile(`error_description="([^"]*)"`).FindStringSubmatch(challenge)
			switch {
			case tt.code == "" && (desc != nil || strings.Contains(challenge, "error=")):
				t.Errorf("no token: challenge %q, want a bare one", challenge)
			case tt.code != "" && (desc == nil || !strings.Contains(desc[1], strings.ReplaceAll(tt.why, `"`, "'")) ||
				!strings.Contains(challenge, `error="`+tt.code+`"`)):
				t.Errorf("challenge %q, want error %q and a description saying %q", challenge, tt.code, tt.why)
			}
			if prefix := http.StatusText(tt.status) + ": "; !strings.HasPrefix(string(body), prefix) || !strings.Contains(string(body), tt.why) {
				t.Errorf("body %q, want %q and %q", body, prefix, tt.why)
			}
		})
	}
	if !strings.Contains(logs.String(), "the token has expired") || !strings.Contains(logs.String(), "level=DEBUG") {
		t.Errorf("the refusals are not logged at debug level with their reason:\n%s", logs.String())
	}
}

// TestAuthErrorDescriptionIsASCII: a reason quoting what the request sent
// (a topic with quotes, backslashes, non-ASCII, a long one) stays a valid
// error_description: printable ASCII without '"' or '\'.
func TestAuthErrorDescriptionIsASCII(t *testing.T) {
	e := newEnv(t, nil)
	tok := classicToken(t, e.pubKey, []string{"x"}, nil)
	topic := `a"b\c é ` + strings.Repeat("z", 500)
	resp := e.publish(tok, url.Values{"topic": {topic}})
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	desc := regexp.MustCompile(`error_description="([^"]*)"`).FindStringSubmatch(resp.Header.Get("WWW-Authenticate"))
	if desc == nil {
		t.Fatalf("challenge %q has no description", resp.Header.Get("WWW-Authenticate"))
	}
	for _, c := range []byte(desc[1]) {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			t.Fatalf("description %q has %q", desc[1], c)
		}
	}
	if len(desc[1]) > 300 {
		t.Errorf("description of %d bytes, want the topic clipped", len(desc[1]))
	}
}

// syncBuffer collects a server's log lines.
type syncBuffer = ssetest.Buffer

// TestAuthErrorReasonBounded: what an unauthenticated request sends
// (an Origin header, a token's kid or exp) reaches the reason of its
// refusal quoted, but never more than a bounded part of it, so that the
// challenge, the body and the debug log line stay small (an Origin of
// bytes 0x80-0xff used to come back four times its size, twice, and go
// to the log whole).
func TestAuthErrorReasonBounded(t *testing.T) {
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := newEnv(t, func(c *Config) { c.PublishOrigins = []string{"https://app.example.com"}; c.Logger = logger })
	k := testSigner{kid: "k", alg: "EdDSA", priv: testEdKey(t)}
	srv := newJWKSServer(t, k)
	je := jwksEnv(t, newTestJWKS(t, srv, &testClock{t: time.Unix(1e9, 0)}))
	je.h.log = logger
	longKid := k
	longKid.kid = strings.Repeat("\x01k", 1<<10)
	hugeExp := signClaims(t, pubSecret, jwt.MapClaims{"exp": json.Number("1" + strings.Repeat("0", 10<<10))}, nil)

	const maxDesc = 600
	for _, tt := range []struct {
		name string
		e    *env
		req  func() *http.Request
	}{
		{"cookie publish from a long origin", e, func() *http.Request {
			req, _ := http.NewRequest(http.MethodPost, e.srv.URL+HubPath, strings.NewReader("topic=a"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Origin", "https://"+strings.Repeat("\xff", 64<<10))
			req.AddCookie(&http.Cookie{Name: DefaultCookieName, Value: "x"})
			return req
		}},
		{"a token with a long exp", e, func() *http.Request {
			req, _ := http.NewRequest(http.MethodPost, e.srv.URL+HubPath, strings.NewReader("topic=a"))
			req.Header.Set("Authorization", "Bearer "+hugeExp)
			return req
		}},
		{"a token with a long kid", je, func() *http.Request {
			req, _ := http.NewRequest(http.MethodPost, je.srv.URL+HubPath, strings.NewReader("topic=a"))
			req.Header.Set("Authorization", "Bearer "+signWith(t, longKid, everything(), false))
			return req
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := len(logs.String())
			resp := tt.e.do(tt.req())
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 400 && resp.StatusCode != 401 {
				t.Fatalf("status %d, want 400 or 401", resp.StatusCode)
			}
			desc := regexp.MustCompile(`error_description="([^"]*)"`).FindStringSubmatch(resp.Header.Get("WWW-Authenticate"))
			if desc == nil {
				t.Fatalf("challenge %.300q has no description", resp.Header.Get("WWW-Authenticate"))
			}
			if len(desc[1]) > maxDesc || len(body) > maxDesc {
				t.Errorf("description of %d bytes, body of %d: want both within %d (%.200q)", len(desc[1]), len(body), maxDesc, desc[1])
			}
			if n := len(logs.String()) - before; n > 4*maxDesc {
				t.Errorf("the refusal logged %d bytes", n)
			}
		})
	}

}
