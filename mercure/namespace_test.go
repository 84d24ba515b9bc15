package mercure

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// namespaceSelectors are selectors a subscriber of subscription events
// uses: every topic of the reserved namespace matches one of them, so no
// topic a publisher may publish may match one.
var namespaceSelectors = []Selector{
	{MatchURLPattern, "/.well-known/mercure/subscriptions/*"},
	{MatchURLPattern, "/.well-known/mercure/subscriptions/:type/:match/:subscriber"},
	{MatchURLPattern, "*://*/.well-known/mercure/*"},
	{MatchURLPattern, "*://*/.well-known/mercure"},
	{MatchURLPattern, "*://*/*/.well-known/mercure/*"},
	{MatchClassic, "/.well-known/mercure/subscriptions/{topic}/{subscriber}"},
	{MatchClassic, "{+base}/.well-known/mercure/subscriptions/{topic}/{subscriber}"},
	{MatchClassic, "{+base}/.well-known/mercure{/rest*}"},
	{MatchClassic, "https://hub.example/.well-known/mercure/subscriptions/{topic}/{subscriber}"},
	{MatchClassic, "http://mercure.invalid/.well-known/mercure/subscriptions/{topic}/{subscriber}"},
	{MatchExact, "/.well-known/mercure/subscriptions/x/y"},
}

// publishable reports whether the hub accepts topic in an update (the
// checks of parsePublishForm and checkMessage on one topic).
func publishable(c *selectorCache, topic string) bool {
	return topic != "" && topic != "*" && len(topic) <= DefaultMaxSelectorLen && validProtocolString(topic) &&
		!hasDotSegment(topic) && !c.reservedTopic(topic)
}

// checkNamespace fails when topic is publishable and yet a subscription
// event selector matches it, or when a publisher granted a template
// "…/users/{id}/feed" may publish it while a URL pattern sees it elsewhere.
func checkNamespace(t *testing.T, c *selectorCache, topic string) {
	t.Helper()
	if !publishable(c, topic) {
		return
	}
	for _, sel := range namespaceSelectors {
		if c.matches(sel, []string{topic}) {
			t.Fatalf("base %s: %q is publishable but matches the subscription-event selector %v", c.baseStr, topic, sel)
		}
	}
	// Authorization and matching see the same topic: a topic a template
	// grant allows is, resolved, under the path the grant names.
	grant := Selector{MatchClassic, "https://ex.example/users/{id}/feed"}
	same := Selector{MatchURLPattern, "https://ex.example/users/*/feed"}
	if c.matches(grant, []string{topic}) && !c.matches(same, []string{topic}) {
		t.Fatalf("%q is allowed by the grant %q but resolves outside it", topic, grant.Value)
	}
}

// namespacePieces build topics around the reserved namespace, the schemes
// and the separators that resolution rewrites.
var namespacePieces = []string{
	"/", "\\", ".", "..", "%2e", "%2E", "%2e%2e", ".%2E", "?", "#", ":", "%6d", "%6D", "%2F", "%5C",
	"http:", "HTTP:", "https:", "HtTpS:", "http://", "https://", "http:/", "http:\\", "//", "\\\\",
	"hub.example", "mercure.invalid", "ex.example", "users", "feed", "42",
	".well-known", "well-known", "mercure", "MERCURE", "Mercure", "subscriptions", "x", " ", "\t", "@",
}

func randomTopic(rng *rand.Rand) string {
	var b strings.Builder
	for range 1 + rng.IntN(10) {
		b.WriteString(namespacePieces[rng.IntN(len(namespacePieces))])
	}
	return b.String()
}

// TestReservedNamespaceClosed: over random topics built from schemes,
// separators, dot segments and escapes, no publishable topic matches a
// selector of the reserved namespace, whatever the hub's base, and no topic
// escapes a template grant through its resolved form.
func TestReservedNamespaceClosed(t *testing.T) {
	for _, base := range []string{httpBase, httpsBase} {
		c := testSelectors(t, base)
		for _, sel := range namespaceSelectors { // a selector refused would match nothing, and prove nothing
			if _, err := c.get(sel); err != nil {
				t.Fatalf("%v: %v", sel, err)
			}
		}
		rng := rand.New(rand.NewPCG(11, uint64(len(base))))
		for _, tt := range reservedCases {
			checkNamespace(t, c, tt.topic)
		}
		refused := 0
		for range 20_000 {
			topic := randomTopic(rng)
			if !publishable(c, topic) {
				refused++
			}
			checkNamespace(t, c, topic)
		}
		if refused < 2000 {
			t.Fatalf("weak sample: %d of 20000 topics refused", refused)
		}
	}
}

func FuzzReservedNamespace(f *testing.F) {
	for _, tt := range reservedCases {
		f.Add(tt.topic)
	}
	for _, s := range []string{
		"http:/.well-known/mercure/subscriptions/x", "http:.well-known/mercure/subscriptions/x",
		"HTTP:/.well-known/mercure/subscriptions/x", "http:\\.well-known\\mercure\\subscriptions\\x",
		"https://ex.example/users/../feed", "https://ex.example/users/%2e%2e/feed",
	} {
		f.Add(s)
	}
	root, hub := testSelectors(f, httpBase), testSelectors(f, httpsBase)
	f.Fuzz(func(t *testing.T, topic string) {
		checkNamespace(t, root, topic)
		checkNamespace(t, hub, topic)
	})
}

// TestResolveConcurrently: topics are resolved against the shared base URL
// from many goroutines at once (the pattern groups'); run with -race.
func TestResolveConcurrently(t *testing.T) {
	c := testSelectors(t, httpsBase)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				if c.resolve("/books/"+strconv.Itoa(g)+"/"+strconv.Itoa(i)+"?q=1") == nil {
					t.Error("a path did not resolve")
					return
				}
			}
		})
	}
	wg.Wait()
}
