package agent_test

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

// TestRestartedNodeServesOnlyOnceCaughtUp: a node restarted after missing
// writes must not answer from the old state it replays from disk. Until it
// has applied what the leader had committed, it refuses with
// KeyUnavailableException; it never claims that a key acknowledged
// elsewhere does not exist. (Found by the chaos campaign, seed 1005: a
// restarted node answered NotFoundException while replaying.)
func TestRestartedNodeServesOnlyOnceCaughtUp(t *testing.T) {
	c := keyrafttest.Start(t, keyrafttest.Options{MaxStaleness: 5 * time.Second})
	leader := c.WaitForLeader(10 * time.Second)
	down := (leader + 1) % 3
	c.Kill(down)
	ctx := keyrafttest.Context(t, time.Minute)
	var ids []string
	for k := 0; k < 30; k++ {
		out, err := c.Client(leader).CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecHmac256, KeyUsage: types.KeyUsageTypeGenerateVerifyMac})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, *out.KeyMetadata.KeyId)
	}
	last := ids[len(ids)-1]
	c.Restart(down)
	served := false
	deadline := time.Now().Add(20 * time.Second)
	for !served {
		_, err := c.Client(down).DescribeKey(context.Background(), &kms.DescribeKeyInput{KeyId: aws.String(last)})
		var nf *types.NotFoundException
		var ku *types.KeyUnavailableException
		switch {
		case err == nil:
			served = true
		case errors.As(err, &nf):
			t.Fatalf("restarted node answered NotFound for a key acknowledged while it was down: %v", err)
		case errors.As(err, &ku):
		default:
			// connection refused while it starts
		}
		if time.Now().After(deadline) {
			t.Fatalf("restarted node never served again: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, id := range ids {
		if _, err := c.Client(down).DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(id)}); err != nil {
			t.Fatalf("key %s missing once the node serves: %v", id, err)
		}
	}
}
