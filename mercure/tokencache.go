package mercure

import (
	"sync"
	"time"
)

// maxTokenCacheBytes bounds the token text a tokenCache keeps, whatever
// its entry limit: with 16 KiB tokens a full cache of the default size
// would otherwise hold 16 MB.
const maxTokenCacheBytes = 4 << 20

// tokenCache keeps the claims of tokens that passed verification, so that a
// publisher or subscriber sending the same token again is not verified
// again: parsing and checking a JWT costs more than the rest of a publish
// request (~8 µs for an HS256 token, BenchmarkVerify, against ~6 µs for a
// whole publish with a cached token, BenchmarkPublishHandler).
//
// An entry is keyed by the exact token string and the key that verified it,
// so only that same string presented for that same key hits; failures are
// never cached, so a token that was refused is verified again each time.
// A hit re-checks exp and nbf against the hub's clock (a token that expired
// since is dropped and verified again, which refuses it as before), and a
// modern token's audience against the request's resource. Everything else
// verify checks depends only on the token and the hub's configuration,
// which do not change while the hub runs (New copies the keys), and,
// for a JWKS key, on the key set: a hit on a token verified with a set
// that a fetch has since replaced (a changed document: a key added,
// rotated or removed) is dropped and verified again, so a removed key
// stops verifying cached tokens when the fetch that removes it ends,
// within JWKSConfig.RefreshInterval (plus twice Timeout) of its removal.
//
// The cache is bounded in entries and in token bytes; when full, inserting
// evicts arbitrary entries (Go map iteration order), which costs O(1) and
// needs no bookkeeping on hits. It is safe for concurrent use.
type tokenCache struct {
	max int

	mu    sync.Mutex
	m     map[tokenCacheKey]*tokenCacheEntry
	bytes int
}

type tokenCacheKey struct {
	key *Key
	tok string
}

type tokenCacheEntry struct {
	c *claims
	// resource is the audience a modern token was verified against; ""
	// for classic tokens, which have none.
	resource string
}

// newTokenCache returns a cache of up to max entries, or nil (no cache) when
// max is negative.
func newTokenCache(max int) *tokenCache {
	if max < 0 {
		return nil
	}
	return &tokenCache{max: max, m: make(map[tokenCacheKey]*tokenCacheEntry)}
}

// get returns the claims cached for tok verified with key, if they are still
// valid at now for resource (computed only for modern tokens). An entry no
// longer valid is dropped.
func (tc *tokenCache) get(key *Key, tok string, now time.Time, resource func() string) *claims {
	if tc == nil {
		return nil
	}
	k := tokenCacheKey{key, tok}
	tc.mu.Lock()
	e := tc.m[k]
	tc.mu.Unlock()
	if e == nil {
		return nil
	}
	c := e.c
	if !c.validAt(now) || c.keysRotated(key) {
		tc.mu.Lock()
		if tc.m[k] == e {
			tc.delete(k)
		}
		tc.mu.Unlock()
		return nil
	}
	if c.modern && e.resource != resource() {
		return nil // verified for another audience: verify again
	}
	return c
}

// put caches the claims of tok, verified with key for resource ("" for a
// classic token).
func (tc *tokenCache) put(key *Key, tok string, c *claims, resource string) {
	if tc == nil || tc.max == 0 || len(tok) > maxTokenCacheBytes/16 {
		return
	}
	k := tokenCacheKey{key, tok}
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if _, ok := tc.m[k]; ok {
		tc.delete(k)
	}
	for len(tc.m) > 0 && (len(tc.m) >= tc.max || tc.bytes+len(tok) > maxTokenCacheBytes) {
		for old := range tc.m {
			tc.delete(old)
			break
		}
	}
	tc.m[k] = &tokenCacheEntry{c: c, resource: resource}
	tc.bytes += len(tok)
}

// delete removes k; tc.mu must be held.
func (tc *tokenCache) delete(k tokenCacheKey) {
	delete(tc.m, k)
	tc.bytes -= len(k.tok)
}

// len returns the number of cached tokens.
func (tc *tokenCache) len() int {
	if tc == nil {
		return 0
	}
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return len(tc.m)
}

// validAt reports whether claims verified earlier are still within their
// token's validity window at now, with the checks of the JWT library
// (no leeway): now before exp, and not before nbf.
func (c *claims) validAt(now time.Time) bool {
	if !c.expires.IsZero() && !now.Before(c.expires) {
		return false
	}
	return c.notBefore.IsZero() || !now.Before(c.notBefore)
}
