package policy

import (
	"fmt"
	"testing"
)

// condHolds parses a one-statement identity policy with the given Condition
// block and reports whether it allows a request with ctx.
func condHolds(t *testing.T, cond string, ctx map[string][]string) bool {
	t.Helper()
	d := mustIdentity(t, stmts(`{"Effect":"Allow","Action":"kms:*","Resource":"*","Condition":`+cond+`}`))
	return d.Evaluate(req(alice, "kms:GenerateMac", keyARN, ctx), false) == Allow
}

func c1(k string, v ...string) map[string][]string { return map[string][]string{k: v} }

var absent = map[string][]string{}

func TestConditionOperators(t *testing.T) {
	type tc struct {
		ctx  map[string][]string
		want bool
	}
	grantOps := func(v ...string) map[string][]string { return c1("kms:grantoperations", v...) }
	cases := []struct {
		cond  string
		cases []tc
	}{
		// String operators.
		{`{"StringEquals":{"kms:KeySpec":"HMAC_256"}}`, []tc{
			{c1("kms:keyspec", "HMAC_256"), true}, {c1("kms:keyspec", "HMAC_384"), false},
			{c1("kms:keyspec", "hmac_256"), false}, {absent, false}, {c1("kms:keyspec"), false}}},
		{`{"StringEquals":{"kms:KeySpec":["HMAC_224","HMAC_256"]}}`, []tc{
			{c1("kms:keyspec", "HMAC_256"), true}, {c1("kms:keyspec", "HMAC_512"), false}}},
		{`{"StringEquals":{"KMS:KEYSPEC":"HMAC_256"}}`, []tc{{c1("kms:keyspec", "HMAC_256"), true}}}, // keys case-insensitive
		{`{"stringequals":{"kms:KeySpec":"HMAC_256"}}`, []tc{{c1("kms:keyspec", "HMAC_256"), true}}}, // operators too
		{`{"StringEquals":{"kms:KeySpec":"HMAC_*"}}`, []tc{{c1("kms:keyspec", "HMAC_256"), false}, {c1("kms:keyspec", "HMAC_*"), true}}},
		{`{"StringNotEquals":{"kms:KeySpec":"HMAC_256"}}`, []tc{
			{c1("kms:keyspec", "HMAC_384"), true}, {c1("kms:keyspec", "HMAC_256"), false}, {absent, true}}},
		{`{"StringNotEquals":{"kms:KeySpec":["HMAC_256","HMAC_384"]}}`, []tc{
			{c1("kms:keyspec", "HMAC_384"), false}, {c1("kms:keyspec", "HMAC_512"), true}}},
		{`{"StringEqualsIgnoreCase":{"kms:MacAlgorithm":"hmac_sha_256"}}`, []tc{
			{c1("kms:macalgorithm", "HMAC_SHA_256"), true}, {c1("kms:macalgorithm", "HMAC_SHA_384"), false}, {absent, false}}},
		{`{"StringNotEqualsIgnoreCase":{"kms:MacAlgorithm":"hmac_sha_256"}}`, []tc{
			{c1("kms:macalgorithm", "HMAC_SHA_256"), false}, {c1("kms:macalgorithm", "HMAC_SHA_384"), true}, {absent, true}}},
		{`{"StringLike":{"aws:PrincipalArn":"arn:aws:iam::111122223333:user/*"}}`, []tc{
			{c1("aws:principalarn", alice.ARN), true}, {c1("aws:principalarn", bob.ARN), false},
			{c1("aws:principalarn", "arn:aws:iam::111122223333:role/x"), false}, {absent, false}}},
		{`{"StringLike":{"kms:KeySpec":"HMAC_?56"}}`, []tc{
			{c1("kms:keyspec", "HMAC_256"), true}, {c1("kms:keyspec", "hmac_256"), false}}},
		{`{"StringNotLike":{"kms:KeySpec":"HMAC_*"}}`, []tc{
			{c1("kms:keyspec", "HMAC_256"), false}, {c1("kms:keyspec", "SYMMETRIC_DEFAULT"), true}, {absent, true}}},
		// Bool.
		{`{"Bool":{"kms:GrantIsForAWSResource":"false"}}`, []tc{
			{c1("kms:grantisforawsresource", "false"), true}, {c1("kms:grantisforawsresource", "true"), false}, {absent, false}}},
		{`{"Bool":{"kms:GrantIsForAWSResource":true}}`, []tc{ // JSON boolean, case of the context value ignored
			{c1("kms:grantisforawsresource", "true"), true}, {c1("kms:grantisforawsresource", "TRUE"), true}, {c1("kms:grantisforawsresource", "false"), false}}},
		{`{"BoolIfExists":{"aws:SecureTransport":"true"}}`, []tc{
			{absent, true}, {c1("aws:securetransport", "true"), true}, {c1("aws:securetransport", "false"), false}}},
		// Numeric.
		{`{"NumericLessThan":{"kms:N":10}}`, []tc{
			{c1("kms:n", "5"), true}, {c1("kms:n", "10"), false}, {c1("kms:n", "abc"), false}, {absent, false}}},
		{`{"NumericLessThanEquals":{"kms:N":"10"}}`, []tc{{c1("kms:n", "10"), true}, {c1("kms:n", "10.5"), false}}},
		{`{"NumericGreaterThan":{"kms:N":"10"}}`, []tc{{c1("kms:n", "11"), true}, {c1("kms:n", "10"), false}}},
		{`{"NumericGreaterThanEquals":{"kms:N":"10"}}`, []tc{{c1("kms:n", "10"), true}, {c1("kms:n", "9"), false}}},
		{`{"NumericEquals":{"kms:N":["7","30"]}}`, []tc{{c1("kms:n", "30"), true}, {c1("kms:n", "30.0"), true}, {c1("kms:n", "8"), false}}},
		{`{"NumericNotEquals":{"kms:N":"7"}}`, []tc{{c1("kms:n", "7"), false}, {c1("kms:n", "8"), true}, {absent, true}}},
		// Date.
		{`{"DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"}}`, []tc{
			{c1("aws:currenttime", "2026-01-01T00:00:00Z"), true}, {c1("aws:currenttime", "2031-06-01T12:00:00.5Z"), false},
			{c1("aws:currenttime", "1767225600"), true}, {c1("aws:currenttime", "soon"), false}, {absent, false}}},
		{`{"DateGreaterThanEquals":{"aws:EpochTime":1767225600}}`, []tc{
			{c1("aws:epochtime", "1767225600"), true}, {c1("aws:epochtime", "2026-01-01T00:00:00Z"), true}, {c1("aws:epochtime", "1767225599"), false}}},
		{`{"DateEquals":{"aws:CurrentTime":"2026-01-01"}}`, []tc{{c1("aws:currenttime", "2026-01-01T00:00:00Z"), true}}},
		{`{"DateNotEquals":{"aws:CurrentTime":"2026-01-01"}}`, []tc{{c1("aws:currenttime", "2026-01-01T00:00:00Z"), false}, {absent, true}}},
		{`{"DateLessThanEquals":{"aws:CurrentTime":"2026-01-01T00:00:00+01:00"}}`, []tc{{c1("aws:currenttime", "2025-12-31T23:00:00Z"), true}, {c1("aws:currenttime", "2025-12-31T23:00:01Z"), false}}},
		{`{"DateGreaterThan":{"aws:CurrentTime":"2026-01-01"}}`, []tc{{c1("aws:currenttime", "2026-01-01T00:00:01Z"), true}}},
		// ARN operators: component-wise, so a wildcard does not cross a colon.
		{`{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:user/alice"}}`, []tc{
			{c1("aws:principalarn", alice.ARN), true}, {c1("aws:principalarn", "arn:aws:iam::444455556666:user/alice"), true},
			{c1("aws:principalarn", carol.ARN), false}, {c1("aws:principalarn", "garbage"), false}, {absent, false}}},
		{`{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam:*3:user/alice"}}`, []tc{{c1("aws:principalarn", alice.ARN), false}}},
		{`{"StringLike":{"aws:PrincipalArn":"arn:aws:iam:*3:user/alice"}}`, []tc{{c1("aws:principalarn", alice.ARN), true}}},
		// ... but a component ending in '*' may swallow the following ones.
		{`{"ArnLike":{"aws:PrincipalArn":"arn:aws:i*:111122223333:user/alice"}}`, []tc{{c1("aws:principalarn", alice.ARN), true}}},
		{`{"ArnEquals":{"aws:PrincipalArn":"arn:aws:iam::111122223333:user/*"}}`, []tc{ // ArnEquals == ArnLike in AWS
			{c1("aws:principalarn", alice.ARN), true}, {c1("aws:principalarn", bob.ARN), false}}},
		{`{"ArnLike":{"aws:PrincipalArn":"ARN:aws:iam::111122223333:user/alice"}}`, []tc{{c1("aws:principalarn", alice.ARN), false}}}, // case-sensitive
		{`{"ArnNotLike":{"aws:PrincipalArn":"arn:aws:iam::111122223333:*"}}`, []tc{
			{c1("aws:principalarn", alice.ARN), false}, {c1("aws:principalarn", bob.ARN), true}, {absent, true}}},
		{`{"ArnNotEquals":{"aws:PrincipalArn":"arn:aws:iam::111122223333:user/alice"}}`, []tc{
			{c1("aws:principalarn", alice.ARN), false}, {c1("aws:principalarn", carol.ARN), true}}},
		// IP addresses.
		{`{"IpAddress":{"aws:SourceIp":["10.0.0.0/8","2001:db8::/32"]}}`, []tc{
			{c1("aws:sourceip", "10.1.2.3"), true}, {c1("aws:sourceip", "192.168.0.1"), false},
			{c1("aws:sourceip", "2001:db8::1"), true}, {c1("aws:sourceip", "::ffff:10.0.0.1"), true},
			{c1("aws:sourceip", "nope"), false}, {absent, false}}},
		{`{"IpAddress":{"aws:SourceIp":"192.0.2.7"}}`, []tc{{c1("aws:sourceip", "192.0.2.7"), true}, {c1("aws:sourceip", "192.0.2.8"), false}}},
		{`{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}`, []tc{{c1("aws:sourceip", "10.1.2.3"), false}, {c1("aws:sourceip", "11.0.0.1"), true}}},
		// Binary and Null.
		{`{"BinaryEquals":{"kms:Blob":"QmluYXJ5"}}`, []tc{{c1("kms:blob", "QmluYXJ5"), true}, {c1("kms:blob", "QmluYXJ6"), false}}},
		{`{"Null":{"aws:ResourceTag/env":"true"}}`, []tc{{absent, true}, {c1("aws:resourcetag/env"), true}, {c1("aws:resourcetag/env", "prod"), false}}},
		{`{"Null":{"aws:ResourceTag/env":false}}`, []tc{{absent, false}, {c1("aws:resourcetag/env", "prod"), true}}},
		// IfExists.
		{`{"StringEqualsIfExists":{"kms:KeySpec":"HMAC_256"}}`, []tc{
			{absent, true}, {c1("kms:keyspec", "HMAC_256"), true}, {c1("kms:keyspec", "HMAC_384"), false}}},
		{`{"StringNotEqualsIfExists":{"kms:KeySpec":"HMAC_256"}}`, []tc{{absent, true}, {c1("kms:keyspec", "HMAC_256"), false}}},
		{`{"StringLikeIfExists":{"kms:KeySpec":"HMAC_*"}}`, []tc{{absent, true}, {c1("kms:keyspec", "RSA_2048"), false}}},
		{`{"ArnLikeIfExists":{"aws:SourceArn":"arn:aws:s3:::b*"}}`, []tc{{absent, true}, {c1("aws:sourcearn", "arn:aws:s3:::bucket"), true}, {c1("aws:sourcearn", "arn:aws:s3:::other"), false}}},
		{`{"NumericLessThanIfExists":{"kms:N":"5"}}`, []tc{{absent, true}, {c1("kms:n", "6"), false}}},
		{`{"DateLessThanIfExists":{"aws:CurrentTime":"2030-01-01"}}`, []tc{{absent, true}, {c1("aws:currenttime", "2031-01-01"), false}}},
		{`{"IpAddressIfExists":{"aws:SourceIp":"10.0.0.0/8"}}`, []tc{{absent, true}, {c1("aws:sourceip", "11.0.0.1"), false}}},
		// Set operators on the multi-valued kms:GrantOperations.
		{`{"ForAllValues:StringEquals":{"kms:GrantOperations":["GenerateMac","VerifyMac"]}}`, []tc{
			{grantOps("GenerateMac"), true}, {grantOps("GenerateMac", "VerifyMac"), true},
			{grantOps("GenerateMac", "CreateGrant"), false}, {absent, true}, {grantOps(), true}}},
		{`{"ForAnyValue:StringEquals":{"kms:GrantOperations":"GenerateMac"}}`, []tc{
			{grantOps("VerifyMac", "GenerateMac"), true}, {grantOps("VerifyMac"), false}, {absent, false}, {grantOps(), false}}},
		{`{"ForAnyValue:StringEqualsIfExists":{"kms:GrantOperations":"GenerateMac"}}`, []tc{
			{absent, true}, {grantOps("VerifyMac"), false}, {grantOps("GenerateMac"), true}}},
		{`{"ForAllValues:StringEqualsIfExists":{"kms:GrantOperations":"GenerateMac"}}`, []tc{
			{absent, true}, {grantOps("GenerateMac", "VerifyMac"), false}}},
		{`{"ForAllValues:StringNotEquals":{"kms:GrantOperations":"CreateGrant"}}`, []tc{
			{grantOps("GenerateMac", "VerifyMac"), true}, {grantOps("GenerateMac", "CreateGrant"), false}, {absent, true}}},
		{`{"ForAnyValue:StringNotEquals":{"kms:GrantOperations":"CreateGrant"}}`, []tc{
			{grantOps("GenerateMac", "CreateGrant"), true}, {grantOps("CreateGrant"), false}, {absent, false}}},
		{`{"StringNotEquals":{"kms:GrantOperations":"CreateGrant"}}`, []tc{ // plain negated: no value may match
			{grantOps("GenerateMac", "CreateGrant"), false}, {grantOps("GenerateMac", "VerifyMac"), true}}},
		{`{"StringEquals":{"kms:GrantOperations":"GenerateMac"}}`, []tc{ // plain positive: some value matches
			{grantOps("VerifyMac", "GenerateMac"), true}, {grantOps("VerifyMac"), false}}},
		{`{"ForAllValues:StringLike":{"kms:GrantOperations":"*Mac"}}`, []tc{
			{grantOps("GenerateMac", "VerifyMac"), true}, {grantOps("GenerateMac", "DescribeKey"), false}}},
		{`{"ForAnyValue:StringLike":{"kms:GrantOperations":"Describe*"}}`, []tc{
			{grantOps("GenerateMac", "DescribeKey"), true}, {grantOps("GenerateMac"), false}}},
		{`{"ForAllValues:StringEqualsIgnoreCase":{"kms:GrantOperations":["generatemac","verifymac"]}}`, []tc{
			{grantOps("GenerateMac", "VerifyMac"), true}, {grantOps("CreateGrant"), false}}},
		{`{"ForAllValues:NumericLessThan":{"kms:N":"10"}}`, []tc{{c1("kms:n", "1", "9"), true}, {c1("kms:n", "1", "10"), false}}},
		{`{"ForAnyValue:NumericGreaterThan":{"kms:N":"10"}}`, []tc{{c1("kms:n", "1", "11"), true}, {c1("kms:n", "1", "10"), false}}},
		{`{"ForAnyValue:ArnLike":{"kms:Arns":"arn:aws:iam::*:root"}}`, []tc{
			{c1("kms:arns", alice.ARN, rootA.ARN), true}, {c1("kms:arns", alice.ARN), false}}},
		{`{"ForAllValues:ArnNotLike":{"kms:Arns":"arn:aws:iam::*:root"}}`, []tc{
			{c1("kms:arns", alice.ARN, carol.ARN), true}, {c1("kms:arns", alice.ARN, rootA.ARN), false}}},
		{`{"ForAnyValue:Bool":{"kms:Flags":"true"}}`, []tc{{c1("kms:flags", "false", "true"), true}, {c1("kms:flags", "false"), false}}},
		{`{"ForAllValues:IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}`, []tc{{c1("aws:sourceip", "10.0.0.1", "10.9.9.9"), true}, {c1("aws:sourceip", "10.0.0.1", "11.0.0.1"), false}}},
		// Several operators and keys: all must hold.
		{`{"StringEquals":{"kms:KeySpec":"HMAC_256","kms:MacAlgorithm":"HMAC_SHA_256"},"Bool":{"kms:GrantIsForAWSResource":"false"}}`, []tc{
			{map[string][]string{"kms:keyspec": {"HMAC_256"}, "kms:macalgorithm": {"HMAC_SHA_256"}, "kms:grantisforawsresource": {"false"}}, true},
			{map[string][]string{"kms:keyspec": {"HMAC_256"}, "kms:macalgorithm": {"HMAC_SHA_512"}, "kms:grantisforawsresource": {"false"}}, false},
			{map[string][]string{"kms:keyspec": {"HMAC_256"}, "kms:macalgorithm": {"HMAC_SHA_256"}}, false}}},
	}
	for _, c := range cases {
		for i, x := range c.cases {
			t.Run(fmt.Sprintf("%s#%d", c.cond, i), func(t *testing.T) {
				if got := condHolds(t, c.cond, x.ctx); got != x.want {
					t.Fatalf("condition %s with context %v: %v, want %v", c.cond, x.ctx, got, x.want)
				}
			})
		}
	}
}

func TestParseOperator(t *testing.T) {
	cases := []struct {
		name     string
		base     opBase
		negated  bool
		set      setOp
		ifExists bool
		ok       bool
	}{
		{"StringEquals", opString, false, setNone, false, true},
		{"ForAnyValue:StringNotLikeIfExists", opStringLike, true, setAny, true, true},
		{"forallvalues:arnlike", opArn, false, setAll, false, true},
		{"NumericGreaterThanEqualsIfExists", opNumeric, false, setNone, true, true},
		{"Null", opNull, false, setNone, false, true},
		{"NullIfExists", 0, false, 0, false, false},
		{"IfExists", 0, false, 0, false, false},
		{"ForAnyValue:", 0, false, 0, false, false},
		{"StringEquals:ForAnyValue", 0, false, 0, false, false},
	}
	for _, tc := range cases {
		info, set, ifExists, ok := parseOperator(tc.name)
		if ok != tc.ok {
			t.Errorf("%s: ok %v", tc.name, ok)
			continue
		}
		if ok && (info.base != tc.base || info.negated != tc.negated || set != tc.set || ifExists != tc.ifExists) {
			t.Errorf("%s: %+v set %v ifExists %v", tc.name, info, set, ifExists)
		}
	}
}
