package urlpattern

// This file is sluice's addition to the copy of
// github.com/dunglas/go-urlpattern: matching a URL parsed once against many
// patterns, and the measures that bound what an untrusted pattern costs.

import (
	"encoding/binary"
	"errors"
	"regexp/syntax"
	"slices"
	"unicode"

	"github.com/nlnwa/whatwg-url/url"
)

// ErrTooComplex reports a pattern over Options.MaxProgram or
// Options.MaxWidth, or too ambiguous to measure within the work those
// allow.
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
	// Width is the most matching threads the program keeps alive at once,
	// whatever the input: Go's regexp matches in time proportional to the
	// length of the input times the width.
	Width int
}

// Add returns the sum of two costs.
func (c Cost) Add(d Cost) Cost { return Cost{Insts: c.Insts + d.Insts, Width: c.Width + d.Width} }

// Cost returns the cost of matching the pattern with Match: that of its
// components that do not match everything.
func (u *URLPattern) Cost() Cost {
	var c Cost
	for _, comp := range []*component{u.protocol, u.username, u.password, u.hostname, u.port, u.pathname, u.search, u.hash} {
		c = c.Add(comp.cost)
	}
	return c
}

// Limits bound what compiling and matching a regular expression may cost.
// A zero field means no limit.
type Limits struct {
	// MaxProgram bounds the instructions of the compiled program,
	// estimated from above from the parse tree, before compiling it.
	MaxProgram int
	// MaxWidth bounds the program's width (see Cost).
	MaxWidth int
}

// workPerInst is the measuring work (instructions matched against a rune)
// allowed per instruction of MaxProgram: enough for any program whose
// states grow with its length, not for one whose states explode.
const workPerInst = 4

// ExprCost returns the cost of a regular expression (Perl syntax). It
// refuses with ErrTooComplex, before compiling it, an expression whose
// program would have more than lim.MaxProgram instructions; then one
// whose width is over lim.MaxWidth, or that cannot be measured within
// workPerInst × lim.MaxProgram steps (a program whose states explode).
func ExprCost(expr string, lim Limits) (Cost, error) {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return Cost{}, err
	}
	insts := instsEstimate(re)
	budget := 1 << 30
	if lim.MaxProgram > 0 {
		if insts > lim.MaxProgram {
			return Cost{}, ErrTooComplex
		}
		budget = workPerInst*lim.MaxProgram + 4096
	}
	maxWidth := lim.MaxWidth
	if maxWidth <= 0 {
		maxWidth = 1 << 30
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		return Cost{}, err
	}
	w, ok := progWidth(prog, maxWidth, budget)
	if !ok {
		return Cost{}, ErrTooComplex
	}
	return Cost{Insts: len(prog.Inst), Width: w}, nil
}

// costCap bounds the instruction arithmetic, so that nested repetitions
// cannot overflow it.
const costCap = 1 << 30

// instsEstimate estimates, from above, the instructions syntax.Compile makes
// for re.
func instsEstimate(re *syntax.Regexp) int {
	sat := func(n int) int { return min(n, costCap) }
	switch re.Op {
	case syntax.OpLiteral:
		return max(len(re.Rune), 1)
	case syntax.OpCapture:
		return sat(instsEstimate(re.Sub[0]) + 2)
	case syntax.OpStar, syntax.OpPlus, syntax.OpQuest:
		return sat(instsEstimate(re.Sub[0]) + 1)
	case syntax.OpRepeat:
		n := instsEstimate(re.Sub[0])
		copies := re.Max
		if copies < 0 {
			copies = re.Min + 1
		}
		if copies > 0 && n > costCap/copies {
			return costCap
		}
		return sat(n*copies + copies + 1)
	case syntax.OpConcat, syntax.OpAlternate:
		n := len(re.Sub)
		for _, sub := range re.Sub {
			n = sat(n + instsEstimate(sub))
		}
		return n
	}
	return 1 // classes, anchors, empty
}

// progWidth returns the most consuming instructions of p alive at once,
// exploring its states as a DFA would. ok is false when the width goes
// over maxWidth or the exploration over budget steps (an instruction
// matched against a rune, or added to a state).
func progWidth(p *syntax.Prog, maxWidth, budget int) (int, bool) {
	w := widthWalker{p: p, mark: make([]uint32, len(p.Inst))}
	start := w.closure(nil, []uint32{uint32(p.Start)})
	visited := map[string]bool{stateKey(start): true}
	queue := [][]uint32{start}
	width := len(start)
	work := len(start)
	var reps []rune
	seenOuts := make(map[string]bool)
	for len(queue) > 0 {
		if width > maxWidth || work > budget {
			return width, false
		}
		st := queue[0]
		queue = queue[1:]
		reps = w.representatives(reps[:0], st)
		work += len(reps) * len(st) / 8 // matching a rune is cheap: the closures below are the work
		clear(seenOuts)
		for _, r := range reps {
			var outs []uint32
			for _, pc := range st {
				if in := &p.Inst[pc]; in.MatchRune(r) {
					outs = append(outs, in.Out)
				}
			}
			if len(outs) == 0 {
				continue
			}
			// Many runes lead to the same instructions: each set once.
			if ok := stateKey(outs); seenOuts[ok] {
				continue
			} else {
				seenOuts[ok] = true
			}
			next := w.closure(nil, outs)
			work += len(next)
			if len(next) == 0 {
				continue
			}
			k := stateKey(next)
			if visited[k] {
				continue
			}
			visited[k] = true
			width = max(width, len(next))
			queue = append(queue, next)
		}
	}
	return width, width <= maxWidth && work <= budget
}

type widthWalker struct {
	p    *syntax.Prog
	mark []uint32 // generation of the last closure that reached each pc
	gen  uint32
}

// closure returns, sorted, the consuming instructions reachable from pcs
// without input (anchors and word boundaries assumed to hold, which can
// only overstate the width).
func (w *widthWalker) closure(dst, pcs []uint32) []uint32 {
	w.gen++
	stack := append([]uint32(nil), pcs...)
	for len(stack) > 0 {
		pc := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if w.mark[pc] == w.gen {
			continue
		}
		w.mark[pc] = w.gen
		in := &w.p.Inst[pc]
		switch in.Op {
		case syntax.InstAlt, syntax.InstAltMatch:
			stack = append(stack, in.Out, in.Arg)
		case syntax.InstCapture, syntax.InstNop, syntax.InstEmptyWidth:
			stack = append(stack, in.Out)
		case syntax.InstRune, syntax.InstRune1, syntax.InstRuneAny, syntax.InstRuneAnyNotNL:
			dst = append(dst, pc)
		}
	}
	slices.Sort(dst)
	return dst
}

func stateKey(st []uint32) string {
	b := make([]byte, 0, 4*len(st))
	for _, pc := range st {
		b = binary.LittleEndian.AppendUint32(b, pc)
	}
	return string(b)
}

// representatives appends runes such that every set of the state's
// instructions some rune matches is matched by one of them: the starts of
// the intervals over which that set is constant (and, for case-folding
// instructions, their case variants).
func (w *widthWalker) representatives(dst []rune, st []uint32) []rune {
	add := func(r rune, fold bool) {
		if r < 0 || r > unicode.MaxRune {
			return
		}
		dst = append(dst, r)
		if fold {
			for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
				dst = append(dst, f)
			}
		}
	}
	dst = append(dst, 0, '\n', '\n'+1)
	for _, pc := range st {
		in := &w.p.Inst[pc]
		fold := syntax.Flags(in.Arg)&syntax.FoldCase != 0
		switch in.Op {
		case syntax.InstRune1:
			add(in.Rune[0], false)
			add(in.Rune[0]+1, false)
		case syntax.InstRune:
			if len(in.Rune) == 1 {
				add(in.Rune[0], fold)
				add(in.Rune[0]+1, fold)
			}
			for i := 0; i+1 < len(in.Rune); i += 2 {
				add(in.Rune[i], fold)
				add(in.Rune[i+1]+1, fold)
			}
		}
	}
	slices.Sort(dst)
	return slices.Compact(dst)
}
