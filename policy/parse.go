package policy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxKeyPolicyBytes is AWS's key policy size quota (32 KB). Parse does not
// enforce it: exceeding it is a LimitExceededException, not a malformed
// policy, so the caller checks it first.
const MaxKeyPolicyBytes = 32768

// Messages of MalformedPolicyDocumentException that AWS uses verbatim.
const (
	MsgInvalidPrincipals = "Policy contains a statement with one or more invalid principals."
	MsgNoPrincipal       = "Policy contains a statement with no principal."
	MsgLockout           = "The new key policy will not allow you to update the key policy in the future."
	MsgPrincipalInIAM    = "Policy document should not specify a principal."
	MsgDuplicateSid      = "Statement IDs (SID) in a single policy must be unique."
	MsgNoActions         = "Policy statement must contain actions."
	MsgNoResources       = "Policy statement must contain resources."
)

// MalformedError is a policy document that cannot be accepted; the API
// answers it as MalformedPolicyDocumentException with Message as message.
type MalformedError struct {
	Message string
}

func (e *MalformedError) Error() string { return e.Message }

func malformed(format string, args ...string) *MalformedError {
	if len(args) == 0 {
		return &MalformedError{Message: format}
	}
	a := make([]any, len(args))
	for i, s := range args {
		a[i] = strconv.Quote(s)
	}
	return &MalformedError{Message: fmt.Sprintf(format, a...)}
}

// Effect is a statement's Effect.
type Effect uint8

const (
	EffectAllow Effect = iota + 1
	EffectDeny
)

func (e Effect) String() string {
	switch e {
	case EffectAllow:
		return "Allow"
	case EffectDeny:
		return "Deny"
	}
	return "Effect(?)"
}

// Document is a parsed, compiled policy. It is immutable after Parse and
// safe for concurrent use by any number of goroutines. The exported fields
// describe the policy; changing them does not change how it evaluates.
type Document struct {
	Version    string // "2012-10-17", "2008-10-17" or "" (absent: 2008 semantics)
	ID         string
	Statements []Statement
}

// Principal is a statement's Principal element.
type Principal struct {
	Any     bool     // "*" or {"AWS": "*"}
	AWS     []string // as written: account ids, iam/sts ARNs ("*" reflected in Any)
	Service []string // service principals, stored; they never match a Caller
}

// Statement is one statement of a policy.
type Statement struct {
	Sid         string
	Effect      Effect
	Principal   *Principal // nil when the statement has no Principal
	Action      []string   // as written; with NotAction set they are the NotAction values
	NotAction   bool
	Resource    []string // as written; with NotResource set they are the NotResource values
	NotResource bool
	Conditions  []Condition

	principals principalSet
	actions    []glob
	resources  []matcher
}

// Parse parses and compiles a policy document of the IAM policy language
// as KMS uses it. Statements may or may not have a Principal: use
// ParseKeyPolicy and ParseIdentityPolicy to enforce the rule of each kind.
// Every rejection is a *MalformedError.
func Parse(doc string) (*Document, error) {
	if e := checkChars(doc); e != nil {
		return nil, e
	}
	root, err := decodeJSON(doc)
	if err != nil {
		var dup *dupKeyError
		if errors.As(err, &dup) {
			return nil, malformed("Policy contains a duplicate element %s.", dup.key)
		}
		if errors.Is(err, errTrailingData) {
			return nil, malformed("Policy contains data after the end of the JSON document.")
		}
		return nil, malformed("Policy is not a valid JSON document.")
	}
	if root.kind != jObject {
		return nil, malformed("Policy must be a JSON object.")
	}
	if hasControl(root) {
		return nil, malformed("Policy contains a control character.")
	}
	d := &Document{}
	var stmts *jval
	for _, m := range root.obj {
		switch m.key {
		case "Version":
			if m.val.kind != jString || (m.val.s != "2012-10-17" && m.val.s != "2008-10-17") {
				s, _ := m.val.scalarString()
				return nil, malformed(`Policy has an invalid Version %s: it must be "2012-10-17" or "2008-10-17".`, s)
			}
			d.Version = m.val.s
		case "Id":
			if m.val.kind != jString {
				return nil, malformed("Policy Id must be a string.")
			}
			d.ID = m.val.s
		case "Statement":
			stmts = m.val
		default:
			return nil, malformed("Policy contains an unknown element %s.", m.key)
		}
	}
	if stmts == nil {
		return nil, malformed("Policy is missing the required element Statement.")
	}
	var list []*jval
	switch stmts.kind {
	case jObject:
		list = []*jval{stmts}
	case jArray:
		list = stmts.arr
	default:
		return nil, malformed("Policy Statement must be a JSON object or an array of objects.")
	}
	vars := d.Version == "2012-10-17"
	sids := map[string]bool{}
	d.Statements = make([]Statement, 0, len(list))
	for _, sv := range list {
		st, e := parseStatement(sv, vars)
		if e != nil {
			return nil, e
		}
		if st.Sid != "" {
			if sids[st.Sid] {
				return nil, malformed(MsgDuplicateSid)
			}
			sids[st.Sid] = true
		}
		d.Statements = append(d.Statements, st)
	}
	return d, nil
}

// ParseKeyPolicy is Parse plus the rules of a key policy: every statement
// names a Principal.
func ParseKeyPolicy(doc string) (*Document, error) {
	d, err := Parse(doc)
	if err != nil {
		return nil, err
	}
	for i := range d.Statements {
		if d.Statements[i].Principal == nil {
			return nil, malformed(MsgNoPrincipal)
		}
	}
	return d, nil
}

// ParseIdentityPolicy is Parse plus the rule of an identity-based (IAM)
// policy: no statement names a Principal.
func ParseIdentityPolicy(doc string) (*Document, error) {
	d, err := Parse(doc)
	if err != nil {
		return nil, err
	}
	for i := range d.Statements {
		if d.Statements[i].Principal != nil {
			return nil, malformed(MsgPrincipalInIAM)
		}
	}
	return d, nil
}

// checkChars applies PolicyType's pattern [\u0009\u000A\u000D\u0020-\u00FF]+.
func checkChars(doc string) *MalformedError {
	if doc == "" {
		return malformed("Policy is empty.")
	}
	for _, r := range doc {
		if r == '\t' || r == '\n' || r == '\r' || (r >= 0x20 && r <= 0xff) {
			continue
		}
		return malformed("Policy contains characters outside printable ASCII and Latin-1, TAB, LF and CR.")
	}
	return nil
}

// hasControl finds control characters that entered a string or a member
// name through a JSON escape (\u0001): they are never meaningful in a
// policy, and two of them are the compiled patterns' wildcards.
func hasControl(v *jval) bool {
	switch v.kind {
	case jString:
		return controlIn(v.s)
	case jObject:
		for _, m := range v.obj {
			if controlIn(m.key) || hasControl(m.val) {
				return true
			}
		}
	case jArray:
		for _, e := range v.arr {
			if hasControl(e) {
				return true
			}
		}
	}
	return false
}

func controlIn(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
			return true
		}
	}
	return false
}

func parseStatement(v *jval, vars bool) (Statement, *MalformedError) {
	var st Statement
	if v.kind != jObject {
		return st, malformed("Policy statement must be a JSON object.")
	}
	var action, notAction, resource, notResource, principal, condition *jval
	for _, m := range v.obj {
		switch m.key {
		case "Sid":
			if m.val.kind != jString {
				return st, malformed("Policy statement Sid must be a string.")
			}
			st.Sid = m.val.s
		case "Effect":
			switch {
			case m.val.kind == jString && m.val.s == "Allow":
				st.Effect = EffectAllow
			case m.val.kind == jString && m.val.s == "Deny":
				st.Effect = EffectDeny
			default:
				return st, malformed(`Policy statement has an invalid Effect: it must be "Allow" or "Deny".`)
			}
		case "Principal":
			principal = m.val
		case "NotPrincipal":
			return st, malformed("Policy contains a statement with NotPrincipal, which is not supported: use Principal with a condition on aws:PrincipalArn instead.")
		case "Action":
			action = m.val
		case "NotAction":
			notAction = m.val
		case "Resource":
			resource = m.val
		case "NotResource":
			notResource = m.val
		case "Condition":
			condition = m.val
		default:
			return st, malformed("Policy statement contains an unknown element %s.", m.key)
		}
	}
	if st.Effect == 0 {
		return st, malformed(`Policy statement has an invalid Effect: it must be "Allow" or "Deny".`)
	}

	// Action / NotAction.
	switch {
	case action != nil && notAction != nil:
		return st, malformed("Policy statement must contain either Action or NotAction, not both.")
	case action == nil && notAction == nil:
		return st, malformed(MsgNoActions)
	}
	av := action
	if av == nil {
		av, st.NotAction = notAction, true
	}
	acts, ok := stringList(av)
	if !ok || len(acts) == 0 {
		return st, malformed(MsgNoActions)
	}
	for _, a := range acts {
		if !validAction(a) {
			return st, malformed("Policy statement contains an invalid action %s.", a)
		}
		enc, _ := encodePattern(a, true, false)
		st.actions = append(st.actions, compileGlob(enc, true))
	}
	st.Action = acts

	// Resource / NotResource.
	switch {
	case resource != nil && notResource != nil:
		return st, malformed("Policy statement must contain either Resource or NotResource, not both.")
	case resource == nil && notResource == nil:
		return st, malformed(MsgNoResources)
	}
	rv := resource
	if rv == nil {
		rv, st.NotResource = notResource, true
	}
	res, ok := stringList(rv)
	if !ok || len(res) == 0 {
		return st, malformed(MsgNoResources)
	}
	for _, r := range res {
		if !validResource(r) {
			return st, malformed(`Policy statement contains an invalid resource %s: it must be "*" or an ARN.`, r)
		}
		st.resources = append(st.resources, newMatcher(r, mARN, vars))
	}
	st.Resource = res

	// Principal.
	if principal != nil {
		p, ps, e := parsePrincipal(principal)
		if e != nil {
			return st, e
		}
		st.Principal, st.principals = p, ps
	}

	// Condition.
	if condition != nil {
		cs, e := parseConditions(condition, vars)
		if e != nil {
			return st, e
		}
		st.Conditions = cs
	}
	return st, nil
}

// stringList reads a string or a non-empty array of strings.
func stringList(v *jval) ([]string, bool) {
	switch v.kind {
	case jString:
		return []string{v.s}, true
	case jArray:
		out := make([]string, 0, len(v.arr))
		for _, e := range v.arr {
			if e.kind != jString {
				return nil, false
			}
			out = append(out, e.s)
		}
		return out, true
	}
	return nil, false
}

// validAction accepts "*" and service:action, where the service prefix is
// letters, digits and '-' and the action letters, digits and the wildcards.
// Unknown actions are accepted silently, as AWS does.
func validAction(a string) bool {
	if a == "*" {
		return true
	}
	svc, act, ok := strings.Cut(a, ":")
	if !ok || svc == "" || act == "" {
		return false
	}
	for i := 0; i < len(svc); i++ {
		c := svc[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	for i := 0; i < len(act); i++ {
		c := act[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '*' || c == '?' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// validResource accepts "*" and ARNs: "arn:" followed by the five other
// components, or fewer when a wildcard covers the rest ("arn:aws:kms:*").
func validResource(r string) bool {
	if r == "*" {
		return true
	}
	if !strings.HasPrefix(r, "arn:") {
		return false
	}
	return strings.Count(r, ":") >= 5 || strings.ContainsAny(r, "*")
}

func parseConditions(v *jval, vars bool) ([]Condition, *MalformedError) {
	if v.kind != jObject {
		return nil, malformed("Policy statement Condition must be a JSON object.")
	}
	var out []Condition
	seenOps := map[string]bool{}
	for _, om := range v.obj {
		info, set, ifExists, ok := parseOperator(om.key)
		if !ok {
			return nil, malformed("Policy statement contains an invalid condition operator %s.", om.key)
		}
		lop := strings.ToLower(om.key)
		if seenOps[lop] {
			return nil, malformed("Policy statement contains a duplicate condition operator %s.", om.key)
		}
		seenOps[lop] = true
		if om.val.kind != jObject {
			return nil, malformed("Condition operator %s must map condition keys to values.", om.key)
		}
		seenKeys := map[string]bool{}
		for _, km := range om.val.obj {
			key := strings.ToLower(km.key)
			if !validConditionKey(key) {
				return nil, malformed("Policy statement contains an invalid condition key %s.", km.key)
			}
			if seenKeys[key] {
				return nil, malformed("Policy statement contains a duplicate condition key %s.", km.key)
			}
			seenKeys[key] = true
			vals, ok := scalarList(km.val)
			if !ok {
				return nil, malformed("Condition key %s must have a string value or a non-empty list of values.", km.key)
			}
			c := Condition{Operator: om.key, Key: km.key, Values: vals, key: key, op: info, set: set, ifExists: ifExists}
			if bad, ok := c.compile(vars); !ok {
				return nil, malformed("Policy statement contains an invalid value %s for condition operator %s.", bad, om.key)
			}
			out = append(out, c)
		}
	}
	return out, nil
}

// scalarList reads a scalar or a non-empty array of scalars as strings.
func scalarList(v *jval) ([]string, bool) {
	if s, ok := v.scalarString(); ok {
		return []string{s}, true
	}
	if v.kind != jArray || len(v.arr) == 0 {
		return nil, false
	}
	out := make([]string, 0, len(v.arr))
	for _, e := range v.arr {
		s, ok := e.scalarString()
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

// validConditionKey accepts service:name keys (lowercased).
func validConditionKey(k string) bool {
	svc, name, ok := strings.Cut(k, ":")
	if !ok || svc == "" || name == "" {
		return false
	}
	return !strings.ContainsAny(k, " \t\r\n")
}
