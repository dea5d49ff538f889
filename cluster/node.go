package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/keyraft/keyraft/chaos/faults"
)

// Errors returned by Node methods; compare with errors.Is.
var (
	// ErrNoLeader: no leader could be reached within the apply timeout (or
	// the caller's context). The write was not applied.
	ErrNoLeader = errors.New("cluster: no leader available")
	// ErrNotLeader: a leader-only operation was called on a non-leader.
	ErrNotLeader = errors.New("cluster: not the leader")
	// ErrShutdown: the node is shut down (or shutting down).
	ErrShutdown = errors.New("cluster: node is shut down")
	// ErrUnknownOutcome: the write was handed to raft (or to the leader) but
	// its result was lost (leadership lost before commit, leader connection
	// broken after sending, context expired while waiting). It may or may
	// not have been applied; callers must not assume either.
	ErrUnknownOutcome = errors.New("cluster: write outcome unknown")
)

const (
	raftDirName      = "raft"
	raftDBName       = "raft.db"
	snapshotsRetain  = 2
	raftMaxPool      = 3
	raftTCPTimeout   = 10 * time.Second
	logCacheSize     = 512
	leaveGossipLimit = 5 * time.Second
)

// Node is one keyraft cluster member: a raft replica of the FSM it was given,
// a memberlist gossip member, and the forwarding/membership logic around
// them. All methods are safe for concurrent use.
type Node struct {
	cfg        Config
	log        *slog.Logger
	raft       *raft.Raft
	raftRef    atomic.Pointer[raft.Raft] // for resolvePeer, which may run before New returns
	trans      *raft.NetworkTransport
	net        *faults.Net // preamble + fault rules on raft, gossip and forwarding
	pauser     applyPauser // nil unless the FSM was wrapped with faults.WrapFSM
	store      *raftboltdb.BoltStore
	ml         *memberlist.Memberlist
	members    *memberTable
	signer     *requestSigner
	fsmIndex   appliedIndexer // nil unless the FSM tracks its applied index
	quorumAt   atomic.Int64   // unix ns of the last confirmed quorum contact as leader
	raftAddr   string
	gossipAddr string
	hadState   bool

	client     *http.Client // forwarding and internal calls (per-request ctx)
	notifyCh   chan bool
	pokeCh     chan struct{} // membership changed: reconcile soon
	bootPokeCh chan struct{} // membership changed: try bootstrap soon

	shutdownCh   chan struct{}
	closing      atomic.Bool
	shutdownMu   sync.Mutex
	shutdownDone bool
	shutdownErr  error
	wg           sync.WaitGroup

	leaderReady  atomic.Bool
	bootstrapped atomic.Bool
	stats        counters
}

// counters are event counts reported in Status.Counters (per node, so several
// nodes can live in one process; no global expvar).
type counters struct {
	appliedLocal      atomic.Int64
	applyForwarded    atomic.Int64
	applyRetries      atomic.Int64
	applyNoLeader     atomic.Int64
	applyUnknown      atomic.Int64
	applyLocalLag     atomic.Int64
	forwardedServed   atomic.Int64
	leadershipGained  atomic.Int64
	leadershipLost    atomic.Int64
	barrierFailures   atomic.Int64
	reconcileAdds     atomic.Int64
	reconcileRemovals atomic.Int64
	reconcileErrors   atomic.Int64
	bootstraps        atomic.Int64
}

func (c *counters) snapshot() map[string]int64 {
	return map[string]int64{
		"applied_local":      c.appliedLocal.Load(),
		"apply_forwarded":    c.applyForwarded.Load(),
		"apply_retries":      c.applyRetries.Load(),
		"apply_no_leader":    c.applyNoLeader.Load(),
		"apply_unknown":      c.applyUnknown.Load(),
		"apply_local_lag":    c.applyLocalLag.Load(),
		"forwarded_served":   c.forwardedServed.Load(),
		"leadership_gained":  c.leadershipGained.Load(),
		"leadership_lost":    c.leadershipLost.Load(),
		"barrier_failures":   c.barrierFailures.Load(),
		"reconcile_adds":     c.reconcileAdds.Load(),
		"reconcile_removals": c.reconcileRemovals.Load(),
		"reconcile_errors":   c.reconcileErrors.Load(),
		"bootstraps":         c.bootstraps.Load(),
	}
}

// New opens (or creates) the raft state under cfg.DataDir, starts raft and
// gossip and returns. It never blocks on other nodes: joining the seeds,
// bootstrapping and finding a leader happen in the background.
func New(cfg Config, fsm raft.FSM) (*Node, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if fsm == nil {
		return nil, errors.New("cluster: nil FSM")
	}
	log := cfg.Logger
	n := &Node{
		cfg:        cfg,
		log:        log,
		members:    newMemberTable(),
		signer:     newRequestSigner(cfg.ClusterAuthKey),
		notifyCh:   make(chan bool, 16),
		pokeCh:     make(chan struct{}, 1),
		bootPokeCh: make(chan struct{}, 1),
		shutdownCh: make(chan struct{}),
	}
	n.net = &faults.Net{
		Self:     cfg.NodeID,
		Resolve:  n.resolvePeer,
		Injector: cfg.Faults,
		Dialer:   net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second},
		Logger:   log,
	}
	n.client = &http.Client{Transport: &http.Transport{
		Proxy:                 nil, // internal traffic never goes through a proxy
		DialContext:           n.net.DialContext,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: cfg.ApplyTimeout + 5*time.Second,
	}}
	if ix, ok := fsm.(appliedIndexer); ok {
		n.fsmIndex = ix
	}
	if p, ok := fsm.(applyPauser); ok {
		n.pauser = p
	}
	var cleanups []func()
	started := false
	defer func() {
		if !started {
			for i := len(cleanups) - 1; i >= 0; i-- {
				cleanups[i]()
			}
		}
	}()

	raftDir := filepath.Join(cfg.DataDir, raftDirName)
	if err := os.MkdirAll(raftDir, 0o700); err != nil {
		return nil, fmt.Errorf("cluster: create raft dir: %w", err)
	}
	hl := newHclogAdapter(log, "raft")
	store, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(raftDir, raftDBName)})
	if err != nil {
		return nil, fmt.Errorf("cluster: open raft store: %w", err)
	}
	cleanups = append(cleanups, func() { store.Close() })
	n.store = store
	logs, err := raft.NewLogCache(logCacheSize, store)
	if err != nil {
		return nil, fmt.Errorf("cluster: raft log cache: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(raftDir, snapshotsRetain, hl.Named("snapshot"))
	if err != nil {
		return nil, fmt.Errorf("cluster: raft snapshot store: %w", err)
	}
	n.hadState, err = raft.HasExistingState(logs, store, snaps)
	if err != nil {
		return nil, fmt.Errorf("cluster: check raft state: %w", err)
	}

	trans, err := n.newRaftTransport()
	if err != nil {
		return nil, fmt.Errorf("cluster: raft transport on %s: %w", cfg.RaftBindAddr, err)
	}
	cleanups = append(cleanups, func() { trans.Close() })
	n.trans = trans
	n.raftAddr = string(trans.LocalAddr())

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.Logger = hl
	rc.NotifyCh = n.notifyCh
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.TrailingLogs = cfg.TrailingLogs
	// A removed node stays up (not in the configuration it never starts an
	// election) so that the leader can add it back when it rejoins gossip.
	rc.ShutdownOnRemove = false
	if cfg.HeartbeatTimeout > 0 {
		rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	}
	if cfg.ElectionTimeout > 0 {
		rc.ElectionTimeout = cfg.ElectionTimeout
	}
	if cfg.LeaderLeaseTimeout > 0 {
		rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	}
	if err := raft.ValidateConfig(rc); err != nil {
		return nil, fmt.Errorf("cluster: raft config: %w", err)
	}
	r, err := raft.NewRaft(rc, fsm, logs, store, snaps, trans)
	if err != nil {
		return nil, fmt.Errorf("cluster: start raft: %w", err)
	}
	cleanups = append(cleanups, func() { r.Shutdown().Error() })
	n.raft = r
	n.raftRef.Store(r)

	meta, err := json.Marshal(nodeMeta{ID: cfg.NodeID, RaftAddr: n.raftAddr, APIAddr: cfg.APIAdvertiseAddr})
	if err != nil {
		return nil, err
	}
	if len(meta) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("cluster: gossip metadata is %d bytes, limit %d (shorten NodeID/addresses)", len(meta), memberlist.MetaMaxSize)
	}
	mc, err := n.memberlistConfig(meta)
	if err != nil {
		return nil, err
	}
	gt, err := n.newGossipTransport(mc)
	if err != nil {
		return nil, fmt.Errorf("cluster: start gossip on %s: %w", cfg.GossipBindAddr, err)
	}
	mc.Transport = gt
	ml, err := memberlist.Create(mc)
	if err != nil {
		gt.Shutdown()
		return nil, fmt.Errorf("cluster: start gossip on %s: %w", cfg.GossipBindAddr, err)
	}
	n.ml = ml
	n.gossipAddr = ml.LocalNode().Address()

	started = true
	n.wg.Add(2)
	go n.leaderLoop()
	go n.joinLoop()
	switch {
	case n.hadState:
		log.Info("existing raft state found; not bootstrapping", "last_index", r.LastIndex())
	case cfg.BootstrapExpect > 0:
		n.wg.Add(1)
		go n.bootstrapLoop()
	default:
		log.Info("no raft state and BootstrapExpect=0: waiting to be added by a leader")
	}
	log.Info("cluster node started", "raft_addr", n.raftAddr, "gossip_addr", n.gossipAddr,
		"api_addr", cfg.APIAdvertiseAddr, "bootstrap_expect", cfg.BootstrapExpect, "seeds", cfg.Join)
	return n, nil
}

func (n *Node) memberlistConfig(meta []byte) (*memberlist.Config, error) {
	mc := memberlist.DefaultLANConfig()
	mc.Name = n.cfg.NodeID
	bindHost, bindPortS, _ := net.SplitHostPort(n.cfg.GossipBindAddr)
	bindPort, err := strconv.Atoi(bindPortS)
	if err != nil {
		return nil, fmt.Errorf("cluster: GossipBindAddr port: %w", err)
	}
	if bindHost == "" {
		bindHost = "0.0.0.0"
	} else if ip, _, err := resolveGossipAdvertise(n.cfg.GossipBindAddr); err != nil {
		return nil, fmt.Errorf("cluster: GossipBindAddr: %w", err)
	} else {
		bindHost = ip
	}
	mc.BindAddr, mc.BindPort = bindHost, bindPort
	mc.AdvertiseAddr, mc.AdvertisePort = "", bindPort
	if n.cfg.GossipAdvertiseAddr != "" {
		ip, port, err := resolveGossipAdvertise(n.cfg.GossipAdvertiseAddr)
		if err != nil {
			return nil, fmt.Errorf("cluster: GossipAdvertiseAddr: %w", err)
		}
		mc.AdvertiseAddr, mc.AdvertisePort = ip, port
	}
	mc.SecretKey = gossipKey(n.cfg.ClusterAuthKey)
	mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
	d := &gossipDelegate{n: n, meta: meta}
	mc.Delegate = d
	mc.Events = d
	mc.Logger = newMemberlistLogger(n.log)
	mc.LogOutput = nil
	// A crashed node that comes back on another address may take over its
	// name once the old incarnation has been dead this long.
	mc.DeadNodeReclaimTime = 30 * time.Second
	if n.cfg.gossipTuning != nil {
		n.cfg.gossipTuning(mc)
	}
	return mc, nil
}

// poke asks the reconcile and bootstrap loops to run soon.
func (n *Node) poke() {
	select {
	case n.pokeCh <- struct{}{}:
	default:
	}
	select {
	case n.bootPokeCh <- struct{}{}:
	default:
	}
}

func (n *Node) isClosing() bool { return n.closing.Load() }

// NodeID returns this node's ID.
func (n *Node) NodeID() string { return n.cfg.NodeID }

// RaftAddr returns the advertised raft address (useful with port 0).
func (n *Node) RaftAddr() string { return n.raftAddr }

// GossipAddr returns the advertised gossip address (useful with port 0).
func (n *Node) GossipAddr() string { return n.gossipAddr }

// IsLeader reports whether raft considers this node the leader right now.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// LeaderID returns the current leader's ID as known to this node, or "".
func (n *Node) LeaderID() string {
	_, id := n.raft.LeaderWithID()
	return string(id)
}

// LeaderAPIAddr returns the current leader's API address (from gossip
// metadata), or "" when no leader or no metadata is known.
func (n *Node) LeaderAPIAddr() string {
	id := n.LeaderID()
	if id == "" {
		return ""
	}
	if id == n.cfg.NodeID {
		return n.cfg.APIAdvertiseAddr
	}
	m, _ := n.members.get(id)
	return m.APIAddr
}

// LastContact returns how long ago this node last heard from a leader: 0 on
// the leader, -1 if never.
func (n *Node) LastContact() time.Duration {
	if n.raft.State() == raft.Leader {
		return 0
	}
	t := n.raft.LastContact()
	if t.IsZero() {
		return -1
	}
	return time.Since(t)
}

// CommitIndex is the highest log index this node knows to be committed.
func (n *Node) CommitIndex() uint64 { return n.raft.CommitIndex() }

// AppliedIndex is the index of the last log entry this node's Raft has
// applied: commands, and also the no-op and configuration entries that never
// reach the FSM, so it catches up with CommitIndex. While an FSM wrapped with
// faults.WrapFSM holds an entry back (apply pause), it is below that entry.
func (n *Node) AppliedIndex() uint64 {
	idx := n.raft.AppliedIndex()
	if n.pauser != nil {
		if b := n.pauser.BlockedApplyIndex(); b > 0 && b-1 < idx {
			idx = b - 1
		}
	}
	return idx
}

// fsmApplied is the index of the last command the FSM itself has applied,
// when the FSM reports it (an AppliedIndex() uint64 method); raft's own
// figure counts entries handed to the FSM, which may not be applied yet.
// Only command entries reach the FSM, so this is the right measure for
// "has my write been applied here" and the wrong one for "am I caught up".
func (n *Node) fsmApplied() uint64 {
	if n.fsmIndex != nil {
		return n.fsmIndex.AppliedIndex()
	}
	return n.raft.AppliedIndex()
}

// appliedIndexer is implemented by FSMs that track the last index they applied.
type appliedIndexer interface{ AppliedIndex() uint64 }

// Shutdown stops the node. It is idempotent; later calls return the first
// call's result.
//
// graceful (SIGINT/SIGTERM): if this node is the leader of more than one
// voter it transfers leadership (up to 3 attempts), broadcasts a gossip
// leave (the leader's reconcile then removes a "left" member), and makes
// sure it is removed from the raft configuration (asks the leader via
// POST /v1/internal/remove, or removes itself if it is still leader). Then
// gossip and raft stop and the stores are closed. A node restarted on the
// same data dir after a graceful leave comes back: it does not bootstrap
// (it has state), rejoins gossip, and the leader's reconcile adds it again as
// a voter; raft then catches it up (log or snapshot).
//
// Not graceful: raft and gossip stop and the stores close without telling
// anyone (as close to a crash as is possible in-process); the node stays in
// the configuration and is reported as failed by gossip.
func (n *Node) Shutdown(graceful bool) error {
	n.shutdownMu.Lock()
	defer n.shutdownMu.Unlock()
	if n.shutdownDone {
		return n.shutdownErr
	}
	n.shutdownDone = true
	if n.pauser != nil {
		n.pauser.ReleaseApply() // raft cannot stop while an Apply is held back
	}
	var errs []error
	if graceful {
		if err := n.leave(); err != nil {
			errs = append(errs, err)
		}
	}
	n.closing.Store(true)
	close(n.shutdownCh)
	if err := n.ml.Shutdown(); err != nil {
		errs = append(errs, fmt.Errorf("gossip shutdown: %w", err))
	}
	if err := n.raft.Shutdown().Error(); err != nil {
		errs = append(errs, fmt.Errorf("raft shutdown: %w", err))
	}
	// raft's transport Close stops the listener but leaves pooled outbound
	// connections open (and with them the peers' inbound handler goroutines):
	// close them too.
	n.trans.CloseStreams()
	n.wg.Wait()
	if err := n.store.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close raft store: %w", err))
	}
	n.client.CloseIdleConnections()
	n.shutdownErr = errors.Join(errs...)
	n.log.Info("cluster node stopped", "graceful", graceful)
	return n.shutdownErr
}

// leave is the graceful part of Shutdown. Every step is bounded.
func (n *Node) leave() error {
	deadline := time.Now().Add(n.cfg.ApplyTimeout)
	voters, inConfig := n.voterCount()
	if n.raft.State() == raft.Leader && voters > 1 {
		for attempt := 1; attempt <= 3; attempt++ {
			err := n.raft.LeadershipTransfer().Error()
			if err == nil {
				n.log.Info("leadership transferred before leaving")
				break
			}
			n.log.Warn("leadership transfer failed", "attempt", attempt, "error", err)
			time.Sleep(100 * time.Millisecond)
		}
	}
	n.announceLeave()
	if err := n.ml.Leave(leaveGossipLimit); err != nil {
		n.log.Warn("gossip leave broadcast", "error", err)
	}
	if !inConfig || voters <= 1 {
		// Never remove the last voter: that would make the data unreachable.
		return nil
	}
	return n.removeSelf(deadline)
}

// voterCount returns the number of voters and whether we are in the
// configuration.
func (n *Node) voterCount() (voters int, self bool) {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return 0, false
	}
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			voters++
		}
		if s.ID == raft.ServerID(n.cfg.NodeID) {
			self = true
		}
	}
	return voters, self
}

func (n *Node) removeSelf(deadline time.Time) error {
	id := n.cfg.NodeID
	var lastErr error
	for time.Now().Before(deadline) {
		if n.raft.State() == raft.Leader {
			f := n.raft.RemoveServer(raft.ServerID(id), 0, time.Until(deadline))
			if lastErr = f.Error(); lastErr == nil {
				n.log.Info("removed self from raft configuration")
				return nil
			}
		} else if leader := n.LeaderID(); leader != "" && leader != id {
			m, _ := n.members.get(leader)
			if m.APIAddr == "" {
				lastErr = fmt.Errorf("no API address known for leader %s", leader)
			} else if lastErr = n.requestRemove(m.APIAddr, id, deadline); lastErr == nil {
				n.log.Info("leader removed us from raft configuration", "leader", leader)
				return nil
			}
		} else {
			lastErr = ErrNoLeader
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-n.shutdownCh:
			return ErrShutdown
		}
	}
	n.log.Warn("could not confirm removal from the raft configuration before the leave timeout", "error", lastErr)
	return fmt.Errorf("cluster: leave: removal not confirmed: %w", lastErr)
}
