package keyrafttest

import (
	"net"
	"strings"
	"testing"
	"time"
)

// TestRestartKeepsAddresses: nodes bind port 0 on their first start; a
// restarted node comes back on the same addresses (they are in the raft
// configuration), waiting while one of them is briefly held by someone else.
func TestRestartKeepsAddresses(t *testing.T) {
	c := Start(t, Options{Nodes: 3})
	for _, n := range c.Nodes {
		for _, a := range []string{n.httpAddr, n.raftAddr, n.gossip} {
			if strings.HasSuffix(a, ":0") || a == "" {
				t.Fatalf("%s has no concrete address: %q", n.ID, a)
			}
		}
	}
	n := c.Nodes[1]
	httpAddr, raftAddr, gossip := n.httpAddr, n.raftAddr, n.gossip
	c.Kill(1)
	hold, err := net.Listen("tcp", raftAddr)
	if err != nil {
		t.Fatal(err)
	}
	go func() { time.Sleep(500 * time.Millisecond); hold.Close() }()
	c.Restart(1)
	if n.httpAddr != httpAddr || n.raftAddr != raftAddr || n.gossip != gossip {
		t.Fatalf("restart moved %s", n.ID)
	}
	c.WaitForConvergence(30 * time.Second)
	if st, err := c.Status(1); err != nil || st.LeaderID == "" {
		t.Fatalf("restarted node: %+v, %v", st, err)
	}
}
