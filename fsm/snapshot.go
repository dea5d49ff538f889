package fsm

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"slices"

	"github.com/hashicorp/raft"
)

// SnapshotVersion is the version of the snapshot encoding this build writes.
// Restore accepts versions up to it. Version 2 added grants and the sealed
// cluster secret (a version 1 snapshot has neither); it was bumped so that
// an older build refuses such a snapshot instead of silently dropping them.
const SnapshotVersion = 2

// snapshotState is the snapshot encoding. encoding/json writes struct fields
// in declaration order and map keys sorted, and the slices are sorted by
// (account, region, id or name; for grants: key id, creation date, grant
// id), so equal states encode to equal bytes.
type snapshotState struct {
	Version int     `json:"version"`
	Index   uint64  `json:"index,omitempty"` // omitted by Digest
	Keys    []Key   `json:"keys"`
	Aliases []Alias `json:"aliases"`
	Grants  []Grant `json:"grants,omitempty"` // active and tombstones
	// ClusterSecret is the sealed cluster secret; its plaintext is never
	// part of a snapshot.
	ClusterSecret []byte `json:"cluster_secret,omitempty"`
}

// capture copies the state in canonical order. The Key copies share their
// slices with the state, which is safe because Apply never modifies those in
// place. Callers hold f.mu (read or write).
func (f *FSM) capture() *snapshotState {
	s := &snapshotState{Version: SnapshotVersion, Index: f.applied, Keys: []Key{}, Aliases: []Alias{}}
	for _, sc := range f.sortedScopes() {
		st := f.scopes[sc]
		for _, id := range st.keyIDs {
			k := *st.keys[id]
			// Not serialised anyway; dropping them keeps a snapshot that is
			// waiting to be persisted from pinning plaintext material.
			k.Material, k.MaterialErr = nil, ""
			s.Keys = append(s.Keys, k)
		}
		for _, n := range st.names {
			s.Aliases = append(s.Aliases, *st.aliases[n])
		}
		// Grants only exist for existing keys: key id order, then each
		// key's (creation date, grant id) order.
		for _, id := range st.keyIDs {
			if kg := st.grants.perKey[id]; kg != nil {
				for _, g := range kg.all {
					s.Grants = append(s.Grants, *g)
				}
			}
		}
	}
	s.ClusterSecret = f.sealedSecret
	return s
}

func (s *snapshotState) encode() ([]byte, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("fsm: encode snapshot: %w", err)
	}
	return b, nil
}

// Snapshot captures the current state for Raft. The copy is taken under the
// read lock, so the snapshot is the state at this call even though Persist
// runs concurrently with later Apply calls.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	s := f.capture()
	f.mu.RUnlock()
	return &fsmSnapshot{state: s}, nil
}

// Digest returns the hex SHA-256 of the snapshot encoding of the state
// without the applied index, so nodes can compare states directly.
func (f *FSM) Digest() string {
	f.mu.RLock()
	s := f.capture()
	f.mu.RUnlock()
	s.Index = 0
	b, err := s.encode()
	if err != nil {
		// The state contains only strings, integers, byte slices and
		// string maps, which always encode.
		panic(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

type fsmSnapshot struct{ state *snapshotState }

// Persist writes the snapshot to sink.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	b, err := s.state.encode()
	if err == nil {
		_, err = sink.Write(b)
	}
	if err != nil {
		sink.Cancel()
		return fmt.Errorf("fsm: persist snapshot: %w", err)
	}
	return sink.Close()
}

// Release does nothing: the snapshot holds only its own copy.
func (s *fsmSnapshot) Release() {}

// Restore replaces the whole state with the snapshot read from rc (never a
// merge). The new state is built aside and swapped in at once, so readers
// see either the old or the new state and a bad snapshot changes nothing.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var s snapshotState
	if err := json.NewDecoder(rc).Decode(&s); err != nil {
		return fmt.Errorf("fsm: restore: decode snapshot: %w", err)
	}
	if s.Version < 1 || s.Version > SnapshotVersion {
		return fmt.Errorf("fsm: restore: unsupported snapshot version %d (this node reads versions 1 to %d)", s.Version, SnapshotVersion)
	}
	scopes := make(map[Scope]*scopeState)
	get := func(sc Scope) *scopeState {
		st := scopes[sc]
		if st == nil {
			st = newScopeState()
			scopes[sc] = st
		}
		return st
	}
	for i := range s.Keys {
		k := &s.Keys[i]
		if k.ID == "" {
			return fmt.Errorf("fsm: restore: key without id in %s/%s", k.Account, k.Region)
		}
		st := get(k.Scope)
		if st.keys[k.ID] != nil {
			return fmt.Errorf("fsm: restore: duplicate key %s in %s/%s", k.ID, k.Account, k.Region)
		}
		k.Tags = slices.Clip(k.Tags)
		k.SealedMaterial = slices.Clip(k.SealedMaterial)
		f.unsealInto(k)
		st.keys[k.ID] = k
		st.keyIDs = append(st.keyIDs, k.ID)
	}
	for i := range s.Aliases {
		a := &s.Aliases[i]
		st := get(a.Scope)
		if a.Name == "" || st.aliases[a.Name] != nil {
			return fmt.Errorf("fsm: restore: missing or duplicate alias name %q in %s/%s", a.Name, a.Account, a.Region)
		}
		st.aliases[a.Name] = a
		st.names = append(st.names, a.Name)
		st.byKey[a.TargetKeyID] = append(st.byKey[a.TargetKeyID], a.Name)
	}
	for i := range s.Grants {
		g := &s.Grants[i]
		st := scopes[g.Scope]
		if g.GrantID == "" || st == nil || st.keys[g.KeyID] == nil {
			return fmt.Errorf("fsm: restore: grant %q without id or key in %s/%s", g.GrantID, g.Account, g.Region)
		}
		st.grants.init()
		if st.grants.byID[g.GrantID] != nil {
			return fmt.Errorf("fsm: restore: duplicate grant %s in %s/%s", g.GrantID, g.Account, g.Region)
		}
		// Canonical already when written by this package; normalising
		// keeps any valid input consistent with what Apply builds.
		g.Operations = normalizeOps(g.Operations)
		g.Constraints = normalizeConstraints(g.Constraints)
		st.grants.add(g, false)
	}
	// A snapshot written by this package is already sorted; sorting again
	// keeps the indexes right for any valid input.
	for _, st := range scopes {
		slices.Sort(st.keyIDs)
		slices.Sort(st.names)
		for _, names := range st.byKey {
			slices.Sort(names)
		}
		st.grants.sortIndexes()
	}
	sealed := slices.Clip(s.ClusterSecret)
	secret, secretErr := unsealClusterSecret(f.unseal, sealed)

	f.mu.Lock()
	f.scopes = scopes
	f.applied = s.Index
	f.sealedSecret, f.secret, f.secretErr = sealed, secret, secretErr
	f.mu.Unlock()
	return nil
}
