package agent_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/keyrafttest"
)

// grantMac is a GenerateMac with grant tokens.
func grantMac(c *kms.Client, keyID string, tokens ...string) error {
	_, err := c.GenerateMac(context.Background(), &kms.GenerateMacInput{KeyId: aws.String(keyID),
		MacAlgorithm: types.MacAlgorithmSpecHmacSha256, Message: msg, GrantTokens: tokens})
	return err
}

func isAccessDenied(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "AccessDeniedException"
}

// eventually polls f until it returns nil, for at most d.
func eventually(t *testing.T, d time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: still failing after %s: %v", what, d, err)
}

// waitForGrant waits until node i has applied grant id of key keyID (as
// active, or as a tombstone when retired is set).
func waitForGrant(t *testing.T, c *keyrafttest.Cluster, i int, scope fsm.Scope, keyID, id string, retired bool) {
	t.Helper()
	eventually(t, 10*time.Second, "grant replication to "+c.Nodes[i].ID, func() error {
		if g, ok := c.Agent(i).State().Grant(scope, keyID, id); ok && g.Active() != retired {
			return nil
		}
		return errors.New("not applied yet")
	})
}

// TestGrantsAcrossNodes runs grants on a real 3-node SigV4 cluster with
// uneven propagation: node 1 ("writer") has no propagation delay, the
// others 2 s; one of them is kept from applying the log for a while, so it
// has not heard of the grant at all. A grantee without a grant is refused;
// after CreateGrant it is refused without its token on a node inside the
// delay and served with it, even on the node that has not applied the
// grant; after the delay it is served without the token everywhere.
// Revoked and retired grants are honoured for the delay, then not, and
// their tokens do not revive them.
func TestGrantsAcrossNodes(t *testing.T) {
	const delay = 2 * time.Second
	c := keyrafttest.Start(t, keyrafttest.Options{Auth: "sigv4", Credentials: testCredentials(t),
		GrantPropagationDelay: delay, GrantPropagationDelays: map[int]time.Duration{0: 0}})
	ctx := keyrafttest.Context(t, 120*time.Second)
	alice := func(i int) *kms.Client { return c.ClientFor(i, &pAlice) }
	carol := func(i int) *kms.Client { return c.ClientFor(i, &pCarol) }
	bob := func(i int) *kms.Client { return c.ClientFor(i, &pBob) }
	scope := fsm.Scope{Account: pAlice.AccountID, Region: "us-east-1"}

	// writer: node 0 (delay 0). lagger: a node with the delay that keeps
	// applying. paused: a follower with the delay whose apply we pause.
	writer, lagger, paused := 0, 1, 2
	if leader := c.WaitForLeader(10 * time.Second); leader == 2 {
		lagger, paused = 2, 1
	}
	if c.GrantPropagationDelay(writer) != 0 || c.GrantPropagationDelay(lagger) != delay {
		t.Fatal("per-node delays not applied")
	}

	md := createKey(t, alice(writer), types.KeySpecHmac256)
	keyID, arn := aws.ToString(md.KeyId), aws.ToString(md.Arn)
	c.WaitForConvergence(10 * time.Second)
	for i := range c.Nodes {
		awsCode(t, grantMac(carol(i), keyID), "AccessDeniedException",
			"User: arn:aws:iam::111122223333:user/carol is not authorized to perform: kms:GenerateMac on resource: "+arn)
	}

	c.PauseApply(paused, 4*time.Second)
	created := time.Now()
	out, err := alice(writer).CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(keyID), GranteePrincipal: aws.String(pCarol.ARN),
		RetiringPrincipal: aws.String(pBob.ARN), Operations: []types.GrantOperation{types.GrantOperationGenerateMac, types.GrantOperationVerifyMac},
		Name: aws.String("integration")})
	if err != nil {
		t.Fatalf("CreateGrant: %v", err)
	}
	gid, tok := aws.ToString(out.GrantId), aws.ToString(out.GrantToken)

	// The writer node has applied it (read-your-writes) and has no delay.
	if err := grantMac(carol(writer), keyID); err != nil {
		t.Fatalf("grantee on the writer node: %v", err)
	}
	// The lagger has applied it but does not consider it effective yet.
	waitForGrant(t, c, lagger, scope, keyID, gid, false)
	err = grantMac(carol(lagger), keyID)
	if inWindow := time.Since(created) < delay-300*time.Millisecond; !inWindow {
		t.Logf("too slow to observe the creation window on %s (%s after CreateGrant)", c.Nodes[lagger].ID, time.Since(created))
	} else if !isAccessDenied(err) {
		t.Fatalf("grantee without its token inside the delay on %s: %v, want AccessDeniedException", c.Nodes[lagger].ID, err)
	}
	if err := grantMac(carol(lagger), keyID, tok); err != nil {
		t.Fatalf("grantee with its token on %s: %v", c.Nodes[lagger].ID, err)
	}
	// The paused node has not even applied it: the token is enough.
	if _, known := c.Agent(paused).State().Grant(scope, keyID, gid); known {
		t.Fatalf("%s applied the grant while paused", c.Nodes[paused].ID)
	}
	awsCode(t, grantMac(carol(paused), keyID), "AccessDeniedException", "kms:GenerateMac")
	if err := grantMac(carol(paused), keyID, tok); err != nil {
		t.Fatalf("grantee with its token on %s, which has not applied the grant: %v", c.Nodes[paused].ID, err)
	}
	// After the delay: without the token, everywhere.
	for _, i := range []int{lagger, paused} {
		eventually(t, 15*time.Second, "grantee without token on "+c.Nodes[i].ID, func() error { return grantMac(carol(i), keyID) })
	}
	if since := time.Since(created); since < delay {
		t.Fatalf("the grant became effective on the lagger after %s, before its delay of %s", since, delay)
	}

	// Name idempotency through the SDK, on another node: the same grant,
	// a new token.
	again, err := alice(lagger).CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(arn), GranteePrincipal: aws.String(pCarol.ARN),
		RetiringPrincipal: aws.String(pBob.ARN), Operations: []types.GrantOperation{types.GrantOperationVerifyMac, types.GrantOperationGenerateMac},
		Name: aws.String("integration")})
	if err != nil || aws.ToString(again.GrantId) != gid || aws.ToString(again.GrantToken) == tok {
		t.Fatalf("CreateGrant again with the same Name: %+v %v", again, err)
	}

	// Revoke through the writer: the writer stops at once; the lagger
	// honours the grant for its delay, then refuses, token or not.
	if _, err := alice(writer).RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: aws.String(keyID), GrantId: aws.String(gid)}); err != nil {
		t.Fatalf("RevokeGrant: %v", err)
	}
	revoked := time.Now()
	awsCode(t, grantMac(carol(writer), keyID, tok), "AccessDeniedException", "kms:GenerateMac")
	waitForGrant(t, c, lagger, scope, keyID, gid, true)
	if err := grantMac(carol(lagger), keyID); time.Since(revoked) >= delay-300*time.Millisecond {
		t.Logf("too slow to observe the revocation window on %s", c.Nodes[lagger].ID)
	} else if err != nil {
		t.Fatalf("a revoked grant inside the delay on %s: %v", c.Nodes[lagger].ID, err)
	}
	eventually(t, 10*time.Second, "revoked grant refused on the lagger", func() error {
		if err := grantMac(carol(lagger), keyID); !isAccessDenied(err) {
			return errors.New("still allowed")
		}
		return nil
	})
	awsCode(t, grantMac(carol(lagger), keyID, tok, aws.ToString(again.GrantToken)), "AccessDeniedException", "kms:GenerateMac")
	if since := time.Since(revoked); since < delay-300*time.Millisecond {
		t.Fatalf("the revoked grant stopped working on the lagger after %s, before its delay of %s", since, delay)
	}

	// Retire: the retiring principal, by the token, through the paused
	// node (now caught up); honoured on the lagger for the delay.
	g2, err := alice(writer).CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(keyID), GranteePrincipal: aws.String(pCarol.ARN),
		RetiringPrincipal: aws.String(pBob.ARN), Operations: []types.GrantOperation{types.GrantOperationGenerateMac}})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "second grant effective on the lagger", func() error { return grantMac(carol(lagger), keyID) })
	if _, err := bob(paused).RetireGrant(ctx, &kms.RetireGrantInput{GrantToken: g2.GrantToken}); err != nil {
		t.Fatalf("RetireGrant by the retiring principal with the token: %v", err)
	}
	retired := time.Now()
	eventually(t, 10*time.Second, "retired grant refused on the lagger", func() error {
		if err := grantMac(carol(lagger), keyID, aws.ToString(g2.GrantToken)); !isAccessDenied(err) {
			return errors.New("still allowed")
		}
		return nil
	})
	if since := time.Since(retired); since < delay-300*time.Millisecond {
		t.Fatalf("the retired grant stopped working on the lagger after %s", since)
	}
	_, err = bob(writer).RetireGrant(ctx, &kms.RetireGrantInput{KeyId: aws.String(arn), GrantId: g2.GrantId})
	awsCode(t, err, "NotFoundException", "Grant ID not found")
}

// TestGrantListingAndCrossAccount: ListGrants and ListRetirableGrants page
// through a follower's replica; a grant to a principal of another account,
// used by key ARN on every node.
func TestGrantListingAndCrossAccount(t *testing.T) {
	c := keyrafttest.Start(t, keyrafttest.Options{Auth: "sigv4", Credentials: testCredentials(t)})
	ctx := keyrafttest.Context(t, 60*time.Second)
	alice := func(i int) *kms.Client { return c.ClientFor(i, &pAlice) }
	md := createKey(t, alice(0), types.KeySpecHmac256)
	keyID, arn := aws.ToString(md.KeyId), aws.ToString(md.Arn)
	c.WaitForConvergence(10 * time.Second) // grants are created through every node

	var ids []string
	for i := 0; i < 5; i++ {
		in := &kms.CreateGrantInput{KeyId: aws.String(keyID), GranteePrincipal: aws.String(pCarol.ARN),
			Operations: []types.GrantOperation{types.GrantOperationDescribeKey}}
		if i%2 == 1 {
			in.RetiringPrincipal = aws.String(pBob.ARN)
		}
		out, err := alice(i%3).CreateGrant(ctx, in)
		if err != nil {
			t.Fatalf("CreateGrant %d on %s: %v", i, c.Nodes[i%3].ID, err)
		}
		ids = append(ids, aws.ToString(out.GrantId))
	}
	c.WaitForConvergence(10 * time.Second)
	for n := range c.Nodes {
		var got []string
		p := kms.NewListGrantsPaginator(alice(n), &kms.ListGrantsInput{KeyId: aws.String(arn), Limit: aws.Int32(2)})
		pages := 0
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				t.Fatalf("ListGrants on %s: %v", c.Nodes[n].ID, err)
			}
			pages++
			for _, g := range out.Grants {
				if aws.ToString(g.KeyId) != arn || aws.ToString(g.GranteePrincipal) != pCarol.ARN {
					t.Fatalf("entry %+v", g)
				}
				got = append(got, aws.ToString(g.GrantId))
			}
		}
		if pages != 3 || len(got) != 5 || !sameSet(got, ids) {
			t.Fatalf("ListGrants on %s: %d pages, %v, want %v", c.Nodes[n].ID, pages, got, ids)
		}
		var ret []string
		rp := kms.NewListRetirableGrantsPaginator(alice(n), &kms.ListRetirableGrantsInput{RetiringPrincipal: aws.String(pBob.ARN), Limit: aws.Int32(1)})
		for rp.HasMorePages() {
			out, err := rp.NextPage(ctx)
			if err != nil {
				t.Fatalf("ListRetirableGrants on %s: %v", c.Nodes[n].ID, err)
			}
			for _, g := range out.Grants {
				ret = append(ret, aws.ToString(g.GrantId))
			}
		}
		if !sameSet(ret, []string{ids[1], ids[3]}) {
			t.Fatalf("ListRetirableGrants on %s: %v", c.Nodes[n].ID, ret)
		}
	}

	// Another account's principal, by the key's ARN, on every node.
	erin := func(i int) *kms.Client { return c.ClientFor(i, &pErin) }
	awsCode(t, grantMac(erin(1), arn), "AccessDeniedException", "because no resource-based policy allows the kms:GenerateMac action")
	out, err := alice(2).CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(arn), GranteePrincipal: aws.String(pErin.ARN),
		Operations: []types.GrantOperation{types.GrantOperationGenerateMac, types.GrantOperationVerifyMac}})
	if err != nil {
		t.Fatal(err)
	}
	if err := grantMac(erin(1), arn, aws.ToString(out.GrantToken)); err != nil {
		t.Fatalf("cross-account grantee with its token: %v", err)
	}
	c.WaitForConvergence(10 * time.Second)
	for i := range c.Nodes {
		if err := grantMac(erin(i), arn); err != nil {
			t.Fatalf("cross-account grantee on %s: %v", c.Nodes[i].ID, err)
		}
	}
	awsCode(t, grantMac(erin(0), keyID), "NotFoundException", "arn:aws:kms:us-east-1:444455556666:key/"+keyID)
	// The grantee's account cannot list or revoke the owner's grants.
	_, err = erin(0).ListGrants(ctx, &kms.ListGrantsInput{KeyId: aws.String(arn)})
	awsCode(t, err, "AccessDeniedException", "kms:ListGrants")
	_, err = erin(0).RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: aws.String(arn), GrantId: out.GrantId})
	awsCode(t, err, "AccessDeniedException", "kms:RevokeGrant")
	// The owner can.
	if _, err := alice(1).RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: aws.String(arn), GrantId: out.GrantId}); err != nil {
		t.Fatal(err)
	}
	c.WaitForConvergence(10 * time.Second)
	for i := range c.Nodes {
		awsCode(t, grantMac(erin(i), arn), "AccessDeniedException", "kms:GenerateMac")
	}
	// The status says each node can check tokens, and never shows the secret.
	st, err := c.Status(1)
	if err != nil || st.Extra["grant_tokens"] != true {
		t.Fatalf("status: %+v %v", st.Extra, err)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestClusterSecretAndTombstonePurge: the leader installs the grant token
// secret once (every node holds the same sealed copy and can open it), and
// purges grant tombstones older than the retention.
func TestClusterSecretAndTombstonePurge(t *testing.T) {
	c := keyrafttest.Start(t, keyrafttest.Options{Nodes: 3, GrantTombstoneRetention: 1500 * time.Millisecond,
		GrantPropagationDelay: 500 * time.Millisecond})
	var first []byte
	for i := range c.Nodes {
		s, ok := c.Agent(i).State().ClusterSecret()
		if !ok {
			t.Fatalf("%s has no cluster secret", c.Nodes[i].ID)
		}
		if i == 0 {
			first = s
		} else if !slices.Equal(s, first) {
			t.Fatalf("%s has another cluster secret", c.Nodes[i].ID)
		}
	}
	// A new leader does not replace it.
	leader := c.WaitForLeader(10 * time.Second)
	c.Kill(leader)
	next := c.WaitForLeader(20 * time.Second)
	time.Sleep(300 * time.Millisecond) // a few housekeeping ticks of the new leader
	if s, _ := c.Agent(next).State().ClusterSecret(); !slices.Equal(s, first) {
		t.Fatal("the new leader replaced the cluster secret")
	}
	c.Restart(leader)
	c.WaitForLeader(20 * time.Second)

	ctx := keyrafttest.Context(t, 30*time.Second)
	md := createKey(t, c.Client(next), types.KeySpecHmac256)
	out, err := c.Client(next).CreateGrant(ctx, &kms.CreateGrantInput{KeyId: md.KeyId, GranteePrincipal: aws.String("arn:aws:iam::111122223333:user/x"),
		Operations: []types.GrantOperation{types.GrantOperationGenerateMac}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client(next).RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: md.KeyId, GrantId: out.GrantId}); err != nil {
		t.Fatal(err)
	}
	st := c.Agent(next).State()
	scope := fsm.Scope{Account: "111122223333", Region: "us-east-1"}
	if _, ok := st.OldestTombstone(); !ok {
		t.Fatal("no tombstone after RevokeGrant")
	}
	eventually(t, 15*time.Second, "tombstone purge", func() error {
		for _, i := range c.Running() {
			if _, ok := c.Agent(i).State().Grant(scope, aws.ToString(md.KeyId), aws.ToString(out.GrantId)); ok {
				return errors.New("tombstone still on " + c.Nodes[i].ID)
			}
		}
		return nil
	})
	if _, ok := st.OldestTombstone(); ok {
		t.Fatal("tombstones left")
	}
}
