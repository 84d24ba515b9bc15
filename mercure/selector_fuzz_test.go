package mercure

import "testing"

// FuzzSelectorCompile: whatever a subscriber sends as a selector, compiling
// it either fails with ErrInvalidSelector or gives a matcher within the
// limits, and matching topics with it does not panic.
func FuzzSelectorCompile(f *testing.F) {
	for _, s := range []string{
		"https://example.com/books/{id}", "{+a}{+b}{+c}", "https://a/b{?x,y}", "{", "}", "{#x}{.y}{/z*}{;w}",
		"https://example.com/books/:id", "*://*/**", "/foo/:id(\\d+)", "(a{1000})", "https://*.example.com/*",
		"/.well-known/mercure/subscriptions{/type}?{/match}?", ":a:b:c", "((((", "\\", "%", "https://example.com/{",
	} {
		f.Add(s, true)
		f.Add(s, false)
	}
	c := testSelectors(f, httpsBase)
	topics := []string{"https://example.com/books/1", "/foo/12", "urn:x", "", "https://a/b?x=1&y=2", "%zz"}
	f.Fuzz(func(t *testing.T, value string, pattern bool) {
		typ := MatchClassic
		if pattern {
			typ = MatchURLPattern
		}
		if len(value) > DefaultMaxSelectorLen {
			return
		}
		m, err := c.get(Selector{Type: typ, Value: value})
		if err != nil {
			return
		}
		if m.width > c.limits.width {
			t.Fatalf("%s %q compiled with width %d over the limit %d", typ, value, m.width, c.limits.width)
		}
		c.set([]*matcher{m}).matchAny(topics)
	})
}
