package keyrafttest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyraft/keyraft/keyrafttest"
)

func mac(c *keyrafttest.Cluster, i int, key string) error {
	_, err := c.Client(i).GenerateMac(context.Background(), &kms.GenerateMacInput{
		KeyId: aws.String(key), MacAlgorithm: types.MacAlgorithmSpecHmacSha256, Message: []byte("m")})
	return err
}

// TestDisableWhileCutOff is what an application team would write: isolate
// one node, disable a key through the majority, and watch the cut-off node
// stop producing MACs with it once its staleness bound has passed.
func TestDisableWhileCutOff(t *testing.T) {
	const bound = 1500 * time.Millisecond
	c := keyrafttest.Start(t, keyrafttest.Options{MaxStaleness: bound})
	leader := c.WaitForLeader(10 * time.Second)
	cut := (leader + 1) % 3
	ctx := keyrafttest.Context(t, time.Minute)
	key, err := c.Client(leader).CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecHmac256, KeyUsage: types.KeyUsageTypeGenerateVerifyMac})
	if err != nil {
		t.Fatal(err)
	}
	id := *key.KeyMetadata.KeyId
	c.WaitForConvergence(10 * time.Second)

	c.Isolate(cut)
	isolatedAt := time.Now()
	if _, err := c.Client(leader).DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(id)}); err != nil {
		t.Fatalf("DisableKey on the majority while a node is cut off: %v", err)
	}
	// Inside the bound the cut-off node still answers from its old state.
	if err := mac(c, cut, id); err != nil && time.Since(isolatedAt) < bound/2 {
		t.Fatalf("cut-off node refused within its staleness bound: %v", err)
	}
	// Past the bound it refuses: it never produces a MAC with the disabled
	// key later than the bound after the disable.
	deadline := time.Now().Add(bound + 5*time.Second)
	for {
		err := mac(c, cut, id)
		var ku *types.KeyUnavailableException
		if errors.As(err, &ku) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cut-off node still answers %v %s after isolation", err, time.Since(isolatedAt))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if since := time.Since(isolatedAt); since > bound+2*time.Second {
		t.Fatalf("refused only after %s (bound %s)", since, bound)
	}

	c.Heal()
	deadline = time.Now().Add(15 * time.Second)
	for {
		var dis *types.DisabledException
		if errors.As(mac(c, cut, id), &dis) {
			break // healed, caught up, and it knows the key is disabled
		}
		if time.Now().After(deadline) {
			t.Fatalf("healed node never reported the key disabled: %v", mac(c, cut, id))
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.WaitForConvergence(10 * time.Second)
}

// TestPauseApplyLagsThenCatchesUp: a node that stops applying falls behind
// while the others move on, and catches up when the pause ends.
func TestPauseApplyLagsThenCatchesUp(t *testing.T) {
	c := keyrafttest.Start(t, keyrafttest.Options{})
	leader := c.WaitForLeader(10 * time.Second)
	lagger := (leader + 1) % 3
	c.PauseApply(lagger, 2*time.Second)
	ctx := keyrafttest.Context(t, time.Minute)
	key, err := c.Client(leader).CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecHmac256, KeyUsage: types.KeyUsageTypeGenerateVerifyMac})
	if err != nil {
		t.Fatal(err)
	}
	ls, _ := c.Status(leader)
	st, _ := c.Status(lagger)
	if st.AppliedIndex >= ls.AppliedIndex {
		t.Fatalf("paused node applied %d, leader %d: no lag", st.AppliedIndex, ls.AppliedIndex)
	}
	var nf *types.NotFoundException
	if _, err := c.Client(lagger).DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: key.KeyMetadata.KeyId}); !errors.As(err, &nf) {
		t.Fatalf("paused node already knows the new key: %v", err)
	}
	c.WaitForConvergence(15 * time.Second)
	if _, err := c.Client(lagger).DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: key.KeyMetadata.KeyId}); err != nil {
		t.Fatalf("after the pause: %v", err)
	}
}

// TestSlowLinkStillServes: latency between nodes slows writes through a
// follower but loses nothing.
func TestSlowLinkStillServes(t *testing.T) {
	c := keyrafttest.Start(t, keyrafttest.Options{})
	leader := c.WaitForLeader(10 * time.Second)
	f := (leader + 1) % 3
	c.Slow(f, 200*time.Millisecond, leader)
	start := time.Now()
	_, err := c.Client(f).CreateKey(keyrafttest.Context(t, time.Minute), &kms.CreateKeyInput{KeySpec: types.KeySpecHmac256, KeyUsage: types.KeyUsageTypeGenerateVerifyMac})
	if err != nil {
		t.Fatalf("write through a slow follower: %v", err)
	}
	if took := time.Since(start); took < 200*time.Millisecond {
		t.Fatalf("write through a follower with 200ms to the leader took %s", took)
	}
	c.Heal()
	c.WaitForConvergence(10 * time.Second)
}
