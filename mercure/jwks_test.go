package mercure

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// testSigner is a key of a test JWKS: its private half signs tokens.
type testSigner struct {
	kid    string
	alg    string // the token's alg
	jwkAlg string // the JWK's alg member ("" for none)
	priv   crypto.Signer
}

var (
	rsaKeyOnce sync.Once
	rsaKeys    [2]*rsa.PrivateKey
)

// testRSAKey returns one of two RSA keys generated once per test binary
// (generating is slow under -race).
func testRSAKey(t testing.TB, i int) *rsa.PrivateKey {
	t.Helper()
	rsaKeyOnce.Do(func() {
		for j := range rsaKeys {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			rsaKeys[j] = k
		}
	})
	return rsaKeys[i]
}

func testECKey(t testing.TB, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func testEdKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// jwkOf returns the public JWK of s as a JSON object.
func jwkOf(s testSigner) map[string]any {
	m := map[string]any{"kid": s.kid, "use": "sig"}
	if s.jwkAlg != "" {
		m["alg"] = s.jwkAlg
	}
	switch k := s.priv.Public().(type) {
	case *rsa.PublicKey:
		m["kty"], m["n"], m["e"] = "RSA", b64u(k.N.Bytes()), b64u(big.NewInt(int64(k.E)).Bytes())
	case *ecdsa.PublicKey:
		b, _ := k.Bytes()
		size := (k.Curve.Params().BitSize + 7) / 8
		m["kty"], m["crv"], m["x"], m["y"] = "EC", k.Curve.Params().Name, b64u(b[1:1+size]), b64u(b[1+size:])
	case ed25519.PublicKey:
		m["kty"], m["crv"], m["x"] = "OKP", "Ed25519", b64u(k)
	}
	return m
}

// signWith signs claims with s, with its kid unless noKid.
func signWith(t testing.TB, s testSigner, claims jwt.MapClaims, noKid bool) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.GetSigningMethod(s.alg), claims)
	if !noKid {
		tok.Header["kid"] = s.kid
	}
	out, err := tok.SignedString(s.priv)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// everything is the claims of a classic token that may publish and
// subscribe to every topic for an hour.
func everything() jwt.MapClaims {
	return jwt.MapClaims{
		"mercure": map[string]any{"publish": []string{"*"}, "subscribe": []string{"*"}},
		"exp":     time.Now().Add(time.Hour).Unix(),
	}
}

// jwksServer serves a JWK Set that a test changes, over real HTTP on
// loopback, and counts the fetches.
type jwksServer struct {
	srv     *httptest.Server
	fetches atomic.Int64

	mu      sync.Mutex
	doc     []byte
	gate    chan struct{} // when set, each fetch waits for it to close
	arrived chan struct{} // when set, each fetch sends on it first
}

func newJWKSServer(t *testing.T, keys ...testSigner) *jwksServer {
	t.Helper()
	s := &jwksServer{}
	s.set(keys...)
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		doc, gate, arrived := s.doc, s.gate, s.arrived
		s.mu.Unlock()
		if arrived != nil {
			arrived <- struct{}{}
		}
		if gate != nil {
			<-gate
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(doc)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// set replaces the keys served.
func (s *jwksServer) set(keys ...testSigner) {
	ks := make([]any, len(keys))
	for i, k := range keys {
		ks[i] = jwkOf(k)
	}
	s.setRaw(map[string]any{"keys": ks})
}

func (s *jwksServer) setRaw(doc any) {
	b, err := json.Marshal(doc)
	if err != nil {
		panic(err)
	}
	s.mu.Lock()
	s.doc = b
	s.mu.Unlock()
}

// newTestJWKS returns a JWKS on srv whose rate limit runs on clock, loaded.
func newTestJWKS(t *testing.T, srv *jwksServer, clock *testClock) *JWKS {
	t.Helper()
	s, err := NewJWKS(JWKSConfig{URL: srv.srv.URL + "/jwks", Logger: quietLogger(), Now: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

// jwksEnv is a hub whose publishers and subscribers are verified with set.
func jwksEnv(t *testing.T, set *JWKS) *env {
	t.Helper()
	return newEnv(t, func(c *Config) {
		k := set.Key()
		c.PublisherKey, c.SubscriberKey = &k, &k
		c.Anonymous = false
	})
}

func (e *env) publishStatus(tok string) int {
	e.t.Helper()
	code, err := e.tryPublish(tok)
	if err != nil {
		e.t.Fatal(err)
	}
	return code
}

// tryPublish publishes with tok and returns the status; it may be called
// from any goroutine.
func (e *env) tryPublish(tok string) (int, error) {
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+HubPath, strings.NewReader(form("topic", "https://example.com/a", "data", "x").Encode()))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// TestJWKSRotation: a token signed with a key added to the set is
// accepted through the refetch its unknown kid triggers (once the rate
// limit allows); a token signed with a key removed from the set is
// refused after the next refresh, though the hub had cached it.
func TestJWKSRotation(t *testing.T) {
	k1 := testSigner{kid: "k1", alg: "RS256", jwkAlg: "RS256", priv: testRSAKey(t, 0)}
	k2 := testSigner{kid: "k2", alg: "ES256", priv: testECKey(t, elliptic.P256())}
	srv := newJWKSServer(t, k1)
	clock := &testClock{t: time.Unix(1e9, 0)}
	set := newTestJWKS(t, srv, clock)
	e := jwksEnv(t, set)
	if err := set.Ready(); err != nil {
		t.Fatalf("Ready after a fetch: %v", err)
	}

	old := signWith(t, k1, everything(), false)
	if got := e.publishStatus(old); got != 200 {
		t.Fatalf("token of k1: %d, want 200", got)
	}
	if e.h.tokens.len() != 1 {
		t.Fatalf("%d cached tokens, want 1", e.h.tokens.len())
	}
	c := e.subscribe("topic=https://example.com/a", bearer(old))
	c.close()

	// The issuer rotates: k2 signs from now on, k1 is still published.
	srv.set(k1, k2)
	fresh := signWith(t, k2, everything(), false)
	if got := e.publishStatus(fresh); got != 401 {
		t.Fatalf("token of k2 within the refetch interval of the last fetch: %d, want 401", got)
	}
	if n := srv.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches, want 1: the unknown kid came too soon after the first fetch", n)
	}
	clock.set(clock.now().Add(DefaultJWKSMinRefetchInterval))
	if got := e.publishStatus(fresh); got != 200 {
		t.Fatalf("token of k2 once a refetch is allowed: %d, want 200", got)
	}
	if n := srv.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
	if got := e.publishStatus(old); got != 200 {
		t.Fatalf("token of k1 while k1 is still in the set: %d, want 200", got)
	}

	// k1 is withdrawn. Until the hub refreshes, it still verifies (the
	// bound is the refresh interval); from the refresh on it does not,
	// cached or not.
	srv.set(k2)
	if got := e.publishStatus(old); got != 200 {
		t.Fatalf("token of k1 before the refresh: %d, want 200", got)
	}
	if err := set.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := e.publishStatus(old); got != 401 {
		t.Fatalf("token of a withdrawn key after the refresh: %d, want 401", got)
	}
	if resp, _ := e.get(HubPath+"?topic=https://example.com/a", bearer(old)); resp.StatusCode != 401 {
		t.Fatalf("subscribing with the token of a withdrawn key: %d, want 401", resp.StatusCode)
	}
	if got := e.publishStatus(fresh); got != 200 {
		t.Fatalf("token of k2 after the refresh: %d, want 200", got)
	}
	if n := srv.fetches.Load(); n != 3 {
		t.Fatalf("%d fetches, want 3: an unknown kid refetched within the rate limit", n)
	}
}

// TestJWKSRefreshKeepsCacheWhenUnchanged: a refresh that fetches the same
// document keeps the verified tokens cached.
func TestJWKSRefreshKeepsCacheWhenUnchanged(t *testing.T) {
	k := testSigner{kid: "k", alg: "EdDSA", priv: testEdKey(t)}
	srv := newJWKSServer(t, k)
	set := newTestJWKS(t, srv, &testClock{t: time.Unix(1e9, 0)})
	e := jwksEnv(t, set)
	tok := signWith(t, k, everything(), false)
	if got := e.publishStatus(tok); got != 200 {
		t.Fatalf("publish: %d", got)
	}
	key := e.h.cfg.PublisherKey
	if e.h.tokens.get(key, tok, time.Now(), func() string { return "" }) == nil {
		t.Fatal("the token is not cached")
	}
	if err := set.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if e.h.tokens.get(key, tok, time.Now(), func() string { return "" }) == nil {
		t.Fatal("a refresh that changed nothing dropped the cached token")
	}
	srv.set(k, testSigner{kid: "other", alg: "EdDSA", priv: testEdKey(t)})
	if err := set.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if e.h.tokens.get(key, tok, time.Now(), func() string { return "" }) != nil {
		t.Fatal("a changed key set kept the cached token")
	}
	if got := e.publishStatus(tok); got != 200 {
		t.Fatalf("publish after the set changed, with its key still in it: %d", got)
	}
}

// TestJWKSUnknownKidFlood: tokens with made-up kids, sent at once, cause
// no fetch within the refetch interval, and one fetch once it has passed,
// however many there are; they are all refused.
func TestJWKSUnknownKidFlood(t *testing.T) {
	k := testSigner{kid: "k", alg: "ES256", priv: testECKey(t, elliptic.P256())}
	srv := newJWKSServer(t, k)
	clock := &testClock{t: time.Unix(1e9, 0)}
	set := newTestJWKS(t, srv, clock)
	e := jwksEnv(t, set)
	const flood = 200
	send := func() {
		t.Helper()
		toks := make([]string, flood)
		for i := range toks {
			bogus := k
			bogus.kid = fmt.Sprintf("bogus-%d", i)
			toks[i] = signWith(t, bogus, everything(), false)
		}
		var wg sync.WaitGroup
		errs := make(chan error, flood)
		for _, tok := range toks {
			wg.Go(func() {
				if code, err := e.tryPublish(tok); err != nil || code != 401 {
					errs <- fmt.Errorf("status %d, err %v, want 401", code, err)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("a token with an unknown kid: %v", err)
		}
	}
	send()
	if n := srv.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches after %d unknown kids within the refetch interval, want 1 (the first load)", n, flood)
	}
	// Once the interval has passed, the flood makes one fetch. The JWKS
	// answers it only after the flood began waiting, so the other tokens
	// either wait for that same fetch or are refused by the rate limit.
	clock.set(clock.now().Add(DefaultJWKSMinRefetchInterval))
	gate, arrived := make(chan struct{}), make(chan struct{}, flood)
	srv.mu.Lock()
	srv.gate, srv.arrived = gate, arrived
	srv.mu.Unlock()
	go func() {
		<-arrived
		close(gate)
	}()
	send()
	if n := srv.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches after a second flood of %d once the interval passed, want 2", n, flood)
	}
	if got := e.publishStatus(signWith(t, k, everything(), false)); got != 200 {
		t.Fatalf("the genuine key after the flood: %d, want 200", got)
	}
}

// TestJWKSAlgorithms: which tokens a JWKS key accepts, by the token's alg
// and kid and the key's type and alg member.
func TestJWKSAlgorithms(t *testing.T) {
	rsaKey := testRSAKey(t, 1)
	p256, p384 := testECKey(t, elliptic.P256()), testECKey(t, elliptic.P384())
	ed := testEdKey(t)
	served := []testSigner{
		{kid: "rsa", alg: "RS256", priv: rsaKey}, // no alg member: any RSA alg
		{kid: "rsa2", alg: "RS256", jwkAlg: "RS256", priv: testRSAKey(t, 0)},
		{kid: "rsa-ps", alg: "PS256", jwkAlg: "PS256", priv: p256}, // wrong type for its alg: skipped
		{kid: "ec", alg: "ES256", jwkAlg: "ES256", priv: p256},
		{kid: "ec384", alg: "ES384", priv: p384},
		{kid: "ed", alg: "EdDSA", priv: ed},
	}
	srv := newJWKSServer(t, served...)
	doc := map[string]any{}
	_ = json.Unmarshal(srv.doc, &doc)
	// An HMAC key in the set, and an encryption key.
	doc["keys"] = append(doc["keys"].([]any),
		map[string]any{"kty": "oct", "kid": "hmac", "k": b64u([]byte("a shared secret in a public document"))},
		map[string]any{"kty": "oct", "kid": "hmac-alg", "alg": "HS256", "k": b64u([]byte("a shared secret in a public document"))},
		jwkOfUse(testSigner{kid: "enc", priv: rsaKey}, "enc"),
	)
	srv.setRaw(doc)
	set := newTestJWKS(t, srv, &testClock{t: time.Unix(1e9, 0)})
	e := jwksEnv(t, set)

	hmacTok := func(kid string) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, everything())
		tok.Header["kid"] = kid
		s, _ := tok.SignedString([]byte("a shared secret in a public document"))
		return s
	}
	noneTok := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodNone, everything())
		tok.Header["kid"] = "rsa"
		s, _ := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
		return s
	}
	for _, tc := range []struct {
		name string
		tok  string
		want int
	}{
		{"RS256 by its kid", signWith(t, served[0], everything(), false), 200},
		{"PS256 with an RSA key without alg", signWith(t, testSigner{kid: "rsa", alg: "PS256", priv: rsaKey}, everything(), false), 200},
		{"RS512 with an RSA key without alg", signWith(t, testSigner{kid: "rsa", alg: "RS512", priv: rsaKey}, everything(), false), 200},
		{"ES256 by its kid", signWith(t, served[3], everything(), false), 200},
		{"ES384 on P-384", signWith(t, served[4], everything(), false), 200},
		{"EdDSA by its kid", signWith(t, served[5], everything(), false), 200},
		{"ES384 with a key whose alg is ES256", signWith(t, testSigner{kid: "ec", alg: "ES384", priv: p384}, everything(), false), 401},
		{"a key whose alg does not fit its type", signWith(t, testSigner{kid: "rsa-ps", alg: "ES256", priv: p256}, everything(), false), 401},
		{"RS256 naming an EC key's kid", signWith(t, testSigner{kid: "ec", alg: "RS256", priv: rsaKey}, everything(), false), 401},
		{"HS256 with an oct key of the set", hmacTok("hmac"), 401},
		{"HS256 with an oct key with alg HS256", hmacTok("hmac-alg"), 401},
		{"HS256 naming an RSA kid (alg confusion)", hmacTok("rsa"), 401},
		{"alg none", noneTok(), 401},
		{"an encryption key", signWith(t, testSigner{kid: "enc", alg: "RS256", priv: rsaKey}, everything(), false), 401},
		{"no kid, one key for the alg", signWith(t, served[5], everything(), true), 200},
		{"no kid, several keys for the alg", signWith(t, served[0], everything(), true), 401},
		{"another key under a served kid", signWith(t, testSigner{kid: "ec", alg: "ES256", priv: testECKey(t, elliptic.P256())}, everything(), false), 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := e.publishStatus(tc.tok); got != tc.want {
				t.Fatalf("status %d, want %d", got, tc.want)
			}
		})
	}
	// An EC key verifies only the alg of its curve (the JWT library, which
	// cannot sign such a token, would refuse its signature length too).
	for alg, pub := range map[string]any{"ES256": &p384.PublicKey, "ES384": &p256.PublicKey, "ES512": &p256.PublicKey} {
		if jwksFits(alg, pub) {
			t.Errorf("%s fits a %s key", alg, pub.(*ecdsa.PublicKey).Curve.Params().Name)
		}
	}
}

func jwkOfUse(s testSigner, use string) map[string]any {
	m := jwkOf(s)
	m["use"] = use
	return m
}

// TestParseJWKS: which keys of a document are usable, and which documents
// are refused whole.
func TestParseJWKS(t *testing.T) {
	rsaKey := testRSAKey(t, 0)
	good := jwkOf(testSigner{kid: "rsa", priv: rsaKey})
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	p256 := jwkOf(testSigner{kid: "ec", priv: testECKey(t, elliptic.P256())})
	with := func(m map[string]any, kv ...any) map[string]any {
		c := map[string]any{}
		for k, v := range m {
			c[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(c, kv[i].(string))
			} else {
				c[kv[i].(string)] = kv[i+1]
			}
		}
		return c
	}
	offCurve := with(p256, "y", b64u(make([]byte, 32)))
	for _, tc := range []struct {
		name string
		key  any
		ok   bool
	}{
		{"RSA", good, true},
		{"RSA with padded base64", with(good, "n", base64.URLEncoding.EncodeToString(rsaKey.N.Bytes())), true},
		{"EC P-256", p256, true},
		{"EC P-521", jwkOf(testSigner{kid: "ec5", priv: testECKey(t, elliptic.P521())}), true},
		{"Ed25519", jwkOf(testSigner{kid: "ed", priv: testEdKey(t)}), true},
		{"key_ops verify", with(good, "key_ops", []string{"verify"}), true},
		{"RSA of 1024 bits", jwkOf(testSigner{kid: "small", priv: small}), false},
		{"RSA with an even e", with(good, "e", b64u([]byte{1, 0, 0})), false},
		{"RSA with a huge e", with(good, "e", b64u(make([]byte, 9))), false},
		{"RSA without n", with(good, "n", nil), false},
		{"use enc", with(good, "use", "enc"), false},
		{"key_ops without verify", with(good, "key_ops", []string{"encrypt"}), false},
		{"alg RSA-OAEP", with(good, "alg", "RSA-OAEP"), false},
		{"alg none", with(good, "alg", "none"), false},
		{"alg HS256", with(good, "alg", "HS256"), false},
		{"alg ES256 on an RSA key", with(good, "alg", "ES256"), false},
		{"alg ES384 on P-256", with(p256, "alg", "ES384"), false},
		{"EC point off the curve", offCurve, false},
		{"EC with a short x", with(p256, "x", b64u(make([]byte, 31))), false},
		{"EC curve secp256k1", with(p256, "crv", "secp256k1"), false},
		{"OKP X25519", map[string]any{"kty": "OKP", "crv": "X25519", "x": b64u(make([]byte, 32))}, false},
		{"oct", map[string]any{"kty": "oct", "k": b64u([]byte("secret"))}, false},
		{"not an object", "a string", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, _ := json.Marshal(map[string]any{"keys": []any{tc.key}})
			set, skipped, err := parseJWKS(body)
			if err != nil {
				t.Fatal(err)
			}
			if got := len(set.keys) == 1; got != tc.ok {
				t.Fatalf("usable %v, want %v (skipped: %q)", got, tc.ok, skipped)
			}
		})
	}
	for _, doc := range []string{``, `[]`, `{}`, `{"keys":{}}`, `{"keys":null}`, `not json`} {
		if _, _, err := parseJWKS([]byte(doc)); err == nil {
			t.Errorf("document %q accepted", doc)
		}
	}
}

// TestJWKSURLRules: https, or http to loopback only; no credentials;
// redirects under the same rule.
func TestJWKSURLRules(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"https://issuer.example/.well-known/jwks.json", true},
		{"http://127.0.0.1:8080/jwks", true},
		{"http://127.9.9.9/jwks", true},
		{"http://localhost/jwks", true},
		{"http://[::1]:9/jwks", true},
		{"http://issuer.example/jwks", false},
		{"http://10.0.0.1/jwks", false},
		{"http://localhost.example/jwks", false},
		{"ftp://issuer.example/jwks", false},
		{"https://user:pass@issuer.example/jwks", false},
		{"/jwks", false},
		{"", false},
	} {
		_, err := NewJWKS(JWKSConfig{URL: tc.url})
		if (err == nil) != tc.ok {
			t.Errorf("%q: err %v, want ok=%v", tc.url, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrConfig) {
			t.Errorf("%q: %v does not wrap ErrConfig", tc.url, err)
		}
	}
	var hits atomic.Int64
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		switch r.URL.Path {
		case "/away":
			http.Redirect(w, r, "http://issuer.invalid/jwks", http.StatusFound)
		case "/loop":
			http.Redirect(w, r, "/loop", http.StatusFound)
		}
	}))
	defer redirect.Close()
	for _, path := range []string{"/away", "/loop"} {
		s, err := NewJWKS(JWKSConfig{URL: redirect.URL + path, Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		hits.Store(0)
		if err := s.Refresh(t.Context()); !errors.Is(err, ErrJWKSUnavailable) {
			t.Fatalf("%s: %v, want ErrJWKSUnavailable", path, err)
		}
		if path == "/loop" && hits.Load() != jwksMaxRedirects {
			t.Fatalf("%d requests for a redirect loop, want %d", hits.Load(), jwksMaxRedirects)
		}
	}
}

// TestJWKSResponseBounds: a response larger than MaxSize is refused,
// whether it announces its length or not, and so is any status but 200;
// the last good set stays in use.
func TestJWKSResponseBounds(t *testing.T) {
	k := testSigner{kid: "k", alg: "EdDSA", priv: testEdKey(t)}
	doc, _ := json.Marshal(map[string]any{"keys": []any{jwkOf(k)}})
	var mode atomic.Value
	mode.Store("ok")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pad := strings.Repeat(" ", 1024)
		switch mode.Load() {
		case "ok":
			_, _ = w.Write(doc)
		case "large":
			w.Header().Set("Content-Length", fmt.Sprint(len(doc)+len(pad)))
			_, _ = w.Write(append(doc, pad...))
		case "large-chunked":
			_, _ = w.Write(doc)
			w.(http.Flusher).Flush()
			_, _ = w.Write([]byte(pad))
		case "500":
			http.Error(w, "down", http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	s, err := NewJWKS(JWKSConfig{URL: srv.URL, MaxSize: int64(len(doc)) + 100, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"large", "large-chunked", "500"} {
		mode.Store(m)
		if err := s.Refresh(t.Context()); !errors.Is(err, ErrJWKSUnavailable) {
			t.Fatalf("%s: %v, want ErrJWKSUnavailable", m, err)
		}
		if err := s.Ready(); err != nil {
			t.Fatalf("%s: a failed refresh made a loaded set unready: %v", m, err)
		}
		if key, _ := s.set.Load().find("k", true, "EdDSA"); key == nil {
			t.Fatalf("%s: the last good set was dropped", m)
		}
	}
}

// roundTripFunc is an http.RoundTripper in a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// fakeJWKS is an in-memory JWKS endpoint for synctest bubbles, where
// real sockets are not allowed: it answers doc, or fails while down.
type fakeJWKS struct {
	mu      sync.Mutex
	fetches int
	down    bool
	hangs   bool
	doc     []byte
}

func (f *fakeJWKS) client() *http.Client {
	return &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		f.mu.Lock()
		f.fetches++
		down, hangs, doc := f.down, f.hangs, f.doc
		f.mu.Unlock()
		if hangs {
			<-r.Context().Done()
			return nil, r.Context().Err()
		}
		if down {
			return nil, errors.New("connection refused")
		}
		rec := httptest.NewRecorder()
		_, _ = rec.Write(doc)
		return rec.Result(), nil
	})}
}

func (f *fakeJWKS) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fetches
}

// TestJWKSRunSchedule: Run fetches at once and then every
// RefreshInterval; after a failure it retries after 1 s, doubling up to
// MinRefetchInterval; the hub is not ready until a fetch succeeded.
func TestJWKSRunSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeJWKS{down: true}
		k := testSigner{kid: "k", alg: "EdDSA", priv: testEdKey(t)}
		f.doc, _ = json.Marshal(map[string]any{"keys": []any{jwkOf(k)}})
		s, err := NewJWKS(JWKSConfig{URL: "https://issuer.example/jwks", Client: f.client(), Logger: quietLogger(),
			RefreshInterval: time.Hour, MinRefetchInterval: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Ready(); !errors.Is(err, ErrJWKSUnavailable) {
			t.Fatalf("Ready before a fetch: %v", err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			s.Run(ctx)
			close(done)
		}()
		synctest.Wait()
		if f.count() != 1 {
			t.Fatalf("%d fetches at start, want 1", f.count())
		}
		if err := s.Ready(); !errors.Is(err, ErrJWKSUnavailable) || !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("Ready with the JWKS down: %v, want the fetch error", err)
		}
		// Retries after 1, 2, 4, 8 s, then every 10 s (MinRefetchInterval).
		start := time.Now()
		for i, at := range []time.Duration{1, 3, 7, 15, 25, 35} {
			time.Sleep(time.Until(start.Add(at*time.Second)) - time.Millisecond)
			synctest.Wait()
			if f.count() != i+1 {
				t.Fatalf("%d fetches just before %v, want %d", f.count(), at*time.Second, i+1)
			}
			time.Sleep(time.Millisecond)
			synctest.Wait()
			if f.count() != i+2 {
				t.Fatalf("%d fetches at %v, want %d", f.count(), at*time.Second, i+2)
			}
		}
		f.mu.Lock()
		f.down = false
		f.mu.Unlock()
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if err := s.Ready(); err != nil {
			t.Fatalf("Ready once the JWKS answers: %v", err)
		}
		n := f.count()
		time.Sleep(time.Hour - time.Millisecond)
		synctest.Wait()
		if f.count() != n {
			t.Fatalf("fetched before the refresh interval")
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if f.count() != n+1 {
			t.Fatalf("%d fetches an interval later, want %d", f.count(), n+1)
		}
		// A failed periodic refresh keeps the set and the readiness.
		f.mu.Lock()
		f.down = true
		f.mu.Unlock()
		time.Sleep(time.Hour)
		synctest.Wait()
		if err := s.Ready(); err != nil {
			t.Fatalf("Ready after a failed refresh of a loaded set: %v", err)
		}
		cancel()
		<-done
	})
}

// TestJWKSTimeout: a JWKS that does not answer fails the fetch after
// Timeout.
func TestJWKSTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeJWKS{hangs: true}
		s, err := NewJWKS(JWKSConfig{URL: "https://issuer.example/jwks", Client: f.client(), Logger: quietLogger(),
			Timeout: 3 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		err = s.Refresh(context.Background())
		if !errors.Is(err, ErrJWKSUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Refresh of a JWKS that hangs: %v", err)
		}
		if took := time.Since(start); took != 3*time.Second {
			t.Fatalf("the fetch took %v, want the 3s Timeout", took)
		}
	})
}

// TestJWKSTokenTriggersFirstFetch: without Run, the first token with a kid
// loads the set, and the next ones are within the rate limit.
func TestJWKSTokenTriggersFirstFetch(t *testing.T) {
	k := testSigner{kid: "k", alg: "ES256", priv: testECKey(t, elliptic.P256())}
	srv := newJWKSServer(t, k)
	s, err := NewJWKS(JWKSConfig{URL: srv.srv.URL, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	e := jwksEnv(t, s)
	if got := e.publishStatus(signWith(t, k, everything(), false)); got != 200 {
		t.Fatalf("first token: %d", got)
	}
	if srv.fetches.Load() != 1 {
		t.Fatalf("%d fetches", srv.fetches.Load())
	}
}

// TestNewAccessTokenCannotSign: a key without a signing part is refused
// with ErrCannotSign, not a panic (a JWKS key has no algorithm either).
func TestNewAccessTokenCannotSign(t *testing.T) {
	s, err := NewJWKS(JWKSConfig{URL: "https://issuer.example/jwks"})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []Key{{}, s.Key()} {
		if _, err := NewAccessToken(k, AccessToken{Issuer: testIssuer}); !errors.Is(err, ErrCannotSign) {
			t.Fatalf("NewAccessToken(%+v): %v, want ErrCannotSign", k, err)
		}
	}
}

// TestJWKSModernToken: an RFC 9068 access token of an authorization server
// (typ at+jwt, iss, aud, authorization_details) verified with its JWKS;
// without a kid, as the set has one key for its alg.
func TestJWKSModernToken(t *testing.T) {
	priv := testECKey(t, elliptic.P256())
	srv := newJWKSServer(t, testSigner{kid: "as-1", alg: "ES256", priv: priv})
	set := newTestJWKS(t, srv, &testClock{t: time.Unix(1e9, 0)})
	e := jwksEnv(t, set)
	signer, err := NewPublicKey(priv, "ES256")
	if err != nil {
		t.Fatal(err)
	}
	tok := e.modernToken(signer, []Selector{{Type: MatchExact, Value: "https://example.com/a"}}, nil, nil)
	if got := e.publishStatus(tok); got != 200 {
		t.Fatalf("modern token: %d, want 200", got)
	}
	other, _ := NewPublicKey(testECKey(t, elliptic.P256()), "ES256")
	if got := e.publishStatus(e.modernToken(other, []Selector{{Type: MatchExact, Value: "https://example.com/a"}}, nil, nil)); got != 401 {
		t.Fatalf("modern token of another key: %d, want 401", got)
	}
}

// TestJWKSFetchErrorNotShown: a token whose kid the set lacks, refused
// after a refetch failed or was rate-limited, learns which, but not the
// fetch's error (the JWKS URL, addresses, TLS failures), which the hub
// logs: it used to be quoted in the 401 to any client.
func TestJWKSFetchErrorNotShown(t *testing.T) {
	k := testSigner{kid: "k", alg: "EdDSA", priv: testEdKey(t)}
	srv := newJWKSServer(t, k)
	clock := &testClock{t: time.Unix(1e9, 0)}
	e := jwksEnv(t, newTestJWKS(t, srv, clock))
	host := strings.TrimPrefix(srv.srv.URL, "http://")
	srv.srv.Close()
	clock.set(clock.now().Add(DefaultJWKSMinRefetchInterval))
	other := k
	other.kid = "rotated"
	tok := signWith(t, other, everything(), false)
	for _, want := range []string{"could not be fetched again", "fetched less than 1m0s ago"} {
		resp := e.publish(tok, form("topic", "a"))
		body, _ := io.ReadAll(resp.Body)
		challenge := resp.Header.Get("WWW-Authenticate")
		if resp.StatusCode != 401 || !strings.Contains(string(body), want) ||
			strings.Contains(string(body), host) || strings.Contains(challenge, host) {
			t.Errorf("unknown kid, JWKS down: %d %q (challenge %q), want 401 saying %q without the JWKS address %s",
				resp.StatusCode, body, challenge, want, host)
		}
	}
}

// TestJWKSUnknownKidFloodNeverLoaded: while the JWKS has never been
// loaded (it answers garbage), tokens with kids cause one fetch per
// refetch interval, however many arrive, as when a set is loaded: an
// issuer that is down is not hammered by the hub on a flood's behalf.
func TestJWKSUnknownKidFloodNeverLoaded(t *testing.T) {
	k := testSigner{kid: "k", alg: "EdDSA", priv: testEdKey(t)}
	srv := newJWKSServer(t)
	srv.setRaw(map[string]any{"not": "a key set"})
	clock := &testClock{t: time.Unix(1e9, 0)}
	set, err := NewJWKS(JWKSConfig{URL: srv.srv.URL, Logger: quietLogger(), Now: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	e := jwksEnv(t, set)
	tok := signWith(t, k, everything(), false)
	for round := 1; round <= 2; round++ {
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				if code, err := e.tryPublish(tok); err != nil || code != 401 {
					t.Errorf("status %d, err %v, want 401", code, err)
				}
			})
		}
		wg.Wait()
		if n := srv.fetches.Load(); n != int64(round) {
			t.Fatalf("%d fetches after %d floods of a set never loaded, want %d", n, round, round)
		}
		clock.set(clock.now().Add(DefaultJWKSMinRefetchInterval))
	}
	if err := set.Ready(); !errors.Is(err, ErrJWKSUnavailable) {
		t.Fatalf("Ready: %v", err)
	}
}
