package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/keyraft/keyraft/chaos/faults"
)

// Fault-injection tests: real nodes over real loopback sockets, each node
// deciding its own faults (faults.Injector in Config.Faults).

// fastGossip makes memberlist detect failures (and heal) in about a second
// instead of several, to keep the partition tests short.
func fastGossip(cfg *Config) {
	cfg.gossipTuning = func(mc *memberlist.Config) {
		mc.ProbeInterval = 250 * time.Millisecond
		mc.ProbeTimeout = 150 * time.Millisecond
		mc.SuspicionMult = 2
		mc.GossipInterval = 50 * time.Millisecond
	}
	cfg.gossipReconnect = 500 * time.Millisecond
}

func ids(nodes ...*testNode) []string {
	out := make([]string, len(nodes))
	for i, tn := range nodes {
		out[i] = tn.id
	}
	return out
}

func others(c *testCluster, not ...*testNode) []*testNode {
	var out []*testNode
	for _, tn := range c.nodes {
		if !slices.Contains(not, tn) {
			out = append(out, tn)
		}
	}
	return out
}

// waitEntriesOn waits until the FSMs of nodes hold exactly want.
func waitEntriesOn(t *testing.T, want []string, nodes ...*testNode) {
	t.Helper()
	for _, tn := range nodes {
		eventually(t, 20*time.Second, "FSM of "+tn.id+" to hold "+strings.Join(want, ","), func() error {
			if got := tn.fsm.list(); !slices.Equal(got, want) {
				return fmt.Errorf("%s has %v", tn.id, got)
			}
			return nil
		})
	}
}

// gossipStatus returns how viewer's gossip sees member id.
func gossipStatus(viewer *testNode, id string) string {
	for _, m := range viewer.n().Status().Members {
		if m.ID == id {
			return m.GossipStatus
		}
	}
	return "missing"
}

// waitAllAlive waits until every node sees every other alive in gossip.
func (c *testCluster) waitAllAlive() {
	c.t.Helper()
	for _, v := range c.running() {
		for _, m := range c.nodes {
			eventually(c.t, 20*time.Second, v.id+" sees "+m.id+" alive in gossip", func() error {
				if s := gossipStatus(v, m.id); s != GossipAlive {
					return fmt.Errorf("status %q", s)
				}
				return nil
			})
		}
	}
}

// statusJSON fetches /v1/status over HTTP as a generic document.
func statusJSON(t *testing.T, tn *testNode) map[string]any {
	t.Helper()
	resp, err := http.Get("http://" + tn.apiAddr + "/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestFaultIsolateFollower: a symmetric partition of one follower from the
// other two (the follower's own rules): it stops receiving appends, the
// majority keeps committing, gossip declares it dead; Clear heals
// everything: it catches up, gossip is alive again.
func TestFaultIsolateFollower(t *testing.T) {
	c := newTestCluster(t, fastGossip)
	c.startThree()
	leader := c.waitLeader(15 * time.Second)
	apply(t, leader, "a")
	c.waitEntries([]string{"a"})
	c.waitAllAlive()

	f := c.follower(leader)
	rest := others(c, f)
	if _, err := f.inj.Partition(ids(rest...), faults.Both); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "the isolated follower to lose contact with the leader", func() error {
		if lc := f.n().LastContact(); lc < 1500*time.Millisecond {
			return fmt.Errorf("last contact %s ago", lc)
		}
		return nil
	})
	// The majority keeps committing (through whoever leads it).
	apply(t, rest[0], "b")
	apply(t, rest[1], "c")
	waitEntriesOn(t, []string{"a", "b", "c"}, rest...)
	if got := f.fsm.list(); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("isolated follower applied %v", got)
	}
	// Gossip: the others declare it dead (failed, not removed).
	for _, v := range rest {
		eventually(t, 20*time.Second, v.id+" to see "+f.id+" dead in gossip", func() error {
			if s := gossipStatus(v, f.id); s != GossipDead {
				return fmt.Errorf("status %q", s)
			}
			return nil
		})
	}
	// Its status says why.
	st := statusJSON(t, f)
	fs, ok := st["faults"].(map[string]any)
	if !ok || len(fs["rules"].([]any)) != 1 {
		t.Fatalf("status faults: %v", st["faults"])
	}
	counters := fs["counters"].(map[string]any)
	if counters["dials_refused"].(float64)+counters["packets_dropped_out"].(float64) == 0 {
		t.Fatalf("no traffic was cut: %v", counters)
	}
	if _, ok := statusJSON(t, leader)["faults"]; ok {
		t.Fatal("faults reported on a node without rules")
	}

	// Heal.
	f.inj.Clear()
	c.waitEntries([]string{"a", "b", "c"})
	c.waitLeader(20 * time.Second)
	c.waitAllAlive()
	if _, ok := statusJSON(t, f)["faults"]; ok {
		t.Fatal("faults still reported after Clear")
	}
	apply(t, f, "d")
	c.waitEntries([]string{"a", "b", "c", "d"})
}

// TestFaultIsolateLeader: the leader cuts itself off from both followers. A
// new leader is elected among them, the old one steps down, writes on it
// fail as not applied; after Clear there is a single leader and all
// converge.
func TestFaultIsolateLeader(t *testing.T) {
	c := newTestCluster(t, fastGossip)
	c.startThree()
	old := c.waitLeader(15 * time.Second)
	apply(t, old, "a")
	c.waitEntries([]string{"a"})
	rest := others(c, old)
	if _, err := old.inj.Partition(ids(rest...), faults.Both); err != nil {
		t.Fatal(err)
	}
	var leader *testNode
	eventually(t, 20*time.Second, "a new leader among the majority", func() error {
		leader = nil
		for _, tn := range rest {
			if tn.n().Status().LeaderReady {
				leader = tn
			}
		}
		if leader == nil {
			return errors.New("none")
		}
		for _, tn := range rest {
			if id := tn.n().LeaderID(); id != leader.id {
				return fmt.Errorf("%s follows %q", tn.id, id)
			}
		}
		return nil
	})
	eventually(t, 10*time.Second, "the old leader to step down", func() error {
		if old.n().IsLeader() {
			return errors.New("still leader")
		}
		return nil
	})
	apply(t, c.follower(old), "b")
	waitEntriesOn(t, []string{"a", "b"}, rest...)
	// A write on the cut-off node fails and was not applied.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_, err := old.n().Apply(ctx, []byte("lost"))
	cancel()
	if !errors.Is(err, ErrNoLeader) {
		t.Fatalf("write on the isolated old leader: %v", err)
	}
	if got := old.fsm.list(); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("isolated old leader has %v", got)
	}

	old.inj.Clear()
	c.waitLeader(20 * time.Second)
	c.waitEntries([]string{"a", "b"})
	apply(t, old, "c")
	c.waitEntries([]string{"a", "b", "c"})
	for _, tn := range c.nodes {
		if slices.Contains(tn.fsm.list(), "lost") {
			t.Fatalf("%s applied a write that failed", tn.id)
		}
	}
}

// TestFaultAsymmetricExpiry: the leader cannot send to one follower but
// still hears from it (an outbound cut on the leader only). The follower
// stops hearing from the leader while its requests still reach the leader;
// the rule expires by itself and everything heals.
func TestFaultAsymmetricExpiry(t *testing.T) {
	c := newTestCluster(t, fastGossip)
	c.startThree()
	leader := c.waitLeader(15 * time.Second)
	apply(t, leader, "a")
	c.waitEntries([]string{"a"})
	f := c.follower(leader)

	const window = 6 * time.Second
	rule, err := leader.inj.Partition([]string{f.id}, faults.Outbound, faults.For(window))
	if err != nil {
		t.Fatal(err)
	}
	if rule.Until == nil {
		t.Fatal("rule without expiry")
	}
	// The leader cannot reach the follower (like a dial error: nothing sent)...
	_, err = leader.n().queryPeers(f.apiAddr)
	if !isDialError(err) || !errors.Is(err, faults.ErrPartitioned) {
		t.Fatalf("leader -> follower: want a dial error from the partition, got %v", err)
	}
	// ...but hears from it: the follower's internal requests are answered.
	if pr, err := f.n().queryPeers(leader.apiAddr); err != nil || pr.ID != leader.id {
		t.Fatalf("follower -> leader: %+v %v", pr, err)
	}
	// Raft: the follower no longer hears from the leader.
	eventually(t, window, "the follower to lose contact with the leader", func() error {
		if lc := f.n().LastContact(); lc < time.Second {
			return fmt.Errorf("last contact %s ago", lc)
		}
		return nil
	})
	if st := leader.n().Status(); st.Faults == nil || len(st.Faults.Rules) != 1 || st.Faults.Rules[0].Direction != faults.Outbound {
		t.Fatalf("leader status faults: %+v", st.Faults)
	}

	// The rule expires by itself: contact and traffic resume.
	eventually(t, window+10*time.Second, "the rule to expire", func() error {
		if leader.inj.Active() {
			return errors.New("still active")
		}
		return nil
	})
	if _, err := leader.n().queryPeers(f.apiAddr); err != nil {
		t.Fatalf("leader -> follower after expiry: %v", err)
	}
	apply(t, c.waitLeader(20*time.Second), "b")
	c.waitEntries([]string{"a", "b"})
	eventually(t, 20*time.Second, "the follower back in contact", func() error {
		if lc := f.n().LastContact(); lc < 0 || lc > time.Second {
			return fmt.Errorf("last contact %s ago", lc)
		}
		return nil
	})
	if leader.n().Status().Faults != nil {
		t.Fatal("expired rule still reported")
	}
}

// TestFaultLatencyAndApplyPause: a latency rule slows a forwarded write by
// at least the latency; an apply pause makes a follower's applied index lag
// its commit index, then catch up; a node still paused shuts down promptly.
func TestFaultLatencyAndApplyPause(t *testing.T) {
	c := newTestCluster(t, nil)
	c.startThree()
	leader := c.waitLeader(15 * time.Second)
	f := c.follower(leader)
	apply(t, f, "warm-up") // connections open, leader known
	c.waitEntries([]string{"warm-up"})

	const latency = 300 * time.Millisecond
	if _, err := f.inj.Latency([]string{leader.id}, latency, 0); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	apply(t, f, "slow")
	if el := time.Since(start); el < latency {
		t.Fatalf("forwarded write took %s with %s latency to the leader", el, latency)
	}
	f.inj.Clear()
	c.waitEntries([]string{"warm-up", "slow"})

	// Apply pause on the follower.
	if _, err := f.inj.PauseApply(time.Minute); err != nil {
		t.Fatal(err)
	}
	r := apply(t, leader, "p1")
	apply(t, leader, "p2")
	eventually(t, 15*time.Second, "the paused follower to know the commit", func() error {
		if ci := f.n().CommitIndex(); ci < r.Index {
			return fmt.Errorf("commit index %d < %d", ci, r.Index)
		}
		return nil
	})
	st := f.n().Status()
	if st.AppliedIndex >= r.Index || st.AppliedIndex >= st.CommitIndex {
		t.Fatalf("applied index %d does not lag (commit %d, entry %d)", st.AppliedIndex, st.CommitIndex, r.Index)
	}
	if st.Faults == nil || st.Faults.Rules[0].Kind != faults.KindPauseApply {
		t.Fatalf("status faults %+v", st.Faults)
	}
	if got := f.fsm.list(); slices.Contains(got, "p1") {
		t.Fatalf("paused follower applied %v", got)
	}
	f.inj.Clear()
	want := []string{"warm-up", "slow", "p1", "p2"}
	c.waitEntries(want)
	eventually(t, 10*time.Second, "applied index to catch up", func() error {
		if st := f.n().Status(); st.AppliedIndex < st.CommitIndex {
			return fmt.Errorf("applied %d < commit %d", st.AppliedIndex, st.CommitIndex)
		}
		return nil
	})

	// Shutting down a node whose FSM is held back does not hang.
	f.inj.PauseApply(time.Hour)
	apply(t, leader, "p3")
	eventually(t, 10*time.Second, "an apply held back", func() error {
		if f.n().pauser.BlockedApplyIndex() == 0 {
			return errors.New("not blocked yet")
		}
		return nil
	})
	start = time.Now()
	if err := c.stop(f, false); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Fatalf("shutdown took %s", el)
	}
	f.inj.Clear()
}

// TestPreamble: raft and gossip TCP connections without keyraft's preamble
// are closed cleanly; the node is unaffected (and the leak check in TestMain
// proves no goroutine is left behind).
func TestPreamble(t *testing.T) {
	c := newTestCluster(t, nil)
	tn := c.addNode(1)
	c.start(tn)
	c.waitLeader(10 * time.Second)
	for _, addr := range []string{tn.raftAddr, tn.gossipAddr} {
		for _, payload := range [][]byte{
			{0, 0x83, 0xa4, 'T', 'e', 'r', 'm', 1},      // raft AppendEntries without preamble
			[]byte("KRFT\x01\x07\x00\x02n9"),            // unknown channel
			[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), // something else entirely
		} {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			conn.Write(payload)
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			buf := make([]byte, 64)
			n, err := conn.Read(buf)
			conn.Close()
			var ne net.Error
			if err == nil || errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("%s: connection with payload %q not closed (read %d bytes, %v)", addr, payload, n, err)
			}
		}
	}
	apply(t, tn, "still works")
	if !strings.Contains(c.logs.tail(1<<20), "rejected connection without a valid keyraft preamble") {
		t.Fatal("rejections not logged")
	}
}

// TestRaftAdvertise: an IP advertise address behaves as before (resolved,
// must be specific); a host name is checked now but advertised as given.
func TestRaftAdvertise(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if a, err := raftAdvertise("", ln); err != nil || a.String() != ln.Addr().String() {
		t.Fatalf("bound address: %v %v", a, err)
	}
	if a, err := raftAdvertise("10.1.2.3:8300", ln); err != nil || a.String() != "10.1.2.3:8300" {
		t.Fatalf("IP advertise: %v %v", a, err)
	}
	if a, err := raftAdvertise("localhost:8300", ln); err != nil || a.String() != "localhost:8300" || a.Network() != "tcp" {
		t.Fatalf("host name advertise: %v %v", a, err)
	}
	for _, bad := range []string{"0.0.0.0:8300", "no-such-host.invalid:8300", "nope"} {
		if _, err := raftAdvertise(bad, ln); err == nil {
			t.Errorf("advertise %q accepted", bad)
		}
	}
	any, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Skip(err)
	}
	defer any.Close()
	if _, err := raftAdvertise("", any); err == nil || !strings.Contains(err.Error(), "not advertisable") {
		t.Fatalf("unspecified bind without advertise: %v", err)
	}
}
