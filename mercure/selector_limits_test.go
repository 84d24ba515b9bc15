package mercure

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// The selectors of the finding: a hundred URL patterns of 4,000 "*", or
// 180 templates of hundreds of adjacent variables, each added 130–200 ms
// to every event for every subscriber. They are refused with 400 before
// anything is compiled for long.
func TestCostlySelectorsRefused(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxBodySize = 8 << 20 }) // the selector limits refuse, not the body's
	stars := url.Values{}
	for i := range 100 {
		stars.Add("match_urlpattern", fmt.Sprintf("*://*/%s/%d", strings.Repeat("*", 4000), i))
	}
	var tpl strings.Builder
	for i := 0; tpl.Len() < 3900; i++ {
		fmt.Fprintf(&tpl, "{+v%d}", i)
	}
	templates := url.Values{}
	for i := range 180 {
		templates.Add("topic", fmt.Sprintf("%s/%d", tpl.String(), i))
	}
	few := url.Values{}
	for i := range 3 {
		few.Add("topic", fmt.Sprintf("{+a}{+b}{+c}{+d}{+e}{+f}{+g}{+h}{+i}{+j}{+k}{+l}/%d", i)) // 12 variables each
	}
	for name, q := range map[string]url.Values{"stars": stars, "templates": templates, "costly together": few} {
		req, _ := http.NewRequest("QUERY", e.srv.URL+HubPath, strings.NewReader(q.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp := e.do(req)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", name, resp.StatusCode)
		}
	}
}

// Requests with many distinct long patterns (HEAD, which opens no stream)
// leave the compiled-pattern cache within its budget: the finding grew
// the hub from 16 MB to 2.6 GB with thirty of them.
func TestSelectorCacheStaysInBudget(t *testing.T) {
	const budget = 1 << 20
	e := newEnv(t, func(c *Config) { c.SelectorCacheSize = budget })
	for r := range 30 {
		q := url.Values{}
		q.Add("match_urlpattern", fmt.Sprintf("https://example.com/%s/%d/:id", strings.Repeat("x", 3900), r)) // MaxPatternBytes
		req, _ := http.NewRequest(http.MethodHead, e.srv.URL+HubPath+"?"+q.Encode(), nil)
		if resp := e.do(req); resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: status %d", r, resp.StatusCode)
		}
	}
	n, b := e.h.selectors.compiled.stats()
	if b > budget || n == 0 {
		t.Fatalf("the cache holds %d patterns in %d bytes, budget %d", n, b, budget)
	}
	t.Logf("%d patterns cached in %d KiB", n, b>>10)
}
