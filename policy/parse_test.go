package policy

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestDefaultKeyPolicy(t *testing.T) {
	got := DefaultKeyPolicy(acct)
	// kms-api.md §2.3, compact form.
	want := `{"Version":"2012-10-17","Id":"key-default-1","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}`
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("default policy is not JSON: %v", err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("default policy\n%s\nis not\n%s", got, want)
	}
	for _, s := range []string{"{\n  \"Version\" : \"2012-10-17\",\n", "\"Statement\" : [ {\n", "  } ]\n}"} {
		if !strings.Contains(got, s) {
			t.Errorf("default policy lacks AWS formatting %q:\n%s", s, got)
		}
	}
	d := mustKeyPolicy(t, got)
	if d.Version != "2012-10-17" || d.ID != "key-default-1" || len(d.Statements) != 1 {
		t.Fatalf("parsed default policy: %+v", d)
	}
	st := d.Statements[0]
	if st.Sid != "Enable IAM User Permissions" || st.Effect != EffectAllow || st.Principal == nil ||
		!reflect.DeepEqual(st.Principal.AWS, []string{"arn:aws:iam::111122223333:root"}) || st.Principal.Any ||
		!reflect.DeepEqual(st.Action, []string{"kms:*"}) || st.NotAction ||
		!reflect.DeepEqual(st.Resource, []string{"*"}) || st.NotResource || len(st.Conditions) != 0 {
		t.Fatalf("parsed default statement: %+v", st)
	}
}

func TestParseValid(t *testing.T) {
	cases := []struct {
		name string
		doc  string
		n    int // statements
	}{
		{"statement object", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}}`, 1},
		{"no version", `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}]}`, 1},
		{"version 2008", `{"Version":"2008-10-17","Statement":[{"Effect":"Deny","Principal":{"AWS":"*"},"Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*"}]}`, 1},
		{"empty statement list", `{"Version":"2012-10-17","Statement":[]}`, 0},
		{"principal forms", stmts(`{"Effect":"Allow","Principal":{"AWS":["111122223333","arn:aws:iam::444455556666:root","arn:aws:iam::111122223333:user/alice","arn:aws:iam::111122223333:user/dev/ops/bob","arn:aws:iam::111122223333:role/service-role/Admin","arn:aws:sts::111122223333:assumed-role/Admin/session-1","arn:aws:sts::111122223333:federated-user/fed","arn:aws-cn:iam::111122223333:user/x"],"Service":["logs.amazonaws.com","kms.us-east-1.amazonaws.com"]},"Action":"kms:*","Resource":"*"}`), 1},
		{"service principal only", stmts(`{"Effect":"Allow","Principal":{"Service":"logs.amazonaws.com"},"Action":"kms:GenerateMac","Resource":"*"}`), 1},
		{"not action not resource", stmts(`{"Effect":"Deny","Principal":"*","NotAction":"kms:Describe*","NotResource":"arn:aws:kms:*:111122223333:key/*"}`), 1},
		{"unknown actions accepted", stmts(`{"Effect":"Allow","Principal":"*","Action":["kms:SomeFutureAction","s3:GetObject","*","kms:Generate?ac"],"Resource":"*"}`), 1},
		{"latin-1 and whitespace", "{\r\n\t\"Statement\" : [ {\"Sid\":\"Schl\u00fcssel\",\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"kms:*\",\"Resource\":\"*\"} ]\n}", 1},
		{"escaped non-latin-1 in a value", stmts(`{"Sid":"\u4e2d","Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}`), 1},
		{"conditions of every type", stmts(`{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{
			"StringEquals":{"kms:CallerAccount":"111122223333","kms:KeySpec":["HMAC_256","HMAC_512"]},
			"ForAllValues:StringLike":{"kms:GrantOperations":["*Mac"]},
			"ForAnyValue:StringNotEqualsIgnoreCase":{"kms:GrantOperations":"CreateGrant"},
			"BoolIfExists":{"kms:GrantIsForAWSResource":false},
			"NumericLessThanEquals":{"kms:ScheduleKeyDeletionPendingWindowInDays":30},
			"DateGreaterThan":{"aws:CurrentTime":"2020-01-01T00:00:00Z"},
			"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:role/*"},
			"ArnNotEquals":{"aws:SourceArn":"arn:aws:s3:::x"},
			"NotIpAddress":{"aws:SourceIp":["10.0.0.0/8","2001:db8::/32","192.0.2.1"]},
			"Null":{"aws:ResourceTag/env":"false"},
			"BinaryEquals":{"kms:Blob":"QmluYXJ5"}}}`), 1},
		{"two statements distinct sids", stmts(`{"Sid":"a","Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}`, `{"Sid":"b","Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}`), 2},
		{"empty sids may repeat", stmts(`{"Sid":"","Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}`, `{"Sid":"","Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}`), 2},
		{"empty condition", stmts(`{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{}}`), 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Parse(tc.doc)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if len(d.Statements) != tc.n {
				t.Fatalf("%d statements, want %d", len(d.Statements), tc.n)
			}
			if _, err := ParseKeyPolicy(tc.doc); err != nil {
				t.Fatalf("ParseKeyPolicy: %v", err)
			}
		})
	}
}

func TestParseInvalid(t *testing.T) {
	ok := `"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"`
	st := func(extra string) string { return stmts(`{` + extra + `}`) }
	withPrincipal := func(p string) string {
		return stmts(`{"Effect":"Allow","Principal":` + p + `,"Action":"kms:*","Resource":"*"}`)
	}
	withCond := func(c string) string {
		return stmts(`{` + ok + `,"Condition":` + c + `}`)
	}
	cases := []struct {
		name string
		doc  string
		want string // the exact message, or a prefix ending in "…"
	}{
		{"empty", "", "Policy is empty."},
		{"not json", "not json", "Policy is not a valid JSON document."},
		{"truncated", `{"Statement":[`, "Policy is not a valid JSON document."},
		{"array", `[]`, "Policy must be a JSON object."},
		{"string", `"x"`, "Policy must be a JSON object."},
		{"trailing data", `{"Statement":[]} {}`, "Policy contains data after the end of the JSON document."},
		{"duplicate member", `{"Statement":[],"Statement":[]}`, `Policy contains a duplicate element "Statement".`},
		{"duplicate in a large object", withCond(`{"StringEquals":{` + manyKeys(20) + `,"kms:k3":"x"}}`), `Policy contains a duplicate element "kms:k3".`},
		{"duplicate statement member", stmts(`{"Effect":"Deny",` + ok + `}`), `Policy contains a duplicate element "Effect".`},
		{"control character", "{\"Statement\":[]}\x01", "Policy contains characters outside printable ASCII and Latin-1, TAB, LF and CR."},
		{"beyond latin-1", stmts(`{"Sid":"` + "\u0100" + `",` + ok + `}`), "Policy contains characters outside printable ASCII and Latin-1, TAB, LF and CR."},
		{"invalid utf-8", "{\"Statement\":[]}\xff", "Policy contains characters outside printable ASCII and Latin-1, TAB, LF and CR."},
		{"escaped control character", stmts(`{"Effect":"Allow","Principal":"*","Action":"kms:\u0001","Resource":"*"}`), "Policy contains a control character."},
		{"escaped control in a key", stmts(`{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringEquals":{"kms:\u001f":"x"}}}`), "Policy contains a control character."},
		{"escaped control in sid", stmts(`{"Sid":"\u0002",` + ok + `}`), "Policy contains a control character."},
		{"too deep", `{"Statement":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, "Policy is not a valid JSON document."},
		{"no statement", `{"Version":"2012-10-17"}`, "Policy is missing the required element Statement."},
		{"statement string", `{"Statement":"x"}`, "Policy Statement must be a JSON object or an array of objects."},
		{"statement not object", `{"Statement":["x"]}`, "Policy statement must be a JSON object."},
		{"unknown top-level", `{"Statement":[],"Foo":1}`, `Policy contains an unknown element "Foo".`},
		{"lowercase top-level", `{"statement":[]}`, `Policy contains an unknown element "statement".`},
		{"unknown statement member", st(ok + `,"Actions":"kms:*"`), `Policy statement contains an unknown element "Actions".`},
		{"bad version", `{"Version":"2020-01-01","Statement":[]}`, `Policy has an invalid Version "2020-01-01": it must be "2012-10-17" or "2008-10-17".`},
		{"numeric version", `{"Version":1,"Statement":[]}`, `Policy has an invalid Version "1": it must be "2012-10-17" or "2008-10-17".`},
		{"id not string", `{"Id":5,"Statement":[]}`, "Policy Id must be a string."},
		{"sid not string", st(`"Sid":1,` + ok), "Policy statement Sid must be a string."},
		{"duplicate sid", stmts(`{"Sid":"a",`+ok+`}`, `{"Sid":"a",`+ok+`}`), "Statement IDs (SID) in a single policy must be unique."},
		{"no effect", st(`"Principal":"*","Action":"kms:*","Resource":"*"`), `Policy statement has an invalid Effect: it must be "Allow" or "Deny".`},
		{"lowercase effect", st(`"Effect":"allow","Principal":"*","Action":"kms:*","Resource":"*"`), `Policy statement has an invalid Effect: it must be "Allow" or "Deny".`},
		{"effect not string", st(`"Effect":true,"Principal":"*","Action":"kms:*","Resource":"*"`), `Policy statement has an invalid Effect: it must be "Allow" or "Deny".`},
		{"action and notaction", st(ok + `,"NotAction":"kms:Encrypt"`), "Policy statement must contain either Action or NotAction, not both."},
		{"no action", st(`"Effect":"Allow","Principal":"*","Resource":"*"`), "Policy statement must contain actions."},
		{"empty action list", st(`"Effect":"Allow","Principal":"*","Action":[],"Resource":"*"`), "Policy statement must contain actions."},
		{"action not string", st(`"Effect":"Allow","Principal":"*","Action":[1],"Resource":"*"`), "Policy statement must contain actions."},
		{"action no colon", st(`"Effect":"Allow","Principal":"*","Action":"kms","Resource":"*"`), `Policy statement contains an invalid action "kms".`},
		{"action empty name", st(`"Effect":"Allow","Principal":"*","Action":"kms:","Resource":"*"`), `Policy statement contains an invalid action "kms:".`},
		{"action empty service", st(`"Effect":"Allow","Principal":"*","Action":":Encrypt","Resource":"*"`), `Policy statement contains an invalid action ":Encrypt".`},
		{"action two colons", st(`"Effect":"Allow","Principal":"*","Action":"kms:a:b","Resource":"*"`), `Policy statement contains an invalid action "kms:a:b".`},
		{"action space", st(`"Effect":"Allow","Principal":"*","Action":"kms:Generate Mac","Resource":"*"`), `Policy statement contains an invalid action "kms:Generate Mac".`},
		{"action wildcard service", st(`"Effect":"Allow","Principal":"*","Action":"k*:Encrypt","Resource":"*"`), `Policy statement contains an invalid action "k*:Encrypt".`},
		{"resource and notresource", st(ok + `,"NotResource":"*"`), "Policy statement must contain either Resource or NotResource, not both."},
		{"no resource", st(`"Effect":"Allow","Principal":"*","Action":"kms:*"`), "Policy statement must contain resources."},
		{"empty resource list", st(`"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":[]`), "Policy statement must contain resources."},
		{"resource not string", st(`"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":{"a":"b"}`), "Policy statement must contain resources."},
		{"resource not arn", st(`"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"key/abc"`), `Policy statement contains an invalid resource "key/abc": it must be "*" or an ARN.`},
		{"resource short arn", st(`"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"arn:aws:kms:us-east-1"`), `Policy statement contains an invalid resource "arn:aws:kms:us-east-1": it must be "*" or an ARN.`},
		{"principal name", withPrincipal(`"alice"`), MsgInvalidPrincipals},
		{"principal aws name", withPrincipal(`{"AWS":"alice"}`), MsgInvalidPrincipals},
		{"principal short account", withPrincipal(`{"AWS":"12345"}`), MsgInvalidPrincipals},
		{"principal unique id", withPrincipal(`{"AWS":"AIDACKCEVSQ6C2EXAMPLE"}`), MsgInvalidPrincipals},
		{"principal wildcard arn", withPrincipal(`{"AWS":"arn:aws:iam::111122223333:user/*"}`), MsgInvalidPrincipals},
		{"principal wildcard account", withPrincipal(`{"AWS":"arn:aws:iam::*:root"}`), MsgInvalidPrincipals},
		{"principal group", withPrincipal(`{"AWS":"arn:aws:iam::111122223333:group/admins"}`), MsgInvalidPrincipals},
		{"principal s3 arn", withPrincipal(`{"AWS":"arn:aws:s3:::bucket"}`), MsgInvalidPrincipals},
		{"principal with region", withPrincipal(`{"AWS":"arn:aws:iam:us-east-1:111122223333:user/x"}`), MsgInvalidPrincipals},
		{"principal bad partition", withPrincipal(`{"AWS":"arn:gcp:iam::111122223333:user/x"}`), MsgInvalidPrincipals},
		{"principal empty user", withPrincipal(`{"AWS":"arn:aws:iam::111122223333:user/"}`), MsgInvalidPrincipals},
		{"principal bad session", withPrincipal(`{"AWS":"arn:aws:sts::111122223333:assumed-role/OnlyRole"}`), MsgInvalidPrincipals},
		{"principal federated", withPrincipal(`{"Federated":"cognito-identity.amazonaws.com"}`), MsgInvalidPrincipals},
		{"principal canonical user", withPrincipal(`{"CanonicalUser":"79a59df900b949e55d96a1e698fbaced"}`), MsgInvalidPrincipals},
		{"principal empty object", withPrincipal(`{}`), MsgInvalidPrincipals},
		{"principal empty list", withPrincipal(`{"AWS":[]}`), MsgInvalidPrincipals},
		{"principal number", withPrincipal(`{"AWS":111122223333}`), MsgInvalidPrincipals},
		{"principal bad service", withPrincipal(`{"Service":"not a service"}`), MsgInvalidPrincipals},
		{"principal array", withPrincipal(`["*"]`), MsgInvalidPrincipals},
		{"notprincipal", st(`"Effect":"Deny","NotPrincipal":{"AWS":"111122223333"},"Action":"kms:*","Resource":"*"`), "Policy contains a statement with NotPrincipal, which is not supported: use Principal with a condition on aws:PrincipalArn instead."},
		{"condition not object", withCond(`"x"`), "Policy statement Condition must be a JSON object."},
		{"unknown operator", withCond(`{"StringEqualz":{"kms:KeySpec":"HMAC_256"}}`), `Policy statement contains an invalid condition operator "StringEqualz".`},
		{"unknown set operator", withCond(`{"ForSomeValues:StringEquals":{"kms:KeySpec":"HMAC_256"}}`), `Policy statement contains an invalid condition operator "ForSomeValues:StringEquals".`},
		{"null ifexists", withCond(`{"NullIfExists":{"kms:KeySpec":"true"}}`), `Policy statement contains an invalid condition operator "NullIfExists".`},
		{"null with set operator", withCond(`{"ForAnyValue:Null":{"kms:KeySpec":"true"}}`), `Policy statement contains an invalid condition operator "ForAnyValue:Null".`},
		{"duplicate operator", withCond(`{"StringEquals":{"kms:KeySpec":"HMAC_256"},"stringequals":{"kms:MacAlgorithm":"HMAC_SHA_256"}}`), `Policy statement contains a duplicate condition operator "stringequals".`},
		{"operator value not object", withCond(`{"StringEquals":"HMAC_256"}`), `Condition operator "StringEquals" must map condition keys to values.`},
		{"key without service", withCond(`{"StringEquals":{"KeySpec":"HMAC_256"}}`), `Policy statement contains an invalid condition key "KeySpec".`},
		{"duplicate key", withCond(`{"StringEquals":{"kms:KeySpec":"HMAC_256","KMS:KEYSPEC":"HMAC_512"}}`), `Policy statement contains a duplicate condition key "KMS:KEYSPEC".`},
		{"null value", withCond(`{"StringEquals":{"kms:KeySpec":null}}`), `Condition key "kms:KeySpec" must have a string value or a non-empty list of values.`},
		{"object value", withCond(`{"StringEquals":{"kms:KeySpec":{"a":"b"}}}`), `Condition key "kms:KeySpec" must have a string value or a non-empty list of values.`},
		{"empty value list", withCond(`{"StringEquals":{"kms:KeySpec":[]}}`), `Condition key "kms:KeySpec" must have a string value or a non-empty list of values.`},
		{"nested list", withCond(`{"StringEquals":{"kms:KeySpec":[["a"]]}}`), `Condition key "kms:KeySpec" must have a string value or a non-empty list of values.`},
		{"bool value", withCond(`{"Bool":{"kms:GrantIsForAWSResource":"yes"}}`), `Policy statement contains an invalid value "yes" for condition operator "Bool".`},
		{"numeric value", withCond(`{"NumericLessThan":{"kms:X":"ten"}}`), `Policy statement contains an invalid value "ten" for condition operator "NumericLessThan".`},
		{"date value", withCond(`{"DateLessThan":{"aws:CurrentTime":"tomorrow"}}`), `Policy statement contains an invalid value "tomorrow" for condition operator "DateLessThan".`},
		{"ip value", withCond(`{"IpAddress":{"aws:SourceIp":"10.0.0.300"}}`), `Policy statement contains an invalid value "10.0.0.300" for condition operator "IpAddress".`},
		{"null value word", withCond(`{"Null":{"aws:ResourceTag/env":"maybe"}}`), `Policy statement contains an invalid value "maybe" for condition operator "Null".`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Parse(tc.doc)
			if err == nil {
				t.Fatalf("Parse accepted %s: %+v", tc.doc, d)
			}
			if d != nil {
				t.Fatalf("Parse returned a document with an error")
			}
			if got := malformedMessage(t, err); got != tc.want {
				t.Fatalf("message\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func manyKeys(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"kms:k%d":"v"`, i)
	}
	return b.String()
}

func TestParseLargeObjectWithoutDuplicates(t *testing.T) {
	d := mustParse(t, stmts(`{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringEquals":{`+manyKeys(40)+`}}}`))
	if n := len(d.Statements[0].Conditions); n != 40 {
		t.Fatalf("%d conditions", n)
	}
}

func TestParseKeyAndIdentityPolicyRules(t *testing.T) {
	noPrincipal := stmts(`{"Effect":"Allow","Action":"kms:*","Resource":"*"}`)
	withPrincipal := stmts(`{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}`)

	if _, err := Parse(noPrincipal); err != nil {
		t.Fatalf("Parse (either kind) rejected a statement without principal: %v", err)
	}
	_, err := ParseKeyPolicy(noPrincipal)
	if err == nil || malformedMessage(t, err) != MsgNoPrincipal {
		t.Fatalf("ParseKeyPolicy without principal: %v", err)
	}
	if _, err := ParseIdentityPolicy(noPrincipal); err != nil {
		t.Fatalf("ParseIdentityPolicy: %v", err)
	}
	_, err = ParseIdentityPolicy(withPrincipal)
	if err == nil || malformedMessage(t, err) != MsgPrincipalInIAM {
		t.Fatalf("ParseIdentityPolicy with principal: %v", err)
	}
	// Errors of Parse pass through both.
	for _, f := range []func(string) (*Document, error){ParseKeyPolicy, ParseIdentityPolicy} {
		if _, err := f(`{}`); err == nil || malformedMessage(t, err) != "Policy is missing the required element Statement." {
			t.Fatalf("missing statement: %v", err)
		}
	}
}

func TestParseConditionValuesAsStrings(t *testing.T) {
	d := mustParse(t, stmts(`{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"Bool":{"kms:GrantIsForAWSResource":false},"NumericEquals":{"kms:N":[1.5,2]}}}`))
	cs := d.Statements[0].Conditions
	if len(cs) != 2 {
		t.Fatalf("conditions: %+v", cs)
	}
	if cs[0].Operator != "Bool" || cs[0].Key != "kms:GrantIsForAWSResource" || !reflect.DeepEqual(cs[0].Values, []string{"false"}) {
		t.Errorf("bool condition: %+v", cs[0])
	}
	if !reflect.DeepEqual(cs[1].Values, []string{"1.5", "2"}) {
		t.Errorf("numeric condition: %+v", cs[1])
	}
}

func TestKnownActions(t *testing.T) {
	need := []string{"CreateKey", "DescribeKey", "ListKeys", "EnableKey", "DisableKey", "ScheduleKeyDeletion",
		"CancelKeyDeletion", "CreateAlias", "UpdateAlias", "DeleteAlias", "ListAliases", "CreateGrant", "ListGrants",
		"ListRetirableGrants", "RetireGrant", "RevokeGrant", "TagResource", "UntagResource", "ListResourceTags",
		"GetKeyPolicy", "PutKeyPolicy", "ListKeyPolicies", "GenerateMac", "VerifyMac", "GenerateRandom",
		"GetParametersForImport", "ImportKeyMaterial", "DeleteImportedKeyMaterial", "UpdateKeyDescription",
		"Encrypt", "Decrypt", "ReEncryptFrom", "ReEncryptTo", "GenerateDataKey", "Sign", "Verify"}
	for _, a := range need {
		if !KnownAction("kms:" + a) {
			t.Errorf("kms:%s missing from Actions", a)
		}
	}
	if !KnownAction("KMS:generatemac") || KnownAction("kms:Nope") || KnownAction("GenerateMac") {
		t.Error("KnownAction case folding / rejection")
	}
	seen := map[string]bool{}
	for _, a := range Actions {
		if seen[a] || !validAction(a) || !strings.HasPrefix(a, "kms:") {
			t.Errorf("bad or duplicate entry %q", a)
		}
		seen[a] = true
	}
}
