package faults

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Direction says which traffic a partition rule cuts, seen from the node
// that holds the rule.
type Direction string

const (
	// Inbound cuts what the peer initiates towards us: its TCP connections
	// (raft, gossip streams) are refused or closed, its forwarded HTTP
	// requests are dropped, its gossip UDP packets are discarded.
	Inbound Direction = "inbound"
	// Outbound cuts what we initiate towards the peer: dials are refused
	// (and open connections we dialled are closed), forwarded HTTP requests
	// fail like a dial error, gossip UDP packets to it are discarded.
	Outbound Direction = "outbound"
	// Both is Inbound and Outbound: the peer is cut off entirely.
	Both Direction = "both"
)

// ParseDirection parses "inbound", "outbound" or "both" (case-insensitive);
// "" is Both.
func ParseDirection(s string) (Direction, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "both":
		return Both, nil
	case "inbound", "in":
		return Inbound, nil
	case "outbound", "out":
		return Outbound, nil
	}
	return "", fmt.Errorf("direction %q: want inbound, outbound or both", s)
}

func (d Direction) cutsIn() bool  { return d == Inbound || d == Both }
func (d Direction) cutsOut() bool { return d == Outbound || d == Both }

// AllPeers in a rule's peer list matches every peer, including connections
// and packets whose peer could not be identified. Rules naming a peer
// explicitly apply in addition to it.
const AllPeers = "*"

// Rule kinds, as reported in Rule.Kind.
const (
	KindPartition  = "partition"
	KindLatency    = "latency"
	KindPauseApply = "pause-apply"
)

// Limits on rule parameters (a fault is a test tool: absurd values are
// almost certainly mistakes).
const (
	MaxRuleDuration = 24 * time.Hour
	MaxLatency      = time.Minute
	MaxPeers        = 256
)

// ErrInvalidRule is wrapped by every error the rule constructors return for
// bad arguments.
var ErrInvalidRule = errors.New("faults: invalid rule")

// ErrDisabled is returned by the rule constructors of a nil Injector.
var ErrDisabled = errors.New("faults: fault injection is not enabled (nil Injector)")

// Duration is a time.Duration that encodes to JSON as a Go duration string
// ("250ms").
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(strconv.Quote(time.Duration(d).String())), nil
}

// UnmarshalJSON accepts a duration string ("250ms", "30s").
func (d *Duration) UnmarshalJSON(b []byte) error {
	s, err := strconv.Unquote(string(b))
	if err != nil {
		return fmt.Errorf("duration must be a string like \"250ms\", got %s", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Rule is one active fault, as reported by Snapshot and the admin API.
type Rule struct {
	ID        string    `json:"id"`
	Kind      string    `json:"kind"` // partition, latency, pause-apply
	Peers     []string  `json:"peers,omitempty"`
	Direction Direction `json:"direction,omitempty"` // partition
	Latency   Duration  `json:"latency,omitempty"`   // latency
	Jitter    Duration  `json:"jitter,omitempty"`    // latency
	Since     time.Time `json:"since"`
	// Until is when the rule heals by itself; nil: until removed or cleared.
	Until *time.Time `json:"until,omitempty"`
}

// State is a JSON-able description of a node's faults.
type State struct {
	// Rules are the active rules, oldest first.
	Rules []Rule `json:"rules"`
	// Counters count what the rules did since the Injector was created
	// (dials refused, connections closed, packets dropped, ...).
	Counters map[string]int64 `json:"counters"`
}

// Active reports whether any rule is in force.
func (s State) Active() bool { return len(s.Rules) > 0 }

// Option configures an Injector.
type Option func(*Injector)

// WithClock replaces time.Now for rule timestamps and expiry (tests).
// Waiting (apply pauses, latency) still uses real timers.
func WithClock(now func() time.Time) Option { return func(i *Injector) { i.now = now } }

// WithLogger sets the logger for rule changes and dropped connections.
// Default: slog.Default().
func WithLogger(l *slog.Logger) Option { return func(i *Injector) { i.log = l } }

// RuleOption modifies a rule being added.
type RuleOption func(*ruleOpts)

type ruleOpts struct{ dur time.Duration }

// For makes a rule expire (heal by itself) d after it is added. 0 means no
// expiry.
func For(d time.Duration) RuleOption { return func(o *ruleOpts) { o.dur = d } }

// Injector holds one node's fault rules and applies them to the
// connections, packets and requests the node's network wrappers (Net,
// GossipTransport, GuardHTTP, WrapFSM) hand it. All methods are safe for
// concurrent use, and safe on a nil *Injector (no faults). With no rule in
// force, the cost on the data path is one atomic load.
type Injector struct {
	now func() time.Time
	log *slog.Logger

	active atomic.Pointer[compiled] // nil: no rule in force

	mu      sync.Mutex
	rules   []*rule
	nextID  int
	changed chan struct{} // closed and replaced on every rule change
	conns   map[*conn]struct{}

	stats counters
}

// New returns an Injector with no rules.
func New(opts ...Option) *Injector {
	i := &Injector{now: time.Now, changed: make(chan struct{}), conns: make(map[*conn]struct{})}
	for _, o := range opts {
		o(i)
	}
	if i.log == nil {
		i.log = slog.Default()
	}
	return i
}

type rule struct {
	id      string
	kind    string
	peers   []string
	dir     Direction
	latency time.Duration
	jitter  time.Duration
	since   time.Time
	until   time.Time // zero: no expiry
}

func (r *rule) public() Rule {
	out := Rule{
		ID: r.id, Kind: r.kind, Peers: slices.Clone(r.peers), Since: r.since,
		Latency: Duration(r.latency), Jitter: Duration(r.jitter),
	}
	if r.kind == KindPartition {
		out.Direction = r.dir
	}
	if !r.until.IsZero() {
		u := r.until
		out.Until = &u
	}
	return out
}

// effect is what the rules do to traffic with one peer.
type effect struct {
	cutIn, cutOut   bool
	latency, jitter time.Duration
}

func (e effect) blocks(outbound bool) bool {
	if outbound {
		return e.cutOut
	}
	return e.cutIn
}

// delay samples latency ± jitter (never negative).
func (e effect) delay() time.Duration {
	d := e.latency
	if e.jitter > 0 {
		d += time.Duration(rand.Int64N(int64(2*e.jitter)+1)) - e.jitter
	}
	return max(d, 0)
}

// compiled is the immutable, per-peer view of the rules in force.
type compiled struct {
	peers      map[string]effect
	pauseUntil time.Time // zero: no apply pause
	nextExpiry time.Time // earliest rule expiry; zero: none expires
}

func (c *compiled) lookup(peer string) effect {
	e := c.peers[peer]
	if w, ok := c.peers[AllPeers]; ok && peer != AllPeers {
		e.cutIn = e.cutIn || w.cutIn
		e.cutOut = e.cutOut || w.cutOut
		if e.latency == 0 && e.jitter == 0 {
			e.latency, e.jitter = w.latency, w.jitter
		}
	}
	return e
}

// current returns the rules in force, pruning expired ones; nil if none.
func (i *Injector) current() *compiled {
	if i == nil {
		return nil
	}
	c := i.active.Load()
	if c == nil {
		return nil
	}
	if !c.nextExpiry.IsZero() && !i.now().Before(c.nextExpiry) {
		i.mu.Lock()
		i.pruneLocked()
		i.mu.Unlock()
		c = i.active.Load()
	}
	return c
}

func (i *Injector) effectFor(peer string) effect {
	c := i.current()
	if c == nil {
		return effect{}
	}
	return c.lookup(peer)
}

// Active reports whether any rule is in force.
func (i *Injector) Active() bool { return i.current() != nil }

// Blocked reports whether traffic with peer in direction dir (Inbound or
// Outbound; Both asks for either) is cut. peer "" is an unidentified peer:
// only AllPeers rules match it.
func (i *Injector) Blocked(peer string, dir Direction) bool {
	e := i.effectFor(peer)
	switch dir {
	case Inbound:
		return e.cutIn
	case Outbound:
		return e.cutOut
	}
	return e.cutIn || e.cutOut
}

// Delay returns the delay to add to one write to peer now (latency ±
// jitter), or 0.
func (i *Injector) Delay(peer string) time.Duration { return i.effectFor(peer).delay() }

// ApplyPaused reports whether a PauseApply window is in force.
func (i *Injector) ApplyPaused() bool {
	c := i.current()
	return c != nil && !c.pauseUntil.IsZero()
}

func validPeers(peers []string) ([]string, error) {
	if len(peers) == 0 {
		return nil, fmt.Errorf("%w: no peers given", ErrInvalidRule)
	}
	if len(peers) > MaxPeers {
		return nil, fmt.Errorf("%w: more than %d peers", ErrInvalidRule, MaxPeers)
	}
	var out []string
	for _, p := range peers {
		p = strings.TrimSpace(p)
		if p == "" {
			return nil, fmt.Errorf("%w: empty peer id", ErrInvalidRule)
		}
		if len(p) > MaxNodeIDLen {
			return nil, fmt.Errorf("%w: peer id longer than %d bytes", ErrInvalidRule, MaxNodeIDLen)
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out, nil
}

func ruleDuration(opts []RuleOption) (time.Duration, error) {
	var o ruleOpts
	for _, f := range opts {
		f(&o)
	}
	if o.dur < 0 || o.dur > MaxRuleDuration {
		return 0, fmt.Errorf("%w: for %s: must be between 0 (no expiry) and %s", ErrInvalidRule, o.dur, MaxRuleDuration)
	}
	return o.dur, nil
}

// Partition cuts traffic with peers (node IDs, or AllPeers) in direction
// dir. It replaces earlier partition rules for the same peers (their other
// peers keep theirs): the latest call says what holds for a peer. Open
// connections that the rule cuts are closed at once. For(d) heals it by
// itself after d.
func (i *Injector) Partition(peers []string, dir Direction, opts ...RuleOption) (Rule, error) {
	if i == nil {
		return Rule{}, ErrDisabled
	}
	if dir != Inbound && dir != Outbound && dir != Both {
		return Rule{}, fmt.Errorf("%w: direction %q: want inbound, outbound or both", ErrInvalidRule, dir)
	}
	ps, err := validPeers(peers)
	if err != nil {
		return Rule{}, err
	}
	d, err := ruleDuration(opts)
	if err != nil {
		return Rule{}, err
	}
	return i.add(&rule{kind: KindPartition, peers: ps, dir: dir}, d), nil
}

// Latency delays everything this node sends to peers by d ± jitter: each
// write on a TCP connection (in order: a connection's writes are queued, not
// reordered), each gossip UDP packet, each forwarded HTTP request to them
// and each internal HTTP response to their requests. Like netem on egress:
// to slow both directions, add the rule on both nodes. It replaces earlier
// latency rules for the same peers.
func (i *Injector) Latency(peers []string, d, jitter time.Duration, opts ...RuleOption) (Rule, error) {
	if i == nil {
		return Rule{}, ErrDisabled
	}
	if d < 0 || jitter < 0 || d > MaxLatency || jitter > MaxLatency {
		return Rule{}, fmt.Errorf("%w: latency %s jitter %s: each must be between 0 and %s", ErrInvalidRule, d, jitter, MaxLatency)
	}
	if d == 0 && jitter == 0 {
		return Rule{}, fmt.Errorf("%w: latency and jitter are both 0", ErrInvalidRule)
	}
	ps, err := validPeers(peers)
	if err != nil {
		return Rule{}, err
	}
	dur, err := ruleDuration(opts)
	if err != nil {
		return Rule{}, err
	}
	return i.add(&rule{kind: KindLatency, peers: ps, latency: d, jitter: jitter}, dur), nil
}

// PauseApply stops the FSM wrapped with WrapFSM from applying log entries
// for d: entries are still replicated and committed, but this node's applied
// index lags until the pause ends (or Clear / Remove). It replaces an
// earlier pause.
func (i *Injector) PauseApply(d time.Duration) (Rule, error) {
	if i == nil {
		return Rule{}, ErrDisabled
	}
	if d <= 0 || d > MaxRuleDuration {
		return Rule{}, fmt.Errorf("%w: pause %s: must be between 0 and %s", ErrInvalidRule, d, MaxRuleDuration)
	}
	return i.add(&rule{kind: KindPauseApply}, d), nil
}

func (i *Injector) add(r *rule, dur time.Duration) Rule {
	i.mu.Lock()
	now := i.now()
	i.nextID++
	r.id = "r" + strconv.Itoa(i.nextID)
	r.since = now
	if dur > 0 {
		r.until = now.Add(dur)
	}
	// The latest rule of a kind wins for its peers.
	kept := i.rules[:0]
	for _, old := range i.rules {
		if old.kind == r.kind {
			old.peers = slices.DeleteFunc(old.peers, func(p string) bool { return slices.Contains(r.peers, p) })
			if len(old.peers) == 0 {
				continue
			}
		}
		kept = append(kept, old)
	}
	clear(i.rules[len(kept):])
	i.rules = append(kept, r)
	i.pruneLocked()
	victims := i.victimsLocked()
	pub := r.public()
	i.mu.Unlock()
	i.log.Warn("fault injection: rule added", "rule", pub.ID, "kind", pub.Kind, "peers", pub.Peers,
		"direction", pub.Direction, "latency", time.Duration(pub.Latency), "jitter", time.Duration(pub.Jitter), "for", dur)
	i.closeVictims(victims)
	return pub
}

// Remove deletes the rule with this id; false if there is none.
func (i *Injector) Remove(id string) bool {
	if i == nil {
		return false
	}
	i.mu.Lock()
	n := len(i.rules)
	i.rules = slices.DeleteFunc(i.rules, func(r *rule) bool { return r.id == id })
	found := len(i.rules) < n
	if found {
		i.pruneLocked()
	}
	i.mu.Unlock()
	if found {
		i.log.Warn("fault injection: rule removed", "rule", id)
	}
	return found
}

// Clear removes every rule: traffic flows again and paused applies resume.
// Counters are kept.
func (i *Injector) Clear() {
	if i == nil {
		return
	}
	i.mu.Lock()
	had := len(i.rules)
	i.rules = nil
	i.pruneLocked()
	i.mu.Unlock()
	if had > 0 {
		i.log.Warn("fault injection: all rules cleared", "rules", had)
	}
}

// pruneLocked drops expired rules, recompiles the view and wakes waiters.
func (i *Injector) pruneLocked() {
	now := i.now()
	var expired []string
	i.rules = slices.DeleteFunc(i.rules, func(r *rule) bool {
		if !r.until.IsZero() && !now.Before(r.until) {
			expired = append(expired, r.id)
			return true
		}
		return false
	})
	if len(expired) > 0 {
		i.log.Warn("fault injection: rules expired", "rules", expired)
	}
	if len(i.rules) == 0 {
		i.active.Store(nil)
	} else {
		c := &compiled{peers: make(map[string]effect)}
		for _, r := range i.rules {
			if !r.until.IsZero() && (c.nextExpiry.IsZero() || r.until.Before(c.nextExpiry)) {
				c.nextExpiry = r.until
			}
			switch r.kind {
			case KindPauseApply:
				c.pauseUntil = r.until
			case KindPartition:
				for _, p := range r.peers {
					e := c.peers[p]
					e.cutIn = e.cutIn || r.dir.cutsIn()
					e.cutOut = e.cutOut || r.dir.cutsOut()
					c.peers[p] = e
				}
			case KindLatency:
				for _, p := range r.peers {
					e := c.peers[p]
					e.latency, e.jitter = r.latency, r.jitter
					c.peers[p] = e
				}
			}
		}
		i.active.Store(c)
	}
	close(i.changed)
	i.changed = make(chan struct{})
}

// Snapshot describes the rules in force (expired ones are pruned) and the
// counters.
func (i *Injector) Snapshot() State {
	st := State{Rules: []Rule{}, Counters: map[string]int64{}}
	if i == nil {
		return st
	}
	i.current() // prune if due
	i.mu.Lock()
	for _, r := range i.rules {
		st.Rules = append(st.Rules, r.public())
	}
	i.mu.Unlock()
	st.Counters = i.stats.snapshot()
	return st
}

// waitApplyPause blocks while an apply pause is in force, or until release
// is closed. It waits on timers and the change channel, never spins.
func (i *Injector) waitApplyPause(release <-chan struct{}) bool {
	paused := false
	for {
		c := i.current()
		if c == nil || c.pauseUntil.IsZero() {
			return paused
		}
		if !paused {
			paused = true
			i.stats.appliesPaused.Add(1)
		}
		i.mu.Lock()
		changed := i.changed
		i.mu.Unlock()
		t := time.NewTimer(max(c.pauseUntil.Sub(i.now()), time.Millisecond))
		select {
		case <-t.C:
		case <-changed:
		case <-release:
			t.Stop()
			return paused
		}
		t.Stop()
	}
}

// counters count fault effects (reported in State.Counters).
type counters struct {
	dialsRefused    atomic.Int64
	connsClosed     atomic.Int64
	inboundRejected atomic.Int64
	packetsOutDrop  atomic.Int64
	packetsInDrop   atomic.Int64
	packetsDelayed  atomic.Int64
	writesDelayed   atomic.Int64
	httpDropped     atomic.Int64
	httpDelayed     atomic.Int64
	appliesPaused   atomic.Int64
}

func (c *counters) snapshot() map[string]int64 {
	return map[string]int64{
		"dials_refused":       c.dialsRefused.Load(),
		"conns_closed":        c.connsClosed.Load(),
		"inbound_rejected":    c.inboundRejected.Load(),
		"packets_dropped_out": c.packetsOutDrop.Load(),
		"packets_dropped_in":  c.packetsInDrop.Load(),
		"packets_delayed":     c.packetsDelayed.Load(),
		"writes_delayed":      c.writesDelayed.Load(),
		"http_dropped":        c.httpDropped.Load(),
		"http_delayed":        c.httpDelayed.Load(),
		"applies_paused":      c.appliesPaused.Load(),
	}
}
