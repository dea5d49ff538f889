package chaos

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"
)

// TestProcStartSurvivesTakenPorts: a node whose picked port was taken
// before it could bind picks new ports on its first start, and a restarted
// node keeps its addresses and waits until they are free again.
func TestProcStartSurvivesTakenPorts(t *testing.T) {
	if testing.Short() {
		t.Skip("starts agent processes")
	}
	bin := buildKeyraft(t)
	c, err := newProcCluster(bin, filepath.Join(t.TempDir(), "procs"), 1, []string{"-auth", "none"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.stopAll)
	nd := c.nodes[0]

	// First start: the raft port is held by someone else.
	taken := nd.raft
	hold, err := net.Listen("tcp", taken)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	if err := c.start(nd); err != nil {
		t.Fatalf("first start with a taken port: %v", err)
	}
	if nd.raft == taken {
		t.Fatalf("node still on the taken raft port %s", taken)
	}
	if _, err := nd.status(context.Background()); err != nil {
		t.Fatalf("node does not serve after re-picking its ports: %v", err)
	}
	hold.Close()

	// Restart: the HTTP port is held for a moment; the node must come back
	// on the same addresses once it is free.
	c.kill9(nd)
	httpAddr, raftAddr := nd.http, nd.raft
	hold, err = net.Listen("tcp", httpAddr)
	if err != nil {
		t.Fatal(err)
	}
	go func() { time.Sleep(700 * time.Millisecond); hold.Close() }()
	if err := c.start(nd); err != nil {
		t.Fatalf("restart while a port is briefly taken: %v", err)
	}
	if nd.http != httpAddr || nd.raft != raftAddr {
		t.Fatalf("restart moved the node: %s/%s -> %s/%s", httpAddr, raftAddr, nd.http, nd.raft)
	}
	if _, err := nd.status(context.Background()); err != nil {
		t.Fatalf("restarted node does not serve: %v", err)
	}
}
