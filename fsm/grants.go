package fsm

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Grant operations. The replicated state stores grants and their tombstones
// only; when a grant becomes effective on a node (-grant-propagation-delay
// after CreationDate) and how long a retired grant is still honoured (the
// same delay after RetiredAt) is decided per node by the API layer from
// CreationDate and RetiredAt, never here.
const (
	// OpCreateGrant adds a grant (CreateGrantCmd). The proposer fills
	// GrantID (64 lowercase hex characters from crypto/rand), CreationDate
	// and IssuingAccount.
	OpCreateGrant Op = "CreateGrant"
	// OpRetireGrant and OpRevokeGrant turn an active grant into a
	// tombstone (GrantCmd), RetiredAt = Command.Time.
	OpRetireGrant Op = "RetireGrant"
	OpRevokeGrant Op = "RevokeGrant"
	// OpPurgeGrantTombstones is the leader's housekeeping (PurgeCmd): it
	// deletes, in every scope, the tombstones retired before Before.
	OpPurgeGrantTombstones Op = "PurgeGrantTombstones"
)

// MaxGrantsPerKey is the quota of active grants per key (kms-api.md §5).
const MaxGrantsPerKey = 50000

// maxGrantsPerKey is MaxGrantsPerKey; tests lower it (export_test.go).
var maxGrantsPerKey = MaxGrantsPerKey

// Values of Grant.RetiredBy.
const (
	RetiredByRetire = "retire"
	RetiredByRevoke = "revoke"
)

// GrantConstraints are a grant's optional constraints. The field names are
// the AWS wire names. Apply normalises them (empty maps become nil, a
// constraint without any content becomes a nil *GrantConstraints), and
// encoding/json writes map keys sorted, so equal constraints encode to equal
// bytes.
type GrantConstraints struct {
	EncryptionContextSubset map[string]string `json:",omitempty"`
	EncryptionContextEquals map[string]string `json:",omitempty"`
	SourceArn               string            `json:",omitempty"`
}

// Grant is one grant on a key, active (RetiredAt == 0) or a tombstone. All
// times are unix nanoseconds chosen by proposers.
type Grant struct {
	Scope
	KeyID             string            `json:"key_id"`
	GrantID           string            `json:"grant_id"`
	Name              string            `json:"name,omitempty"`
	GranteePrincipal  string            `json:"grantee_principal"`
	RetiringPrincipal string            `json:"retiring_principal,omitempty"`
	IssuingAccount    string            `json:"issuing_account"`
	Operations        []string          `json:"operations"` // sorted, no duplicates
	Constraints       *GrantConstraints `json:"constraints,omitempty"`
	CreationDate      int64             `json:"creation_date"`
	// RetiredAt is 0 for an active grant, else the proposer time of the
	// RetireGrant or RevokeGrant that retired it; RetiredBy says which
	// ("retire" or "revoke").
	RetiredAt int64  `json:"retired_at,omitempty"`
	RetiredBy string `json:"retired_by,omitempty"`
}

// Active reports whether g has not been retired or revoked.
func (g Grant) Active() bool { return g.RetiredAt == 0 }

// Clone returns a deep copy of g that shares nothing with it.
func (g Grant) Clone() Grant {
	g.Operations = slices.Clone(g.Operations)
	if g.Constraints != nil {
		c := *g.Constraints
		c.EncryptionContextSubset = maps.Clone(c.EncryptionContextSubset)
		c.EncryptionContextEquals = maps.Clone(c.EncryptionContextEquals)
		g.Constraints = &c
	}
	return g
}

// CreateGrantCmd carries the complete new grant as the proposer built it.
type CreateGrantCmd struct {
	Grant Grant `json:"grant"`
}

// GrantCmd names a grant of a key; used by RetireGrant and RevokeGrant.
type GrantCmd struct {
	KeyID   string `json:"key_id"`
	GrantID string `json:"grant_id"`
}

// PurgeCmd deletes the grant tombstones whose RetiredAt is before Before
// (unix ns), in every scope (Command.Scope is ignored).
type PurgeCmd struct {
	Before int64 `json:"before"`
}

// IssuingAccountARN is a grant's IssuingAccount for scope:
// arn:aws:iam::<account>:root.
func IssuingAccountARN(scope Scope) string {
	return "arn:" + arnPartition + ":iam::" + scope.Account + ":root"
}

// ErrGrantNotFound is the error for a grant that does not exist on the key,
// or was already retired or revoked.
func ErrGrantNotFound() *Error { return newError(CodeNotFound, "Grant ID not found") }

// ErrTooManyGrants is CreateGrant's error when the key already has
// MaxGrantsPerKey active grants.
func ErrTooManyGrants() *Error {
	return newError(CodeLimitExceeded, "The request was rejected because a quota was exceeded.")
}

// CheckGrantQuota checks that a key with active active grants may take one
// more (Apply checks it after Name idempotency, so a retry that returns an
// existing grant is never refused by the quota).
func CheckGrantQuota(active int) *Error {
	if active >= maxGrantsPerKey {
		return ErrTooManyGrants()
	}
	return nil
}

// normalizeOps returns ops sorted and without duplicates, in a new slice.
func normalizeOps(ops []string) []string {
	if len(ops) == 0 {
		return nil
	}
	out := slices.Clone(ops)
	slices.Sort(out)
	return slices.Clip(slices.Compact(out))
}

// normalizeConstraints returns a canonical copy of c: nil for no
// constraints, nil maps for empty ones.
func normalizeConstraints(c *GrantConstraints) *GrantConstraints {
	if c == nil {
		return nil
	}
	n := GrantConstraints{SourceArn: c.SourceArn}
	if len(c.EncryptionContextSubset) > 0 {
		n.EncryptionContextSubset = maps.Clone(c.EncryptionContextSubset)
	}
	if len(c.EncryptionContextEquals) > 0 {
		n.EncryptionContextEquals = maps.Clone(c.EncryptionContextEquals)
	}
	if n.SourceArn == "" && n.EncryptionContextSubset == nil && n.EncryptionContextEquals == nil {
		return nil
	}
	return &n
}

// sameGrantParams reports whether two normalised grants have the parameters
// that CreateGrant's Name idempotency compares.
func sameGrantParams(a, b *Grant) bool {
	if a.GranteePrincipal != b.GranteePrincipal || a.RetiringPrincipal != b.RetiringPrincipal ||
		!slices.Equal(a.Operations, b.Operations) {
		return false
	}
	ca, cb := a.Constraints, b.Constraints
	if ca == nil || cb == nil {
		return ca == cb
	}
	return ca.SourceArn == cb.SourceArn &&
		maps.Equal(ca.EncryptionContextSubset, cb.EncryptionContextSubset) &&
		maps.Equal(ca.EncryptionContextEquals, cb.EncryptionContextEquals)
}

// grantCmp orders grants by (CreationDate, GrantID): the listing order.
// Grant ids are unique within a scope, so this is a total order on any list
// of grants of one scope.
func grantCmp(a, b *Grant) int {
	return cmp.Or(cmp.Compare(a.CreationDate, b.CreationDate), strings.Compare(a.GrantID, b.GrantID))
}

// tombCmp orders tombstones by (RetiredAt, GrantID): the purge order.
func tombCmp(a, b *Grant) int {
	return cmp.Or(cmp.Compare(a.RetiredAt, b.RetiredAt), strings.Compare(a.GrantID, b.GrantID))
}

func insertGrant(s []*Grant, g *Grant, c func(a, b *Grant) int) []*Grant {
	i, _ := slices.BinarySearchFunc(s, g, c)
	return slices.Insert(s, i, g)
}

func removeGrant(s []*Grant, g *Grant, c func(a, b *Grant) int) []*Grant {
	i, found := slices.BinarySearchFunc(s, g, c)
	if !found {
		return s
	}
	return slices.Delete(s, i, i+1)
}

// keyGrants indexes the grants of one key.
type keyGrants struct {
	all       []*Grant            // active and tombstones, by grantCmp (snapshot order)
	active    []*Grant            // by grantCmp
	byGrantee map[string][]*Grant // active and tombstones, by grantCmp
	byName    map[string][]*Grant // active grants with a Name, by grantCmp
}

// grantState holds the grants of one scope. Every *Grant is referenced
// from several indexes; Apply changes only its RetiredAt and RetiredBy in
// place, and never its Operations or Constraints, which queries share.
type grantState struct {
	byID      map[string]*Grant     // grant id -> grant, active and tombstones, of every key
	perKey    map[string]*keyGrants // key id ->
	retirable map[string][]*Grant   // retiring principal -> active grants, by grantCmp
	tombs     []*Grant              // tombstones, by tombCmp
}

func (gs *grantState) init() {
	if gs.byID == nil {
		gs.byID = make(map[string]*Grant)
		gs.perKey = make(map[string]*keyGrants)
		gs.retirable = make(map[string][]*Grant)
	}
}

func (gs *grantState) key(id string, create bool) *keyGrants {
	kg := gs.perKey[id]
	if kg == nil && create {
		gs.init()
		kg = &keyGrants{byGrantee: make(map[string][]*Grant), byName: make(map[string][]*Grant)}
		gs.perKey[id] = kg
	}
	return kg
}

// add indexes a new grant (active or, on Restore, a tombstone). With sorted
// false it appends, and the caller must call sortIndexes afterwards.
func (gs *grantState) add(g *Grant, sorted bool) {
	put := func(s []*Grant, c func(a, b *Grant) int) []*Grant {
		if sorted {
			return insertGrant(s, g, c)
		}
		return append(s, g)
	}
	kg := gs.key(g.KeyID, true)
	gs.byID[g.GrantID] = g
	kg.all = put(kg.all, grantCmp)
	kg.byGrantee[g.GranteePrincipal] = put(kg.byGrantee[g.GranteePrincipal], grantCmp)
	if !g.Active() {
		gs.tombs = put(gs.tombs, tombCmp)
		return
	}
	kg.active = put(kg.active, grantCmp)
	if g.Name != "" {
		kg.byName[g.Name] = put(kg.byName[g.Name], grantCmp)
	}
	if g.RetiringPrincipal != "" {
		gs.retirable[g.RetiringPrincipal] = put(gs.retirable[g.RetiringPrincipal], grantCmp)
	}
}

// sortIndexes sorts every index after unsorted adds (Restore).
func (gs *grantState) sortIndexes() {
	for _, kg := range gs.perKey {
		slices.SortFunc(kg.all, grantCmp)
		slices.SortFunc(kg.active, grantCmp)
		for _, s := range kg.byGrantee {
			slices.SortFunc(s, grantCmp)
		}
		for _, s := range kg.byName {
			slices.SortFunc(s, grantCmp)
		}
	}
	for _, s := range gs.retirable {
		slices.SortFunc(s, grantCmp)
	}
	slices.SortFunc(gs.tombs, tombCmp)
}

// unindexActive removes active grant g from the indexes of active grants.
func (gs *grantState) unindexActive(kg *keyGrants, g *Grant) {
	kg.active = removeGrant(kg.active, g, grantCmp)
	if g.Name != "" {
		if s := removeGrant(kg.byName[g.Name], g, grantCmp); len(s) == 0 {
			delete(kg.byName, g.Name)
		} else {
			kg.byName[g.Name] = s
		}
	}
	if g.RetiringPrincipal != "" {
		if s := removeGrant(gs.retirable[g.RetiringPrincipal], g, grantCmp); len(s) == 0 {
			delete(gs.retirable, g.RetiringPrincipal)
		} else {
			gs.retirable[g.RetiringPrincipal] = s
		}
	}
}

// retire turns active grant g into a tombstone.
func (gs *grantState) retire(g *Grant, at int64, by string) {
	gs.unindexActive(gs.perKey[g.KeyID], g)
	g.RetiredAt, g.RetiredBy = at, by
	gs.tombs = insertGrant(gs.tombs, g, tombCmp)
}

// deleteKey removes every grant of key id (AWS deletes a key's grants with
// the key). The result does not depend on map iteration order: each index
// is filtered by a predicate.
func (gs *grantState) deleteKey(id string) {
	kg := gs.perKey[id]
	if kg == nil {
		return
	}
	principals := map[string]bool{}
	tombs := false
	for _, g := range kg.all {
		delete(gs.byID, g.GrantID)
		if !g.Active() {
			tombs = true
		} else if g.RetiringPrincipal != "" {
			principals[g.RetiringPrincipal] = true
		}
	}
	ofKey := func(g *Grant) bool { return g.KeyID == id }
	for p := range principals {
		if s := slices.DeleteFunc(gs.retirable[p], ofKey); len(s) == 0 {
			delete(gs.retirable, p)
		} else {
			gs.retirable[p] = s
		}
	}
	if tombs {
		gs.tombs = slices.DeleteFunc(gs.tombs, ofKey)
	}
	delete(gs.perKey, id)
}

// purge deletes the tombstones retired before before.
func (gs *grantState) purge(before int64) {
	n := 0
	for n < len(gs.tombs) && gs.tombs[n].RetiredAt < before {
		n++
	}
	if n == 0 {
		return
	}
	gone := func(g *Grant) bool { return !g.Active() && g.RetiredAt < before }
	touched := map[string]map[string]bool{} // key id -> grantees
	for _, g := range gs.tombs[:n] {
		delete(gs.byID, g.GrantID)
		if touched[g.KeyID] == nil {
			touched[g.KeyID] = map[string]bool{}
		}
		touched[g.KeyID][g.GranteePrincipal] = true
	}
	gs.tombs = slices.Delete(gs.tombs, 0, n)
	for keyID, grantees := range touched {
		kg := gs.perKey[keyID]
		kg.all = slices.DeleteFunc(kg.all, gone)
		for p := range grantees {
			if s := slices.DeleteFunc(kg.byGrantee[p], gone); len(s) == 0 {
				delete(kg.byGrantee, p)
			} else {
				kg.byGrantee[p] = s
			}
		}
		if len(kg.all) == 0 {
			delete(gs.perKey, keyID)
		}
	}
}

func grantResult(g *Grant) *Result {
	c := *g
	return &Result{Grant: &c}
}

func (f *FSM) applyCreateGrant(cmd *Command) *Result {
	var p CreateGrantCmd
	if e := payload(cmd, &p); e != nil {
		return errResult(e)
	}
	g := p.Grant
	if g.KeyID == "" || g.GrantID == "" || g.GranteePrincipal == "" {
		return errResult(ErrInternal("malformed CreateGrant payload: no key id, grant id or grantee principal"))
	}
	if g.Scope == (Scope{}) {
		g.Scope = cmd.Scope
	} else if g.Scope != cmd.Scope {
		return errResult(ErrInternal("malformed CreateGrant payload: grant scope differs from command scope"))
	}
	if g.RetiredAt != 0 || g.RetiredBy != "" {
		return errResult(ErrInternal("malformed CreateGrant payload: a new grant cannot be retired"))
	}
	if g.Operations = normalizeOps(g.Operations); len(g.Operations) == 0 {
		return errResult(ErrInternal("malformed CreateGrant payload: no operations"))
	}
	g.Constraints = normalizeConstraints(g.Constraints)
	// Deterministic defaults for fields a proposer may leave out.
	if g.CreationDate == 0 {
		g.CreationDate = cmd.Time
	}
	if g.IssuingAccount == "" {
		g.IssuingAccount = IssuingAccountARN(cmd.Scope)
	}

	k, e := f.lookup(cmd.Scope, g.KeyID)
	if e != nil {
		return errResult(e)
	}
	if e := CheckOp(OpCreateGrant, k); e != nil {
		return errResult(e)
	}
	gs := &f.scope(cmd.Scope, false).grants // exists: it holds k
	if old := gs.byID[g.GrantID]; old != nil {
		// The same entry applied twice (a proposer retrying a write whose
		// outcome it did not learn) returns the grant it created; anything
		// else reusing a grant id is a proposer bug.
		if old.Active() && old.KeyID == g.KeyID && old.Name == g.Name && sameGrantParams(old, &g) {
			return grantResult(old)
		}
		return errResult(ErrInternal("grant " + g.GrantID + " already exists"))
	}
	kg := gs.key(g.KeyID, false)
	if g.Name != "" && kg != nil {
		// Name idempotency: an identical active grant of the same name on
		// this key is returned instead of a new one. A grant with the same
		// name but other parameters is a new grant (names are not unique).
		for _, old := range kg.byName[g.Name] {
			if sameGrantParams(old, &g) {
				return grantResult(old)
			}
		}
	}
	active := 0
	if kg != nil {
		active = len(kg.active)
	}
	if e := CheckGrantQuota(active); e != nil {
		return errResult(e)
	}
	gs.init()
	gs.add(&g, true)
	return grantResult(&g)
}

// applyRetireGrant handles RetireGrant and RevokeGrant.
func (f *FSM) applyRetireGrant(cmd *Command) *Result {
	var p GrantCmd
	if e := payload(cmd, &p); e != nil {
		return errResult(e)
	}
	if p.KeyID == "" || p.GrantID == "" {
		return errResult(ErrInternal(fmt.Sprintf("malformed %s payload: no key id or grant id", cmd.Op)))
	}
	if cmd.Time <= 0 {
		return errResult(ErrInternal(fmt.Sprintf("malformed %s command: no time", cmd.Op)))
	}
	k, e := f.lookup(cmd.Scope, p.KeyID)
	if e != nil {
		return errResult(e)
	}
	if e := CheckOp(cmd.Op, k); e != nil {
		return errResult(e)
	}
	gs := &f.scope(cmd.Scope, false).grants
	g := gs.byID[p.GrantID]
	if g == nil || g.KeyID != p.KeyID || !g.Active() {
		return errResult(ErrGrantNotFound())
	}
	by := RetiredByRetire
	if cmd.Op == OpRevokeGrant {
		by = RetiredByRevoke
	}
	gs.retire(g, cmd.Time, by)
	return grantResult(g)
}

func (f *FSM) applyPurgeGrantTombstones(cmd *Command) *Result {
	var p PurgeCmd
	if e := payload(cmd, &p); e != nil {
		return errResult(e)
	}
	// Tombstones must outlive the propagation delay; a purge of the future
	// is a proposer bug.
	if p.Before > cmd.Time {
		return errResult(ErrInternal("malformed PurgeGrantTombstones payload: before is after the command time"))
	}
	for _, st := range f.scopes {
		// Each scope is purged independently, so map order does not matter.
		st.grants.purge(p.Before)
	}
	return &Result{}
}

// GrantCursor returns the ListGrants / ListRetirableGrants position of g:
// "<CreationDate>/<GrantID>". Passing it as after continues the listing
// after g, even if g has since been retired or purged.
func GrantCursor(g Grant) string {
	return strconv.FormatInt(g.CreationDate, 10) + "/" + g.GrantID
}

// ParseGrantCursor parses a GrantCursor ("" is not a cursor); the API layer
// uses it to reject a bad marker before listing.
func ParseGrantCursor(s string) (creationDate int64, grantID string, ok bool) {
	n, id, found := strings.Cut(s, "/")
	if !found || id == "" {
		return 0, "", false
	}
	c, err := strconv.ParseInt(n, 10, 64)
	if err != nil || strconv.FormatInt(c, 10) != n {
		return 0, "", false
	}
	return c, id, true
}

// pageGrants returns copies of the grants of list (sorted by grantCmp)
// that follow after (a GrantCursor; "" = from the start) and satisfy keep,
// at most limit of them (limit <= 0: all), and whether more follow. An
// invalid cursor gives nothing.
func pageGrants(list []*Grant, after string, limit int, keep func(*Grant) bool) ([]Grant, bool) {
	start := 0
	if after != "" {
		c, id, ok := ParseGrantCursor(after)
		if !ok {
			return nil, false
		}
		pos := &Grant{CreationDate: c, GrantID: id}
		i, found := slices.BinarySearchFunc(list, pos, grantCmp)
		if found {
			i++
		}
		start = i
	}
	var out []Grant
	for _, g := range list[start:] {
		if keep != nil && !keep(g) {
			continue
		}
		if limit > 0 && len(out) == limit {
			return out, true
		}
		out = append(out, *g)
	}
	return out, false
}

// Grant returns grant grantID of key keyID in scope, active or a tombstone.
// Operations and Constraints of the returned Grant are shared with the
// state and must not be modified (Clone gives an owned copy).
func (f *FSM) Grant(scope Scope, keyID, grantID string) (Grant, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if st := f.scopes[scope]; st != nil {
		if g := st.grants.byID[grantID]; g != nil && g.KeyID == keyID {
			return *g, true
		}
	}
	return Grant{}, false
}

// ListGrants returns the active grants of key keyID in scope, ordered by
// (CreationDate, GrantID), only grant grantID if grantID is not "", only
// those of grantee if grantee is not "", following the cursor after
// (GrantCursor of the last grant of the previous page; "" = from the start;
// an invalid cursor gives nothing), at most limit of them (limit <= 0: all),
// and whether more follow.
func (f *FSM) ListGrants(scope Scope, keyID string, after string, limit int, grantID, grantee string) ([]Grant, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	st := f.scopes[scope]
	if st == nil {
		return nil, false
	}
	kg := st.grants.key(keyID, false)
	if kg == nil {
		return nil, false
	}
	switch {
	case grantID != "":
		g := st.grants.byID[grantID]
		if g == nil || g.KeyID != keyID || !g.Active() || (grantee != "" && g.GranteePrincipal != grantee) {
			return nil, false
		}
		return pageGrants([]*Grant{g}, after, limit, nil)
	case grantee != "":
		return pageGrants(kg.byGrantee[grantee], after, limit, func(g *Grant) bool { return g.Active() })
	default:
		return pageGrants(kg.active, after, limit, nil)
	}
}

// ListRetirableGrants returns the active grants of scope (any key) whose
// RetiringPrincipal is retiringPrincipal, ordered by (CreationDate, GrantID),
// with the same cursor, limit and more as ListGrants.
func (f *FSM) ListRetirableGrants(scope Scope, retiringPrincipal string, after string, limit int) ([]Grant, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	st := f.scopes[scope]
	if st == nil || retiringPrincipal == "" {
		return nil, false
	}
	return pageGrants(st.grants.retirable[retiringPrincipal], after, limit, nil)
}

// GrantsFor returns the grants of key keyID in scope whose grantee is
// grantee, active and tombstones, ordered by (CreationDate, GrantID): what
// the API needs to decide on this node whether a grant is effective yet (or
// still). Its cost is O(grants of that grantee on that key); nil when there
// are none. Shared fields as for Grant.
func (f *FSM) GrantsFor(scope Scope, keyID, grantee string) []Grant {
	f.mu.RLock()
	defer f.mu.RUnlock()
	st := f.scopes[scope]
	if st == nil {
		return nil
	}
	kg := st.grants.perKey[keyID]
	if kg == nil {
		return nil
	}
	list := kg.byGrantee[grantee]
	if len(list) == 0 {
		return nil
	}
	out := make([]Grant, len(list))
	for i, g := range list {
		out[i] = *g
	}
	return out
}

// GrantCount returns the number of active grants of key keyID in scope (for
// the API's pre-check of CheckGrantQuota).
func (f *FSM) GrantCount(scope Scope, keyID string) int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if st := f.scopes[scope]; st != nil {
		if kg := st.grants.perKey[keyID]; kg != nil {
			return len(kg.active)
		}
	}
	return 0
}

// OldestTombstone returns the smallest RetiredAt of all grant tombstones in
// every scope, and false when there are none: the leader's housekeeping
// proposes OpPurgeGrantTombstones when it is older than the propagation
// delay.
func (f *FSM) OldestTombstone() (int64, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var oldest int64
	found := false
	for _, st := range f.scopes {
		if len(st.grants.tombs) > 0 {
			if t := st.grants.tombs[0].RetiredAt; !found || t < oldest {
				oldest, found = t, true
			}
		}
	}
	return oldest, found
}
