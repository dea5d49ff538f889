package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/keyraft/keyraft/engine"
	"github.com/keyraft/keyraft/fsm"
)

// memStore is an in-process Store: it applies commands directly to a real
// fsm.FSM with an incrementing index, without Raft. The thing under test is
// the API layer.
type memStore struct {
	mu    sync.Mutex
	f     *fsm.FSM
	idx   uint64
	err   error // when set, Apply fails with it (no leader, timeout, ...)
	calls int
}

func newMemStore(sealer *engine.Sealer) *memStore {
	return &memStore{f: fsm.New(fsm.Options{Unseal: sealer.Open})}
}

func (m *memStore) Apply(ctx context.Context, cmd []byte) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	if m.err != nil {
		return nil, m.err
	}
	m.idx++
	res := m.f.Apply(&raft.Log{Index: m.idx, Term: 1, Type: raft.LogCommand, Data: cmd})
	return json.Marshal(res)
}

func (m *memStore) State() *fsm.FSM { return m.f }

func (m *memStore) setErr(err error) {
	m.mu.Lock()
	m.err = err
	m.mu.Unlock()
}

func (m *memStore) applyCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.calls
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	t      testing.TB
	api    *Server
	store  *memStore
	sealer *engine.Sealer
	clock  *clock
	srv    *httptest.Server
	scope  fsm.Scope
}

func newSealer(t testing.TB) *engine.Sealer {
	t.Helper()
	root := make([]byte, 32)
	if _, err := rand.Read(root); err != nil {
		t.Fatal(err)
	}
	s, err := engine.NewSealer(root)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newEnv starts an API server over a memStore whose state holds a cluster
// secret; mod may adjust the Config.
func newEnv(t testing.TB, mod func(*Config)) *env {
	t.Helper()
	return newEnvOpts(t, mod, true)
}

// newEnvOpts is newEnv, with the cluster secret (grant tokens) only if
// withSecret.
func newEnvOpts(t testing.TB, mod func(*Config), withSecret bool) *env {
	t.Helper()
	sealer := newSealer(t)
	store := newMemStore(sealer)
	clk := &clock{t: time.Now()}
	cfg := Config{Sealer: sealer, Now: clk.Now}
	if mod != nil {
		mod(&cfg)
	}
	if withSecret {
		installClusterSecret(t, store, sealer)
	}
	api, err := New(cfg, store)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		if n := api.panics.Load(); n != 0 {
			t.Errorf("the server recovered %d panic(s)", n)
		}
	})
	return &env{t: t, api: api, store: store, sealer: sealer, clock: clk, srv: srv,
		scope: fsm.Scope{Account: api.cfg.AccountID, Region: api.cfg.DefaultRegion}}
}

type response struct {
	status int
	header http.Header
	body   []byte
	obj    map[string]any
}

func (r *response) str(k string) string {
	s, _ := r.obj[k].(string)
	return s
}

// do sends one raw request.
func (e *env) do(method, path, target, contentType string, body []byte, hdr map[string]string) *response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if target != "" {
		req.Header.Set("X-Amz-Target", target)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	r := &response{status: resp.StatusCode, header: resp.Header, body: b}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &r.obj); err != nil {
			e.t.Fatalf("response body is not a JSON object: %v: %q", err, b)
		}
	}
	return r
}

// call invokes a KMS operation with a JSON body.
func (e *env) call(op, body string) *response {
	e.t.Helper()
	return e.do(http.MethodPost, "/", "TrentService."+op, contentTypeAmzJSON, []byte(body), nil)
}

// mustCall invokes op and fails the test unless it answers 200.
func (e *env) mustCall(op, body string) *response {
	e.t.Helper()
	r := e.call(op, body)
	if r.status != http.StatusOK {
		e.t.Fatalf("%s %s: status %d: %s", op, body, r.status, r.body)
	}
	return r
}

// createKey creates an HMAC key through the API and returns its id.
func (e *env) createKey(spec string, extra string) string {
	e.t.Helper()
	body := `{"KeySpec":"` + spec + `","KeyUsage":"GENERATE_VERIFY_MAC"` + extra + `}`
	r := e.mustCall("CreateKey", body)
	md, _ := r.obj["KeyMetadata"].(map[string]any)
	id, _ := md["KeyId"].(string)
	if id == "" {
		e.t.Fatalf("CreateKey: no KeyId in %s", r.body)
	}
	return id
}

func (e *env) arn(id string) string { return fsm.KeyARN(e.scope, id) }

// jsonStr quotes s as a JSON string.
func jsonStr(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// checkAWSError asserts the AWS error shape.
func checkAWSError(t testing.TB, r *response, status int, typ, msgSub string) {
	t.Helper()
	if r.status != status {
		t.Errorf("status = %d, want %d (body %s)", r.status, status, r.body)
	}
	if got := r.str("__type"); got != typ {
		t.Errorf("__type = %q, want %q (body %s)", got, typ, r.body)
	}
	msg, ok := r.obj["message"].(string)
	if !ok {
		t.Errorf("no string message member in %s", r.body)
	}
	if !strings.Contains(msg, msgSub) {
		t.Errorf("message = %q, want it to contain %q", msg, msgSub)
	}
	if r.header.Get("X-Amzn-Requestid") == "" {
		t.Errorf("no x-amzn-RequestId header")
	}
	if ct := r.header.Get("Content-Type"); ct != contentTypeAmzJSON {
		t.Errorf("Content-Type = %q", ct)
	}
}

var (
	errNoLeader     = fmt.Errorf("%w: cluster: no leader within 10s", ErrNoLeader)
	errApplyTimeout = fmt.Errorf("cluster: apply: %w", context.DeadlineExceeded)
	errShutdown     = fmt.Errorf("%w: raft is already shutdown", ErrShuttingDown)
	errUnknown      = fmt.Errorf("%w: leadership lost while committing", ErrOutcomeUnknown)
)

// installClusterSecret applies a fresh grant token secret, sealed as the
// agent's leader seals it, so that CreateGrant and grant tokens work.
func installClusterSecret(t testing.TB, store *memStore, sealer *engine.Sealer) {
	t.Helper()
	sealed, err := sealer.Seal(engine.NewGrantTokenSecret(), []byte(fsm.ClusterSecretAAD))
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := fsm.Encode(fsm.OpInitClusterSecret, time.Now().UnixNano(), fsm.Scope{}, fsm.ClusterSecretCmd{Sealed: sealed})
	if err != nil {
		t.Fatal(err)
	}
	// Directly, not through Apply: tests count the API's proposals.
	store.mu.Lock()
	store.idx++
	store.f.Apply(&raft.Log{Index: store.idx, Term: 1, Type: raft.LogCommand, Data: cmd})
	store.mu.Unlock()
	if _, ok := store.f.ClusterSecret(); !ok {
		t.Fatalf("no cluster secret after InitClusterSecret: %s", store.f.ClusterSecretErr())
	}
}
