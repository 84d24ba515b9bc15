package mercure

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Errors about keys and tokens a caller may tell apart.
var (
	// ErrInvalidKey reports key material that cannot be used with the
	// algorithm asked for (HMAC with a PEM key, RSA with a secret, an
	// unknown algorithm, unparsable PEM).
	ErrInvalidKey = errors.New("mercure: invalid key")
	// ErrInvalidToken reports a token that fails verification: signature,
	// algorithm, expiry, type, audience, issuer or a malformed Mercure
	// claim. It is answered with 401 invalid_token.
	ErrInvalidToken = errors.New("mercure: invalid token")
)

// AuthorizationDetailType is the authorization_details type (RFC 9396)
// of Mercure grants in modern access tokens.
const AuthorizationDetailType = "https://mercure.rocks/authorization-detail"

// Key is a JWT key of one algorithm: an HMAC secret, or an asymmetric
// public key (RS*, PS*, ES*, EdDSA) used to verify tokens, optionally with
// its private key to sign them (NewToken). Create it with ParseKey or
// NewPublicKey, or take a key set's with JWKS.Key.
type Key struct {
	alg    string
	verify any   // []byte or a public key
	sign   any   // []byte or a private key; nil if the key cannot sign
	jwks   *JWKS // the key set of a JWKS key; then alg and verify are unset
}

// Alg returns the key's JWT algorithm ("HS256", "RS256", …), or "" for a
// JWKS key, whose keys each have their own.
func (k Key) Alg() string { return k.alg }

// ParseKey returns a key from material, as the reference hub reads its
// MERCURE_*_JWT_KEY settings: PEM material (a public key, a certificate or a
// private key) must name an asymmetric alg (RS256, PS256, ES256, EdDSA…);
// anything else is an HMAC secret, HS256 unless alg says HS384 or HS512.
// HMAC with PEM material is refused.
func ParseKey(material []byte, alg string) (Key, error) {
	trimmed := bytes.TrimSpace(material)
	if bytes.HasPrefix(trimmed, []byte("-----BEGIN")) {
		if alg == "" || strings.HasPrefix(alg, "HS") {
			return Key{}, fmt.Errorf("%w: PEM key material needs an asymmetric algorithm, got %q", ErrInvalidKey, alg)
		}
		return parsePEMKey(trimmed, alg)
	}
	if alg == "" {
		alg = "HS256"
	}
	switch alg {
	case "HS256", "HS384", "HS512":
	default:
		return Key{}, fmt.Errorf("%w: a secret needs an HS* algorithm, got %q", ErrInvalidKey, alg)
	}
	if len(material) == 0 {
		return Key{}, fmt.Errorf("%w: empty secret", ErrInvalidKey)
	}
	secret := bytes.Clone(material)
	return Key{alg: alg, verify: secret, sign: secret}, nil
}

// NewPublicKey returns a verification key for an asymmetric algorithm from
// a public key (*rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey) or a
// private key (*rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey), in
// which case the key can also sign.
func NewPublicKey(key any, alg string) (Key, error) {
	k := Key{alg: alg}
	switch v := key.(type) {
	case *rsa.PrivateKey:
		k.verify, k.sign = &v.PublicKey, v
	case *ecdsa.PrivateKey:
		k.verify, k.sign = &v.PublicKey, v
	case ed25519.PrivateKey:
		k.verify, k.sign = v.Public(), v
	default:
		k.verify = key
	}
	if err := checkAlg(k.alg, k.verify); err != nil {
		return Key{}, err
	}
	return k, nil
}

func checkAlg(alg string, pub any) error {
	ok := false
	switch {
	case strings.HasPrefix(alg, "RS"), strings.HasPrefix(alg, "PS"):
		_, ok = pub.(*rsa.PublicKey)
	case strings.HasPrefix(alg, "ES"):
		_, ok = pub.(*ecdsa.PublicKey)
	case alg == "EdDSA":
		_, ok = pub.(ed25519.PublicKey)
	}
	if !ok || jwt.GetSigningMethod(alg) == nil {
		return fmt.Errorf("%w: algorithm %q does not fit a %T", ErrInvalidKey, alg, pub)
	}
	return nil
}

func parsePEMKey(material []byte, alg string) (Key, error) {
	block, _ := pem.Decode(material)
	if block == nil {
		return Key{}, fmt.Errorf("%w: no PEM block", ErrInvalidKey)
	}
	var key any
	var err error
	switch block.Type {
	case "PUBLIC KEY":
		key, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			key = cert.PublicKey
		}
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return Key{}, fmt.Errorf("%w: unsupported PEM block %q", ErrInvalidKey, block.Type)
	}
	if err != nil {
		return Key{}, fmt.Errorf("%w: %w", ErrInvalidKey, err)
	}
	return NewPublicKey(key, alg)
}

// claims is what a verified token grants.
type claims struct {
	modern    bool
	publish   []grant
	subscribe []grant
	relay     []string        // the relays the token grants (AuthorizeRelay)
	payload   json.RawMessage // classic mercure.payload, the fallback payload
	expires   time.Time       // zero: no exp
	notBefore time.Time       // zero: no nbf
	jwksSet   *jwksSet        // the key set that verified the token, for a JWKS key
	// publishSet is publish compiled, kept by publishGrants when none of
	// them is a pattern (nil until then).
	publishSet atomic.Pointer[[]*matcher]
}

// grant is one topic selector of a token, with the payload of its entry.
type grant struct {
	sel     Selector
	payload json.RawMessage
}

// tokenClaims is the JSON of a token's claims.
type tokenClaims struct {
	jwt.RegisteredClaims
	AuthorizationDetails json.RawMessage `json:"authorization_details,omitempty"`
	Mercure              json.RawMessage `json:"mercure,omitempty"`
	MercureNS            json.RawMessage `json:"https://mercure.rocks/,omitempty"`
}

// authError is a failed authentication or authorization, answered as
// MERCURE.md §4 says.
type authError struct {
	status int
	code   string // RFC 6750 error code, "" for none
	err    error  // for the logs
}

func (e *authError) Error() string { return fmt.Sprintf("%d %s: %v", e.status, e.code, e.err) }

func errInvalidRequest(format string, a ...any) *authError {
	return &authError{status: http.StatusBadRequest, code: "invalid_request", err: fmt.Errorf(format, a...)}
}

func errInvalidToken(err error) *authError {
	return &authError{status: http.StatusUnauthorized, code: "invalid_token", err: err}
}

func errInsufficientScope(format string, a ...any) *authError {
	return &authError{status: http.StatusForbidden, code: "insufficient_scope", err: fmt.Errorf(format, a...)}
}

var errNoToken = &authError{status: http.StatusUnauthorized, err: errors.New("no token")}

// minTokenLen is the shortest token the reference accepts from a header or
// the query.
const minTokenLen = 41

// classicCookie is the cookie name of the classic hubs, accepted as a
// fallback when classic support is on.
const classicCookie = "mercureAuthorization"

// tokenSource says where a token came from.
type tokenSource int

const (
	fromNowhere tokenSource = iota
	fromHeader
	fromQuery
	fromCookie
)

// extractToken finds the request's token: the Authorization header (one
// header, scheme Bearer in any case; a malformed one is an error, with no
// fallback), then, with classic support, the "authorization" query
// parameter (one value of at least 41 characters, otherwise ignored), then
// the cookie (Config.CookieName, then "mercureAuthorization" with classic
// support).
func (h *Hub) extractToken(r *http.Request) (string, tokenSource, *authError) {
	if hdrs := r.Header.Values("Authorization"); len(hdrs) > 0 {
		if len(hdrs) != 1 {
			return "", fromHeader, errInvalidRequest("%d Authorization headers", len(hdrs))
		}
		v := hdrs[0]
		if len(v) < 7 || !strings.EqualFold(v[:7], "Bearer ") {
			return "", fromHeader, errInvalidRequest("the Authorization header is not a Bearer token")
		}
		tok := strings.TrimSpace(v[7:])
		if len(tok) < minTokenLen {
			return "", fromHeader, errInvalidRequest("the Bearer token is too short")
		}
		return tok, fromHeader, nil
	}
	if h.classic {
		if q := r.URL.Query()["authorization"]; len(q) == 1 && len(q[0]) >= minTokenLen {
			return q[0], fromQuery, nil
		}
	}
	if c, err := r.Cookie(h.cfg.CookieName); err == nil && c.Value != "" {
		return c.Value, fromCookie, nil
	}
	if h.classic && h.cfg.CookieName != classicCookie {
		if c, err := r.Cookie(classicCookie); err == nil && c.Value != "" {
			return c.Value, fromCookie, nil
		}
	}
	return "", fromNowhere, nil
}

// verify checks tok with key and returns its grants. A token is modern
// (RFC 9068, validated strictly: typ, exp, aud, iss) when its header says
// at+jwt or it has authorization_details; otherwise, with classic support,
// it is a classic token whose "mercure" claim carries the grants and whose
// exp and nbf are enforced only when present, and whose iss and aud must
// match Config.Issuers and Config.Resource when those are set (unless
// Config.ClassicSkipIssuerAudience). Without classic support every token
// is modern.
func (h *Hub) verify(tok string, key *Key, resource string) (*claims, error) {
	if len(tok) > h.cfg.MaxTokenSize {
		return nil, fmt.Errorf("%w: token longer than %d bytes", ErrInvalidToken, h.cfg.MaxTokenSize)
	}
	// One parse: the signature is checked first, then the claims, with the
	// rules of the token's kind, which its header and claims tell.
	var tc tokenClaims
	var set *jwksSet
	t, err := jwt.NewParser(jwt.WithValidMethods(key.methods()), jwt.WithoutClaimsValidation()).
		ParseWithClaims(tok, &tc, key.keyfunc(&set))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	typ, _ := t.Header["typ"].(string)
	atJWT := strings.EqualFold(typ, "at+jwt") || strings.EqualFold(typ, "application/at+jwt")
	modern := atJWT || len(tc.AuthorizationDetails) > 0 || !h.classic

	opts := []jwt.ParserOption{jwt.WithTimeFunc(h.now)}
	checkIssuer := modern
	switch {
	case modern:
		opts = append(opts, jwt.WithExpirationRequired(), jwt.WithAudience(resource))
	case h.cfg.ClassicSkipIssuerAudience:
	default:
		// A classic token meets the iss and aud rules the hub is configured
		// with, though never a per-request audience (classic publishers
		// could not know it).
		if h.cfg.Resource != "" {
			opts = append(opts, jwt.WithAudience(h.cfg.Resource))
		}
		checkIssuer = len(h.issuers) > 0
	}
	if err := jwt.NewValidator(opts...).Validate(&tc); err != nil {
		return nil, fmt.Errorf("%w: %w: %w", ErrInvalidToken, jwt.ErrTokenInvalidClaims, err)
	}
	c := &claims{modern: modern, jwksSet: set}
	if tc.ExpiresAt != nil {
		c.expires = tc.ExpiresAt.Time
	}
	if tc.NotBefore != nil {
		c.notBefore = tc.NotBefore.Time
	}
	if modern && !atJWT {
		return nil, fmt.Errorf("%w: the typ header must be at+jwt, got %q", ErrInvalidToken, typ)
	}
	if checkIssuer {
		if _, ok := h.issuers[tc.Issuer]; !ok {
			return nil, fmt.Errorf("%w: untrusted issuer %q", ErrInvalidToken, tc.Issuer)
		}
	}
	if modern {
		if err := h.parseDetails(tc.AuthorizationDetails, c); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
		}
		return c, nil
	}
	raw := tc.Mercure
	if len(tc.MercureNS) > 0 && string(tc.MercureNS) != "null" {
		raw = tc.MercureNS
	}
	if err := h.parseClassicClaim(raw, c); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	return c, nil
}

// detailEntry is one authorization_details entry of a modern token.
type detailEntry struct {
	Type    string            `json:"type"`
	Actions []json.RawMessage `json:"actions"`
	Topics  []json.RawMessage `json:"topics"`
	Payload json.RawMessage   `json:"payload"`
}

// topicObject is a topic of an authorization_details entry, or an object
// entry of a classic claim.
type topicObject struct {
	Match     *string         `json:"match"`
	MatchType *string         `json:"match_type"`
	Payload   json.RawMessage `json:"payload"`
}

// parseDetails reads the Mercure entries of authorization_details strictly:
// any bad entry invalidates the whole token.
func (h *Hub) parseDetails(raw json.RawMessage, c *claims) error {
	if len(raw) == 0 {
		return nil // no Mercure entries: grants nothing
	}
	var entries []json.RawMessage
	if err := json.Unmarshal(raw, &entries); err != nil {
		return fmt.Errorf("authorization_details is not an array: %w", err)
	}
	n, topics := 0, 0
	for _, e := range entries {
		var d detailEntry
		if err := json.Unmarshal(e, &d); err != nil {
			var probe struct {
				Type string `json:"type"`
			}
			if json.Unmarshal(e, &probe) == nil && probe.Type != AuthorizationDetailType {
				continue // someone else's entry
			}
			return fmt.Errorf("malformed authorization_details entry: %w", err)
		}
		if d.Type != AuthorizationDetailType {
			continue
		}
		if n++; n > h.cfg.MaxGrants {
			return fmt.Errorf("more than %d Mercure authorization_details entries", h.cfg.MaxGrants)
		}
		if len(d.Actions) == 0 {
			return errors.New("a Mercure entry has no actions")
		}
		var pub, sub, rel bool
		for _, a := range d.Actions {
			var s string
			if err := json.Unmarshal(a, &s); err != nil {
				return fmt.Errorf("a Mercure entry has a non-string action: %w", err)
			}
			pub = pub || s == "publish"
			sub = sub || s == "subscribe"
			rel = rel || s == "relay"
		}
		if len(d.Topics) == 0 {
			return errors.New("a Mercure entry has no topics")
		}
		for _, t := range d.Topics {
			if topics++; topics > h.cfg.MaxGrants {
				return fmt.Errorf("more than %d topics in authorization_details", h.cfg.MaxGrants)
			}
			var o topicObject
			if err := json.Unmarshal(t, &o); err != nil {
				return fmt.Errorf("a Mercure entry topic is not an object: %w", err)
			}
			sel, err := h.grantSelector(o, MatchExact)
			if err != nil {
				return err
			}
			if rel {
				if sel.Type != MatchExact {
					return errors.New("a relay grant names its relay exactly")
				}
				c.relay = append(c.relay, sel.Value)
			}
			g := grant{sel: sel, payload: d.Payload}
			if pub {
				c.publish = append(c.publish, g)
			}
			if sub {
				c.subscribe = append(c.subscribe, g)
			}
		}
	}
	return nil
}

// grantSelector validates a topic object of a token.
func (h *Hub) grantSelector(o topicObject, def MatchType) (Selector, error) {
	if o.Match == nil || *o.Match == "" {
		return Selector{}, errors.New("a topic has no match")
	}
	typ := def
	if o.MatchType != nil {
		switch MatchType(*o.MatchType) {
		case MatchExact, MatchURLPattern:
			typ = MatchType(*o.MatchType)
		default:
			return Selector{}, fmt.Errorf("unknown match_type %q", *o.MatchType)
		}
	}
	sel := Selector{Type: typ, Value: *o.Match}
	if _, err := h.checkSelector(sel); err != nil {
		return Selector{}, err
	}
	return sel, nil
}

// checkSelector applies the size, character and complexity rules to a
// selector and compiles it.
func (h *Hub) checkSelector(sel Selector) (*matcher, error) {
	if len(sel.Value) > h.cfg.MaxSelectorLen {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrInvalidSelector, h.cfg.MaxSelectorLen)
	}
	if !validProtocolString(sel.Value) {
		return nil, fmt.Errorf("%w: control or format characters", ErrInvalidSelector)
	}
	return h.selectors.get(sel)
}

// classicClaim is the "mercure" claim of a classic token.
type classicClaim struct {
	Publish   *[]json.RawMessage `json:"publish"`
	Subscribe []json.RawMessage  `json:"subscribe"`
	Payload   json.RawMessage    `json:"payload"`
	Relay     []string           `json:"relay"` // sluice's: the relays granted (AuthorizeRelay)
}

// parseClassicClaim reads the "mercure" claim: entries are classic
// selectors, or objects {match, match_type, payload}.
func (h *Hub) parseClassicClaim(raw json.RawMessage, c *claims) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var mc classicClaim
	if err := json.Unmarshal(raw, &mc); err != nil {
		return fmt.Errorf("malformed mercure claim: %w", err)
	}
	c.payload = mc.Payload
	if len(mc.Relay) > h.cfg.MaxClassicGrants {
		return fmt.Errorf("more than %d entries in a mercure claim array", h.cfg.MaxClassicGrants)
	}
	c.relay = mc.Relay
	read := func(entries []json.RawMessage) ([]grant, error) {
		if len(entries) > h.cfg.MaxClassicGrants {
			return nil, fmt.Errorf("more than %d entries in a mercure claim array", h.cfg.MaxClassicGrants)
		}
		gs := make([]grant, 0, len(entries))
		for _, e := range entries {
			var s string
			if err := json.Unmarshal(e, &s); err == nil {
				sel := Selector{Type: MatchClassic, Value: s}
				if _, err := h.checkSelector(sel); err != nil {
					return nil, err
				}
				gs = append(gs, grant{sel: sel})
				continue
			}
			var o topicObject
			if err := json.Unmarshal(e, &o); err != nil {
				return nil, fmt.Errorf("a mercure claim entry is neither a string nor an object: %w", err)
			}
			sel, err := h.grantSelector(o, MatchExact)
			if err != nil {
				return nil, err
			}
			gs = append(gs, grant{sel: sel, payload: o.Payload})
		}
		return gs, nil
	}
	var err error
	if mc.Publish != nil {
		if c.publish, err = read(*mc.Publish); err != nil {
			return err
		}
	}
	c.subscribe, err = read(mc.Subscribe)
	return err
}

// canPublish reports whether c grants publishing to every topic, and if
// not the first topic it does not grant. Nil claims grant nothing.
func (h *Hub) canPublish(c *claims, topics []string) (denied string, ok bool) {
	var grants selectorSet
	if c != nil {
		grants = h.publishGrants(c)
	}
	for i := range topics {
		if !grants.matchAny(topics[i : i+1]) {
			return topics[i], false
		}
	}
	return "", c != nil
}

// publishGrants is grantSet of c's publish grants, compiled once per
// claims when none is a pattern, so that a publisher whose token is cached
// does not compile its grants on every request. Exact grants cost a few
// bytes each, no more than the cached token already holds; patterns stay
// in the selector cache, within its byte bound, and are looked up there.
func (h *Hub) publishGrants(c *claims) selectorSet {
	if ms := c.publishSet.Load(); ms != nil {
		return h.selectors.set(*ms)
	}
	set := h.grantSet(c.publish)
	if len(set.ms) != len(c.publish) || slices.ContainsFunc(set.ms, (*matcher).isPattern) {
		return set
	}
	c.publishSet.Store(&set.ms)
	return set
}

// subscribeMatcher compiles c's subscribe grants: it reports whether one
// matches one of the topics. Nil claims grant nothing.
func (h *Hub) subscribeMatcher(c *claims) selectorSet {
	if c == nil {
		return h.selectors.set(nil)
	}
	return h.grantSet(c.subscribe)
}

// grantSet compiles the selectors of grants (from the cache, once each).
func (h *Hub) grantSet(grants []grant) selectorSet {
	ms := make([]*matcher, 0, len(grants))
	for _, g := range grants {
		if m, err := h.selectors.get(g.sel); err == nil {
			ms = append(ms, m)
		}
	}
	return h.selectors.set(ms)
}

// payloadFor returns the payload of the first subscribe grant matching
// topic, or the classic fallback payload.
func (h *Hub) payloadFor(c *claims, topic string) json.RawMessage {
	if c == nil {
		return nil
	}
	for _, g := range c.subscribe {
		if h.selectors.matches(g.sel, []string{topic}) {
			if len(g.payload) > 0 {
				return g.payload
			}
			break
		}
	}
	return c.payload
}

// lowerAll returns a lower-case copy of patterns (nil for none).
func lowerAll(patterns []string) []string {
	if len(patterns) == 0 {
		return nil
	}
	out := make([]string, len(patterns))
	for i, p := range patterns {
		out[i] = strings.ToLower(p)
	}
	return out
}

// originAllowed reports whether origin matches one of patterns: exact,
// "*", or one "*" standing for any run of characters, without regard to
// case. The patterns must be in lower case (New lowers the configured
// ones).
func originAllowed(origin string, patterns []string) bool {
	origin = strings.ToLower(origin)
	for _, p := range patterns {
		if p == "*" || p == origin {
			return true
		}
		if i := strings.IndexByte(p, '*'); i >= 0 {
			pre, suf := p[:i], p[i+1:]
			if len(origin) >= len(pre)+len(suf) && strings.HasPrefix(origin, pre) && strings.HasSuffix(origin, suf) {
				return true
			}
		}
	}
	return false
}

// opaqueOrigin is the origin a browser sends for a request whose origin it
// does not disclose (sandboxed frames, data: URLs, some redirects).
const opaqueOrigin = "null"

// requestOrigin returns the request's Origin (opaqueOrigin for an empty
// one) or, only when it has no Origin header at all, the scheme and host
// of its Referer, or "". A browser that sends "Origin: null" hides where
// the request comes from: its Referer must not be believed instead.
func requestOrigin(r *http.Request) string {
	if _, ok := r.Header["Origin"]; ok {
		if o := r.Header.Get("Origin"); o != "" {
			return o
		}
		return opaqueOrigin
	}
	if ref := r.Header.Get("Referer"); ref != "" {
		if u, err := url.Parse(ref); err == nil && u.Scheme != "" && u.Host != "" {
			return u.Scheme + "://" + u.Host
		}
	}
	return ""
}
