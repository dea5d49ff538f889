package cluster

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/keyraft/keyraft/chaos/faults"
)

// Defaults applied by New to zero-valued Config fields.
const (
	DefaultSnapshotThreshold uint64 = 8192
	DefaultSnapshotInterval         = 2 * time.Minute
	DefaultTrailingLogs      uint64 = 10240
	DefaultApplyTimeout             = 10 * time.Second
	DefaultReconcileInterval        = time.Second
)

// AuthHeader is the HTTP header that carries an internal request's
// signature (internalauth.go).
const AuthHeader = "X-Keyraft-Cluster-Auth"

// ClusterAuthKeySize is the required length of Config.ClusterAuthKey.
const ClusterAuthKeySize = 32

// Purposes of the HMAC-SHA256 derivations from Config.ClusterAuthKey. They are
// part of the wire contract between nodes: changing them is a breaking change.
const (
	purposeHTTPSign  = "keyraft/cluster/internal-http-signing/v1"
	purposeGossipKey = "keyraft/cluster/gossip-key/v1"
	purposeRaftCA    = "keyraft/cluster/raft-tls-ca/v1"
)

// Config configures one cluster node. Zero values take the documented
// defaults.
type Config struct {
	// NodeID is the stable, unique identity of this node across restarts
	// (raft ServerID and memberlist node name). Required.
	NodeID string
	// DataDir holds raft state under DataDir/raft (raft.db + snapshots).
	// Required.
	DataDir string

	// RaftBindAddr is the host:port the raft TCP transport listens on.
	// Required; port 0 picks a free port (then RaftAdvertiseAddr must be empty
	// and the bind host a specific IP).
	RaftBindAddr string
	// RaftAdvertiseAddr is the dialable host:port other nodes use for raft.
	// Default: the bound address.
	RaftAdvertiseAddr string

	// GossipBindAddr is the host:port memberlist binds (TCP and UDP). Required.
	GossipBindAddr string
	// GossipAdvertiseAddr is the dialable host:port for gossip. Default: the
	// bind address (or a private IP when binding 0.0.0.0).
	GossipAdvertiseAddr string

	// APIAdvertiseAddr is host:port of this node's HTTP API, gossiped as
	// metadata. Followers forward writes to the leader's APIAdvertiseAddr and
	// the internal endpoints of Handler() must be served there. Required.
	APIAdvertiseAddr string

	// Join lists gossip seeds (host:port). Joining runs in the background
	// with retries; our own address is ignored.
	Join []string

	// BootstrapExpect > 0 enables the bootstrap-expect recipe (see doc.go).
	// 0 means never bootstrap: the node waits to be added by a leader.
	BootstrapExpect int

	SnapshotThreshold uint64        // default 8192
	SnapshotInterval  time.Duration // default 2m
	TrailingLogs      uint64        // default 10240

	// ApplyTimeout bounds how long a write may wait for a leader and a
	// commit (also used for membership changes and graceful leave steps).
	// Default 10s.
	ApplyTimeout time.Duration

	// ClusterAuthKey is a 32-byte secret shared by all nodes. The internal
	// HTTP token and memberlist's gossip encryption key are derived from it
	// with HMAC-SHA256(ClusterAuthKey, purpose). Required.
	ClusterAuthKey []byte

	// Logger receives our logs and raft's/memberlist's (adapted). Default
	// slog.Default().
	Logger *slog.Logger

	// OnLeader, if set, runs in its own goroutine each time this node becomes
	// leader, after a successful Barrier (the FSM has applied every entry of
	// earlier terms). ctx is cancelled when leadership is lost or on shutdown;
	// OnLeader must return promptly after that, the next term's OnLeader does
	// not start before the previous one has returned.
	OnLeader func(ctx context.Context)

	// OnBehind, when set, is called when a write forwarded through this
	// node was committed but this node's FSM has not applied it within a
	// short wait: the node knows it is behind index. Must be cheap and
	// safe for concurrent use.
	OnBehind func(index uint64)

	// StatusExtra, if set, fills Status.Extra (e.g. an FSM digest). It must
	// be cheap and safe to call from any goroutine.
	StatusExtra func() map[string]any

	// Raft timing overrides; 0 keeps raft's defaults (1s/1s/500ms).
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration

	// ReconcileInterval is how often the leader reconciles gossip membership
	// into the raft configuration (also triggered by gossip events).
	// Default 1s.
	ReconcileInterval time.Duration

	// Faults, if set, applies this node's fault-injection rules (package
	// chaos/faults) to its raft connections, gossip and the forwarding HTTP
	// client, guards the internal endpoints with its inbound rules, and is
	// reported in Status.Faults. nil: no faults. Either way raft and gossip
	// TCP connections carry keyraft's preamble (see chaos/faults), so every
	// node of a cluster must run a version that sends it. For apply pauses,
	// also wrap the FSM passed to New with faults.WrapFSM(fsm, Faults).
	Faults *faults.Injector

	// gossipTuning, if set, adjusts memberlist's configuration (tests).
	gossipTuning func(*memberlist.Config)
	// gossipReconnect overrides reconnectInterval (tests).
	gossipReconnect time.Duration
}

func (c Config) withDefaults() (Config, error) {
	if c.NodeID == "" {
		return c, errors.New("cluster: NodeID is required")
	}
	if c.DataDir == "" {
		return c, errors.New("cluster: DataDir is required")
	}
	if c.RaftBindAddr == "" {
		return c, errors.New("cluster: RaftBindAddr is required")
	}
	if c.GossipBindAddr == "" {
		return c, errors.New("cluster: GossipBindAddr is required")
	}
	if c.APIAdvertiseAddr == "" {
		return c, errors.New("cluster: APIAdvertiseAddr is required")
	}
	for name, a := range map[string]string{
		"RaftBindAddr":        c.RaftBindAddr,
		"RaftAdvertiseAddr":   c.RaftAdvertiseAddr,
		"GossipBindAddr":      c.GossipBindAddr,
		"GossipAdvertiseAddr": c.GossipAdvertiseAddr,
		"APIAdvertiseAddr":    c.APIAdvertiseAddr,
	} {
		if a == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a); err != nil {
			return c, fmt.Errorf("cluster: %s %q: %w", name, a, err)
		}
	}
	if len(c.ClusterAuthKey) != ClusterAuthKeySize {
		return c, fmt.Errorf("cluster: ClusterAuthKey must be %d bytes, got %d", ClusterAuthKeySize, len(c.ClusterAuthKey))
	}
	if c.BootstrapExpect < 0 {
		return c, errors.New("cluster: BootstrapExpect must be >= 0")
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = DefaultSnapshotThreshold
	}
	if c.SnapshotInterval == 0 {
		c.SnapshotInterval = DefaultSnapshotInterval
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = DefaultTrailingLogs
	}
	if c.ApplyTimeout <= 0 {
		c.ApplyTimeout = DefaultApplyTimeout
	}
	if c.ReconcileInterval <= 0 {
		c.ReconcileInterval = DefaultReconcileInterval
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.Join = append([]string(nil), c.Join...)
	c.ClusterAuthKey = append([]byte(nil), c.ClusterAuthKey...)
	return c, nil
}

// deriveKey returns HMAC-SHA256(master, purpose).
func deriveKey(master []byte, purpose string) []byte {
	m := hmac.New(sha256.New, master)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// gossipKey returns memberlist's 32-byte SecretKey (AES-256-GCM).
func gossipKey(clusterAuthKey []byte) []byte {
	return deriveKey(clusterAuthKey, purposeGossipKey)
}
