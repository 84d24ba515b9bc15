package mercure

import (
	"container/list"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/dunglas/go-urlpattern"
	"github.com/yosida95/uritemplate/v3"
)

// MatchType names how a topic selector is matched against the topics of an
// update.
type MatchType string

// The matcher types.
const (
	// MatchExact compares byte for byte (modern "match" and "match_exact"
	// parameters, and "exact" authorization_details topics).
	MatchExact MatchType = "exact"
	// MatchURLPattern is a WHATWG URL Pattern (modern "match_urlpattern",
	// and "urlpattern" authorization_details topics). Relative patterns
	// and topics are resolved against the hub's base URL.
	MatchURLPattern MatchType = "urlpattern"
	// MatchClassic is the selector of the classic protocol (the "topic"
	// query parameter and the classic "mercure" JWT claim): "*", an exact
	// string, or an RFC 6570 URI template.
	MatchClassic MatchType = "classic"
)

// Selector is one topic selector: a type and a value. The value "*"
// matches every topic whatever the type.
type Selector struct {
	Type  MatchType
	Value string
}

// ErrInvalidSelector reports a selector that cannot be compiled: an unknown
// type, a malformed URL pattern. Its message never contains the compiler's
// own text, which may leak internals.
var ErrInvalidSelector = errors.New("mercure: invalid topic selector")

// matcher is a compiled selector.
type matcher interface {
	match(topic string) bool
}

type matchAll struct{}

func (matchAll) match(string) bool { return true }

type matchExact string

func (m matchExact) match(topic string) bool { return string(m) == topic }

// matchTemplate is a classic selector that is an RFC 6570 URI template: it
// matches the template itself (exact equality, so a template in a claim
// matches the same template in a "topic" parameter) and every topic the
// template's anchored regular expression matches.
type matchTemplate struct {
	raw string
	re  *regexp.Regexp
}

func (m *matchTemplate) match(topic string) bool { return topic == m.raw || m.re.MatchString(topic) }

type matchPattern struct {
	p    *urlpattern.URLPattern
	base string
}

func (m *matchPattern) match(topic string) bool { return m.p.Test(topic, m.base) }

// compile compiles one selector. base is the URL relative URL patterns and
// topics are resolved against.
func compile(sel Selector, base string) (matcher, error) {
	if sel.Value == "*" {
		return matchAll{}, nil
	}
	switch sel.Type {
	case MatchExact:
		return matchExact(sel.Value), nil
	case MatchClassic:
		if !strings.Contains(sel.Value, "{") {
			return matchExact(sel.Value), nil
		}
		tpl, err := uritemplate.New(sel.Value)
		if err != nil {
			// Not a template: the classic hub then only matches it exactly.
			return matchExact(sel.Value), nil
		}
		return &matchTemplate{raw: sel.Value, re: tpl.Regexp()}, nil
	case MatchURLPattern:
		p, err := urlpattern.New(sel.Value, base, nil)
		if err != nil {
			return nil, fmt.Errorf("%w: URL pattern %q does not compile", ErrInvalidSelector, sel.Value)
		}
		return &matchPattern{p: p, base: base}, nil
	}
	return nil, fmt.Errorf("%w: unknown match type %q", ErrInvalidSelector, sel.Type)
}

// selectorCache compiles selectors once and keeps the most recently used
// ones, so that the many subscribers and tokens sharing a selector share its
// compiled form. It is safe for concurrent use.
type selectorCache struct {
	base string
	max  int

	mu  sync.Mutex
	lru *list.List // of *cacheEntry, most recent first
	m   map[Selector]*list.Element
}

type cacheEntry struct {
	sel Selector
	m   matcher
}

func newSelectorCache(base string, max int) *selectorCache {
	return &selectorCache{base: base, max: max, lru: list.New(), m: make(map[Selector]*list.Element)}
}

// get returns the compiled selector, compiling it on a miss. Compilation
// errors are not cached.
func (c *selectorCache) get(sel Selector) (matcher, error) {
	if sel.Value == "*" {
		return matchAll{}, nil
	}
	if sel.Type == MatchExact {
		return matchExact(sel.Value), nil // nothing to compile
	}
	c.mu.Lock()
	if e, ok := c.m[sel]; ok {
		c.lru.MoveToFront(e)
		m := e.Value.(*cacheEntry).m
		c.mu.Unlock()
		return m, nil
	}
	c.mu.Unlock()

	m, err := compile(sel, c.base)
	if err != nil {
		return nil, err
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[sel]; ok { // compiled concurrently
		c.lru.MoveToFront(e)
		return e.Value.(*cacheEntry).m, nil
	}
	c.m[sel] = c.lru.PushFront(&cacheEntry{sel: sel, m: m})
	for c.lru.Len() > c.max {
		last := c.lru.Back()
		c.lru.Remove(last)
		delete(c.m, last.Value.(*cacheEntry).sel)
	}
	return m, nil
}

// len returns the number of cached selectors.
func (c *selectorCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// matches reports whether sel matches one of topics. A selector that does
// not compile matches nothing.
func (c *selectorCache) matches(sel Selector, topics []string) bool {
	m, err := c.get(sel)
	if err != nil {
		return false
	}
	for _, t := range topics {
		if m.match(t) {
			return true
		}
	}
	return false
}

// selectorSet is a compiled list of selectors: it matches a topic when one
// of them does.
type selectorSet []matcher

func (s selectorSet) matchAny(topics []string) bool {
	for _, m := range s {
		for _, t := range topics {
			if m.match(t) {
				return true
			}
		}
	}
	return false
}
