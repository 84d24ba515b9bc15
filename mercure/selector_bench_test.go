package mercure

import (
	"strconv"
	"strings"
	"testing"
)

// BenchmarkSelectorMatch: one update's topic against one compiled selector,
// for the common selectors and for the costliest the default limits allow.
func BenchmarkSelectorMatch(b *testing.B) {
	topics := map[string]string{
		"short": "https://example.com/books/1234/chapters/5",
		"4KiB":  "https://example.com/" + strings.Repeat("ab/", 1360),
	}
	sels := []struct {
		name string
		sel  Selector
	}{
		{"template", Selector{MatchClassic, "https://example.com/books/{id}/chapters/{ch}"}},
		{"urlpattern", Selector{MatchURLPattern, "https://example.com/books/:id/*"}},
		{"urlpattern-30-stars", Selector{MatchURLPattern, "*://*/" + strings.Repeat("*", 30)}},
		{"template-10-vars", Selector{MatchClassic, templateVars(10)}},
	}
	for tname, topic := range topics {
		for _, s := range sels {
			b.Run(s.name+"/"+tname, func(b *testing.B) {
				c := testSelectors(b, httpBase)
				m, err := c.get(s.sel)
				if err != nil {
					b.Fatal(err)
				}
				set := c.set([]*matcher{m})
				ts := []string{topic}
				for b.Loop() {
					set.matchAny(ts)
				}
			})
		}
	}
}

func templateVars(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString("{+v" + strconv.Itoa(i) + "}")
	}
	return b.String()
}

// BenchmarkSelectorCompile: what compiling one pattern costs, for a common
// one and for the costliest 4 KiB ones a subscriber may send (refused or
// not, compiling is the work): a subscription's patterns are at most
// MaxPatternBytes in all.
func BenchmarkSelectorCompile(b *testing.B) {
	for _, tc := range []struct {
		name string
		sel  Selector
	}{
		{"template", Selector{MatchClassic, "https://example.com/books/{id}"}},
		{"urlpattern", Selector{MatchURLPattern, "https://example.com/books/:id"}},
		{"4KiB-literal", Selector{MatchURLPattern, "https://example.com/" + strings.Repeat("xy", 1990) + "/:id"}},
		{"4KiB-exploding", Selector{MatchURLPattern, "https://example.com/" + strings.Repeat("x", 3900) + "([ab]*a" + strings.Repeat("[ab]", 14) + ")"}},
		{"4KiB-wide", Selector{MatchURLPattern, "https://example.com/" + strings.Repeat("([a-z0-9]*)", 10) + strings.Repeat("x", 3900)}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			c := testSelectors(b, httpBase)
			for b.Loop() {
				c.compile(tc.sel)
			}
		})
	}
}
