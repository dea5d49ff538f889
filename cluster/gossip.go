package cluster

import (
	"encoding/json"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// Gossip status values reported in Status.Members. There is no "suspect":
// memberlist v0.6.0 has no event and no race-free accessor for it, so a
// suspected member shows "alive" until memberlist declares it dead.
const (
	GossipAlive   = "alive"
	GossipDead    = "dead" // failed: kept in the raft configuration
	GossipLeft    = "left" // left gracefully: removed by the leader
	GossipUnknown = ""     // in the raft configuration, never seen in gossip
)

// leavingTTL bounds how long a member that announced its leave (or that the
// leader removed on request) counts as "left" while gossip still reports it
// alive. Any later alive event about the member (e.g. a restart) overrides
// the announcement.
const leavingTTL = 30 * time.Second

// reconnectInterval is how often we try to re-join seeds (when alone) or one
// dead member (to heal gossip after a partition), like serf's reconnect.
const reconnectInterval = 10 * time.Second

// reconnectWindow is how long after its failure we keep trying a dead member.
const reconnectWindow = 24 * time.Hour

// leaveIntentTimeout bounds how long a leaving node waits for its leave
// announcement to be delivered.
const leaveIntentTimeout = 2 * time.Second

// nodeMeta is the memberlist node metadata (must stay under
// memberlist.MetaMaxSize = 512 bytes).
type nodeMeta struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	APIAddr  string `json:"api_addr"`
}

// userMsg is a memberlist user message (sent with SendReliable, encrypted
// like all gossip).
type userMsg struct {
	Type string `json:"t"`
	ID   string `json:"id"`
}

const msgLeave = "leave"

type memberInfo struct {
	ID         string
	RaftAddr   string
	APIAddr    string
	GossipAddr string
	Status     string    // from gossip events: alive or dead
	Changed    time.Time // last gossip event
	aliveAt    time.Time // last alive event
	leaving    time.Time // leave announced (user message or remove endpoint)
}

// effective derives the reported status. memberlist v0.6.0 does not tell
// event delegates whether a node left or failed (Node.State passed to
// NotifyLeave is always StateAlive: hashicorp/memberlist#293), so, like serf,
// a leaving node announces its leave to every member first; a member that
// goes away after announcing it (and has not been alive again since) left.
func (m memberInfo) effective(now time.Time) memberInfo {
	if !m.leaving.IsZero() && m.leaving.After(m.aliveAt) {
		switch {
		case m.Status == GossipDead:
			m.Status = GossipLeft
		case m.Status == GossipAlive && now.Sub(m.leaving) < leavingTTL:
			m.Status = GossipLeft // leaving: do not add it back meanwhile
		}
	}
	return m
}

// memberTable is our view of gossip membership, fed by memberlist events.
// Entries are never deleted: the last known metadata of a dead member stays
// usable (e.g. to forward to a leader that gossip considers failed).
type memberTable struct {
	mu sync.RWMutex
	m  map[string]*memberInfo
}

func newMemberTable() *memberTable { return &memberTable{m: make(map[string]*memberInfo)} }

func (t *memberTable) update(info memberInfo) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old, ok := t.m[info.ID]
	if ok {
		// Keep the last known addresses if an event carries no metadata.
		if info.RaftAddr == "" {
			info.RaftAddr = old.RaftAddr
		}
		if info.APIAddr == "" {
			info.APIAddr = old.APIAddr
		}
		info.leaving = old.leaving
		if info.Status != GossipAlive {
			info.aliveAt = old.aliveAt
		}
	}
	t.m[info.ID] = &info
}

// markLeaving records that id announced its leave or was removed on request.
func (t *memberTable) markLeaving(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if m, ok := t.m[id]; ok {
		m.leaving = time.Now()
	}
}

func (t *memberTable) get(id string) (memberInfo, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	m, ok := t.m[id]
	if !ok {
		return memberInfo{}, false
	}
	return m.effective(time.Now()), true
}

// idByAddr returns the ID of the member with this raft, gossip or API
// address (an alive one if several claim it), or "".
func (t *memberTable) idByAddr(addr string) string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	found := ""
	for _, m := range t.m {
		if m.GossipAddr == addr || m.RaftAddr == addr || m.APIAddr == addr {
			if m.Status == GossipAlive {
				return m.ID
			}
			found = m.ID
		}
	}
	return found
}

// list returns all members sorted by ID.
func (t *memberTable) list() []memberInfo {
	t.mu.RLock()
	now := time.Now()
	out := make([]memberInfo, 0, len(t.m))
	for _, m := range t.m {
		out = append(out, m.effective(now))
	}
	t.mu.RUnlock()
	slices.SortFunc(out, func(a, b memberInfo) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out
}

// gossipDelegate implements memberlist.Delegate and memberlist.EventDelegate.
// Event callbacks run with memberlist's node lock held: they only update the
// table and poke channels, never call back into memberlist.
type gossipDelegate struct {
	n    *Node
	meta []byte
}

func (d *gossipDelegate) NodeMeta(limit int) []byte {
	if len(d.meta) > limit {
		return nil // New checked the size; never reached
	}
	return d.meta
}
func (d *gossipDelegate) NotifyMsg(buf []byte) {
	var msg userMsg
	if err := json.Unmarshal(buf, &msg); err != nil || msg.Type != msgLeave || msg.ID == "" {
		d.n.log.Debug("ignoring unknown gossip user message")
		return
	}
	d.n.log.Info("gossip member announced its leave", "member", msg.ID)
	d.n.members.markLeaving(msg.ID)
	d.n.poke()
}
func (d *gossipDelegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *gossipDelegate) LocalState(join bool) []byte                { return nil }
func (d *gossipDelegate) MergeRemoteState(buf []byte, join bool)     {}

func (d *gossipDelegate) NotifyJoin(node *memberlist.Node) {
	d.record(node, GossipAlive)
	d.n.log.Debug("gossip member joined", "member", node.Name)
}

func (d *gossipDelegate) NotifyUpdate(node *memberlist.Node) {
	d.record(node, GossipAlive)
}

func (d *gossipDelegate) NotifyLeave(node *memberlist.Node) {
	// node.State is not reliable here (see memberInfo.effective).
	d.record(node, GossipDead)
	if node.Name != d.n.cfg.NodeID {
		m, _ := d.n.members.get(node.Name)
		d.n.log.Info("gossip member gone", "member", node.Name, "status", m.Status)
	}
}

func (d *gossipDelegate) record(node *memberlist.Node, status string) {
	info := memberInfo{
		ID:         node.Name,
		GossipAddr: net.JoinHostPort(node.Addr.String(), strconv.Itoa(int(node.Port))),
		Status:     status,
		Changed:    time.Now(),
	}
	if status == GossipAlive {
		info.aliveAt = info.Changed
	}
	if len(node.Meta) > 0 {
		var meta nodeMeta
		if err := json.Unmarshal(node.Meta, &meta); err != nil {
			d.n.log.Warn("gossip member has malformed metadata", "member", node.Name, "error", err)
		} else {
			if meta.ID != "" && meta.ID != node.Name {
				d.n.log.Warn("gossip member metadata id differs from its name; using the name",
					"member", node.Name, "meta_id", meta.ID)
			}
			info.RaftAddr, info.APIAddr = meta.RaftAddr, meta.APIAddr
		}
	}
	d.n.members.update(info)
	d.n.poke()
}

// joinLoop joins the seeds in the background, retrying with backoff until
// at least one other node answered; afterwards it keeps gossip healed by
// re-joining the seeds when we are alone and by trying one dead member
// every reconnectInterval.
func (n *Node) joinLoop() {
	defer n.wg.Done()
	seeds := n.seeds()
	joined := len(seeds) == 0
	backoff := 100 * time.Millisecond
	reconnectTurn := 0
	every := reconnectInterval
	if n.cfg.gossipReconnect > 0 {
		every = n.cfg.gossipReconnect
	}
	for {
		wait := every
		if n.isClosing() {
			return
		}
		if !joined {
			cnt, err := n.ml.Join(seeds)
			if cnt > 0 {
				joined = true
				n.log.Info("joined gossip cluster", "contacted", cnt, "members", n.ml.NumMembers())
			} else {
				n.log.Debug("gossip join failed; will retry", "seeds", seeds, "error", err, "retry_in", backoff)
				wait = backoff
				backoff = min(backoff*2, 5*time.Second)
			}
		} else {
			if n.ml.NumMembers() <= 1 && len(seeds) > 0 {
				if cnt, _ := n.ml.Join(seeds); cnt > 0 {
					n.log.Info("re-joined gossip seeds", "contacted", cnt)
				}
			} else if dead := n.deadMembers(); len(dead) > 0 {
				m := dead[reconnectTurn%len(dead)]
				reconnectTurn++
				if cnt, _ := n.ml.Join([]string{m.GossipAddr}); cnt > 0 {
					n.log.Info("reconnected to failed gossip member", "member", m.ID)
				}
			}
		}
		select {
		case <-n.shutdownCh:
			return
		case <-time.After(wait):
		}
	}
}

// announceLeave tells every other alive member that we are leaving, so they
// report us as "left" (and the leader removes us) rather than "failed".
func (n *Node) announceLeave() {
	msg, _ := json.Marshal(userMsg{Type: msgLeave, ID: n.cfg.NodeID})
	var wg sync.WaitGroup
	for _, m := range n.ml.Members() {
		if m.Name == n.cfg.NodeID {
			continue
		}
		wg.Add(1)
		n.wg.Add(1) // Shutdown waits for sends that outlive leaveIntentTimeout
		go func() {
			defer n.wg.Done()
			defer wg.Done()
			if err := n.ml.SendReliable(m, msg); err != nil {
				n.log.Debug("leave announcement not delivered", "member", m.Name, "error", err)
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(leaveIntentTimeout):
		n.log.Warn("leave announcement: some members did not answer in time")
	}
}

// seeds returns Config.Join without our own gossip address.
func (n *Node) seeds() []string {
	self := map[string]bool{n.cfg.GossipBindAddr: true, n.gossipAddr: true}
	if n.cfg.GossipAdvertiseAddr != "" {
		self[n.cfg.GossipAdvertiseAddr] = true
	}
	var out []string
	for _, s := range n.cfg.Join {
		if s == "" || self[s] {
			continue
		}
		out = append(out, s)
	}
	return out
}

func (n *Node) deadMembers() []memberInfo {
	var out []memberInfo
	now := time.Now()
	for _, m := range n.members.list() {
		if m.Status == GossipDead && m.ID != n.cfg.NodeID && m.GossipAddr != "" && now.Sub(m.Changed) < reconnectWindow {
			out = append(out, m)
		}
	}
	return out
}

// resolveGossipAdvertise returns (ip, port) for memberlist's AdvertiseAddr
// and AdvertisePort from a host:port, resolving a host name.
func resolveGossipAdvertise(hostport string) (string, int, error) {
	host, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, err
	}
	if ip := net.ParseIP(host); ip != nil {
		return ip.String(), port, nil
	}
	ips, err := net.LookupIP(host)
	if err != nil {
		return "", 0, err
	}
	for _, ip := range ips {
		if ip.To4() != nil {
			return ip.String(), port, nil
		}
	}
	if len(ips) == 0 {
		return "", 0, &net.DNSError{Err: "no addresses", Name: host}
	}
	return ips[0].String(), port, nil
}
