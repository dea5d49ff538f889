package fsm_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/keyraft/keyraft/engine"
	"github.com/keyraft/keyraft/fsm"
)

// randomLog builds n mixed commands with a fixed-seed generator: creates of
// native and imported keys, every state change, tags, aliases, import,
// grants (named, constrained, retired, revoked, purged), the cluster secret,
// the reapers, and some commands that must be refused. Time advances
// randomly.
func randomLog(t testing.TB, sealer *engine.Sealer, seed int64, n int) [][]byte {
	rng := rand.New(rand.NewSource(seed))
	scopes := []fsm.Scope{scA, scB}
	tokens := map[string]string{} // newest import token per key
	now := t0
	var log [][]byte
	// The generator consults a shadow FSM the way a real proposer and the
	// leader's reaper consult theirs, so that most commands target keys
	// that exist and the reapers propose what is due.
	shadow := fsm.New(fsm.Options{})
	add := func(op fsm.Op, sc fsm.Scope, p any) {
		entry := encode(t, op, now, sc, p)
		log = append(log, entry)
		shadow.Apply(&raft.Log{Index: uint64(len(log)), Data: entry})
	}
	importCmd := func(sc fsm.Scope, id, ref string) fsm.ImportKeyMaterialCmd {
		tok := tokens[ref]
		if rng.Intn(6) == 0 {
			tok = "forged"
		}
		m := material(fmt.Sprint(ref, rng.Intn(4)/3), 32) // now and then different material
		sealed, err := sealer.Seal(m, []byte(fsm.KeyARN(sc, id)))
		if err != nil {
			t.Fatal(err)
		}
		model, validTo := fsm.KeyMaterialDoesNotExpire, int64(0)
		if rng.Intn(2) == 0 {
			model, validTo = fsm.KeyMaterialExpires, now+int64(1+rng.Intn(5))*day
		}
		return fsm.ImportKeyMaterialCmd{KeyID: id, TokenID: tok, SealedMaterial: sealed,
			MaterialDigest: sealer.Fingerprint(m), ExpirationModel: model, ValidTo: validTo}
	}
	for i := 0; len(log) < n; i++ {
		now += rng.Int63n(day / 3)
		// The leader's reapers propose whatever is due, sometimes late.
		if refs := shadow.DueForDeletion(now); len(refs) > 0 && rng.Intn(3) == 0 {
			add(fsm.OpDeleteKey, refs[0].Scope, fsm.KeyCmd{KeyID: refs[0].KeyID})
			continue
		}
		if refs := shadow.ExpiredMaterial(now); len(refs) > 0 && rng.Intn(3) == 0 {
			add(fsm.OpExpireKeyMaterial, refs[0].Scope, fsm.KeyCmd{KeyID: refs[0].KeyID})
			continue
		}
		if oldest, ok := shadow.OldestTombstone(); ok && oldest < now-day/2 && rng.Intn(3) == 0 {
			add(fsm.OpPurgeGrantTombstones, scopes[rng.Intn(len(scopes))], fsm.PurgeCmd{Before: now - day/2})
			continue
		}
		sc := scopes[rng.Intn(len(scopes))]
		id := fmt.Sprintf("k%d", rng.Intn(6))
		if existing, _ := shadow.ListKeys(sc, "", 0); len(existing) > 0 && rng.Intn(8) != 0 {
			id = existing[rng.Intn(len(existing))].ID
		}
		alias := fmt.Sprintf("alias/a%d", rng.Intn(6))
		if existing, _ := shadow.ListAliases(sc, "", "", 0); len(existing) > 0 && rng.Intn(5) != 0 {
			alias = existing[rng.Intn(len(existing))].Name
		}
		ref := sc.Account + "/" + id
		switch r := rng.Intn(30); {
		case r < 3:
			if rng.Intn(6) != 0 { // now and then a duplicate id
				id = fmt.Sprintf("k%d", 6+i)
			}
			ref = sc.Account + "/" + id
			keyARN := fsm.KeyARN(sc, id)
			spec := engine.KeySpecs[rng.Intn(len(engine.KeySpecs))]
			k := fsm.Key{Scope: sc, ID: id, ARN: keyARN, KeySpec: spec, KeyUsage: "GENERATE_VERIFY_MAC",
				CreationDate: now, Policy: fmt.Sprintf(`{"n":%d}`, i), Description: fmt.Sprintf("d%d", rng.Intn(5))}
			if rng.Intn(2) == 0 {
				k.Origin, k.State = fsm.OriginExternal, fsm.StatePendingImport
			} else {
				k.Origin, k.State = fsm.OriginAWSKMS, fsm.StateEnabled
				m, err := engine.GenerateKeyMaterial(spec)
				if err != nil {
					t.Fatal(err)
				}
				if k.SealedMaterial, err = sealer.Seal(m, []byte(keyARN)); err != nil {
					t.Fatal(err)
				}
				k.MaterialDigest = sealer.Fingerprint(m)
			}
			for j := range rng.Intn(4) {
				k.Tags = append(k.Tags, fsm.Tag{Key: fmt.Sprintf("t%d", rng.Intn(6)), Value: fmt.Sprint(j)})
			}
			add(fsm.OpCreateKey, sc, fsm.CreateKeyCmd{Key: k})
		case r == 3:
			add(fsm.OpEnableKey, sc, fsm.KeyCmd{KeyID: id})
		case r == 4:
			add(fsm.OpDisableKey, sc, fsm.KeyCmd{KeyID: id})
		case r == 5:
			w := 7 + rng.Intn(24)
			add(fsm.OpScheduleKeyDeletion, sc, fsm.ScheduleKeyDeletionCmd{KeyID: id, PendingWindowInDays: w, DeletionDate: now + int64(w)*day})
		case r == 6:
			add(fsm.OpCancelKeyDeletion, sc, fsm.KeyCmd{KeyID: id})
		case r == 7:
			add(fsm.OpUpdateKeyDescription, sc, fsm.UpdateKeyDescriptionCmd{KeyID: id, Description: fmt.Sprint("desc", i)})
		case r == 8:
			var tags []fsm.Tag
			for range 1 + rng.Intn(3) {
				tags = append(tags, fsm.Tag{Key: fmt.Sprintf("t%d", rng.Intn(6)), Value: fmt.Sprint(i)})
			}
			add(fsm.OpTagResource, sc, fsm.TagResourceCmd{KeyID: id, Tags: tags})
		case r == 9:
			add(fsm.OpUntagResource, sc, fsm.UntagResourceCmd{KeyID: id, TagKeys: []string{fmt.Sprintf("t%d", rng.Intn(6)), "never"}})
		case r == 10:
			add(fsm.OpPutKeyPolicy, sc, fsm.PutKeyPolicyCmd{KeyID: id, Policy: fmt.Sprintf(`{"p":%d}`, i)})
		case r == 11 || r == 20:
			if rng.Intn(3) != 0 {
				alias = fmt.Sprintf("alias/n%d", i)
			}
			add(fsm.OpCreateAlias, sc, fsm.AliasCmd{Name: alias, TargetKeyID: id})
		case r == 12 || r == 21:
			add(fsm.OpUpdateAlias, sc, fsm.AliasCmd{Name: alias, TargetKeyID: id})
		case r == 13:
			add(fsm.OpDeleteAlias, sc, fsm.AliasCmd{Name: alias})
		case r <= 15:
			// GetParametersForImport, usually followed by an import, on a
			// key the generator believes is EXTERNAL (not always right).
			if rng.Intn(5) != 0 {
				// Mostly keys that take imports, as a real proposer
				// would pre-check.
				keys, _ := shadow.ListKeys(sc, "", 0)
				keys = slices.DeleteFunc(keys, func(k fsm.Key) bool { return k.Origin != fsm.OriginExternal })
				if len(keys) == 0 {
					continue
				}
				id = keys[rng.Intn(len(keys))].ID
				ref = sc.Account + "/" + id
			}
			tok := fmt.Sprintf("tok%d", i)
			tokens[ref] = tok
			add(fsm.OpSetImportParameters, sc, fsm.SetImportParametersCmd{KeyID: id, Import: fsm.ImportParams{
				TokenID: tok, SealedPrivateKey: []byte("pk" + tok), WrappingAlgorithm: engine.WrappingRSAESOAEPSHA256,
				WrappingKeySpec: engine.WrappingKeySpecRSA2048, ValidTo: now + day}})
			if rng.Intn(4) != 0 {
				now += rng.Int63n(day / 2)
				add(fsm.OpImportKeyMaterial, sc, importCmd(sc, id, ref))
			}
		case r == 16:
			add(fsm.OpImportKeyMaterial, sc, importCmd(sc, id, ref))
		case r == 17:
			add(fsm.OpDeleteImportedKeyMaterial, sc, fsm.KeyCmd{KeyID: id})
		case r == 18:
			add(fsm.OpDeleteKey, sc, fsm.KeyCmd{KeyID: id}) // mostly not due: refused
		case r >= 22 && r <= 25:
			// Mostly keys that take grants, as a real proposer would
			// pre-check.
			if rng.Intn(5) != 0 {
				keys, _ := shadow.ListKeys(sc, "", 0)
				keys = slices.DeleteFunc(keys, func(k fsm.Key) bool { return k.State != fsm.StateEnabled })
				if len(keys) > 0 {
					id = keys[rng.Intn(len(keys))].ID
				}
			}
			add(fsm.OpCreateGrant, sc, fsm.CreateGrantCmd{Grant: randomGrant(rng, shadow, sc, id, now)})
		case r == 26 || r == 27:
			op := fsm.OpRetireGrant
			if r == 27 {
				op = fsm.OpRevokeGrant
			}
			gid := fmt.Sprintf("%064x", rng.Intn(1000)) // unknown: refused
			var active []fsm.Grant
			keys, _ := shadow.ListKeys(sc, "", 0)
			for _, k := range keys {
				l, _ := shadow.ListGrants(sc, k.ID, "", 0, "", "")
				active = append(active, l...)
			}
			if len(active) > 0 && rng.Intn(5) != 0 {
				g := active[rng.Intn(len(active))]
				id, gid = g.KeyID, g.GrantID
			} else if rng.Intn(2) == 0 {
				// A tombstone, if the key has one: refused too.
				for _, g := range shadow.GrantsFor(sc, id, fmt.Sprintf("arn:aws:iam::%s:role/g%d", sc.Account, rng.Intn(3))) {
					if !g.Active() {
						gid = g.GrantID
					}
				}
			}
			add(op, sc, fsm.GrantCmd{KeyID: id, GrantID: gid})
		case r == 28:
			// The leader proposes the secret when it sees none; racing
			// leaders (and late proposals) propose it again: refused.
			secret := []byte(fmt.Sprintf("cluster-secret-%032d", i))
			sealed, err := sealer.Seal(secret, []byte(fsm.ClusterSecretAAD))
			if err != nil {
				t.Fatal(err)
			}
			add(fsm.OpInitClusterSecret, sc, fsm.ClusterSecretCmd{Sealed: sealed})
		case r == 29:
			before := now - rng.Int63n(day)
			if rng.Intn(8) == 0 {
				before = now + 1 // a purge of the future: refused
			}
			add(fsm.OpPurgeGrantTombstones, sc, fsm.PurgeCmd{Before: before})
		default:
			add(fsm.OpExpireKeyMaterial, sc, fsm.KeyCmd{KeyID: id})
		}
	}
	return log[:n]
}

// randomGrant builds a CreateGrant payload as a proposer would: a random
// grant id (now and then one already used), a few grantees and names so
// that Name idempotency and GrantsFor see collisions, operations in random
// order with duplicates, and sometimes constraints.
func randomGrant(rng *rand.Rand, shadow *fsm.FSM, sc fsm.Scope, keyID string, now int64) fsm.Grant {
	gid := fmt.Sprintf("%016x%016x%016x%016x", rng.Uint64(), rng.Uint64(), rng.Uint64(), rng.Uint64())
	if grants, _ := shadow.ListGrants(sc, keyID, "", 0, "", ""); len(grants) > 0 && rng.Intn(12) == 0 {
		gid = grants[rng.Intn(len(grants))].GrantID // a proposer bug: refused
	}
	ops := []string{"GenerateMac", "VerifyMac", "DescribeKey", "CreateGrant", "RetireGrant"}
	g := fsm.Grant{
		KeyID:            keyID,
		GrantID:          gid,
		GranteePrincipal: fmt.Sprintf("arn:aws:iam::%s:role/g%d", sc.Account, rng.Intn(3)),
		IssuingAccount:   fsm.IssuingAccountARN(sc),
		CreationDate:     now,
	}
	for range 1 + rng.Intn(3) {
		g.Operations = append(g.Operations, ops[rng.Intn(len(ops))])
	}
	if rng.Intn(2) == 0 {
		g.Name = fmt.Sprintf("name%d", rng.Intn(3))
	}
	if rng.Intn(2) == 0 {
		g.RetiringPrincipal = fmt.Sprintf("arn:aws:iam::%s:role/r%d", sc.Account, rng.Intn(2))
	}
	switch rng.Intn(4) {
	case 0:
		g.Constraints = &fsm.GrantConstraints{SourceArn: fmt.Sprintf("arn:aws:s3:::b%d", rng.Intn(2))}
	case 1:
		g.Constraints = &fsm.GrantConstraints{EncryptionContextSubset: map[string]string{
			fmt.Sprint("z", rng.Intn(3)): "1", fmt.Sprint("a", rng.Intn(3)): "2", "m": fmt.Sprint(rng.Intn(2))}}
	}
	// A client retrying a named CreateGrant: same parameters, new proposal.
	if grants, _ := shadow.ListGrants(sc, keyID, "", 0, "", ""); len(grants) > 0 && rng.Intn(4) == 0 {
		if old := grants[rng.Intn(len(grants))]; old.Name != "" {
			g.Name, g.GranteePrincipal, g.RetiringPrincipal = old.Name, old.GranteePrincipal, old.RetiringPrincipal
			g.Operations, g.Constraints = slices.Clone(old.Operations), nil
			if old.Constraints != nil {
				c := old.Clone().Constraints
				g.Constraints = c
			}
			slices.Reverse(g.Operations) // order does not matter
		}
	}
	return g
}

func TestDeterminism(t *testing.T) {
	sealer := newSealer(t, 9)
	log := randomLog(t, sealer, 42, 400)

	a, b := newEnv(t), newEnv(t)
	// Node b has another seal key: node-local material must not matter.
	b.sealer = newSealer(t, 3)
	var ok, refused int
	codes := map[string]bool{}
	okOps := map[fsm.Op]int{}
	for i, entry := range log {
		ra, rb := a.applyRaw(entry), b.applyRaw(entry)
		if ja, jb := mustJSON(t, ra), mustJSON(t, rb); ja != jb {
			t.Fatalf("entry %d: results differ:\n%s\n%s", i, ja, jb)
		}
		if ra.Error == nil {
			ok++
			var c fsm.Command
			if err := json.Unmarshal(entry, &c); err != nil {
				t.Fatal(err)
			}
			okOps[c.Op]++
		} else {
			refused++
			codes[ra.Error.Code] = true
		}
	}
	t.Logf("%d applied %v; %d refused, codes %v; %d keys", ok, okOps, refused, codes, a.f.KeyCount())
	// The log must exercise every op's success path and many refusals.
	for _, op := range []fsm.Op{fsm.OpCreateKey, fsm.OpEnableKey, fsm.OpDisableKey, fsm.OpScheduleKeyDeletion,
		fsm.OpCancelKeyDeletion, fsm.OpUpdateKeyDescription, fsm.OpTagResource, fsm.OpUntagResource, fsm.OpPutKeyPolicy,
		fsm.OpCreateAlias, fsm.OpUpdateAlias, fsm.OpDeleteAlias, fsm.OpSetImportParameters, fsm.OpImportKeyMaterial,
		fsm.OpDeleteImportedKeyMaterial, fsm.OpDeleteKey, fsm.OpExpireKeyMaterial,
		fsm.OpCreateGrant, fsm.OpRetireGrant, fsm.OpRevokeGrant, fsm.OpPurgeGrantTombstones, fsm.OpInitClusterSecret} {
		if okOps[op] == 0 {
			t.Errorf("random log never applied %s successfully", op)
		}
	}
	if refused < 30 || len(codes) < 5 {
		t.Fatalf("log not mixed enough: %d refused, codes %v", refused, codes)
	}

	sa, sb := snapshotBytes(t, a.f), snapshotBytes(t, b.f)
	if !bytes.Equal(sa, sb) {
		t.Fatal("identical logs gave different snapshots")
	}
	if a.f.Digest() != b.f.Digest() || a.f.KeyCount() == 0 {
		t.Fatal("digests differ")
	}

	// A node that restores a mid-log snapshot and replays the rest agrees too.
	c := newEnv(t)
	mid := newEnv(t)
	for _, entry := range log[:100] {
		mid.applyRaw(entry)
	}
	restore(t, c.f, snapshotBytes(t, mid.f))
	c.idx = 100
	if c.f.AppliedIndex() != 100 {
		t.Fatalf("restored AppliedIndex = %d", c.f.AppliedIndex())
	}
	for _, entry := range log[100:] {
		c.applyRaw(entry)
	}
	if sc := snapshotBytes(t, c.f); !bytes.Equal(sc, sa) {
		t.Fatal("snapshot+replay differs from full replay")
	}
}

func TestSnapshotRestoreRoundTrip(t *testing.T) {
	e := newEnv(t)
	for _, entry := range randomLog(t, e.sealer, 7, 200) {
		e.applyRaw(entry)
	}
	s1 := snapshotBytes(t, e.f)
	f2 := newEnv(t)
	restore(t, f2.f, s1)
	s2 := snapshotBytes(t, f2.f)
	if !bytes.Equal(s1, s2) {
		t.Fatalf("snapshot -> restore -> snapshot not byte-identical:\n%s\n%s", s1, s2)
	}
	if f2.f.AppliedIndex() != e.f.AppliedIndex() || f2.f.Digest() != e.f.Digest() || f2.f.KeyCount() != e.f.KeyCount() {
		t.Fatal("restored FSM differs")
	}
	// Restored keys answer queries like the originals, material included.
	ka, _ := e.f.ListKeys(scA, "", 0)
	kb, _ := f2.f.ListKeys(scA, "", 0)
	if mustJSON(t, ka) != mustJSON(t, kb) || len(ka) == 0 {
		t.Fatal("ListKeys differs after restore")
	}
	for i := range ka {
		if !bytes.Equal(ka[i].Material, kb[i].Material) || ka[i].MaterialErr != kb[i].MaterialErr {
			t.Fatalf("material of %s differs after restore", ka[i].ID)
		}
	}
}

func TestRestoreReplaces(t *testing.T) {
	src := newEnv(t)
	src.create(src.hmacKey(scA, "keep"))
	src.ok(fsm.OpCreateAlias, scA, fsm.AliasCmd{Name: "alias/keep", TargetKeyID: "keep"})
	snap := snapshotBytes(t, src.f)

	dst := newEnv(t)
	for range 5 {
		dst.applyRaw([]byte("garbage")) // push the index past the snapshot's
	}
	dst.create(dst.hmacKey(scA, "stale"))
	dst.create(dst.hmacKey(scB, "stale"))
	dst.create(dst.hmacKey(scA, "keep")) // same id, different content
	dst.ok(fsm.OpPutKeyPolicy, scA, fsm.PutKeyPolicyCmd{KeyID: "keep", Policy: "stale"})
	dst.ok(fsm.OpCreateAlias, scA, fsm.AliasCmd{Name: "alias/stale", TargetKeyID: "stale"})
	dst.ok(fsm.OpCreateAlias, scA, fsm.AliasCmd{Name: "alias/keep2", TargetKeyID: "keep"})

	restore(t, dst.f, snap)
	if dst.f.KeyCount() != 1 || dst.f.ScopeKeyCount(scB) != 0 {
		t.Fatalf("restore merged: %d keys", dst.f.KeyCount())
	}
	if k := dst.key(scA, "keep"); k.Policy == "stale" {
		t.Fatal("restore kept a stale key body")
	}
	for _, n := range []string{"alias/stale", "alias/keep2"} {
		if _, ok := dst.f.Alias(scA, n); ok {
			t.Fatalf("restore kept %s", n)
		}
	}
	if got := dst.f.AliasesOf(scA, "keep"); len(got) != 1 || got[0].Name != "alias/keep" {
		t.Fatalf("AliasesOf after restore = %v", got)
	}
	if dst.f.AppliedIndex() != src.f.AppliedIndex() || dst.f.Digest() != src.f.Digest() {
		t.Fatal("restored state differs from the snapshot's")
	}

	// A bad snapshot is rejected and changes nothing.
	before := dst.f.Digest()
	for name, b := range map[string]string{
		"garbage":   "not json",
		"newer":     fmt.Sprintf(`{"version":%d,"keys":[],"aliases":[]}`, fsm.SnapshotVersion+1),
		"noversion": `{"keys":[],"aliases":[]}`,
		"dupkey":    `{"version":1,"keys":[{"account":"a","region":"r","id":"x"},{"account":"a","region":"r","id":"x"}],"aliases":[]}`,
		"noid":      `{"version":1,"keys":[{"account":"a","region":"r"}],"aliases":[]}`,
		"dupalias":  `{"version":1,"keys":[],"aliases":[{"account":"a","region":"r","name":"alias/x"},{"account":"a","region":"r","name":"alias/x"}]}`,
	} {
		if err := dst.f.Restore(&readCloser{Reader: bytes.NewReader([]byte(b))}); err == nil {
			t.Errorf("%s: Restore succeeded", name)
		}
		if dst.f.Digest() != before {
			t.Errorf("%s: failed Restore changed the state", name)
		}
	}
}

func TestSnapshotIsPointInTime(t *testing.T) {
	e := newEnv(t)
	e.create(e.hmacKey(scA, "k"))
	want := snapshotBytes(t, e.f)
	snap, err := e.f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// Changes after Snapshot() and before Persist must not leak in.
	e.ok(fsm.OpTagResource, scA, fsm.TagResourceCmd{KeyID: "k", Tags: []fsm.Tag{{Key: "late", Value: "1"}}})
	e.ok(fsm.OpDisableKey, scA, fsm.KeyCmd{KeyID: "k"})
	e.create(e.hmacKey(scA, "k2"))
	e.ok(fsm.OpCreateAlias, scA, fsm.AliasCmd{Name: "alias/late", TargetKeyID: "k"})
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	if !bytes.Equal(sink.Bytes(), want) {
		t.Fatalf("snapshot saw later changes:\n%s\nwant\n%s", sink.Bytes(), want)
	}
}

func TestDigestIgnoresIndex(t *testing.T) {
	a, b := newEnv(t), newEnv(t)
	k := a.hmacKey(scA, "k") // one sealing: the nonce is random
	a.create(k)
	b.applyRaw([]byte("{}")) // refused, but advances b's index
	b.create(k)
	if a.f.AppliedIndex() == b.f.AppliedIndex() {
		t.Fatal("test needs different indexes")
	}
	if a.f.Digest() != b.f.Digest() {
		t.Fatal("Digest depends on the applied index")
	}
	if bytes.Equal(snapshotBytes(t, a.f), snapshotBytes(t, b.f)) {
		t.Fatal("snapshot does not record the applied index")
	}
	if len(a.f.Digest()) != 64 {
		t.Fatalf("Digest %q is not hex SHA-256", a.f.Digest())
	}
	a.ok(fsm.OpUpdateKeyDescription, scA, fsm.UpdateKeyDescriptionCmd{KeyID: "k", Description: "changed"})
	if a.f.Digest() == b.f.Digest() {
		t.Fatal("Digest ignores a state change")
	}
}

// TestSnapshotHasNoPlaintext seals real random material with engine.Sealer
// and checks that neither the snapshot nor a Result exposes it in any
// common encoding.
func TestSnapshotHasNoPlaintext(t *testing.T) {
	e := newEnv(t)
	var secrets [][]byte
	for i, spec := range engine.KeySpecs {
		m, err := engine.GenerateKeyMaterial(spec)
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, m)
		id := fmt.Sprint("native", i)
		k := e.hmacKey(scA, id)
		k.KeySpec = spec
		if k.SealedMaterial, err = e.sealer.Seal(m, []byte(k.ARN)); err != nil {
			t.Fatal(err)
		}
		k.MaterialDigest = e.sealer.Fingerprint(m)
		r := e.ok(fsm.OpCreateKey, scA, fsm.CreateKeyCmd{Key: k})
		assertNoSecret(t, "CreateKey result", []byte(mustJSON(t, r)), m)
		if got := e.key(scA, id).Material; !bytes.Equal(got, m) {
			t.Fatal("material not unsealed")
		}

		ext := fmt.Sprint("ext", i)
		e.create(e.externalKey(scA, ext))
		e.setImport(scA, ext, "tok", t0+day)
		im := bytes.Repeat([]byte{byte(0xa0 + i)}, 48)
		secrets = append(secrets, im)
		r = e.ok(fsm.OpImportKeyMaterial, scA, e.importCmd(scA, ext, "tok", im, fsm.KeyMaterialDoesNotExpire, 0))
		assertNoSecret(t, "ImportKeyMaterial result", []byte(mustJSON(t, r)), im)
	}
	snap := snapshotBytes(t, e.f)
	for _, m := range secrets {
		assertNoSecret(t, "snapshot", snap, m)
	}
	if !strings.Contains(string(snap), "sealed_material") {
		t.Fatal("snapshot lacks sealed material")
	}
}

func assertNoSecret(t *testing.T, where string, data, secret []byte) {
	t.Helper()
	for name, enc := range map[string][]byte{
		"raw":    secret,
		"hex":    []byte(hex.EncodeToString(secret)),
		"base64": []byte(base64.StdEncoding.EncodeToString(secret)),
		"prefix": secret[:16],
	} {
		if bytes.Contains(data, enc) {
			t.Fatalf("%s contains plaintext material (%s)", where, name)
		}
	}
}
