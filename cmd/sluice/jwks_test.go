package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sluicehq/sluice/mercure"
)

// TestServeJWKSFlags: which role gets which JWKS URL, and what is refused.
func TestServeJWKSFlags(t *testing.T) {
	const a, b = "https://a.example/jwks", "https://b.example/jwks"
	for _, tc := range []struct {
		name     string
		args     []string
		vars     map[string]string
		pub, sub string // JWKS URLs; "key": the role has a static key
		sets     int    // key sets: one per distinct URL
	}{
		{"both roles", []string{"--jwt-jwks-url", a}, nil, a, a, 1},
		{"from the environment", nil, map[string]string{"SLUICE_JWT_JWKS_URL": a}, a, a, 1},
		{"per role", []string{"--publisher-jwks-url", a, "--subscriber-jwks-url", b}, nil, a, b, 2},
		{"a role's URL wins", []string{"--jwt-jwks-url", a, "--subscriber-jwks-url", b}, nil, a, b, 2},
		{"a role's key wins over the URL", []string{"--jwt-jwks-url", a, "--publisher-jwt-key", "secret"}, nil, "key", a, 1},
		{"a role's URL wins over the key", []string{"--jwt-key", "secret", "--subscriber-jwks-url", b}, nil, "key", b, 1},
		{"subscribers only", []string{"--subscriber-jwks-url", b}, nil, "", b, 1},
		{"loopback http", []string{"--jwt-jwks-url", "http://127.0.0.1:9/jwks"}, nil, "http://127.0.0.1:9/jwks", "http://127.0.0.1:9/jwks", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustConfig(t, append([]string{"--addr", "127.0.0.1:0"}, tc.args...), tc.vars)
			if c.dev != nil {
				t.Fatal("development mode with a JWKS")
			}
			if err := c.jwksKeys(discardLogger()); err != nil {
				t.Fatal(err)
			}
			for _, r := range []struct {
				role, want, url string
				key             *mercure.Key
			}{{"publisher", tc.pub, c.jwks.pubURL, c.pubKey}, {"subscriber", tc.sub, c.jwks.subURL, c.subKey}} {
				switch tc := r.want; {
				case tc == "key":
					if r.url != "" || r.key == nil || r.key.Alg() != "HS256" {
						t.Errorf("%s: JWKS %q key %v, want the static key", r.role, r.url, r.key)
					}
				case tc == "":
					if r.url != "" || r.key != nil {
						t.Errorf("%s: JWKS %q key %v, want none", r.role, r.url, r.key)
					}
				default:
					if r.url != tc || r.key == nil || r.key.Alg() != "" {
						t.Errorf("%s: JWKS %q key %v, want the JWKS %s", r.role, r.url, r.key, tc)
					}
				}
			}
			if n := len(c.jwks.sets); n != tc.sets {
				t.Errorf("%d key sets, want %d (one per URL)", n, tc.sets)
			}
		})
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"key and URL", []string{"--jwt-key", "k", "--jwt-jwks-url", a}, "--jwt-key and --jwt-jwks-url"},
		{"role key and URL", []string{"--subscriber-jwt-key", "k", "--subscriber-jwks-url", a}, "--subscriber-jwt-key and --subscriber-jwks-url"},
		{"http off loopback", []string{"--jwt-jwks-url", "http://issuer.example/jwks"}, "use https"},
		{"credentials", []string{"--jwt-jwks-url", "https://u:p@issuer.example/jwks"}, "credentials"},
		{"not a URL", []string{"--publisher-jwks-url", "jwks.json"}, "publisher JWKS"},
		{"zero refresh", []string{"--jwt-jwks-url", a, "--jwks-refresh-interval", "0"}, "--jwks-refresh-interval: must be positive"},
		{"zero refetch", []string{"--jwt-jwks-url", a, "--jwks-min-refetch-interval", "0"}, "--jwks-min-refetch-interval"},
		{"zero timeout", []string{"--jwt-jwks-url", a, "--jwks-timeout", "0"}, "--jwks-timeout"},
		{"zero size", []string{"--jwt-jwks-url", a, "--jwks-max-size", "0"}, "--jwks-max-size"},
		{"alg with a JWKS only", []string{"--jwt-jwks-url", a, "--jwt-alg", "RS256"}, "--jwt-alg applies to --jwt-key"},
		{"JWKS off loopback is no development mode", []string{"--addr", ":8080", "--publisher-jwks-url", "http://issuer.example/"}, "use https"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			if c, code := parseServeConfig(tc.args, env(nil), &stderr); c != nil || code != 2 {
				t.Fatalf("accepted (exit %d)", code)
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr %q does not say %q", stderr.String(), tc.want)
			}
		})
	}
	// Off loopback, a JWKS is a key: no development mode is needed.
	if c := mustConfig(t, []string{"--addr", ":8080", "--jwt-jwks-url", a}, nil); c.dev != nil || c.anonymous {
		t.Error("a JWKS on a public address: want no development mode")
	}
}

// TestServeJWKS: a hub on a JWKS that is down starts and is not ready
// (503 naming the JWKS) but alive; on one that answers it becomes ready and
// accepts tokens signed with the set's keys, per role.
func TestServeJWKS(t *testing.T) {
	// A loopback port nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String() + "/jwks"
	ln.Close()
	_, base, _ := startInProcess(t, "--store", "memory", "--jwt-jwks-url", down)
	code, body := get(t, base+"/healthz")
	if code != 503 || !strings.Contains(body, "JWKS unavailable") {
		t.Errorf("/healthz with the JWKS down = %d %s, want 503 naming the JWKS", code, body)
	}
	if code, _ := get(t, base+"/livez"); code != 200 {
		t.Errorf("/livez with the JWKS down = %d, want 200", code)
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := key.PublicKey.Bytes()
	jwk := map[string]string{"kty": "EC", "crv": "P-256", "kid": "k1", "use": "sig",
		"x": base64.RawURLEncoding.EncodeToString(b[1:33]), "y": base64.RawURLEncoding.EncodeToString(b[33:])}
	doc, _ := json.Marshal(map[string]any{"keys": []any{jwk}})
	var fetches atomic.Int64
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		_, _ = w.Write(doc)
	}))
	defer jwks.Close()
	_, base, _ = startInProcess(t, "--store", "memory", "--publisher-jwks-url", jwks.URL, "--subscriber-jwt-key", "subscriber-secret")
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body := get(t, base+"/healthz")
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz with the JWKS up = %d %s, want 200", code, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	sign := func(kid string) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
			"mercure": map[string]any{"publish": []string{"*"}}, "exp": time.Now().Add(time.Hour).Unix()})
		tok.Header["kid"] = kid
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	form := url.Values{"topic": {"t"}, "data": {"x"}}
	if code, body := publishForm(t, base, sign("k1"), form); code != 200 {
		t.Errorf("publishing with a JWKS-signed token: %d %s", code, body)
	}
	if code, _ := publishForm(t, base, sign("unknown"), form); code != 401 {
		t.Errorf("publishing with an unknown kid: %d, want 401", code)
	}
	hmac, err := mercure.NewToken([]byte("subscriber-secret"), "", []string{"*"}, nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := publishForm(t, base, hmac, form); code != 401 {
		t.Errorf("publishing with the subscribers' HMAC key: %d, want 401", code)
	}
	if n := fetches.Load(); n != 1 {
		t.Errorf("%d JWKS fetches, want 1: the unknown kid came within --jwks-min-refetch-interval", n)
	}
}
