package chaos

import "syscall"

// driver is what the runner controls: agent processes on this machine
// (procCluster) or the containers of a Compose project (dockerCluster).
type driver interface {
	members() []*node
	start(n *node) error // (re)start a stopped node on its data
	running(n *node) bool
	kill(n *node)   // at once: SIGKILL, docker kill
	pause(n *node)  // freeze: SIGSTOP, docker pause
	resume(n *node) // SIGCONT, docker unpause
	stopAll()
	// isolate cuts n off at the network level and returns the function
	// that reconnects it, or ok=false where the driver has no network of
	// its own (processes on loopback use the nodes' fault API instead).
	isolate(n *node) (heal func(), ok bool, err error)
}

func (c *procCluster) members() []*node { return c.nodes }
func (c *procCluster) kill(n *node)     { c.kill9(n) }
func (c *procCluster) pause(n *node)    { c.signal(n, syscall.SIGSTOP) }
func (c *procCluster) resume(n *node)   { c.signal(n, syscall.SIGCONT) }
func (c *procCluster) isolate(*node) (func(), bool, error) {
	return nil, false, nil
}
