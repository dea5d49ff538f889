package policy

import (
	"errors"
	"strings"
	"testing"
)

const (
	acct   = "111122223333"
	other  = "444455556666"
	third  = "777788889999"
	keyARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	key2   = "arn:aws:kms:us-east-1:111122223333:key/0987dcba-09fe-87dc-65ba-ab0987654321"
)

var (
	alice   = Caller{ARN: "arn:aws:iam::111122223333:user/alice", AccountID: acct}
	carol   = Caller{ARN: "arn:aws:iam::111122223333:user/carol", AccountID: acct}
	rootA   = Caller{ARN: "arn:aws:iam::111122223333:root", AccountID: acct}
	bob     = Caller{ARN: "arn:aws:iam::444455556666:user/bob", AccountID: other}
	mallory = Caller{ARN: "arn:aws:iam::777788889999:user/mallory", AccountID: third}
)

func mustParse(t testing.TB, doc string) *Document {
	t.Helper()
	d, err := Parse(doc)
	if err != nil {
		t.Fatalf("Parse(%s): %v", doc, err)
	}
	return d
}

func mustKeyPolicy(t testing.TB, doc string) *Document {
	t.Helper()
	d, err := ParseKeyPolicy(doc)
	if err != nil {
		t.Fatalf("ParseKeyPolicy(%s): %v", doc, err)
	}
	return d
}

func mustIdentity(t testing.TB, doc string) *Document {
	t.Helper()
	d, err := ParseIdentityPolicy(doc)
	if err != nil {
		t.Fatalf("ParseIdentityPolicy(%s): %v", doc, err)
	}
	return d
}

// stmts wraps statements into a 2012-10-17 policy.
func stmts(s ...string) string {
	return `{"Version":"2012-10-17","Statement":[` + strings.Join(s, ",") + `]}`
}

func malformedMessage(t *testing.T, err error) string {
	t.Helper()
	var me *MalformedError
	if !errors.As(err, &me) {
		t.Fatalf("error %v (%T) is not a *MalformedError", err, err)
	}
	if me.Error() != me.Message {
		t.Fatalf("Error() %q != Message %q", me.Error(), me.Message)
	}
	return me.Message
}

func req(c Caller, action, resource string, ctx map[string][]string) Request {
	return Request{Principal: c, Action: action, Resource: resource, Context: ctx}
}
