// Package cluster replicates an opaque-command raft.FSM across keyraft nodes.
//
// It is the only package that knows about hashicorp/raft's runtime,
// raft-boltdb and memberlist (rqlite's store/cluster split and Consul's agent
// are the models). Commands are opaque bytes and the FSM is whatever
// raft.FSM the caller passes to New; cluster never imports fsm, api or
// engine.
//
// # Pieces
//
//   - Raft: raft-boltdb/v2 log and stable store at DataDir/raft/raft.db (behind
//     a 512-entry log cache), file snapshots (2 retained) in DataDir/raft, TCP
//     transport with mutual TLS 1.3 after the preamble: every node derives
//     the same cluster CA from ClusterAuthKey and signs a certificate of its
//     own at start (raft_tls.go), so only holders of the key can speak raft. Leadership is observed through Config.NotifyCh in a leader
//     loop; a new leader first issues a Barrier (so its FSM has applied all
//     earlier terms), then runs the membership reconcile loop and
//     Config.OnLeader until leadership is lost. If the Barrier fails three
//     times the node transfers leadership away.
//   - Gossip (memberlist, encrypted with a key derived from ClusterAuthKey):
//     discovery and failure detection only. Each member advertises
//     {id, raft_addr, api_addr} as metadata. Gossip proposes, the leader
//     decides: only the leader changes the raft configuration.
//   - HTTP (Handler): GET /v1/status and the internal endpoints
//     /v1/internal/peers, /v1/internal/apply and /v1/internal/remove, which
//     take only requests signed with a key derived from ClusterAuthKey, within
//     a minute of the node's clock and never twice (internalauth.go).
//     Followers forward writes to the leader's API address.
//
// # Bootstrap (Consul's maybeBootstrap)
//
// A node bootstraps only if BootstrapExpect > 0 and it has no raft state
// (raft.HasExistingState). Once it sees at least BootstrapExpect alive gossip
// members, it asks each over HTTP (GET /v1/internal/peers) whether it already
// has raft peers or state. If one does, a cluster exists and its leader will
// add us: no bootstrap. If one cannot be asked, it tries again later.
// Otherwise it bootstraps with those members, sorted by ID, as voters; every
// node computes the same configuration, identical bootstraps are safe, and
// raft refuses a second bootstrap over existing state. BootstrapExpect 1
// bootstraps alone. A node with existing state (any restart) never
// bootstraps: it starts raft with its persisted configuration and rejoins
// gossip, so a whole cluster that was stopped comes back by itself.
//
// # Membership: failed is not removed
//
// The leader reconciles every ReconcileInterval and on gossip events: an alive
// member missing from the configuration (or whose raft address changed) is
// added as a voter; a member that LEFT gracefully (memberlist leave) is
// removed. A FAILED member (crash, partition) is never removed automatically:
// it stays a voter and Status reports gossip_status "dead", because removing
// failed servers automatically can shrink the quorum into a minority that
// then accepts writes. Operators remove a dead server explicitly
// (POST /v1/internal/remove?id=X on the leader; a server that is in fact
// alive is added back by reconcile after 30s). The leader never removes
// itself in reconcile.
//
// memberlist v0.6.0 does not tell event delegates whether a node left or
// failed (hashicorp/memberlist#293), so a leaving node first announces its
// leave to every member with a gossip user message (as serf does); a member
// that disappears after announcing it is "left", otherwise "dead".
//
// # Leaving and coming back
//
// Shutdown(true) transfers leadership if needed, broadcasts a gossip leave
// and has the leader remove the node from the configuration. A node restarted
// on the same data dir after a graceful leave is added back as a voter by the
// leader's reconcile as soon as it is alive in gossip again, and catches up
// from the log or a snapshot.
//
// # Writes
//
// Apply on the leader goes through raft.Apply and returns the JSON encoding of
// the FSM's response; on a follower it is forwarded to the leader. It retries
// only when the command was certainly not applied (no leader, leader not
// dialable, leader answered "not leader"), and gives up with ErrNoLeader after
// ApplyTimeout. ErrUnknownOutcome marks writes that may or may not have been
// applied (leadership lost after append, connection lost after sending).
// Command bytes never appear in errors or logs: they may contain sealed key
// material.
//
// # Transport and fault injection
//
// Raft runs on hashicorp/raft's NetworkTransport over our own StreamLayer
// (transport.go), memberlist over its NetTransport wrapped by
// faults.GossipTransport, and the forwarding HTTP client dials through
// faults.Net. Every raft and gossip-stream TCP connection starts with
// keyraft's preamble (magic, version, channel, the dialling node's ID; see
// package chaos/faults), always, so each side knows the peer's node ID;
// connections without it are closed. Internal HTTP requests carry
// faults.FromHeader. RaftAdvertiseAddr may be a host name: it must resolve
// at start but is advertised (and dialled by peers) as given.
//
// Config.Faults (a *faults.Injector, nil = none) applies that node's fault
// rules per peer: partitions (inbound, outbound or both), latency, and, with
// the FSM wrapped by faults.WrapFSM, apply pauses (AppliedIndex then stays
// below the held-back entry). Status.Faults reports the rules in force.
package cluster
