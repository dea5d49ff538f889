package faults

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	base := runtime.NumGoroutine()
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(10 * time.Second)
		for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > base {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			fmt.Fprintf(os.Stderr, "goroutine leak: %d goroutines, %d at start\n%s\n", n, base, buf)
			code = 1
		}
	}
	os.Exit(code)
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newTestInjector() (*Injector, *fakeClock) {
	clk := &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	return New(WithClock(clk.now), WithLogger(quietLogger())), clk
}

func TestNilInjector(t *testing.T) {
	var i *Injector
	if i.Active() || i.Blocked("n2", Both) || i.Delay("n2") != 0 || i.ApplyPaused() {
		t.Fatal("nil injector has effects")
	}
	i.Clear()
	if i.Remove("r1") {
		t.Fatal("nil injector removed a rule")
	}
	if _, err := i.Partition([]string{"n2"}, Both); !errors.Is(err, ErrDisabled) {
		t.Fatalf("rule on a nil injector: %v", err)
	}
	if _, err := i.PauseApply(time.Second); !errors.Is(err, ErrDisabled) {
		t.Fatalf("pause on a nil injector: %v", err)
	}
	if st := i.Snapshot(); st.Active() || st.Rules == nil {
		t.Fatalf("nil snapshot %+v", st)
	}
}

func TestPartitionDirections(t *testing.T) {
	i, _ := newTestInjector()
	if i.Active() {
		t.Fatal("new injector active")
	}
	r, err := i.Partition([]string{"n2"}, Outbound)
	if err != nil {
		t.Fatal(err)
	}
	if r.ID == "" || r.Kind != KindPartition || r.Direction != Outbound || r.Until != nil {
		t.Fatalf("rule %+v", r)
	}
	if !i.Blocked("n2", Outbound) || i.Blocked("n2", Inbound) || !i.Blocked("n2", Both) {
		t.Fatal("outbound rule: wrong directions")
	}
	if i.Blocked("n3", Both) || i.Blocked("", Both) {
		t.Fatal("other peers affected")
	}
	// The latest partition rule for a peer replaces the earlier one.
	if _, err := i.Partition([]string{"n2", "n3"}, Inbound); err != nil {
		t.Fatal(err)
	}
	if i.Blocked("n2", Outbound) || !i.Blocked("n2", Inbound) || !i.Blocked("n3", Inbound) {
		t.Fatal("replacement rule")
	}
	if st := i.Snapshot(); len(st.Rules) != 1 || !slices.Equal(st.Rules[0].Peers, []string{"n2", "n3"}) {
		t.Fatalf("the replaced rule should be gone: %+v", st.Rules)
	}
	// Partial replacement keeps the other peers of the earlier rule.
	if _, err := i.Partition([]string{"n3"}, Both); err != nil {
		t.Fatal(err)
	}
	st := i.Snapshot()
	if len(st.Rules) != 2 || !slices.Equal(st.Rules[0].Peers, []string{"n2"}) || st.Rules[1].Direction != Both {
		t.Fatalf("rules %+v", st.Rules)
	}
	// Wildcard applies in addition, including to unidentified peers.
	if _, err := i.Partition([]string{AllPeers}, Outbound); err != nil {
		t.Fatal(err)
	}
	if !i.Blocked("", Outbound) || !i.Blocked("n9", Outbound) || i.Blocked("n9", Inbound) ||
		!i.Blocked("n2", Outbound) || !i.Blocked("n2", Inbound) {
		t.Fatal("wildcard")
	}
	i.Clear()
	if i.Active() || i.Blocked("n2", Both) || len(i.Snapshot().Rules) != 0 {
		t.Fatal("clear")
	}
}

func TestRuleValidation(t *testing.T) {
	i, _ := newTestInjector()
	for name, f := range map[string]func() error{
		"no peers":      func() error { _, err := i.Partition(nil, Both); return err },
		"empty peer":    func() error { _, err := i.Partition([]string{" "}, Both); return err },
		"bad direction": func() error { _, err := i.Partition([]string{"n2"}, "sideways"); return err },
		"negative for":  func() error { _, err := i.Partition([]string{"n2"}, Both, For(-time.Second)); return err },
		"huge for":      func() error { _, err := i.Partition([]string{"n2"}, Both, For(48*time.Hour)); return err },
		"zero latency":  func() error { _, err := i.Latency([]string{"n2"}, 0, 0); return err },
		"neg latency":   func() error { _, err := i.Latency([]string{"n2"}, -time.Second, 0); return err },
		"huge latency":  func() error { _, err := i.Latency([]string{"n2"}, time.Hour, 0); return err },
		"zero pause":    func() error { _, err := i.PauseApply(0); return err },
	} {
		if err := f(); !errors.Is(err, ErrInvalidRule) {
			t.Errorf("%s: want ErrInvalidRule, got %v", name, err)
		}
	}
	if i.Active() {
		t.Fatal("an invalid rule was added")
	}
	for s, want := range map[string]Direction{"": Both, "BOTH": Both, "inbound": Inbound, "out": Outbound} {
		if d, err := ParseDirection(s); err != nil || d != want {
			t.Errorf("ParseDirection(%q) = %v, %v", s, d, err)
		}
	}
	if _, err := ParseDirection("up"); err == nil {
		t.Error("ParseDirection accepted junk")
	}
}

func TestExpiry(t *testing.T) {
	i, clk := newTestInjector()
	start := clk.now()
	r1, _ := i.Partition([]string{"n2"}, Both, For(10*time.Second))
	r2, _ := i.Latency([]string{"n3"}, 100*time.Millisecond, 0, For(20*time.Second))
	if r1.Until == nil || !r1.Until.Equal(start.Add(10*time.Second)) || !r1.Since.Equal(start) {
		t.Fatalf("rule times %+v", r1)
	}
	clk.advance(9 * time.Second)
	if !i.Blocked("n2", Inbound) {
		t.Fatal("expired early")
	}
	clk.advance(time.Second)
	if i.Blocked("n2", Inbound) {
		t.Fatal("partition did not expire")
	}
	if i.Delay("n3") != 100*time.Millisecond {
		t.Fatal("latency rule expired with the partition")
	}
	st := i.Snapshot()
	if len(st.Rules) != 1 || st.Rules[0].ID != r2.ID {
		t.Fatalf("snapshot after first expiry: %+v", st.Rules)
	}
	clk.advance(10 * time.Second)
	if i.Active() || i.Delay("n3") != 0 || len(i.Snapshot().Rules) != 0 {
		t.Fatal("latency did not expire")
	}
}

func TestLatencyAndRemove(t *testing.T) {
	i, _ := newTestInjector()
	r, err := i.Latency([]string{"n2", "n3"}, 100*time.Millisecond, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	for range 200 {
		if d := i.Delay("n2"); d < 80*time.Millisecond || d > 120*time.Millisecond {
			t.Fatalf("delay %s outside 100ms±20ms", d)
		}
	}
	if i.Delay("n4") != 0 || i.Blocked("n2", Both) {
		t.Fatal("latency rule leaks")
	}
	// Replacing n3's latency keeps n2's.
	r2, _ := i.Latency([]string{"n3"}, time.Second, 0)
	if i.Delay("n3") != time.Second || i.Delay("n2") < 80*time.Millisecond {
		t.Fatal("replacement")
	}
	if !i.Remove(r.ID) || i.Remove(r.ID) {
		t.Fatal("remove")
	}
	if i.Delay("n2") != 0 || i.Delay("n3") != time.Second {
		t.Fatal("remove removed the wrong rule")
	}
	i.Remove(r2.ID)
	if i.Active() {
		t.Fatal("still active")
	}
	// A wildcard latency is overridden by a specific one.
	i.Latency([]string{AllPeers}, time.Second, 0)
	i.Latency([]string{"n2"}, 10*time.Millisecond, 0)
	if i.Delay("n2") != 10*time.Millisecond || i.Delay("n5") != time.Second {
		t.Fatal("wildcard latency")
	}
	if st := i.Snapshot(); st.Rules[0].Latency != Duration(time.Second) {
		t.Fatalf("snapshot %+v", st)
	}
}

func TestPauseApplyWait(t *testing.T) {
	i := New(WithLogger(quietLogger()))
	release := make(chan struct{})
	if i.waitApplyPause(release) {
		t.Fatal("waited without a pause")
	}
	// Expiry ends the wait.
	i.PauseApply(150 * time.Millisecond)
	start := time.Now()
	if !i.waitApplyPause(release) {
		t.Fatal("did not pause")
	}
	if el := time.Since(start); el < 140*time.Millisecond {
		t.Fatalf("pause ended after %s", el)
	}
	// Clear ends the wait early.
	i.PauseApply(time.Hour)
	done := make(chan struct{})
	go func() { i.waitApplyPause(release); close(done) }()
	time.Sleep(20 * time.Millisecond)
	select {
	case <-done:
		t.Fatal("wait ended during the pause")
	default:
	}
	i.Clear()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Clear did not end the wait")
	}
	// release ends it too.
	i.PauseApply(time.Hour)
	done = make(chan struct{})
	go func() { i.waitApplyPause(release); close(done) }()
	close(release)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("release did not end the wait")
	}
	if c := i.Snapshot().Counters["applies_paused"]; c != 3 {
		t.Fatalf("applies_paused = %d", c)
	}
	i.Clear()
}

func TestDurationJSON(t *testing.T) {
	var d Duration
	if err := d.UnmarshalJSON([]byte(`"1m30s"`)); err != nil || time.Duration(d) != 90*time.Second {
		t.Fatal(d, err)
	}
	if err := d.UnmarshalJSON([]byte(`5`)); err == nil {
		t.Fatal("number accepted")
	}
	if b, _ := Duration(250 * time.Millisecond).MarshalJSON(); string(b) != `"250ms"` {
		t.Fatal(string(b))
	}
}
