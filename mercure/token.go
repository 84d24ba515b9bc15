package mercure

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ErrCannotSign reports a key that has no signing part (a public key).
var ErrCannotSign = errors.New("mercure: key cannot sign")

// NewToken mints a classic Mercure token for development and for the
// "sluice token" command: its "mercure" claim grants publish and subscribe
// on the given classic selectors ("*", exact topics, URI templates). key is
// an HMAC secret (alg "" or HS256/384/512) or a PEM private key with an
// asymmetric alg (RS256…). A positive ttl sets exp; zero mints a token that
// never expires. nil publish leaves the claim out (the token cannot
// publish); nil subscribe grants no private updates. It is NewClassicToken
// with Publish, Subscribe and TTL.
func NewToken(key []byte, alg string, publish, subscribe []string, ttl time.Duration) (string, error) {
	return NewClassicToken(key, alg, ClassicToken{Publish: publish, Subscribe: subscribe, TTL: ttl})
}

// ClassicToken describes a classic Mercure token: its "mercure" claim.
type ClassicToken struct {
	// Publish and Subscribe are classic selectors ("*", exact topics, URI
	// templates); nil leaves the grant out.
	Publish, Subscribe []string
	// Relay names the relays the token may start (Hub.AuthorizeRelay,
	// sluice serve --relay); nil leaves the grant out.
	Relay []string
	// TTL, when positive, sets exp; zero mints a token that never expires.
	TTL time.Duration
}

// NewClassicToken mints the classic token t, signed with key: an HMAC
// secret (alg "" or HS256/384/512) or a PEM private key with an asymmetric
// alg (RS256…).
func NewClassicToken(key []byte, alg string, t ClassicToken) (string, error) {
	k, err := ParseKey(key, alg)
	if err != nil {
		return "", fmt.Errorf("mercure: new token: %w", err)
	}
	mc := map[string]any{}
	if t.Publish != nil {
		mc["publish"] = t.Publish
	}
	if t.Subscribe != nil {
		mc["subscribe"] = t.Subscribe
	}
	if t.Relay != nil {
		mc["relay"] = t.Relay
	}
	c := jwt.MapClaims{"mercure": mc}
	if t.TTL > 0 {
		c["exp"] = time.Now().Add(t.TTL).Unix()
	}
	return sign(k, jwt.New(jwt.GetSigningMethod(k.alg)), c)
}

// AccessToken describes a modern Mercure access token (RFC 9068 with
// Mercure authorization_details).
type AccessToken struct {
	// Issuer is the iss claim: it must be one of the hub's Config.Issuers.
	Issuer string
	// Audience is the aud claim: the hub's resource identifier.
	Audience string
	// Subject is the sub claim (optional).
	Subject string
	// Publish and Subscribe are the topic selectors granted; their Type is
	// MatchExact or MatchURLPattern (MatchClassic is written as exact).
	Publish, Subscribe []Selector
	// Payload is the subscriber payload shown in subscription events
	// (optional; any JSON-encodable value).
	Payload any
	// TTL is the lifetime (exp is required in modern tokens). Zero means
	// one hour.
	TTL time.Duration
}

// NewAccessToken mints a modern access token signed with key.
func NewAccessToken(key Key, t AccessToken) (string, error) {
	if key.sign == nil {
		return "", ErrCannotSign
	}
	ttl := t.TTL
	if ttl <= 0 {
		ttl = time.Hour
	}
	now := time.Now()
	var jti [16]byte
	_, _ = rand.Read(jti[:])
	c := jwt.MapClaims{
		"iss": t.Issuer,
		"aud": t.Audience,
		"exp": now.Add(ttl).Unix(),
		"iat": now.Unix(),
		"jti": hex.EncodeToString(jti[:]),
	}
	if t.Subject != "" {
		c["sub"] = t.Subject
	}
	var details []map[string]any
	entry := func(action string, sels []Selector) {
		if len(sels) == 0 {
			return
		}
		topics := make([]map[string]string, len(sels))
		for i, s := range sels {
			typ := s.Type
			if typ == MatchClassic || typ == "" {
				typ = MatchExact
			}
			topics[i] = map[string]string{"match": s.Value, "match_type": string(typ)}
		}
		d := map[string]any{"type": AuthorizationDetailType, "actions": []string{action}, "topics": topics}
		if t.Payload != nil && action == "subscribe" {
			d["payload"] = t.Payload
		}
		details = append(details, d)
	}
	entry("publish", t.Publish)
	entry("subscribe", t.Subscribe)
	if details != nil {
		c["authorization_details"] = details
	}
	tok := jwt.New(jwt.GetSigningMethod(key.alg))
	tok.Header["typ"] = "at+jwt"
	return sign(key, tok, c)
}

func sign(k Key, tok *jwt.Token, c jwt.MapClaims) (string, error) {
	if k.sign == nil {
		return "", ErrCannotSign
	}
	tok.Claims = c
	s, err := tok.SignedString(k.sign)
	if err != nil {
		return "", fmt.Errorf("mercure: sign token: %w", err)
	}
	return s, nil
}
