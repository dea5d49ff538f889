package agent_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/keyraft/keyraft/keyrafttest"
)

var msg = []byte("the quick brown fox jumps over the lazy dog")

func createKey(t *testing.T, c *kms.Client, spec types.KeySpec) *types.KeyMetadata {
	t.Helper()
	out, err := c.CreateKey(keyrafttest.Context(t, 15*time.Second), &kms.CreateKeyInput{
		KeySpec: spec, KeyUsage: types.KeyUsageTypeGenerateVerifyMac, Description: aws.String("integration"),
	})
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	return out.KeyMetadata
}

// waitForKey polls node i until it has applied the key: replication to a
// follower is asynchronous, and a real client would retry the same way.
func waitForKey(t *testing.T, c *keyrafttest.Cluster, i int, keyID string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		_, err := c.Client(i).DescribeKey(context.Background(), &kms.DescribeKeyInput{KeyId: aws.String(keyID)})
		if err == nil {
			return
		}
		var nf *types.NotFoundException
		if !errors.As(err, &nf) {
			t.Fatalf("DescribeKey on %s: %v", c.Nodes[i].ID, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("key %s never reached %s", keyID, c.Nodes[i].ID)
}

func generateMac(t *testing.T, c *kms.Client, keyID string, alg types.MacAlgorithmSpec, m []byte) []byte {
	t.Helper()
	out, err := c.GenerateMac(keyrafttest.Context(t, 5*time.Second), &kms.GenerateMacInput{KeyId: aws.String(keyID), MacAlgorithm: alg, Message: m})
	if err != nil {
		t.Fatalf("GenerateMac: %v", err)
	}
	return out.Mac
}

func follower(t *testing.T, c *keyrafttest.Cluster, leader int) int {
	for _, i := range c.Running() {
		if i != leader {
			return i
		}
	}
	t.Fatal("no follower running")
	return -1
}

func TestCreateOnOneNodeMacOnSecondVerifyOnThird(t *testing.T) {
	c := keyrafttest.Start(t, keyrafttest.Options{})
	for _, spec := range []types.KeySpec{types.KeySpecHmac224, types.KeySpecHmac256, types.KeySpecHmac384, types.KeySpecHmac512} {
		md := createKey(t, c.Client(0), spec)
		alg := md.MacAlgorithms[0]
		waitForKey(t, c, 1, *md.KeyId)
		waitForKey(t, c, 2, *md.KeyId)
		mac := generateMac(t, c.Client(1), *md.Arn, alg, msg)
		out, err := c.Client(2).VerifyMac(context.Background(), &kms.VerifyMacInput{KeyId: md.KeyId, MacAlgorithm: alg, Message: msg, Mac: mac})
		if err != nil || !out.MacValid {
			t.Fatalf("%s: VerifyMac on third node: %v %+v", spec, err, out)
		}
		// Every node computes the identical MAC for the same input.
		for i := range c.Nodes {
			if got := generateMac(t, c.Client(i), *md.KeyId, alg, msg); !bytes.Equal(got, mac) {
				t.Fatalf("%s: node %d MAC differs", spec, i)
			}
		}
		// A MAC of another message is refused on every node.
		bad := append([]byte(nil), mac...)
		bad[0] ^= 1
		_, err = c.Client(0).VerifyMac(context.Background(), &kms.VerifyMacInput{KeyId: md.KeyId, MacAlgorithm: alg, Message: msg, Mac: bad})
		var inv *types.KMSInvalidMacException
		if !errors.As(err, &inv) {
			t.Fatalf("%s: tampered MAC: want KMSInvalidMacException, got %v", spec, err)
		}
	}
}

func TestWritesThroughFollowerAreForwarded(t *testing.T) {
	c := keyrafttest.Start(t, keyrafttest.Options{})
	leader := c.WaitForLeader(10 * time.Second)
	f := follower(t, c, leader)
	ctx := keyrafttest.Context(t, 30*time.Second)
	md := createKey(t, c.Client(f), types.KeySpecHmac256)
	// Read-your-writes on the node that took the write: it answers only
	// once its own copy has applied the entry.
	for k := 0; k < 20; k++ {
		mk := createKey(t, c.Client(f), types.KeySpecHmac256)
		generateMac(t, c.Client(f), *mk.KeyId, types.MacAlgorithmSpecHmacSha256, msg)
	}
	if _, err := c.Client(f).CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/forwarded"), TargetKeyId: md.KeyId}); err != nil {
		t.Fatalf("CreateAlias via follower: %v", err)
	}
	if _, err := c.Client(f).DisableKey(ctx, &kms.DisableKeyInput{KeyId: md.KeyId}); err != nil {
		t.Fatalf("DisableKey via follower: %v", err)
	}
	// The write returned only after the leader applied it, so the leader
	// shows it at once.
	d, err := c.Client(leader).DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/forwarded")})
	if err != nil {
		t.Fatalf("DescribeKey on leader: %v", err)
	}
	if d.KeyMetadata.KeyState != types.KeyStateDisabled || d.KeyMetadata.Enabled {
		t.Fatalf("leader sees state %s", d.KeyMetadata.KeyState)
	}
	// The follower's own view catches up.
	c.WaitForConvergence(10 * time.Second)
	_, err = c.Client(f).GenerateMac(ctx, &kms.GenerateMacInput{KeyId: aws.String("alias/forwarded"), MacAlgorithm: types.MacAlgorithmSpecHmacSha256, Message: msg})
	var dis *types.DisabledException
	if !errors.As(err, &dis) {
		t.Fatalf("GenerateMac with disabled key on follower: want DisabledException, got %v", err)
	}
}

// TestLeaderCrashMacsNeverFail kills the leader while clients keep calling
// GenerateMac and VerifyMac on the two other nodes: not one of those calls
// may fail, and writes resume once a new leader is elected.
func TestLeaderCrashMacsNeverFail(t *testing.T) {
	c := keyrafttest.Start(t, keyrafttest.Options{})
	leader := c.WaitForLeader(10 * time.Second)
	md := createKey(t, c.Client(leader), types.KeySpecHmac512)
	c.WaitForConvergence(10 * time.Second)
	var survivors []int
	for _, i := range c.Running() {
		if i != leader {
			survivors = append(survivors, i)
		}
	}
	mac := generateMac(t, c.Client(leader), *md.KeyId, types.MacAlgorithmSpecHmacSha512, msg)

	stop := make(chan struct{})
	var calls, failures atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for _, i := range survivors {
		for w := 0; w < 2; w++ {
			wg.Add(1)
			go func(client *kms.Client) {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					g, err := client.GenerateMac(context.Background(), &kms.GenerateMacInput{KeyId: md.KeyId, MacAlgorithm: types.MacAlgorithmSpecHmacSha512, Message: msg})
					if err == nil && !bytes.Equal(g.Mac, mac) {
						err = fmt.Errorf("MAC changed")
					}
					if err == nil {
						_, err = client.VerifyMac(context.Background(), &kms.VerifyMacInput{KeyId: md.KeyId, MacAlgorithm: types.MacAlgorithmSpecHmacSha512, Message: msg, Mac: mac})
					}
					calls.Add(2)
					if err != nil {
						failures.Add(1)
						firstErr.CompareAndSwap(nil, err)
					}
				}
			}(c.Client(i))
		}
	}
	time.Sleep(300 * time.Millisecond)
	c.Kill(leader)
	newLeader := c.WaitForLeader(15 * time.Second)
	if newLeader == leader {
		t.Fatal("the killed node is still reported as leader")
	}
	// Writes resume through either survivor.
	md2 := createKey(t, c.Client(survivors[0]), types.KeySpecHmac256)
	waitForKey(t, c, survivors[1], *md2.KeyId)
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	if failures.Load() != 0 {
		t.Fatalf("%d of %d MAC calls failed during the election; first: %v", failures.Load(), calls.Load(), firstErr.Load())
	}
	if calls.Load() < 20 {
		t.Fatalf("only %d MAC calls made: the workload did not run", calls.Load())
	}
	t.Logf("%d MAC calls, 0 failures across the leader crash", calls.Load())

	// The crashed node comes back from its data dir and catches up.
	c.Restart(leader)
	waitForKey(t, c, leader, *md2.KeyId)
	c.WaitForConvergence(15 * time.Second)
}

func TestRestartedNodeCatchesUpThroughSnapshot(t *testing.T) {
	c := keyrafttest.Start(t, keyrafttest.Options{SnapshotThreshold: 16, TrailingLogs: 4, SnapshotInterval: 100 * time.Millisecond})
	leader := c.WaitForLeader(10 * time.Second)
	lagger := follower(t, c, leader)
	c.Kill(lagger)
	snapDir := filepath.Join(c.Nodes[lagger].DataDir, "raft", "snapshots")
	before := countEntries(snapDir)

	ctx := keyrafttest.Context(t, 60*time.Second)
	var last string
	for k := 0; k < 60; k++ {
		md := createKey(t, c.Client(leader), types.KeySpecHmac256)
		last = *md.KeyId
		if _, err := c.Client(leader).TagResource(ctx, &kms.TagResourceInput{KeyId: md.KeyId, Tags: []types.Tag{{TagKey: aws.String("n"), TagValue: aws.String(fmt.Sprint(k))}}}); err != nil {
			t.Fatal(err)
		}
	}
	// Let the leader snapshot and compact past what the lagger has.
	time.Sleep(time.Second)
	c.Restart(lagger)
	waitForKey(t, c, lagger, last)
	c.WaitForConvergence(20 * time.Second)
	if after := countEntries(snapDir); after <= before {
		t.Fatalf("no snapshot was installed on the lagging node (%d before, %d after)", before, after)
	}
	out, err := c.Client(lagger).ListKeys(ctx, &kms.ListKeysInput{Limit: aws.Int32(1000)})
	if err != nil || len(out.Keys) != 60 {
		t.Fatalf("lagger lists %d keys (%v), want 60", len(out.Keys), err)
	}
}

func countEntries(dir string) int {
	es, _ := os.ReadDir(dir)
	return len(es)
}

func TestWholeClusterRestartKeepsAcknowledgedKeys(t *testing.T) {
	c := keyrafttest.Start(t, keyrafttest.Options{})
	macs := map[string][]byte{}
	for k := 0; k < 10; k++ {
		md := createKey(t, c.Client(k%3), types.KeySpecHmac384)
		macs[*md.KeyId] = generateMac(t, c.Client(c.WaitForLeader(5*time.Second)), *md.KeyId, types.MacAlgorithmSpecHmacSha384, msg)
	}
	for i := range c.Nodes {
		c.Kill(i)
	}
	for i := range c.Nodes {
		c.Restart(i)
	}
	c.WaitForLeader(30 * time.Second)
	c.WaitForConvergence(20 * time.Second)
	for id, want := range macs {
		for i := range c.Nodes {
			if got := generateMac(t, c.Client(i), id, types.MacAlgorithmSpecHmacSha384, msg); !bytes.Equal(got, want) {
				t.Fatalf("key %s on node %d: MAC changed across restart", id, i)
			}
		}
	}
	// And the restarted cluster takes writes.
	createKey(t, c.Client(1), types.KeySpecHmac256)
}

func TestWritesWithoutQuorumFailFastAndMacsContinue(t *testing.T) {
	c := keyrafttest.Start(t, keyrafttest.Options{ApplyTimeout: 2 * time.Second})
	md := createKey(t, c.Client(0), types.KeySpecHmac256)
	c.WaitForConvergence(10 * time.Second)
	c.Kill(1)
	c.Kill(2)
	start := time.Now()
	_, err := c.Client(0).CreateKey(context.Background(), &kms.CreateKeyInput{KeySpec: types.KeySpecHmac256, KeyUsage: types.KeyUsageTypeGenerateVerifyMac})
	elapsed := time.Since(start)
	var internal *types.KMSInternalException
	if !errors.As(err, &internal) {
		t.Fatalf("CreateKey without quorum: want KMSInternalException, got %v", err)
	}
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) && re.HTTPStatusCode() != 500 {
		t.Fatalf("status %d, want 500", re.HTTPStatusCode())
	}
	if elapsed > 10*time.Second {
		t.Fatalf("write without quorum took %s: it must fail within the apply timeout", elapsed)
	}
	// The survivor still serves MACs from its own copy.
	generateMac(t, c.Client(0), *md.KeyId, types.MacAlgorithmSpecHmacSha256, msg)
}

func TestGracefulLeaveOfLeader(t *testing.T) {
	c := keyrafttest.Start(t, keyrafttest.Options{})
	leader := c.WaitForLeader(10 * time.Second)
	c.Leave(leader)
	newLeader := c.WaitForLeader(10 * time.Second)
	st, err := c.Status(newLeader)
	if err != nil {
		t.Fatal(err)
	}
	voters := 0
	for _, m := range st.Members {
		if m.InRaftConfig {
			voters++
			if m.ID == c.Nodes[leader].ID {
				t.Fatalf("left node %s still in the Raft configuration", m.ID)
			}
		}
	}
	if voters != 2 {
		t.Fatalf("%d servers in the configuration after a graceful leave, want 2", voters)
	}
	createKey(t, c.Client(newLeader), types.KeySpecHmac256)
}

func TestScheduledDeletionRemovesKeyAndAliases(t *testing.T) {
	c := keyrafttest.Start(t, keyrafttest.Options{DeletionDay: 20 * time.Millisecond})
	ctx := keyrafttest.Context(t, 30*time.Second)
	md := createKey(t, c.Client(0), types.KeySpecHmac256)
	if _, err := c.Client(0).CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/doomed"), TargetKeyId: md.KeyId}); err != nil {
		t.Fatal(err)
	}
	out, err := c.Client(1).ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: md.KeyId, PendingWindowInDays: aws.Int32(7)})
	if err != nil {
		t.Fatal(err)
	}
	if out.KeyState != types.KeyStatePendingDeletion || *out.PendingWindowInDays != 7 {
		t.Fatalf("ScheduleKeyDeletion answered %+v", out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := c.Client(2).DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: md.KeyId})
		var nf *types.NotFoundException
		if errors.As(err, &nf) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("key not deleted after its window: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.WaitForConvergence(10 * time.Second)
	for i := range c.Nodes {
		aliases, err := c.Client(i).ListAliases(ctx, &kms.ListAliasesInput{})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range aliases.Aliases {
			if *a.AliasName == "alias/doomed" {
				t.Fatalf("alias of a deleted key survives on node %d", i)
			}
		}
	}
}

func TestErrorsLookLikeAWS(t *testing.T) {
	c := keyrafttest.Start(t, keyrafttest.Options{Nodes: 1})
	_, err := c.Client(0).DescribeKey(context.Background(), &kms.DescribeKeyInput{KeyId: aws.String("11111111-2222-3333-4444-555555555555")})
	var nf *types.NotFoundException
	if !errors.As(err, &nf) || nf.ErrorMessage() != "Key 'arn:aws:kms:us-east-1:111122223333:key/11111111-2222-3333-4444-555555555555' does not exist" {
		t.Fatalf("DescribeKey of an absent key: %v", err)
	}
	var api smithy.APIError
	_, err = c.Client(0).CreateKey(context.Background(), &kms.CreateKeyInput{KeySpec: types.KeySpecHmac256})
	if !errors.As(err, &api) || api.ErrorCode() != "ValidationException" {
		t.Fatalf("CreateKey without KeyUsage: %v", err)
	}
}

func TestMetricsEndpoint(t *testing.T) {
	c := keyrafttest.Start(t, keyrafttest.Options{Nodes: 1})
	md := createKey(t, c.Client(0), types.KeySpecHmac256)
	generateMac(t, c.Client(0), *md.KeyId, types.MacAlgorithmSpecHmacSha256, msg)
	_, err := c.Client(0).DescribeKey(context.Background(), &kms.DescribeKeyInput{KeyId: aws.String("alias/missing")})
	if err == nil {
		t.Fatal("DescribeKey of a missing alias succeeded")
	}
	resp, err := http.Get(c.Endpoint(0) + "/v1/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	text := string(body)
	for _, want := range []string{
		`keyraft_api_requests_total{operation="GenerateMac",outcome="ok"} 1`,
		`keyraft_api_requests_total{operation="CreateKey",outcome="ok"} 1`,
		`keyraft_api_requests_total{operation="DescribeKey",outcome="NotFoundException"} 1`,
		`keyraft_raft_state{state="Leader"} 1`,
		`keyraft_keys 1`,
		`keyraft_api_request_duration_seconds_bucket{operation="GenerateMac"`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// Nothing about keys themselves leaks into metrics.
	if strings.Contains(text, *md.KeyId) {
		t.Error("metrics mention a key id")
	}
}

// TestStalenessBound kills two nodes of three: the survivor keeps serving
// MACs from its replica until its staleness bound, then refuses them with
// KeyUnavailableException, and serves again once the others are back.
func TestStalenessBound(t *testing.T) {
	const bound = 2 * time.Second
	c := keyrafttest.Start(t, keyrafttest.Options{MaxStaleness: bound})
	md := createKey(t, c.Client(0), types.KeySpecHmac256)
	c.WaitForConvergence(10 * time.Second)
	survivor := 0
	c.Kill(1)
	c.Kill(2)
	killed := time.Now()

	mac := func() error {
		_, err := c.Client(survivor).GenerateMac(context.Background(), &kms.GenerateMacInput{KeyId: md.KeyId, MacAlgorithm: types.MacAlgorithmSpecHmacSha256, Message: msg})
		return err
	}
	if err := mac(); err != nil {
		t.Fatalf("right after losing its peers the survivor must still serve: %v", err)
	}
	var refusedAt time.Duration
	for {
		err := mac()
		if err != nil {
			var ku *types.KeyUnavailableException
			if !errors.As(err, &ku) {
				t.Fatalf("want KeyUnavailableException, got %v", err)
			}
			refusedAt = time.Since(killed)
			break
		}
		if time.Since(killed) > bound+5*time.Second {
			t.Fatalf("still serving MACs %s after losing contact (bound %s)", time.Since(killed), bound)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The bound runs from the last contact, which precedes the kill by at
	// most a heartbeat: refusing much earlier would be a bug too.
	if refusedAt < bound-time.Second {
		t.Fatalf("refused after %s, before the %s bound", refusedAt, bound)
	}
	t.Logf("survivor refused MACs %s after losing its peers (bound %s)", refusedAt.Round(time.Millisecond), bound)
	// The request path compares the clock itself; the status follows within
	// a tick of the freshness loop (50 ms).
	var st keyrafttest.Status
	var err error
	for wait := time.Now().Add(time.Second); ; time.Sleep(20 * time.Millisecond) {
		st, err = c.Status(survivor)
		if (err == nil && st.Extra["stale"] == true) || time.Now().After(wait) {
			break
		}
	}
	if err != nil || st.Extra["stale"] != true {
		t.Fatalf("status does not report stale: %+v %v", st.Extra, err)
	}
	_, err = c.Client(survivor).DescribeKey(context.Background(), &kms.DescribeKeyInput{KeyId: md.KeyId})
	var ku *types.KeyUnavailableException
	if !errors.As(err, &ku) {
		t.Fatalf("DescribeKey on a stale node: %v", err)
	}
	// Operations that do not read key state still work.
	if _, err := c.Client(survivor).GenerateRandom(context.Background(), &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(16)}); err != nil {
		t.Fatalf("GenerateRandom on a stale node: %v", err)
	}

	c.Restart(1)
	c.Restart(2)
	c.WaitForLeader(20 * time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for mac() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("survivor did not resume serving: %v", mac())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// And it stays fresh with no writes at all: an idle cluster whose last
	// entries are Raft no-ops and configuration changes is not stale.
	time.Sleep(bound + time.Second)
	for i := range c.Nodes {
		if _, err := c.Client(i).GenerateMac(context.Background(), &kms.GenerateMacInput{KeyId: md.KeyId, MacAlgorithm: types.MacAlgorithmSpecHmacSha256, Message: msg}); err != nil {
			t.Fatalf("node %d of an idle healthy cluster refuses: %v", i, err)
		}
	}
}
