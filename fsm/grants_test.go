package fsm_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/keyraft/keyraft/engine"
	"github.com/keyraft/keyraft/fsm"
)

// gid returns a grant id in AWS's shape (64 lowercase hex characters).
func gid(n int) string { return fmt.Sprintf("%064x", n) }

func principal(sc fsm.Scope, name string) string {
	return "arn:aws:iam::" + sc.Account + ":role/" + name
}

// newGrant builds a grant as the CreateGrant proposer does.
func (e *env) newGrant(sc fsm.Scope, keyID, grantID, grantee string, ops ...string) fsm.Grant {
	return fsm.Grant{Scope: sc, KeyID: keyID, GrantID: grantID, GranteePrincipal: principal(sc, grantee),
		IssuingAccount: fsm.IssuingAccountARN(sc), Operations: ops, CreationDate: e.now}
}

func (e *env) createGrant(g fsm.Grant) fsm.Grant {
	e.t.Helper()
	r := e.ok(fsm.OpCreateGrant, g.Scope, fsm.CreateGrantCmd{Grant: g})
	if r.Grant == nil || r.Key != nil || r.Alias != nil {
		e.t.Fatalf("CreateGrant result %+v", r)
	}
	return *r.Grant
}

func grantIDs(gs []fsm.Grant) []string {
	out := make([]string, len(gs))
	for i, g := range gs {
		out[i] = g.GrantID
	}
	return out
}

func TestCreateGrant(t *testing.T) {
	e := newEnv(t)
	e.create(e.hmacKey(scA, "k"))
	g := e.newGrant(scA, "k", gid(1), "app", "VerifyMac", "GenerateMac", "VerifyMac")
	g.Scope = fsm.Scope{} // defaults to the command's
	g.IssuingAccount = ""
	g.CreationDate = 0
	g.RetiringPrincipal = principal(scA, "admin")
	g.Constraints = &fsm.GrantConstraints{EncryptionContextSubset: map[string]string{}}
	r0 := e.ok(fsm.OpCreateGrant, scA, fsm.CreateGrantCmd{Grant: g})
	got := *r0.Grant

	want := fsm.Grant{Scope: scA, KeyID: "k", GrantID: gid(1), GranteePrincipal: principal(scA, "app"),
		RetiringPrincipal: principal(scA, "admin"), IssuingAccount: "arn:aws:iam::" + scA.Account + ":root",
		Operations: []string{"GenerateMac", "VerifyMac"}, CreationDate: t0}
	if mustJSON(t, got) != mustJSON(t, want) || got.Constraints != nil {
		t.Fatalf("Result.Grant = %s\nwant %s", mustJSON(t, got), mustJSON(t, want))
	}
	if s, ok := e.f.Grant(scA, "k", gid(1)); !ok || mustJSON(t, s) != mustJSON(t, want) || !s.Active() {
		t.Fatalf("Grant = %+v %v", s, ok)
	}
	if _, ok := e.f.Grant(scA, "other", gid(1)); ok {
		t.Fatal("grant found under another key id")
	}
	if _, ok := e.f.Grant(scB, "k", gid(1)); ok {
		t.Fatal("grant visible in another scope")
	}
	if n := e.f.GrantCount(scA, "k"); n != 1 {
		t.Fatalf("GrantCount = %d", n)
	}
	if l, more := e.f.ListGrants(scA, "k", "", 0, "", ""); more || !slices.Equal(grantIDs(l), []string{gid(1)}) {
		t.Fatalf("ListGrants = %v %v", grantIDs(l), more)
	}
	if l := e.f.GrantsFor(scA, "k", principal(scA, "app")); !slices.Equal(grantIDs(l), []string{gid(1)}) {
		t.Fatalf("GrantsFor = %v", grantIDs(l))
	}
	if l := e.f.GrantsFor(scA, "k", principal(scA, "admin")); l != nil {
		t.Fatalf("GrantsFor retiring principal = %v", l)
	}
	if l, _ := e.f.ListRetirableGrants(scA, principal(scA, "admin"), "", 0); !slices.Equal(grantIDs(l), []string{gid(1)}) {
		t.Fatalf("ListRetirableGrants = %v", grantIDs(l))
	}

	// Constraints are kept (normalised) and compared.
	c := e.newGrant(scA, "k", gid(2), "app", "GenerateMac")
	c.Constraints = &fsm.GrantConstraints{SourceArn: "arn:aws:s3:::b", EncryptionContextEquals: map[string]string{}}
	if got := e.createGrant(c); got.Constraints == nil || got.Constraints.SourceArn != "arn:aws:s3:::b" || got.Constraints.EncryptionContextEquals != nil {
		t.Fatalf("constraints = %+v", got.Constraints)
	}

	// Applying the same entry again (a retried forward) returns the grant.
	before := e.f.Digest()
	r := e.ok(fsm.OpCreateGrant, scA, fsm.CreateGrantCmd{Grant: g})
	if r.Grant.GrantID != gid(1) || e.f.Digest() != before {
		t.Fatal("replayed CreateGrant changed the state")
	}
	// Another grant under a used id is a proposer bug.
	dup := e.newGrant(scA, "k", gid(1), "other", "GenerateMac")
	e.fail(fsm.OpCreateGrant, scA, fsm.CreateGrantCmd{Grant: dup}, fsm.CodeInternal, "")

	// Refusals.
	e.fail(fsm.OpCreateGrant, scA, fsm.CreateGrantCmd{Grant: e.newGrant(scA, "missing", gid(9), "app", "GenerateMac")},
		fsm.CodeNotFound, "Key '"+arn(scA, "missing")+"' does not exist")
	e.fail(fsm.OpCreateGrant, scB, fsm.CreateGrantCmd{Grant: e.newGrant(scB, "k", gid(9), "app", "GenerateMac")},
		fsm.CodeNotFound, "Key '"+arn(scB, "k")+"' does not exist")
	malformed := map[string]func(g *fsm.Grant){
		"no key id":   func(g *fsm.Grant) { g.KeyID = "" },
		"no grant id": func(g *fsm.Grant) { g.GrantID = "" },
		"no grantee":  func(g *fsm.Grant) { g.GranteePrincipal = "" },
		"no ops":      func(g *fsm.Grant) { g.Operations = nil },
		"wrong scope": func(g *fsm.Grant) { g.Scope = scB },
		"retired":     func(g *fsm.Grant) { g.RetiredAt = t0 },
		"retired by":  func(g *fsm.Grant) { g.RetiredBy = fsm.RetiredByRevoke },
	}
	for name, mod := range malformed {
		g := e.newGrant(scA, "k", gid(10), "app", "GenerateMac")
		mod(&g)
		if pe := e.fail(fsm.OpCreateGrant, scA, fsm.CreateGrantCmd{Grant: g}, fsm.CodeInternal, ""); pe == nil {
			t.Fatal(name)
		}
	}
	e.fail(fsm.OpCreateGrant, scA, struct{}{}, fsm.CodeInternal, "")
	if n := e.f.GrantCount(scA, "k"); n != 2 {
		t.Fatalf("GrantCount = %d after refusals", n)
	}
}

// TestCreateGrantKeyStates: kms-api.md §3 CreateGrant row, through Apply and
// the exported CheckOp alike.
func TestCreateGrantKeyStates(t *testing.T) {
	a := arn(scA, "k")
	want := map[fsm.KeyState][2]string{
		fsm.StateEnabled:         {"", ""},
		fsm.StateDisabled:        {fsm.CodeDisabled, a + " is disabled."},
		fsm.StatePendingDeletion: {fsm.CodeInvalidState, a + " is pending deletion."},
		fsm.StatePendingImport:   {fsm.CodeInvalidState, a + " is pending import."},
	}
	for st, w := range want {
		t.Run(string(st), func(t *testing.T) {
			e := newEnv(t)
			e.reach("k", st)
			k := e.key(scA, "k")
			pe := fsm.CheckOp(fsm.OpCreateGrant, &k)
			g := e.newGrant(scA, "k", gid(1), "app", "GenerateMac")
			if w[0] == "" {
				if pe != nil {
					t.Fatalf("CheckOp = %v", pe)
				}
				e.createGrant(g)
				return
			}
			if pe == nil || pe.Code != w[0] || pe.Message != w[1] {
				t.Fatalf("CheckOp = %v, want %s %s", pe, w[0], w[1])
			}
			e.fail(fsm.OpCreateGrant, scA, fsm.CreateGrantCmd{Grant: g}, w[0], w[1])
			// Retire and revoke have no key-state rule.
			for _, op := range []fsm.Op{fsm.OpRetireGrant, fsm.OpRevokeGrant} {
				if pe := fsm.CheckOp(op, &k); pe != nil {
					t.Fatalf("CheckOp(%s) = %v", op, pe)
				}
			}
		})
	}
}

func TestGrantNameIdempotency(t *testing.T) {
	e := newEnv(t)
	e.create(e.hmacKey(scA, "k"))
	e.create(e.hmacKey(scA, "k2"))
	named := func(id int, key, grantee string, ops ...string) fsm.Grant {
		g := e.newGrant(scA, key, gid(id), grantee, ops...)
		g.Name = "my-grant"
		g.RetiringPrincipal = principal(scA, "admin")
		g.Constraints = &fsm.GrantConstraints{SourceArn: "arn:aws:s3:::b"}
		return g
	}
	first := e.createGrant(named(1, "k", "app", "GenerateMac", "VerifyMac"))

	// A retry with identical parameters (operations in another order and
	// repeated, a new proposer id and time) returns the original grant.
	e.now += 1000
	before := e.f.Digest()
	again := e.createGrant(named(2, "k", "app", "VerifyMac", "GenerateMac", "VerifyMac"))
	if again.GrantID != first.GrantID || again.CreationDate != t0 || e.f.Digest() != before {
		t.Fatalf("retry gave %s (created %d)", again.GrantID, again.CreationDate)
	}
	if _, ok := e.f.Grant(scA, "k", gid(2)); ok || e.f.GrantCount(scA, "k") != 1 {
		t.Fatal("retry created a grant")
	}

	// Same name, different parameters: a new grant each (documented choice).
	variants := map[int]func(g *fsm.Grant){
		3: func(g *fsm.Grant) { g.GranteePrincipal = principal(scA, "other") },
		4: func(g *fsm.Grant) { g.RetiringPrincipal = "" },
		5: func(g *fsm.Grant) { g.Operations = []string{"GenerateMac"} },
		6: func(g *fsm.Grant) { g.Constraints = nil },
		7: func(g *fsm.Grant) { g.Constraints.EncryptionContextSubset = map[string]string{"a": "b"} },
	}
	for id := 3; id <= 7; id++ {
		g := named(id, "k", "app", "GenerateMac", "VerifyMac")
		variants[id](&g)
		if got := e.createGrant(g); got.GrantID != gid(id) {
			t.Fatalf("variant %d returned %s", id, got.GrantID)
		}
		// ... and a retry of the variant returns the variant.
		g.GrantID = gid(100 + id)
		if got := e.createGrant(g); got.GrantID != gid(id) {
			t.Fatalf("retry of variant %d returned %s", id, got.GrantID)
		}
	}
	// The original is still what an identical retry returns.
	if got := e.createGrant(named(8, "k", "app", "GenerateMac", "VerifyMac")); got.GrantID != gid(1) {
		t.Fatalf("retry after variants returned %s", got.GrantID)
	}
	// Same name on another key: a separate grant.
	if got := e.createGrant(named(9, "k2", "app", "GenerateMac", "VerifyMac")); got.GrantID != gid(9) {
		t.Fatalf("other key returned %s", got.GrantID)
	}
	// Without a name every call is a new grant.
	for id := 10; id < 12; id++ {
		g := named(id, "k", "app", "GenerateMac", "VerifyMac")
		g.Name = ""
		if got := e.createGrant(g); got.GrantID != gid(id) {
			t.Fatalf("unnamed grant returned %s", got.GrantID)
		}
	}
	// Once retired, the named grant no longer answers retries.
	e.ok(fsm.OpRetireGrant, scA, fsm.GrantCmd{KeyID: "k", GrantID: gid(1)})
	if got := e.createGrant(named(12, "k", "app", "GenerateMac", "VerifyMac")); got.GrantID != gid(12) {
		t.Fatalf("retry after retire returned %s", got.GrantID)
	}
	if n := e.f.GrantCount(scA, "k"); n != 8 {
		t.Fatalf("GrantCount = %d", n)
	}
}

func TestGrantQuota(t *testing.T) {
	if fsm.CheckGrantQuota(fsm.MaxGrantsPerKey-1) != nil || fsm.CheckGrantQuota(fsm.MaxGrantsPerKey) == nil || fsm.MaxGrantsPerKey != 50000 {
		t.Fatal("CheckGrantQuota at the real quota")
	}
	defer fsm.SetMaxGrantsPerKey(3)()
	e := newEnv(t)
	e.create(e.hmacKey(scA, "k"))
	e.create(e.hmacKey(scA, "k2"))
	for i := range 3 {
		g := e.newGrant(scA, "k", gid(i), "app", "GenerateMac")
		g.Name = fmt.Sprint("n", i)
		e.createGrant(g)
	}
	const msg = "The request was rejected because a quota was exceeded."
	e.fail(fsm.OpCreateGrant, scA, fsm.CreateGrantCmd{Grant: e.newGrant(scA, "k", gid(3), "app", "GenerateMac")}, fsm.CodeLimitExceeded, msg)
	if pe := fsm.CheckGrantQuota(e.f.GrantCount(scA, "k")); pe == nil || pe.Code != fsm.CodeLimitExceeded || pe.Message != msg {
		t.Fatalf("CheckGrantQuota = %v", pe)
	}
	// A Name retry at the quota still returns its grant.
	retry := e.newGrant(scA, "k", gid(4), "app", "GenerateMac")
	retry.Name = "n1"
	if got := e.createGrant(retry); got.GrantID != gid(1) {
		t.Fatalf("retry at quota returned %s", got.GrantID)
	}
	// The quota is per key, and counts active grants only.
	e.createGrant(e.newGrant(scA, "k2", gid(5), "app", "GenerateMac"))
	e.ok(fsm.OpRevokeGrant, scA, fsm.GrantCmd{KeyID: "k", GrantID: gid(0)})
	e.createGrant(e.newGrant(scA, "k", gid(6), "app", "GenerateMac"))
	e.fail(fsm.OpCreateGrant, scA, fsm.CreateGrantCmd{Grant: e.newGrant(scA, "k", gid(7), "app", "GenerateMac")}, fsm.CodeLimitExceeded, msg)
}

func TestRetireRevokeGrant(t *testing.T) {
	e := newEnv(t)
	e.create(e.hmacKey(scA, "k"))
	e.create(e.hmacKey(scA, "k2"))
	for i := range 4 {
		g := e.newGrant(scA, "k", gid(i), "app", "GenerateMac")
		g.RetiringPrincipal = principal(scA, "admin")
		g.Name = "same"
		g.Operations = append(g.Operations, fmt.Sprint("op", i)) // distinct params
		e.createGrant(g)
	}
	e.createGrant(e.newGrant(scA, "k2", gid(10), "app", "GenerateMac"))

	e.now = t0 + 100
	r := e.ok(fsm.OpRetireGrant, scA, fsm.GrantCmd{KeyID: "k", GrantID: gid(1)})
	if r.Grant == nil || r.Grant.RetiredAt != t0+100 || r.Grant.RetiredBy != fsm.RetiredByRetire || r.Grant.Active() {
		t.Fatalf("RetireGrant result %+v", r.Grant)
	}
	e.now = t0 + 200
	r = e.ok(fsm.OpRevokeGrant, scA, fsm.GrantCmd{KeyID: "k", GrantID: gid(2)})
	if r.Grant.RetiredAt != t0+200 || r.Grant.RetiredBy != fsm.RetiredByRevoke {
		t.Fatalf("RevokeGrant result %+v", r.Grant)
	}
	if g, ok := e.f.Grant(scA, "k", gid(1)); !ok || g.RetiredAt != t0+100 || g.CreationDate != t0 {
		t.Fatalf("tombstone = %+v %v", g, ok)
	}
	if l, _ := e.f.ListGrants(scA, "k", "", 0, "", ""); !slices.Equal(grantIDs(l), []string{gid(0), gid(3)}) {
		t.Fatalf("ListGrants = %v", grantIDs(l))
	}
	if l, _ := e.f.ListGrants(scA, "k", "", 0, gid(1), ""); l != nil {
		t.Fatalf("ListGrants by retired id = %v", l)
	}
	if l, _ := e.f.ListRetirableGrants(scA, principal(scA, "admin"), "", 0); !slices.Equal(grantIDs(l), []string{gid(0), gid(3)}) {
		t.Fatalf("ListRetirableGrants = %v", grantIDs(l))
	}
	l := e.f.GrantsFor(scA, "k", principal(scA, "app"))
	if !slices.Equal(grantIDs(l), []string{gid(0), gid(1), gid(2), gid(3)}) || l[1].RetiredAt == 0 || l[0].RetiredAt != 0 {
		t.Fatalf("GrantsFor = %+v", l)
	}
	if n := e.f.GrantCount(scA, "k"); n != 2 {
		t.Fatalf("GrantCount = %d", n)
	}
	if ts, ok := e.f.OldestTombstone(); !ok || ts != t0+100 {
		t.Fatalf("OldestTombstone = %d %v", ts, ok)
	}

	// Gone from the API's view: retire/revoke again, unknown ids, another
	// key's grant.
	const notFound = "Grant ID not found"
	for _, op := range []fsm.Op{fsm.OpRetireGrant, fsm.OpRevokeGrant} {
		e.fail(op, scA, fsm.GrantCmd{KeyID: "k", GrantID: gid(1)}, fsm.CodeNotFound, notFound)
		e.fail(op, scA, fsm.GrantCmd{KeyID: "k", GrantID: gid(2)}, fsm.CodeNotFound, notFound)
		e.fail(op, scA, fsm.GrantCmd{KeyID: "k", GrantID: gid(99)}, fsm.CodeNotFound, notFound)
		e.fail(op, scA, fsm.GrantCmd{KeyID: "k2", GrantID: gid(0)}, fsm.CodeNotFound, notFound)
		e.fail(op, scB, fsm.GrantCmd{KeyID: "k", GrantID: gid(0)}, fsm.CodeNotFound, "Key '"+arn(scB, "k")+"' does not exist")
		e.fail(op, scA, fsm.GrantCmd{KeyID: "k"}, fsm.CodeInternal, "")
		e.fail(op, scA, fsm.GrantCmd{GrantID: gid(0)}, fsm.CodeInternal, "")
		e.applyRaw(encode(t, op, 0, scA, fsm.GrantCmd{KeyID: "k", GrantID: gid(0)}))
		if g, _ := e.f.Grant(scA, "k", gid(0)); !g.Active() {
			t.Fatal("retire at time 0 applied")
		}
	}

	// Allowed in every key state.
	e.ok(fsm.OpDisableKey, scA, fsm.KeyCmd{KeyID: "k"})
	e.ok(fsm.OpRetireGrant, scA, fsm.GrantCmd{KeyID: "k", GrantID: gid(0)})
	e.ok(fsm.OpScheduleKeyDeletion, scA, fsm.ScheduleKeyDeletionCmd{KeyID: "k", PendingWindowInDays: 7, DeletionDate: e.now + 7*day})
	e.ok(fsm.OpRevokeGrant, scA, fsm.GrantCmd{KeyID: "k", GrantID: gid(3)})
	e.create(e.externalKey(scA, "ext"))
	e.ok(fsm.OpCancelKeyDeletion, scA, fsm.KeyCmd{KeyID: "k"})
	if n := e.f.GrantCount(scA, "k"); n != 0 {
		t.Fatalf("GrantCount = %d", n)
	}
	if l, more := e.f.ListRetirableGrants(scA, principal(scA, "admin"), "", 0); l != nil || more {
		t.Fatalf("ListRetirableGrants = %v", l)
	}
}

func TestPurgeGrantTombstones(t *testing.T) {
	e := newEnv(t)
	e.create(e.hmacKey(scA, "k"))
	e.create(e.hmacKey(scB, "k"))
	for i := range 4 {
		e.createGrant(e.newGrant(scA, "k", gid(i), fmt.Sprint("app", i%2), "GenerateMac"))
		e.createGrant(e.newGrant(scB, "k", gid(i), "app", "GenerateMac"))
	}
	if _, ok := e.f.OldestTombstone(); ok {
		t.Fatal("tombstone before any retire")
	}
	// Purging nothing is fine.
	e.ok(fsm.OpPurgeGrantTombstones, scA, fsm.PurgeCmd{Before: e.now})

	retire := func(sc fsm.Scope, i int, at int64) {
		e.now = at
		e.ok(fsm.OpRetireGrant, sc, fsm.GrantCmd{KeyID: "k", GrantID: gid(i)})
	}
	retire(scA, 0, t0+10)
	retire(scA, 1, t0+20)
	retire(scB, 2, t0+15)
	retire(scA, 2, t0+30)
	if ts, _ := e.f.OldestTombstone(); ts != t0+10 {
		t.Fatalf("OldestTombstone = %d", ts)
	}

	e.now = t0 + 100
	// A purge of the future is a proposer bug.
	e.fail(fsm.OpPurgeGrantTombstones, scA, fsm.PurgeCmd{Before: e.now + 1}, fsm.CodeInternal, "")
	// Before is exclusive; every scope is purged, whatever the command's.
	e.ok(fsm.OpPurgeGrantTombstones, scB, fsm.PurgeCmd{Before: t0 + 20})
	for _, c := range []struct {
		sc   fsm.Scope
		i    int
		kept bool
	}{{scA, 0, false}, {scB, 2, false}, {scA, 1, true}, {scA, 2, true}, {scA, 3, true}, {scB, 0, true}} {
		if _, ok := e.f.Grant(c.sc, "k", gid(c.i)); ok != c.kept {
			t.Errorf("%s grant %d kept=%v", c.sc.Region, c.i, ok)
		}
	}
	if ts, _ := e.f.OldestTombstone(); ts != t0+20 {
		t.Fatalf("OldestTombstone = %d", ts)
	}
	if l := e.f.GrantsFor(scA, "k", principal(scA, "app0")); !slices.Equal(grantIDs(l), []string{gid(2)}) {
		t.Fatalf("GrantsFor app0 = %v", grantIDs(l))
	}
	if l := e.f.GrantsFor(scA, "k", principal(scA, "app1")); !slices.Equal(grantIDs(l), []string{gid(1), gid(3)}) {
		t.Fatalf("GrantsFor app1 = %v", grantIDs(l))
	}
	// A purged grant id is free again (it was AWS-random anyway).
	e.createGrant(e.newGrant(scA, "k", gid(0), "app0", "VerifyMac"))

	e.ok(fsm.OpPurgeGrantTombstones, scA, fsm.PurgeCmd{Before: e.now})
	if _, ok := e.f.OldestTombstone(); ok {
		t.Fatal("tombstones left after a full purge")
	}
	if l := e.f.GrantsFor(scA, "k", principal(scA, "app1")); !slices.Equal(grantIDs(l), []string{gid(3)}) {
		t.Fatalf("GrantsFor app1 = %v", grantIDs(l))
	}
	if n := e.f.GrantCount(scA, "k"); n != 2 {
		t.Fatalf("GrantCount = %d", n)
	}
	// A key left with only tombstones, all purged, holds nothing.
	e.now = t0 + 200
	for _, i := range []int{0, 3} {
		e.ok(fsm.OpRetireGrant, scA, fsm.GrantCmd{KeyID: "k", GrantID: gid(i)})
	}
	e.now = t0 + 300
	e.ok(fsm.OpPurgeGrantTombstones, scA, fsm.PurgeCmd{Before: e.now})
	if l := e.f.GrantsFor(scA, "k", principal(scA, "app1")); l != nil {
		t.Fatalf("GrantsFor = %v", l)
	}
	if !strings.Contains(string(snapshotBytes(t, e.f)), `"grants":[{"account":"`+scB.Account) {
		t.Fatal("snapshot lost scB's grants")
	}
}

func TestDeleteKeyRemovesGrants(t *testing.T) {
	e := newEnv(t)
	e.create(e.hmacKey(scA, "k1"))
	e.create(e.hmacKey(scA, "k2"))
	admin := principal(scA, "admin")
	for i, key := range []string{"k1", "k1", "k1", "k2"} {
		g := e.newGrant(scA, key, gid(i), "app", "GenerateMac")
		g.RetiringPrincipal = admin
		e.createGrant(g)
	}
	e.now = t0 + 1
	e.ok(fsm.OpRetireGrant, scA, fsm.GrantCmd{KeyID: "k1", GrantID: gid(0)})
	e.ok(fsm.OpScheduleKeyDeletion, scA, fsm.ScheduleKeyDeletionCmd{KeyID: "k1", PendingWindowInDays: 7, DeletionDate: e.now + 7*day})
	// Grants stay while the key is pending deletion.
	if n := e.f.GrantCount(scA, "k1"); n != 2 {
		t.Fatalf("GrantCount = %d", n)
	}
	e.now += 7 * day
	e.ok(fsm.OpDeleteKey, scA, fsm.KeyCmd{KeyID: "k1"})

	for i := range 3 {
		if _, ok := e.f.Grant(scA, "k1", gid(i)); ok {
			t.Fatalf("grant %d survived its key", i)
		}
	}
	if e.f.GrantCount(scA, "k1") != 0 || e.f.GrantsFor(scA, "k1", principal(scA, "app")) != nil {
		t.Fatal("grant indexes still hold the deleted key")
	}
	if _, ok := e.f.OldestTombstone(); ok {
		t.Fatal("tombstone survived its key")
	}
	if l, _ := e.f.ListRetirableGrants(scA, admin, "", 0); !slices.Equal(grantIDs(l), []string{gid(3)}) {
		t.Fatalf("ListRetirableGrants = %v", grantIDs(l))
	}
	if _, ok := e.f.Grant(scA, "k2", gid(3)); !ok {
		t.Fatal("grant of another key deleted")
	}
	// A key re-created with the same id starts without grants, and a restore
	// of this state agrees.
	e.create(e.hmacKey(scA, "k1"))
	if e.f.GrantCount(scA, "k1") != 0 {
		t.Fatal("re-created key inherited grants")
	}
	e.createGrant(e.newGrant(scA, "k1", gid(0), "app", "GenerateMac"))
	f2 := newEnv(t)
	restore(t, f2.f, snapshotBytes(t, e.f))
	if f2.f.Digest() != e.f.Digest() {
		t.Fatal("restore differs")
	}
}

func TestListGrantsPagination(t *testing.T) {
	e := newEnv(t)
	e.create(e.hmacKey(scA, "k"))
	e.create(e.hmacKey(scA, "k2"))
	admin := principal(scA, "admin")
	// Creation dates collide in pairs and run against the id order, so the
	// listing order (CreationDate, GrantID) differs from id order.
	var want []string
	for i := range 10 {
		e.now = t0 + int64(10-i/2)
		g := e.newGrant(scA, "k", gid(i), fmt.Sprint("app", i%3), "GenerateMac")
		if i%2 == 0 {
			g.RetiringPrincipal = admin
		}
		e.createGrant(g)
	}
	for d := int64(6); d <= 10; d++ { // by date, then by id
		for i := range 10 {
			if int64(10-i/2) == d {
				want = append(want, gid(i))
			}
		}
	}
	all, more := e.f.ListGrants(scA, "k", "", 0, "", "")
	if more || !slices.Equal(grantIDs(all), want) {
		t.Fatalf("ListGrants = %v\nwant %v", grantIDs(all), want)
	}
	// Pages of 3 via the cursor reproduce the full listing.
	page := func(limit int, list func(after string, limit int) ([]fsm.Grant, bool)) []string {
		var got []string
		after := ""
		for n := 0; ; n++ {
			p, more := list(after, limit)
			if len(p) > limit || (more && len(p) != limit) || n > 20 {
				t.Fatalf("page of %d with more=%v", len(p), more)
			}
			got = append(got, grantIDs(p)...)
			if !more {
				return got
			}
			after = fsm.GrantCursor(p[len(p)-1])
		}
	}
	listAll := func(after string, limit int) ([]fsm.Grant, bool) {
		return e.f.ListGrants(scA, "k", after, limit, "", "")
	}
	for _, limit := range []int{1, 3, 5, 10} {
		if got := page(limit, listAll); !slices.Equal(got, want) {
			t.Fatalf("limit %d: %v", limit, got)
		}
	}
	// Grantee filter.
	var want1 []string
	for _, g := range all {
		if g.GranteePrincipal == principal(scA, "app1") {
			want1 = append(want1, g.GrantID)
		}
	}
	byGrantee := func(after string, limit int) ([]fsm.Grant, bool) {
		return e.f.ListGrants(scA, "k", after, limit, "", principal(scA, "app1"))
	}
	if got := page(1, byGrantee); !slices.Equal(got, want1) || len(want1) != 3 {
		t.Fatalf("by grantee: %v want %v", got, want1)
	}
	// Grant id filter (with and without a matching grantee).
	if l, more := e.f.ListGrants(scA, "k", "", 1, gid(4), ""); more || !slices.Equal(grantIDs(l), []string{gid(4)}) {
		t.Fatalf("by id = %v", grantIDs(l))
	}
	if l, _ := e.f.ListGrants(scA, "k", "", 0, gid(4), principal(scA, "app0")); l != nil {
		t.Fatalf("by id and other grantee = %v", grantIDs(l))
	}
	if l, _ := e.f.ListGrants(scA, "k2", "", 0, gid(4), ""); l != nil {
		t.Fatal("grant listed under another key")
	}
	// A cursor stays valid when its grant is retired meanwhile, and the
	// retired grants are skipped in the grantee listing.
	first, _ := e.f.ListGrants(scA, "k", "", 3, "", "")
	cur := fsm.GrantCursor(first[2])
	e.ok(fsm.OpRetireGrant, scA, fsm.GrantCmd{KeyID: "k", GrantID: first[2].GrantID})
	e.ok(fsm.OpRetireGrant, scA, fsm.GrantCmd{KeyID: "k", GrantID: want1[1]})
	rest, _ := e.f.ListGrants(scA, "k", cur, 0, "", "")
	wantRest := slices.DeleteFunc(slices.Clone(want[3:]), func(id string) bool { return id == want1[1] })
	if !slices.Equal(grantIDs(rest), wantRest) {
		t.Fatalf("after retired cursor: %v want %v", grantIDs(rest), wantRest)
	}
	if got := page(1, byGrantee); !slices.Equal(got, []string{want1[0], want1[2]}) {
		t.Fatalf("by grantee after retire: %v", got)
	}
	// Bad cursors give nothing; ParseGrantCursor tells the API.
	for _, bad := range []string{"x", "12", "12/", "/abc", "+12/abc", "012/abc", "1.5/abc", "99999999999999999999/abc"} {
		if l, more := e.f.ListGrants(scA, "k", bad, 0, "", ""); l != nil || more {
			t.Errorf("cursor %q listed %v", bad, grantIDs(l))
		}
		if _, _, ok := fsm.ParseGrantCursor(bad); ok {
			t.Errorf("ParseGrantCursor(%q) ok", bad)
		}
	}
	if c, id, ok := fsm.ParseGrantCursor(fsm.GrantCursor(fsm.Grant{CreationDate: -7, GrantID: "a/b"})); !ok || c != -7 || id != "a/b" {
		t.Fatalf("ParseGrantCursor round trip: %d %q %v", c, id, ok)
	}
	// Unknown key or scope.
	if l, more := e.f.ListGrants(scB, "k", "", 0, "", ""); l != nil || more {
		t.Fatal("other scope")
	}
	if l, more := e.f.ListGrants(scA, "none", "", 0, "", ""); l != nil || more {
		t.Fatal("unknown key")
	}

	// ListRetirableGrants spans keys, in (CreationDate, GrantID) order.
	e.now = t0 + 7
	g := e.newGrant(scA, "k2", gid(20), "app", "GenerateMac")
	g.RetiringPrincipal = admin
	e.createGrant(g)
	var active []fsm.Grant
	for _, key := range []string{"k", "k2"} {
		l, _ := e.f.ListGrants(scA, key, "", 0, "", "")
		active = append(active, l...)
	}
	slices.SortFunc(active, func(a, b fsm.Grant) int {
		if a.CreationDate != b.CreationDate {
			return int(a.CreationDate - b.CreationDate)
		}
		return cmpStr(a.GrantID, b.GrantID)
	})
	var wantR []string
	for _, g := range active {
		if g.RetiringPrincipal == admin {
			wantR = append(wantR, g.GrantID)
		}
	}
	if len(wantR) < 4 || !slices.Contains(wantR, gid(20)) || wantR[len(wantR)-1] == gid(20) {
		t.Fatalf("test setup: %v", wantR)
	}
	retirable := func(after string, limit int) ([]fsm.Grant, bool) {
		return e.f.ListRetirableGrants(scA, admin, after, limit)
	}
	if got := page(2, retirable); !slices.Equal(got, wantR) {
		t.Fatalf("ListRetirableGrants = %v\nwant %v", got, wantR)
	}
	if l, more := e.f.ListRetirableGrants(scA, "", "", 0); l != nil || more {
		t.Fatal("empty retiring principal listed grants")
	}
	if l, more := e.f.ListRetirableGrants(scB, admin, "", 0); l != nil || more {
		t.Fatal("other scope listed grants")
	}
}

// TestClusterSecret: first proposal wins, the plaintext is unsealed on apply
// and restore, and never appears in a snapshot or result.
func TestClusterSecret(t *testing.T) {
	e := newEnv(t)
	if e.f.HasClusterSecret() {
		t.Fatal("new FSM has a secret")
	}
	if s, ok := e.f.ClusterSecret(); ok || s != nil {
		t.Fatal("ClusterSecret on empty state")
	}
	secret := engine.NewGrantTokenSecret()
	sealed, err := e.sealer.Seal(secret, []byte(fsm.ClusterSecretAAD))
	if err != nil {
		t.Fatal(err)
	}
	e.fail(fsm.OpInitClusterSecret, scA, fsm.ClusterSecretCmd{}, fsm.CodeInternal, "")
	r := e.ok(fsm.OpInitClusterSecret, fsm.Scope{}, fsm.ClusterSecretCmd{Sealed: sealed})
	assertNoSecret(t, "InitClusterSecret result", []byte(mustJSON(t, r)), secret)
	if got, ok := e.f.ClusterSecret(); !ok || !bytes.Equal(got, secret) || !e.f.HasClusterSecret() || e.f.ClusterSecretErr() != "" {
		t.Fatalf("ClusterSecret = %x %v", got, ok)
	}

	// A second (racing) proposal is refused and changes nothing.
	other, _ := e.sealer.Seal(engine.NewGrantTokenSecret(), []byte(fsm.ClusterSecretAAD))
	e.fail(fsm.OpInitClusterSecret, scA, fsm.ClusterSecretCmd{Sealed: other}, fsm.CodeInternal, "cluster secret already initialised")
	if got, _ := e.f.ClusterSecret(); !bytes.Equal(got, secret) {
		t.Fatal("second proposal replaced the secret")
	}

	snap := snapshotBytes(t, e.f)
	assertNoSecret(t, "snapshot", snap, secret)
	if !bytes.Contains(snap, []byte(`"cluster_secret":`)) {
		t.Fatal("snapshot lacks the sealed secret")
	}

	// Restore unseals it.
	e2 := newEnv(t)
	restore(t, e2.f, snap)
	if got, ok := e2.f.ClusterSecret(); !ok || !bytes.Equal(got, secret) {
		t.Fatal("restore did not unseal the secret")
	}
	// The secret is part of the replicated state (digest) ...
	if e2.f.Digest() != e.f.Digest() || newEnv(t).f.Digest() == e.f.Digest() {
		t.Fatal("digest ignores the secret")
	}
	// ... and a restore without one clears it.
	restore(t, e2.f, snapshotBytes(t, newEnv(t).f))
	if e2.f.HasClusterSecret() {
		t.Fatal("restore kept the old secret")
	}
	// A version 1 snapshot (before grants) restores, without a secret.
	restore(t, e2.f, []byte(`{"version":1,"index":3,"keys":[],"aliases":[]}`))
	if e2.f.HasClusterSecret() || e2.f.AppliedIndex() != 3 {
		t.Fatal("version 1 snapshot")
	}

	// A node with another seal key holds the same replicated state but no
	// usable secret, and says why without showing it.
	wrong := newSealer(t, 1)
	bad := fsm.New(fsm.Options{Unseal: wrong.Open})
	restore(t, bad, snap)
	if got, ok := bad.ClusterSecret(); ok || got != nil || !bad.HasClusterSecret() || bad.ClusterSecretErr() == "" {
		t.Fatal("wrong seal key: secret usable")
	}
	if bad.Digest() != e.f.Digest() {
		t.Fatal("unseal failure changed the replicated state")
	}
	assertNoSecret(t, "ClusterSecretErr", []byte(bad.ClusterSecretErr()), secret)
	badEnv := &env{t: t, f: fsm.New(fsm.Options{Unseal: wrong.Open}), sealer: e.sealer, now: t0}
	badEnv.ok(fsm.OpInitClusterSecret, scA, fsm.ClusterSecretCmd{Sealed: sealed})
	if _, ok := badEnv.f.ClusterSecret(); ok || badEnv.f.ClusterSecretErr() == "" {
		t.Fatal("apply with wrong seal key")
	}
	// Material sealed for a key is not a cluster secret (AAD binding).
	k := e.hmacKey(scA, "k")
	mis := newEnv(t)
	mis.sealer = e.sealer
	mis.ok(fsm.OpInitClusterSecret, scA, fsm.ClusterSecretCmd{Sealed: k.SealedMaterial})
	if _, ok := mis.f.ClusterSecret(); ok {
		t.Fatal("key material opened as the cluster secret")
	}
	// No Unseal: nothing, no error.
	none := fsm.New(fsm.Options{})
	restore(t, none, snap)
	if _, ok := none.ClusterSecret(); ok || none.ClusterSecretErr() != "" || !none.HasClusterSecret() {
		t.Fatal("nil Unseal")
	}
}

func TestGrantSnapshotRestore(t *testing.T) {
	src := newEnv(t)
	src.create(src.hmacKey(scA, "keep"))
	src.create(src.hmacKey(scB, "keep"))
	admin := principal(scA, "admin")
	for i := range 5 {
		src.now = t0 + int64(5-i)
		g := src.newGrant(scA, "keep", gid(i), fmt.Sprint("app", i%2), "GenerateMac", "VerifyMac", fmt.Sprint("op", i))
		g.RetiringPrincipal = admin
		g.Name = fmt.Sprint("n", i%2)
		g.Constraints = &fsm.GrantConstraints{SourceArn: "arn:aws:s3:::b", EncryptionContextSubset: map[string]string{"z": "1", "a": "2"}}
		src.createGrant(g)
	}
	src.createGrant(src.newGrant(scB, "keep", gid(0), "app0", "GenerateMac"))
	src.now = t0 + 50
	src.ok(fsm.OpRevokeGrant, scA, fsm.GrantCmd{KeyID: "keep", GrantID: gid(3)})
	snap := snapshotBytes(t, src.f)
	if !bytes.Contains(snap, []byte(`"EncryptionContextSubset":{"a":"2","z":"1"}`)) {
		t.Fatalf("constraints not encoded canonically: %s", snap)
	}

	dst := newEnv(t)
	dst.create(dst.hmacKey(scA, "keep"))
	dst.create(dst.hmacKey(scA, "stale"))
	dst.createGrant(dst.newGrant(scA, "stale", gid(7), "app0", "GenerateMac"))
	dst.createGrant(dst.newGrant(scA, "keep", gid(8), "app0", "GenerateMac"))
	dst.ok(fsm.OpRetireGrant, scA, fsm.GrantCmd{KeyID: "keep", GrantID: gid(8)})
	restore(t, dst.f, snap)

	if _, ok := dst.f.Grant(scA, "keep", gid(8)); ok {
		t.Fatal("restore kept a stale grant")
	}
	if ts, ok := dst.f.OldestTombstone(); !ok || ts != t0+50 {
		t.Fatalf("OldestTombstone = %d", ts)
	}
	if !bytes.Equal(snapshotBytes(t, dst.f), snap) || dst.f.Digest() != src.f.Digest() {
		t.Fatal("snapshot -> restore -> snapshot differs")
	}
	// Every query agrees with the source.
	q := func(f *fsm.FSM) string {
		a, _ := f.ListGrants(scA, "keep", "", 0, "", "")
		b, _ := f.ListRetirableGrants(scA, admin, "", 2)
		return mustJSON(t, []any{a, b, f.GrantsFor(scA, "keep", principal(scA, "app1")), f.GrantsFor(scB, "keep", principal(scB, "app0")),
			f.GrantCount(scA, "keep")})
	}
	if q(src.f) != q(dst.f) {
		t.Fatalf("queries differ after restore:\n%s\n%s", q(src.f), q(dst.f))
	}
	// Name idempotency works on restored state.
	g := dst.newGrant(scA, "keep", gid(30), "app0", "op4", "VerifyMac", "GenerateMac")
	g.RetiringPrincipal, g.Name = admin, "n0"
	g.Constraints = &fsm.GrantConstraints{SourceArn: "arn:aws:s3:::b", EncryptionContextSubset: map[string]string{"a": "2", "z": "1"}}
	if got := dst.createGrant(g); got.GrantID != gid(4) {
		t.Fatalf("idempotent retry after restore returned %s", got.GrantID)
	}

	// Bad grants in a snapshot are refused and change nothing.
	before := dst.f.Digest()
	key := `{"account":"a","region":"r","id":"k"}`
	for name, b := range map[string]string{
		"no key":   `{"version":2,"keys":[],"aliases":[],"grants":[{"account":"a","region":"r","key_id":"k","grant_id":"g"}]}`,
		"other":    `{"version":2,"keys":[` + key + `],"aliases":[],"grants":[{"account":"a","region":"r","key_id":"x","grant_id":"g"}]}`,
		"no id":    `{"version":2,"keys":[` + key + `],"aliases":[],"grants":[{"account":"a","region":"r","key_id":"k"}]}`,
		"dup id":   `{"version":2,"keys":[` + key + `],"aliases":[],"grants":[{"account":"a","region":"r","key_id":"k","grant_id":"g"},{"account":"a","region":"r","key_id":"k","grant_id":"g"}]}`,
		"bad type": `{"version":2,"keys":[],"aliases":[],"grants":{}}`,
	} {
		if err := dst.f.Restore(&readCloser{Reader: bytes.NewReader([]byte(b))}); err == nil {
			t.Errorf("%s: Restore succeeded", name)
		}
		if dst.f.Digest() != before {
			t.Errorf("%s: failed Restore changed the state", name)
		}
	}
}

func TestGrantSnapshotIsPointInTime(t *testing.T) {
	e := newEnv(t)
	e.create(e.hmacKey(scA, "k"))
	e.createGrant(e.newGrant(scA, "k", gid(1), "app", "GenerateMac"))
	want := snapshotBytes(t, e.f)
	snap, err := e.f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	e.now++
	e.ok(fsm.OpRetireGrant, scA, fsm.GrantCmd{KeyID: "k", GrantID: gid(1)})
	e.createGrant(e.newGrant(scA, "k", gid(2), "app", "GenerateMac"))
	sealed, _ := e.sealer.Seal([]byte("0123456789abcdef0123456789abcdef"), []byte(fsm.ClusterSecretAAD))
	e.ok(fsm.OpInitClusterSecret, scA, fsm.ClusterSecretCmd{Sealed: sealed})
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sink.Bytes(), want) {
		t.Fatalf("snapshot saw later changes:\n%s\nwant\n%s", sink.Bytes(), want)
	}
}

func TestGrantCloneAndResultCopies(t *testing.T) {
	e := newEnv(t)
	e.create(e.hmacKey(scA, "k"))
	g := e.newGrant(scA, "k", gid(1), "app", "GenerateMac")
	g.Constraints = &fsm.GrantConstraints{EncryptionContextEquals: map[string]string{"a": "b"}}
	r := e.createGrant(g)
	// The command's slices and maps are not retained.
	g.Operations[0] = "changed"
	g.Constraints.EncryptionContextEquals["a"] = "changed"
	s, _ := e.f.Grant(scA, "k", gid(1))
	if s.Operations[0] != "GenerateMac" || s.Constraints.EncryptionContextEquals["a"] != "b" || r.Operations[0] != "GenerateMac" {
		t.Fatal("state shares the command's data")
	}
	c := s.Clone()
	c.Operations[0] = "x"
	c.Constraints.EncryptionContextEquals["a"] = "x"
	if s2, _ := e.f.Grant(scA, "k", gid(1)); s2.Operations[0] != "GenerateMac" || s2.Constraints.EncryptionContextEquals["a"] != "b" {
		t.Fatal("Clone shares data")
	}
	if (fsm.Grant{}).Clone().Constraints != nil {
		t.Fatal("Clone of nil constraints")
	}
}

// TestGrantConcurrentReaders runs the grant queries (and snapshots) while
// one writer creates, retires, purges and deletes, as Raft does. Run with
// -race.
func TestGrantConcurrentReaders(t *testing.T) {
	e := newEnv(t)
	const nKeys = 4
	for i := range nKeys {
		e.create(e.hmacKey(scA, fmt.Sprint("k", i)))
	}
	admin := principal(scA, "admin")
	var stop atomic.Bool
	var wg sync.WaitGroup
	var reads atomic.Int64
	errs := make(chan string, 16)
	report := func(s string) {
		select {
		case errs <- s:
		default:
		}
	}
	sorted := func(l []fsm.Grant) bool {
		return slices.IsSortedFunc(l, func(a, b fsm.Grant) int {
			if a.CreationDate != b.CreationDate {
				return cmpStr(fmt.Sprintf("%020d", a.CreationDate), fmt.Sprintf("%020d", b.CreationDate))
			}
			return cmpStr(a.GrantID, b.GrantID)
		})
	}
	for r := range 6 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				key := fmt.Sprint("k", (r+i)%nKeys)
				switch i % 6 {
				case 0:
					l := e.f.GrantsFor(scA, key, principal(scA, "app"))
					if !sorted(l) {
						report("GrantsFor not sorted")
					}
					for _, g := range l {
						if g.KeyID != key || g.GranteePrincipal != principal(scA, "app") || len(g.Operations) == 0 {
							report("GrantsFor returned a foreign grant")
						}
					}
				case 1:
					l, _ := e.f.ListGrants(scA, key, "", 5, "", "")
					for _, g := range l {
						if !g.Active() {
							report("ListGrants returned a tombstone")
						}
					}
				case 2:
					l, _ := e.f.ListRetirableGrants(scA, admin, "", 0)
					if !sorted(l) {
						report("ListRetirableGrants not sorted")
					}
				case 3:
					e.f.Digest()
					e.f.OldestTombstone()
				case 4:
					snapshotBytes(t, e.f)
				case 5:
					_ = e.f.GrantCount(scA, key)
					e.f.Grant(scA, key, gid(i%50))
					e.f.ClusterSecret()
				}
				reads.Add(1)
			}
		})
	}
	for i := range 800 {
		key := fmt.Sprint("k", i%nKeys)
		e.now += 10
		switch i % 5 {
		case 0, 1:
			g := e.newGrant(scA, key, gid(i), "app", "GenerateMac")
			if i%3 == 0 {
				g.RetiringPrincipal = admin
			}
			e.apply(fsm.OpCreateGrant, scA, fsm.CreateGrantCmd{Grant: g})
		case 2:
			e.apply(fsm.OpRetireGrant, scA, fsm.GrantCmd{KeyID: key, GrantID: gid(i - 2)})
		case 3:
			e.apply(fsm.OpPurgeGrantTombstones, scA, fsm.PurgeCmd{Before: e.now - 200})
		case 4:
			if i%100 == 4 {
				// The reaper deletes a key (and its grants); it comes back.
				e.apply(fsm.OpScheduleKeyDeletion, scA, fsm.ScheduleKeyDeletionCmd{KeyID: key, DeletionDate: e.now})
				e.apply(fsm.OpDeleteKey, scA, fsm.KeyCmd{KeyID: key})
				e.create(e.hmacKey(scA, key))
			}
		}
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for s := range errs {
		t.Error(s)
	}
	if reads.Load() == 0 {
		t.Fatal("readers did not run")
	}
}

// BenchmarkGrantsFor measures the per-request lookup the API does for a
// non-owner caller, with many grants on the key.
func BenchmarkGrantsFor(b *testing.B) {
	e := newEnv(b)
	e.create(e.hmacKey(scA, "k"))
	for i := range 5000 {
		e.createGrant(e.newGrant(scA, "k", gid(i), fmt.Sprint("app", i%1000), "GenerateMac"))
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if len(e.f.GrantsFor(scA, "k", principal(scA, "app7"))) != 5 {
				b.Fatal("wrong grants")
			}
		}
	})
}

// TestGrantDeterminismLongLog replays a longer random log (so that grants
// are created, answered by Name, retired, revoked and purged many times) on
// two nodes with different seal keys and on a node that restores a mid-log
// snapshot: results and snapshots must agree byte for byte.
func TestGrantDeterminismLongLog(t *testing.T) {
	sealer := newSealer(t, 9)
	log := randomLog(t, sealer, 5, 1200)
	a, b, c := newEnv(t), newEnv(t), newEnv(t)
	b.sealer = newSealer(t, 3)
	okOps := map[fsm.Op]int{}
	idempotent := 0
	for i, entry := range log {
		ra, rb := a.applyRaw(entry), b.applyRaw(entry)
		if ja, jb := mustJSON(t, ra), mustJSON(t, rb); ja != jb {
			t.Fatalf("entry %d: results differ:\n%s\n%s", i, ja, jb)
		}
		if ra.Error == nil {
			var cmd fsm.Command
			if err := json.Unmarshal(entry, &cmd); err != nil {
				t.Fatal(err)
			}
			okOps[cmd.Op]++
			if cmd.Op == fsm.OpCreateGrant {
				var p fsm.CreateGrantCmd
				if err := json.Unmarshal(cmd.Payload, &p); err != nil {
					t.Fatal(err)
				}
				if ra.Grant.GrantID != p.Grant.GrantID {
					idempotent++
				}
			}
		}
		if i == 600 {
			restore(t, c.f, snapshotBytes(t, a.f))
			c.idx = a.f.AppliedIndex()
		} else if i > 600 {
			if rc := c.applyRaw(entry); mustJSON(t, rc) != mustJSON(t, ra) {
				t.Fatalf("entry %d: restored node's result differs", i)
			}
		}
	}
	t.Logf("applied %v; %d CreateGrant answered by Name", okOps, idempotent)
	for op, min := range map[fsm.Op]int{fsm.OpCreateGrant: 20, fsm.OpRetireGrant: 3, fsm.OpRevokeGrant: 3,
		fsm.OpPurgeGrantTombstones: 3, fsm.OpInitClusterSecret: 1} {
		if okOps[op] < min {
			t.Errorf("%s applied %d times, want at least %d", op, okOps[op], min)
		}
	}
	if okOps[fsm.OpInitClusterSecret] != 1 || idempotent == 0 {
		t.Errorf("secret installed %d times; %d idempotent creates", okOps[fsm.OpInitClusterSecret], idempotent)
	}
	sa := snapshotBytes(t, a.f)
	if !bytes.Equal(sa, snapshotBytes(t, b.f)) || !bytes.Equal(sa, snapshotBytes(t, c.f)) {
		t.Fatal("snapshots differ")
	}
	if !bytes.Contains(sa, []byte(`"grants":[`)) {
		t.Fatal("no grants in the final state")
	}
	if _, ok := a.f.ClusterSecret(); !ok {
		t.Fatal("node a cannot unseal the secret")
	}
	if _, ok := b.f.ClusterSecret(); ok || b.f.ClusterSecretErr() == "" {
		t.Fatal("node b (other seal key) unsealed the secret")
	}
}
