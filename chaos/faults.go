package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
)

// FaultKinds are the faults a schedule draws from.
var FaultKinds = []string{
	"partition-minority", // one node cut off from all others, both ways
	"partition-leader",   // the leader cut off from all others
	"bridge",             // two groups that cannot talk, joined by one node that sees both
	"asymmetric",         // one node cannot send to the others but still hears them
	"kill",               // SIGKILL a random node, restart it on its data dir
	"kill-leader",        // SIGKILL the leader, restart it
	"pause",              // SIGSTOP a random node, SIGCONT it
	"apply-lag",          // a follower stops applying the log for a while
	"double",             // two of the above at once
}

// FaultWindow is one injected fault, for the report and the visualization.
type FaultWindow struct {
	Kind   string `json:"kind"`
	Detail string `json:"detail"`
	Start  int64  `json:"start_ns"`
	End    int64  `json:"end_ns"`
	Error  string `json:"error,omitempty"`
}

// injector applies faults to a process cluster.
type injector struct {
	c    driver
	hist *History
	rng  *rand.Rand
}

func (in *injector) others(x *node) []*node {
	var out []*node
	for _, n := range in.c.members() {
		if n != x {
			out = append(out, n)
		}
	}
	return out
}

func ids(ns []*node) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.id
	}
	return out
}

// leader asks the running nodes who leads.
func (in *injector) leader(ctx context.Context) *node {
	for _, n := range in.c.members() {
		if !in.c.running(n) {
			continue
		}
		if st, err := n.status(ctx); err == nil && st.LeaderID != "" {
			for _, m := range in.c.members() {
				if m.id == st.LeaderID {
					return m
				}
			}
		}
	}
	return nil
}

// cut makes a and b unable to talk, in the given direction from a's side.
func cut(ctx context.Context, a *node, peers []*node, direction string, d time.Duration) error {
	return a.fault(ctx, "POST", "/partition", map[string]any{"peers": ids(peers), "direction": direction, "for": (d + 10*time.Second).String()})
}

// apply starts one fault of kind for d and returns a function that heals
// it, plus a description.
func (in *injector) apply(ctx context.Context, kind string, d time.Duration) (heal func(), detail string, err error) {
	nodes := in.c.members()
	pick := func() *node { return nodes[in.rng.IntN(len(nodes))] }
	clearAll := func(ns ...*node) func() {
		return func() {
			for _, n := range ns {
				_ = n.fault(ctx, "DELETE", "", nil)
			}
		}
	}
	switch kind {
	case "partition-minority", "partition-leader":
		x := pick()
		if kind == "partition-leader" {
			if l := in.leader(ctx); l != nil {
				x = l
			}
		}
		rest := in.others(x)
		if heal, ok, err := in.c.isolate(x); ok || err != nil {
			return heal, fmt.Sprintf("%s disconnected from the network", x.id), err
		}
		if err := cut(ctx, x, rest, "both", d); err != nil {
			return nil, "", err
		}
		for _, o := range rest {
			if err := cut(ctx, o, []*node{x}, "both", d); err != nil {
				return clearAll(nodes...), "", err
			}
		}
		return clearAll(nodes...), fmt.Sprintf("%s cut off from %v", x.id, ids(rest)), nil
	case "bridge":
		b := pick()
		rest := in.others(b)
		half := len(rest) / 2
		g1, g2 := rest[:half], rest[half:]
		for _, a := range g1 {
			if err := cut(ctx, a, g2, "both", d); err != nil {
				return clearAll(nodes...), "", err
			}
		}
		for _, a := range g2 {
			if err := cut(ctx, a, g1, "both", d); err != nil {
				return clearAll(nodes...), "", err
			}
		}
		return clearAll(nodes...), fmt.Sprintf("%v and %v cut apart, bridged by %s", ids(g1), ids(g2), b.id), nil
	case "asymmetric":
		x := pick()
		if err := cut(ctx, x, in.others(x), "outbound", d); err != nil {
			return nil, "", err
		}
		return clearAll(x), fmt.Sprintf("%s cannot send to %v (still hears them)", x.id, ids(in.others(x))), nil
	case "kill", "kill-leader":
		x := pick()
		if kind == "kill-leader" {
			if l := in.leader(ctx); l != nil {
				x = l
			}
		}
		in.c.kill(x)
		return func() { _ = in.c.start(x) }, "SIGKILL " + x.id, nil
	case "pause":
		x := pick()
		in.c.pause(x)
		return func() { in.c.resume(x) }, "SIGSTOP " + x.id, nil
	case "apply-lag":
		x := pick()
		if l := in.leader(ctx); l == x {
			x = in.others(x)[0]
		}
		if err := x.fault(ctx, "POST", "/pause-apply", map[string]any{"for": d.String()}); err != nil {
			return nil, "", err
		}
		return clearAll(x), x.id + " stops applying the log", nil
	case "double":
		// Two different kinds: the same one twice (SIGKILL n2 + SIGKILL n2)
		// would be a single fault.
		simple := FaultKinds[:len(FaultKinds)-1]
		i1 := in.rng.IntN(len(simple))
		i2 := (i1 + 1 + in.rng.IntN(len(simple)-1)) % len(simple)
		k1, k2 := simple[i1], simple[i2]
		h1, d1, err := in.apply(ctx, k1, d)
		if err != nil {
			return nil, "", err
		}
		h2, d2, err := in.apply(ctx, k2, d)
		if err != nil {
			return h1, d1, err
		}
		return func() { h2(); h1() }, d1 + " + " + d2, nil
	}
	return nil, "", fmt.Errorf("unknown fault %q", kind)
}
