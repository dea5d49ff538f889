package policy

import "strings"

// principalSet is a compiled Principal element.
type principalSet struct {
	any      bool
	accounts []accountPrincipal
	arns     []string // exact principal ARNs: users, roles, role sessions, federated users
	sessions []string // "arn:<p>:sts::<acct>:assumed-role/<role>/" for each role ARN
}

type accountPrincipal struct {
	id   string // 12 digits
	root string // arn:<partition>:iam::<id>:root
}

type principalMatch uint8

const (
	pmNone    principalMatch = iota
	pmAccount                // the caller's account is named: delegation to its identity policies
	pmDirect                 // the caller itself is named, or "*"
)

// match classifies how the Principal element names the caller.
//
//   - "*" names everyone directly.
//   - A user, role, role-session or federated-user ARN names exactly that
//     principal; a role ARN also names every session of the role
//     (arn:aws:sts::<acct>:assumed-role/<role-name>/<session>).
//   - An account (bare id or arn:aws:iam::<acct>:root) names the account's
//     root user directly and every other principal of the account through
//     the account (pmAccount).
func (p *principalSet) match(c *Caller) principalMatch {
	if p.any {
		return pmDirect
	}
	for _, a := range p.arns {
		if c.ARN == a {
			return pmDirect
		}
	}
	for _, s := range p.sessions {
		if strings.HasPrefix(c.ARN, s) {
			return pmDirect
		}
	}
	best := pmNone
	for i := range p.accounts {
		a := &p.accounts[i]
		if c.ARN == a.root {
			return pmDirect
		}
		if c.AccountID == a.id {
			best = pmAccount
		}
	}
	return best
}

func parsePrincipal(v *jval) (*Principal, principalSet, *MalformedError) {
	var ps principalSet
	p := &Principal{}
	bad := malformed(MsgInvalidPrincipals)
	if v.kind == jString {
		if v.s != "*" {
			return nil, ps, bad
		}
		p.Any, ps.any = true, true
		return p, ps, nil
	}
	if v.kind != jObject || len(v.obj) == 0 {
		return nil, ps, bad
	}
	for _, m := range v.obj {
		vals, ok := stringList(m.val)
		if !ok || len(vals) == 0 {
			return nil, ps, bad
		}
		switch m.key {
		case "AWS":
			for _, s := range vals {
				if !addAWSPrincipal(p, &ps, s) {
					return nil, ps, bad
				}
			}
		case "Service":
			for _, s := range vals {
				if !validServicePrincipal(s) {
					return nil, ps, bad
				}
				p.Service = append(p.Service, s)
			}
		default: // Federated, CanonicalUser, anything else
			return nil, ps, bad
		}
	}
	return p, ps, nil
}

func addAWSPrincipal(p *Principal, ps *principalSet, s string) bool {
	if s == "*" {
		p.Any, ps.any = true, true
		return true
	}
	if isAccountID(s) {
		p.AWS = append(p.AWS, s)
		ps.accounts = append(ps.accounts, accountPrincipal{id: s, root: "arn:aws:iam::" + s + ":root"})
		return true
	}
	parts := strings.SplitN(s, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || !validPartition(parts[1]) || parts[3] != "" || !isAccountID(parts[4]) {
		return false
	}
	part, svc, acct, res := parts[1], parts[2], parts[4], parts[5]
	switch svc {
	case "iam":
		switch {
		case res == "root":
			ps.accounts = append(ps.accounts, accountPrincipal{id: acct, root: s})
		case strings.HasPrefix(res, "user/") && validIAMPath(res[len("user/"):]):
			ps.arns = append(ps.arns, s)
		case strings.HasPrefix(res, "role/") && validIAMPath(res[len("role/"):]):
			ps.arns = append(ps.arns, s)
			name := res[strings.LastIndexByte(res, '/')+1:]
			ps.sessions = append(ps.sessions, "arn:"+part+":sts::"+acct+":assumed-role/"+name+"/")
		default:
			return false
		}
	case "sts":
		switch {
		case strings.HasPrefix(res, "assumed-role/"):
			role, session, ok := strings.Cut(res[len("assumed-role/"):], "/")
			if !ok || !validIAMName(role) || !validIAMName(session) {
				return false
			}
		case strings.HasPrefix(res, "federated-user/") && validIAMName(res[len("federated-user/"):]):
		default:
			return false
		}
		ps.arns = append(ps.arns, s)
	default:
		return false
	}
	p.AWS = append(p.AWS, s)
	return true
}

func isAccountID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for i := 0; i < 12; i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func validPartition(s string) bool {
	if !strings.HasPrefix(s, "aws") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c == '-') {
			return false
		}
	}
	return true
}

// validIAMName: IAM names use [\w+=,.@-].
func validIAMName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_+=,.@-", c) >= 0) {
			return false
		}
	}
	return true
}

// validIAMPath accepts "name" or "path/.../name" (no wildcards: AWS does not
// allow partial wildcards in principals).
func validIAMPath(s string) bool {
	if s == "" {
		return false
	}
	for _, seg := range strings.Split(s, "/") {
		if !validIAMName(seg) {
			return false
		}
	}
	return true
}

// validServicePrincipal accepts dotted DNS-like names (kms.amazonaws.com).
func validServicePrincipal(s string) bool {
	if len(s) == 0 || len(s) > 128 || !strings.Contains(s, ".") || s[0] == '.' || s[len(s)-1] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	return !strings.Contains(s, "..")
}
