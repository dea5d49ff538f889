package keyrafttest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/keyraft/keyraft/agent"
	"github.com/keyraft/keyraft/auth"
	"github.com/keyraft/keyraft/engine"
)

// Options shape a test cluster. Zero values take sensible test defaults.
type Options struct {
	Nodes     int    // default 3
	Region    string // default us-east-1
	AccountID string // default 111122223333

	SnapshotThreshold uint64        // default 8192
	TrailingLogs      uint64        // default 10240
	SnapshotInterval  time.Duration // default 2m
	DeletionDay       time.Duration // default 24h
	ApplyTimeout      time.Duration // default 5s
	// MaxStaleness is each node's staleness bound (0: off).
	MaxStaleness time.Duration

	// GrantPropagationDelay is every node's grant propagation delay (0:
	// grants take effect as soon as a node applies them);
	// GrantPropagationDelays overrides it per node index, to model uneven
	// propagation (docs/consistency.md).
	GrantPropagationDelay  time.Duration
	GrantPropagationDelays map[int]time.Duration
	// GrantTombstoneRetention is how long retired grants' tombstones are
	// kept (default 1h; it must exceed every node's propagation delay).
	GrantTombstoneRetention time.Duration

	// Auth is the nodes' authentication mode: "none" (the default for
	// tests: any request is accepted) or "sigv4" (requires Credentials).
	Auth string
	// Credentials are the principals (required for sigv4; with none, a
	// request signed with one of their access keys acts as that principal).
	Credentials *auth.Credentials
	// Quotas are each node's request-rate quotas (class -> requests per
	// second, see package quota); nil: none. Each node has its own buckets.
	Quotas map[string]float64

	// LogLevel of the nodes' logs, written to the test log only when the
	// test fails (default: warn). Set KEYRAFT_TEST_LOG=debug to override.
	LogLevel slog.Level
}

// Node is one member of a test cluster.
type Node struct {
	ID       string
	Index    int
	DataDir  string
	httpAddr string
	raftAddr string
	gossip   string

	mu    sync.Mutex
	agent *agent.Agent
}

// Cluster is a running test cluster.
type Cluster struct {
	t       testing.TB
	opts    Options
	sealKey []byte
	Nodes   []*Node
	logs    *syncBuffer
}

// Start starts a cluster of opts.Nodes nodes that bootstrap together, waits
// until they agree on a leader, and stops every node when the test ends.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.Nodes == 0 {
		opts.Nodes = 3
	}
	if opts.ApplyTimeout == 0 {
		opts.ApplyTimeout = 5 * time.Second
	}
	if opts.Auth == "" {
		opts.Auth = "none"
	}
	if opts.LogLevel == 0 {
		opts.LogLevel = slog.LevelWarn
		if v := os.Getenv("KEYRAFT_TEST_LOG"); v != "" {
			_ = opts.LogLevel.UnmarshalText([]byte(v))
		}
	}
	key, err := engine.RandomBytes(32)
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{t: t, opts: opts, sealKey: key, logs: &syncBuffer{}}
	base := t.TempDir()
	for i := 0; i < opts.Nodes; i++ {
		n := &Node{ID: "n" + strconv.Itoa(i+1), Index: i, DataDir: filepath.Join(base, "n"+strconv.Itoa(i+1))}
		c.Nodes = append(c.Nodes, n)
	}
	t.Cleanup(func() {
		for _, n := range c.Nodes {
			c.Kill(n.Index)
		}
		if t.Failed() {
			t.Logf("node logs:\n%s", c.logs.String())
		}
	})
	for _, n := range c.Nodes {
		c.startNode(n, opts.Nodes)
	}
	c.WaitForLeader(30 * time.Second)
	c.WaitForGrantTokens(30 * time.Second)
	return c
}

// GrantPropagationDelay is node i's grant propagation delay.
func (c *Cluster) GrantPropagationDelay(i int) time.Duration {
	if d, ok := c.opts.GrantPropagationDelays[i]; ok {
		return d
	}
	return c.opts.GrantPropagationDelay
}

// WaitForGrantTokens waits until every running node has applied the
// cluster secret that signs grant tokens (the leader installs it when a
// new cluster first elects one), so that CreateGrant and grant tokens work
// on every node.
func (c *Cluster) WaitForGrantTokens(timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		ready := true
		for _, i := range c.Running() {
			if a := c.Agent(i); a != nil {
				if _, ok := a.State().ClusterSecret(); !ok {
					ready = false
					break
				}
			}
		}
		if ready {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatalf("the grant token secret did not reach every node within %s", timeout)
}

// startNode starts n. On its first start a node binds port 0 everywhere and
// keeps the ports the kernel gave it (picking free ports beforehand and
// closing them races with other processes' outgoing connections, which
// draw from the same ephemeral range). A restart must come back on the same
// addresses, which are in the raft configuration and in the other nodes'
// seeds, so it waits a little while one of them is still taken.
func (c *Cluster) startNode(n *Node, bootstrapExpect int) {
	c.t.Helper()
	fresh := n.httpAddr == ""
	httpAddr, raftAddr, gossipAddr := n.httpAddr, n.raftAddr, n.gossip
	if fresh {
		httpAddr, raftAddr, gossipAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	}
	var seeds []string
	for _, o := range c.Nodes {
		if o != n && o.gossip != "" {
			seeds = append(seeds, o.gossip)
		}
	}
	logger := slog.New(slog.NewTextHandler(c.logs, &slog.HandlerOptions{Level: c.opts.LogLevel}))
	cfg := agent.Config{
		NodeID:             n.ID,
		DataDir:            n.DataDir,
		HTTPAddr:           httpAddr,
		RaftAddr:           raftAddr,
		GossipAddr:         gossipAddr,
		Join:               seeds,
		BootstrapExpect:    bootstrapExpect,
		Region:             c.opts.Region,
		AccountID:          c.opts.AccountID,
		SealKey:            c.sealKey,
		SnapshotThreshold:  c.opts.SnapshotThreshold,
		SnapshotInterval:   c.opts.SnapshotInterval,
		TrailingLogs:       c.opts.TrailingLogs,
		ApplyTimeout:       c.opts.ApplyTimeout,
		HeartbeatTimeout:   500 * time.Millisecond,
		ElectionTimeout:    500 * time.Millisecond,
		LeaderLeaseTimeout: 250 * time.Millisecond,
		DeletionDay:        c.opts.DeletionDay,
		ReapInterval:       100 * time.Millisecond,
		MaxStaleness:       c.opts.MaxStaleness,
		// Grants: this node's propagation delay.
		GrantPropagationDelay:   c.GrantPropagationDelay(n.Index),
		GrantTombstoneRetention: c.opts.GrantTombstoneRetention,
		// Test clusters can always be partitioned and slowed (faults.go).
		EnableFaultInjection: true,
		Auth:                 c.opts.Auth,
		Credentials:          c.opts.Credentials,
		Quotas:               c.opts.Quotas,
		Logger:               logger,
	}
	deadline := time.Now().Add(10 * time.Second)
	a, err := agent.Start(cfg)
	for err != nil && !fresh && errors.Is(err, syscall.EADDRINUSE) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		a, err = agent.Start(cfg)
	}
	if err != nil {
		c.t.Fatalf("start %s: %v", n.ID, err)
	}
	if fresh {
		n.httpAddr, n.raftAddr, n.gossip = a.HTTPAddr(), a.Node().RaftAddr(), a.Node().GossipAddr()
	}
	n.mu.Lock()
	n.agent = a
	n.mu.Unlock()
}

// Agent returns node i's running agent, or nil if it is stopped.
func (c *Cluster) Agent(i int) *agent.Agent {
	n := c.Nodes[i]
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.agent
}

// Endpoint is node i's API URL.
func (c *Cluster) Endpoint(i int) string { return "http://" + c.Nodes[i].httpAddr }

// Client is an AWS SDK for Go v2 KMS client for node i. Retries are off so
// a test sees exactly what the node answered. It signs with the first
// principal of Options.Credentials, if any, and otherwise with a test access
// key that no credentials file lists (in "none" mode: the default account's
// administrator).
func (c *Cluster) Client(i int) *kms.Client {
	if ps := c.opts.Credentials.Principals(); len(ps) > 0 {
		return c.ClientAs(i, ps[0].AccessKeyID, ps[0].SecretAccessKey, ps[0].SessionToken)
	}
	return c.ClientAs(i, "AKIDKEYRAFTTEST", "keyraft-test-secret", "")
}

// ClientAs is an AWS SDK for Go v2 KMS client for node i that signs with the
// given access key, secret and session token (empty: none); optFns adjust
// its options (e.g. Region, HTTPClient, HTTPSignerV4). Retries are off.
func (c *Cluster) ClientAs(i int, accessKeyID, secret, sessionToken string, optFns ...func(*kms.Options)) *kms.Client {
	return kms.New(kms.Options{
		Region:       c.region(),
		BaseEndpoint: aws.String(c.Endpoint(i)),
		Credentials:  credentials.NewStaticCredentialsProvider(accessKeyID, secret, sessionToken),
		Retryer:      aws.NopRetryer{},
	}, optFns...)
}

// ClientFor is ClientAs with the access key of principal p.
func (c *Cluster) ClientFor(i int, p *auth.Principal, optFns ...func(*kms.Options)) *kms.Client {
	return c.ClientAs(i, p.AccessKeyID, p.SecretAccessKey, p.SessionToken, optFns...)
}

func (c *Cluster) region() string {
	if c.opts.Region == "" {
		return "us-east-1"
	}
	return c.opts.Region
}

// Kill stops node i at once without leaving the cluster, as a crash would
// (its data directory stays). A stopped node is left alone.
func (c *Cluster) Kill(i int) { c.stop(i, false) }

// Leave stops node i gracefully: it transfers leadership if it leads and is
// removed from the cluster.
func (c *Cluster) Leave(i int) { c.stop(i, true) }

func (c *Cluster) stop(i int, graceful bool) {
	n := c.Nodes[i]
	n.mu.Lock()
	a := n.agent
	n.agent = nil
	n.mu.Unlock()
	if a != nil {
		if err := a.Shutdown(graceful); err != nil {
			c.t.Logf("shutdown %s: %v", n.ID, err)
		}
	}
}

// Restart starts a stopped node i again on its data directory and ports.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	c.startNode(c.Nodes[i], c.opts.Nodes)
}

// Status is the subset of a node's /v1/status the tests read.
type Status struct {
	NodeID       string         `json:"node_id"`
	State        string         `json:"state"`
	LeaderID     string         `json:"leader_id"`
	Term         uint64         `json:"term"`
	CommitIndex  uint64         `json:"commit_index"`
	AppliedIndex uint64         `json:"applied_index"`
	Members      []Member       `json:"members"`
	Extra        map[string]any `json:"extra"`
}

// Member is one entry of Status.Members.
type Member struct {
	ID           string `json:"id"`
	GossipStatus string `json:"gossip_status"`
	Voter        bool   `json:"voter"`
	InRaftConfig bool   `json:"in_raft_config"`
}

// Status fetches node i's /v1/status over HTTP.
func (c *Cluster) Status(i int) (Status, error) {
	var st Status
	resp, err := httpClient.Get(c.Endpoint(i) + "/v1/status")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("status %d: %s", resp.StatusCode, body)
	}
	return st, json.Unmarshal(body, &st)
}

var httpClient = &http.Client{Timeout: 3 * time.Second}

// Running lists the indexes of the nodes that are up.
func (c *Cluster) Running() []int {
	var up []int
	for i := range c.Nodes {
		if c.Agent(i) != nil {
			up = append(up, i)
		}
	}
	return up
}

// WaitForLeader waits until every running node names the same leader and
// returns the leader's index.
func (c *Cluster) WaitForLeader(timeout time.Duration) int {
	c.t.Helper()
	var last string
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		leader, ok := "", true
		for _, i := range c.Running() {
			st, err := c.Status(i)
			// A node still catching up (stale) refuses reads: not ready yet.
			if err != nil || st.LeaderID == "" || (leader != "" && st.LeaderID != leader) || st.Extra["stale"] == true {
				ok = false
				last = fmt.Sprintf("%s: leader %q stale %v err %v", c.Nodes[i].ID, st.LeaderID, st.Extra["stale"], err)
				break
			}
			leader = st.LeaderID
		}
		if ok && leader != "" {
			for _, n := range c.Nodes {
				if n.ID == leader && c.Agent(n.Index) != nil {
					return n.Index
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatalf("no agreed leader within %s (%s)", timeout, last)
	return -1
}

// WaitForConvergence waits until every running node has applied the same
// index and reports the same state digest.
func (c *Cluster) WaitForConvergence(timeout time.Duration) {
	c.t.Helper()
	var last string
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		var idx uint64
		var digest any
		ok := true
		for k, i := range c.Running() {
			st, err := c.Status(i)
			if err != nil {
				ok = false
				break
			}
			if k == 0 {
				idx, digest = st.AppliedIndex, st.Extra["state_digest"]
			} else if st.AppliedIndex != idx || st.Extra["state_digest"] != digest {
				ok = false
				last = fmt.Sprintf("%s applied %d vs %d", st.NodeID, st.AppliedIndex, idx)
				break
			}
		}
		if ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatalf("nodes did not converge within %s (%s)", timeout, last)
}

// Context returns a context bounded by d that ends with the test.
func Context(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

type syncBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
