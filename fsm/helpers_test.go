package fsm_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/keyraft/keyraft/engine"
	"github.com/keyraft/keyraft/fsm"
)

var (
	scA = fsm.Scope{Account: "111122223333", Region: "us-east-1"}
	scB = fsm.Scope{Account: "444455556666", Region: "eu-west-1"}
)

// t0 is an arbitrary fixed "now" (unix ns); tests never read the clock.
const t0 = int64(1_700_000_000_000_000_000)

const day = int64(24 * 60 * 60 * 1_000_000_000)

func newSealer(t testing.TB, fill byte) *engine.Sealer {
	t.Helper()
	s, err := engine.NewSealer(bytes.Repeat([]byte{fill}, engine.SealKeySize))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// env drives one FSM through real Apply calls with real raft.Log entries and
// real sealing, the way the cluster package will.
type env struct {
	t      testing.TB
	f      *fsm.FSM
	sealer *engine.Sealer
	idx    uint64
	now    int64
	unseal atomic.Int64 // Unseal calls
}

func newEnv(t testing.TB) *env {
	e := &env{t: t, sealer: newSealer(t, 9), now: t0}
	e.f = fsm.New(fsm.Options{Unseal: func(sealed, aad []byte) ([]byte, error) {
		e.unseal.Add(1)
		return e.sealer.Open(sealed, aad)
	}})
	return e
}

func encode(t testing.TB, op fsm.Op, time int64, sc fsm.Scope, p any) []byte {
	t.Helper()
	data, err := fsm.Encode(op, time, sc, p)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// applyRaw applies data as the next log entry.
func (e *env) applyRaw(data []byte) *fsm.Result {
	e.t.Helper()
	e.idx++
	out := e.f.Apply(&raft.Log{Index: e.idx, Term: 1, Type: raft.LogCommand, Data: data})
	res, ok := out.(*fsm.Result)
	if !ok || res == nil {
		e.t.Fatalf("Apply returned %T %v, want *fsm.Result", out, out)
	}
	if got := e.f.AppliedIndex(); got != e.idx {
		e.t.Fatalf("AppliedIndex = %d after applying %d", got, e.idx)
	}
	return res
}

func (e *env) apply(op fsm.Op, sc fsm.Scope, p any) *fsm.Result {
	e.t.Helper()
	return e.applyRaw(encode(e.t, op, e.now, sc, p))
}

func (e *env) ok(op fsm.Op, sc fsm.Scope, p any) *fsm.Result {
	e.t.Helper()
	r := e.apply(op, sc, p)
	if r.Error != nil {
		e.t.Fatalf("%s: unexpected error %v", op, r.Error)
	}
	return r
}

// fail applies a command that must be refused with code (and message, if not
// empty) and checks that the replicated state did not change.
func (e *env) fail(op fsm.Op, sc fsm.Scope, p any, code, msg string) *fsm.Error {
	e.t.Helper()
	before := e.f.Digest()
	r := e.apply(op, sc, p)
	if r.Error == nil {
		e.t.Fatalf("%s: succeeded, want %s", op, code)
	}
	if r.Error.Code != code || (msg != "" && r.Error.Message != msg) {
		e.t.Fatalf("%s: error %q / %q, want %q / %q", op, r.Error.Code, r.Error.Message, code, msg)
	}
	if r.Key != nil || r.Alias != nil || r.Grant != nil {
		e.t.Fatalf("%s: refusal carries a key, alias or grant", op)
	}
	if after := e.f.Digest(); after != before {
		e.t.Fatalf("%s: refused command changed the state", op)
	}
	return r.Error
}

func arn(sc fsm.Scope, id string) string { return fsm.KeyARN(sc, id) }

// material returns deterministic test material for a key id.
func material(id string, n int) []byte {
	return bytes.Repeat([]byte("M:"+id+";"), n)[:n]
}

// hmacKey builds an AWS_KMS HMAC_256 key with sealed material, as the API's
// CreateKey proposer does.
func (e *env) hmacKey(sc fsm.Scope, id string) fsm.Key {
	k := fsm.Key{
		Scope:        sc,
		ID:           id,
		ARN:          arn(sc, id),
		KeySpec:      engine.KeySpecHMAC256,
		KeyUsage:     "GENERATE_VERIFY_MAC",
		Origin:       fsm.OriginAWSKMS,
		State:        fsm.StateEnabled,
		Description:  "key " + id,
		CreationDate: e.now,
		Policy:       `{"Version":"2012-10-17"}`,
	}
	m := material(id, 32)
	sealed, err := e.sealer.Seal(m, []byte(k.ARN))
	if err != nil {
		e.t.Fatal(err)
	}
	k.SealedMaterial = sealed
	k.MaterialDigest = e.sealer.Fingerprint(m)
	return k
}

func (e *env) externalKey(sc fsm.Scope, id string) fsm.Key {
	return fsm.Key{
		Scope:        sc,
		ID:           id,
		ARN:          arn(sc, id),
		KeySpec:      engine.KeySpecHMAC256,
		KeyUsage:     "GENERATE_VERIFY_MAC",
		Origin:       fsm.OriginExternal,
		State:        fsm.StatePendingImport,
		CreationDate: e.now,
		Policy:       "{}",
	}
}

func (e *env) create(k fsm.Key) fsm.Key {
	e.t.Helper()
	e.ok(fsm.OpCreateKey, k.Scope, fsm.CreateKeyCmd{Key: k})
	return e.key(k.Scope, k.ID)
}

func (e *env) key(sc fsm.Scope, id string) fsm.Key {
	e.t.Helper()
	k, ok := e.f.Key(sc, id)
	if !ok {
		e.t.Fatalf("key %s/%s missing", sc.Account, id)
	}
	return k
}

func (e *env) state(sc fsm.Scope, id string) fsm.KeyState {
	e.t.Helper()
	return e.key(sc, id).State
}

func (e *env) setImport(sc fsm.Scope, id, token string, validTo int64) {
	e.t.Helper()
	e.ok(fsm.OpSetImportParameters, sc, fsm.SetImportParametersCmd{KeyID: id, Import: fsm.ImportParams{
		TokenID: token, SealedPrivateKey: []byte("sealed-pkcs8-" + token), WrappingAlgorithm: "RSAES_OAEP_SHA_256",
		WrappingKeySpec: "RSA_2048", ValidTo: validTo,
	}})
}

// importCmd seals m for key id as the ImportKeyMaterial proposer does.
func (e *env) importCmd(sc fsm.Scope, id, token string, m []byte, model string, validTo int64) fsm.ImportKeyMaterialCmd {
	sealed, err := e.sealer.Seal(m, []byte(arn(sc, id)))
	if err != nil {
		e.t.Fatal(err)
	}
	return fsm.ImportKeyMaterialCmd{KeyID: id, TokenID: token, SealedMaterial: sealed,
		MaterialDigest: e.sealer.Fingerprint(m), ExpirationModel: model, ValidTo: validTo}
}

// memSink is an in-memory raft.SnapshotSink.
type memSink struct {
	bytes.Buffer
	closed, cancelled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }
func (s *memSink) Close() error  { s.closed = true; return nil }

func snapshotBytes(t testing.TB, f *fsm.FSM) []byte {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	if !sink.closed || sink.cancelled {
		t.Fatalf("Persist: closed=%v cancelled=%v", sink.closed, sink.cancelled)
	}
	return sink.Bytes()
}

type readCloser struct {
	*bytes.Reader
	closed bool
}

func (r *readCloser) Close() error { r.closed = true; return nil }

func restore(t testing.TB, f *fsm.FSM, b []byte) {
	t.Helper()
	rc := &readCloser{Reader: bytes.NewReader(b)}
	if err := f.Restore(rc); err != nil {
		t.Fatal(err)
	}
	if !rc.closed {
		t.Fatal("Restore did not close its reader")
	}
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
