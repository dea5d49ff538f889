// Package faults is keyraft's fault injection: per-node network partitions
// (symmetric or asymmetric), latency and apply lag, over the real TCP and UDP
// traffic of a running cluster, without root, iptables or tc.
//
// Each node decides its own faults. An Injector holds the node's rules,
// keyed by peer node ID; the cluster layer routes all its peer traffic
// through wrappers that consult it:
//
//   - raft: the StreamLayer's listener and dialer (Net.Listen, Net.Dial);
//   - gossip: memberlist's transport (Net.GossipTransport): UDP packets and
//     TCP streams;
//   - forwarded writes and other internal HTTP calls: the client's dialer
//     (Net.DialContext) on the sending side, GuardHTTP around the internal
//     endpoints on the receiving side;
//   - apply lag: WrapFSM around the node's raft.FSM.
//
// With no rule in force the data path costs one atomic load. A nil
// *Injector is valid everywhere and means "no faults".
//
// # Identifying peers
//
// Outbound, the node knows what it dials; a Resolver supplied by the cluster
// maps the address (raft, gossip or API host:port) to a node ID using the
// gossip member table and the raft configuration. Inbound TCP connections
// come from ephemeral ports, so every raft and gossip-stream connection
// starts with a preamble naming the dialling node:
//
//	"KRFT" | version 1 | channel (1 raft, 2 gossip) | uint16 BE id length | node id
//
// The listener reads it (within DefaultHandshakeTimeout) before handing the
// connection on; a connection without a valid preamble is closed and logged
// ("rejected connection without a valid keyraft preamble"). The preamble is
// part of keyraft's transport protocol and is always used, fault injection
// enabled or not, so all nodes of a cluster must send it. Gossip UDP packets
// are identified by their source address (memberlist sends from its one
// bound socket: the peer's gossip address). Internal HTTP requests carry the
// sender's ID in FromHeader (X-Keyraft-From); API requests from clients are
// never affected by faults.
//
// # What the rules do
//
// Direction is seen from the node holding the rule, and a TCP connection or
// HTTP request belongs to the side that opened it:
//
//   - Outbound cut to P: dials to P fail at once with a *net.OpError (Op
//     "dial") wrapping ErrPartitioned, so callers treat them as "nothing was
//     sent" (the cluster retries a forwarded write, then ErrNoLeader); open
//     connections we dialled to P are closed when the rule is added; gossip
//     packets to P are dropped silently. Connections P opened to us keep
//     working, answers included: "we cannot send to P, but hear from it".
//   - Inbound cut from P: P's raft and gossip connections are closed (when
//     the rule is added) or closed right after their preamble (later); its
//     gossip packets are dropped; its internal HTTP requests are dropped
//     (connection closed without an answer: P cannot tell whether it
//     arrived).
//   - Latency to P (d ± jitter): every write on a TCP connection with P is
//     queued and delivered when due (order kept; the writer does not block,
//     as with a socket buffer), every gossip packet to P is sent late (UDP may
//     reorder), internal HTTP answers to P are held back. Like netem on
//     egress: add the rule on both nodes to slow both directions.
//   - PauseApply(d): the FSM wrapped with WrapFSM stops applying for d.
//     Entries are still replicated and committed; the node's applied index
//     (cluster.Node.AppliedIndex, /v1/status applied_index) stays below the
//     held-back entry, then catches up. Shutdown ends a pause (the cluster
//     calls ReleaseApply) so a paused node still stops promptly.
//
// The latest rule of a kind for a peer replaces earlier ones for that peer
// (partition n2 inbound, then partition n2 outbound: only outbound holds).
// The peer AllPeers ("*") matches every peer, including unidentified ones,
// in addition to per-peer rules. Every rule may expire (For / "for"): a
// forgotten fault heals by itself. Clear removes all rules. Rules live in
// memory only: a restarted node has none.
//
// # Admin API
//
// Injector.Handler serves it; keyraft mounts it at /v1/faults on the API
// port only when the agent runs with -enable-fault-injection (keyraft dev
// turns it on). Every answer is JSON; errors are {"error": "..."} with 400
// (bad input), 404 (unknown path or rule, or fault injection not enabled),
// 405 (wrong method).
//
//	GET    /v1/faults              rules in force and counters
//	POST   /v1/faults/partition    {"peers":["n2","n3"],"direction":"both|inbound|outbound","for":"30s"}
//	POST   /v1/faults/latency      {"peers":["n2"],"latency":"200ms","jitter":"50ms","for":"1m"}
//	POST   /v1/faults/pause-apply  {"for":"5s"}
//	DELETE /v1/faults              clear every rule
//	DELETE /v1/faults/{id}         remove one rule ("r3")
//
// "direction" defaults to both; "for" is optional for partitions and
// latency (no expiry) and required for pause-apply; durations are Go
// duration strings. A POST answers {"rule": {...}, "state": {...}}; GET and
// DELETE answer the state:
//
//	{
//	  "rules": [
//	    {"id": "r1", "kind": "partition", "peers": ["n2", "n3"], "direction": "both",
//	     "since": "2026-11-24T21:30:00Z", "until": "2026-11-24T21:30:30Z"}
//	  ],
//	  "counters": {"dials_refused": 12, "conns_closed": 3, "inbound_rejected": 1,
//	               "packets_dropped_out": 40, "packets_dropped_in": 38, "packets_delayed": 0,
//	               "writes_delayed": 0, "http_dropped": 0, "http_delayed": 0, "applies_paused": 0}
//	}
//
// The rules in force also appear in the node's /v1/status as "faults"
// (absent when there are none), so a user sees why a node behaves as it
// does.
//
// Examples (node n1 on 127.0.0.1:8081, as `keyraft dev` starts it):
//
//	# isolate n1 from n2 and n3 for 30 s (n1's side cuts both directions)
//	curl -s -X POST localhost:8081/v1/faults/partition -d '{"peers":["n2","n3"],"for":"30s"}'
//
//	# asymmetric: n1 can no longer send to n2, but still hears from it
//	curl -s -X POST localhost:8081/v1/faults/partition -d '{"peers":["n2"],"direction":"outbound"}'
//
//	# 200ms ± 50ms on everything n1 sends to n2
//	curl -s -X POST localhost:8081/v1/faults/latency -d '{"peers":["n2"],"latency":"200ms","jitter":"50ms"}'
//
//	# n1 stops applying the log for 5 s (its applied index lags, then catches up)
//	curl -s -X POST localhost:8081/v1/faults/pause-apply -d '{"for":"5s"}'
//
//	curl -s localhost:8081/v1/faults                  # what is in force
//	curl -s -X DELETE localhost:8081/v1/faults/r2     # remove one rule
//	curl -s -X DELETE localhost:8081/v1/faults        # heal everything
//
// # From Go
//
//	inj := faults.New(faults.WithLogger(logger))
//	node, _ := cluster.New(cluster.Config{ /* ... */ Faults: inj}, faults.WrapFSM(fsm, inj))
//	inj.Partition([]string{"n2"}, faults.Outbound, faults.For(30*time.Second))
//	inj.Clear()
package faults
