package mercure

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Defaults of the JWKSConfig fields, used where a field is zero.
const (
	DefaultJWKSRefreshInterval    = 5 * time.Minute
	DefaultJWKSMinRefetchInterval = time.Minute
	DefaultJWKSTimeout            = 10 * time.Second
	DefaultJWKSMaxSize            = 256 << 10
)

// ErrJWKSUnavailable reports a key set that could not be fetched or used:
// Refresh returns it when a fetch fails, Ready while no usable key set has
// been loaded.
var ErrJWKSUnavailable = errors.New("mercure: JWKS unavailable")

// errRefetchLimited is the reason a token with an unknown kid did not
// trigger a fetch.
var errRefetchLimited = errors.New("refetch rate-limited")

// jwksAlgs are the algorithms a key of a JWKS may verify: asymmetric ones
// only. A JWKS is public, so an HMAC ("oct") key from it would let anyone
// sign, and "none" signs nothing.
var jwksAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// RSA key sizes a JWKS key may have, in bits: below the minimum a key is
// too weak, above the maximum a forged token would cost too much to
// refuse.
const (
	jwksMinRSABits = 2048
	jwksMaxRSABits = 8192
)

// jwksMaxRedirects bounds the redirects a JWKS fetch follows.
const jwksMaxRedirects = 3

// JWKSConfig configures a JWKS: the JSON Web Key Set (RFC 7517) of an
// authorization server, fetched over HTTPS and refreshed. Only URL is
// required.
type JWKSConfig struct {
	// URL is where the key set is fetched: an https URL, or an http one
	// whose host is a loopback address or "localhost" (for tests and
	// sidecars). It must not carry credentials. Redirects are followed
	// (up to 3) under the same rule.
	URL string
	// RefreshInterval is how long Run waits after a fetch before the next
	// one. With twice Timeout, it bounds how long a key removed from the
	// set keeps verifying tokens (cached ones included) while the set can
	// be fetched. Default 5 minutes.
	RefreshInterval time.Duration
	// MinRefetchInterval is the least time between the start of a fetch
	// and that of a fetch caused by a token whose kid is not in the set:
	// the client chooses the kid, so a flood of made-up ones causes at most
	// one fetch per interval. It also caps the retry delay after a failed
	// fetch. Default 1 minute.
	MinRefetchInterval time.Duration
	// Timeout bounds one fetch: connecting, TLS, headers and body.
	// Default 10 seconds.
	Timeout time.Duration
	// MaxSize bounds the response body, in bytes (after any
	// Content-Encoding is undone). Default 256 KiB.
	MaxSize int64
	// Client makes the requests. Default: a client on a clone of
	// http.DefaultTransport (proxies from the environment) with TLS 1.2 at
	// least. Its CheckRedirect is replaced by the URL rule above.
	Client *http.Client
	// Logger receives fetch failures and key set changes. Default
	// slog.Default().
	Logger *slog.Logger
	// Now is the clock of the refetch rate limit. Default time.Now.
	Now func() time.Time
}

// JWKS is a key set fetched from a URL, for verifying tokens by their kid
// (use it through its Key). Fetches are made by Run, periodically, by
// Refresh, and when a token names a kid the set does not have (rate-limited
// by JWKSConfig.MinRefetchInterval); only one fetch is in flight at a time,
// and a failed fetch keeps the last good set. It is safe for concurrent use.
type JWKS struct {
	cfg    JWKSConfig
	client *http.Client
	set    atomic.Pointer[jwksSet] // nil until the first successful fetch

	mu        sync.Mutex
	call      *jwksCall // the fetch in flight, or nil
	lastStart time.Time // when the last fetch started
	lastErr   error     // of the last fetch; nil after a success
	fetches   int64     // fetches started, for tests
}

// jwksCall is one fetch, which every caller that wants it waits for.
type jwksCall struct {
	done chan struct{}
	err  error
}

// jwksSet is the usable content of one fetched key set. A new set replaces
// it only when the fetched document changed, so that tokens verified with
// it stay in the token cache across refreshes that change nothing.
type jwksSet struct {
	keys  []jwksKey
	byKid map[string][]int // indexes into keys
	sum   [sha256.Size]byte
}

// jwksKey is one usable key of a set.
type jwksKey struct {
	kid string
	alg string // the JWK's alg member, "" when it has none
	pub any    // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
}

// NewJWKS checks cfg and returns a key set that has fetched nothing yet:
// start Run (or call Refresh) to load it. Until then tokens with a kid
// trigger the first fetch themselves, within the refetch rate limit.
func NewJWKS(cfg JWKSConfig) (*JWKS, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("%w: JWKS URL: %w", ErrConfig, err)
	}
	if err := checkJWKSURL(u); err != nil {
		return nil, fmt.Errorf("%w: JWKS URL %q: %w", ErrConfig, cfg.URL, err)
	}
	for name, d := range map[string]time.Duration{"RefreshInterval": cfg.RefreshInterval,
		"MinRefetchInterval": cfg.MinRefetchInterval, "Timeout": cfg.Timeout} {
		if d < 0 {
			return nil, fmt.Errorf("%w: JWKS %s must not be negative, got %v", ErrConfig, name, d)
		}
	}
	if cfg.MaxSize < 0 {
		return nil, fmt.Errorf("%w: JWKS MaxSize must not be negative, got %d", ErrConfig, cfg.MaxSize)
	}
	if cfg.RefreshInterval == 0 {
		cfg.RefreshInterval = DefaultJWKSRefreshInterval
	}
	if cfg.MinRefetchInterval == 0 {
		cfg.MinRefetchInterval = DefaultJWKSMinRefetchInterval
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultJWKSTimeout
	}
	if cfg.MaxSize == 0 {
		cfg.MaxSize = DefaultJWKSMaxSize
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	var client http.Client
	if cfg.Client != nil {
		client = *cfg.Client
	} else {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		client.Transport = tr
	}
	client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= jwksMaxRedirects {
			return fmt.Errorf("more than %d redirects", jwksMaxRedirects)
		}
		return checkJWKSURL(req.URL)
	}
	return &JWKS{cfg: cfg, client: &client}, nil
}

// checkJWKSURL accepts https URLs, and http ones to a loopback host.
func checkJWKSURL(u *url.URL) error {
	if u.User != nil {
		return errors.New("credentials in the URL")
	}
	if u.Host == "" {
		return errors.New("not an absolute URL")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); strings.EqualFold(host, "localhost") || (ip != nil && ip.IsLoopback()) {
			return nil
		}
		return errors.New("http is allowed only to a loopback host: use https")
	}
	return fmt.Errorf("scheme %q: want https", u.Scheme)
}

// Key returns a Key verifying tokens with the keys of s, chosen by the
// token's kid header and alg. A token without kid is verified only when
// the set has exactly one key for its alg. The Key cannot sign.
func (s *JWKS) Key() Key { return Key{jwks: s} }

// URL returns the URL the set is fetched from.
func (s *JWKS) URL() string { return s.cfg.URL }

// Ready returns nil when a key set with at least one usable key has been
// loaded, and otherwise an error wrapping ErrJWKSUnavailable that says
// why. A failed refresh after a successful one keeps the set, and s
// ready.
func (s *JWKS) Ready() error {
	set := s.set.Load()
	if set != nil && len(set.keys) > 0 {
		return nil
	}
	if set != nil {
		return fmt.Errorf("%w: %s has no usable signing key", ErrJWKSUnavailable, s.cfg.URL)
	}
	s.mu.Lock()
	err := s.lastErr
	s.mu.Unlock()
	if err == nil {
		return fmt.Errorf("%w: %s not fetched yet", ErrJWKSUnavailable, s.cfg.URL)
	}
	return fmt.Errorf("%w: %w", ErrJWKSUnavailable, err)
}

// Refresh fetches the set now (or waits for the fetch in flight) and
// returns its error, wrapping ErrJWKSUnavailable. ctx bounds the wait, not
// the fetch, which JWKSConfig.Timeout bounds.
func (s *JWKS) Refresh(ctx context.Context) error {
	return s.fetch(ctx, false)
}

// Run fetches the set at once, then every RefreshInterval until ctx is
// done. After a failed fetch it retries sooner: after 1 s, doubling up to
// MinRefetchInterval (and at most RefreshInterval).
func (s *JWKS) Run(ctx context.Context) {
	var backoff time.Duration
	for {
		wait := s.cfg.RefreshInterval
		if err := s.fetch(ctx, false); err != nil {
			if ctx.Err() != nil {
				return
			}
			backoff = min(max(2*backoff, time.Second), s.cfg.MinRefetchInterval, s.cfg.RefreshInterval)
			wait = backoff
		} else {
			backoff = 0
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// fetch starts a fetch, or joins the one in flight, and waits for it.
// limited (a token's unknown kid) refuses to start one less than
// MinRefetchInterval after the last one started.
func (s *JWKS) fetch(ctx context.Context, limited bool) error {
	s.mu.Lock()
	c := s.call
	if c == nil {
		now := s.cfg.Now()
		if limited && s.fetches > 0 && now.Sub(s.lastStart) < s.cfg.MinRefetchInterval {
			s.mu.Unlock()
			return errRefetchLimited
		}
		c = &jwksCall{done: make(chan struct{})}
		s.call, s.lastStart = c, now
		s.fetches++
		go s.do(c)
	}
	s.mu.Unlock()
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return fmt.Errorf("%w: waiting for %s: %w", ErrJWKSUnavailable, s.cfg.URL, ctx.Err())
	}
}

// do runs the fetch c, installs its set and ends c.
func (s *JWKS) do(c *jwksCall) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
	set, skipped, err := s.download(ctx)
	cancel()
	old := s.set.Load()
	changed := err == nil && (old == nil || old.sum != set.sum)
	s.mu.Lock()
	if changed {
		s.set.Store(set)
	}
	s.lastErr = err
	s.call = nil
	s.mu.Unlock()
	if err != nil {
		c.err = fmt.Errorf("%w: %w", ErrJWKSUnavailable, err)
		s.cfg.Logger.Warn("mercure: JWKS fetch failed; the last key set stays in use", "url", s.cfg.URL, "err", err,
			"loaded", old != nil)
	}
	close(c.done)
	if changed {
		kids := make([]string, len(set.keys))
		for i, k := range set.keys {
			kids[i] = k.kid
		}
		s.cfg.Logger.Info("mercure: JWKS loaded", "url", s.cfg.URL, "kids", kids, "skipped", skipped)
		if len(set.keys) == 0 {
			s.cfg.Logger.Warn("mercure: the JWKS has no usable signing key: every token is refused", "url", s.cfg.URL)
		}
	}
}

// download fetches and parses the set. skipped says why keys were left
// out.
func (s *JWKS) download(ctx context.Context) (*jwksSet, []string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.cfg.URL, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", s.cfg.URL, err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, nil, err // it names the URL
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, nil, fmt.Errorf("%s: status %s", s.cfg.URL, resp.Status)
	}
	if resp.ContentLength > s.cfg.MaxSize {
		return nil, nil, fmt.Errorf("%s: %d bytes, more than the %d allowed", s.cfg.URL, resp.ContentLength, s.cfg.MaxSize)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, s.cfg.MaxSize+1))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: reading: %w", s.cfg.URL, err)
	}
	if int64(len(body)) > s.cfg.MaxSize {
		return nil, nil, fmt.Errorf("%s: more than the %d bytes allowed", s.cfg.URL, s.cfg.MaxSize)
	}
	set, skipped, err := parseJWKS(body)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", s.cfg.URL, err)
	}
	return set, skipped, nil
}

// jwk is the JSON of one key; private members are ignored.
type jwk struct {
	Kty    string   `json:"kty"`
	Kid    string   `json:"kid"`
	Use    string   `json:"use"`
	KeyOps []string `json:"key_ops"`
	Alg    string   `json:"alg"`
	N      string   `json:"n"`
	E      string   `json:"e"`
	Crv    string   `json:"crv"`
	X      string   `json:"x"`
	Y      string   `json:"y"`
}

// parseJWKS parses a JWK Set document. As RFC 7517 §5 asks, keys that are
// not usable here (another kty or curve, encryption keys, HMAC keys,
// malformed or out-of-range members, an alg that does not fit) are left
// out, and skipped says why; a document that is not a set is an error.
func parseJWKS(body []byte) (*jwksSet, []string, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, nil, fmt.Errorf("not a JWK Set: %w", err)
	}
	if doc.Keys == nil {
		return nil, nil, errors.New(`not a JWK Set: no "keys" array`)
	}
	set := &jwksSet{byKid: map[string][]int{}, sum: sha256.Sum256(body)}
	var skipped []string
	for i, raw := range doc.Keys {
		var j jwk
		if err := json.Unmarshal(raw, &j); err != nil {
			skipped = append(skipped, fmt.Sprintf("key %d: %v", i, err))
			continue
		}
		pub, err := j.publicKey()
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("key %d (kid %q): %v", i, j.Kid, err))
			continue
		}
		set.byKid[j.Kid] = append(set.byKid[j.Kid], len(set.keys))
		set.keys = append(set.keys, jwksKey{kid: j.Kid, alg: j.Alg, pub: pub})
	}
	return set, skipped, nil
}

// publicKey returns the verification key of j, or why it is not usable.
func (j *jwk) publicKey() (any, error) {
	if j.Use != "" && j.Use != "sig" {
		return nil, fmt.Errorf("use %q", j.Use)
	}
	if j.KeyOps != nil && !slices.Contains(j.KeyOps, "verify") {
		return nil, fmt.Errorf("key_ops %q lack verify", j.KeyOps)
	}
	if j.Alg != "" && !slices.Contains(jwksAlgs, j.Alg) {
		return nil, fmt.Errorf("alg %q", j.Alg)
	}
	var pub any
	switch j.Kty {
	case "RSA":
		n, err := b64int(j.N)
		if err != nil {
			return nil, fmt.Errorf("n: %w", err)
		}
		if bits := n.BitLen(); bits < jwksMinRSABits || bits > jwksMaxRSABits {
			return nil, fmt.Errorf("%d-bit RSA key: want %d to %d bits", bits, jwksMinRSABits, jwksMaxRSABits)
		}
		e, err := b64int(j.E)
		if err != nil {
			return nil, fmt.Errorf("e: %w", err)
		}
		if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 || e.Bit(0) == 0 {
			return nil, errors.New("e out of range")
		}
		pub = &rsa.PublicKey{N: n, E: int(e.Int64())}
	case "EC":
		curve := jwksCurve(j.Crv)
		if curve == nil {
			return nil, fmt.Errorf("curve %q", j.Crv)
		}
		size := (curve.Params().BitSize + 7) / 8
		x, errX := b64(j.X)
		y, errY := b64(j.Y)
		if errX != nil || errY != nil || len(x) != size || len(y) != size {
			return nil, fmt.Errorf("x and y must be %d bytes of base64url", size)
		}
		k, err := ecdsa.ParseUncompressedPublicKey(curve, slices.Concat([]byte{4}, x, y))
		if err != nil {
			return nil, err
		}
		pub = k
	case "OKP":
		if j.Crv != "Ed25519" {
			return nil, fmt.Errorf("curve %q", j.Crv)
		}
		x, err := b64(j.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("x must be %d bytes of base64url", ed25519.PublicKeySize)
		}
		pub = ed25519.PublicKey(x)
	default:
		return nil, fmt.Errorf("kty %q", j.Kty)
	}
	if j.Alg != "" && !jwksFits(j.Alg, pub) {
		return nil, fmt.Errorf("alg %q does not fit a %s key", j.Alg, j.Kty)
	}
	return pub, nil
}

// jwksCurve returns the curve of a JWK crv (RFC 7518 §6.2.1.1), or nil.
func jwksCurve(crv string) elliptic.Curve {
	switch crv {
	case "P-256":
		return elliptic.P256()
	case "P-384":
		return elliptic.P384()
	case "P-521":
		return elliptic.P521()
	}
	return nil
}

// jwksFits reports whether pub may verify alg: the key type fits (as for
// configured keys), and an EC key is on the curve the alg names.
func jwksFits(alg string, pub any) bool {
	if checkAlg(alg, pub) != nil {
		return false
	}
	if k, ok := pub.(*ecdsa.PublicKey); ok {
		want := map[string]string{"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}[alg]
		return k.Curve.Params().Name == want
	}
	return true
}

// b64 decodes base64url, with or without padding.
func b64(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// b64int decodes a base64url big-endian unsigned integer.
func b64int(s string) (*big.Int, error) {
	b, err := b64(s)
	if err != nil {
		return nil, err
	}
	b = bytes.TrimLeft(b, "\x00")
	if len(b) == 0 {
		return nil, errors.New("empty or zero")
	}
	return new(big.Int).SetBytes(b), nil
}

// find returns the key of set for kid and alg: the first one with that kid
// whose type (and alg member, if any) fits alg or, for a token without kid,
// the only key that fits alg. A nil key with a nil error means the set has
// none, and a refetch may find it.
func (set *jwksSet) find(kid string, hasKid bool, alg string) (*jwksKey, error) {
	if set == nil {
		return nil, nil
	}
	fits := func(k *jwksKey) bool { return (k.alg == "" || k.alg == alg) && jwksFits(alg, k.pub) }
	if hasKid {
		for _, i := range set.byKid[kid] {
			if k := &set.keys[i]; fits(k) {
				return k, nil
			}
		}
		return nil, nil
	}
	var found *jwksKey
	for i := range set.keys {
		if k := &set.keys[i]; fits(k) {
			if found != nil {
				return nil, fmt.Errorf("the token has no kid and the JWKS has several keys for %s", alg)
			}
			found = k
		}
	}
	return found, nil
}

// keyFor is the jwt.Keyfunc of a JWKS key: it returns the key for t and the
// set it comes from. A kid the set lacks triggers a fetch, within the rate
// limit, and waits for it.
func (s *JWKS) keyFor(t *jwt.Token) (any, *jwksSet, error) {
	alg := t.Method.Alg()
	kid, hasKid := "", false
	if v, ok := t.Header["kid"]; ok {
		if kid, hasKid = v.(string); !hasKid {
			return nil, nil, errors.New("the kid header is not a string")
		}
	}
	set := s.set.Load()
	k, err := set.find(kid, hasKid, alg)
	if k == nil && err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
		ferr := s.fetch(ctx, true)
		cancel()
		set = s.set.Load()
		if k, err = set.find(kid, hasKid, alg); k == nil && err == nil {
			// The client learns whether the set was fetched again, not the
			// fetch's error (the JWKS URL, addresses): do logs that.
			switch err = fmt.Errorf("no key for kid %q and %s in the JWKS", kid, alg); {
			case errors.Is(ferr, errRefetchLimited):
				err = fmt.Errorf("%w (not fetched again: it was fetched less than %v ago)", err, s.cfg.MinRefetchInterval)
			case ferr != nil:
				err = fmt.Errorf("%w (it could not be fetched again: %w)", err, ErrJWKSUnavailable)
			}
		}
	}
	if err != nil {
		return nil, nil, err
	}
	return k.pub, set, nil
}

// methods returns the algorithms k accepts in a token's alg header.
func (k *Key) methods() []string {
	if k.jwks != nil {
		return jwksAlgs
	}
	return []string{k.alg}
}

// keyfunc returns the jwt.Keyfunc of k. For a JWKS key it records in *set
// the key set that verified the token.
func (k *Key) keyfunc(set **jwksSet) jwt.Keyfunc {
	if k.jwks == nil {
		return func(*jwt.Token) (any, error) { return k.verify, nil }
	}
	return func(t *jwt.Token) (any, error) {
		pub, s, err := k.jwks.keyFor(t)
		*set = s
		return pub, err
	}
}

// keysRotated reports whether c was verified with a JWKS key set that key
// no longer uses: the token must be verified again.
func (c *claims) keysRotated(key *Key) bool {
	return c.jwksSet != nil && (key.jwks == nil || key.jwks.set.Load() != c.jwksSet)
}
