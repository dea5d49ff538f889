package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/keyraft/keyraft/agent"
	"github.com/keyraft/keyraft/api"
	"github.com/keyraft/keyraft/auth"
	"github.com/keyraft/keyraft/engine"
	"github.com/keyraft/keyraft/quota"
)

// agentFlags declares the flags of `keyraft agent`; `keyraft dev` passes
// the same names to the nodes it starts.
type agentFlags struct {
	nodeID, dataDir                  string
	httpAddr, raftAddr, gossipAddr   string
	advHTTP, advRaft, advGossip      string
	join                             listFlag
	bootstrapExpect                  int
	region, accountID                string
	logLevel, logFormat              string
	sealKeyFile                      string
	snapshotThreshold, trailingLogs  uint64
	snapshotInterval, applyTimeout   time.Duration
	heartbeat, election, leaderLease time.Duration
	deletionDay                      time.Duration
	maxStaleness                     time.Duration
	grantPropagationDelay            time.Duration
	grantTombstoneRetention          time.Duration
	leaveOnTerminate                 bool
	enableFaultInjection             bool
	authMode, credentialsFile        string
	quotas, quotaOverrides           string
}

func (f *agentFlags) register(fs *flag.FlagSet) {
	fs.String("config", "", "JSON file of settings, keyed by flag name (also KEYRAFT_CONFIG)")
	fs.StringVar(&f.nodeID, "node-id", "", "unique id of this node (required)")
	fs.StringVar(&f.dataDir, "data-dir", "", "directory for the Raft log, stable store and snapshots (required)")
	fs.StringVar(&f.httpAddr, "http-addr", "127.0.0.1:8081", "bind address of the AWS KMS API and /v1 endpoints")
	fs.StringVar(&f.raftAddr, "raft-addr", "127.0.0.1:8300", "bind address of Raft (TCP)")
	fs.StringVar(&f.gossipAddr, "gossip-addr", "127.0.0.1:8301", "bind address of gossip (TCP and UDP)")
	fs.StringVar(&f.advHTTP, "advertise-http", "", "API address peers dial (default: -http-addr)")
	fs.StringVar(&f.advRaft, "advertise-raft", "", "Raft address peers dial (default: -raft-addr)")
	fs.StringVar(&f.advGossip, "advertise-gossip", "", "gossip address peers dial (default: -gossip-addr)")
	fs.Var(&f.join, "join", "gossip seeds to join, host:port[,host:port...]")
	fs.IntVar(&f.bootstrapExpect, "bootstrap-expect", 0, "form a new cluster once this many nodes are seen (0: only join)")
	fs.StringVar(&f.region, "region", "us-east-1", "region of requests without a SigV4 credential scope (-auth none)")
	fs.StringVar(&f.accountID, "account-id", "111122223333", "default account: the account of requests whose access key is not in -credentials (-auth none)")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&f.logFormat, "log-format", "text", "text or json")
	fs.StringVar(&f.sealKeyFile, "seal-key-file", "", "file with the cluster's base64 seal key (required; `keyraft keygen`)")
	fs.Uint64Var(&f.snapshotThreshold, "snapshot-threshold", 8192, "log entries between snapshots")
	fs.DurationVar(&f.snapshotInterval, "snapshot-interval", 2*time.Minute, "how often to check whether to snapshot")
	fs.Uint64Var(&f.trailingLogs, "trailing-logs", 10240, "log entries kept after a snapshot")
	fs.DurationVar(&f.applyTimeout, "apply-timeout", 10*time.Second, "how long a write waits for a leader before failing")
	fs.DurationVar(&f.heartbeat, "raft-heartbeat-timeout", 0, "Raft heartbeat timeout (0: raft's default, 1s)")
	fs.DurationVar(&f.election, "raft-election-timeout", 0, "Raft election timeout (0: raft's default, 1s)")
	fs.DurationVar(&f.leaderLease, "raft-leader-lease-timeout", 0, "Raft leader lease timeout (0: raft's default, 500ms)")
	fs.DurationVar(&f.deletionDay, "test-deletion-day", 24*time.Hour, "TEST ONLY: how long one day of a key's pending-deletion window lasts")
	fs.DurationVar(&f.maxStaleness, "max-staleness", 10*time.Second, "refuse MACs and key-state reads (KeyUnavailableException) after this long without contact with a leader; 0 turns the bound off")
	fs.DurationVar(&f.grantPropagationDelay, "grant-propagation-delay", 0, "for this long after a grant is created this node acts as if it had not heard of it (grant tokens bridge the gap), and for this long after it is retired or revoked still honours it (docs/consistency.md)")
	fs.DurationVar(&f.grantTombstoneRetention, "grant-tombstone-retention", time.Hour, "how long the tombstones of retired and revoked grants are kept; must exceed every node's -grant-propagation-delay")
	fs.BoolVar(&f.enableFaultInjection, "enable-fault-injection", false, "serve the fault-injection admin API at /v1/faults (partitions, latency, apply pauses); for tests only")
	fs.BoolVar(&f.leaveOnTerminate, "leave-on-terminate", true, "on SIGINT/SIGTERM leave the cluster (transfer leadership, be removed) before stopping")
	fs.StringVar(&f.authMode, "auth", "sigv4", "authentication: sigv4 (verify AWS Signature V4 against -credentials) or none (accept every request; trusted networks and tests only)")
	fs.StringVar(&f.credentialsFile, "credentials", "", "JSON file of the principals that may call the API (required with -auth sigv4; see docs/auth.md)")
	fs.StringVar(&f.quotas, "quotas", "off", "request-rate quotas: off, or aws (AWS's default rates per account and region, enforced per node)")
	fs.StringVar(&f.quotaOverrides, "quota-overrides", "", "quota rates per class, e.g. CreateKey=10,cryptographic=100 (on top of -quotas aws; with -quotas off only these classes are limited)")
}

// authSettings turns the -auth, -credentials, -quotas and -quota-overrides
// flags into agent settings; errors are for the user.
func (f *agentFlags) authSettings() (mode string, creds *auth.Credentials, rates map[string]float64, err error) {
	mode = strings.ToLower(strings.TrimSpace(f.authMode))
	switch mode {
	case "sigv4":
		if f.credentialsFile == "" {
			return "", nil, nil, errors.New("-auth sigv4 (the default) needs -credentials FILE: the principals that may call the API (see docs/auth.md).\n" +
				"To accept unauthenticated requests instead (trusted networks and tests only), pass -auth none")
		}
	case "none":
	default:
		return "", nil, nil, fmt.Errorf("-auth: %q is not sigv4 or none", f.authMode)
	}
	if f.credentialsFile != "" {
		if creds, err = auth.LoadCredentials(f.credentialsFile); err != nil {
			return "", nil, nil, err
		}
		if err = api.CheckCredentials(creds); err != nil {
			return "", nil, nil, fmt.Errorf("credentials file %s: %w", f.credentialsFile, err)
		}
	}
	rates, err = quotaRates(f.quotas, f.quotaOverrides)
	return mode, creds, rates, err
}

// quotaRates combines -quotas and -quota-overrides; nil means no quotas.
func quotaRates(mode, overrides string) (map[string]float64, error) {
	over, err := quota.ParseOverrides(overrides)
	if err != nil {
		return nil, fmt.Errorf("-quota-overrides: %w", err)
	}
	var rates map[string]float64
	switch strings.ToLower(strings.TrimSpace(mode)) {
	case "off", "":
		rates = map[string]float64{}
	case "aws":
		rates = quota.DefaultAWSRates()
	default:
		return nil, fmt.Errorf("-quotas: %q is not off or aws", mode)
	}
	maps.Copy(rates, over)
	if len(rates) == 0 {
		return nil, nil
	}
	return rates, nil
}

func newAgentFlagSet(f *agentFlags) *flag.FlagSet {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	f.register(fs)
	return fs
}

func newLogger(level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("-log-level: %q is not debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("-log-format: %q is not text or json", format)
}

func runAgent(args []string) int {
	var f agentFlags
	fs := newAgentFlagSet(&f)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: keyraft agent [flags]\n\nRuns one keyraft node. Every flag may also be set as KEYRAFT_<FLAG> or in -config FILE.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := loadFlags(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "keyraft agent:", err)
		return 2
	}
	logger, err := newLogger(f.logLevel, f.logFormat)
	if err != nil {
		fmt.Fprintln(os.Stderr, "keyraft agent:", err)
		return 2
	}
	if f.sealKeyFile == "" {
		fmt.Fprintln(os.Stderr, "keyraft agent: -seal-key-file is required: every node of a cluster needs the same seal key.\nCreate one with: keyraft keygen > seal.key && chmod 600 seal.key")
		return 2
	}
	sealKey, err := engine.LoadSealKey(f.sealKeyFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "keyraft agent:", err)
		return 2
	}
	authMode, creds, rates, err := f.authSettings()
	if err != nil {
		fmt.Fprintln(os.Stderr, "keyraft agent:", err)
		return 2
	}
	a, err := agent.Start(agent.Config{
		NodeID:               f.nodeID,
		DataDir:              f.dataDir,
		HTTPAddr:             f.httpAddr,
		HTTPAdvertiseAddr:    f.advHTTP,
		RaftAddr:             f.raftAddr,
		RaftAdvertiseAddr:    f.advRaft,
		GossipAddr:           f.gossipAddr,
		GossipAdvertiseAddr:  f.advGossip,
		Join:                 f.join.values,
		BootstrapExpect:      f.bootstrapExpect,
		Region:               f.region,
		AccountID:            f.accountID,
		SealKey:              sealKey,
		SnapshotThreshold:    f.snapshotThreshold,
		SnapshotInterval:     f.snapshotInterval,
		TrailingLogs:         f.trailingLogs,
		ApplyTimeout:         f.applyTimeout,
		HeartbeatTimeout:     f.heartbeat,
		ElectionTimeout:      f.election,
		LeaderLeaseTimeout:   f.leaderLease,
		DeletionDay:          f.deletionDay,
		MaxStaleness:         f.maxStaleness,
		EnableFaultInjection: f.enableFaultInjection,
		Auth:                 authMode,
		Credentials:          creds,
		Quotas:               rates,
		Logger:               logger,

		GrantPropagationDelay:   f.grantPropagationDelay,
		GrantTombstoneRetention: f.grantTombstoneRetention,
	})
	if err != nil {
		logger.Error("cannot start", "err", err)
		return 1
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	sig := <-sigs
	logger.Info("signal received, stopping", "signal", sig.String(), "leave", f.leaveOnTerminate)
	go func() {
		<-sigs
		logger.Warn("second signal: exiting without a clean shutdown")
		os.Exit(1)
	}()
	if err := a.Shutdown(f.leaveOnTerminate); err != nil {
		logger.Error("shutdown", "err", err)
		return 1
	}
	return 0
}

func runKeygen(args []string) int {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	out := fs.String("out", "", "write the key to this file (mode 0600) instead of standard output")
	keep := fs.Bool("keep", false, "with -out: leave an existing file untouched (for container init steps)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: keyraft keygen [-out FILE [-keep]]\n\nCreates a new random 32-byte seal key, base64-encoded. Give every node of a cluster the same file (-seal-key-file).\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *out == "" {
		fmt.Println(engine.NewSealKey())
		return 0
	}
	if *keep {
		if _, err := engine.LoadSealKey(*out); err == nil {
			fmt.Fprintln(os.Stderr, "keyraft keygen: keeping the existing seal key in", *out)
			return 0
		}
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, "keyraft keygen:", err)
		return 1
	}
	if _, err := fmt.Fprintln(f, engine.NewSealKey()); err != nil {
		f.Close()
		fmt.Fprintln(os.Stderr, "keyraft keygen:", err)
		return 1
	}
	if err := f.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "keyraft keygen:", err)
		return 1
	}
	fmt.Fprintln(os.Stderr, "keyraft keygen: wrote a new seal key to", *out)
	return 0
}
