package policy

import (
	"testing"
)

const (
	identityAllowMac = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:GenerateMac","kms:VerifyMac"],"Resource":"*"}]}`
	identityEmpty    = `{"Version":"2012-10-17","Statement":[]}`
	identityDenyMac  = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"},{"Effect":"Deny","Action":"kms:GenerateMac","Resource":"*"}]}`
	identityAll      = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}`
)

func TestEvaluateKMS(t *testing.T) {
	def := DefaultKeyPolicy(acct)
	allow := func(principal, action string) string {
		return `{"Effect":"Allow","Principal":` + principal + `,"Action":"` + action + `","Resource":"*"}`
	}
	deny := func(principal, action string) string {
		return `{"Effect":"Deny","Principal":` + principal + `,"Action":"` + action + `","Resource":"*"}`
	}
	defStmt := allow(`{"AWS":"arn:aws:iam::111122223333:root"}`, "kms:*")

	cases := []struct {
		name     string
		key      string // key policy ("" = nil)
		identity string // identity policy ("" = nil: administrator)
		caller   Caller
		action   string
		resource string
		ctx      map[string][]string
		decision Decision
		reason   Reason
	}{
		// The default policy delegates to the account's identity policies.
		{"default: admin of the account", def, "", alice, "kms:GenerateMac", keyARN, nil, Allow, ReasonKeyPolicyAndIdentity},
		{"default: identity allows the action", def, identityAllowMac, alice, "kms:GenerateMac", keyARN, nil, Allow, ReasonKeyPolicyAndIdentity},
		{"default: identity lacks the action", def, identityAllowMac, alice, "kms:PutKeyPolicy", keyARN, nil, NotApplicable, ReasonNoIdentityPolicyAllows},
		{"default: empty identity policy", def, identityEmpty, alice, "kms:GenerateMac", keyARN, nil, NotApplicable, ReasonNoIdentityPolicyAllows},
		{"default: identity for another key", def, stmts(`{"Effect":"Allow","Action":"kms:*","Resource":"` + key2 + `"}`), alice, "kms:GenerateMac", keyARN, nil, NotApplicable, ReasonNoIdentityPolicyAllows},
		{"default: other account admin", def, "", bob, "kms:GenerateMac", keyARN, nil, NotApplicable, ReasonNoResourcePolicyAllows},
		{"default: other account with identity", def, identityAll, bob, "kms:GenerateMac", keyARN, nil, NotApplicable, ReasonNoResourcePolicyAllows},
		{"default: account root", def, "", rootA, "kms:PutKeyPolicy", keyARN, nil, Allow, ReasonKeyPolicy},
		{"default: root ignores identity policies", def, identityEmpty, rootA, "kms:PutKeyPolicy", keyARN, nil, Allow, ReasonKeyPolicy},
		{"default: non-kms action", def, "", alice, "s3:GetObject", keyARN, nil, NotApplicable, ReasonNoResourcePolicyAllows},
		{"nil key policy", "", "", alice, "kms:GenerateMac", keyARN, nil, NotApplicable, ReasonNoResourcePolicyAllows},
		{"no statements", identityEmpty, "", rootA, "kms:GenerateMac", keyARN, nil, NotApplicable, ReasonNoResourcePolicyAllows},

		// The key policy names a same-account user: enough on its own.
		{"direct user, empty identity", stmts(allow(`{"AWS":"arn:aws:iam::111122223333:user/alice"}`, "kms:GenerateMac")), identityEmpty, alice, "kms:GenerateMac", keyARN, nil, Allow, ReasonKeyPolicy},
		{"direct user, other action", stmts(allow(`{"AWS":"arn:aws:iam::111122223333:user/alice"}`, "kms:GenerateMac")), "", alice, "kms:VerifyMac", keyARN, nil, NotApplicable, ReasonNoResourcePolicyAllows},
		{"direct user, other user", stmts(allow(`{"AWS":"arn:aws:iam::111122223333:user/alice"}`, "kms:GenerateMac")), "", carol, "kms:GenerateMac", keyARN, nil, NotApplicable, ReasonNoResourcePolicyAllows},
		{"direct user in a list", stmts(allow(`{"AWS":["arn:aws:iam::111122223333:user/carol","arn:aws:iam::111122223333:user/alice"]}`, "kms:*")), identityEmpty, alice, "kms:GenerateMac", keyARN, nil, Allow, ReasonKeyPolicy},
		{"direct user, root not named", stmts(allow(`{"AWS":"arn:aws:iam::111122223333:user/alice"}`, "kms:*")), "", rootA, "kms:GenerateMac", keyARN, nil, NotApplicable, ReasonNoResourcePolicyAllows},
		{"role names its sessions", stmts(allow(`{"AWS":"arn:aws:iam::111122223333:role/ops/Admin"}`, "kms:*")), identityEmpty, Caller{"arn:aws:sts::111122223333:assumed-role/Admin/s1", acct}, "kms:GenerateMac", keyARN, nil, Allow, ReasonKeyPolicy},
		{"role does not name other roles' sessions", stmts(allow(`{"AWS":"arn:aws:iam::111122223333:role/Admin"}`, "kms:*")), identityEmpty, Caller{"arn:aws:sts::111122223333:assumed-role/Admin2/s1", acct}, "kms:GenerateMac", keyARN, nil, NotApplicable, ReasonNoResourcePolicyAllows},
		{"bare account id delegates", stmts(allow(`{"AWS":"111122223333"}`, "kms:*")), identityEmpty, alice, "kms:GenerateMac", keyARN, nil, NotApplicable, ReasonNoIdentityPolicyAllows},
		{"bare account id names root", stmts(allow(`{"AWS":"111122223333"}`, "kms:*")), identityEmpty, rootA, "kms:GenerateMac", keyARN, nil, Allow, ReasonKeyPolicy},
		{"star, same account", stmts(allow(`"*"`, "kms:GenerateMac")), identityEmpty, alice, "kms:GenerateMac", keyARN, nil, Allow, ReasonKeyPolicy},
		{"aws star, same account", stmts(allow(`{"AWS":"*"}`, "kms:GenerateMac")), identityEmpty, alice, "kms:GenerateMac", keyARN, nil, Allow, ReasonKeyPolicy},
		{"service principal never matches", stmts(allow(`{"Service":"logs.amazonaws.com"}`, "kms:*")), "", alice, "kms:GenerateMac", keyARN, nil, NotApplicable, ReasonNoResourcePolicyAllows},

		// Cross-account: the key policy and the caller's identity policy must both allow.
		{"cross-account by ARN, identity allows", stmts(defStmt, allow(`{"AWS":"arn:aws:iam::444455556666:user/bob"}`, "kms:GenerateMac")), identityAllowMac, bob, "kms:GenerateMac", keyARN, nil, Allow, ReasonKeyPolicyAndIdentity},
		{"cross-account by ARN, empty identity", stmts(defStmt, allow(`{"AWS":"arn:aws:iam::444455556666:user/bob"}`, "kms:GenerateMac")), identityEmpty, bob, "kms:GenerateMac", keyARN, nil, NotApplicable, ReasonNoIdentityPolicyAllows},
		{"cross-account by ARN, admin identity", stmts(defStmt, allow(`{"AWS":"arn:aws:iam::444455556666:user/bob"}`, "kms:GenerateMac")), "", bob, "kms:GenerateMac", keyARN, nil, Allow, ReasonKeyPolicyAndIdentity},
		{"cross-account by ARN, action not in key policy", stmts(defStmt, allow(`{"AWS":"arn:aws:iam::444455556666:user/bob"}`, "kms:GenerateMac")), identityAllowMac, bob, "kms:VerifyMac", keyARN, nil, NotApplicable, ReasonNoResourcePolicyAllows},
		{"cross-account by root, identity allows", stmts(defStmt, allow(`{"AWS":"arn:aws:iam::444455556666:root"}`, "kms:*")), identityAllowMac, bob, "kms:GenerateMac", keyARN, nil, Allow, ReasonKeyPolicyAndIdentity},
		{"cross-account by root, empty identity", stmts(defStmt, allow(`{"AWS":"arn:aws:iam::444455556666:root"}`, "kms:*")), identityEmpty, bob, "kms:GenerateMac", keyARN, nil, NotApplicable, ReasonNoIdentityPolicyAllows},
		{"cross-account by account id", stmts(allow(`{"AWS":"444455556666"}`, "kms:*")), identityAllowMac, bob, "kms:GenerateMac", keyARN, nil, Allow, ReasonKeyPolicyAndIdentity},
		{"cross-account, a third account", stmts(defStmt, allow(`{"AWS":"arn:aws:iam::444455556666:root"}`, "kms:*")), "", mallory, "kms:GenerateMac", keyARN, nil, NotApplicable, ReasonNoResourcePolicyAllows},
		{"cross-account root of the other account", stmts(allow(`{"AWS":"arn:aws:iam::444455556666:root"}`, "kms:*")), "", Caller{"arn:aws:iam::444455556666:root", other}, "kms:GenerateMac", keyARN, nil, Allow, ReasonKeyPolicyAndIdentity},
		{"star, other account, empty identity", stmts(allow(`"*"`, "kms:GenerateMac")), identityEmpty, bob, "kms:GenerateMac", keyARN, nil, NotApplicable, ReasonNoIdentityPolicyAllows},
		{"star, other account, admin identity", stmts(allow(`"*"`, "kms:GenerateMac")), "", bob, "kms:GenerateMac", keyARN, nil, Allow, ReasonKeyPolicyAndIdentity},

		// Explicit deny wins, in either policy.
		{"key policy deny for everyone", stmts(defStmt, deny(`"*"`, "kms:GenerateMac")), "", alice, "kms:GenerateMac", keyARN, nil, ExplicitDeny, ReasonExplicitDenyResourcePolicy},
		{"key policy deny beats direct allow", stmts(allow(`{"AWS":"arn:aws:iam::111122223333:user/alice"}`, "kms:*"), deny(`{"AWS":"arn:aws:iam::111122223333:user/alice"}`, "kms:Generate*")), "", alice, "kms:GenerateMac", keyARN, nil, ExplicitDeny, ReasonExplicitDenyResourcePolicy},
		{"key policy deny by account covers its users", stmts(defStmt, deny(`{"AWS":"arn:aws:iam::111122223333:root"}`, "kms:GenerateMac")), "", alice, "kms:GenerateMac", keyARN, nil, ExplicitDeny, ReasonExplicitDenyResourcePolicy},
		{"key policy deny by account covers root", stmts(defStmt, deny(`{"AWS":"111122223333"}`, "kms:GenerateMac")), "", rootA, "kms:GenerateMac", keyARN, nil, ExplicitDeny, ReasonExplicitDenyResourcePolicy},
		{"key policy deny of another user", stmts(defStmt, deny(`{"AWS":"arn:aws:iam::111122223333:user/carol"}`, "kms:*")), "", alice, "kms:GenerateMac", keyARN, nil, Allow, ReasonKeyPolicyAndIdentity},
		{"key policy deny of another account", stmts(defStmt, deny(`{"AWS":"444455556666"}`, "kms:*")), "", alice, "kms:GenerateMac", keyARN, nil, Allow, ReasonKeyPolicyAndIdentity},
		{"key policy deny of another action", stmts(defStmt, deny(`"*"`, "kms:ScheduleKeyDeletion")), "", alice, "kms:GenerateMac", keyARN, nil, Allow, ReasonKeyPolicyAndIdentity},
		{"identity deny", def, identityDenyMac, alice, "kms:GenerateMac", keyARN, nil, ExplicitDeny, ReasonExplicitDenyIdentityPolicy},
		{"identity deny beats direct key allow", stmts(allow(`{"AWS":"arn:aws:iam::111122223333:user/alice"}`, "kms:*")), identityDenyMac, alice, "kms:GenerateMac", keyARN, nil, ExplicitDeny, ReasonExplicitDenyIdentityPolicy},
		{"identity deny without any key allow", stmts(allow(`{"AWS":"arn:aws:iam::111122223333:user/carol"}`, "kms:*")), identityDenyMac, alice, "kms:GenerateMac", keyARN, nil, ExplicitDeny, ReasonExplicitDenyIdentityPolicy},
		{"identity deny, other action allowed", def, identityDenyMac, alice, "kms:VerifyMac", keyARN, nil, Allow, ReasonKeyPolicyAndIdentity},
		{"identity deny cross-account", stmts(allow(`"*"`, "kms:*")), identityDenyMac, bob, "kms:GenerateMac", keyARN, nil, ExplicitDeny, ReasonExplicitDenyIdentityPolicy},
		{"both deny: key policy reported", stmts(defStmt, deny(`"*"`, "kms:GenerateMac")), identityDenyMac, alice, "kms:GenerateMac", keyARN, nil, ExplicitDeny, ReasonExplicitDenyResourcePolicy},

		// NotAction / NotResource.
		{"notaction allow", stmts(`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"NotAction":["kms:ScheduleKeyDeletion","kms:PutKeyPolicy"],"Resource":"*"}`), identityEmpty, alice, "kms:GenerateMac", keyARN, nil, Allow, ReasonKeyPolicy},
		{"notaction allow excludes", stmts(`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"NotAction":["kms:ScheduleKeyDeletion","kms:PutKeyPolicy"],"Resource":"*"}`), identityEmpty, alice, "kms:scheduleKeyDeletion", keyARN, nil, NotApplicable, ReasonNoResourcePolicyAllows},
		{"notaction deny hits others", stmts(defStmt, `{"Effect":"Deny","Principal":"*","NotAction":["kms:GenerateMac","kms:VerifyMac"],"Resource":"*"}`), "", alice, "kms:DescribeKey", keyARN, nil, ExplicitDeny, ReasonExplicitDenyResourcePolicy},
		{"notaction deny spares listed", stmts(defStmt, `{"Effect":"Deny","Principal":"*","NotAction":["kms:GenerateMac","kms:VerifyMac"],"Resource":"*"}`), "", alice, "kms:VerifyMac", keyARN, nil, Allow, ReasonKeyPolicyAndIdentity},
		{"notresource identity, on the key", def, stmts(`{"Effect":"Allow","Action":"kms:*","NotResource":"` + keyARN + `"}`), alice, "kms:GenerateMac", keyARN, nil, NotApplicable, ReasonNoIdentityPolicyAllows},
		{"notresource identity, other key", def, stmts(`{"Effect":"Allow","Action":"kms:*","NotResource":"` + keyARN + `"}`), alice, "kms:GenerateMac", key2, nil, Allow, ReasonKeyPolicyAndIdentity},
		{"notresource deny in identity", def, stmts(`{"Effect":"Allow","Action":"kms:*","Resource":"*"}`, `{"Effect":"Deny","Action":"kms:*","NotResource":"arn:aws:kms:*:111122223333:key/1234*"}`), alice, "kms:GenerateMac", key2, nil, ExplicitDeny, ReasonExplicitDenyIdentityPolicy},
		{"key policy resource names another key", stmts(`{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"` + key2 + `"}`), "", alice, "kms:GenerateMac", keyARN, nil, NotApplicable, ReasonNoResourcePolicyAllows},
		{"key policy resource names this key", stmts(`{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"` + keyARN + `"}`), "", alice, "kms:GenerateMac", keyARN, nil, Allow, ReasonKeyPolicy},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var kp, ip *Document
			if tc.key != "" {
				kp = mustKeyPolicy(t, tc.key)
			}
			if tc.identity != "" {
				ip = mustIdentity(t, tc.identity)
			}
			got := EvaluateKMS(kp, ip, req(tc.caller, tc.action, tc.resource, tc.ctx), acct)
			if got.Decision != tc.decision || got.Reason != tc.reason {
				t.Fatalf("got %v (%v), want %v (%v)", got.Decision, got.Reason, tc.decision, tc.reason)
			}
			if got.Allowed() != (tc.decision == Allow) {
				t.Fatalf("Allowed() = %v", got.Allowed())
			}
		})
	}
}

func TestEvaluateKMSConditions(t *testing.T) {
	base := func(c Caller) map[string][]string {
		return map[string][]string{
			"kms:calleraccount":         {c.AccountID},
			"aws:principalarn":          {c.ARN},
			"aws:principalaccount":      {c.AccountID},
			"kms:keyspec":               {"HMAC_256"},
			"kms:macalgorithm":          {"HMAC_SHA_256"},
			"aws:resourcetag/env":       {"prod"},
			"kms:grantisforawsresource": {"false"},
		}
	}
	with := func(m map[string][]string, k string, v ...string) map[string][]string {
		out := map[string][]string{}
		for kk, vv := range m {
			out[kk] = vv
		}
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
		return out
	}
	star := func(action, cond string) string {
		return stmts(`{"Effect":"Allow","Principal":"*","Action":"` + action + `","Resource":"*","Condition":` + cond + `}`)
	}
	cases := []struct {
		name   string
		key    string
		caller Caller
		action string
		ctx    map[string][]string
		want   Decision
	}{
		{"CallerAccount same", star("kms:*", `{"StringEquals":{"kms:CallerAccount":"111122223333"}}`), alice, "kms:GenerateMac", base(alice), Allow},
		{"CallerAccount other", star("kms:*", `{"StringEquals":{"kms:CallerAccount":"111122223333"}}`), bob, "kms:GenerateMac", base(bob), NotApplicable},
		{"PrincipalArn like", star("kms:*", `{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::111122223333:user/a*"}}`), alice, "kms:GenerateMac", base(alice), Allow},
		{"PrincipalArn like, other user", star("kms:*", `{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::111122223333:user/a*"}}`), carol, "kms:GenerateMac", base(carol), NotApplicable},
		{"PrincipalArn deny except admins", stmts(
			`{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}`,
			`{"Effect":"Deny","Principal":"*","Action":"kms:PutKeyPolicy","Resource":"*","Condition":{"StringNotEquals":{"aws:PrincipalArn":["arn:aws:iam::111122223333:user/carol"]}}}`),
			alice, "kms:PutKeyPolicy", base(alice), ExplicitDeny},
		{"PrincipalArn deny spares the admin", stmts(
			`{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}`,
			`{"Effect":"Deny","Principal":"*","Action":"kms:PutKeyPolicy","Resource":"*","Condition":{"StringNotEquals":{"aws:PrincipalArn":["arn:aws:iam::111122223333:user/carol"]}}}`),
			carol, "kms:PutKeyPolicy", base(carol), Allow},
		{"KeySpec", star("kms:GenerateMac", `{"StringEquals":{"kms:KeySpec":"HMAC_256"}}`), alice, "kms:GenerateMac", base(alice), Allow},
		{"KeySpec mismatch", star("kms:GenerateMac", `{"StringEquals":{"kms:KeySpec":"HMAC_512"}}`), alice, "kms:GenerateMac", base(alice), NotApplicable},
		{"MacAlgorithm", star("kms:GenerateMac", `{"StringEquals":{"kms:MacAlgorithm":["HMAC_SHA_256","HMAC_SHA_512"]}}`), alice, "kms:GenerateMac", base(alice), Allow},
		{"MacAlgorithm mismatch", star("kms:GenerateMac", `{"StringEquals":{"kms:MacAlgorithm":"HMAC_SHA_384"}}`), alice, "kms:GenerateMac", with(base(alice), "kms:macalgorithm", "HMAC_SHA_512"), NotApplicable},
		{"ResourceTag", star("kms:*", `{"StringEquals":{"aws:ResourceTag/env":"prod"}}`), alice, "kms:GenerateMac", base(alice), Allow},
		{"ResourceTag other value", star("kms:*", `{"StringEquals":{"aws:ResourceTag/env":"prod"}}`), alice, "kms:GenerateMac", with(base(alice), "aws:resourcetag/env", "dev"), NotApplicable},
		{"ResourceTag untagged", star("kms:*", `{"StringEquals":{"aws:ResourceTag/env":"prod"}}`), alice, "kms:GenerateMac", with(base(alice), "aws:resourcetag/env"), NotApplicable},
		{"ResourceTag deny if not tagged", stmts(
			`{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}`,
			`{"Effect":"Deny","Principal":"*","Action":"kms:GenerateMac","Resource":"*","Condition":{"Null":{"aws:ResourceTag/env":"true"}}}`),
			alice, "kms:GenerateMac", with(base(alice), "aws:resourcetag/env"), ExplicitDeny},
		{"GrantOperations subset", star("kms:CreateGrant", `{"ForAllValues:StringEquals":{"kms:GrantOperations":["GenerateMac","VerifyMac"]},"Bool":{"kms:GrantIsForAWSResource":"false"}}`),
			alice, "kms:CreateGrant", with(base(alice), "kms:grantoperations", "GenerateMac", "VerifyMac"), Allow},
		{"GrantOperations superset", star("kms:CreateGrant", `{"ForAllValues:StringEquals":{"kms:GrantOperations":["GenerateMac","VerifyMac"]}}`),
			alice, "kms:CreateGrant", with(base(alice), "kms:grantoperations", "GenerateMac", "CreateGrant"), NotApplicable},
		{"GrantIsForAWSResource true", star("kms:CreateGrant", `{"Bool":{"kms:GrantIsForAWSResource":"true"}}`), alice, "kms:CreateGrant", base(alice), NotApplicable},
		{"delegation keeps conditions", stmts(`{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:*","Resource":"*","Condition":{"StringEquals":{"kms:KeySpec":"HMAC_512"}}}`), alice, "kms:GenerateMac", base(alice), NotApplicable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := EvaluateKMS(mustKeyPolicy(t, tc.key), nil, req(tc.caller, tc.action, keyARN, tc.ctx), acct)
			if got.Decision != tc.want {
				t.Fatalf("got %v (%v), want %v", got.Decision, got.Reason, tc.want)
			}
		})
	}

	// Conditions in the identity policy.
	ip := mustIdentity(t, stmts(`{"Effect":"Allow","Action":"kms:GenerateMac","Resource":"*","Condition":{"StringEquals":{"aws:ResourceTag/env":"prod"}}}`))
	kp := mustKeyPolicy(t, DefaultKeyPolicy(acct))
	if got := EvaluateKMS(kp, ip, req(alice, "kms:GenerateMac", keyARN, base(alice)), acct); got.Decision != Allow {
		t.Errorf("identity condition met: %v", got)
	}
	if got := EvaluateKMS(kp, ip, req(alice, "kms:GenerateMac", keyARN, with(base(alice), "aws:resourcetag/env", "dev")), acct); got.Reason != ReasonNoIdentityPolicyAllows {
		t.Errorf("identity condition not met: %v", got)
	}
}

func TestDocumentEvaluate(t *testing.T) {
	def := mustKeyPolicy(t, DefaultKeyPolicy(acct))
	r := func(c Caller) Request { return req(c, "kms:GenerateMac", keyARN, nil) }
	// As a key policy, the account principal covers every principal of the account.
	if got := def.Evaluate(r(alice), true); got != Allow {
		t.Errorf("default policy, alice: %v", got)
	}
	if got := def.Evaluate(r(bob), true); got != NotApplicable {
		t.Errorf("default policy, bob: %v", got)
	}
	// As an identity policy the Principal is ignored.
	if got := def.Evaluate(r(bob), false); got != Allow {
		t.Errorf("principal ignored: %v", got)
	}
	// Statements without principal apply to nobody in a key policy.
	noP := mustParse(t, stmts(`{"Effect":"Deny","Action":"kms:*","Resource":"*"}`))
	if got := noP.Evaluate(r(alice), true); got != NotApplicable {
		t.Errorf("statement without principal in a key policy: %v", got)
	}
	if got := noP.Evaluate(r(alice), false); got != ExplicitDeny {
		t.Errorf("identity deny: %v", got)
	}
	var nilDoc *Document
	if got := nilDoc.Evaluate(r(alice), true); got != NotApplicable {
		t.Errorf("nil document: %v", got)
	}
	// Deny wins regardless of statement order.
	d := mustParse(t, stmts(`{"Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*"}`, `{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}`))
	if got := d.Evaluate(r(alice), true); got != ExplicitDeny {
		t.Errorf("deny first: %v", got)
	}
	d = mustParse(t, stmts(`{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}`, `{"Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*"}`))
	if got := d.Evaluate(r(alice), true); got != ExplicitDeny {
		t.Errorf("deny last: %v", got)
	}
	for d, s := range map[Decision]string{NotApplicable: "NotApplicable", Allow: "Allow", ExplicitDeny: "ExplicitDeny"} {
		if d.String() != s {
			t.Errorf("%d.String() = %q", d, d.String())
		}
	}
	if EffectAllow.String() != "Allow" || EffectDeny.String() != "Deny" {
		t.Error("Effect strings")
	}
}

func TestWithGrant(t *testing.T) {
	cases := []struct {
		in      Result
		granted bool
		want    Result
	}{
		{Result{NotApplicable, ReasonNoResourcePolicyAllows}, true, Result{Allow, ReasonGrant}},
		{Result{NotApplicable, ReasonNoIdentityPolicyAllows}, true, Result{Allow, ReasonGrant}},
		{Result{NotApplicable, ReasonNoResourcePolicyAllows}, false, Result{NotApplicable, ReasonNoResourcePolicyAllows}},
		{Result{ExplicitDeny, ReasonExplicitDenyResourcePolicy}, true, Result{ExplicitDeny, ReasonExplicitDenyResourcePolicy}},
		{Result{ExplicitDeny, ReasonExplicitDenyIdentityPolicy}, true, Result{ExplicitDeny, ReasonExplicitDenyIdentityPolicy}},
		{Result{Allow, ReasonKeyPolicy}, true, Result{Allow, ReasonKeyPolicy}},
	}
	for _, tc := range cases {
		if got := tc.in.WithGrant(tc.granted); got != tc.want {
			t.Errorf("%v.WithGrant(%v) = %v, want %v", tc.in, tc.granted, got, tc.want)
		}
	}
}

func TestCheckLockout(t *testing.T) {
	cases := []struct {
		name     string
		policy   string
		caller   Caller
		identity string
		ok       bool
	}{
		{"default, admin", DefaultKeyPolicy(acct), alice, "", true},
		{"default, root", DefaultKeyPolicy(acct), rootA, identityEmpty, true},
		{"default, identity without PutKeyPolicy", DefaultKeyPolicy(acct), alice, identityAllowMac, false},
		{"default, empty identity", DefaultKeyPolicy(acct), alice, identityEmpty, false},
		{"default, identity with PutKeyPolicy", DefaultKeyPolicy(acct), alice, stmts(`{"Effect":"Allow","Action":"kms:PutKeyPolicy","Resource":"*"}`), true},
		{"default, identity deny", DefaultKeyPolicy(acct), alice, stmts(`{"Effect":"Allow","Action":"kms:*","Resource":"*"}`, `{"Effect":"Deny","Action":"kms:Put*","Resource":"*"}`), false},
		{"only mac for alice", stmts(`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"Action":["kms:GenerateMac","kms:VerifyMac"],"Resource":"*"}`), alice, "", false},
		{"alice directly", stmts(`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"Action":"kms:*","Resource":"*"}`), alice, identityEmpty, true},
		{"someone else", stmts(`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/carol"},"Action":"kms:*","Resource":"*"}`), alice, "", false},
		{"other account only", stmts(`{"Effect":"Allow","Principal":{"AWS":"444455556666"},"Action":"kms:*","Resource":"*"}`), alice, "", false},
		{"deny put for everyone", stmts(`{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:*","Resource":"*"}`, `{"Effect":"Deny","Principal":"*","Action":"kms:PutKeyPolicy","Resource":"*"}`), alice, "", false},
		{"caller account condition", stmts(`{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringEquals":{"kms:CallerAccount":"111122223333","aws:PrincipalArn":"arn:aws:iam::111122223333:user/alice"}}}`), alice, identityEmpty, true},
		{"condition on a key the check lacks", stmts(`{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringEquals":{"kms:ViaService":"ec2.us-east-1.amazonaws.com"}}}`), alice, "", false},
		{"resource is this key", stmts(`{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:*","Resource":"` + keyARN + `"}`), alice, "", true},
		{"resource is another key", stmts(`{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:*","Resource":"` + key2 + `"}`), alice, "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var ip *Document
			if tc.identity != "" {
				ip = mustIdentity(t, tc.identity)
			}
			err := CheckLockout(mustKeyPolicy(t, tc.policy), tc.caller, ip, acct, keyARN)
			if tc.ok {
				if err != nil {
					t.Fatalf("lockout reported: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("lockout not detected")
			}
			if msg := malformedMessage(t, err); msg != "The new key policy will not allow you to update the key policy in the future." {
				t.Fatalf("message %q", msg)
			}
		})
	}
}

func TestAccessDeniedMessage(t *testing.T) {
	const who = "arn:aws:iam::111122223333:user/alice"
	const res = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	cases := []struct {
		reason Reason
		want   string
	}{
		{ReasonNoResourcePolicyAllows, "User: arn:aws:iam::111122223333:user/alice is not authorized to perform: kms:GenerateMac on resource: arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab because no resource-based policy allows the kms:GenerateMac action"},
		{ReasonNoIdentityPolicyAllows, "User: arn:aws:iam::111122223333:user/alice is not authorized to perform: kms:GenerateMac on resource: arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab because no identity-based policy allows the kms:GenerateMac action"},
		{ReasonExplicitDenyResourcePolicy, "User: arn:aws:iam::111122223333:user/alice is not authorized to perform: kms:GenerateMac on resource: arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab with an explicit deny in a resource-based policy"},
		{ReasonExplicitDenyIdentityPolicy, "User: arn:aws:iam::111122223333:user/alice is not authorized to perform: kms:GenerateMac on resource: arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab with an explicit deny in an identity-based policy"},
		{ReasonNone, "User: arn:aws:iam::111122223333:user/alice is not authorized to perform: kms:GenerateMac on resource: arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"},
	}
	for _, tc := range cases {
		if got := AccessDeniedMessage(who, "kms:GenerateMac", res, tc.reason); got != tc.want {
			t.Errorf("%v:\n got %q\nwant %q", tc.reason, got, tc.want)
		}
	}
	// End to end: the default policy and a caller from another account.
	r := EvaluateKMS(mustKeyPolicy(t, DefaultKeyPolicy(acct)), nil, req(bob, "kms:GenerateMac", res, nil), acct)
	want := "User: arn:aws:iam::444455556666:user/bob is not authorized to perform: kms:GenerateMac on resource: " + res + " because no resource-based policy allows the kms:GenerateMac action"
	if got := AccessDeniedMessage(bob.ARN, "kms:GenerateMac", res, r.Reason); got != want {
		t.Errorf("end to end: %q", got)
	}
	for r := ReasonNone; r <= ReasonExplicitDenyIdentityPolicy; r++ {
		if r.String() == "" {
			t.Errorf("Reason %d has no text", r)
		}
	}
}

func TestIsRootARN(t *testing.T) {
	cases := []struct {
		arn, acct string
		want      bool
	}{
		{"arn:aws:iam::111122223333:root", acct, true},
		{"arn:aws-cn:iam::111122223333:root", acct, true},
		{"arn:aws:iam::111122223333:root", other, false},
		{"arn:aws:iam::111122223333:user/root", acct, false},
		{"arn:aws:sts::111122223333:root", acct, false},
		{"arn:aws:iam::111122223333:root", "", false},
		{"x:arn:aws:iam::111122223333:root", acct, false},
		{"arn:aws:x:iam::111122223333:root", acct, false},
	}
	for _, tc := range cases {
		if got := isRootARN(tc.arn, tc.acct); got != tc.want {
			t.Errorf("isRootARN(%q, %q) = %v", tc.arn, tc.acct, got)
		}
	}
}
