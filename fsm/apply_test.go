package fsm_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/keyraft/keyraft/fsm"
)

func TestCreateKey(t *testing.T) {
	e := newEnv(t)
	k := e.hmacKey(scA, "k1")
	k.Tags = []fsm.Tag{{Key: "z", Value: "1"}, {Key: "a", Value: "2"}, {Key: "z", Value: "3"}}
	r := e.ok(fsm.OpCreateKey, scA, fsm.CreateKeyCmd{Key: k})

	// Result.Key is the key without secrets.
	if r.Key == nil || r.Key.ID != "k1" || r.Key.ARN != arn(scA, "k1") || r.Key.State != fsm.StateEnabled {
		t.Fatalf("Result.Key = %+v", r.Key)
	}
	if r.Key.SealedMaterial != nil || r.Key.Import != nil || r.Key.Material != nil {
		t.Fatal("Result.Key carries secrets")
	}
	if bytes.Contains([]byte(mustJSON(t, r)), k.SealedMaterial[1:20]) {
		t.Fatal("encoded Result carries sealed material")
	}

	got := e.key(scA, "k1")
	if !bytes.Equal(got.Material, material("k1", 32)) || got.MaterialErr != "" {
		t.Fatalf("Material = %q, err %q", got.Material, got.MaterialErr)
	}
	wantTags := []fsm.Tag{{Key: "a", Value: "2"}, {Key: "z", Value: "3"}}
	if !slices.Equal(got.Tags, wantTags) || !slices.Equal(r.Key.Tags, wantTags) {
		t.Fatalf("tags = %v, want sorted and deduplicated %v", got.Tags, wantTags)
	}
	if got.Description != "key k1" || got.Policy != k.Policy || got.CreationDate != t0 || got.MaterialDigest != k.MaterialDigest {
		t.Fatalf("stored key differs: %+v", got)
	}

	// Key ids are unique per scope: a second CreateKey of k1 is refused.
	e.fail(fsm.OpCreateKey, scA, fsm.CreateKeyCmd{Key: e.hmacKey(scA, "k1")}, fsm.CodeInternal, "")
	// The same id in another scope is another key.
	e.create(e.hmacKey(scB, "k1"))
	if e.f.KeyCount() != 2 || e.f.ScopeKeyCount(scA) != 1 || e.f.ScopeKeyCount(scB) != 1 {
		t.Fatalf("KeyCount=%d", e.f.KeyCount())
	}
	if _, ok := e.f.Key(fsm.Scope{Account: scA.Account, Region: "eu-west-1"}, "k1"); ok {
		t.Fatal("key visible in another region")
	}

	// A payload whose key claims another scope is refused.
	wrong := e.hmacKey(scB, "k2")
	e.fail(fsm.OpCreateKey, scA, fsm.CreateKeyCmd{Key: wrong}, fsm.CodeInternal, "")
	// Missing id.
	e.fail(fsm.OpCreateKey, scA, fsm.CreateKeyCmd{}, fsm.CodeInternal, "")

	// Deterministic defaults: scope, ARN and state filled in.
	bare := fsm.Key{ID: "bare", Origin: fsm.OriginExternal, KeySpec: "HMAC_224", KeyUsage: "GENERATE_VERIFY_MAC"}
	e.ok(fsm.OpCreateKey, scA, fsm.CreateKeyCmd{Key: bare})
	b := e.key(scA, "bare")
	if b.Scope != scA || b.ARN != arn(scA, "bare") || b.State != fsm.StatePendingImport {
		t.Fatalf("defaults: %+v", b)
	}

	// Tag quota applies at creation too.
	many := e.hmacKey(scA, "many")
	for i := range fsm.MaxTagsPerKey + 1 {
		many.Tags = append(many.Tags, fsm.Tag{Key: fmt.Sprintf("t%02d", i)})
	}
	e.fail(fsm.OpCreateKey, scA, fsm.CreateKeyCmd{Key: many}, fsm.CodeTag, "Too many tags")
}

// reach creates key id in scA and drives it into state st through commands.
func (e *env) reach(id string, st fsm.KeyState) {
	e.t.Helper()
	switch st {
	case fsm.StateEnabled:
		e.create(e.hmacKey(scA, id))
	case fsm.StateDisabled:
		e.create(e.hmacKey(scA, id))
		e.ok(fsm.OpDisableKey, scA, fsm.KeyCmd{KeyID: id})
	case fsm.StatePendingDeletion:
		e.create(e.hmacKey(scA, id))
		e.ok(fsm.OpScheduleKeyDeletion, scA, fsm.ScheduleKeyDeletionCmd{KeyID: id, PendingWindowInDays: 7, DeletionDate: e.now + 7*day})
	case fsm.StatePendingImport:
		e.create(e.externalKey(scA, id))
	}
	if got := e.state(scA, id); got != st {
		e.t.Fatalf("reach %s: state %s", st, got)
	}
}

// TestKeyStateTable checks kms-api.md §3 for every management op and every
// state keyraft models, through Apply.
func TestKeyStateTable(t *testing.T) {
	const id = "k"
	a := arn(scA, id)
	pendDel := "KMSInvalidStateException|" + a + " is pending deletion."
	pendImp := "KMSInvalidStateException|" + a + " is pending import."
	notPend := "KMSInvalidStateException|" + a + " is not pending deletion."

	states := []fsm.KeyState{fsm.StateEnabled, fsm.StateDisabled, fsm.StatePendingDeletion, fsm.StatePendingImport}
	type row struct {
		op      fsm.Op
		payload func(e *env) any
		// want per state: "" = success, else "Code|Message".
		want map[fsm.KeyState]string
		// after: the state a successful op leaves (per state; absent = unchanged).
		after map[fsm.KeyState]fsm.KeyState
	}
	keyCmd := func(*env) any { return fsm.KeyCmd{KeyID: id} }
	rows := []row{
		{op: fsm.OpEnableKey, payload: keyCmd,
			want:  map[fsm.KeyState]string{fsm.StatePendingDeletion: pendDel, fsm.StatePendingImport: pendImp},
			after: map[fsm.KeyState]fsm.KeyState{fsm.StateDisabled: fsm.StateEnabled}},
		{op: fsm.OpDisableKey, payload: keyCmd,
			want:  map[fsm.KeyState]string{fsm.StatePendingDeletion: pendDel, fsm.StatePendingImport: pendImp},
			after: map[fsm.KeyState]fsm.KeyState{fsm.StateEnabled: fsm.StateDisabled}},
		{op: fsm.OpScheduleKeyDeletion,
			payload: func(e *env) any {
				return fsm.ScheduleKeyDeletionCmd{KeyID: id, PendingWindowInDays: 30, DeletionDate: e.now + 30*day}
			},
			want: map[fsm.KeyState]string{fsm.StatePendingDeletion: pendDel},
			after: map[fsm.KeyState]fsm.KeyState{fsm.StateEnabled: fsm.StatePendingDeletion, fsm.StateDisabled: fsm.StatePendingDeletion,
				fsm.StatePendingImport: fsm.StatePendingDeletion}},
		{op: fsm.OpCancelKeyDeletion, payload: keyCmd,
			want:  map[fsm.KeyState]string{fsm.StateEnabled: notPend, fsm.StateDisabled: notPend, fsm.StatePendingImport: notPend},
			after: map[fsm.KeyState]fsm.KeyState{fsm.StatePendingDeletion: fsm.StateDisabled}},
		{op: fsm.OpUpdateKeyDescription, payload: func(*env) any { return fsm.UpdateKeyDescriptionCmd{KeyID: id, Description: "new"} },
			want: map[fsm.KeyState]string{fsm.StatePendingDeletion: pendDel}},
		{op: fsm.OpTagResource, payload: func(*env) any { return fsm.TagResourceCmd{KeyID: id, Tags: []fsm.Tag{{Key: "k", Value: "v"}}} },
			want: map[fsm.KeyState]string{fsm.StatePendingDeletion: pendDel}},
		{op: fsm.OpUntagResource, payload: func(*env) any { return fsm.UntagResourceCmd{KeyID: id, TagKeys: []string{"k"}} },
			want: map[fsm.KeyState]string{fsm.StatePendingDeletion: pendDel}},
		{op: fsm.OpPutKeyPolicy, payload: func(*env) any { return fsm.PutKeyPolicyCmd{KeyID: id, Policy: "{\"new\":1}"} },
			want: map[fsm.KeyState]string{}},
		{op: fsm.OpCreateAlias, payload: func(*env) any { return fsm.AliasCmd{Name: "alias/new", TargetKeyID: id} },
			want: map[fsm.KeyState]string{fsm.StatePendingDeletion: pendDel}},
		{op: fsm.OpSetImportParameters,
			payload: func(e *env) any {
				return fsm.SetImportParametersCmd{KeyID: id, Import: fsm.ImportParams{TokenID: "tok", ValidTo: e.now + day}}
			},
			want: map[fsm.KeyState]string{
				fsm.StateEnabled:         "UnsupportedOperationException|" + a + " origin is AWS_KMS which is not valid for this operation.",
				fsm.StateDisabled:        "UnsupportedOperationException|" + a + " origin is AWS_KMS which is not valid for this operation.",
				fsm.StatePendingDeletion: "UnsupportedOperationException|" + a + " origin is AWS_KMS which is not valid for this operation.",
			}},
	}
	for _, rw := range rows {
		for _, st := range states {
			t.Run(string(rw.op)+"/"+string(st), func(t *testing.T) {
				e := newEnv(t)
				e.reach(id, st)
				before := e.key(scA, id)
				want := rw.want[st]
				if want != "" {
					code, msg, _ := cutString(want, "|")
					e.fail(rw.op, scA, rw.payload(e), code, msg)
					if got := e.key(scA, id); got.State != st {
						t.Fatalf("state %s after refusal", got.State)
					}
					// The exported pre-check gives the same answer.
					if pe := fsm.CheckOp(rw.op, &before); pe == nil || pe.Code != code || pe.Message != msg {
						t.Fatalf("CheckOp = %v, want %s", pe, want)
					}
					return
				}
				if pe := fsm.CheckOp(rw.op, &before); pe != nil {
					t.Fatalf("CheckOp = %v, want nil", pe)
				}
				r := e.ok(rw.op, scA, rw.payload(e))
				wantState, changed := rw.after[st]
				if !changed {
					wantState = st
				}
				if got := e.state(scA, id); got != wantState {
					t.Fatalf("state after %s = %s, want %s", rw.op, got, wantState)
				}
				if rw.op == fsm.OpCreateAlias {
					if r.Alias == nil || r.Alias.TargetKeyID != id {
						t.Fatalf("Result.Alias = %+v", r.Alias)
					}
				} else if r.Key == nil || r.Key.State != wantState {
					t.Fatalf("Result.Key = %+v", r.Key)
				}
			})
		}
	}
}

func cutString(s, sep string) (string, string, bool) {
	i := bytes.Index([]byte(s), []byte(sep))
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// TestMissingKey checks NotFoundException, with the ARN built from the
// command's scope, for every op that names a key.
func TestMissingKey(t *testing.T) {
	e := newEnv(t)
	e.create(e.hmacKey(scB, "ghost")) // exists, but in the other scope
	msg := "Key '" + arn(scA, "ghost") + "' does not exist"
	if msg != "Key 'arn:aws:kms:us-east-1:111122223333:key/ghost' does not exist" {
		t.Fatalf("KeyARN format: %s", msg)
	}
	for op, p := range map[fsm.Op]any{
		fsm.OpEnableKey:                 fsm.KeyCmd{KeyID: "ghost"},
		fsm.OpDisableKey:                fsm.KeyCmd{KeyID: "ghost"},
		fsm.OpScheduleKeyDeletion:       fsm.ScheduleKeyDeletionCmd{KeyID: "ghost", DeletionDate: t0},
		fsm.OpCancelKeyDeletion:         fsm.KeyCmd{KeyID: "ghost"},
		fsm.OpUpdateKeyDescription:      fsm.UpdateKeyDescriptionCmd{KeyID: "ghost"},
		fsm.OpTagResource:               fsm.TagResourceCmd{KeyID: "ghost", Tags: []fsm.Tag{{Key: "a"}}},
		fsm.OpUntagResource:             fsm.UntagResourceCmd{KeyID: "ghost", TagKeys: []string{"a"}},
		fsm.OpPutKeyPolicy:              fsm.PutKeyPolicyCmd{KeyID: "ghost", Policy: "{}"},
		fsm.OpSetImportParameters:       fsm.SetImportParametersCmd{KeyID: "ghost"},
		fsm.OpImportKeyMaterial:         fsm.ImportKeyMaterialCmd{KeyID: "ghost", TokenID: "t", SealedMaterial: []byte("x"), MaterialDigest: "d"},
		fsm.OpDeleteImportedKeyMaterial: fsm.KeyCmd{KeyID: "ghost"},
		fsm.OpDeleteKey:                 fsm.KeyCmd{KeyID: "ghost"},
		fsm.OpExpireKeyMaterial:         fsm.KeyCmd{KeyID: "ghost"},
		fsm.OpCreateAlias:               fsm.AliasCmd{Name: "alias/x", TargetKeyID: "ghost"},
	} {
		t.Run(string(op), func(t *testing.T) { e.t = t; e.fail(op, scA, p, fsm.CodeNotFound, msg) })
	}
	if got := fsm.ErrNotFound(arn(scA, "ghost")); got.Code != fsm.CodeNotFound || got.Message != msg {
		t.Fatalf("ErrNotFound = %v", got)
	}
}

func TestScheduleAndCancelDeletion(t *testing.T) {
	e := newEnv(t)
	e.create(e.hmacKey(scA, "k"))
	del := t0 + 7*day
	r := e.ok(fsm.OpScheduleKeyDeletion, scA, fsm.ScheduleKeyDeletionCmd{KeyID: "k", PendingWindowInDays: 7, DeletionDate: del})
	if r.Key.State != fsm.StatePendingDeletion || r.Key.DeletionDate != del {
		t.Fatalf("Result.Key = %+v", r.Key)
	}
	if k := e.key(scA, "k"); k.State != fsm.StatePendingDeletion || k.DeletionDate != del {
		t.Fatalf("key = %+v", k)
	}
	// The pre-deletion state (Enabled) is not restored: Disabled, as in AWS.
	r = e.ok(fsm.OpCancelKeyDeletion, scA, fsm.KeyCmd{KeyID: "k"})
	if r.Key.State != fsm.StateDisabled || r.Key.DeletionDate != 0 {
		t.Fatalf("after cancel: %+v", r.Key)
	}

	// An imported key without material goes back to PendingImport.
	e.create(e.externalKey(scA, "ext"))
	e.ok(fsm.OpScheduleKeyDeletion, scA, fsm.ScheduleKeyDeletionCmd{KeyID: "ext", DeletionDate: del})
	e.ok(fsm.OpCancelKeyDeletion, scA, fsm.KeyCmd{KeyID: "ext"})
	if st := e.state(scA, "ext"); st != fsm.StatePendingImport {
		t.Fatalf("external key without material after cancel: %s", st)
	}
	// With material it becomes Disabled like any other key.
	e.setImport(scA, "ext", "tok", t0+day)
	e.ok(fsm.OpImportKeyMaterial, scA, e.importCmd(scA, "ext", "tok", material("ext", 32), fsm.KeyMaterialDoesNotExpire, 0))
	e.ok(fsm.OpScheduleKeyDeletion, scA, fsm.ScheduleKeyDeletionCmd{KeyID: "ext", DeletionDate: del})
	e.ok(fsm.OpCancelKeyDeletion, scA, fsm.KeyCmd{KeyID: "ext"})
	if st := e.state(scA, "ext"); st != fsm.StateDisabled {
		t.Fatalf("external key with material after cancel: %s", st)
	}
}

func TestTags(t *testing.T) {
	e := newEnv(t)
	e.create(e.hmacKey(scA, "k"))
	e.ok(fsm.OpTagResource, scA, fsm.TagResourceCmd{KeyID: "k", Tags: []fsm.Tag{{Key: "b", Value: "1"}, {Key: "a", Value: "1"}}})
	held := e.key(scA, "k") // a reader's copy, taken before the next change
	r := e.ok(fsm.OpTagResource, scA, fsm.TagResourceCmd{KeyID: "k", Tags: []fsm.Tag{{Key: "a", Value: "2"}, {Key: "c", Value: ""}}})
	want := []fsm.Tag{{Key: "a", Value: "2"}, {Key: "b", Value: "1"}, {Key: "c", Value: ""}}
	if got := e.key(scA, "k").Tags; !slices.Equal(got, want) || !slices.Equal(r.Key.Tags, want) {
		t.Fatalf("tags = %v, want %v", got, want)
	}
	// Copy-on-write: the earlier copy did not change under the reader.
	if !slices.Equal(held.Tags, []fsm.Tag{{Key: "a", Value: "1"}, {Key: "b", Value: "1"}}) {
		t.Fatalf("held copy changed: %v", held.Tags)
	}

	// Untag: absent keys are ignored.
	e.ok(fsm.OpUntagResource, scA, fsm.UntagResourceCmd{KeyID: "k", TagKeys: []string{"b", "nope"}})
	if got := e.key(scA, "k").Tags; !slices.Equal(got, []fsm.Tag{{Key: "a", Value: "2"}, {Key: "c"}}) {
		t.Fatalf("after untag: %v", got)
	}
	e.ok(fsm.OpUntagResource, scA, fsm.UntagResourceCmd{KeyID: "k", TagKeys: []string{"a", "c"}})
	if got := e.key(scA, "k").Tags; got != nil {
		t.Fatalf("after removing all: %v", got)
	}
	e.ok(fsm.OpUntagResource, scA, fsm.UntagResourceCmd{KeyID: "k", TagKeys: []string{"gone"}})

	// Quota: 50 is fine, replacing values at 50 is fine, a 51st is not.
	var fifty []fsm.Tag
	for i := range fsm.MaxTagsPerKey {
		fifty = append(fifty, fsm.Tag{Key: fmt.Sprintf("t%02d", i), Value: "v"})
	}
	e.ok(fsm.OpTagResource, scA, fsm.TagResourceCmd{KeyID: "k", Tags: fifty})
	e.ok(fsm.OpTagResource, scA, fsm.TagResourceCmd{KeyID: "k", Tags: []fsm.Tag{{Key: "t00", Value: "changed"}}})
	e.fail(fsm.OpTagResource, scA, fsm.TagResourceCmd{KeyID: "k", Tags: []fsm.Tag{{Key: "t99", Value: "x"}}}, fsm.CodeTag, "Too many tags")
	if got := e.key(scA, "k"); len(got.Tags) != 50 || got.Tags[0].Value != "changed" {
		t.Fatalf("tags after refusal: %d, %v", len(got.Tags), got.Tags[0])
	}
}

func TestPutKeyPolicyAndDescription(t *testing.T) {
	for _, st := range []fsm.KeyState{fsm.StateEnabled, fsm.StateDisabled, fsm.StatePendingDeletion, fsm.StatePendingImport} {
		e := newEnv(t)
		e.reach("k", st)
		r := e.ok(fsm.OpPutKeyPolicy, scA, fsm.PutKeyPolicyCmd{KeyID: "k", Policy: `{"p":"` + string(st) + `"}`})
		if r.Key.Policy != `{"p":"`+string(st)+`"}` || e.key(scA, "k").Policy != r.Key.Policy {
			t.Fatalf("%s: policy not replaced", st)
		}
	}
	e := newEnv(t)
	e.create(e.hmacKey(scA, "k"))
	e.ok(fsm.OpUpdateKeyDescription, scA, fsm.UpdateKeyDescriptionCmd{KeyID: "k", Description: ""})
	if d := e.key(scA, "k").Description; d != "" {
		t.Fatalf("description = %q", d)
	}
}

func TestAliases(t *testing.T) {
	e := newEnv(t)
	e.create(e.hmacKey(scA, "k1"))
	k2 := e.hmacKey(scA, "k2")
	k2.KeySpec = "HMAC_512" // another HMAC size: still compatible for UpdateAlias
	e.create(k2)
	sym := e.hmacKey(scA, "sym")
	sym.KeySpec, sym.KeyUsage = "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT"
	e.create(sym)
	otherUsage := e.hmacKey(scA, "usage")
	otherUsage.KeyUsage = "ENCRYPT_DECRYPT"
	e.create(otherUsage)

	aliasARN := fsm.AliasARN(scA, "alias/app")
	if aliasARN != "arn:aws:kms:us-east-1:111122223333:alias/app" {
		t.Fatalf("AliasARN = %s", aliasARN)
	}
	r := e.ok(fsm.OpCreateAlias, scA, fsm.AliasCmd{Name: "alias/app", TargetKeyID: "k1"})
	want := fsm.Alias{Scope: scA, Name: "alias/app", ARN: aliasARN, TargetKeyID: "k1", CreationDate: t0, LastUpdatedDate: t0}
	if r.Alias == nil || *r.Alias != want {
		t.Fatalf("Result.Alias = %+v", r.Alias)
	}
	if a, ok := e.f.Alias(scA, "alias/app"); !ok || a != want {
		t.Fatalf("Alias() = %+v %v", a, ok)
	}
	e.fail(fsm.OpCreateAlias, scA, fsm.AliasCmd{Name: "alias/app", TargetKeyID: "k2"},
		fsm.CodeAlreadyExists, "An alias with the name "+aliasARN+" already exists")
	e.fail(fsm.OpCreateAlias, scA, fsm.AliasCmd{Name: "alias/new", TargetKeyID: "nope"},
		fsm.CodeNotFound, "Key '"+arn(scA, "nope")+"' does not exist")
	// Same name in another scope is another alias; it cannot reach scA keys.
	e.fail(fsm.OpCreateAlias, scB, fsm.AliasCmd{Name: "alias/app", TargetKeyID: "k1"}, fsm.CodeNotFound, "")
	e.create(e.hmacKey(scB, "b1"))
	e.ok(fsm.OpCreateAlias, scB, fsm.AliasCmd{Name: "alias/app", TargetKeyID: "b1"})

	// UpdateAlias.
	e.now = t0 + 100
	e.fail(fsm.OpUpdateAlias, scA, fsm.AliasCmd{Name: "alias/none", TargetKeyID: "k2"},
		fsm.CodeNotFound, "Alias "+fsm.AliasARN(scA, "alias/none")+" is not found.")
	e.fail(fsm.OpUpdateAlias, scA, fsm.AliasCmd{Name: "alias/app", TargetKeyID: "nope"}, fsm.CodeNotFound, "Key '"+arn(scA, "nope")+"' does not exist")
	e.fail(fsm.OpUpdateAlias, scA, fsm.AliasCmd{Name: "alias/app", TargetKeyID: "sym"}, fsm.CodeValidation, "")
	e.fail(fsm.OpUpdateAlias, scA, fsm.AliasCmd{Name: "alias/app", TargetKeyID: "usage"}, fsm.CodeValidation, "")
	r = e.ok(fsm.OpUpdateAlias, scA, fsm.AliasCmd{Name: "alias/app", TargetKeyID: "k2"})
	if r.Alias.TargetKeyID != "k2" || r.Alias.CreationDate != t0 || r.Alias.LastUpdatedDate != t0+100 {
		t.Fatalf("after UpdateAlias: %+v", r.Alias)
	}
	if got := e.f.AliasesOf(scA, "k1"); len(got) != 0 {
		t.Fatalf("k1 still has aliases %v", got)
	}
	if got := e.f.AliasesOf(scA, "k2"); len(got) != 1 || got[0].Name != "alias/app" {
		t.Fatalf("AliasesOf(k2) = %v", got)
	}
	// New target pending deletion: refused. Old target pending deletion: fine.
	e.ok(fsm.OpScheduleKeyDeletion, scA, fsm.ScheduleKeyDeletionCmd{KeyID: "k1", DeletionDate: t0 + 7*day})
	e.fail(fsm.OpUpdateAlias, scA, fsm.AliasCmd{Name: "alias/app", TargetKeyID: "k1"},
		fsm.CodeInvalidState, arn(scA, "k1")+" is pending deletion.")
	e.fail(fsm.OpCreateAlias, scA, fsm.AliasCmd{Name: "alias/x", TargetKeyID: "k1"},
		fsm.CodeInvalidState, arn(scA, "k1")+" is pending deletion.")
	e.ok(fsm.OpCancelKeyDeletion, scA, fsm.KeyCmd{KeyID: "k1"})
	e.ok(fsm.OpUpdateAlias, scA, fsm.AliasCmd{Name: "alias/app", TargetKeyID: "k1"})
	e.ok(fsm.OpScheduleKeyDeletion, scA, fsm.ScheduleKeyDeletionCmd{KeyID: "k1", DeletionDate: t0 + 7*day})
	e.ok(fsm.OpUpdateAlias, scA, fsm.AliasCmd{Name: "alias/app", TargetKeyID: "k2"})

	// DeleteAlias.
	r = e.ok(fsm.OpDeleteAlias, scA, fsm.AliasCmd{Name: "alias/app"})
	if r.Alias == nil || r.Alias.Name != "alias/app" {
		t.Fatalf("DeleteAlias result %+v", r.Alias)
	}
	if _, ok := e.f.Alias(scA, "alias/app"); ok {
		t.Fatal("alias still there")
	}
	if _, ok := e.f.Alias(scB, "alias/app"); !ok {
		t.Fatal("DeleteAlias removed the other scope's alias")
	}
	e.fail(fsm.OpDeleteAlias, scA, fsm.AliasCmd{Name: "alias/app"}, fsm.CodeNotFound, "Alias "+aliasARN+" is not found.")
	if e := fsm.ErrAliasNotFound(aliasARN); e.Message != "Alias "+aliasARN+" is not found." {
		t.Fatal(e)
	}
}

func TestAliasQuota(t *testing.T) {
	e := newEnv(t)
	e.create(e.hmacKey(scA, "k"))
	e.create(e.hmacKey(scA, "other"))
	for i := range fsm.MaxAliasesPerKey {
		e.ok(fsm.OpCreateAlias, scA, fsm.AliasCmd{Name: fmt.Sprintf("alias/a%02d", i), TargetKeyID: "k"})
	}
	e.fail(fsm.OpCreateAlias, scA, fsm.AliasCmd{Name: "alias/one-too-many", TargetKeyID: "k"}, fsm.CodeLimitExceeded, "")
	e.ok(fsm.OpCreateAlias, scA, fsm.AliasCmd{Name: "alias/elsewhere", TargetKeyID: "other"})
	e.fail(fsm.OpUpdateAlias, scA, fsm.AliasCmd{Name: "alias/elsewhere", TargetKeyID: "k"}, fsm.CodeLimitExceeded, "")
	// Re-pointing an alias at the key it already names is not a new alias.
	e.ok(fsm.OpUpdateAlias, scA, fsm.AliasCmd{Name: "alias/a00", TargetKeyID: "k"})
	if n := len(e.f.AliasesOf(scA, "k")); n != fsm.MaxAliasesPerKey {
		t.Fatalf("aliases of k = %d", n)
	}
}

func TestImport(t *testing.T) {
	e := newEnv(t)
	e.create(e.hmacKey(scA, "native"))
	e.create(e.externalKey(scA, "ext"))
	extARN := arn(scA, "ext")
	m := material("ext", 32)
	unsupported := arn(scA, "native") + " origin is AWS_KMS which is not valid for this operation."

	// Origin rules.
	e.fail(fsm.OpSetImportParameters, scA, fsm.SetImportParametersCmd{KeyID: "native"}, fsm.CodeUnsupportedOperation, unsupported)
	e.fail(fsm.OpImportKeyMaterial, scA, e.importCmd(scA, "native", "t", m, fsm.KeyMaterialDoesNotExpire, 0), fsm.CodeUnsupportedOperation, unsupported)
	e.fail(fsm.OpDeleteImportedKeyMaterial, scA, fsm.KeyCmd{KeyID: "native"}, fsm.CodeUnsupportedOperation, unsupported)

	// Token rules.
	e.fail(fsm.OpImportKeyMaterial, scA, e.importCmd(scA, "ext", "t1", m, fsm.KeyMaterialDoesNotExpire, 0),
		fsm.CodeInvalidImportToken, "Import token is invalid or does not match the key.")
	e.setImport(scA, "ext", "t1", t0+day)
	e.setImport(scA, "ext", "t2", t0+day) // replaces t1
	if imp := e.key(scA, "ext").Import; imp == nil || imp.TokenID != "t2" || imp.ValidTo != t0+day || imp.WrappingKeySpec != "RSA_2048" {
		t.Fatalf("Import = %+v", imp)
	}
	e.fail(fsm.OpImportKeyMaterial, scA, e.importCmd(scA, "ext", "t1", m, fsm.KeyMaterialDoesNotExpire, 0),
		fsm.CodeInvalidImportToken, "Import token is invalid or does not match the key.")
	e.now = t0 + day + 1
	e.fail(fsm.OpImportKeyMaterial, scA, e.importCmd(scA, "ext", "t2", m, fsm.KeyMaterialDoesNotExpire, 0),
		fsm.CodeExpiredImportToken, "Import token has expired.")
	e.now = t0 + day // ValidTo itself is still valid
	unsealsBefore := e.unseal.Load()
	r := e.ok(fsm.OpImportKeyMaterial, scA, e.importCmd(scA, "ext", "t2", m, fsm.KeyMaterialExpires, t0+30*day))
	if r.Key.State != fsm.StateEnabled || r.Key.ExpirationModel != fsm.KeyMaterialExpires || r.Key.ValidTo != t0+30*day ||
		r.Key.SealedMaterial != nil || r.Key.Import != nil {
		t.Fatalf("Result.Key = %+v", r.Key)
	}
	k := e.key(scA, "ext")
	if !bytes.Equal(k.Material, m) || k.MaterialDigest != e.sealer.Fingerprint(m) || k.Import == nil {
		t.Fatalf("after import: material %q digest %q import %v", k.Material, k.MaterialDigest, k.Import)
	}
	if e.unseal.Load() != unsealsBefore+1 {
		t.Fatal("ImportKeyMaterial did not unseal")
	}
	if pe := fsm.CheckUsableForMac(&k); pe != nil {
		t.Fatalf("imported key not usable: %v", pe)
	}

	// Re-import: same material is fine (token reusable until it expires) and
	// does not change a Disabled key's state; other material is refused.
	e.ok(fsm.OpDisableKey, scA, fsm.KeyCmd{KeyID: "ext"})
	e.ok(fsm.OpImportKeyMaterial, scA, e.importCmd(scA, "ext", "t2", m, fsm.KeyMaterialDoesNotExpire, 0))
	if k := e.key(scA, "ext"); k.State != fsm.StateDisabled || k.ExpirationModel != fsm.KeyMaterialDoesNotExpire || k.ValidTo != 0 {
		t.Fatalf("after re-import: %+v", k)
	}
	e.fail(fsm.OpImportKeyMaterial, scA, e.importCmd(scA, "ext", "t2", material("other", 32), fsm.KeyMaterialDoesNotExpire, 0),
		fsm.CodeIncorrectKeyMaterial, "Key material does not match the existing key material.")

	// DeleteImportedKeyMaterial: material goes, digest stays, PendingImport.
	e.ok(fsm.OpEnableKey, scA, fsm.KeyCmd{KeyID: "ext"})
	r = e.ok(fsm.OpDeleteImportedKeyMaterial, scA, fsm.KeyCmd{KeyID: "ext"})
	k = e.key(scA, "ext")
	if r.Key.State != fsm.StatePendingImport || k.State != fsm.StatePendingImport || k.SealedMaterial != nil || k.Material != nil ||
		k.ExpirationModel != "" || k.ValidTo != 0 || k.MaterialDigest != e.sealer.Fingerprint(m) {
		t.Fatalf("after delete material: %+v", k)
	}
	if pe := fsm.CheckUsableForMac(&k); pe == nil || pe.Message != extARN+" is pending import." {
		t.Fatalf("CheckUsableForMac = %v", pe)
	}
	// Deleting again is a no-op success (PendingImport: "no effect").
	e.ok(fsm.OpDeleteImportedKeyMaterial, scA, fsm.KeyCmd{KeyID: "ext"})
	// Only the original material may come back.
	e.fail(fsm.OpImportKeyMaterial, scA, e.importCmd(scA, "ext", "t2", material("other", 32), fsm.KeyMaterialDoesNotExpire, 0),
		fsm.CodeIncorrectKeyMaterial, "")
	e.ok(fsm.OpImportKeyMaterial, scA, e.importCmd(scA, "ext", "t2", m, fsm.KeyMaterialDoesNotExpire, 0))
	if st := e.state(scA, "ext"); st != fsm.StateEnabled {
		t.Fatalf("after re-import into PendingImport: %s", st)
	}

	// Pending deletion: import operations refused; deleting material keeps
	// the state.
	e.ok(fsm.OpScheduleKeyDeletion, scA, fsm.ScheduleKeyDeletionCmd{KeyID: "ext", DeletionDate: t0 + 8*day})
	pd := extARN + " is pending deletion."
	e.fail(fsm.OpSetImportParameters, scA, fsm.SetImportParametersCmd{KeyID: "ext"}, fsm.CodeInvalidState, pd)
	e.fail(fsm.OpImportKeyMaterial, scA, e.importCmd(scA, "ext", "t2", m, fsm.KeyMaterialDoesNotExpire, 0), fsm.CodeInvalidState, pd)
	e.ok(fsm.OpDeleteImportedKeyMaterial, scA, fsm.KeyCmd{KeyID: "ext"})
	if k := e.key(scA, "ext"); k.State != fsm.StatePendingDeletion || k.SealedMaterial != nil {
		t.Fatalf("delete material while pending deletion: %+v", k)
	}

	// Malformed import payload (no material) is refused after the checks.
	e.create(e.externalKey(scA, "ext2"))
	e.setImport(scA, "ext2", "tok", t0+2*day)
	e.fail(fsm.OpImportKeyMaterial, scA, fsm.ImportKeyMaterialCmd{KeyID: "ext2", TokenID: "tok", MaterialDigest: "d"}, fsm.CodeInternal, "")
}

func TestDeleteKeyReaper(t *testing.T) {
	e := newEnv(t)
	e.create(e.hmacKey(scA, "k1"))
	e.create(e.hmacKey(scA, "k2"))
	e.create(e.hmacKey(scB, "k3"))
	e.ok(fsm.OpCreateAlias, scA, fsm.AliasCmd{Name: "alias/one", TargetKeyID: "k1"})
	e.ok(fsm.OpCreateAlias, scA, fsm.AliasCmd{Name: "alias/two", TargetKeyID: "k1"})
	e.ok(fsm.OpCreateAlias, scA, fsm.AliasCmd{Name: "alias/keep", TargetKeyID: "k2"})

	e.fail(fsm.OpDeleteKey, scA, fsm.KeyCmd{KeyID: "k1"}, fsm.CodeInvalidState, arn(scA, "k1")+" is not pending deletion.")
	e.ok(fsm.OpScheduleKeyDeletion, scA, fsm.ScheduleKeyDeletionCmd{KeyID: "k1", DeletionDate: t0 + 7*day})
	e.ok(fsm.OpScheduleKeyDeletion, scB, fsm.ScheduleKeyDeletionCmd{KeyID: "k3", DeletionDate: t0 + 9*day})

	if due := e.f.DueForDeletion(t0 + 7*day - 1); len(due) != 0 {
		t.Fatalf("due too early: %v", due)
	}
	e.now = t0 + 7*day - 1
	e.fail(fsm.OpDeleteKey, scA, fsm.KeyCmd{KeyID: "k1"}, fsm.CodeInvalidState, "")

	due := e.f.DueForDeletion(t0 + 10*day)
	want := []fsm.KeyRef{{Scope: scA, KeyID: "k1"}, {Scope: scB, KeyID: "k3"}}
	if !slices.Equal(due, want) {
		t.Fatalf("DueForDeletion = %v, want %v", due, want)
	}

	e.now = t0 + 7*day
	r := e.ok(fsm.OpDeleteKey, scA, fsm.KeyCmd{KeyID: "k1"})
	if r.Key == nil || r.Key.ID != "k1" {
		t.Fatalf("Result.Key = %+v", r.Key)
	}
	if _, ok := e.f.Key(scA, "k1"); ok {
		t.Fatal("k1 still exists")
	}
	for _, n := range []string{"alias/one", "alias/two"} {
		if _, ok := e.f.Alias(scA, n); ok {
			t.Fatalf("%s survived its key", n)
		}
	}
	if _, ok := e.f.Alias(scA, "alias/keep"); !ok {
		t.Fatal("alias of another key deleted")
	}
	if got := e.f.AliasesOf(scA, "k1"); len(got) != 0 {
		t.Fatalf("AliasesOf deleted key = %v", got)
	}
	// A duplicated or late proposal is harmless.
	e.fail(fsm.OpDeleteKey, scA, fsm.KeyCmd{KeyID: "k1"}, fsm.CodeNotFound, "Key '"+arn(scA, "k1")+"' does not exist")
	// A key re-created with the same id starts clean.
	e.create(e.hmacKey(scA, "k1"))
	if got := e.f.AliasesOf(scA, "k1"); len(got) != 0 {
		t.Fatalf("re-created key inherited aliases %v", got)
	}
	if due := e.f.DueForDeletion(t0 + 10*day); !slices.Equal(due, []fsm.KeyRef{{Scope: scB, KeyID: "k3"}}) {
		t.Fatalf("DueForDeletion after delete = %v", due)
	}
}

func TestExpireKeyMaterial(t *testing.T) {
	e := newEnv(t)
	e.create(e.hmacKey(scA, "native"))
	for _, id := range []string{"exp", "forever", "later"} {
		e.create(e.externalKey(scA, id))
		e.setImport(scA, id, "tok-"+id, t0+day)
	}
	e.ok(fsm.OpImportKeyMaterial, scA, e.importCmd(scA, "exp", "tok-exp", material("exp", 32), fsm.KeyMaterialExpires, t0+2*day))
	e.ok(fsm.OpImportKeyMaterial, scA, e.importCmd(scA, "later", "tok-later", material("later", 32), fsm.KeyMaterialExpires, t0+5*day))
	e.ok(fsm.OpImportKeyMaterial, scA, e.importCmd(scA, "forever", "tok-forever", material("forever", 32), fsm.KeyMaterialDoesNotExpire, 0))

	if got := e.f.ExpiredMaterial(t0 + 2*day - 1); len(got) != 0 {
		t.Fatalf("ExpiredMaterial early = %v", got)
	}
	if got := e.f.ExpiredMaterial(t0 + 2*day); !slices.Equal(got, []fsm.KeyRef{{Scope: scA, KeyID: "exp"}}) {
		t.Fatalf("ExpiredMaterial = %v", got)
	}
	e.now = t0 + 2*day - 1
	e.fail(fsm.OpExpireKeyMaterial, scA, fsm.KeyCmd{KeyID: "exp"}, fsm.CodeInvalidState, "")
	e.now = t0 + 100*day
	e.fail(fsm.OpExpireKeyMaterial, scA, fsm.KeyCmd{KeyID: "forever"}, fsm.CodeInvalidState, "")
	e.fail(fsm.OpExpireKeyMaterial, scA, fsm.KeyCmd{KeyID: "native"}, fsm.CodeUnsupportedOperation, "")

	r := e.ok(fsm.OpExpireKeyMaterial, scA, fsm.KeyCmd{KeyID: "exp"})
	k := e.key(scA, "exp")
	if r.Key.State != fsm.StatePendingImport || k.Material != nil || k.SealedMaterial != nil || k.ExpirationModel != "" || k.MaterialDigest == "" {
		t.Fatalf("after expiry: %+v", k)
	}
	// Once expired it is no longer listed, and a repeated proposal is refused.
	if got := e.f.ExpiredMaterial(t0 + 100*day); !slices.Equal(got, []fsm.KeyRef{{Scope: scA, KeyID: "later"}}) {
		t.Fatalf("ExpiredMaterial after = %v", got)
	}
	e.fail(fsm.OpExpireKeyMaterial, scA, fsm.KeyCmd{KeyID: "exp"}, fsm.CodeInvalidState, "")
	e.fail(fsm.OpExpireKeyMaterial, scA, fsm.KeyCmd{KeyID: "missing"}, fsm.CodeNotFound, "")
}

func TestMalformedCommands(t *testing.T) {
	e := newEnv(t)
	e.create(e.hmacKey(scA, "k"))
	good := func(op fsm.Op, p any) fsm.Command {
		raw, _ := json.Marshal(p)
		return fsm.Command{Version: fsm.CommandVersion, Op: op, Time: t0, Scope: scA, Payload: raw}
	}
	cases := map[string][]byte{
		"not json":      []byte("{nope"),
		"empty":         nil,
		"null":          []byte("null"),
		"no version":    []byte(mustJSON(t, fsm.Command{Op: fsm.OpDisableKey, Scope: scA, Payload: json.RawMessage(`{"key_id":"k"}`)})),
		"newer version": []byte(mustJSON(t, func() fsm.Command { c := good(fsm.OpDisableKey, fsm.KeyCmd{KeyID: "k"}); c.Version++; return c }())),
		"unknown op":    []byte(mustJSON(t, good("RotateKey", fsm.KeyCmd{KeyID: "k"}))),
		"no payload":    []byte(`{"v":1,"op":"DisableKey","t":1,"scope":{"account":"111122223333","region":"us-east-1"}}`),
		"bad payload":   []byte(`{"v":1,"op":"DisableKey","t":1,"scope":{"account":"111122223333","region":"us-east-1"},"p":{"key_id":5}}`),
		"payload array": []byte(`{"v":1,"op":"TagResource","t":1,"scope":{"account":"111122223333","region":"us-east-1"},"p":[1]}`),
		"no key id":     []byte(mustJSON(t, good(fsm.OpDisableKey, fsm.KeyCmd{}))),
		"alias no name": []byte(mustJSON(t, good(fsm.OpCreateAlias, fsm.AliasCmd{TargetKeyID: "k"}))),
	}
	for name, data := range cases {
		before := e.f.Digest()
		r := e.applyRaw(data)
		if r.Error == nil || r.Error.Code != fsm.CodeInternal || r.Key != nil {
			t.Errorf("%s: result %+v, want KMSInternalException", name, r)
		}
		if e.f.Digest() != before || e.state(scA, "k") != fsm.StateEnabled {
			t.Errorf("%s: state changed", name)
		}
	}
	// The next good entry still applies.
	e.ok(fsm.OpDisableKey, scA, fsm.KeyCmd{KeyID: "k"})
}

func TestUnseal(t *testing.T) {
	e := newEnv(t)
	e.create(e.hmacKey(scA, "k"))
	if n := e.unseal.Load(); n != 1 {
		t.Fatalf("Unseal called %d times on CreateKey", n)
	}
	snap := snapshotBytes(t, e.f)

	// Restore unseals every key.
	e2 := newEnv(t)
	e2.create(e.hmacKey(scA, "x")) // will be replaced
	e2.unseal.Store(0)
	restore(t, e2.f, snap)
	if n := e2.unseal.Load(); n != 1 {
		t.Fatalf("Unseal called %d times on Restore", n)
	}
	if k := e2.key(scA, "k"); !bytes.Equal(k.Material, material("k", 32)) {
		t.Fatalf("restored material %q", k.Material)
	}

	// A node with the wrong seal key keeps the replicated state but marks the
	// material unusable, without ever exposing it.
	wrong := newSealer(t, 1)
	bad := fsm.New(fsm.Options{Unseal: wrong.Open})
	restore(t, bad, snap)
	k, _ := bad.Key(scA, "k")
	if k.Material != nil || k.MaterialErr == "" {
		t.Fatalf("wrong seal key: material %q err %q", k.Material, k.MaterialErr)
	}
	pe := fsm.CheckUsableForMac(&k)
	if pe == nil || pe.Code != fsm.CodeInternal || contains(pe.Message, string(material("k", 32))) || contains(pe.Message, k.MaterialErr) {
		t.Fatalf("CheckUsableForMac = %v", pe)
	}
	if bad.Digest() != e.f.Digest() {
		t.Fatal("unseal failure changed the replicated state")
	}
	// Applying on the wrong-key node sets MaterialErr too.
	badEnv := &env{t: t, f: fsm.New(fsm.Options{Unseal: wrong.Open}), sealer: e.sealer, now: t0}
	badEnv.create(e.hmacKey(scA, "k"))
	if k := badEnv.key(scA, "k"); k.Material != nil || k.MaterialErr == "" {
		t.Fatalf("apply with wrong seal key: %+v", k)
	}

	// Nil Unseal: material stays nil, no error.
	none := fsm.New(fsm.Options{})
	restore(t, none, snap)
	if k, _ := none.Key(scA, "k"); k.Material != nil || k.MaterialErr != "" {
		t.Fatalf("nil Unseal: %+v", k)
	}
}

func TestCheckUsableForMac(t *testing.T) {
	a := arn(scA, "k")
	base := fsm.Key{Scope: scA, ID: "k", ARN: a, Material: []byte("m")}
	cases := []struct {
		state     fsm.KeyState
		code, msg string
	}{
		{fsm.StateEnabled, "", ""},
		{fsm.StateDisabled, fsm.CodeDisabled, a + " is disabled."},
		{fsm.StatePendingDeletion, fsm.CodeInvalidState, a + " is pending deletion."},
		{fsm.StatePendingImport, fsm.CodeInvalidState, a + " is pending import."},
	}
	for _, c := range cases {
		k := base
		k.State = c.state
		pe := fsm.CheckUsableForMac(&k)
		if (pe == nil) != (c.code == "") || (pe != nil && (pe.Code != c.code || pe.Message != c.msg)) {
			t.Errorf("%s: %v", c.state, pe)
		}
	}
	k := base
	k.State, k.Material = fsm.StateEnabled, nil
	if pe := fsm.CheckUsableForMac(&k); pe == nil || pe.Code != fsm.CodeInternal {
		t.Errorf("no material: %v", pe)
	}
	if e := fsm.ErrDisabled(a); e.Error() != "DisabledException: "+a+" is disabled." {
		t.Errorf("Error() = %s", e.Error())
	}
}

func TestStripSecretsAndClone(t *testing.T) {
	k := fsm.Key{ID: "k", SealedMaterial: []byte("s"), Material: []byte("m"), MaterialErr: "e",
		Import: &fsm.ImportParams{TokenID: "t", SealedPrivateKey: []byte("p")}, Tags: []fsm.Tag{{Key: "a"}}}
	s := fsm.StripSecrets(k)
	if s.SealedMaterial != nil || s.Material != nil || s.Import != nil || s.MaterialErr != "" || s.ID != "k" {
		t.Fatalf("StripSecrets = %+v", s)
	}
	s.Tags[0].Key = "changed"
	if k.Tags[0].Key != "a" {
		t.Fatal("StripSecrets shares Tags")
	}
	c := k.Clone()
	c.Material[0], c.SealedMaterial[0], c.Import.SealedPrivateKey[0], c.Tags[0].Key = 'x', 'x', 'x', "x"
	c.Import.TokenID = "x"
	if string(k.Material) != "m" || string(k.SealedMaterial) != "s" || string(k.Import.SealedPrivateKey) != "p" || k.Import.TokenID != "t" || k.Tags[0].Key != "a" {
		t.Fatal("Clone shares data")
	}
}
