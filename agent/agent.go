package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/keyraft/keyraft/api"
	"github.com/keyraft/keyraft/auth"
	"github.com/keyraft/keyraft/chaos/faults"
	"github.com/keyraft/keyraft/cluster"
	"github.com/keyraft/keyraft/engine"
	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/quota"
)

// Config is everything one node needs. Zero values take the documented
// defaults (see cmd/keyraft and README.md).
type Config struct {
	NodeID string
	// DataDir holds the Raft log, stable store and snapshots.
	DataDir string

	HTTPAddr            string // bind address of the AWS API and /v1 endpoints
	HTTPAdvertiseAddr   string // what peers dial to forward writes; default HTTPAddr
	RaftAddr            string
	RaftAdvertiseAddr   string
	GossipAddr          string
	GossipAdvertiseAddr string

	Join            []string // gossip seeds host:port
	BootstrapExpect int

	Region    string // region of requests without a SigV4 credential scope ("none" auth)
	AccountID string // the default account: unauthenticated requests' ("none" auth)

	// Auth is "sigv4" (the default: every request must carry a valid AWS
	// Signature Version 4 of a principal of Credentials) or "none" (accept
	// every request; see api.AuthNone and docs/auth.md).
	Auth string
	// Credentials are the principals that may call the API (required for
	// sigv4, optional for none).
	Credentials *auth.Credentials
	// Quotas are the request-rate quotas of this node, quota class ->
	// requests per second (quota.DefaultAWSRates, quota.ParseOverrides);
	// nil or empty: no quotas. They are enforced per node.
	Quotas map[string]float64

	// SealKey is the 32-byte cluster seal key: key material is sealed with it
	// before it is proposed, and the cluster-internal credentials (forwarding
	// endpoint, gossip encryption) are derived from it. Every node of a
	// cluster must have the same one.
	SealKey []byte

	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	TrailingLogs      uint64
	ApplyTimeout      time.Duration

	// Raft timing overrides; zero keeps hashicorp/raft's defaults. Tests and
	// `keyraft dev` use shorter ones.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration

	// DeletionDay is how long one "day" of a ScheduleKeyDeletion pending
	// window lasts. Test-only knob: the API still takes 7-30 days.
	DeletionDay time.Duration
	// ReapInterval is how often the leader looks for keys to delete.
	ReapInterval time.Duration

	// MaxStaleness bounds how long this node keeps serving MACs and
	// key-state reads from its replica without contact with a leader (or
	// while its applied index trails the commit index). 0 turns the bound
	// off. See freshness.go.
	MaxStaleness time.Duration

	// GrantPropagationDelay is this node's grant propagation delay: for this
	// long after a grant is created the node acts as if it had not heard of
	// it (grant tokens bridge the gap), and for this long after a grant is
	// retired or revoked it still honours it (docs/consistency.md). 0: none.
	GrantPropagationDelay time.Duration
	// GrantTombstoneRetention is how long the leader keeps the tombstones of
	// retired and revoked grants before purging them (default 1h); it must
	// exceed every node's GrantPropagationDelay.
	GrantTombstoneRetention time.Duration

	// EnableFaultInjection serves the fault-injection admin API
	// (/v1/faults, chaos/faults) on this node. Off by default: it lets
	// anyone who reaches the port partition or slow the node.
	EnableFaultInjection bool

	Logger *slog.Logger
}

// Agent is one running node.
type Agent struct {
	cfg      Config
	log      *slog.Logger
	state    *fsm.FSM
	node     *cluster.Node
	api      *api.Server
	metrics  *metrics
	fresh    *freshness       // nil when MaxStaleness is 0
	sealer   *engine.Sealer   // seals the grant token secret the leader installs
	faults   *faults.Injector // nil unless EnableFaultInjection
	stop     chan struct{}
	listener net.Listener
	server   *http.Server

	stopOnce sync.Once
	stopErr  error
	served   chan struct{}
}

// Start brings a node up: the HTTP listener first (so that peers asking
// whether we already have Raft peers get an answer), then Raft and gossip.
func Start(cfg Config) (*Agent, error) {
	if err := cfg.withDefaults(); err != nil {
		return nil, err
	}
	sealer, err := engine.NewSealer(cfg.SealKey)
	if err != nil {
		return nil, fmt.Errorf("seal key: %w", err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	a := &Agent{cfg: cfg, log: cfg.Logger, served: make(chan struct{}), stop: make(chan struct{})}
	a.sealer = sealer
	if cfg.MaxStaleness > 0 {
		a.fresh = newFreshness(cfg.MaxStaleness)
	}
	a.state = fsm.New(fsm.Options{Unseal: sealer.Open})

	a.metrics = newMetrics(a)
	apiCfg := api.Config{
		Observe:       a.metrics.observe,
		CheckFresh:    a.fresh.check,
		DefaultRegion: cfg.Region,
		AccountID:     cfg.AccountID,
		Auth:          cfg.Auth,
		Credentials:   cfg.Credentials,
		Sealer:        sealer,
		DeletionDay:   cfg.DeletionDay,
		Logger:        cfg.Logger,
	}
	apiCfg.GrantPropagationDelay = cfg.GrantPropagationDelay
	apiCfg.GrantTombstoneRetention = cfg.GrantTombstoneRetention
	if cfg.Auth == api.AuthSigV4 {
		apiCfg.Verifier = auth.NewVerifier(cfg.Credentials, auth.VerifierOptions{})
	}
	if len(cfg.Quotas) > 0 {
		apiCfg.Quotas = quota.New(cfg.Quotas, nil)
	}
	// The API first: it checks the credentials' identity policies before
	// anything is started.
	if a.api, err = api.New(apiCfg, store{a}); err != nil {
		return nil, err
	}

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("http listener: %w", err)
	}
	a.listener = ln
	advertise := cfg.HTTPAdvertiseAddr
	if advertise == "" {
		advertise = ln.Addr().String()
	}

	if cfg.EnableFaultInjection {
		a.faults = faults.New(faults.WithLogger(cfg.Logger.With("component", "faults")))
		cfg.Logger.Warn("fault injection is enabled: /v1/faults can partition, slow or pause this node")
	}
	a.node, err = cluster.New(cluster.Config{
		Faults:              a.faults,
		NodeID:              cfg.NodeID,
		DataDir:             filepath.Clean(cfg.DataDir),
		RaftBindAddr:        cfg.RaftAddr,
		RaftAdvertiseAddr:   cfg.RaftAdvertiseAddr,
		GossipBindAddr:      cfg.GossipAddr,
		GossipAdvertiseAddr: cfg.GossipAdvertiseAddr,
		APIAdvertiseAddr:    advertise,
		Join:                cfg.Join,
		BootstrapExpect:     cfg.BootstrapExpect,
		SnapshotThreshold:   cfg.SnapshotThreshold,
		SnapshotInterval:    cfg.SnapshotInterval,
		TrailingLogs:        cfg.TrailingLogs,
		ApplyTimeout:        cfg.ApplyTimeout,
		ClusterAuthKey:      sealer.DeriveKey("cluster-auth"),
		Logger:              cfg.Logger,
		OnLeader:            a.leaderLoop,
		OnBehind:            a.fresh.markBehind,
		HeartbeatTimeout:    cfg.HeartbeatTimeout,
		ElectionTimeout:     cfg.ElectionTimeout,
		LeaderLeaseTimeout:  cfg.LeaderLeaseTimeout,
		StatusExtra:         a.statusExtra,
	}, faults.WrapFSM(a.state, a.faults))
	if err != nil {
		ln.Close()
		return nil, err
	}

	mux := http.NewServeMux()
	mux.Handle("GET /v1/metrics", a.metrics.handler())
	if a.faults != nil {
		mux.Handle(faults.AdminPath, a.faults.Handler())
		mux.Handle(faults.AdminPath+"/", a.faults.Handler())
	}
	mux.Handle("/v1/", a.node.Handler())
	mux.Handle("/", a.api.Handler())
	a.server = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug),
	}
	go func() {
		defer close(a.served)
		if err := a.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("http server stopped", "err", err)
		}
	}()
	if a.fresh != nil {
		go a.freshnessLoop()
	}
	a.log.Info("keyraft node started", "node_id", cfg.NodeID, "http", ln.Addr().String(),
		"raft", cfg.RaftAddr, "gossip", cfg.GossipAddr, "region", cfg.Region, "account", cfg.AccountID,
		"auth", cfg.Auth, "principals", cfg.Credentials.Len(), "quotas", len(cfg.Quotas) > 0)
	return a, nil
}

func (c *Config) withDefaults() error {
	if c.NodeID == "" {
		return errors.New("a node id is required (-node-id)")
	}
	if c.DataDir == "" {
		return errors.New("a data directory is required (-data-dir)")
	}
	if len(c.SealKey) == 0 {
		return errors.New("a seal key is required (-seal-key-file; create one with `keyraft keygen`)")
	}
	switch c.Auth {
	case "", api.AuthSigV4:
		c.Auth = api.AuthSigV4
		if c.Credentials == nil {
			return errors.New("sigv4 authentication (the default) needs credentials (-credentials FILE); " +
				"to accept unauthenticated requests on a trusted network, use -auth none")
		}
	case api.AuthNone:
	default:
		return fmt.Errorf("unknown authentication mode %q (want sigv4 or none)", c.Auth)
	}
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	if c.AccountID == "" {
		c.AccountID = "111122223333"
	}
	if c.DeletionDay == 0 {
		c.DeletionDay = 24 * time.Hour
	}
	if c.ReapInterval == 0 {
		c.ReapInterval = time.Second
	}
	if c.GrantTombstoneRetention == 0 {
		c.GrantTombstoneRetention = api.DefaultGrantTombstoneRetention
	}
	if c.GrantPropagationDelay < 0 || c.GrantTombstoneRetention <= c.GrantPropagationDelay {
		return fmt.Errorf("the grant tombstone retention (%s) must exceed the grant propagation delay (%s) of every node", c.GrantTombstoneRetention, c.GrantPropagationDelay)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	c.Logger = c.Logger.With("node", c.NodeID)
	return nil
}

// HTTPAddr is the address the API listens on (useful with port 0).
func (a *Agent) HTTPAddr() string { return a.listener.Addr().String() }

// Faults is this node's fault injector (nil unless EnableFaultInjection).
func (a *Agent) Faults() *faults.Injector { return a.faults }

// Node is the cluster layer of this agent.
func (a *Agent) Node() *cluster.Node { return a.node }

// State is this node's replicated state.
func (a *Agent) State() *fsm.FSM { return a.state }

// Shutdown stops the node. graceful: transfer leadership if leader, leave
// the cluster (removed from the Raft configuration), then stop. Otherwise
// stop in place, keeping membership, as a crash or `keyraft dev` stop does.
func (a *Agent) Shutdown(graceful bool) error {
	a.stopOnce.Do(func() {
		// Raft and gossip first: a graceful leave still needs the HTTP
		// endpoints of the others, not our own.
		close(a.stop)
		err := a.node.Shutdown(graceful)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if herr := a.server.Shutdown(ctx); herr != nil {
			a.server.Close()
		}
		<-a.served
		a.stopErr = err
		a.log.Info("keyraft node stopped", "graceful", graceful)
	})
	return a.stopErr
}

// store adapts the cluster node to the API's Store interface.
type store struct{ a *Agent }

func (s store) Apply(ctx context.Context, cmd []byte) ([]byte, error) {
	out, err := s.a.node.Apply(ctx, cmd)
	switch {
	case err == nil:
		return out, nil
	case errors.Is(err, cluster.ErrShutdown):
		return nil, fmt.Errorf("%w: %w", api.ErrShuttingDown, err)
	case errors.Is(err, cluster.ErrUnknownOutcome):
		return nil, fmt.Errorf("%w: %w", api.ErrOutcomeUnknown, err)
	case errors.Is(err, cluster.ErrNoLeader), errors.Is(err, cluster.ErrNotLeader):
		return nil, fmt.Errorf("%w: %w", api.ErrNoLeader, err)
	}
	return nil, err
}
func (s store) State() *fsm.FSM { return s.a.state }

func (a *Agent) statusExtra() map[string]any {
	extra := map[string]any{
		"state_digest":          a.state.Digest(),
		"key_count":             a.state.KeyCount(),
		"region":                a.cfg.Region,
		"account_id":            a.cfg.AccountID,
		"auth":                  a.cfg.Auth,
		"quotas":                len(a.cfg.Quotas) > 0,
		"max_staleness_seconds": a.cfg.MaxStaleness.Seconds(),
		"stale":                 false,
	}
	extra["grant_propagation_delay_seconds"] = a.cfg.GrantPropagationDelay.Seconds()
	// Whether this node can issue and verify grant tokens (never the secret).
	extra["grant_tokens"] = a.state.HasClusterSecret() && a.state.ClusterSecretErr() == ""
	if stale, why := a.fresh.stale(); stale {
		extra["stale"] = true
		extra["stale_reason"] = why
	}
	if a.fresh != nil {
		extra["stale_refusals"] = a.fresh.refused.Load()
	}
	return extra
}

// freshnessLoop recomputes the staleness state often enough that a node
// starts refusing within a small fraction of the bound.
func (a *Agent) freshnessLoop() {
	tick := min(50*time.Millisecond, a.cfg.MaxStaleness/10)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-a.stop:
			return
		case now := <-t.C:
			wasStale, _ := a.fresh.stale()
			a.fresh.update(now, a.node.LeaderQuorumContact(), a.node.LastContact(), a.node.AppliedIndex(), a.node.CommitIndex(), a.node.FSMAppliedIndex())
			if a.fresh.needsTarget() {
				ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
				if idx, err := a.node.LeaderFSMAppliedIndex(ctx); err == nil {
					a.fresh.setTarget(idx)
				}
				cancel()
			}
			if isStale, why := a.fresh.stale(); isStale != wasStale {
				if isStale {
					a.log.Warn("node is stale: refusing MACs and key-state reads", "bound", a.cfg.MaxStaleness, "why", why)
				} else {
					a.log.Info("node is fresh again: serving MACs and key-state reads")
				}
			}
		}
	}
}
