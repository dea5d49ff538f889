package keyrafttest

import (
	"time"

	"github.com/keyraft/keyraft/chaos/faults"
)

// Network faults between the nodes of a test cluster. They act on the
// nodes' real Raft, gossip and forwarding connections (chaos/faults), so
// what a test sees is what a real partition does: elections, forwarded
// writes failing over, followers going stale. Every node of a test cluster
// has fault injection enabled. Indexes are node indexes (0-based).

func (c *Cluster) injector(i int) *faults.Injector {
	c.t.Helper()
	a := c.Agent(i)
	if a == nil {
		c.t.Fatalf("node %s is not running", c.Nodes[i].ID)
	}
	return a.Faults()
}

func (c *Cluster) ids(nodes []int) []string {
	out := make([]string, len(nodes))
	for k, i := range nodes {
		out[k] = c.Nodes[i].ID
	}
	return out
}

// Partition cuts node i off from the given nodes in both directions, on
// both sides.
func (c *Cluster) Partition(i int, from ...int) {
	c.t.Helper()
	if _, err := c.injector(i).Partition(c.ids(from), faults.Both); err != nil {
		c.t.Fatal(err)
	}
	for _, j := range from {
		if _, err := c.injector(j).Partition(c.ids([]int{i}), faults.Both); err != nil {
			c.t.Fatal(err)
		}
	}
}

// Isolate cuts node i off from every other running node.
func (c *Cluster) Isolate(i int) {
	c.t.Helper()
	var others []int
	for _, j := range c.Running() {
		if j != i {
			others = append(others, j)
		}
	}
	c.Partition(i, others...)
}

// CutOneWay stops node from sending to node to; to can still send to from
// (an asymmetric partition).
func (c *Cluster) CutOneWay(from, to int) {
	c.t.Helper()
	if _, err := c.injector(from).Partition(c.ids([]int{to}), faults.Outbound); err != nil {
		c.t.Fatal(err)
	}
}

// Slow adds latency to everything node i sends to the given nodes.
func (c *Cluster) Slow(i int, latency time.Duration, to ...int) {
	c.t.Helper()
	if _, err := c.injector(i).Latency(c.ids(to), latency, 0); err != nil {
		c.t.Fatal(err)
	}
}

// PauseApply makes node i stop applying the Raft log for d: its replica
// falls behind while it keeps receiving entries.
func (c *Cluster) PauseApply(i int, d time.Duration) {
	c.t.Helper()
	if _, err := c.injector(i).PauseApply(d); err != nil {
		c.t.Fatal(err)
	}
}

// Heal clears every fault on every running node.
func (c *Cluster) Heal() {
	for _, i := range c.Running() {
		if inj := c.Agent(i).Faults(); inj != nil {
			inj.Clear()
		}
	}
}
