package policy

import (
	"errors"
	"testing"
)

// FuzzParse: Parse never panics, rejects only with *MalformedError, and a
// document it accepts evaluates without panicking.
func FuzzParse(f *testing.F) {
	f.Add(DefaultKeyPolicy(acct))
	f.Add(benchPolicy)
	f.Add(stmts(`{"Effect":"Deny","Principal":"*","NotAction":"kms:?e*","NotResource":"arn:aws:kms:*:${aws:username}:key/*","Condition":{"ForAnyValue:StringLikeIfExists":{"aws:PrincipalArn":["a*","${aws:username, 'x'}"]}}}`))
	f.Add(`{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:CurrentTime":1}}}}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, doc string) {
		d, err := Parse(doc)
		if err != nil {
			var me *MalformedError
			if !errors.As(err, &me) || me.Message == "" {
				t.Fatalf("error %v (%T)", err, err)
			}
			return
		}
		ctx := map[string][]string{"aws:username": {"alice"}, "aws:principalarn": {alice.ARN}, "aws:currenttime": {"2026-01-01T00:00:00Z"}}
		for _, c := range []Caller{alice, rootA, bob} {
			r := req(c, "kms:GenerateMac", keyARN, ctx)
			d.Evaluate(r, true)
			d.Evaluate(r, false)
			EvaluateKMS(d, d, r, acct)
		}
		_ = CheckLockout(d, alice, nil, acct, keyARN)
	})
}
