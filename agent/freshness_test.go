package agent

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestFreshnessRules(t *testing.T) {
	bound := 10 * time.Second
	t0 := time.Unix(1_700_000_000, 0)
	var cur time.Time // the synthetic clock: the time of the last update
	clock := func() time.Time { return cur }
	f := newFreshness(bound)
	f.now = clock
	// A node that has just started refuses even before its first update.
	if err := f.check(); err == nil || !strings.Contains(err.Error(), "since it started") {
		t.Fatalf("just started: %v", err)
	}
	update := f.update
	f2 := func(at, quorum time.Time, lc time.Duration, applied, commit uint64) {
		cur = at
		update(at, quorum, lc, applied, commit, applied)
	}

	// A node that has never been in contact with a leader serves nothing.
	f2(t0, time.Time{}, -1, 5, 5)
	if err := f.check(); err == nil || !strings.Contains(err.Error(), "since it started") {
		t.Fatalf("never contacted: %v", err)
	}
	// Contact alone is not enough: the node serves again only once it has
	// applied what the leader had committed when contact came back.
	f2(t0.Add(time.Second), time.Time{}, 100*time.Millisecond, 5, 5)
	if !f.needsTarget() {
		t.Fatal("back in contact, the node must ask the leader how far to catch up")
	}
	if err := f.check(); err == nil || !strings.Contains(err.Error(), "catching up") {
		t.Fatalf("in contact, target unknown: %v", err)
	}
	f.setTarget(8) // the leader had committed up to 8; we applied 5
	f2(t0.Add(1100*time.Millisecond), time.Time{}, 100*time.Millisecond, 5, 5)
	if err := f.check(); err == nil || !strings.Contains(err.Error(), "applied index 5, leader's 8") {
		t.Fatalf("in contact, behind: %v", err)
	}
	f2(t0.Add(1200*time.Millisecond), time.Time{}, 100*time.Millisecond, 8, 8)
	if err := f.check(); err != nil {
		t.Fatalf("in contact and caught up: %v", err)
	}
	if f.needsTarget() {
		t.Fatal("caught up, yet asks for a target")
	}
	// Contact 9s ago is within the bound, 11s ago is not.
	f2(t0.Add(10*time.Second), time.Time{}, 9*time.Second, 5, 5)
	if err := f.check(); err != nil {
		t.Fatalf("9s without contact is within a 10s bound: %v", err)
	}
	f2(t0.Add(12*time.Second), time.Time{}, 11*time.Second, 5, 5)
	err := f.check()
	if err == nil || !strings.Contains(err.Error(), "not available") || !strings.Contains(err.Error(), "staleness bound of 10s") {
		t.Fatalf("11s without contact: %v", err)
	}
	var se staleError
	if !errors.As(err, &se) {
		t.Fatalf("error type %T", err)
	}
	// Two stale periods so far (before the first contact and catching up,
	// and now); refused requests: 4 in the first, 1 now.
	if f.periods.Load() != 2 || f.refused.Load() != 5 {
		t.Fatalf("periods %d refused %d", f.periods.Load(), f.refused.Load())
	}
	// A leader is fresh as long as it keeps confirming its quorum (once
	// caught up after the stale period).
	f2(t0.Add(13*time.Second), t0.Add(13*time.Second), 0, 9, 9)
	f.setTarget(9)
	f2(t0.Add(13*time.Second), t0.Add(13*time.Second), 0, 9, 9)
	if err := f.check(); err != nil {
		t.Fatalf("leader: %v", err)
	}
	// A leader that lost its quorum steps down (Raft does that); the bound
	// then runs from the last moment it was leader, not from zero.
	f2(t0.Add(14*time.Second), time.Time{}, -1, 9, 9)
	if err := f.check(); err != nil {
		t.Fatalf("one second after stepping down: %v", err)
	}
	f2(t0.Add(24*time.Second), time.Time{}, -1, 9, 9)
	if err := f.check(); err == nil {
		t.Fatal("11s after stepping down with no new leader: still serving")
	}
	if f.periods.Load() != 3 {
		t.Fatalf("periods %d, want 3", f.periods.Load())
	}

	// A node that still believes it leads but has not confirmed its quorum
	// for longer than the bound (it was paused, or is cut off and Raft's
	// lease check has not demoted it yet) is stale.
	f2(t0.Add(30*time.Second), t0.Add(30*time.Second), 0, 9, 9)
	f.setTarget(9)
	f2(t0.Add(30*time.Second), t0.Add(30*time.Second), 0, 9, 9)
	if err := f.check(); err != nil {
		t.Fatalf("leader that just confirmed its quorum: %v", err)
	}
	f2(t0.Add(40500*time.Millisecond), t0.Add(30*time.Second), 0, 9, 9)
	if err := f.check(); err == nil {
		t.Fatal("a leader that has not confirmed its quorum for 10.5s still serves")
	}
	if f.periods.Load() != 4 {
		t.Fatalf("periods %d, want 4", f.periods.Load())
	}

	// In contact but applying too slowly: the applied index trails the
	// commit index for longer than the bound.
	g := &freshness{bound: bound, now: clock}
	g2 := func(at, quorum time.Time, lc time.Duration, applied, commit uint64) {
		cur = at
		g.update(at, quorum, lc, applied, commit, applied)
	}
	g2(t0, time.Time{}, 0, 10, 20)
	g2(t0.Add(5*time.Second), time.Time{}, 0, 15, 20)
	if err := g.check(); err != nil {
		t.Fatalf("lagging 5s: %v", err)
	}
	g2(t0.Add(11*time.Second), time.Time{}, 0, 19, 25)
	if err := g.check(); err == nil || !strings.Contains(err.Error(), "trailed") {
		t.Fatalf("lagging 11s: %v", err)
	}
	g.setTarget(25)
	g2(t0.Add(12*time.Second), time.Time{}, 0, 25, 25)
	if err := g.check(); err != nil {
		t.Fatalf("caught up: %v", err)
	}

	// A process that was stopped longer than the bound refuses on its own
	// clock before the loop has re-validated anything.
	p := &freshness{bound: 50 * time.Millisecond}
	p.update(time.Now(), time.Now(), 0, 1, 1, 1)
	if err := p.check(); err != nil {
		t.Fatalf("just confirmed: %v", err)
	}
	time.Sleep(80 * time.Millisecond) // stands in for SIGSTOP: no update ran
	if err := p.check(); err == nil || !strings.Contains(err.Error(), "not confirmed contact") {
		t.Fatalf("after a pause longer than the bound: %v", err)
	}

	// Read-your-writes: a write acknowledged through this node that its
	// replica has not applied yet makes reads here wait for it.
	r := &freshness{bound: time.Hour}
	r.update(time.Now(), time.Now(), 0, 10, 10, 10)
	r.setTarget(10)
	r.update(time.Now(), time.Now(), 0, 10, 10, 10)
	if err := r.check(); err != nil {
		t.Fatalf("fresh node: %v", err)
	}
	r.markBehind(20)
	r.markBehind(15) // a lower index never lowers the mark
	if err := r.check(); err == nil || !strings.Contains(err.Error(), "index 20") {
		t.Fatalf("behind a write it acknowledged: %v", err)
	}
	r.update(time.Now(), time.Now(), 0, 19, 20, 19)
	if err := r.check(); err == nil {
		t.Fatal("applied 19 of 20: still behind")
	}
	r.update(time.Now(), time.Now(), 0, 20, 20, 20)
	if err := r.check(); err != nil {
		t.Fatalf("caught up with its own write: %v", err)
	}
	var none *freshness
	none.markBehind(5) // no bound configured: a no-op

	// No bound configured: a nil freshness always serves.
	var off *freshness
	if err := off.check(); err != nil {
		t.Fatal(err)
	}
}
