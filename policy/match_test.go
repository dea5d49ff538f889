package policy

import "testing"

func TestActionMatching(t *testing.T) {
	cases := []struct {
		pattern, action string
		want            bool
	}{
		{"*", "kms:GenerateMac", true},
		{"kms:*", "kms:GenerateMac", true},
		{"kms:*", "s3:GetObject", false},
		{"KMS:generatemac", "kms:GenerateMac", true}, // case-insensitive, like AWS
		{"kms:GenerateMac", "KMS:GENERATEMAC", true},
		{"kms:GenerateMac", "kms:GenerateMacs", false},
		{"kms:GenerateMac", "kms:Generate", false},
		{"kms:Generate*", "kms:GenerateMac", true},
		{"kms:Generate*", "kms:GenerateDataKeyWithoutPlaintext", true},
		{"kms:Generate*", "kms:VerifyMac", false},
		{"kms:*Mac", "kms:VerifyMac", true},
		{"kms:*mac", "kms:VerifyMac", true},
		{"kms:*Mac", "kms:VerifyMacX", false},
		{"kms:?erifyMac", "kms:VerifyMac", true},
		{"kms:?erifyMac", "kms:erifyMac", false},
		{"kms:??rifyMac", "kms:VerifyMac", true},
		{"kms:*Key*", "kms:DescribeKey", true},
		{"kms:*Key*", "kms:CreateKeyStore", true},
		{"kms:*Key*", "kms:GenerateMac", false},
		{"kms:Re*Encrypt*", "kms:ReEncryptFrom", true},
		{"kms:List*s", "kms:ListAliases", true},
		{"kms:List*s", "kms:ListKeyPolicies", true},
		{"kms:List*s", "kms:ListKeyPolicy", false},
		{"kms:a*b*c", "kms:aXbYbZc", true},
		{"kms:a*b*c", "kms:aXbYbZ", false},
	}
	for _, tc := range cases {
		enc, _ := encodePattern(tc.pattern, true, false)
		g := compileGlob(enc, true)
		if got := g.match(tc.action); got != tc.want {
			t.Errorf("action %q vs %q: %v, want %v", tc.pattern, tc.action, got, tc.want)
		}
		// The same through a policy.
		d := mustParse(t, stmts(`{"Effect":"Allow","Action":"`+tc.pattern+`","Resource":"*"}`))
		if got := d.Evaluate(req(alice, tc.action, keyARN, nil), false) == Allow; got != tc.want {
			t.Errorf("policy action %q vs %q: %v, want %v", tc.pattern, tc.action, got, tc.want)
		}
	}
}

func TestGlobStringLike(t *testing.T) {
	cases := []struct {
		pattern, value string
		want           bool
	}{
		{"", "", true},
		{"", "a", false},
		{"*", "", true},
		{"**", "anything:at/all", true},
		{"abc", "abc", true},
		{"abc", "ABC", false}, // StringLike is case-sensitive
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"a?c", "a\u00e9c", true}, // ? is one character, not one byte
		{"a??c", "a\u00e9c", false},
		{"a*", "a", true},
		{"*c", "abc", true},
		{"*c", "abd", false},
		{"a*c", "ac", true},
		{"a*c", "abbbbc", true},
		{"a*c", "abbbbcd", false},
		{"*a*b*", "xxaxxbxx", true},
		{"*a*b*", "xxbxxaxx", false},
		{"a*b?d", "axxbcd", true},
		{"a*b?d", "axxbd", false},
		{"*:*", "arn:x", true}, // StringLike crosses colons
		{"arn:aws:iam::*", "arn:aws:iam::111122223333:user/alice", true},
		{"HMAC_?56", "HMAC_256", true},
		{"HMAC_?56", "HMAC_384", false},
	}
	for _, tc := range cases {
		enc, _ := encodePattern(tc.pattern, true, false)
		g := compileGlob(enc, false)
		if got := g.match(tc.value); got != tc.want {
			t.Errorf("glob %q vs %q: %v, want %v", tc.pattern, tc.value, got, tc.want)
		}
	}
}

func TestGlobPathological(t *testing.T) {
	// The matcher is linear-space and polynomial: this must finish at once.
	p := ""
	for i := 0; i < 200; i++ {
		p += "*a"
	}
	p += "*b"
	v := ""
	for i := 0; i < 5000; i++ {
		v += "a"
	}
	enc, _ := encodePattern(p, true, false)
	g := compileGlob(enc, false)
	if g.match(v) {
		t.Fatal("matched")
	}
}

func TestResourceAndArnMatching(t *testing.T) {
	cases := []struct {
		pattern, value string
		want           bool
	}{
		{"*", keyARN, true},
		{"*", "", true},
		{keyARN, keyARN, true},
		{keyARN, key2, false},
		{"arn:aws:kms:us-east-1:111122223333:key/*", keyARN, true},
		{"arn:aws:kms:us-east-1:111122223333:key/*", "arn:aws:kms:us-east-1:111122223333:alias/x", false},
		{"arn:aws:kms:*:111122223333:key/*", keyARN, true},
		{"arn:aws:kms:*:444455556666:key/*", keyARN, false},
		{"arn:aws:kms:us-*:111122223333:*", keyARN, true},
		{"arn:aws:kms:eu-*:111122223333:*", keyARN, false},
		{"arn:aws:kms:us-east-?:111122223333:key/*", keyARN, true},
		{"arn:aws:kms:*", keyARN, true},                                            // the last component takes the rest
		{"arn:aws:*", keyARN, true},                                                // same
		{"arn:aws:kms:us-east-1", keyARN, false},                                   // no wildcard: the rest must be equal
		{"arn:aws:KMS:*", keyARN, false},                                           // case-sensitive
		{"arn:aws:kms:*:key/1234abcd-12ab-34cd-56ef-1234567890ab", keyARN, true},   // trailing * swallows region:account
		{"arn:aws:kms:us*:key/1234abcd-12ab-34cd-56ef-1234567890ab", keyARN, true}, // likewise
		{"arn:aws:kms:*:*:key/*", keyARN, true},
		{"arn:aws:k*s:*:*:*", keyARN, true},
		{"arn:aws:*s:us-east-1:111122223333:key/*", keyARN, true},
		// A wildcard inside a component does not cross a colon.
		{"arn:aws:k*1:111122223333:key/*", keyARN, false},
		{"arn:a*s:us-east-1:111122223333:key/*", keyARN, false},
		{"arn:aws:kms:us-east-1:1111*3333:key/*", keyARN, true},
		{"arn:aws:kms:us-east-1:111122223333:key/1234abcd-????-34cd-56ef-1234567890ab", keyARN, true},
		{"arn:aws:kms:us-east-1:111122223333:key/1234abcd-???-34cd-56ef-1234567890ab", keyARN, false},
		// The resource component may hold colons of its own.
		{"arn:aws:logs:us-east-1:111122223333:log-group:/x/*", "arn:aws:logs:us-east-1:111122223333:log-group:/x/y:log-stream:z", true},
		{"arn:aws:logs:us-east-1:111122223333:log-group:/x/y:*", "arn:aws:logs:us-east-1:111122223333:log-group:/x/y:log-stream:z", true},
		{"arn:aws:iam::*:root", "arn:aws:iam::111122223333:root", true},
		{"arn:aws:iam::*:root", "arn:aws:iam::111122223333:user/root", false},
		{"arn:aws:iam::111122223333:*", "arn:aws:iam::111122223333:user/alice", true},
		{"arn:aws:iam::111122223333:user/*", "arn:aws:iam::111122223333:role/alice", false},
		{"arn:aws:iam::111122223333:user/alice", "arn:aws:iam::111122223333:user/alice:extra", false},
		{"arn:aws:iam::111122223333:user/alice", "arn:aws:iam::111122223333", false},
		{"arn:aws:iam::111122223333:user/alice", "not-an-arn", false},
	}
	for _, tc := range cases {
		m := newMatcher(tc.pattern, mARN, true)
		if got := m.match(tc.value, nil); got != tc.want {
			t.Errorf("arn %q vs %q: %v, want %v", tc.pattern, tc.value, got, tc.want)
		}
	}
}

func TestPolicyVariables(t *testing.T) {
	ctx := map[string][]string{
		"aws:username":         {"alice"},
		"aws:principalaccount": {acct},
		"aws:principalarn":     {alice.ARN},
		"kms:grantoperations":  {"GenerateMac", "VerifyMac"},
		"aws:resourcetag/team": {"blue"},
	}
	cases := []struct {
		name    string
		version string
		kind    mkind
		pattern string
		value   string
		want    bool
	}{
		{"exact", "2012-10-17", mExact, "arn:aws:iam::${aws:PrincipalAccount}:user/${aws:username}", alice.ARN, true},
		{"exact other user", "2012-10-17", mExact, "arn:aws:iam::${aws:PrincipalAccount}:user/${aws:username}", carol.ARN, false},
		{"2008 is literal", "2008-10-17", mExact, "arn:aws:iam::${aws:PrincipalAccount}:user/${aws:username}", alice.ARN, false},
		{"2008 literal text", "2008-10-17", mExact, "${aws:username}", "${aws:username}", true},
		{"absent key", "2012-10-17", mExact, "${aws:userid}", "", false},
		{"default value", "2012-10-17", mExact, "${aws:userid, 'nobody'}", "nobody", true},
		{"default unused", "2012-10-17", mExact, "${aws:username, 'nobody'}", "alice", true},
		{"multi-valued key unresolvable", "2012-10-17", mExact, "${kms:grantoperations}", "GenerateMac", false},
		{"literal star in like", "2012-10-17", mGlob, "a${*}b", "a*b", true},
		{"literal star is not a wildcard", "2012-10-17", mGlob, "a${*}b", "axb", false},
		{"literal question mark", "2012-10-17", mGlob, "a${?}", "a?", true},
		{"literal dollar", "2012-10-17", mExact, "${$}{x}", "${x}", true},
		{"like with variable", "2012-10-17", mGlob, "team-${aws:ResourceTag/team}-*", "team-blue-7", true},
		{"arn with variable", "2012-10-17", mARN, "arn:aws:kms:*:${aws:principalaccount}:key/*", keyARN, true},
		{"fold with variable", "2012-10-17", mFold, "${aws:username}", "ALICE", true},
		{"unterminated", "2012-10-17", mExact, "${aws:username", "${aws:username", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := newMatcher(tc.pattern, tc.kind, tc.version == "2012-10-17")
			if got := m.match(tc.value, ctx); got != tc.want {
				t.Fatalf("%q vs %q: %v, want %v", tc.pattern, tc.value, got, tc.want)
			}
		})
	}

	// Through whole policies: a resource and a condition with variables.
	pol := func(version string) *Document {
		return mustParse(t, `{"Version":"`+version+`","Statement":[{"Effect":"Allow","Action":"kms:*",
			"Resource":"arn:aws:kms:us-east-1:${aws:PrincipalAccount}:key/*",
			"Condition":{"StringEquals":{"aws:PrincipalArn":"arn:aws:iam::${aws:PrincipalAccount}:user/${aws:username}"}}}]}`)
	}
	if got := pol("2012-10-17").Evaluate(req(alice, "kms:GenerateMac", keyARN, ctx), false); got != Allow {
		t.Errorf("2012 policy with variables: %v", got)
	}
	if got := pol("2008-10-17").Evaluate(req(alice, "kms:GenerateMac", keyARN, ctx), false); got != NotApplicable {
		t.Errorf("2008 policy treats variables literally: %v", got)
	}
	otherCtx := map[string][]string{"aws:username": {"alice"}, "aws:principalaccount": {other}, "aws:principalarn": {alice.ARN}}
	if got := pol("2012-10-17").Evaluate(req(alice, "kms:GenerateMac", keyARN, otherCtx), false); got != NotApplicable {
		t.Errorf("variables resolved against another account: %v", got)
	}
}
