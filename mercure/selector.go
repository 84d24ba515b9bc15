package mercure

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/nlnwa/whatwg-url/url"
	"github.com/yosida95/uritemplate/v3"

	"github.com/sluicehq/sluice/internal/urlpattern"
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
// type, a malformed URL pattern, a pattern over the hub's complexity
// limits. Its message never contains the compiler's own text, which may
// leak internals.
var ErrInvalidSelector = errors.New("mercure: invalid topic selector")

// matcherKind says how a compiled selector matches.
type matcherKind uint8

const (
	matchAll      matcherKind = iota // "*"
	matchExact                       // value == topic
	matchTemplate                    // value == topic, or re matches it
	matchPattern                     // the URL pattern matches the resolved topic
)

// matcher is a compiled selector.
type matcher struct {
	kind  matcherKind
	value string                 // exact: the topic; template: the template itself
	re    *regexp.Regexp         // template: its anchored expression
	p     *urlpattern.URLPattern // pattern
	width int                    // pattern or template: its matching threads (see urlpattern.Cost)
}

// isPattern reports whether m costs more than a string comparison: a URI
// template or a URL pattern.
func (m *matcher) isPattern() bool { return m.kind == matchTemplate || m.kind == matchPattern }

// match reports whether m matches t. A template matches the template
// itself (exact equality, so a template in a claim matches the same
// template in a "topic" parameter) and every topic its anchored expression
// matches; a URL pattern matches the topic as resolved against the hub's
// base, and never a topic that is not a URL reference.
func (m *matcher) match(t *topicRef) bool {
	switch m.kind {
	case matchAll:
		return true
	case matchExact:
		return m.value == t.raw
	case matchTemplate:
		return m.value == t.raw || m.re.MatchString(t.raw)
	}
	in := t.input()
	return in != nil && m.p.Match(in)
}

// topicRef is one topic of an update as the matchers see it: the text
// (exact selectors and URI templates), and the URL it resolves to against
// the hub's base (URL patterns), parsed on first use.
type topicRef struct {
	raw      string
	c        *selectorCache
	in       *urlpattern.Input
	resolved bool
}

func (t *topicRef) input() *urlpattern.Input {
	if !t.resolved {
		t.in, t.resolved = t.c.resolve(t.raw), true
	}
	return t.in
}

// selectorCache compiles selectors once and keeps the most recently used
// ones, within a budget of bytes, so that the many subscribers and tokens
// sharing a selector share its compiled form; and it resolves topics
// against the hub's base once for all the URL patterns that match them. It
// holds the limits that bound what a selector may cost. It is safe for
// concurrent use.
type selectorCache struct {
	baseStr string
	base    *url.Url
	limits  selectorLimits

	compiled *lru[Selector, *matcher]
	topics   *lru[string, *urlpattern.Input] // nil: not a URL reference
}

// selectorLimits bound one pattern selector (a URI template or a URL
// pattern): its width, the matching threads it may keep alive at once
// (what it costs per byte of a topic), and its compiled program, which may
// grow with its text but not beyond (a regular expression's repetition
// count cannot hide a large program in a short pattern).
type selectorLimits struct {
	width int // Config.MaxSelectorCost
}

// of returns the limits of a pattern of n bytes: its width, and a
// compiled program of at most four instructions a byte.
func (l selectorLimits) of(n int) urlpattern.Limits {
	return urlpattern.Limits{MaxProgram: 4*n + 256, MaxWidth: l.width}
}

// Sizes used to account for cache entries: a compiled pattern keeps about
// 50 bytes an instruction and a few KiB of structure (measured); a
// resolved topic its eight components.
const (
	patternOverhead = 8 << 10
	bytesPerInst    = 64
	topicOverhead   = 256
	// topicCacheBytes bounds the resolved topics kept.
	topicCacheBytes = 4 << 20
)

func newSelectorCache(base string, budget int64, limits selectorLimits) (*selectorCache, error) {
	b, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("base URL %q: %w", base, err)
	}
	// Parsing against b clones it, which builds its search parameters on
	// first use: build them now, so that concurrent parses only read b.
	b.SearchParams()
	return &selectorCache{
		baseStr:  base,
		base:     b,
		limits:   limits,
		compiled: newLRU[Selector, *matcher](budget),
		topics:   newLRU[string, *urlpattern.Input](topicCacheBytes),
	}, nil
}

// errTooComplex is the error of a selector over the complexity limits.
func (c *selectorCache) errTooComplex(sel Selector) error {
	return fmt.Errorf("%w: %s %q is too costly to match (wildcards, groups or template variables that can match the same text: more than %d at once; or a regexp too large for its length)",
		ErrInvalidSelector, sel.Type, sel.Value, c.limits.width)
}

// compile compiles one selector and returns the bytes it keeps.
func (c *selectorCache) compile(sel Selector) (*matcher, int64, error) {
	if sel.Value == "*" {
		return &matcher{kind: matchAll}, 0, nil
	}
	switch sel.Type {
	case MatchExact:
		return &matcher{kind: matchExact, value: sel.Value}, 0, nil
	case MatchClassic:
		if !strings.Contains(sel.Value, "{") {
			return &matcher{kind: matchExact, value: sel.Value}, 0, nil
		}
		tpl, err := uritemplate.New(sel.Value)
		if err != nil {
			// Not a template: the classic hub then only matches it exactly.
			return &matcher{kind: matchExact, value: sel.Value}, 0, nil
		}
		if len(tpl.Varnames()) > c.limits.width { // each one matches in a thread of its own
			return nil, 0, c.errTooComplex(sel)
		}
		re := tpl.Regexp()
		cost, err := urlpattern.ExprCost(re.String(), c.limits.of(len(sel.Value)))
		if err != nil || cost.Width > c.limits.width {
			return nil, 0, c.errTooComplex(sel)
		}
		size := int64(patternOverhead + bytesPerInst*cost.Insts + 2*len(sel.Value))
		return &matcher{kind: matchTemplate, value: sel.Value, re: re, width: cost.Width}, size, nil
	case MatchURLPattern:
		lim := c.limits.of(len(sel.Value))
		p, err := urlpattern.New(sel.Value, c.baseStr, &urlpattern.Options{MaxProgram: lim.MaxProgram, MaxWidth: lim.MaxWidth})
		if errors.Is(err, urlpattern.ErrTooComplex) {
			return nil, 0, c.errTooComplex(sel)
		}
		if err != nil {
			return nil, 0, fmt.Errorf("%w: URL pattern %q does not compile", ErrInvalidSelector, sel.Value)
		}
		cost := p.Cost()
		if cost.Width > c.limits.width {
			return nil, 0, c.errTooComplex(sel)
		}
		size := int64(patternOverhead + bytesPerInst*cost.Insts + 2*len(sel.Value))
		return &matcher{kind: matchPattern, p: p, width: cost.Width}, size, nil
	}
	return nil, 0, fmt.Errorf("%w: unknown match type %q", ErrInvalidSelector, sel.Type)
}

// get returns the compiled selector, compiling it on a miss. Compilation
// errors are not cached; selectors that compile to a string comparison are
// not cached either (there is nothing to share).
func (c *selectorCache) get(sel Selector) (*matcher, error) {
	if sel.Value == "*" || sel.Type == MatchExact {
		m, _, err := c.compile(sel)
		return m, err
	}
	if m, ok := c.compiled.get(sel); ok {
		return m, nil
	}
	m, size, err := c.compile(sel)
	if err != nil || !m.isPattern() {
		return m, err
	}
	return c.compiled.add(sel, m, size), nil
}

// resolve returns topic resolved as a URL reference against the hub's base,
// or nil when it is not one. The answers are cached: the topics of the
// updates are few compared with the URL patterns matched against them.
func (c *selectorCache) resolve(topic string) *urlpattern.Input {
	if in, ok := c.topics.get(topic); ok {
		return in
	}
	in, err := urlpattern.ParseInput(topic, c.base)
	if err != nil {
		in = nil
	}
	size := int64(topicOverhead + len(topic))
	if in != nil {
		size += int64(len(topic)) // the components hold about the topic again
	}
	return c.topics.add(topic, in, size)
}

// matches reports whether sel matches one of topics. A selector that does
// not compile matches nothing.
func (c *selectorCache) matches(sel Selector, topics []string) bool {
	m, err := c.get(sel)
	if err != nil {
		return false
	}
	return c.set([]*matcher{m}).matchAny(topics)
}

// set returns the selector set of the compiled selectors ms.
func (c *selectorCache) set(ms []*matcher) selectorSet { return selectorSet{c: c, ms: ms} }

// selectorSet is a compiled list of selectors: it matches a topic when one
// of them does.
type selectorSet struct {
	c  *selectorCache
	ms []*matcher
}

// matchAny reports whether one of the selectors matches one of topics. Each
// topic is resolved at most once, and only when a URL pattern asks.
func (s selectorSet) matchAny(topics []string) bool {
	if len(s.ms) == 0 {
		return false
	}
	var buf [4]topicRef
	refs := buf[:0]
	if len(topics) > len(buf) {
		refs = make([]topicRef, 0, len(topics))
	}
	for _, t := range topics {
		refs = append(refs, topicRef{raw: t, c: s.c})
	}
	for _, m := range s.ms {
		for i := range refs {
			if m.match(&refs[i]) {
				return true
			}
		}
	}
	return false
}
