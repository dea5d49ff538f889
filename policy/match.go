package policy

import (
	"strings"
	"unicode/utf8"
)

// Patterns are compiled at Parse time. In a compiled pattern the wildcards
// are the bytes wcStar and wcOne, so that a literal '*' or '?' (from the
// policy variables ${*} and ${?}, or from an operator without wildcards) can
// never be mistaken for one. Parse rejects policy strings holding control
// characters, so these bytes never occur literally in a pattern.
const (
	wcStar = '\x01'
	wcOne  = '\x02'
)

type globKind uint8

const (
	globAny     globKind = iota // matches everything
	globExact                   // no wildcard
	globPrefix                  // literal followed by one trailing '*'
	globSuffix                  // one leading '*' followed by a literal
	globGeneral                 // anything else
)

// glob is a compiled wildcard pattern: '*' matches any run of characters
// (including none), '?' exactly one character.
type glob struct {
	kind globKind
	fold bool   // ASCII case-insensitive (actions)
	s    string // the literal (exact/prefix/suffix) or the encoded pattern (general); lowercased when fold
}

func compileGlob(enc string, fold bool) glob {
	if fold {
		enc = lowerASCII(enc)
	}
	g := glob{fold: fold, s: enc}
	stars := strings.Count(enc, string(rune(wcStar)))
	ones := strings.Count(enc, string(rune(wcOne)))
	switch {
	case stars == len(enc) && stars > 0:
		g.kind = globAny
	case stars == 0 && ones == 0:
		g.kind = globExact
	case stars == 1 && ones == 0 && enc[len(enc)-1] == wcStar:
		g.kind, g.s = globPrefix, enc[:len(enc)-1]
	case stars == 1 && ones == 0 && enc[0] == wcStar:
		g.kind, g.s = globSuffix, enc[1:]
	default:
		g.kind = globGeneral
	}
	return g
}

func (g *glob) match(v string) bool {
	switch g.kind {
	case globAny:
		return true
	case globExact:
		if g.fold {
			return equalFoldASCII(v, g.s)
		}
		return v == g.s
	case globPrefix:
		if len(v) < len(g.s) {
			return false
		}
		if g.fold {
			return equalFoldASCII(v[:len(g.s)], g.s)
		}
		return v[:len(g.s)] == g.s
	case globSuffix:
		if len(v) < len(g.s) {
			return false
		}
		if g.fold {
			return equalFoldASCII(v[len(v)-len(g.s):], g.s)
		}
		return v[len(v)-len(g.s):] == g.s
	}
	return wildMatch(g.s, v, g.fold)
}

// wildMatch is the classic linear-space wildcard match with one backtracking
// point (O(len(p)*len(v)) worst case, no recursion, no allocation). '?'
// consumes one UTF-8 encoded character of v.
func wildMatch(p, v string, fold bool) bool {
	pi, vi := 0, 0
	starP, starV := -1, 0
	for vi < len(v) {
		if pi < len(p) {
			switch c := p[pi]; c {
			case wcStar:
				starP, starV = pi, vi
				pi++
				continue
			case wcOne:
				pi++
				vi += runeLen(v[vi:])
				continue
			default:
				b := v[vi]
				if fold {
					b = lowerByte(b)
				}
				if b == c {
					pi++
					vi++
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		pi = starP + 1
		starV += runeLen(v[starV:])
		vi = starV
	}
	for pi < len(p) && p[pi] == wcStar {
		pi++
	}
	return pi == len(p)
}

func runeLen(s string) int {
	if s[0] < utf8.RuneSelf {
		return 1
	}
	_, n := utf8.DecodeRuneInString(s)
	return n
}

func lowerByte(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + ('a' - 'A')
	}
	return b
}

func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				b[j] = lowerByte(b[j])
			}
			return string(b)
		}
	}
	return s
}

// equalFoldASCII compares v with the lowercase string low, folding ASCII
// letters of v only.
func equalFoldASCII(v, low string) bool {
	if len(v) != len(low) {
		return false
	}
	for i := 0; i < len(v); i++ {
		if lowerByte(v[i]) != low[i] {
			return false
		}
	}
	return true
}

// arnPattern matches ARNs component by component, as AWS matches Resource
// elements and the Arn* condition operators. An ARN has six colon-separated
// components (arn:partition:service:region:account:resource); the sixth is
// everything after the fifth colon. Each pattern component is matched
// against the corresponding value component, so a wildcard inside a
// component does not cross a colon, with two AWS rules on top:
//
//   - the last component of the pattern is matched against the rest of the
//     value (so "*" and "arn:aws:kms:*" match every key ARN), and
//   - a component ending in '*' may also swallow the following value
//     components (AWS: "If the * wildcard is the last character of a
//     resource ARN segment, it can expand to match beyond the colon
//     boundaries").
//
// Both the pattern and the value have at most six components, so the
// search below is bounded by a few dozen component comparisons.
type arnPattern struct {
	segs  []glob
	spans []bool // segs[i] ends with '*'
}

func compileARN(enc string) arnPattern {
	parts := strings.SplitN(enc, ":", 6)
	a := arnPattern{segs: make([]glob, len(parts)), spans: make([]bool, len(parts))}
	for i, p := range parts {
		a.segs[i] = compileGlob(p, false)
		a.spans[i] = len(p) > 0 && p[len(p)-1] == wcStar
	}
	return a
}

func (a *arnPattern) match(v string) bool {
	if len(a.segs) == 1 {
		return a.segs[0].match(v)
	}
	// starts[j] is where value component j begins; n components.
	var starts [7]int
	n := 1
	for i := 0; i < len(v) && n < 6; i++ {
		if v[i] == ':' {
			starts[n] = i + 1
			n++
		}
	}
	starts[n] = len(v) + 1 // so that starts[j+1]-1 is the end of component j
	return a.matchFrom(0, 0, v, &starts, n)
}

func (a *arnPattern) matchFrom(i, j int, v string, starts *[7]int, n int) bool {
	if j >= n {
		return false
	}
	last := len(a.segs) - 1
	if i == last {
		return a.segs[i].match(v[starts[j]:])
	}
	comp := v[starts[j] : starts[j+1]-1]
	if !a.segs[i].match(comp) {
		return false
	}
	if a.matchFrom(i+1, j+1, v, starts, n) {
		return true
	}
	if a.spans[i] {
		for k := j + 2; k < n; k++ {
			if a.matchFrom(i+1, k, v, starts, n) {
				return true
			}
		}
	}
	return false
}

// Policy variables (Version 2012-10-17 only): ${key} is replaced by the
// single value of the request context key (case-insensitive), ${key, 'x'}
// by x when the key is absent, ${*} ${?} ${$} by a literal * ? $. A
// variable that cannot be resolved (key absent without a default, or
// multi-valued) makes the element it appears in match nothing.

type tplPart struct {
	lit    string // encoded literal text, when key == ""
	key    string // lowercased context key of a variable
	def    string
	hasDef bool
}

// encodePattern turns a policy string into its encoded form: wildcards
// become wcStar/wcOne when wild is set, variables are recognized when vars
// is set. parts is nil when the string holds no variable.
func encodePattern(raw string, wild, vars bool) (enc string, parts []tplPart) {
	var b strings.Builder
	flush := func() {
		if b.Len() > 0 {
			parts = append(parts, tplPart{lit: b.String()})
			b.Reset()
		}
	}
	hasVar := false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case wild && c == '*':
			b.WriteByte(wcStar)
		case wild && c == '?':
			b.WriteByte(wcOne)
		case vars && c == '$' && i+1 < len(raw) && raw[i+1] == '{':
			end := strings.IndexByte(raw[i+2:], '}')
			if end < 0 {
				b.WriteByte(c)
				continue
			}
			body := strings.TrimSpace(raw[i+2 : i+2+end])
			i += 2 + end
			switch body {
			case "*", "?", "$":
				b.WriteString(body)
				continue
			}
			p := tplPart{key: body}
			if k, d, ok := strings.Cut(body, ","); ok {
				d = strings.TrimSpace(d)
				if len(d) >= 2 && d[0] == '\'' && d[len(d)-1] == '\'' {
					p.key, p.def, p.hasDef = strings.TrimSpace(k), d[1:len(d)-1], true
				}
			}
			p.key = strings.ToLower(p.key)
			flush()
			parts = append(parts, p)
			hasVar = true
		default:
			b.WriteByte(c)
		}
	}
	if !hasVar {
		return b.String(), nil
	}
	flush()
	return "", parts
}

// resolve substitutes the variables of parts from ctx. ok is false when a
// variable cannot be resolved.
func resolve(parts []tplPart, ctx map[string][]string) (string, bool) {
	var b strings.Builder
	for _, p := range parts {
		if p.key == "" {
			b.WriteString(p.lit)
			continue
		}
		vals := ctx[p.key]
		switch {
		case len(vals) == 1:
			if strings.IndexByte(vals[0], wcStar) >= 0 || strings.IndexByte(vals[0], wcOne) >= 0 {
				return "", false
			}
			b.WriteString(vals[0])
		case len(vals) == 0 && p.hasDef:
			b.WriteString(p.def)
		default:
			return "", false
		}
	}
	return b.String(), true
}

// matcher compares a request value with one policy value: a resource
// pattern, or one value of a string/ARN condition.
type mkind uint8

const (
	mExact mkind = iota // StringEquals: byte equality
	mFold               // StringEqualsIgnoreCase: Unicode case folding
	mGlob               // StringLike: whole-string wildcards, case-sensitive
	mARN                // Resource, ArnLike/ArnEquals: component-wise wildcards
)

type matcher struct {
	kind mkind
	s    string     // mExact, mFold
	g    glob       // mGlob
	a    arnPattern // mARN
	tpl  []tplPart  // non-nil: the value holds policy variables
}

func newMatcher(raw string, kind mkind, vars bool) matcher {
	wild := kind == mGlob || kind == mARN
	enc, tpl := encodePattern(raw, wild, vars)
	m := matcher{kind: kind, tpl: tpl}
	if tpl != nil {
		return m
	}
	switch kind {
	case mExact, mFold:
		m.s = enc
	case mGlob:
		m.g = compileGlob(enc, false)
	case mARN:
		m.a = compileARN(enc)
	}
	return m
}

func (m *matcher) match(v string, ctx map[string][]string) bool {
	if m.tpl != nil {
		enc, ok := resolve(m.tpl, ctx)
		if !ok {
			return false
		}
		switch m.kind {
		case mExact:
			return v == enc
		case mFold:
			return strings.EqualFold(v, enc)
		case mGlob:
			g := compileGlob(enc, false)
			return g.match(v)
		}
		a := compileARN(enc)
		return a.match(v)
	}
	switch m.kind {
	case mExact:
		return v == m.s
	case mFold:
		return strings.EqualFold(v, m.s)
	case mGlob:
		return m.g.match(v)
	}
	return m.a.match(v)
}
