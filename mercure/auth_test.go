package mercure

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func rsaPEM(t *testing.T) (*rsa.PrivateKey, []byte, []byte) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return k, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: priv})
}

func TestParseKey(t *testing.T) {
	_, pubPEM, privPEM := rsaPEM(t)
	if k, err := ParseKey([]byte("secret"), ""); err != nil || k.Alg() != "HS256" {
		t.Fatalf("secret: %v %v", k, err)
	}
	if _, err := ParseKey([]byte("secret"), "HS512"); err != nil {
		t.Fatal(err)
	}
	if k, err := ParseKey(pubPEM, "RS256"); err != nil || k.sign != nil {
		t.Fatalf("public PEM: %v", err)
	}
	if k, err := ParseKey(privPEM, "RS256"); err != nil || k.sign == nil {
		t.Fatalf("private PEM: %v", err)
	}
	for name, tc := range map[string]struct {
		m   []byte
		alg string
	}{
		"HMAC with PEM":    {pubPEM, "HS256"},
		"PEM without alg":  {pubPEM, ""},
		"RSA with secret":  {[]byte("secret"), "RS256"},
		"ES with RSA key":  {pubPEM, "ES256"},
		"bad PEM":          {[]byte("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n"), "RS256"},
		"empty secret":     {nil, "HS256"},
		"unknown algoritm": {pubPEM, "RS999"},
	} {
		if _, err := ParseKey(tc.m, tc.alg); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("%s: err %v", name, err)
		}
	}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := NewPublicKey(ec, "ES256"); err != nil {
		t.Fatal(err)
	}
	if _, err := NewPublicKey(&ec.PublicKey, "RS256"); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("ES key as RS256: %v", err)
	}
}

func TestRS256Keys(t *testing.T) {
	_, pubPEM, pubPrivPEM := rsaPEM(t)
	_, subPEM, subPrivPEM := rsaPEM(t)
	pk, err := ParseKey(pubPEM, "RS256")
	if err != nil {
		t.Fatal(err)
	}
	sk, err := ParseKey(subPEM, "RS256")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *Config) { c.PublisherKey = &pk; c.SubscriberKey = &sk; c.Anonymous = false })
	pubTok, err := NewToken(pubPrivPEM, "RS256", []string{"*"}, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	subTok, err := NewToken(subPrivPEM, "RS256", nil, []string{"*"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c := e.subscribe("topic=a", bearer(subTok))
	resp := e.publish(pubTok, form("topic", "a", "private", "on"))
	if resp.StatusCode != 200 {
		t.Fatalf("publish: %d", resp.StatusCode)
	}
	if ev := c.next(); ev.Data != "" {
		t.Fatalf("event %+v", ev)
	}
	// Keys are per role: the subscriber's token cannot publish, and a
	// token signed with HS256 is refused by an RS256 key (no alg confusion).
	if resp := e.publish(subTok, form("topic", "a")); resp.StatusCode != 401 {
		t.Fatalf("subscriber token publishing: %d", resp.StatusCode)
	}
	hs := signClaims(t, string(pubPEM), jwt.MapClaims{"mercure": map[string]any{"publish": []string{"*"}}}, nil)
	if resp := e.publish(hs, form("topic", "a")); resp.StatusCode != 401 {
		t.Fatalf("HS256 token signed with the public key: %d", resp.StatusCode)
	}
}

func TestModernTokenValidation(t *testing.T) {
	e := newEnv(t, nil)
	aud := e.resource()
	detail := func(actions []any, topics []any) map[string]any {
		return map[string]any{"type": AuthorizationDetailType, "actions": actions, "topics": topics}
	}
	pubAll := []any{detail([]any{"publish"}, []any{map[string]any{"match": "*"}})}
	base := func() jwt.MapClaims {
		return jwt.MapClaims{"iss": testIssuer, "aud": aud, "exp": time.Now().Add(time.Hour).Unix(), "authorization_details": pubAll}
	}
	at := map[string]any{"typ": "at+jwt"}
	with := func(k string, v any) jwt.MapClaims {
		c := base()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	tests := []struct {
		name   string
		claims jwt.MapClaims
		header map[string]any
		status int
	}{
		{"valid", base(), at, 200},
		{"typ application/at+jwt", base(), map[string]any{"typ": "Application/AT+JWT"}, 200},
		{"aud array", with("aud", []string{"other", aud}), at, 200},
		{"no typ", base(), nil, 401},
		{"typ JWT", base(), map[string]any{"typ": "JWT"}, 401},
		{"no exp", with("exp", nil), at, 401},
		{"expired", with("exp", time.Now().Add(-time.Minute).Unix()), at, 401},
		{"not yet valid", with("nbf", time.Now().Add(time.Hour).Unix()), at, 401},
		{"no aud", with("aud", nil), at, 401},
		{"wrong aud", with("aud", "https://other.example/.well-known/mercure"), at, 401},
		{"no iss", with("iss", nil), at, 401},
		{"untrusted iss", with("iss", "https://evil.example"), at, 401},
		{"details not an array", with("authorization_details", map[string]any{}), at, 401},
		{"no actions", with("authorization_details", []any{detail([]any{}, []any{map[string]any{"match": "*"}})}), at, 401},
		{"non-string action", with("authorization_details", []any{detail([]any{1}, []any{map[string]any{"match": "*"}})}), at, 401},
		{"no topics", with("authorization_details", []any{detail([]any{"publish"}, []any{})}), at, 401},
		{"bare string topic", with("authorization_details", []any{detail([]any{"publish"}, []any{"*"})}), at, 401},
		{"empty match", with("authorization_details", []any{detail([]any{"publish"}, []any{map[string]any{"match": ""}})}), at, 401},
		{"unknown match_type", with("authorization_details", []any{detail([]any{"publish"}, []any{map[string]any{"match": "*", "match_type": "regex"}})}), at, 401},
		{"bad urlpattern", with("authorization_details", []any{detail([]any{"publish"}, []any{map[string]any{"match": "https://x/([", "match_type": "urlpattern"}})}), at, 401},
		{"one bad entry spoils all", with("authorization_details", append([]any{detail([]any{"publish"}, []any{"bad"})}, pubAll...)), at, 401},
		{"foreign entries ignored", with("authorization_details", append([]any{map[string]any{"type": "payment", "x": 1}}, pubAll...)), at, 200},
		{"unknown action ignored", with("authorization_details", []any{detail([]any{"publish", "dance"}, []any{map[string]any{"match": "*"}})}), at, 200},
		{"urlpattern grant", with("authorization_details", []any{detail([]any{"publish"}, []any{map[string]any{"match": "/things/:id", "match_type": "urlpattern"}})}), at, 200},
		{"no mercure entries", with("authorization_details", []any{}), at, 403},
		{"subscribe only", with("authorization_details", []any{detail([]any{"subscribe"}, []any{map[string]any{"match": "*"}})}), at, 403},
		{"classic claim ignored in modern token", with("mercure", map[string]any{"publish": []string{"*"}}), at, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := signClaims(t, pubSecret, tt.claims, tt.header)
			resp := e.publish(tok, form("topic", "/things/1"))
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			switch tt.status {
			case 401:
				checkChallenge(t, resp, e.srv.URL, "invalid_token")
			case 403:
				checkChallenge(t, resp, e.srv.URL, "insufficient_scope")
			}
		})
	}
}

func TestModernTokenLimits(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxGrants = 2; c.MaxSelectorLen = 10; c.MaxTokenSize = 2000 })
	tok := func(topics ...string) string {
		var ts []any
		for _, m := range topics {
			ts = append(ts, map[string]any{"match": m})
		}
		return signClaims(t, pubSecret, jwt.MapClaims{"iss": testIssuer, "aud": e.resource(), "exp": time.Now().Add(time.Hour).Unix(),
			"authorization_details": []any{map[string]any{"type": AuthorizationDetailType, "actions": []string{"publish"}, "topics": ts}}},
			map[string]any{"typ": "at+jwt"})
	}
	if resp := e.publish(tok("a", "b"), form("topic", "a")); resp.StatusCode != 200 {
		t.Fatalf("within limits: %d", resp.StatusCode)
	}
	if resp := e.publish(tok("a", "b", "c"), form("topic", "a")); resp.StatusCode != 401 {
		t.Fatalf("too many grants: %d", resp.StatusCode)
	}
	if resp := e.publish(tok("a", strings.Repeat("b", 11)), form("topic", "a")); resp.StatusCode != 401 {
		t.Fatalf("selector too long: %d", resp.StatusCode)
	}
	if resp := e.publish(tok("a", "b", strings.Repeat("c", 3000)), form("topic", "a")); resp.StatusCode != 401 {
		t.Fatalf("token too large: %d", resp.StatusCode)
	}
}

func TestClassicTokenLimits(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxClassicGrants = 2 })
	if resp := e.publish(classicToken(t, e.pubKey, []string{"a", "b"}, nil), form("topic", "a")); resp.StatusCode != 200 {
		t.Fatalf("within limits: %d", resp.StatusCode)
	}
	if resp := e.publish(classicToken(t, e.pubKey, []string{"a", "b", "c"}, nil), form("topic", "a")); resp.StatusCode != 401 {
		t.Fatalf("too many publish entries: %d", resp.StatusCode)
	}
	// Each array is bounded on its own, the subscribe one too.
	if resp := e.publish(classicToken(t, e.pubKey, []string{"a"}, []string{"x", "y", "z"}), form("topic", "a")); resp.StatusCode != 401 {
		t.Fatalf("too many subscribe entries: %d", resp.StatusCode)
	}
}

func TestModernTokenConfiguredResource(t *testing.T) {
	const res = "https://hub.example/.well-known/mercure"
	e := newEnv(t, func(c *Config) { c.Resource = res })
	ok, err := NewAccessToken(e.pubKey, AccessToken{Issuer: testIssuer, Audience: res, Publish: []Selector{{MatchURLPattern, "/books/:id"}}})
	if err != nil {
		t.Fatal(err)
	}
	if resp := e.publish(ok, form("topic", "/books/1")); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	// Relative patterns resolve against the resource: an absolute topic on
	// its origin matches too.
	if resp := e.publish(ok, form("topic", "https://hub.example/books/2")); resp.StatusCode != 200 {
		t.Fatalf("absolute topic: status %d", resp.StatusCode)
	}
	derived := e.modernToken(e.pubKey, []Selector{{MatchExact, "*"}}, nil, nil) // aud = the derived URL
	resp := e.publish(derived, form("topic", "a"))
	if resp.StatusCode != 401 {
		t.Fatalf("wrong aud: status %d", resp.StatusCode)
	}
	if got := resp.Header.Get("WWW-Authenticate"); !strings.Contains(got, `resource_metadata="https://hub.example/.well-known/oauth-protected-resource/.well-known/mercure"`) {
		t.Fatalf("challenge %q", got)
	}
}

func TestClassicTokens(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name   string
		claims jwt.MapClaims
		status int
	}{
		{"no exp", jwt.MapClaims{"mercure": map[string]any{"publish": []string{"*"}}}, 200},
		{"expired", jwt.MapClaims{"mercure": map[string]any{"publish": []string{"*"}}, "exp": time.Now().Add(-time.Minute).Unix()}, 401},
		{"nbf in the future", jwt.MapClaims{"mercure": map[string]any{"publish": []string{"*"}}, "nbf": time.Now().Add(time.Hour).Unix()}, 401},
		{"any aud and iss", jwt.MapClaims{"mercure": map[string]any{"publish": []string{"*"}}, "aud": "x", "iss": "y"}, 200},
		{"namespaced claim replaces", jwt.MapClaims{"mercure": map[string]any{"publish": []string{"*"}}, "https://mercure.rocks/": map[string]any{"publish": []string{"b"}}}, 403},
		{"namespaced claim", jwt.MapClaims{"https://mercure.rocks/": map[string]any{"publish": []string{"a"}}}, 200},
		{"empty publish", jwt.MapClaims{"mercure": map[string]any{"publish": []string{}}}, 403},
		{"object entries", jwt.MapClaims{"mercure": map[string]any{"publish": []any{map[string]any{"match": "/a/:x", "match_type": "urlpattern"}}}}, 403},
		{"template", jwt.MapClaims{"mercure": map[string]any{"publish": []string{"{x}"}}}, 200},
		{"malformed claim", jwt.MapClaims{"mercure": "nope"}, 401},
		{"malformed entry", jwt.MapClaims{"mercure": map[string]any{"publish": []any{42}}}, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := e.publish(signClaims(t, pubSecret, tt.claims, nil), form("topic", "a"))
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
		})
	}
	// The table's updates went through e.publish, which does not wait for
	// the engine to dispatch them: a subscription opened while it catches
	// up gets them live. Wait for them before subscribing.
	e.mustPublish(form("topic", "b"))
	// The classic query parameter carries a subscriber token.
	sub := classicToken(t, e.subKey, nil, []string{"a"})
	c := e.subscribe("topic=a&authorization="+sub, nil)
	e.mustPublish(form("topic", "a", "private", "on", "data", "secret"))
	if ev := c.next(); ev.Data != "secret" {
		t.Fatalf("event %+v", ev)
	}
	// Classic cookie name.
	c2 := e.subscribe("topic=a", http.Header{"Cookie": {"mercureAuthorization=" + sub}})
	e.mustPublish(form("topic", "a", "private", "on", "data", "secret2"))
	if ev := c2.next(); ev.Data != "secret2" {
		t.Fatalf("event %+v", ev)
	}
}

func TestNewTokenClaims(t *testing.T) {
	tok, err := NewToken([]byte("k"), "", []string{"a"}, []string{"b", "c"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var c jwt.MapClaims
	if _, err := jwt.ParseWithClaims(tok, &c, func(*jwt.Token) (any, error) { return []byte("k"), nil }); err != nil {
		t.Fatal(err)
	}
	m := c["mercure"].(map[string]any)
	if len(m["publish"].([]any)) != 1 || len(m["subscribe"].([]any)) != 2 || c["exp"] == nil {
		t.Fatalf("claims %v", c)
	}
	forever, _ := NewToken([]byte("k"), "", nil, []string{"*"}, 0)
	c = jwt.MapClaims{}
	if _, err := jwt.ParseWithClaims(forever, &c, func(*jwt.Token) (any, error) { return []byte("k"), nil }); err != nil || c["exp"] != nil {
		t.Fatalf("claims %v, %v", c, err)
	}
	pub, _, _ := rsaPEM(t)
	k, _ := NewPublicKey(&pub.PublicKey, "RS256")
	if _, err := NewAccessToken(k, AccessToken{}); !errors.Is(err, ErrCannotSign) {
		t.Fatalf("signing with a public key: %v", err)
	}
}
