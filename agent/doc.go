// Package agent wires one keyraft node together: it loads the seal key,
// builds the replicated state (fsm), starts Raft and gossip (cluster), serves
// the AWS KMS API (api) and the cluster endpoints on one HTTP listener, and
// runs the leader-only housekeeping (deleting keys whose pending window has
// passed, expiring imported key material, installing the grant token secret,
// purging old grant tombstones: reaper.go).
//
// cmd/keyraft turns flags into a Config; tests start agents in-process with
// the same Config, so what the tests exercise is what the binary runs.
package agent
