package urlpattern

// This file is sluice's addition to the copy of
// github.com/dunglas/go-urlpattern: matching a URL parsed once against many
// patterns, and the measures that bound what an untrusted pattern costs.

import (
	"errors"
	"regexp/syntax"

	"github.com/nlnwa/whatwg-url/url"
)

// ErrTooComplex reports a pattern over Options.MaxProgram.
var ErrTooComplex = errors.New("urlpattern: pattern too complex")

// Input is a URL parsed for matching: parse it once with ParseInput, then
// Match it against any number of patterns. Its components are those Exec
// matches.
type Input struct {
	protocol, username, password, hostname, port, pathname, search, hash string
}

// ParseInput parses input as a URL reference against base (nil: input must
// be absolute), as Exec does.
func ParseInput(input string, base *url.Url) (*Input, error) {
	u, err := urlParser.BasicParser(input, base, nil, url.NoState)
	if err != nil {
		return nil, err
	}
	return &Input{
		protocol: u.Scheme(), username: u.Username(), password: u.Password(), hostname: u.Hostname(),
		port: u.Port(), pathname: u.Pathname(), search: u.Query(), hash: u.Fragment(),
	}, nil
}

// Pathname returns the input's path, as the pattern's pathname component
// sees it (dot segments removed, backslashes of special schemes read as
// slashes).
func (in *Input) Pathname() string { return in.pathname }

// Match reports whether in matches the pattern: Test, without parsing.
// Components that match everything are skipped.
func (u *URLPattern) Match(in *Input) bool {
	return u.protocol.matches(in.protocol) && u.username.matches(in.username) &&
		u.password.matches(in.password) && u.hostname.matches(in.hostname) &&
		u.port.matches(in.port) && u.pathname.matches(in.pathname) &&
		u.search.matches(in.search) && u.hash.matches(in.hash)
}

var (
	fullWildcard     = sharedComponentRegexps[`\A(?:(.*))\z`]
	fullWildcardFold = sharedComponentRegexps[`(?i)\A(?:(.*))\z`]
)

func (c *component) matches(s string) bool {
	re := c.regularExpression
	return re == fullWildcard || re == fullWildcardFold || re.MatchString(s)
}

// Cost measures what a compiled regular expression costs to keep and to
// run.
type Cost struct {
	// Insts is the number of instructions of the compiled program: memory
	// grows with it.
	Insts int
	// Branches is the number of points where the program may go two ways
	// (repetitions, optional parts, alternatives): the matching threads
	// alive at once, and so the time per input byte, grow with it.
	Branches int
}

// Add returns the sum of two costs.
func (c Cost) Add(d Cost) Cost { return Cost{Insts: c.Insts + d.Insts, Branches: c.Branches + d.Branches} }

// Cost returns the cost of matching the pattern with Match: that of its
// components that do not match everything.
func (u *URLPattern) Cost() Cost {
	var c Cost
	for _, comp := range []*component{u.protocol, u.username, u.password, u.hostname, u.port, u.pathname, u.search, u.hash} {
		c = c.Add(comp.cost)
	}
	return c
}

// costCap bounds the cost arithmetic, so that nested repetitions cannot
// overflow it.
const costCap = 1 << 30

// ExprCost returns the cost of a regular expression (Perl syntax), from its
// parse tree, without compiling it.
func ExprCost(expr string) (Cost, error) {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return Cost{}, err
	}
	return RegexpCost(re), nil
}

// RegexpCost returns the cost of a parsed regular expression: an estimate,
// from above, of the instructions and branch points syntax.Compile makes.
func RegexpCost(re *syntax.Regexp) Cost {
	sat := func(n int) int { return min(n, costCap) }
	mul := func(c Cost, n int) Cost {
		if n == 0 {
			return Cost{}
		}
		if c.Insts > costCap/n || c.Branches > costCap/n {
			return Cost{Insts: costCap, Branches: costCap}
		}
		return Cost{Insts: c.Insts * n, Branches: c.Branches * n}
	}
	switch re.Op {
	case syntax.OpLiteral:
		return Cost{Insts: max(len(re.Rune), 1)}
	case syntax.OpCapture:
		c := RegexpCost(re.Sub[0])
		return Cost{Insts: sat(c.Insts + 2), Branches: c.Branches}
	case syntax.OpStar, syntax.OpPlus, syntax.OpQuest:
		c := RegexpCost(re.Sub[0])
		return Cost{Insts: sat(c.Insts + 1), Branches: sat(c.Branches + 1)}
	case syntax.OpRepeat:
		c := RegexpCost(re.Sub[0])
		if re.Max < 0 { // {min,}: min copies and a star
			r := mul(c, re.Min+1)
			return Cost{Insts: sat(r.Insts + 1), Branches: sat(r.Branches + 1)}
		}
		r := mul(c, re.Max)
		opt := re.Max - re.Min // each optional copy is one more branch
		return Cost{Insts: sat(r.Insts + opt), Branches: sat(r.Branches + opt)}
	case syntax.OpConcat, syntax.OpAlternate:
		var c Cost
		for _, sub := range re.Sub {
			s := RegexpCost(sub)
			c = Cost{Insts: sat(c.Insts + s.Insts), Branches: sat(c.Branches + s.Branches)}
		}
		if re.Op == syntax.OpAlternate && len(re.Sub) > 1 {
			n := len(re.Sub) - 1
			c = Cost{Insts: sat(c.Insts + n), Branches: sat(c.Branches + n)}
		}
		return c
	}
	return Cost{Insts: 1} // classes, anchors, empty
}
