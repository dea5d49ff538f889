package fsm

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/hashicorp/raft"
)

// Options configure an FSM.
type Options struct {
	// Unseal opens Key.SealedMaterial with aad = the key ARN; its result
	// becomes Key.Material on this node. It also opens the sealed cluster
	// secret (aad = ClusterSecretAAD; see ClusterSecret). Nil leaves
	// Material and the secret nil. It is called with the FSM's write lock
	// held, so it must not call back into the FSM, and it must never log or
	// return material in its error.
	Unseal func(sealed, aad []byte) ([]byte, error)
}

// KeyRef names a key: what the reaper queries return.
type KeyRef struct {
	Scope
	KeyID string `json:"key_id"`
}

// scopeState is everything one (account, region) holds. The sorted id and
// name slices make listing and pagination O(log n + page) and keep every
// traversal in a deterministic order.
type scopeState struct {
	keys    map[string]*Key
	keyIDs  []string // sorted
	aliases map[string]*Alias
	names   []string            // sorted alias names
	byKey   map[string][]string // key id -> sorted names of its aliases
	grants  grantState          // grants and tombstones (grants.go)
}

func newScopeState() *scopeState {
	return &scopeState{
		keys:    make(map[string]*Key),
		aliases: make(map[string]*Alias),
		byKey:   make(map[string][]string),
	}
}

// insertSorted adds s to the sorted slice ss (no duplicates).
func insertSorted(ss []string, s string) []string {
	i, found := slices.BinarySearch(ss, s)
	if found {
		return ss
	}
	return slices.Insert(ss, i, s)
}

// removeSorted removes s from the sorted slice ss if present.
func removeSorted(ss []string, s string) []string {
	i, found := slices.BinarySearch(ss, s)
	if !found {
		return ss
	}
	return slices.Delete(ss, i, i+1)
}

func (st *scopeState) putKey(k *Key) {
	if _, ok := st.keys[k.ID]; !ok {
		st.keyIDs = insertSorted(st.keyIDs, k.ID)
	}
	st.keys[k.ID] = k
}

func (st *scopeState) putAlias(a *Alias) {
	if old, ok := st.aliases[a.Name]; ok {
		st.unindexAlias(old)
	} else {
		st.names = insertSorted(st.names, a.Name)
	}
	st.aliases[a.Name] = a
	st.byKey[a.TargetKeyID] = insertSorted(st.byKey[a.TargetKeyID], a.Name)
}

func (st *scopeState) unindexAlias(a *Alias) {
	names := removeSorted(st.byKey[a.TargetKeyID], a.Name)
	if len(names) == 0 {
		delete(st.byKey, a.TargetKeyID)
	} else {
		st.byKey[a.TargetKeyID] = names
	}
}

func (st *scopeState) deleteAlias(name string) {
	a, ok := st.aliases[name]
	if !ok {
		return
	}
	st.unindexAlias(a)
	delete(st.aliases, name)
	st.names = removeSorted(st.names, name)
}

// deleteKey removes a key, every alias that points at it and all its grants
// (AWS deletes a key's aliases and grants with the key).
func (st *scopeState) deleteKey(id string) {
	for _, name := range slices.Clone(st.byKey[id]) {
		st.deleteAlias(name)
	}
	st.grants.deleteKey(id)
	delete(st.keys, id)
	st.keyIDs = removeSorted(st.keyIDs, id)
}

// FSM is keyraft's replicated state. Apply, Snapshot and Restore are called
// by Raft; the query methods may be called from any goroutine.
type FSM struct {
	unseal func(sealed, aad []byte) ([]byte, error)

	mu      sync.RWMutex
	scopes  map[Scope]*scopeState
	applied uint64

	// sealedSecret is the replicated cluster secret (secret.go); secret
	// is its plaintext on this node and secretErr why it could not be
	// unsealed. Neither of the last two is ever serialised.
	sealedSecret []byte
	secret       []byte
	secretErr    string
}

var _ raft.FSM = (*FSM)(nil)

// New returns an empty FSM.
func New(opts Options) *FSM {
	return &FSM{unseal: opts.Unseal, scopes: make(map[Scope]*scopeState)}
}

// scope returns the state of sc, creating it when create is set (nil
// otherwise for an unknown scope). Callers hold f.mu.
func (f *FSM) scope(sc Scope, create bool) *scopeState {
	st := f.scopes[sc]
	if st == nil && create {
		st = newScopeState()
		f.scopes[sc] = st
	}
	return st
}

// lookup returns key id of scope sc, or the NotFoundException AWS gives for
// it. Callers hold f.mu.
func (f *FSM) lookup(sc Scope, id string) (*Key, *Error) {
	if st := f.scopes[sc]; st != nil {
		if k := st.keys[id]; k != nil {
			return k, nil
		}
	}
	return nil, ErrNotFound(KeyARN(sc, id))
}

// unsealInto sets k.Material (or k.MaterialErr) from k.SealedMaterial. It
// always assigns fresh values and never writes into an existing Material
// slice, which readers may still hold.
func (f *FSM) unsealInto(k *Key) {
	k.Material, k.MaterialErr = nil, ""
	if len(k.SealedMaterial) == 0 || f.unseal == nil {
		return
	}
	m, err := f.unseal(k.SealedMaterial, []byte(k.ARN))
	if err != nil {
		// The seal key of this node does not open what the proposer
		// sealed. The replicated state is unaffected; this node just
		// cannot compute MACs with the key (CheckUsableForMac).
		k.MaterialErr = "unseal key material: " + err.Error()
		return
	}
	k.Material = slices.Clip(m)
}

// Apply applies one committed log entry. It always returns a *Result; a
// refused or malformed command has Result.Error set and changes nothing but
// the applied index.
func (f *FSM) Apply(l *raft.Log) interface{} {
	// Decoding needs no lock: Raft calls Apply from a single goroutine.
	cmd, decodeErr := decodeCommand(l.Data)

	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = l.Index
	if decodeErr != nil {
		return &Result{Error: decodeErr}
	}
	return f.applyLocked(cmd)
}

func decodeCommand(data []byte) (*Command, *Error) {
	var cmd Command
	if err := json.Unmarshal(data, &cmd); err != nil {
		return nil, ErrInternal("malformed command: " + err.Error())
	}
	if cmd.Version < 1 || cmd.Version > CommandVersion {
		return nil, ErrInternal(fmt.Sprintf("unsupported command version %d (this node applies versions 1 to %d)", cmd.Version, CommandVersion))
	}
	return &cmd, nil
}

// payload decodes cmd's payload into p.
func payload(cmd *Command, p any) *Error {
	if len(cmd.Payload) == 0 {
		return ErrInternal(fmt.Sprintf("malformed %s command: no payload", cmd.Op))
	}
	if err := json.Unmarshal(cmd.Payload, p); err != nil {
		return ErrInternal(fmt.Sprintf("malformed %s payload: %v", cmd.Op, err))
	}
	return nil
}

func errResult(e *Error) *Result { return &Result{Error: e} }

func keyResult(k *Key) *Result {
	s := StripSecrets(*k)
	return &Result{Key: &s}
}

func aliasResult(a *Alias) *Result {
	c := *a
	return &Result{Alias: &c}
}

// applyLocked dispatches cmd. Every handler validates completely before it
// changes anything, so a refusal leaves the state untouched.
func (f *FSM) applyLocked(cmd *Command) *Result {
	switch cmd.Op {
	case OpCreateKey:
		return f.applyCreateKey(cmd)
	case OpEnableKey, OpDisableKey, OpCancelKeyDeletion, OpDeleteImportedKeyMaterial,
		OpDeleteKey, OpExpireKeyMaterial:
		var p KeyCmd
		return f.withKey(cmd, &p, &p.KeyID, func(k *Key) *Result { return f.applyKeyCmd(cmd, k) })
	case OpScheduleKeyDeletion:
		var p ScheduleKeyDeletionCmd
		return f.withKey(cmd, &p, &p.KeyID, func(k *Key) *Result {
			k.State = StatePendingDeletion
			k.DeletionDate = p.DeletionDate
			return keyResult(k)
		})
	case OpUpdateKeyDescription:
		var p UpdateKeyDescriptionCmd
		return f.withKey(cmd, &p, &p.KeyID, func(k *Key) *Result {
			k.Description = p.Description
			return keyResult(k)
		})
	case OpTagResource:
		var p TagResourceCmd
		return f.withKey(cmd, &p, &p.KeyID, func(k *Key) *Result {
			tags := mergeTags(k.Tags, p.Tags)
			if len(tags) > MaxTagsPerKey {
				return errResult(ErrTooManyTags())
			}
			k.Tags = tags
			return keyResult(k)
		})
	case OpUntagResource:
		var p UntagResourceCmd
		return f.withKey(cmd, &p, &p.KeyID, func(k *Key) *Result {
			k.Tags = removeTags(k.Tags, p.TagKeys)
			return keyResult(k)
		})
	case OpPutKeyPolicy:
		var p PutKeyPolicyCmd
		return f.withKey(cmd, &p, &p.KeyID, func(k *Key) *Result {
			k.Policy = p.Policy
			return keyResult(k)
		})
	case OpSetImportParameters:
		var p SetImportParametersCmd
		return f.withKey(cmd, &p, &p.KeyID, func(k *Key) *Result {
			imp := p.Import
			imp.SealedPrivateKey = slices.Clip(imp.SealedPrivateKey)
			k.Import = &imp // a new value: readers may hold the old one
			return keyResult(k)
		})
	case OpImportKeyMaterial:
		var p ImportKeyMaterialCmd
		return f.withKey(cmd, &p, &p.KeyID, func(k *Key) *Result { return f.applyImport(cmd, &p, k) })
	case OpCreateAlias:
		return f.applyCreateAlias(cmd)
	case OpUpdateAlias:
		return f.applyUpdateAlias(cmd)
	case OpDeleteAlias:
		return f.applyDeleteAlias(cmd)
	case OpCreateGrant:
		return f.applyCreateGrant(cmd)
	case OpRetireGrant, OpRevokeGrant:
		return f.applyRetireGrant(cmd)
	case OpPurgeGrantTombstones:
		return f.applyPurgeGrantTombstones(cmd)
	case OpInitClusterSecret:
		return f.applyInitClusterSecret(cmd)
	}
	return errResult(ErrInternal(fmt.Sprintf("unknown command op %q", cmd.Op)))
}

// withKey decodes the payload into p (whose key id field is *id), finds the
// key, runs the key-state rules of CheckOp and then fn, which may still
// refuse but must not change anything before it decides to succeed.
func (f *FSM) withKey(cmd *Command, p any, id *string, fn func(k *Key) *Result) *Result {
	if e := payload(cmd, p); e != nil {
		return errResult(e)
	}
	if *id == "" {
		return errResult(ErrInternal(fmt.Sprintf("malformed %s payload: no key id", cmd.Op)))
	}
	k, e := f.lookup(cmd.Scope, *id)
	if e != nil {
		return errResult(e)
	}
	if e := CheckOp(cmd.Op, k); e != nil {
		return errResult(e)
	}
	return fn(k)
}

func (f *FSM) applyCreateKey(cmd *Command) *Result {
	var p CreateKeyCmd
	if e := payload(cmd, &p); e != nil {
		return errResult(e)
	}
	k := p.Key
	if k.ID == "" {
		return errResult(ErrInternal("malformed CreateKey payload: no key id"))
	}
	// The key lives in the command's scope; a payload that says otherwise
	// is a proposer bug, not something to guess about.
	if k.Scope == (Scope{}) {
		k.Scope = cmd.Scope
	} else if k.Scope != cmd.Scope {
		return errResult(ErrInternal("malformed CreateKey payload: key scope differs from command scope"))
	}
	if _, e := f.lookup(cmd.Scope, k.ID); e == nil {
		return errResult(ErrInternal("key " + k.ID + " already exists"))
	}
	// Deterministic defaults for fields a proposer may leave out.
	if k.ARN == "" {
		k.ARN = KeyARN(k.Scope, k.ID)
	}
	if k.State == "" {
		k.State = StateEnabled
		if k.Origin == OriginExternal && len(k.SealedMaterial) == 0 {
			k.State = StatePendingImport
		}
	}
	k.Tags = mergeTags(nil, k.Tags)
	if len(k.Tags) > MaxTagsPerKey {
		return errResult(ErrTooManyTags())
	}
	k.SealedMaterial = slices.Clip(k.SealedMaterial)
	if k.Import != nil {
		imp := *k.Import
		imp.SealedPrivateKey = slices.Clip(imp.SealedPrivateKey)
		k.Import = &imp
	}
	f.unsealInto(&k)
	f.scope(cmd.Scope, true).putKey(&k)
	return keyResult(&k)
}

// applyKeyCmd handles the ops whose payload is a bare KeyCmd. CheckOp has
// passed.
func (f *FSM) applyKeyCmd(cmd *Command, k *Key) *Result {
	switch cmd.Op {
	case OpEnableKey:
		k.State = StateEnabled
	case OpDisableKey:
		k.State = StateDisabled
	case OpCancelKeyDeletion:
		// AWS does not restore the pre-deletion state: a cancelled key is
		// Disabled, except an imported key without material, which can
		// only be PendingImport.
		k.State = StateDisabled
		if k.Origin == OriginExternal && len(k.SealedMaterial) == 0 {
			k.State = StatePendingImport
		}
		k.DeletionDate = 0
	case OpDeleteImportedKeyMaterial:
		clearMaterial(k)
	case OpDeleteKey:
		if e := CheckDueForDeletion(k, cmd.Time); e != nil {
			return errResult(e)
		}
		res := keyResult(k)
		f.scope(cmd.Scope, false).deleteKey(k.ID)
		return res
	case OpExpireKeyMaterial:
		if e := CheckMaterialExpired(k, cmd.Time); e != nil {
			return errResult(e)
		}
		clearMaterial(k)
	}
	return keyResult(k)
}

// clearMaterial is DeleteImportedKeyMaterial (and expiry): the material goes,
// the digest stays (only the same material may be imported again) and the
// key waits for import unless it is pending deletion.
func clearMaterial(k *Key) {
	k.SealedMaterial = nil
	k.Material = nil
	k.MaterialErr = ""
	k.ValidTo = 0
	k.ExpirationModel = ""
	if k.State != StatePendingDeletion {
		k.State = StatePendingImport
	}
}

func (f *FSM) applyImport(cmd *Command, p *ImportKeyMaterialCmd, k *Key) *Result {
	if e := CheckImportToken(k, p.TokenID, cmd.Time); e != nil {
		return errResult(e)
	}
	if e := CheckMaterialDigest(k, p.MaterialDigest); e != nil {
		return errResult(e)
	}
	if len(p.SealedMaterial) == 0 || p.MaterialDigest == "" {
		return errResult(ErrInternal("malformed ImportKeyMaterial payload: no material or digest"))
	}
	k.SealedMaterial = slices.Clip(p.SealedMaterial)
	k.MaterialDigest = p.MaterialDigest
	k.ExpirationModel = p.ExpirationModel
	k.ValidTo = p.ValidTo
	f.unsealInto(k)
	if k.State == StatePendingImport {
		k.State = StateEnabled
	}
	return keyResult(k)
}

func (f *FSM) applyCreateAlias(cmd *Command) *Result {
	var p AliasCmd
	if e := payload(cmd, &p); e != nil {
		return errResult(e)
	}
	if p.Name == "" || p.TargetKeyID == "" {
		return errResult(ErrInternal("malformed CreateAlias payload: no alias name or target"))
	}
	aliasARN := AliasARN(cmd.Scope, p.Name)
	if st := f.scopes[cmd.Scope]; st != nil && st.aliases[p.Name] != nil {
		return errResult(ErrAliasExists(aliasARN))
	}
	target, e := f.lookup(cmd.Scope, p.TargetKeyID)
	if e != nil {
		return errResult(e)
	}
	if e := CheckOp(OpCreateAlias, target); e != nil {
		return errResult(e)
	}
	st := f.scope(cmd.Scope, false) // exists: it holds target
	if len(st.byKey[target.ID]) >= MaxAliasesPerKey {
		return errResult(ErrTooManyAliases(arnOf(target)))
	}
	a := &Alias{
		Scope:           cmd.Scope,
		Name:            p.Name,
		ARN:             aliasARN,
		TargetKeyID:     target.ID,
		CreationDate:    cmd.Time,
		LastUpdatedDate: cmd.Time,
	}
	st.putAlias(a)
	return aliasResult(a)
}

func (f *FSM) applyUpdateAlias(cmd *Command) *Result {
	var p AliasCmd
	if e := payload(cmd, &p); e != nil {
		return errResult(e)
	}
	if p.Name == "" || p.TargetKeyID == "" {
		return errResult(ErrInternal("malformed UpdateAlias payload: no alias name or target"))
	}
	aliasARN := AliasARN(cmd.Scope, p.Name)
	st := f.scopes[cmd.Scope]
	var old *Alias
	if st != nil {
		old = st.aliases[p.Name]
	}
	if old == nil {
		return errResult(ErrAliasNotFound(aliasARN))
	}
	target, e := f.lookup(cmd.Scope, p.TargetKeyID)
	if e != nil {
		return errResult(e)
	}
	// The current target may be in any state (even pending deletion); only
	// the new one is checked, as in AWS.
	if e := CheckOp(OpUpdateAlias, target); e != nil {
		return errResult(e)
	}
	if cur := st.keys[old.TargetKeyID]; cur != nil {
		if e := CheckAliasRetarget(aliasARN, cur, target); e != nil {
			return errResult(e)
		}
	}
	if target.ID != old.TargetKeyID && len(st.byKey[target.ID]) >= MaxAliasesPerKey {
		return errResult(ErrTooManyAliases(arnOf(target)))
	}
	a := *old // a new value: readers may hold copies of the old one
	a.TargetKeyID = target.ID
	a.LastUpdatedDate = cmd.Time
	st.putAlias(&a)
	return aliasResult(&a)
}

func (f *FSM) applyDeleteAlias(cmd *Command) *Result {
	var p AliasCmd
	if e := payload(cmd, &p); e != nil {
		return errResult(e)
	}
	if p.Name == "" {
		return errResult(ErrInternal("malformed DeleteAlias payload: no alias name"))
	}
	st := f.scopes[cmd.Scope]
	var a *Alias
	if st != nil {
		a = st.aliases[p.Name]
	}
	if a == nil {
		return errResult(ErrAliasNotFound(AliasARN(cmd.Scope, p.Name)))
	}
	st.deleteAlias(p.Name)
	return aliasResult(a)
}

// mergeTags returns a new sorted tag list: cur with add applied in order
// (a later tag with the same key replaces the value). cur is not modified,
// since readers may hold it. An empty result is nil.
func mergeTags(cur, add []Tag) []Tag {
	if len(add) == 0 {
		return slices.Clip(cur)
	}
	out := make([]Tag, len(cur), len(cur)+len(add))
	copy(out, cur)
	for _, t := range add {
		i, found := slices.BinarySearchFunc(out, t.Key, func(a Tag, key string) int {
			return strings.Compare(a.Key, key)
		})
		if found {
			out[i].Value = t.Value
		} else {
			out = slices.Insert(out, i, t)
		}
	}
	return slices.Clip(out)
}

// removeTags returns a new tag list without the given keys; absent keys are
// ignored. cur is not modified.
func removeTags(cur []Tag, keys []string) []Tag {
	if len(keys) == 0 || len(cur) == 0 {
		return cur
	}
	out := make([]Tag, 0, len(cur))
	for _, t := range cur {
		if !slices.Contains(keys, t.Key) {
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return slices.Clip(out)
}
