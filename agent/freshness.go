package agent

import (
	"fmt"
	"sync/atomic"
	"time"
)

// freshness implements the staleness bound on local serving (-max-staleness).
//
// Every node answers key-state reads and MACs from its own replica. A node
// that has lost touch with the leader (partitioned, or a leader that lost its
// quorum and stepped down) would keep serving a key set that may no longer
// be true: a key disabled at the leader would still produce MACs here. So a
// node that has not been a leader with a quorum, nor heard from one, for
// longer than the bound, or whose applied index has trailed the commit index
// for longer than the bound, refuses those operations with
// KeyUnavailableException (500, retried by the SDKs) until it is back in
// contact and caught up.
//
// The state is recomputed every tick by one goroutine; the request path
// reads one atomic pointer.
type freshness struct {
	bound time.Duration
	now   func() time.Time // nil: time.Now
	// lastGood is when this node last was the leader or heard from one
	// (unix ns); 0 until the first contact after start, so a node that
	// restarts into a partition does not serve its old state at all.
	lastGood atomic.Int64
	// lagSince is when the applied index first trailed the commit index
	// in the current run of lagging (unix ns), 0 when caught up.
	lagSince int64
	// needCatchUp is set at start and whenever the node loses contact:
	// serving resumes only once it has applied everything the leader had
	// committed when contact came back (target, fetched from the leader;
	// 0 while unknown). Its own commit index cannot tell it, as that never
	// exceeds its own log.
	needCatchUp bool
	target      uint64 // an FSM (command) index
	haveTarget  bool
	reason      atomic.Pointer[string] // nil when fresh
	// behind is the highest index of a write acknowledged through this
	// node that its replica had not applied when it answered (0: none);
	// appliedSeen the applied index at the last update. Reads here refuse
	// until applied catches up with behind: read-your-writes.
	behind      atomic.Uint64
	appliedSeen atomic.Uint64
	refused     atomic.Int64 // requests refused while stale
	periods     atomic.Int64 // times the node became stale
}

// newFreshness returns the state of a node that has just started: stale
// until it has been in contact with a leader and caught up, so that not
// even the requests that arrive before the first update are answered from
// the state it replays from disk.
func newFreshness(bound time.Duration) *freshness {
	f := &freshness{bound: bound, needCatchUp: true}
	msg := staleMessage("has not been in contact with a cluster leader since it started")
	f.reason.Store(&msg)
	f.periods.Store(1)
	return f
}

// check is the api.Config.CheckFresh hook: nil when the node may serve.
//
// Besides the state the loop computed, it compares the last good contact
// with the clock itself: a process that was stopped (SIGSTOP, a long GC or
// VM pause) longer than the bound may serve requests before the loop runs
// again, and must not answer them from a state it has not re-validated.
func (f *freshness) check() error {
	if f == nil {
		return nil
	}
	if r := f.reason.Load(); r != nil {
		f.refused.Add(1)
		return staleError(*r)
	}
	if b := f.behind.Load(); b != 0 && f.appliedSeen.Load() < b {
		f.refused.Add(1)
		return staleError(staleMessage(fmt.Sprintf("has not yet applied a write acknowledged through it, index %d", b)))
	}
	if last := f.lastGood.Load(); last != 0 {
		now := time.Now
		if f.now != nil {
			now = f.now
		}
		if age := time.Duration(now().UnixNano() - last); age > f.bound {
			f.refused.Add(1)
			return staleError(staleMessage(fmt.Sprintf("has not confirmed contact with a cluster leader for %s, more than its staleness bound of %s", age.Round(time.Millisecond), f.bound)))
		}
	}
	return nil
}

func (f *freshness) targetText() string {
	if !f.haveTarget {
		return "not known yet"
	}
	return fmt.Sprint(f.target)
}

// needsTarget reports that the node is back in contact but does not know
// yet up to which index it must apply before serving again.
func (f *freshness) needsTarget() bool {
	return f != nil && f.needCatchUp && !f.haveTarget && f.lastGood.Load() != 0
}

// setTarget records the index of the last command the leader's FSM had
// applied: the node serves again once its own FSM has reached it.
func (f *freshness) setTarget(index uint64) {
	f.target, f.haveTarget = index, true
}

// staleMessage is the KeyUnavailableException text of a stale node: AWS's
// sentence, then why this node refuses ("This keyraft node <reason>").
func staleMessage(reason string) string {
	return "The request was rejected because the specified KMS key is not available. You can retry the request. (This keyraft node " + reason + "; its copy of the key state may be out of date. Another node may answer.)"
}

type staleError string

func (e staleError) Error() string { return string(e) }

// stale reports whether the node is stale now, and why.
func (f *freshness) stale() (bool, string) {
	if f == nil {
		return false, ""
	}
	if r := f.reason.Load(); r != nil {
		return true, *r
	}
	return false, ""
}

// markBehind is the cluster's OnBehind hook: a write acknowledged through
// this node has index, which the replica has not applied yet.
func (f *freshness) markBehind(index uint64) {
	if f == nil {
		return
	}
	for {
		cur := f.behind.Load()
		if index <= cur || f.behind.CompareAndSwap(cur, index) {
			return
		}
	}
}

// update recomputes the state at now from what the node reports:
// leaderQuorum is when this node, as leader, last confirmed a quorum (zero
// when it is not the leader), lastContact how long ago it last heard from a
// leader (negative if never), applied and commit Raft's applied and commit
// indexes, fsmApplied the index of the last command the FSM applied.
func (f *freshness) update(now, leaderQuorum time.Time, lastContact time.Duration, applied, commit, fsmApplied uint64) {
	switch {
	case !leaderQuorum.IsZero():
		if q := leaderQuorum.UnixNano(); q > f.lastGood.Load() {
			f.lastGood.Store(q)
		}
	case lastContact >= 0:
		if heard := now.Add(-lastContact).UnixNano(); heard > f.lastGood.Load() {
			f.lastGood.Store(heard)
		}
	}
	f.appliedSeen.Store(fsmApplied)
	if b := f.behind.Load(); b != 0 && fsmApplied >= b {
		f.behind.CompareAndSwap(b, 0)
	}
	if applied < commit {
		if f.lagSince == 0 {
			f.lagSince = now.UnixNano()
		}
	} else {
		f.lagSince = 0
	}

	var reason string
	if last := f.lastGood.Load(); last == 0 {
		reason = "has not been in contact with a cluster leader since it started"
	} else if age := now.Sub(time.Unix(0, last)); age > f.bound {
		reason = fmt.Sprintf("has not been in contact with a cluster leader for %s, more than its staleness bound of %s", age.Round(time.Millisecond), f.bound)
	} else if f.lagSince != 0 && now.Sub(time.Unix(0, f.lagSince)) > f.bound {
		reason = fmt.Sprintf("has trailed the cluster's commit index for %s, more than its staleness bound of %s", now.Sub(time.Unix(0, f.lagSince)).Round(time.Millisecond), f.bound)
	}
	switch {
	case reason != "":
		f.needCatchUp, f.target, f.haveTarget = true, 0, false
	case f.needCatchUp && f.haveTarget && fsmApplied >= f.target:
		f.needCatchUp, f.target, f.haveTarget = false, 0, false
	case f.needCatchUp:
		reason = fmt.Sprintf("is catching up with the cluster after losing contact or restarting (applied index %d, leader's %s)", fsmApplied, f.targetText())
	}
	if reason == "" {
		f.reason.Store(nil)
		return
	}
	msg := staleMessage(reason)
	if f.reason.Swap(&msg) == nil {
		f.periods.Add(1)
	}
}
