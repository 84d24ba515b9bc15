package mercure

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sluicehq/sluice/hub"
	"github.com/sluicehq/sluice/store"
)

// testClock is a settable clock for Config.Now.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// TestTokenCacheReusesVerifiedTokens: a token is verified once and then
// served from the cache, for publishing and for subscribing, per key.
func TestTokenCacheReusesVerifiedTokens(t *testing.T) {
	e := newEnv(t, nil)
	tok := classicToken(t, e.pubKey, []string{"*"}, []string{"*"})
	for range 3 {
		if resp := e.publish(tok, form("topic", "a")); resp.StatusCode != 200 {
			t.Fatalf("publish: %d", resp.StatusCode)
		}
	}
	if n := e.h.tokens.len(); n != 1 {
		t.Fatalf("%d cached tokens after three publishes with one token, want 1", n)
	}
	if c := e.h.tokens.get(e.h.cfg.PublisherKey, tok, time.Now(), func() string { return "" }); c == nil || len(c.publish) != 1 {
		t.Fatalf("cached claims %+v, want the token's grant", c)
	}
	// The same string is a different entry for another key: signed with
	// the publisher's key, it is refused as a subscriber token however
	// often it was accepted for publishing.
	if resp, _ := e.get(HubPath+"?topic=a", bearer(tok)); resp.StatusCode != 401 {
		t.Fatalf("publisher-signed token used to subscribe: %d, want 401", resp.StatusCode)
	}
	if n := e.h.tokens.len(); n != 1 {
		t.Fatalf("%d cached tokens after a refused one, want 1: failures are not cached", n)
	}
	sub := classicToken(t, e.subKey, nil, []string{"*"})
	c := e.subscribe("topic=a", bearer(sub))
	c.close()
	if n := e.h.tokens.len(); n != 2 {
		t.Fatalf("%d cached tokens after a subscription, want 2", n)
	}
}

// TestTokenCacheRefusesForgeries: a token that differs from a cached one in
// its signature or its claims is verified, and refused, every time.
func TestTokenCacheRefusesForgeries(t *testing.T) {
	e := newEnv(t, nil)
	good := signClaims(t, pubSecret, jwt.MapClaims{"mercure": map[string]any{"publish": []string{"a"}}}, nil)
	if resp := e.publish(good, form("topic", "a")); resp.StatusCode != 200 {
		t.Fatalf("genuine token: %d", resp.StatusCode)
	}
	head, rest, _ := strings.Cut(good, ".")
	payload, sig, _ := strings.Cut(rest, ".")
	wider := signClaims(t, "not-the-publisher-secret-but-as-long-as-it", jwt.MapClaims{"mercure": map[string]any{"publish": []string{"*"}}}, nil)
	_, widerRest, _ := strings.Cut(wider, ".")
	widerPayload, _, _ := strings.Cut(widerRest, ".")
	flip := func(s string) string { // another valid base64url character at the start
		if s[0] == 'A' {
			return "B" + s[1:]
		}
		return "A" + s[1:]
	}
	forgeries := map[string]string{
		"other claims, cached signature": head + "." + widerPayload + "." + sig,
		"altered signature":              head + "." + payload + "." + flip(sig),
		"no signature":                   head + "." + payload + ".",
		"alg none":                       signNone(t, jwt.MapClaims{"mercure": map[string]any{"publish": []string{"*"}}}),
	}
	for name, tok := range forgeries {
		for range 2 {
			if resp := e.publish(tok, form("topic", "a")); resp.StatusCode != 401 {
				t.Fatalf("%s: status %d, want 401", name, resp.StatusCode)
			}
		}
	}
	if n := e.h.tokens.len(); n != 1 {
		t.Fatalf("%d cached tokens, want only the genuine one", n)
	}
	// The genuine token still grants only what it says.
	if resp := e.publish(good, form("topic", "b")); resp.StatusCode != 403 {
		t.Fatalf("cached token publishing beyond its grant: %d, want 403", resp.StatusCode)
	}
}

// signNone returns an unsigned token (alg "none").
func signNone(t *testing.T, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodNone, c).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestTokenCacheChecksTime: a cached token stops working when it expires,
// and a token refused before its nbf works once the time has come.
func TestTokenCacheChecksTime(t *testing.T) {
	start := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	clk := &testClock{t: start}
	e := newEnv(t, func(c *Config) { c.Now = clk.now })
	exp := signClaims(t, pubSecret, jwt.MapClaims{"exp": start.Add(time.Hour).Unix(), "mercure": map[string]any{"publish": []string{"*"}}}, nil)
	nbf := signClaims(t, pubSecret, jwt.MapClaims{"nbf": start.Add(10 * time.Minute).Unix(), "mercure": map[string]any{"publish": []string{"*"}}}, nil)
	modern := signClaims(t, pubSecret, jwt.MapClaims{"iss": testIssuer, "aud": e.resource(), "exp": start.Add(time.Hour).Unix(),
		"authorization_details": []any{map[string]any{"type": AuthorizationDetailType, "actions": []string{"publish"}, "topics": []any{map[string]any{"match": "*"}}}}},
		map[string]any{"typ": "at+jwt"})
	status := func(tok string) int {
		t.Helper()
		return e.publish(tok, form("topic", "a")).StatusCode
	}
	for _, tok := range []string{exp, modern} {
		if s := status(tok); s != 200 {
			t.Fatalf("valid token: %d", s)
		}
	}
	if s := status(nbf); s != 401 {
		t.Fatalf("token before its nbf: %d, want 401", s)
	}
	clk.set(start.Add(time.Hour - time.Second))
	for _, tok := range []string{exp, modern, nbf} {
		if s := status(tok); s != 200 {
			t.Fatalf("token within its validity, cached or not: %d", s)
		}
	}
	clk.set(start.Add(time.Hour))
	for _, tok := range []string{exp, modern} {
		if s := status(tok); s != 401 {
			t.Fatalf("cached token at its exp: %d, want 401", s)
		}
	}
	if s := status(nbf); s != 200 {
		t.Fatalf("token without exp: %d", s)
	}
	clk.set(start) // a clock set back: the cached nbf still applies
	if s := status(nbf); s != 401 {
		t.Fatalf("cached token before its nbf: %d, want 401", s)
	}
}

// TestTokenCacheChecksAudience: a modern token cached for one resource is
// verified again, and refused, when a request derives another one.
func TestTokenCacheChecksAudience(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.modernToken(e.pubKey, []Selector{{MatchExact, "*"}}, nil, nil)
	if resp := e.publish(tok, form("topic", "a")); resp.StatusCode != 200 {
		t.Fatalf("publish: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+HubPath, strings.NewReader("topic=a"))
	req.Host = "other.example"
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+tok)
	if resp := e.do(req); resp.StatusCode != 401 {
		t.Fatalf("cached modern token for another audience: %d, want 401", resp.StatusCode)
	}
	if resp := e.publish(tok, form("topic", "a")); resp.StatusCode != 200 {
		t.Fatalf("publish again: %d", resp.StatusCode)
	}
}

// TestTokenCacheBounded: the cache keeps at most TokenCacheSize tokens, and
// none when it is negative.
func TestTokenCacheBounded(t *testing.T) {
	for _, size := range []int{3, -1} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.TokenCacheSize = size })
			for i := range 10 {
				tok := signClaims(t, pubSecret, jwt.MapClaims{"jti": fmt.Sprint(i), "mercure": map[string]any{"publish": []string{"*"}}}, nil)
				for range 2 {
					if resp := e.publish(tok, form("topic", "a")); resp.StatusCode != 200 {
						t.Fatalf("publish: %d", resp.StatusCode)
					}
				}
			}
			if n, want := e.h.tokens.len(), max(size, 0); n != want {
				t.Fatalf("%d cached tokens, want %d", n, want)
			}
		})
	}
}

// TestTokenCacheKeysCopied: changing a Key after New does not change the
// hub's, so a cache entry always belongs to the key that verified it.
func TestTokenCacheKeysCopied(t *testing.T) {
	e := newEnv(t, nil)
	tok := classicToken(t, e.pubKey, []string{"*"}, nil)
	e.pubKey = mustKey(t, "another-secret-at-least-256-bits-long-too")
	if resp := e.publish(tok, form("topic", "a")); resp.StatusCode != 200 {
		t.Fatalf("publish with the key the hub was made with: %d", resp.StatusCode)
	}
	other := classicToken(t, e.pubKey, []string{"*"}, nil)
	if resp := e.publish(other, form("topic", "a")); resp.StatusCode != 401 {
		t.Fatalf("publish with the key set after New: %d, want 401", resp.StatusCode)
	}
}

func TestTokenCacheUnit(t *testing.T) {
	tc := newTokenCache(2)
	k1, k2 := &Key{}, &Key{}
	now := time.Unix(1000, 0)
	none := func() string { t.Fatal("resource asked for a classic token"); return "" }
	tc.put(k1, "t", &claims{expires: now.Add(time.Second)}, "")
	if tc.get(k1, "t", now, none) == nil {
		t.Fatal("miss after put")
	}
	if tc.get(k2, "t", now, none) != nil {
		t.Fatal("hit for another key")
	}
	if tc.get(k1, "t", now.Add(time.Second), none) != nil || tc.len() != 0 {
		t.Fatal("an expired entry was served or kept")
	}
	tc.put(k1, "m", &claims{modern: true}, "https://a")
	if tc.get(k1, "m", now, func() string { return "https://a" }) == nil {
		t.Fatal("modern token: miss for its audience")
	}
	if tc.get(k1, "m", now, func() string { return "https://b" }) != nil {
		t.Fatal("modern token: hit for another audience")
	}
	for _, tok := range []string{"a", "b", "c", "c"} {
		tc.put(k1, tok, &claims{}, "")
	}
	if n := tc.len(); n != 2 || tc.bytes != 2 {
		t.Fatalf("%d entries of %d bytes, want 2 of 2", n, tc.bytes)
	}
	var off *tokenCache = newTokenCache(-1)
	off.put(k1, "t", &claims{}, "")
	if off.get(k1, "t", now, none) != nil || off.len() != 0 {
		t.Fatal("a disabled cache served a token")
	}
}

// BenchmarkVerify is what a token the cache does not hold costs: a classic
// HS256 token with two grants, parsed, its signature and claims checked.
// A forged token costs as much up to its signature.
//
//	go test -run NONE -bench Verify -benchmem ./mercure/
func BenchmarkVerify(b *testing.B) {
	st := store.NewMemory(store.MemoryConfig{})
	defer st.Close()
	eng, err := hub.New(hub.Config{Store: st, Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	defer eng.Shutdown(context.Background())
	key := mustKey(b, pubSecret)
	h, err := New(Config{Hub: eng, PublisherKey: &key, Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	tok := classicToken(b, key, []string{"https://example.com/books/{id}", "https://example.com/a"}, nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.verify(tok, h.cfg.PublisherKey, ""); err != nil {
			b.Fatal(err)
		}
	}
}
