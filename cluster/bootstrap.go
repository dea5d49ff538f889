package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/hashicorp/raft"
)

const bootstrapPollInterval = 250 * time.Millisecond

// peersResponse is the body of GET /v1/internal/peers.
type peersResponse struct {
	ID               string   `json:"id"`
	State            string   `json:"state"`
	HasExistingState bool     `json:"has_existing_state"`
	Peers            []string `json:"peers"`
}

// bootstrapLoop runs only when the node started without raft state and
// BootstrapExpect > 0. See tryBootstrap.
func (n *Node) bootstrapLoop() {
	defer n.wg.Done()
	t := time.NewTicker(bootstrapPollInterval)
	defer t.Stop()
	for {
		if n.tryBootstrap() {
			return
		}
		select {
		case <-n.shutdownCh:
			return
		case <-t.C:
		case <-n.bootPokeCh:
		}
	}
}

// tryBootstrap is Consul's maybeBootstrap. It returns true when the loop is
// finished (bootstrapped, or an existing cluster was found / added us).
//
//  1. Wait until at least BootstrapExpect alive gossip members with complete
//     metadata are known.
//  2. Ask every one of them (GET /v1/internal/peers) whether it already has
//     raft peers or state. If any does, a cluster exists: do not bootstrap,
//     its leader will add us. If any cannot be asked, try again later.
//  3. Otherwise bootstrap with exactly those members, sorted by ID, as voters.
//     Every node computes the same configuration, and identical bootstraps
//     are safe; raft itself refuses to bootstrap over existing state.
func (n *Node) tryBootstrap() bool {
	if n.bootstrapped.Load() || n.isClosing() {
		return true
	}
	if f := n.raft.GetConfiguration(); f.Error() == nil && len(f.Configuration().Servers) > 0 {
		n.log.Info("raft configuration received from a leader; bootstrap not needed")
		return true
	}
	var candidates []memberInfo
	for _, m := range n.members.list() {
		if m.Status == GossipAlive && m.RaftAddr != "" && m.APIAddr != "" {
			candidates = append(candidates, m)
		}
	}
	if len(candidates) < n.cfg.BootstrapExpect {
		return false
	}
	if !slices.ContainsFunc(candidates, func(m memberInfo) bool { return m.ID == n.cfg.NodeID }) {
		return false // our own gossip entry has not been recorded yet
	}
	for _, m := range candidates {
		if m.ID == n.cfg.NodeID {
			continue
		}
		pr, err := n.queryPeers(m.APIAddr)
		if err != nil {
			n.log.Debug("bootstrap: cannot ask member for its peers yet", "member", m.ID, "error", err)
			return false
		}
		if pr.HasExistingState || len(pr.Peers) > 0 {
			n.log.Info("bootstrap: existing cluster found; waiting to be added by its leader",
				"member", m.ID, "peers", pr.Peers)
			return true
		}
	}
	var cfg raft.Configuration
	for _, m := range candidates {
		cfg.Servers = append(cfg.Servers, raft.Server{
			ID:       raft.ServerID(m.ID),
			Address:  raft.ServerAddress(m.RaftAddr),
			Suffrage: raft.Voter,
		})
	}
	if n.isClosing() {
		return true
	}
	err := n.raft.BootstrapCluster(cfg).Error()
	switch {
	case err == nil:
		n.bootstrapped.Store(true)
		n.stats.bootstraps.Add(1)
		ids := make([]string, len(cfg.Servers))
		for i, s := range cfg.Servers {
			ids[i] = string(s.ID)
		}
		n.log.Info("bootstrapped raft cluster", "voters", ids)
		return true
	case errors.Is(err, raft.ErrCantBootstrap):
		n.log.Info("bootstrap: raft already has state; not bootstrapping")
		return true
	case errors.Is(err, raft.ErrRaftShutdown):
		return true
	default:
		n.log.Warn("bootstrap failed; will retry", "error", err)
		return false
	}
}

func (n *Node) queryPeers(apiAddr string) (*peersResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := n.internalRequest(ctx, http.MethodGet, "http://"+apiAddr+"/v1/internal/peers", nil)
	if err != nil {
		return nil, err
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("peers: HTTP %d: %s", resp.StatusCode, errorText(body))
	}
	var pr peersResponse
	if err := json.Unmarshal(body, &pr); err != nil {
		return nil, fmt.Errorf("peers: %w", err)
	}
	return &pr, nil
}

// peers answers GET /v1/internal/peers for another node's bootstrap check.
func (n *Node) peers() peersResponse {
	pr := peersResponse{ID: n.cfg.NodeID, State: n.raft.State().String(), Peers: []string{}}
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			pr.Peers = append(pr.Peers, string(s.ID))
		}
	}
	pr.HasExistingState = n.hadState || n.bootstrapped.Load() || n.raft.LastIndex() > 0 || len(pr.Peers) > 0
	return pr
}
