// Package keyrafttest starts a real keyraft cluster inside a Go test: N
// nodes in the test's process, each with its own Raft, gossip and HTTP
// listeners on loopback ports chosen by the kernel, and its own data
// directory under t.TempDir(). Nodes can be crashed, stopped gracefully and
// restarted on the same data directory and ports, and each one hands out an
// AWS SDK for Go v2 KMS client pointed at it.
//
// Clusters run "-auth none" unless Options.Auth is "sigv4" (with
// Options.Credentials): then Client signs as the first principal, and
// ClientAs / ClientFor as any other. Options.Quotas turns on request quotas;
// Options.GrantPropagationDelay (GrantPropagationDelays per node) gives the
// nodes a grant propagation delay (docs/consistency.md). Start returns once
// every node can issue and check grant tokens.
//
// keyraft's own integration tests use it, and so can applications that want
// a multi-node KMS in their tests.
package keyrafttest
