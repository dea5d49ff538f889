package cluster

import (
	"maps"
	"slices"
	"strconv"

	"github.com/hashicorp/raft"

	"github.com/keyraft/keyraft/chaos/faults"
)

// Status is a point-in-time view of this node, served as GET /v1/status.
type Status struct {
	NodeID         string `json:"node_id"`
	State          string `json:"state"` // Leader, Follower, Candidate, Shutdown
	LeaderID       string `json:"leader_id"`
	LeaderAddr     string `json:"leader_addr"` // the leader's API address
	LeaderRaftAddr string `json:"leader_raft_addr"`
	// LeaderReady: this node is leader and its term's Barrier has applied.
	LeaderReady bool   `json:"leader_ready"`
	Term        uint64 `json:"term"`

	CommitIndex       uint64 `json:"commit_index"`
	AppliedIndex      uint64 `json:"applied_index"`
	LastLogIndex      uint64 `json:"last_log_index"`
	LastSnapshotIndex uint64 `json:"last_snapshot_index"`
	// LastContact is the number of seconds since the leader was last heard
	// from: 0 on the leader, -1 if never.
	LastContact float64 `json:"last_contact"`

	RaftAddr   string `json:"raft_addr"`
	GossipAddr string `json:"gossip_addr"`
	APIAddr    string `json:"api_addr"`

	Members []Member `json:"members"`
	// Counters are per-node event counts (applies, forwards, retries,
	// leadership changes, reconcile actions, bootstraps).
	Counters map[string]int64 `json:"counters"`
	// Extra is filled by Config.StatusExtra.
	Extra map[string]any `json:"extra,omitempty"`
	// Faults are the fault-injection rules in force on this node (and what
	// they did), present only while there are some: they explain why a node
	// cannot reach a peer or lags.
	Faults *faults.State `json:"faults,omitempty"`
}

// Member is one entry of the union of gossip members and raft configuration
// servers.
type Member struct {
	ID         string `json:"id"`
	RaftAddr   string `json:"raft_addr"`
	APIAddr    string `json:"api_addr"`
	GossipAddr string `json:"gossip_addr"`
	// GossipStatus is alive, dead (failed: not removed), left (graceful
	// leave) or "" when the server is in the raft configuration but was never
	// seen in gossip by this node.
	GossipStatus string `json:"gossip_status"`
	Voter        bool   `json:"voter"`
	InRaftConfig bool   `json:"in_raft_config"`
}

// Status returns this node's view of the cluster.
func (n *Node) Status() Status {
	st := Status{
		NodeID:       n.cfg.NodeID,
		State:        n.raft.State().String(),
		LeaderReady:  n.leaderReady.Load() && n.raft.State() == raft.Leader,
		Term:         n.raft.CurrentTerm(),
		CommitIndex:  n.raft.CommitIndex(),
		AppliedIndex: n.AppliedIndex(),
		LastLogIndex: n.raft.LastIndex(),
		RaftAddr:     n.raftAddr,
		GossipAddr:   n.gossipAddr,
		APIAddr:      n.cfg.APIAdvertiseAddr,
		Counters:     n.stats.snapshot(),
	}
	stats := n.raft.Stats()
	st.LastSnapshotIndex, _ = strconv.ParseUint(stats["last_snapshot_index"], 10, 64)
	lc := n.LastContact()
	if lc < 0 {
		st.LastContact = -1
	} else {
		st.LastContact = lc.Seconds()
	}
	leaderAddr, leaderID := n.raft.LeaderWithID()
	st.LeaderID, st.LeaderRaftAddr = string(leaderID), string(leaderAddr)
	if leaderID != "" {
		st.LeaderAddr = n.LeaderAPIAddr()
	}

	byID := make(map[string]*Member)
	for _, m := range n.members.list() {
		byID[m.ID] = &Member{
			ID: m.ID, RaftAddr: m.RaftAddr, APIAddr: m.APIAddr,
			GossipAddr: m.GossipAddr, GossipStatus: m.Status,
		}
	}
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			m, ok := byID[string(s.ID)]
			if !ok {
				m = &Member{ID: string(s.ID), RaftAddr: string(s.Address), GossipStatus: GossipUnknown}
				byID[m.ID] = m
			}
			m.InRaftConfig = true
			m.Voter = s.Suffrage == raft.Voter
			if m.RaftAddr == "" {
				m.RaftAddr = string(s.Address)
			}
		}
	}
	for _, id := range slices.Sorted(maps.Keys(byID)) {
		st.Members = append(st.Members, *byID[id])
	}
	if n.cfg.StatusExtra != nil {
		st.Extra = n.cfg.StatusExtra()
	}
	if n.cfg.Faults.Active() {
		fs := n.cfg.Faults.Snapshot()
		st.Faults = &fs
	}
	return st
}
