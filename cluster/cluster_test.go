package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/keyraft/keyraft/chaos/faults"
)

// ---------------------------------------------------------------------------
// A tiny deterministic FSM: an append-only list of byte slices. A command
// that is already in the list is not appended again (its position is
// returned), so the tests can retry a write whose outcome was unknown, as
// an idempotent client would.

type testFSM struct {
	mu       sync.Mutex
	entries  [][]byte
	restores atomic.Int64
}

type testResult struct {
	N     int    `json:"n"`
	Index uint64 `json:"index"`
}

func (f *testFSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	if string(l.Data) == "fail" {
		return errors.New("test fsm refuses this command")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, e := range f.entries {
		if bytes.Equal(e, l.Data) {
			return &testResult{N: i + 1, Index: l.Index}
		}
	}
	f.entries = append(f.entries, bytes.Clone(l.Data))
	return &testResult{N: len(f.entries), Index: l.Index}
}

func (f *testFSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := json.Marshal(f.entries)
	return snapshotBytes(b), err
}

func (f *testFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var entries [][]byte
	if err := json.NewDecoder(rc).Decode(&entries); err != nil {
		return err
	}
	f.mu.Lock()
	f.entries = entries
	f.mu.Unlock()
	f.restores.Add(1)
	return nil
}

func (f *testFSM) list() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, len(f.entries))
	for i, e := range f.entries {
		out[i] = string(e)
	}
	return out
}

type snapshotBytes []byte

func (s snapshotBytes) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}
func (s snapshotBytes) Release() {}

// ---------------------------------------------------------------------------
// Test cluster harness: real nodes on loopback, each with its own HTTP server.

type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) tail(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.String()
	if len(s) > n {
		s = "...\n" + s[len(s)-n:]
	}
	return s
}

type testNode struct {
	id         string
	dir        string
	raftAddr   string
	gossipAddr string
	apiAddr    string
	expect     int
	mod        func(*Config)
	started    bool             // started at least once: addresses are fixed
	inj        *faults.Injector // this node's fault rules (kept across restarts)

	mu        sync.Mutex
	node      *Node
	fsm       *testFSM
	srv       *http.Server
	onLeader  atomic.Int64 // OnLeader calls started
	onLeaderX atomic.Int64 // OnLeader calls returned
}

func (tn *testNode) n() *Node {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	return tn.node
}

type testCluster struct {
	t     *testing.T
	base  string
	key   []byte
	logs  *logBuffer
	log   *slog.Logger
	mod   func(*Config) // applied to every node
	nodes []*testNode
}

func newTestCluster(t *testing.T, mod func(*Config)) *testCluster {
	t.Helper()
	c := &testCluster{t: t, base: t.TempDir(), key: bytes.Repeat([]byte{7}, 32), logs: &logBuffer{}, mod: mod}
	level := slog.LevelInfo
	if os.Getenv("KEYRAFT_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	c.log = slog.New(slog.NewTextHandler(c.logs, &slog.HandlerOptions{Level: level}))
	t.Cleanup(func() {
		var wg sync.WaitGroup
		for _, tn := range c.nodes {
			wg.Go(func() { c.stop(tn, false) })
		}
		wg.Wait()
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
		if t.Failed() || os.Getenv("KEYRAFT_TEST_LOGS") != "" {
			t.Logf("cluster logs (tail):\n%s", c.logs.tail(200<<10))
		}
	})
	return c
}

// freeTCPPort returns a loopback address whose port the kernel just handed out.
func freeTCPPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// freeGossipPort returns a loopback address free for both TCP and UDP.
func freeGossipPort(t *testing.T) string {
	t.Helper()
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		pc, err := net.ListenPacket("udp", addr)
		ln.Close()
		if err != nil {
			continue // UDP side taken: try another port
		}
		pc.Close()
		return addr
	}
	t.Fatal("no port free for both TCP and UDP")
	return ""
}

// addNode defines a node (addresses picked now, kept across restarts).
func (c *testCluster) addNode(expect int) *testNode {
	id := fmt.Sprintf("node%d", len(c.nodes)+1)
	tn := &testNode{
		id:         id,
		dir:        filepath.Join(c.base, id),
		raftAddr:   freeTCPPort(c.t),
		gossipAddr: freeGossipPort(c.t),
		apiAddr:    freeTCPPort(c.t),
		expect:     expect,
		inj:        faults.New(faults.WithLogger(c.log.With("faults", id))),
	}
	c.nodes = append(c.nodes, tn)
	return tn
}

func (c *testCluster) seeds() []string {
	var s []string
	for _, tn := range c.nodes {
		s = append(s, tn.gossipAddr)
	}
	return s
}

// start (re)starts tn on its data dir and addresses with a fresh FSM.
//
// Ports are picked from the kernel when a node is defined and closed again,
// so an outgoing connection of another node may grab one (ephemeral ports
// share the range) before the node binds it. On a node's first start a bind
// conflict re-picks its ports; a restart keeps its addresses (they are in
// the raft configuration and the other nodes' seeds) and waits for them.
func (c *testCluster) start(tn *testNode) {
	c.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := c.tryStart(tn)
		if err == nil {
			tn.started = true
			return
		}
		if !strings.Contains(err.Error(), "address already in use") || time.Now().After(deadline) {
			c.t.Fatalf("start %s: %v", tn.id, err)
		}
		c.t.Logf("start %s: %v; retrying", tn.id, err)
		if !tn.started {
			tn.raftAddr, tn.gossipAddr, tn.apiAddr = freeTCPPort(c.t), freeGossipPort(c.t), freeTCPPort(c.t)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *testCluster) tryStart(tn *testNode) error {
	ln, err := net.Listen("tcp", tn.apiAddr)
	if err != nil {
		return err
	}
	cfg := Config{
		NodeID:             tn.id,
		DataDir:            tn.dir,
		RaftBindAddr:       tn.raftAddr,
		GossipBindAddr:     tn.gossipAddr,
		APIAdvertiseAddr:   tn.apiAddr,
		Join:               c.seeds(),
		BootstrapExpect:    tn.expect,
		ClusterAuthKey:     c.key,
		Logger:             c.log,
		HeartbeatTimeout:   500 * time.Millisecond,
		ElectionTimeout:    500 * time.Millisecond,
		LeaderLeaseTimeout: 250 * time.Millisecond,
		ReconcileInterval:  200 * time.Millisecond,
		ApplyTimeout:       5 * time.Second,
		OnLeader: func(ctx context.Context) {
			tn.onLeader.Add(1)
			<-ctx.Done()
			tn.onLeaderX.Add(1)
		},
		StatusExtra: func() map[string]any { return map[string]any{"test": true} },
		Faults:      tn.inj,
	}
	if c.mod != nil {
		c.mod(&cfg)
	}
	if tn.mod != nil {
		tn.mod(&cfg)
	}
	fsm := &testFSM{}
	node, err := New(cfg, faults.WrapFSM(fsm, cfg.Faults))
	if err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{Handler: node.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	tn.mu.Lock()
	tn.node, tn.fsm, tn.srv = node, fsm, srv
	tn.mu.Unlock()
	return nil
}

// stop shuts tn down (graceful = leave) and closes its HTTP server.
func (c *testCluster) stop(tn *testNode, graceful bool) error {
	tn.mu.Lock()
	node, srv := tn.node, tn.srv
	tn.node, tn.srv = nil, nil
	tn.mu.Unlock()
	if node == nil {
		return nil
	}
	err := node.Shutdown(graceful)
	srv.Close()
	return err
}

// crash stops tn without leaving (Shutdown(false) and its HTTP server
// closed), then gives the peers a moment to see the closed connections: a
// forward that races a crash on a pooled keep-alive connection may have been
// delivered, so it correctly fails with ErrUnknownOutcome instead of being
// retried; the tests want to exercise the deterministic paths.
func (c *testCluster) crash(tn *testNode) {
	c.t.Helper()
	if err := c.stop(tn, false); err != nil {
		c.t.Fatalf("crash %s: %v", tn.id, err)
	}
	time.Sleep(100 * time.Millisecond)
}

func (c *testCluster) running() []*testNode {
	var out []*testNode
	for _, tn := range c.nodes {
		if tn.n() != nil {
			out = append(out, tn)
		}
	}
	return out
}

// eventually polls f until it returns nil or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s: %v", timeout, what, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// waitLeader waits until all running nodes agree on one established leader.
func (c *testCluster) waitLeader(timeout time.Duration) *testNode {
	c.t.Helper()
	var leader *testNode
	eventually(c.t, timeout, "a single agreed, established leader", func() error {
		leader = nil
		run := c.running()
		for _, tn := range run {
			if st := tn.n().Status(); st.LeaderReady {
				if leader != nil {
					return fmt.Errorf("two leaders: %s and %s", leader.id, tn.id)
				}
				leader = tn
			}
		}
		if leader == nil {
			return errors.New("no established leader")
		}
		for _, tn := range run {
			if id := tn.n().LeaderID(); id != leader.id {
				return fmt.Errorf("%s thinks the leader is %q, not %s", tn.id, id, leader.id)
			}
		}
		return nil
	})
	return leader
}

// raftVoters returns the voter IDs of node's current raft configuration.
func raftVoters(n *Node) ([]string, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, err
	}
	var ids []string
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			ids = append(ids, string(s.ID))
		}
	}
	slices.Sort(ids)
	return ids, nil
}

func (c *testCluster) waitVoters(tn *testNode, want ...string) {
	c.t.Helper()
	slices.Sort(want)
	eventually(c.t, 15*time.Second, fmt.Sprintf("voters %v on %s", want, tn.id), func() error {
		got, err := raftVoters(tn.n())
		if err != nil {
			return err
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("voters %v", got)
		}
		return nil
	})
}

// waitEntries waits until every running node's FSM holds exactly want.
func (c *testCluster) waitEntries(want []string) {
	c.t.Helper()
	for _, tn := range c.running() {
		eventually(c.t, 15*time.Second, "FSM of "+tn.id+" to converge", func() error {
			got := tn.fsm.list()
			if !slices.Equal(got, want) {
				return fmt.Errorf("%s has %d entries, want %d", tn.id, len(got), len(want))
			}
			return nil
		})
	}
}

func (c *testCluster) follower(leader *testNode) *testNode {
	for _, tn := range c.running() {
		if tn != leader {
			return tn
		}
	}
	c.t.Fatal("no follower running")
	return nil
}

// apply writes cmd through tn. A write with an unknown outcome (leadership
// lost under load, e.g. a lease timeout on a busy 2-core machine) is retried:
// the test FSM ignores duplicates.
func apply(t *testing.T, tn *testNode, cmd string) testResult {
	t.Helper()
	var out []byte
	var err error
	for attempt := 1; ; attempt++ {
		out, err = tn.n().Apply(context.Background(), []byte(cmd))
		if !errors.Is(err, ErrUnknownOutcome) || attempt == 5 {
			break
		}
		t.Logf("apply %q on %s: %v; retrying", cmd, tn.id, err)
	}
	if err != nil {
		t.Fatalf("apply %q on %s: %v", cmd, tn.id, err)
	}
	var r testResult
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("decode %s: %v", out, err)
	}
	return r
}

func (c *testCluster) startThree() []*testNode {
	for range 3 {
		c.addNode(3)
	}
	for _, tn := range c.nodes {
		c.start(tn)
	}
	return c.nodes
}

// ---------------------------------------------------------------------------

func TestMain(m *testing.M) {
	base := runtime.NumGoroutine()
	code := m.Run()
	if code == 0 {
		// Every node was shut down in t.Cleanup: all goroutines must end.
		deadline := time.Now().Add(10 * time.Second)
		for runtime.NumGoroutine() > base+2 && time.Now().Before(deadline) {
			http.DefaultTransport.(*http.Transport).CloseIdleConnections()
			time.Sleep(50 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > base+2 {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			fmt.Fprintf(os.Stderr, "goroutine leak: %d goroutines, %d at start\n%s\n", n, base, buf)
			code = 1
		}
	}
	os.Exit(code)
}

// TestThreeNodes: bootstrap-expect formation, forwarding, auth, status,
// leader crash with failover (failed ≠ removed), and restart catch-up.
func TestThreeNodes(t *testing.T) {
	c := newTestCluster(t, nil)
	nodes := c.startThree()
	leader := c.waitLeader(15 * time.Second)
	for _, tn := range nodes {
		c.waitVoters(tn, "node1", "node2", "node3")
	}
	bootstraps := int64(0)
	for _, tn := range nodes {
		bootstraps += tn.n().Status().Counters["bootstraps"]
	}
	if bootstraps < 1 {
		t.Fatalf("no node bootstrapped")
	}
	eventually(t, 5*time.Second, "OnLeader on the leader", func() error {
		if leader.onLeader.Load() != 1 {
			return fmt.Errorf("OnLeader started %d times", leader.onLeader.Load())
		}
		return nil
	})

	// A write to a follower is forwarded, applied everywhere and its JSON
	// result comes back.
	fol := c.follower(leader)
	r := apply(t, fol, "a")
	if r.N != 1 || r.Index == 0 {
		t.Fatalf("unexpected result %+v", r)
	}
	if got := fol.n().Status().Counters["apply_forwarded"]; got < 1 {
		t.Fatalf("follower did not forward (apply_forwarded=%d)", got)
	}
	apply(t, leader, "b")
	want := []string{"a", "b"}
	c.waitEntries(want)

	// An FSM response that is an error value comes back as an error, on the
	// leader and through forwarding.
	for _, tn := range []*testNode{leader, fol} {
		if _, err := tn.n().Apply(context.Background(), []byte("fail")); err == nil ||
			!strings.Contains(err.Error(), "test fsm refuses") {
			t.Fatalf("apply on %s: want the FSM's error, got %v", tn.id, err)
		}
	}

	// Internal endpoints refuse requests without a signature (401) and with
	// a wrong, stale or replayed one (403).
	ours, theirs := newRequestSigner(c.key), newRequestSigner(bytes.Repeat([]byte{8}, 32))
	for _, path := range []string{"/v1/internal/peers", "/v1/internal/apply", "/v1/internal/remove?id=node1"} {
		method := http.MethodPost
		if strings.Contains(path, "peers") {
			method = http.MethodGet
		}
		send := func(what string, code int, prepare func(*http.Request)) {
			t.Helper()
			req, _ := http.NewRequest(method, "http://"+leader.apiAddr+path, strings.NewReader("x"))
			prepare(req)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != code {
				t.Fatalf("%s %s %s: HTTP %d, want %d", method, path, what, resp.StatusCode, code)
			}
		}
		send("unsigned", 401, func(*http.Request) {})
		send("with a bearer token", 403, func(r *http.Request) { r.Header.Set(AuthHeader, "nope") })
		send("signed with another key", 403, func(r *http.Request) { theirs.sign(r, []byte("x"), time.Now()) })
		send("signed two minutes ago", 403, func(r *http.Request) { ours.sign(r, []byte("x"), time.Now().Add(-2*time.Minute)) })
		send("signed over another body", 403, func(r *http.Request) { ours.sign(r, []byte("y"), time.Now()) })
		var recorded string
		send("signed, for a path it was not signed for", 403, func(r *http.Request) {
			other, _ := http.NewRequest(method, "http://"+leader.apiAddr+"/v1/internal/other", nil)
			ours.sign(other, []byte("x"), time.Now())
			r.Header.Set(AuthHeader, other.Header.Get(AuthHeader))
		})
		if method == http.MethodGet {
			send("signed", 200, func(r *http.Request) {
				ours.sign(r, []byte("x"), time.Now())
				recorded = r.Header.Get(AuthHeader)
			})
			send("replayed", 403, func(r *http.Request) { r.Header.Set(AuthHeader, recorded) })
		}
	}
	// Signed, peers answers.
	req, _ := http.NewRequest(http.MethodGet, "http://"+fol.apiAddr+"/v1/internal/peers", nil)
	ours.sign(req, nil, time.Now())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var pr peersResponse
	json.NewDecoder(resp.Body).Decode(&pr)
	resp.Body.Close()
	if resp.StatusCode != 200 || !pr.HasExistingState || len(pr.Peers) != 3 {
		t.Fatalf("peers: HTTP %d %+v", resp.StatusCode, pr)
	}

	// Status over HTTP.
	resp, err = http.Get("http://" + fol.apiAddr + "/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	var st Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if st.NodeID != fol.id || st.State != "Follower" || st.LeaderID != leader.id ||
		st.LeaderAddr != leader.apiAddr || st.LeaderRaftAddr != leader.raftAddr ||
		len(st.Members) != 3 || st.Extra["test"] != true || st.LastContact < 0 || st.Term == 0 {
		t.Fatalf("unexpected status %+v", st)
	}
	for _, m := range st.Members {
		if !m.Voter || !m.InRaftConfig || m.GossipStatus != GossipAlive || m.APIAddr == "" || m.GossipAddr == "" {
			t.Fatalf("unexpected member %+v", m)
		}
	}
	if ls := leader.n().Status(); ls.LastContact != 0 || ls.State != "Leader" {
		t.Fatalf("leader status: %+v", ls)
	}

	// Leader crash: a new leader is elected and writes resume, also through a
	// follower that first has to notice the old leader is gone.
	old := leader
	c.crash(old)
	if old.onLeaderX.Load() != 1 {
		t.Fatalf("OnLeader of the crashed leader did not return")
	}
	fol = c.follower(old)
	apply(t, fol, "c")
	leader = c.waitLeader(15 * time.Second)
	if leader == old {
		t.Fatal("crashed node is leader")
	}
	apply(t, c.follower(leader), "d")
	want = append(want, "c", "d")
	c.waitEntries(want)

	// Failed is not removed: the crashed node stays a voter and gossip
	// reports it dead.
	eventually(t, 20*time.Second, "crashed node reported dead but still a voter", func() error {
		for _, m := range leader.n().Status().Members {
			if m.ID == old.id {
				if m.GossipStatus != GossipDead || !m.Voter || !m.InRaftConfig {
					return fmt.Errorf("member %+v", m)
				}
				return nil
			}
		}
		return errors.New("crashed node missing from status")
	})

	// Restart on its data dir: it does not bootstrap, rejoins and catches up.
	c.start(old)
	c.waitEntries(want)
	if old.n().Status().Counters["bootstraps"] != 0 {
		t.Fatal("restarted node bootstrapped")
	}
	eventually(t, 15*time.Second, "restarted node alive in the leader's view", func() error {
		for _, m := range leader.n().Status().Members {
			if m.ID == old.id && m.GossipStatus != GossipAlive {
				return fmt.Errorf("member %+v", m)
			}
		}
		return nil
	})
	apply(t, old, "e")
	c.waitEntries(append(want, "e"))
	for _, tn := range c.nodes {
		c.waitVoters(tn, "node1", "node2", "node3")
	}
}

// TestGracefulLeaveAndJoin: graceful leave of the leader transfers leadership
// and removes it; a 4th node becomes a voter; the node that left comes back.
func TestGracefulLeaveAndJoin(t *testing.T) {
	c := newTestCluster(t, nil)
	c.startThree()
	leader := c.waitLeader(15 * time.Second)
	apply(t, c.follower(leader), "a")

	gone := leader
	start := time.Now()
	if err := c.stop(gone, true); err != nil {
		t.Fatalf("graceful leave: %v", err)
	}
	t.Logf("graceful leave of the leader took %s", time.Since(start))
	leader = c.waitLeader(15 * time.Second)
	if leader == gone {
		t.Fatal("left node still leader")
	}
	var rest []string
	for _, tn := range c.running() {
		rest = append(rest, tn.id)
	}
	for _, tn := range c.running() {
		c.waitVoters(tn, rest...)
	}
	for _, tn := range c.running() {
		eventually(t, 10*time.Second, "left member reported left by "+tn.id, func() error {
			for _, m := range tn.n().Status().Members {
				if m.ID == gone.id {
					if m.GossipStatus != GossipLeft || m.InRaftConfig {
						return fmt.Errorf("member %+v", m)
					}
					return nil
				}
			}
			return errors.New("left member missing from status")
		})
	}
	apply(t, c.follower(leader), "b")

	// A 4th node (same BootstrapExpect, seeds = the others) joins an
	// existing cluster: it must not bootstrap, the leader adds it.
	n4 := c.addNode(3)
	c.start(n4)
	want := append(rest, n4.id)
	for _, tn := range c.running() {
		c.waitVoters(tn, want...)
	}
	if n4.n().Status().Counters["bootstraps"] != 0 {
		t.Fatal("4th node bootstrapped")
	}
	apply(t, n4, "c")
	c.waitEntries([]string{"a", "b", "c"})

	// The node that left comes back on its data dir and is re-added.
	c.start(gone)
	want = append(want, gone.id)
	for _, tn := range c.running() {
		c.waitVoters(tn, want...)
	}
	apply(t, gone, "d")
	c.waitEntries([]string{"a", "b", "c", "d"})

	// Graceful leave of a follower too.
	leader = c.waitLeader(15 * time.Second)
	f := c.follower(leader)
	if err := c.stop(f, true); err != nil {
		t.Fatalf("graceful leave of follower: %v", err)
	}
	want = slices.DeleteFunc(want, func(id string) bool { return id == f.id })
	for _, tn := range c.running() {
		c.waitVoters(tn, want...)
	}
}

// TestSnapshotCatchUp: a follower that missed more writes than the leader
// keeps in its log is caught up with InstallSnapshot.
func TestSnapshotCatchUp(t *testing.T) {
	c := newTestCluster(t, func(cfg *Config) {
		cfg.SnapshotThreshold = 16
		cfg.TrailingLogs = 4
		cfg.SnapshotInterval = 100 * time.Millisecond
	})
	c.startThree()
	leader := c.waitLeader(15 * time.Second)
	var want []string
	for i := range 5 {
		want = append(want, fmt.Sprintf("pre-%d", i))
		apply(t, leader, want[len(want)-1])
	}
	c.waitEntries(want)
	lag := c.follower(leader)
	lagLast := lag.n().Status().LastLogIndex
	c.crash(lag)

	for i := range 100 {
		want = append(want, fmt.Sprintf("post-%d", i))
		apply(t, leader, want[len(want)-1])
	}
	// Wait until the leader's log no longer holds what the follower misses.
	eventually(t, 15*time.Second, "leader snapshot past the lagging follower", func() error {
		if si := leader.n().Status().LastSnapshotIndex; si <= lagLast+4+1 {
			return fmt.Errorf("leader snapshot index %d, follower last index %d", si, lagLast)
		}
		return nil
	})
	leaderSnap := leader.n().Status().LastSnapshotIndex

	c.start(lag)
	restoresAtStart := lag.fsm.restores.Load() // local snapshot restored by New, if any
	c.waitEntries(want)
	if got := lag.fsm.restores.Load(); got <= restoresAtStart {
		t.Fatalf("follower FSM was not restored from an installed snapshot (restores %d → %d)", restoresAtStart, got)
	}
	// raft records the installed snapshot's index just after the FSM restore.
	eventually(t, 5*time.Second, "follower snapshot index", func() error {
		if si := lag.n().Status().LastSnapshotIndex; si < leaderSnap {
			return fmt.Errorf("follower last snapshot index %d < leader's %d at restart", si, leaderSnap)
		}
		return nil
	})
}

// TestWholeClusterRestart: every node stopped, all restarted on their data
// dirs: no bootstrap, same entries, writes work.
func TestWholeClusterRestart(t *testing.T) {
	c := newTestCluster(t, nil)
	c.startThree()
	leader := c.waitLeader(15 * time.Second)
	var want []string
	for i := range 20 {
		want = append(want, fmt.Sprintf("e%d", i))
		apply(t, c.nodes[i%3], want[i])
	}
	c.waitEntries(want)
	_ = leader
	for _, tn := range c.nodes {
		c.stop(tn, false)
	}
	for _, tn := range c.nodes {
		c.start(tn)
	}
	c.waitLeader(20 * time.Second)
	c.waitEntries(want)
	for _, tn := range c.nodes {
		if tn.n().Status().Counters["bootstraps"] != 0 {
			t.Fatalf("%s bootstrapped again after restart", tn.id)
		}
	}
	want = append(want, "after")
	apply(t, c.nodes[0], "after")
	c.waitEntries(want)
}

// TestNoLeader: with two of three nodes down, Apply fails with ErrNoLeader
// within the apply timeout instead of hanging.
func TestNoLeader(t *testing.T) {
	const applyTimeout = 1500 * time.Millisecond
	c := newTestCluster(t, func(cfg *Config) { cfg.ApplyTimeout = applyTimeout })
	c.startThree()
	leader := c.waitLeader(15 * time.Second)
	apply(t, leader, "a")
	c.waitEntries([]string{"a"})
	survivor := c.follower(leader)
	for _, tn := range c.nodes {
		if tn != survivor {
			c.crash(tn)
		}
	}
	start := time.Now()
	_, err := survivor.n().Apply(context.Background(), []byte("b"))
	elapsed := time.Since(start)
	if !errors.Is(err, ErrNoLeader) {
		t.Fatalf("want ErrNoLeader, got %v", err)
	}
	if elapsed > applyTimeout+time.Second {
		t.Fatalf("Apply took %s, timeout %s", elapsed, applyTimeout)
	}
	// A caller's shorter context wins and is reported too.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = survivor.n().Apply(ctx, []byte("c"))
	if !errors.Is(err, ErrNoLeader) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want ErrNoLeader+DeadlineExceeded, got %v", err)
	}
	if err := survivor.n().WaitForLeader(ctx); err == nil {
		t.Fatal("WaitForLeader succeeded without a leader")
	}
	if _, err := survivor.n().ReadBarrier(context.Background()); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("ReadBarrier on a non-leader: %v", err)
	}
	st := survivor.n().Status()
	if st.State == "Leader" || st.LeaderID != "" && st.LeaderID != leader.id {
		t.Fatalf("unexpected status %+v", st)
	}
	if survivor.n().Shutdown(false) != nil {
		t.Fatal("shutdown failed")
	}
	if _, err := survivor.n().Apply(context.Background(), []byte("d")); !errors.Is(err, ErrShutdown) {
		t.Fatalf("apply after shutdown: %v", err)
	}
}

// TestSingleNode: BootstrapExpect=1 bootstraps alone; leader-only helpers;
// restart keeps state.
func TestSingleNode(t *testing.T) {
	c := newTestCluster(t, nil)
	tn := c.addNode(1)
	c.start(tn)
	c.waitLeader(10 * time.Second)
	ctx := context.Background()
	if err := tn.n().WaitForLeader(ctx); err != nil {
		t.Fatal(err)
	}
	apply(t, tn, "x")
	if err := tn.n().Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	idx, err := tn.n().ReadBarrier(ctx)
	if err != nil || idx == 0 || tn.n().AppliedIndex() < idx {
		t.Fatalf("ReadBarrier: %d %v", idx, err)
	}
	// Graceful shutdown of the only voter must not remove it.
	if err := c.stop(tn, true); err != nil {
		t.Fatal(err)
	}
	c.start(tn)
	c.waitLeader(10 * time.Second)
	c.waitEntries([]string{"x"})
	apply(t, tn, "y")
	c.waitEntries([]string{"x", "y"})
	if err := tn.n().Shutdown(false); err != nil {
		t.Fatal(err)
	}
	if err := tn.n().Shutdown(true); err != nil { // idempotent
		t.Fatal(err)
	}
}

func TestConfigValidation(t *testing.T) {
	good := Config{
		NodeID: "a", DataDir: t.TempDir(), RaftBindAddr: "127.0.0.1:0", GossipBindAddr: "127.0.0.1:0",
		APIAdvertiseAddr: "127.0.0.1:1", ClusterAuthKey: make([]byte, 32),
	}
	cfg, err := good.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SnapshotThreshold != 8192 || cfg.SnapshotInterval != 2*time.Minute || cfg.TrailingLogs != 10240 ||
		cfg.ApplyTimeout != 10*time.Second || cfg.ReconcileInterval != time.Second || cfg.Logger == nil {
		t.Fatalf("defaults: %+v", cfg)
	}
	for name, mod := range map[string]func(*Config){
		"no id":      func(c *Config) { c.NodeID = "" },
		"no dir":     func(c *Config) { c.DataDir = "" },
		"short key":  func(c *Config) { c.ClusterAuthKey = make([]byte, 16) },
		"bad addr":   func(c *Config) { c.RaftBindAddr = "nope" },
		"no api":     func(c *Config) { c.APIAdvertiseAddr = "" },
		"neg expect": func(c *Config) { c.BootstrapExpect = -1 },
	} {
		c := good
		mod(&c)
		if _, err := New(c, &testFSM{}); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
	if _, err := New(good, nil); err == nil {
		t.Error("nil FSM accepted")
	}
	// Derived secrets differ per purpose and are 32 bytes.
	k := bytes.Repeat([]byte{1}, 32)
	if g := gossipKey(k); len(g) != 32 || bytes.Equal(newRequestSigner(k).key, g) {
		t.Fatal("derived keys")
	}
}

func TestLogAdapters(t *testing.T) {
	var buf logBuffer
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := newHclogAdapter(l, "raft").Named("snapshot").With("k", 1)
	h.Info("hello", "x", 2, "pct", hclog.Fmt("%0.2f%%", 12.5), "servers", hclog.Fmt("%+v", []int{1}))
	h.Trace("hidden")
	ml := newMemberlistLogger(l)
	ml.Printf("[ERR] memberlist: Failed to send ping")
	ml.Printf("[DEBUG] memberlist: Stream connection")
	out := buf.tail(1 << 20)
	for _, want := range []string{"component=raft.snapshot", "k=1", "x=2", "pct=12.50%", "servers=[1]", "level=WARN msg=\"Failed to send ping\"", "level=DEBUG msg=\"Stream connection\""} {
		if !strings.Contains(out, want) {
			t.Errorf("log output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "hidden") {
		t.Error("trace logged at debug level")
	}
	if !h.IsDebug() || h.IsTrace() {
		t.Error("level checks")
	}
}
