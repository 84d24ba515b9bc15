package urlpattern_test

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/nlnwa/whatwg-url/url"

	"github.com/sluicehq/sluice/internal/urlpattern"
)

// TestMatchAgreesWithTest runs the web-platform-tests corpus through
// ParseInput and Match: wherever Test takes a string input, Match of the
// parsed input must give the same answer.
func TestMatchAgreesWithTest(t *testing.T) {
	content, err := os.ReadFile("testdata/urlpatterntestdata.json")
	if err != nil {
		t.Fatal(err)
	}
	var data []Entry
	if err := json.Unmarshal(content, &data); err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, entry := range data {
		pattern, err := newPattern(t, &entry)
		if err != nil || len(entry.Inputs) == 0 {
			continue
		}
		input, ok := entry.Inputs[0].(string)
		if !ok {
			continue
		}
		var base *url.Url
		baseStr := ""
		if len(entry.Inputs) > 1 {
			if baseStr, ok = entry.Inputs[1].(string); !ok {
				continue
			}
			if base, err = url.Parse(baseStr); err != nil {
				continue // Test answers false; nothing to parse against
			}
		}
		want := pattern.Test(input, baseStr)
		in, err := urlpattern.ParseInput(input, base)
		got := err == nil && pattern.Match(in)
		if got != want {
			t.Errorf("pattern %v, input %q (base %q): Match %v, Test %v", entry.Pattern, input, baseStr, got, want)
		}
		checked++
	}
	if checked < 50 {
		t.Fatalf("only %d corpus entries compared", checked)
	}
}

func TestCost(t *testing.T) {
	for _, tc := range []struct {
		expr           string
		insts, branchs int
	}{
		{`abc`, 3, 0},
		{`a*`, 2, 1},
		{`(ab|cd|ef)`, 9, 2},
		{`a{3}`, 3, 0},
		{`a{1,3}`, 5, 2},
		{`(?:a*){4}`, 8, 4},
		{`a{2,}`, 4, 1},
	} {
		c, err := urlpattern.ExprCost(tc.expr)
		if err != nil {
			t.Fatal(err)
		}
		if c.Insts < tc.insts || c.Branches != tc.branchs {
			t.Errorf("%s: cost %+v, want >= %d insts and %d branches", tc.expr, c, tc.insts, tc.branchs)
		}
	}
	// Nested repetitions saturate instead of overflowing.
	c, err := urlpattern.ExprCost(`((((a{1000}){1000}){1000}){1000})`)
	if err == nil && (c.Insts <= 0 || c.Branches < 0) {
		t.Errorf("nested repeats: %+v", c)
	}
}

func TestPatternCost(t *testing.T) {
	simple, err := urlpattern.New("https://example.com/books/:id", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	stars, err := urlpattern.New("*://*/"+strings.Repeat("*", 100), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if s, h := simple.Cost(), stars.Cost(); s.Branches < 1 || s.Branches > 4 || h.Branches < 100 {
		t.Errorf("costs: simple %+v, 100 stars %+v", s, h)
	}
	// A pattern over MaxProgram is refused before its expression is compiled.
	for _, p := range []string{
		"https://example.com/((?:a{30}|b{30}){30})",
		"https://example.com/" + strings.Repeat("(a{1000})", 20),
	} {
		if _, err := urlpattern.New(p, "", &urlpattern.Options{MaxProgram: 1000}); !errors.Is(err, urlpattern.ErrTooComplex) {
			t.Errorf("%.40s…: %v, want ErrTooComplex", p, err)
		}
	}
}
