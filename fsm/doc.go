// Package fsm is keyraft's replicated state machine: every KMS key, alias
// and grant (with the tombstones of retired and revoked grants), per
// (account, region) Scope, and the sealed cluster secret that signs grant
// tokens, as the Raft log builds it. It implements
// raft.FSM (Apply, Snapshot, Restore) and offers read-only queries that any
// goroutine may call while Raft applies entries.
//
// # Determinism
//
// Every node applies the same log and must reach byte-identical state, so
// Apply depends on nothing but the current state and the entry itself: it
// never reads a clock (Command.Time is the proposer's clock), never draws
// randomness, does no I/O and never lets map iteration order reach a result
// or a snapshot. Each refusal (a key in the wrong state, a missing alias, ...)
// is decided here, against the state the entry meets, and returned as an AWS
// error in Result.Error, so a request that raced with another one gets the
// same answer on every node. The API layer pre-checks the same rules with the
// same exported helpers (CheckOp, CheckUsableForMac, the Err* constructors)
// so that pre-check and apply produce identical messages.
//
// The one node-local input is the seal key: Options.Unseal turns
// Key.SealedMaterial into Key.Material, and the sealed cluster secret into
// the one ClusterSecret returns. Material (and MaterialErr) and the secret's
// plaintext are never serialised, never part of a snapshot or digest, and
// never influence which transitions Apply accepts; two nodes with different
// seal keys therefore still agree on the replicated state.
//
// Grants are stored with the proposer's CreationDate and, once retired or
// revoked, RetiredAt; when a grant takes effect on a node, and how long a
// tombstone is still honoured, is the API layer's per-node decision
// (-grant-propagation-delay), not the FSM's.
//
// # Sharing
//
// Queries return copies of keys and aliases. To keep Key (on the
// GenerateMac/VerifyMac hot path) to a read lock, a map lookup and a struct
// copy, the slices and pointers inside a returned Key (Tags, SealedMaterial,
// Material, Import) are shared with the state: the FSM never modifies them in
// place but replaces them, so they stay valid and unchanged for the caller,
// and callers must treat them as read-only (use Key.Clone to get an owned
// copy).
package fsm
