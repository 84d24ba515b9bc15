package urlpattern_test

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"regexp/syntax"
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
		expr         string
		insts, width int
	}{
		{`^abc$`, 3, 1},
		{`^a*$`, 2, 1},
		{`^(?:.*)(?:.*)(?:.*)$`, 3, 3},
		{`^` + strings.Repeat(`(.*)`, 30) + `$`, 30, 30},
		{`^(?:ab)*(?:ab)*(?:ab)*$`, 6, 3},
		{`^x(?:a|b)*y$`, 4, 2},
		{`^(?i:k)+$`, 1, 1},
	} {
		c, err := urlpattern.ExprCost(tc.expr, urlpattern.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if c.Insts < tc.insts || c.Width != tc.width {
			t.Errorf("%.40s: cost %+v, want >= %d insts and width %d", tc.expr, c, tc.insts, tc.width)
		}
	}
	// Nested repetitions are refused before they are compiled.
	if _, err := urlpattern.ExprCost(`^(?:(?:a{30}|b{30}|c{30}|d{30}){30})$`, urlpattern.Limits{MaxProgram: 1000}); !errors.Is(err, urlpattern.ErrTooComplex) {
		t.Errorf("nested repeats: %v, want ErrTooComplex", err)
	}
}

// TestWidthBoundsThreads runs a breadth-first NFA simulation, as Go's
// regexp does, over random inputs: it never has more threads alive than
// the width says.
func TestWidthBoundsThreads(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	for _, expr := range []string{
		`^(.*)(.*)(.*)$`, `^(?:ab)*(?:ab)*(?:a|b)*$`, `^(a|ab)(c|bcd)(d*)$`, `^x[a-c]*[b-d]*y$`,
		`^((?:[a-z]|%[0-9A-F]{2})*)?/((?:[a-z]|%[0-9A-F]{2})*)?$`, `^(?i)(?:K|k)*[^k]*$`, `^(?:.*\n)*.*$`,
	} {
		c, err := urlpattern.ExprCost(expr, urlpattern.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		re, _ := syntax.Parse(expr, syntax.Perl)
		prog, _ := syntax.Compile(re.Simplify())
		alphabet := []rune("abcdxyk%/AF09\nKé")
		for range 500 {
			in := make([]rune, rng.IntN(20))
			for i := range in {
				in[i] = alphabet[rng.IntN(len(alphabet))]
			}
			if n := maxThreads(prog, in); n > c.Width {
				t.Fatalf("%s on %q: %d threads, width %d", expr, string(in), n, c.Width)
			}
		}
	}
}

// maxThreads simulates prog on in and returns the most consuming
// instructions alive at once.
func maxThreads(p *syntax.Prog, in []rune) int {
	var add func(set map[uint32]bool, pc uint32)
	add = func(set map[uint32]bool, pc uint32) {
		inst := &p.Inst[pc]
		switch inst.Op {
		case syntax.InstAlt, syntax.InstAltMatch:
			add(set, inst.Out)
			add(set, inst.Arg)
		case syntax.InstCapture, syntax.InstNop, syntax.InstEmptyWidth:
			add(set, inst.Out)
		case syntax.InstRune, syntax.InstRune1, syntax.InstRuneAny, syntax.InstRuneAnyNotNL:
			set[pc] = true
		}
	}
	cur := map[uint32]bool{}
	add(cur, uint32(p.Start))
	most := len(cur)
	for _, r := range in {
		next := map[uint32]bool{}
		for pc := range cur {
			if p.Inst[pc].MatchRune(r) {
				add(next, p.Inst[pc].Out)
			}
		}
		most = max(most, len(next))
		cur = next
	}
	return most
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
	if s, h := simple.Cost(), stars.Cost(); s.Width < 1 || s.Width > 4 || h.Width < 50 {
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
