package faults

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func call(t *testing.T, h http.Handler, method, path, body string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: Content-Type %q", method, path, ct)
	}
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("%s %s: body %q: %v", method, path, rec.Body.String(), err)
	}
	return rec.Code, out
}

func TestAdminAPI(t *testing.T) {
	i, clk := newTestInjector()
	h := i.Handler()

	code, st := call(t, h, "GET", "/v1/faults", "")
	if code != 200 || len(st["rules"].([]any)) != 0 || st["counters"] == nil {
		t.Fatalf("empty state: %d %v", code, st)
	}
	code, out := call(t, h, "POST", "/v1/faults/partition", `{"peers":["n2","n3"],"direction":"inbound","for":"30s"}`)
	if code != 200 {
		t.Fatalf("partition: %d %v", code, out)
	}
	rule := out["rule"].(map[string]any)
	if rule["kind"] != "partition" || rule["direction"] != "inbound" || rule["until"] == nil || rule["since"] == nil {
		t.Fatalf("rule %v", rule)
	}
	if !i.Blocked("n3", Inbound) || i.Blocked("n3", Outbound) {
		t.Fatal("partition not in force")
	}
	code, out = call(t, h, "POST", "/v1/faults/partition", `{"peers":["n4"]}`) // direction defaults to both
	if code != 200 || out["rule"].(map[string]any)["direction"] != "both" || out["rule"].(map[string]any)["until"] != nil {
		t.Fatalf("default direction: %d %v", code, out)
	}
	code, out = call(t, h, "POST", "/v1/faults/latency", `{"peers":["n2"],"latency":"200ms","jitter":"50ms","for":"1m"}`)
	if code != 200 || out["rule"].(map[string]any)["latency"] != "200ms" || out["rule"].(map[string]any)["jitter"] != "50ms" {
		t.Fatalf("latency: %d %v", code, out)
	}
	latID := out["rule"].(map[string]any)["id"].(string)
	code, out = call(t, h, "POST", "/v1/faults/pause-apply", `{"for":"5s"}`)
	if code != 200 || !i.ApplyPaused() {
		t.Fatalf("pause: %d %v", code, out)
	}
	code, st = call(t, h, "GET", "/v1/faults/", "")
	if code != 200 || len(st["rules"].([]any)) != 4 {
		t.Fatalf("state: %d %v", code, st)
	}
	// Remove one rule.
	code, st = call(t, h, "DELETE", "/v1/faults/"+latID, "")
	if code != 200 || len(st["rules"].([]any)) != 3 || i.Delay("n2") != 0 {
		t.Fatalf("remove: %d %v", code, st)
	}
	// Expiry is visible through the API.
	clk.advance(6 * time.Second)
	if _, st = call(t, h, "GET", "/v1/faults", ""); len(st["rules"].([]any)) != 2 {
		t.Fatalf("pause should have expired: %v", st)
	}

	// Errors are JSON with the right status.
	for _, c := range []struct {
		method, path, body string
		code               int
		msg                string
	}{
		{"POST", "/v1/faults/partition", `{"peers":[]}`, 400, "no peers"},
		{"POST", "/v1/faults/partition", `{"peers":["n2"],"direction":"up"}`, 400, "direction"},
		{"POST", "/v1/faults/partition", `{"peers":["n2"],"for":"soon"}`, 400, "invalid JSON"},
		{"POST", "/v1/faults/partition", `{"peers":["n2"],"for":30}`, 400, "duration must be a string"},
		{"POST", "/v1/faults/partition", `{"peers":["n2"],"bogus":1}`, 400, "unknown field"},
		{"POST", "/v1/faults/partition", `{"peers":["n2"]} {}`, 400, "trailing"},
		{"POST", "/v1/faults/partition", `not json`, 400, "invalid JSON"},
		{"POST", "/v1/faults/latency", `{"peers":["n2"]}`, 400, "both 0"},
		{"POST", "/v1/faults/latency", `{"peers":["n2"],"latency":"-1s"}`, 400, "between"},
		{"POST", "/v1/faults/pause-apply", `{}`, 400, `"for" is required`},
		{"GET", "/v1/faults/partition", ``, 405, "POST"},
		{"PUT", "/v1/faults", ``, 405, "GET, DELETE"},
		{"DELETE", "/v1/faults/r999", ``, 404, "no active rule"},
		{"GET", "/v1/faults/a/b", ``, 404, "not found"},
		{"GET", "/v1/faultsx", ``, 404, "not found"},
	} {
		code, out := call(t, h, c.method, c.path, c.body)
		msg, _ := out["error"].(string)
		if code != c.code || !strings.Contains(msg, c.msg) {
			t.Errorf("%s %s %s: %d %q, want %d containing %q", c.method, c.path, c.body, code, msg, c.code, c.msg)
		}
	}
	// Clear all.
	code, st = call(t, h, "DELETE", "/v1/faults", "")
	if code != 200 || len(st["rules"].([]any)) != 0 || i.Active() {
		t.Fatalf("clear: %d %v", code, st)
	}
	// A nil Injector says fault injection is off.
	var off *Injector
	if code, out := call(t, off.Handler(), "GET", "/v1/faults", ""); code != 404 || !strings.Contains(out["error"].(string), "not enabled") {
		t.Fatalf("nil handler: %d %v", code, out)
	}
}

func TestGuardHTTP(t *testing.T) {
	i := New(WithLogger(quietLogger()))
	var served atomic.Int64
	h := i.GuardHTTP(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		io.WriteString(w, "ok")
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	get := func(from string) (time.Duration, error) {
		req, _ := http.NewRequest("GET", srv.URL, nil)
		if from != "" {
			req.Header.Set(FromHeader, from)
		}
		start := time.Now()
		resp, err := srv.Client().Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if string(b) != "ok" {
			t.Fatalf("body %q", b)
		}
		return time.Since(start), nil
	}
	if _, err := get("n2"); err != nil {
		t.Fatal(err)
	}
	i.Partition([]string{"n2"}, Inbound)
	if _, err := get("n2"); err == nil {
		t.Fatal("request from a cut peer was answered")
	}
	if _, err := get("n3"); err != nil {
		t.Fatal("other peers must pass:", err)
	}
	if _, err := get(""); err != nil {
		t.Fatal("requests without a From header must pass:", err)
	}
	i.Clear()
	i.Latency([]string{"n2"}, 200*time.Millisecond, 0)
	if el, err := get("n2"); err != nil || el < 200*time.Millisecond {
		t.Fatalf("latency: %s %v", el, err)
	}
	if served.Load() != 4 {
		t.Fatalf("handler served %d requests", served.Load())
	}
	c := i.Snapshot().Counters
	// (http.Transport retries an idempotent GET once on a connection closed
	// without an answer, so the drop may count twice.)
	if c["http_dropped"] < 1 || c["http_delayed"] != 1 {
		t.Fatalf("counters %v", c)
	}
	var off *Injector
	if off.GuardHTTP(h) == nil {
		t.Fatal("nil guard")
	}
	srv.Client().CloseIdleConnections()
}

// indexFSM counts applies and reports its applied index.
type indexFSM struct {
	applied atomic.Uint64
}

func (f *indexFSM) Apply(l *raft.Log) any                         { f.applied.Store(l.Index); return l.Index }
func (f *indexFSM) Snapshot() (raft.FSMSnapshot, error)           { return nil, nil }
func (f *indexFSM) Restore(rc io.ReadCloser) error                { return rc.Close() }
func (f *indexFSM) AppliedIndex() uint64                          { return f.applied.Load() }
func (f *indexFSM) StoreConfiguration(uint64, raft.Configuration) {}

func TestWrapFSM(t *testing.T) {
	inner := &indexFSM{}
	if WrapFSM(inner, nil) != raft.FSM(inner) {
		t.Fatal("nil injector must return the FSM itself")
	}
	i := New(WithLogger(quietLogger()))
	w := WrapFSM(inner, i)
	ix, ok := w.(interface{ AppliedIndex() uint64 })
	if !ok {
		t.Fatal("AppliedIndex not forwarded")
	}
	if _, ok := w.(raft.ConfigurationStore); ok {
		t.Fatal("optional interfaces must be hidden")
	}
	p := w.(interface {
		BlockedApplyIndex() uint64
		ReleaseApply()
	})
	if got := w.Apply(&raft.Log{Index: 1}); got != uint64(1) || ix.AppliedIndex() != 1 {
		t.Fatal("apply")
	}
	i.PauseApply(time.Hour)
	done := make(chan struct{})
	go func() { w.Apply(&raft.Log{Index: 2}); close(done) }()
	eventuallyT(t, func() bool { return p.BlockedApplyIndex() == 2 }, "apply blocked at index 2")
	if ix.AppliedIndex() != 1 {
		t.Fatal("applied during the pause")
	}
	i.Clear()
	<-done
	if ix.AppliedIndex() != 2 || p.BlockedApplyIndex() != 0 {
		t.Fatal("did not catch up")
	}
	// ReleaseApply ends pauses for good.
	i.PauseApply(time.Hour)
	done = make(chan struct{})
	go func() { w.Apply(&raft.Log{Index: 3}); close(done) }()
	eventuallyT(t, func() bool { return p.BlockedApplyIndex() == 3 }, "apply blocked at index 3")
	p.ReleaseApply()
	p.ReleaseApply()
	<-done
	w.Apply(&raft.Log{Index: 4})
	if ix.AppliedIndex() != 4 {
		t.Fatal("released FSM still paused")
	}
	i.Clear()
	// An FSM without AppliedIndex gets a wrapper without it.
	type plain struct{ raft.FSM }
	if _, ok := WrapFSM(plain{inner}, i).(interface{ AppliedIndex() uint64 }); ok {
		t.Fatal("AppliedIndex invented")
	}
}
