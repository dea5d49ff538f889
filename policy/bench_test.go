package policy

import (
	"testing"
)

// A realistic non-default key policy: administrators, users with conditions,
// a deny, cross-account use.
const benchPolicy = `{
  "Version": "2012-10-17",
  "Id": "bench",
  "Statement": [
    {"Sid": "Enable IAM User Permissions", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"},
    {"Sid": "Admins", "Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::111122223333:role/KeyAdmin", "arn:aws:iam::111122223333:user/carol"]},
     "Action": ["kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*", "kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:TagResource", "kms:UntagResource", "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion"],
     "Resource": "*"},
    {"Sid": "Users", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:user/alice"},
     "Action": ["kms:GenerateMac", "kms:VerifyMac", "kms:DescribeKey"], "Resource": "*",
     "Condition": {"StringEquals": {"kms:CallerAccount": "111122223333", "kms:MacAlgorithm": ["HMAC_SHA_256", "HMAC_SHA_512"]}, "StringLike": {"aws:ResourceTag/env": "prod*"}}},
    {"Sid": "Partner", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::444455556666:root"}, "Action": ["kms:GenerateMac", "kms:VerifyMac"], "Resource": "*"},
    {"Sid": "Grants", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:user/alice"}, "Action": "kms:CreateGrant", "Resource": "*",
     "Condition": {"ForAllValues:StringEquals": {"kms:GrantOperations": ["GenerateMac", "VerifyMac"]}, "Bool": {"kms:GrantIsForAWSResource": "false"}}},
    {"Sid": "NoDeletion", "Effect": "Deny", "Principal": "*", "Action": "kms:ScheduleKeyDeletion", "Resource": "*",
     "Condition": {"StringNotEquals": {"aws:PrincipalArn": "arn:aws:iam::111122223333:user/carol"}}}
  ]
}`

func benchCtx(c Caller) map[string][]string {
	return map[string][]string{
		"kms:calleraccount":         {c.AccountID},
		"aws:principalarn":          {c.ARN},
		"kms:keyspec":               {"HMAC_256"},
		"kms:macalgorithm":          {"HMAC_SHA_256"},
		"aws:resourcetag/env":       {"production"},
		"kms:grantisforawsresource": {"false"},
	}
}

func BenchmarkEvaluateKMSDefaultPolicy(b *testing.B) {
	kp := mustKeyPolicy(b, DefaultKeyPolicy(acct))
	r := req(alice, "kms:GenerateMac", keyARN, benchCtx(alice))
	b.ReportAllocs()
	for b.Loop() {
		if !EvaluateKMS(kp, nil, r, acct).Allowed() {
			b.Fatal("denied")
		}
	}
}

func BenchmarkEvaluateKMSDefaultPolicyWithIdentity(b *testing.B) {
	kp := mustKeyPolicy(b, DefaultKeyPolicy(acct))
	ip := mustIdentity(b, identityAllowMac)
	r := req(alice, "kms:GenerateMac", keyARN, benchCtx(alice))
	b.ReportAllocs()
	for b.Loop() {
		if !EvaluateKMS(kp, ip, r, acct).Allowed() {
			b.Fatal("denied")
		}
	}
}

func BenchmarkEvaluateKMSConditions(b *testing.B) {
	kp := mustKeyPolicy(b, benchPolicy)
	r := req(alice, "kms:GenerateMac", keyARN, benchCtx(alice))
	b.ReportAllocs()
	for b.Loop() {
		if !EvaluateKMS(kp, nil, r, acct).Allowed() {
			b.Fatal("denied")
		}
	}
}

func BenchmarkEvaluateKMSCrossAccountDenied(b *testing.B) {
	kp := mustKeyPolicy(b, benchPolicy)
	r := req(mallory, "kms:GenerateMac", keyARN, benchCtx(mallory))
	b.ReportAllocs()
	for b.Loop() {
		if EvaluateKMS(kp, nil, r, acct).Allowed() {
			b.Fatal("allowed")
		}
	}
}

func BenchmarkParseDefaultPolicy(b *testing.B) {
	doc := DefaultKeyPolicy(acct)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseKeyPolicy(doc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseConditionsPolicy(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseKeyPolicy(benchPolicy); err != nil {
			b.Fatal(err)
		}
	}
}

// Evaluate is on the GenerateMac path: it must not allocate for policies
// without policy variables.
func TestEvaluateDoesNotAllocate(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts")
	}
	kp := mustKeyPolicy(t, DefaultKeyPolicy(acct))
	cond := mustKeyPolicy(t, benchPolicy)
	ip := mustIdentity(t, identityDenyMac)
	ra := req(alice, "kms:GenerateMac", keyARN, benchCtx(alice))
	rb := req(bob, "kms:VerifyMac", keyARN, benchCtx(bob))
	cases := []struct {
		name string
		f    func()
	}{
		{"default", func() { EvaluateKMS(kp, nil, ra, acct) }},
		{"conditions", func() { EvaluateKMS(cond, nil, ra, acct) }},
		{"identity deny", func() { EvaluateKMS(kp, ip, ra, acct) }},
		{"cross-account", func() { EvaluateKMS(cond, nil, rb, acct) }},
		{"document", func() { cond.Evaluate(ra, true) }},
	}
	for _, tc := range cases {
		if n := testing.AllocsPerRun(100, tc.f); n != 0 {
			t.Errorf("%s: %v allocations per Evaluate", tc.name, n)
		}
	}
}
