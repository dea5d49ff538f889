package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/hashicorp/raft"
)

// leaderLoop consumes raft's NotifyCh (never LeaderCh, which drops
// transitions) and runs leader-only work per term. It never blocks on raft:
// each leadership runs in its own goroutine, and the next one waits for the
// previous one to finish before it starts.
func (n *Node) leaderLoop() {
	defer n.wg.Done()
	var (
		cancel context.CancelFunc
		done   chan struct{} // closed when the current/last leadership ended
	)
	for {
		select {
		case isLeader := <-n.notifyCh:
			if isLeader {
				if cancel != nil {
					continue // already running
				}
				n.stats.leadershipGained.Add(1)
				n.log.Info("gained raft leadership", "term", n.raft.CurrentTerm())
				var ctx context.Context
				ctx, cancel = context.WithCancel(context.Background())
				prev := done
				done = make(chan struct{})
				go n.runLeadership(ctx, prev, done)
			} else if cancel != nil {
				n.stats.leadershipLost.Add(1)
				n.log.Info("lost raft leadership")
				cancel()
				cancel = nil
			}
		case <-n.shutdownCh:
			if cancel != nil {
				cancel()
			}
			if done != nil {
				<-done
			}
			return
		}
	}
}

// runLeadership establishes leadership with a Barrier, then runs reconcile and
// Config.OnLeader until ctx is cancelled.
func (n *Node) runLeadership(ctx context.Context, prev <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	if prev != nil {
		<-prev // the previous term's work has been cancelled and is ending
	}
	established := time.Now()
	if !n.establish(ctx) {
		return
	}
	// The barrier committed, so a quorum followed us at least since we
	// started establishing.
	n.quorumAt.Store(established.UnixNano())
	n.leaderReady.Store(true)
	defer n.leaderReady.Store(false)

	finished := make(chan struct{}, 3)
	running := 2
	go func() {
		n.reconcileLoop(ctx)
		finished <- struct{}{}
	}()
	go func() {
		n.quorumLoop(ctx)
		finished <- struct{}{}
	}()
	if n.cfg.OnLeader != nil {
		running++
		go func() {
			defer func() { finished <- struct{}{} }()
			n.cfg.OnLeader(ctx)
		}()
	}
	for range running {
		<-finished
	}
}

// establish waits for the new term's no-op (and everything before it) to be
// applied by issuing a Barrier. After every third failure it tries to give
// leadership away, as Consul does, rather than serve as a leader whose FSM may
// be behind; it keeps trying while it is still leader.
func (n *Node) establish(ctx context.Context) bool {
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		if ctx.Err() != nil || n.raft.State() != raft.Leader {
			return false
		}
		err := waitFuture(ctx, n.raft.Barrier(n.cfg.ApplyTimeout))
		if err == nil {
			n.log.Info("leadership established (barrier applied)", "applied_index", n.raft.AppliedIndex())
			return true
		}
		n.stats.barrierFailures.Add(1)
		if ctx.Err() != nil {
			return false
		}
		n.log.Warn("leader barrier failed", "attempt", attempt, "error", err)
		if attempt%3 == 0 {
			n.log.Warn("could not establish leadership; trying to transfer it")
			if err := waitFuture(ctx, n.raft.LeadershipTransfer()); err != nil {
				n.log.Warn("leadership transfer after failed barriers", "error", err)
			}
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff):
			backoff = min(backoff*2, 2*time.Second)
		}
	}
}

// quorumLoop confirms, several times a second, that a quorum still
// follows this leader (VerifyLeader), and records when it last did. Raft
// itself only notices a lost quorum at its next lease check, and a leader
// process that was stopped (SIGSTOP, a VM pause) believes it still leads
// until then; LeaderQuorumContact lets the staleness bound count from the
// last confirmation instead.
func (n *Node) quorumLoop(ctx context.Context) {
	t := time.NewTicker(quorumCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			start := time.Now()
			if waitFuture(ctx, n.raft.VerifyLeader()) == nil {
				n.quorumAt.Store(start.UnixNano())
			}
		}
	}
}

// quorumCheckInterval is how often a leader confirms its quorum.
const quorumCheckInterval = 100 * time.Millisecond

// LeaderQuorumContact is when this node, as leader, last confirmed that a
// quorum followed it; zero when it is not the leader.
func (n *Node) LeaderQuorumContact() time.Time {
	if n.raft.State() != raft.Leader {
		return time.Time{}
	}
	if ns := n.quorumAt.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

func (n *Node) reconcileLoop(ctx context.Context) {
	t := time.NewTicker(n.cfg.ReconcileInterval)
	defer t.Stop()
	for {
		n.reconcile(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-n.pokeCh:
		}
	}
}

// reconcile makes the raft configuration follow gossip: alive members that are
// missing (or whose raft address changed) are added as voters; members that
// left gracefully are removed. Failed members are left alone (failed is not
// removed), and we never remove ourselves here.
func (n *Node) reconcile(ctx context.Context) {
	if ctx.Err() != nil || n.raft.State() != raft.Leader {
		return
	}
	f := n.raft.GetConfiguration()
	if err := waitFuture(ctx, f); err != nil {
		return
	}
	self := raft.ServerID(n.cfg.NodeID)
	servers := f.Configuration().Servers
	inCfg := make(map[raft.ServerID]raft.Server, len(servers))
	for _, s := range servers {
		inCfg[s.ID] = s
	}
	members := n.members.list()
	alive := make(map[raft.ServerID]bool)
	for _, m := range members {
		if m.Status == GossipAlive {
			alive[raft.ServerID(m.ID)] = true
		}
	}
	for _, m := range members {
		if ctx.Err() != nil {
			return
		}
		id := raft.ServerID(m.ID)
		if id == self {
			continue
		}
		switch m.Status {
		case GossipAlive:
			if m.RaftAddr == "" {
				continue
			}
			addr := raft.ServerAddress(m.RaftAddr)
			if s, ok := inCfg[id]; ok && s.Address == addr && s.Suffrage == raft.Voter {
				continue
			}
			// A different, not-alive server ID on the same raft address is a
			// stale identity of this host (e.g. wiped and renamed): drop it
			// first so two entries never share an address.
			for _, s := range servers {
				if s.ID != id && s.ID != self && s.Address == addr && !alive[s.ID] {
					n.log.Info("removing stale server with the same raft address", "server", s.ID, "addr", addr, "new", id)
					if err := waitFuture(ctx, n.raft.RemoveServer(s.ID, 0, n.cfg.ApplyTimeout)); err != nil {
						n.stats.reconcileErrors.Add(1)
						n.log.Warn("remove stale server", "server", s.ID, "error", err)
						return
					}
					n.stats.reconcileRemovals.Add(1)
				}
			}
			if old, ok := inCfg[id]; ok {
				n.log.Info("updating voter", "server", id, "old_addr", old.Address, "addr", addr, "old_suffrage", old.Suffrage.String())
			} else {
				n.log.Info("adding voter", "server", id, "addr", addr)
			}
			if err := waitFuture(ctx, n.raft.AddVoter(id, addr, 0, n.cfg.ApplyTimeout)); err != nil {
				n.stats.reconcileErrors.Add(1)
				n.log.Warn("add voter", "server", id, "error", err)
				return
			}
			n.stats.reconcileAdds.Add(1)
		case GossipLeft:
			if _, ok := inCfg[id]; !ok {
				continue
			}
			n.log.Info("removing server that left", "server", id)
			if err := waitFuture(ctx, n.raft.RemoveServer(id, 0, n.cfg.ApplyTimeout)); err != nil {
				n.stats.reconcileErrors.Add(1)
				n.log.Warn("remove server", "server", id, "error", err)
				return
			}
			n.stats.reconcileRemovals.Add(1)
		}
	}
}

// waitFuture waits for f or ctx, whichever comes first. raft always answers
// its futures eventually (at the latest on shutdown), so the helper goroutine
// ends.
func waitFuture(ctx context.Context, f raft.Future) error {
	ch := make(chan error, 1)
	go func() { ch <- f.Error() }()
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Barrier waits until every entry committed before the call is applied to
// the local FSM. Leader only (ErrNotLeader otherwise).
func (n *Node) Barrier(ctx context.Context) error {
	if n.isClosing() {
		return ErrShutdown
	}
	if n.raft.State() != raft.Leader {
		return ErrNotLeader
	}
	err := waitFuture(ctx, n.raft.Barrier(n.timeoutFor(ctx)))
	return mapRaftErr(err)
}

// ReadBarrier makes a linearizable read possible on the leader (rqlite's
// waitForLinearizableRead, Consul's consistentRead): it requires that this
// leader has established itself in its term (its Barrier has applied), reads
// the commit index, confirms leadership with a quorum (VerifyLeader), and
// waits until the FSM has applied that index. After it returns nil, reading
// the local FSM observes every write acknowledged before the call.
func (n *Node) ReadBarrier(ctx context.Context) (uint64, error) {
	if n.isClosing() {
		return 0, ErrShutdown
	}
	if n.raft.State() != raft.Leader || !n.leaderReady.Load() {
		return 0, ErrNotLeader
	}
	idx := n.raft.CommitIndex()
	if err := waitFuture(ctx, n.raft.VerifyLeader()); err != nil {
		return 0, mapRaftErr(err)
	}
	for n.AppliedIndex() < idx {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-n.shutdownCh:
			return 0, ErrShutdown
		case <-time.After(2 * time.Millisecond):
		}
	}
	return idx, nil
}

// WaitForLeader blocks until this node knows a leader (itself or another),
// ctx ends (ctx.Err()) or the node shuts down (ErrShutdown).
func (n *Node) WaitForLeader(ctx context.Context) error {
	for {
		if n.isClosing() {
			return ErrShutdown
		}
		if n.LeaderID() != "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-n.shutdownCh:
			return ErrShutdown
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// timeoutFor returns the time left before ctx's deadline, capped at
// ApplyTimeout.
func (n *Node) timeoutFor(ctx context.Context) time.Duration {
	t := n.cfg.ApplyTimeout
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl); left < t {
			t = max(left, time.Millisecond)
		}
	}
	return t
}

func mapRaftErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost),
		errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return errors.Join(ErrNotLeader, err)
	case errors.Is(err, raft.ErrRaftShutdown):
		return ErrShutdown
	}
	return err
}

type commitIndexResponse struct {
	CommitIndex uint64 `json:"commit_index"`
	// FSMApplied is the index of the last command the leader's FSM has
	// applied. Every FSM applies the same commands at the same indexes, so
	// a node whose FSMAppliedIndex has reached it holds at least the state
	// the leader held then.
	FSMApplied uint64 `json:"fsm_applied_index"`
}

// FSMAppliedIndex is the index of the last command this node's FSM has
// applied (Raft's own applied index also counts no-op and configuration
// entries and entries still queued for the FSM).
func (n *Node) FSMAppliedIndex() uint64 { return n.fsmApplied() }

// LeaderFSMAppliedIndex asks the leader for the index of the last command
// its FSM has applied (its own when this node leads). A node that must catch
// up before it serves again (after a restart or a partition) waits until its
// FSMAppliedIndex reaches it: its own commit index cannot tell it, as it
// never exceeds its own log.
func (n *Node) LeaderFSMAppliedIndex(ctx context.Context) (uint64, error) {
	if n.raft.State() == raft.Leader {
		return n.fsmApplied(), nil
	}
	addr := n.LeaderAPIAddr()
	if addr == "" {
		return 0, ErrNoLeader
	}
	req, err := n.internalRequest(ctx, http.MethodGet, "http://"+addr+"/v1/internal/commit-index", nil)
	if err != nil {
		return 0, err
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("leader commit index: HTTP %d: %s", resp.StatusCode, errorText(body))
	}
	var ci commitIndexResponse
	if err := json.Unmarshal(body, &ci); err != nil {
		return 0, err
	}
	return ci.FSMApplied, nil
}
