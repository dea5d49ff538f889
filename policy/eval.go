package policy

import "strings"

// Caller is the authenticated principal of a request.
type Caller struct {
	ARN       string // arn:aws:iam::111122223333:user/alice, ...:root, arn:aws:sts::...:assumed-role/R/s
	AccountID string // the caller's 12-digit account
}

// Request is one authorization question.
type Request struct {
	Principal Caller
	Action    string // "kms:GenerateMac"
	Resource  string // the key ARN
	// Context holds the condition keys of the request, each key lowercased
	// in full (tag names included): "kms:calleraccount", "aws:principalarn",
	// "kms:grantisforawsresource", "kms:grantoperations" (multi-valued),
	// "kms:keyspec", "kms:macalgorithm", "aws:resourcetag/<tag-key>", ...
	// A key that is absent or has no values is "not present".
	Context map[string][]string
}

// Decision is the outcome of evaluating one policy.
type Decision uint8

const (
	NotApplicable Decision = iota // no statement applies: implicit deny
	Allow
	ExplicitDeny
)

func (d Decision) String() string {
	switch d {
	case Allow:
		return "Allow"
	case ExplicitDeny:
		return "ExplicitDeny"
	}
	return "NotApplicable"
}

// Evaluate applies the document's statements to req: ExplicitDeny when a
// Deny statement applies, else Allow when an Allow statement applies, else
// NotApplicable.
//
// With asKeyPolicy a statement applies only to the principals its Principal
// names, an account naming every principal of that account; statements
// without Principal apply to nobody. Without it (identity policy) the
// Principal element is ignored. This is the policy language alone: KMS
// authorization, where an account principal only delegates to the
// account's identity policies, is EvaluateKMS.
func (d *Document) Evaluate(req Request, asKeyPolicy bool) Decision {
	if d == nil {
		return NotApplicable
	}
	deny, direct, account := d.eval(&req, asKeyPolicy)
	switch {
	case deny:
		return ExplicitDeny
	case direct || account:
		return Allow
	}
	return NotApplicable
}

// eval reports whether a Deny statement applies, whether an Allow statement
// names the caller directly (or applies, for identity policies), and
// whether one names only the caller's account.
func (d *Document) eval(req *Request, keyPolicy bool) (deny, direct, account bool) {
	for i := range d.Statements {
		st := &d.Statements[i]
		if !st.matchAction(req.Action) || !st.matchResource(req.Resource, req.Context) {
			continue
		}
		pm := pmDirect
		if keyPolicy {
			if st.Principal == nil {
				continue
			}
			if pm = st.principals.match(&req.Principal); pm == pmNone {
				continue
			}
		}
		if !st.matchConditions(req.Context) {
			continue
		}
		if st.Effect == EffectDeny {
			return true, false, false
		}
		if pm == pmDirect {
			direct = true
		} else {
			account = true
		}
	}
	return false, direct, account
}

func (st *Statement) matchAction(a string) bool {
	for i := range st.actions {
		if st.actions[i].match(a) {
			return !st.NotAction
		}
	}
	return st.NotAction
}

func (st *Statement) matchResource(r string, ctx map[string][]string) bool {
	for i := range st.resources {
		if st.resources[i].match(r, ctx) {
			return !st.NotResource
		}
	}
	return st.NotResource
}

func (st *Statement) matchConditions(ctx map[string][]string) bool {
	for i := range st.Conditions {
		if !st.Conditions[i].eval(ctx) {
			return false
		}
	}
	return true
}

// Reason says why EvaluateKMS decided as it did.
type Reason uint8

const (
	ReasonNone                       Reason = iota
	ReasonKeyPolicy                         // allowed: the key policy names the caller (or "*"), same account
	ReasonKeyPolicyAndIdentity              // allowed: the key policy delegates to, or names the cross-account caller, and the identity policy allows
	ReasonGrant                             // allowed: by a grant (see Result.WithGrant)
	ReasonNoResourcePolicyAllows            // denied: no key policy statement allows
	ReasonNoIdentityPolicyAllows            // denied: the key policy delegates (or the caller is cross-account) but no identity policy allows
	ReasonExplicitDenyResourcePolicy        // denied: a Deny statement of the key policy applies
	ReasonExplicitDenyIdentityPolicy        // denied: a Deny statement of the identity policy applies
)

func (r Reason) String() string {
	switch r {
	case ReasonKeyPolicy:
		return "allowed by the key policy"
	case ReasonKeyPolicyAndIdentity:
		return "allowed by the key policy and an identity-based policy"
	case ReasonGrant:
		return "allowed by a grant"
	case ReasonNoResourcePolicyAllows:
		return "no resource-based policy allows the action"
	case ReasonNoIdentityPolicyAllows:
		return "no identity-based policy allows the action"
	case ReasonExplicitDenyResourcePolicy:
		return "explicit deny in a resource-based policy"
	case ReasonExplicitDenyIdentityPolicy:
		return "explicit deny in an identity-based policy"
	}
	return "none"
}

// Result is the outcome of EvaluateKMS.
type Result struct {
	Decision Decision // Allow, ExplicitDeny or NotApplicable (implicit deny)
	Reason   Reason
}

// Allowed reports whether the request may proceed.
func (r Result) Allowed() bool { return r.Decision == Allow }

// WithGrant folds a grant check into a policy result: a grant that covers
// the request allows it unless a policy denies it explicitly. granted is
// the caller's verdict on the key's grants (grantee = caller, operation in
// the grant's operations, constraints satisfied). A grant allows without
// any identity policy, for same-account and cross-account grantees alike.
func (r Result) WithGrant(granted bool) Result {
	if granted && r.Decision != ExplicitDeny && r.Decision != Allow {
		return Result{Decision: Allow, Reason: ReasonGrant}
	}
	return r
}

// EvaluateKMS decides a KMS request as AWS does from the key policy and
// the caller's identity-based policy (the union of the IAM policies
// attached to the caller, as one document).
//
//  1. A Deny statement that applies in the key policy or in the identity
//     policy denies (an account principal in a key policy Deny statement
//     covers every principal of that account).
//  2. Caller in the key's account: a key policy Allow statement naming the
//     caller (its ARN, its role for a role session, "*", or the account
//     root ARN for the root user itself) allows on its own.
//  3. Caller in the key's account: a key policy Allow statement naming the
//     account (root ARN or account id) delegates: the request is allowed
//     iff the identity policy allows it. This is what the default key
//     policy does.
//  4. Caller in another account: a key policy Allow statement must name
//     the caller or its account, and the identity policy must allow too.
//  5. Otherwise implicit deny (NotApplicable).
//
// identityPolicy nil means the caller has no identity policy of keyraft's
// knowing and is the administrator of its own account: it stands for an
// implicit identity statement {"Effect":"Allow","Action":"kms:*",
// "Resource":"*"}. An empty document (no statements) allows nothing. The
// account root user (arn:aws:iam::<acct>:root) cannot have identity
// policies in AWS and is always treated as its account's administrator: its
// identityPolicy is ignored. A nil keyPolicy allows nothing.
func EvaluateKMS(keyPolicy, identityPolicy *Document, req Request, keyAccount string) Result {
	var kDeny, kDirect, kAccount bool
	if keyPolicy != nil {
		kDeny, kDirect, kAccount = keyPolicy.eval(&req, true)
	}
	if kDeny {
		return Result{ExplicitDeny, ReasonExplicitDenyResourcePolicy}
	}
	iAllow := true
	if identityPolicy != nil && !isRootARN(req.Principal.ARN, req.Principal.AccountID) {
		iDeny, iDirect, iAccount := identityPolicy.eval(&req, false)
		if iDeny {
			return Result{ExplicitDeny, ReasonExplicitDenyIdentityPolicy}
		}
		iAllow = iDirect || iAccount
	} else {
		iAllow = adminAction(req.Action)
	}
	if !kDirect && !kAccount {
		return Result{NotApplicable, ReasonNoResourcePolicyAllows}
	}
	if kDirect && req.Principal.AccountID == keyAccount {
		return Result{Allow, ReasonKeyPolicy}
	}
	if !iAllow {
		return Result{NotApplicable, ReasonNoIdentityPolicyAllows}
	}
	return Result{Allow, ReasonKeyPolicyAndIdentity}
}

// adminAction is the implicit administrator statement's Action "kms:*".
func adminAction(a string) bool {
	return len(a) > 4 && equalFoldASCII(a[:4], "kms:")
}

// isRootARN reports whether arn is arn:<partition>:iam::<acct>:root.
func isRootARN(arn, acct string) bool {
	s, ok := strings.CutSuffix(arn, ":root")
	if !ok || acct == "" {
		return false
	}
	s, ok = strings.CutSuffix(s, acct)
	if !ok {
		return false
	}
	s, ok = strings.CutSuffix(s, ":iam::")
	return ok && strings.HasPrefix(s, "arn:") && strings.IndexByte(s[4:], ':') < 0
}

// CheckLockout is the policy lockout safety check of CreateKey and
// PutKeyPolicy: it fails with a *MalformedError carrying MsgLockout when,
// under the new key policy doc, caller could not call kms:PutKeyPolicy on
// the key keyARN (in keyAccount), given the caller's identity policy (nil:
// administrator, as in EvaluateKMS). The check runs with the condition keys
// every request carries: aws:principalarn, aws:principalaccount and
// kms:calleraccount; conditions on anything else are not satisfied.
func CheckLockout(doc *Document, caller Caller, identityPolicy *Document, keyAccount, keyARN string) error {
	req := Request{
		Principal: caller,
		Action:    "kms:PutKeyPolicy",
		Resource:  keyARN,
		Context: map[string][]string{
			"aws:principalarn":     {caller.ARN},
			"aws:principalaccount": {caller.AccountID},
			"kms:calleraccount":    {caller.AccountID},
		},
	}
	if !EvaluateKMS(doc, identityPolicy, req, keyAccount).Allowed() {
		return &MalformedError{Message: MsgLockout}
	}
	return nil
}

// AccessDeniedMessage is the message of AccessDeniedException in AWS's
// shape, for example "User: arn:aws:iam::111122223333:user/alice is not
// authorized to perform: kms:GenerateMac on resource:
// arn:aws:kms:us-east-1:111122223333:key/<id> because no resource-based
// policy allows the kms:GenerateMac action".
func AccessDeniedMessage(callerARN, action, resourceARN string, reason Reason) string {
	base := "User: " + callerARN + " is not authorized to perform: " + action + " on resource: " + resourceARN
	switch reason {
	case ReasonNoResourcePolicyAllows:
		return base + " because no resource-based policy allows the " + action + " action"
	case ReasonNoIdentityPolicyAllows:
		return base + " because no identity-based policy allows the " + action + " action"
	case ReasonExplicitDenyResourcePolicy:
		return base + " with an explicit deny in a resource-based policy"
	case ReasonExplicitDenyIdentityPolicy:
		return base + " with an explicit deny in an identity-based policy"
	}
	return base
}
