package fsm

import (
	"cmp"
	"slices"
)

// Key returns key id of scope. It is on the MAC hot path: a read lock, a map
// lookup and a struct copy. The returned Key's slices and Import are shared
// with the state and must not be modified (see the package doc).
func (f *FSM) Key(scope Scope, id string) (Key, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if st := f.scopes[scope]; st != nil {
		if k := st.keys[id]; k != nil {
			return *k, true
		}
	}
	return Key{}, false
}

// Alias returns alias name (alias/...) of scope.
func (f *FSM) Alias(scope Scope, name string) (Alias, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if st := f.scopes[scope]; st != nil {
		if a := st.aliases[name]; a != nil {
			return *a, true
		}
	}
	return Alias{}, false
}

// page returns the part of the sorted slice ss that follows after
// (exclusive), at most limit items (limit <= 0: all), and whether more
// remain.
func page(ss []string, after string, limit int) ([]string, bool) {
	i, found := slices.BinarySearch(ss, after)
	if found {
		i++
	}
	rest := ss[i:]
	if limit > 0 && len(rest) > limit {
		return rest[:limit], true
	}
	return rest, false
}

// ListKeys returns the keys of scope ordered by key id, starting after the
// id after (exclusive; "" = from the start), at most limit of them (limit
// <= 0: all), and whether more follow.
func (f *FSM) ListKeys(scope Scope, after string, limit int) (keys []Key, more bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	st := f.scopes[scope]
	if st == nil {
		return nil, false
	}
	ids, more := page(st.keyIDs, after, limit)
	keys = make([]Key, len(ids))
	for i, id := range ids {
		keys[i] = *st.keys[id]
	}
	return keys, more
}

// ListAliases returns the aliases of scope ordered by name, only those of
// key keyID unless keyID is "", starting after the name after (exclusive),
// at most limit of them (limit <= 0: all), and whether more follow.
func (f *FSM) ListAliases(scope Scope, keyID string, after string, limit int) (aliases []Alias, more bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	st := f.scopes[scope]
	if st == nil {
		return nil, false
	}
	names := st.names
	if keyID != "" {
		names = st.byKey[keyID]
	}
	names, more = page(names, after, limit)
	aliases = make([]Alias, len(names))
	for i, n := range names {
		aliases[i] = *st.aliases[n]
	}
	return aliases, more
}

// AliasesOf returns every alias of key keyID in scope, ordered by name.
func (f *FSM) AliasesOf(scope Scope, keyID string) []Alias {
	if keyID == "" {
		return nil // no key has an empty id; "" means "all" only to ListAliases
	}
	a, _ := f.ListAliases(scope, keyID, "", 0)
	return a
}

// sortedScopes returns the scopes in (account, region) order. Callers hold
// f.mu.
func (f *FSM) sortedScopes() []Scope {
	scopes := make([]Scope, 0, len(f.scopes))
	for sc := range f.scopes {
		scopes = append(scopes, sc)
	}
	slices.SortFunc(scopes, func(a, b Scope) int {
		return cmp.Or(cmp.Compare(a.Account, b.Account), cmp.Compare(a.Region, b.Region))
	})
	return scopes
}

// keysWhere returns the keys for which pred holds, in (scope, id) order.
func (f *FSM) keysWhere(pred func(*Key) bool) []KeyRef {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var refs []KeyRef
	for _, sc := range f.sortedScopes() {
		st := f.scopes[sc]
		for _, id := range st.keyIDs {
			if pred(st.keys[id]) {
				refs = append(refs, KeyRef{Scope: sc, KeyID: id})
			}
		}
	}
	return refs
}

// DueForDeletion returns the keys pending deletion whose DeletionDate is not
// after now (unix ns): what the leader's reaper proposes DeleteKey for.
func (f *FSM) DueForDeletion(now int64) []KeyRef {
	return f.keysWhere(func(k *Key) bool { return dueForDeletion(k, now) })
}

// ExpiredMaterial returns the keys whose imported material expires
// (KEY_MATERIAL_EXPIRES) with ValidTo not after now (unix ns): what the
// leader's reaper proposes ExpireKeyMaterial for.
func (f *FSM) ExpiredMaterial(now int64) []KeyRef {
	return f.keysWhere(func(k *Key) bool { return materialExpired(k, now) })
}

// AppliedIndex returns the index of the last log entry applied (or of the
// snapshot restored).
func (f *FSM) AppliedIndex() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.applied
}

// KeyCount returns the number of keys in all scopes.
func (f *FSM) KeyCount() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	n := 0
	for _, st := range f.scopes {
		n += len(st.keys)
	}
	return n
}

// ScopeKeyCount returns the number of keys in scope (for the per-account
// key quota).
func (f *FSM) ScopeKeyCount(scope Scope) int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if st := f.scopes[scope]; st != nil {
		return len(st.keys)
	}
	return 0
}
