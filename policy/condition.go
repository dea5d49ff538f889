package policy

import (
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Condition operators. Every operator is one of these bases, with a
// comparison (numeric and date operators), possibly negated, possibly with
// a set-operator prefix and the IfExists suffix.
type opBase uint8

const (
	opString     opBase = iota // StringEquals, StringNotEquals
	opStringFold               // StringEqualsIgnoreCase, StringNotEqualsIgnoreCase
	opStringLike               // StringLike, StringNotLike
	opNumeric                  // NumericEquals ... NumericGreaterThanEquals
	opDate                     // DateEquals ... DateGreaterThanEquals
	opBool                     // Bool
	opArn                      // ArnEquals, ArnLike, ArnNotEquals, ArnNotLike
	opIP                       // IpAddress, NotIpAddress
	opBinary                   // BinaryEquals
	opNull                     // Null
)

type cmpKind uint8

const (
	cmpEq cmpKind = iota
	cmpLt
	cmpLe
	cmpGt
	cmpGe
)

type setOp uint8

const (
	setNone setOp = iota
	setAny        // ForAnyValue:
	setAll        // ForAllValues:
)

type opInfo struct {
	base    opBase
	cmp     cmpKind
	negated bool
}

// operators maps lowercased base operator names (without prefix and
// IfExists suffix) to their meaning.
var operators = map[string]opInfo{
	"stringequals":              {base: opString},
	"stringnotequals":           {base: opString, negated: true},
	"stringequalsignorecase":    {base: opStringFold},
	"stringnotequalsignorecase": {base: opStringFold, negated: true},
	"stringlike":                {base: opStringLike},
	"stringnotlike":             {base: opStringLike, negated: true},
	"numericequals":             {base: opNumeric, cmp: cmpEq},
	"numericnotequals":          {base: opNumeric, cmp: cmpEq, negated: true},
	"numericlessthan":           {base: opNumeric, cmp: cmpLt},
	"numericlessthanequals":     {base: opNumeric, cmp: cmpLe},
	"numericgreaterthan":        {base: opNumeric, cmp: cmpGt},
	"numericgreaterthanequals":  {base: opNumeric, cmp: cmpGe},
	"dateequals":                {base: opDate, cmp: cmpEq},
	"datenotequals":             {base: opDate, cmp: cmpEq, negated: true},
	"datelessthan":              {base: opDate, cmp: cmpLt},
	"datelessthanequals":        {base: opDate, cmp: cmpLe},
	"dategreaterthan":           {base: opDate, cmp: cmpGt},
	"dategreaterthanequals":     {base: opDate, cmp: cmpGe},
	"bool":                      {base: opBool},
	"arnequals":                 {base: opArn},
	"arnlike":                   {base: opArn},
	"arnnotequals":              {base: opArn, negated: true},
	"arnnotlike":                {base: opArn, negated: true},
	"ipaddress":                 {base: opIP},
	"notipaddress":              {base: opIP, negated: true},
	"binaryequals":              {base: opBinary},
	"null":                      {base: opNull},
}

// Condition is one operator/key pair of a statement's Condition block:
// {"Operator": {"Key": Values}}. Operator and Key are as written in the
// policy; matching of keys against the request context is case-insensitive.
type Condition struct {
	Operator string
	Key      string
	Values   []string

	key      string // lowercased
	op       opInfo
	set      setOp
	ifExists bool

	match  []matcher      // string, fold, like, arn operators
	strs   []string       // bool (lowercased), binary
	nums   []float64      // numeric
	times  []int64        // date, unix nanoseconds
	prefix []netip.Prefix // ip
	null   []bool         // null: true = key must be absent
}

// parseOperator splits "ForAnyValue:StringEqualsIfExists" into its parts.
func parseOperator(name string) (info opInfo, set setOp, ifExists bool, ok bool) {
	n := strings.ToLower(name)
	if rest, found := strings.CutPrefix(n, "foranyvalue:"); found {
		n, set = rest, setAny
	} else if rest, found := strings.CutPrefix(n, "forallvalues:"); found {
		n, set = rest, setAll
	}
	if info, ok = operators[n]; !ok {
		if rest, found := strings.CutSuffix(n, "ifexists"); found {
			if info, ok = operators[rest]; ok {
				ifExists = true
			}
		}
	}
	if !ok {
		return info, set, false, false
	}
	if info.base == opNull && (ifExists || set != setNone) {
		return info, set, false, false
	}
	return info, set, ifExists, true
}

// compile prepares the condition's values for its operator. It returns the
// offending value when one does not suit the operator.
func (c *Condition) compile(vars bool) (bad string, ok bool) {
	for _, v := range c.Values {
		switch c.op.base {
		case opString, opStringFold, opStringLike, opArn:
			kind := mExact
			switch c.op.base {
			case opStringFold:
				kind = mFold
			case opStringLike:
				kind = mGlob
			case opArn:
				kind = mARN
			}
			c.match = append(c.match, newMatcher(v, kind, vars))
		case opBool:
			lv := strings.ToLower(v)
			if lv != "true" && lv != "false" {
				return v, false
			}
			c.strs = append(c.strs, lv)
		case opBinary:
			c.strs = append(c.strs, v)
		case opNumeric:
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return v, false
			}
			c.nums = append(c.nums, f)
		case opDate:
			t, ok := parseDate(v)
			if !ok {
				return v, false
			}
			c.times = append(c.times, t)
		case opIP:
			p, ok := parsePrefix(v)
			if !ok {
				return v, false
			}
			c.prefix = append(c.prefix, p)
		case opNull:
			switch strings.ToLower(v) {
			case "true":
				c.null = append(c.null, true)
			case "false":
				c.null = append(c.null, false)
			default:
				return v, false
			}
		}
	}
	return "", true
}

// eval applies the condition to the request context.
//
//   - Key absent (or no values): ForAllValues is true; ForAnyValue is false
//     (true with IfExists); a plain operator is false, true with IfExists,
//     and true for a negated operator (StringNotEquals, ArnNotLike, ...).
//   - ForAnyValue: some context value satisfies the operator.
//   - ForAllValues: every context value satisfies the operator.
//   - Plain operator: positive operators are true when some context value
//     matches some policy value; negated operators are the negation of
//     their positive twin (no context value matches any policy value).
//
// For a single context value all three coincide. A negated operator
// applied to one context value means "matches none of the policy values".
func (c *Condition) eval(ctx map[string][]string) bool {
	vals := ctx[c.key]
	if c.op.base == opNull {
		absent := len(vals) == 0
		for _, want := range c.null {
			if want == absent {
				return true
			}
		}
		return false
	}
	if len(vals) == 0 {
		switch c.set {
		case setAll:
			return true
		case setAny:
			return c.ifExists
		}
		return c.ifExists || c.op.negated
	}
	switch c.set {
	case setAll:
		for _, v := range vals {
			if c.positive(v, ctx) == c.op.negated {
				return false
			}
		}
		return true
	case setAny:
		for _, v := range vals {
			if c.positive(v, ctx) != c.op.negated {
				return true
			}
		}
		return false
	}
	for _, v := range vals {
		if c.positive(v, ctx) {
			return !c.op.negated
		}
	}
	return c.op.negated
}

// positive reports whether the context value v matches one of the policy
// values under the non-negated form of the operator.
func (c *Condition) positive(v string, ctx map[string][]string) bool {
	switch c.op.base {
	case opString, opStringFold, opStringLike, opArn:
		for i := range c.match {
			if c.match[i].match(v, ctx) {
				return true
			}
		}
	case opBool:
		for _, s := range c.strs {
			if strings.EqualFold(v, s) {
				return true
			}
		}
	case opBinary:
		for _, s := range c.strs {
			if v == s {
				return true
			}
		}
	case opNumeric:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return false
		}
		for _, n := range c.nums {
			if compare(f, n, c.op.cmp) {
				return true
			}
		}
	case opDate:
		t, ok := parseDate(v)
		if !ok {
			return false
		}
		for _, n := range c.times {
			if compare(t, n, c.op.cmp) {
				return true
			}
		}
	case opIP:
		a, err := netip.ParseAddr(v)
		if err != nil {
			return false
		}
		a = a.Unmap()
		for _, p := range c.prefix {
			if p.Contains(a) {
				return true
			}
		}
	}
	return false
}

func compare[T float64 | int64](a, b T, k cmpKind) bool {
	switch k {
	case cmpLt:
		return a < b
	case cmpLe:
		return a <= b
	case cmpGt:
		return a > b
	case cmpGe:
		return a >= b
	}
	return a == b
}

// parseDate reads an ISO 8601 date/time (as IAM accepts: RFC 3339 with or
// without fractional seconds, a date alone) or epoch seconds, returning unix
// nanoseconds.
func parseDate(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	if c := s[0]; c >= '0' && c <= '9' && !strings.ContainsAny(s, "-:T") {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return 0, false
		}
		return int64(f * 1e9), true
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04Z07:00", "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UnixNano(), true
		}
	}
	return 0, false
}

func parsePrefix(s string) (netip.Prefix, bool) {
	if strings.IndexByte(s, '/') >= 0 {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, false
		}
		return p.Masked(), true
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), true
}
