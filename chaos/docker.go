package chaos

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// DockerConfig points a run at the Compose cluster of deploy/compose.yaml
// instead of local processes: the workload reaches the nodes through their
// published ports, and faults use the engine (docker kill/start,
// pause/unpause, network disconnect/connect) plus the nodes' fault API for
// what the engine cannot do (asymmetric cuts, apply lag).
type DockerConfig struct {
	ComposeFile string   // path to deploy/compose.yaml
	Project     string   // compose project name (unique per run)
	NetPrefix   string   // KEYRAFT_NET_PREFIX, e.g. 10.201.150; empty: a free one is picked
	Ports       []int    // published API ports of n1, n2, n3
	Env         []string // extra environment for docker-compose
}

// dockerCluster drives the containers of one Compose project.
type dockerCluster struct {
	cfg   DockerConfig
	env   []string
	nodes []*node
}

func docker(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// newDockerCluster brings the project up. It records the network prefix in
// use in cfg, so that the caller can reach the project afterwards.
func newDockerCluster(cfg *DockerConfig, maxStaleness time.Duration) (*dockerCluster, error) {
	env := append(append([]string(nil), cfg.Env...),
		"KEYRAFT_ENABLE_FAULT_INJECTION=true",
		"KEYRAFT_MAX_STALENESS="+maxStaleness.String())
	d := &dockerCluster{}
	for i, p := range cfg.Ports {
		env = append(env, fmt.Sprintf("KEYRAFT_PORT_N%d=%d", i+1, p))
		d.nodes = append(d.nodes, &node{id: fmt.Sprintf("n%d", i+1), http: fmt.Sprintf("127.0.0.1:%d", p)})
	}
	if cfg.NetPrefix == "" {
		prefix, err := ComposeUp(cfg.ComposeFile, cfg.Project, env)
		if err != nil {
			return nil, err
		}
		cfg.NetPrefix = prefix
	} else if out, err := Compose(cfg.ComposeFile, cfg.Project, append(env, "KEYRAFT_NET_PREFIX="+cfg.NetPrefix), "up", "-d"); err != nil {
		return nil, fmt.Errorf("compose up: %v: %s", err, out)
	}
	d.cfg = *cfg
	d.env = append(env, "KEYRAFT_NET_PREFIX="+cfg.NetPrefix)
	return d, nil
}

func (d *dockerCluster) compose(args ...string) (string, error) {
	return Compose(d.cfg.ComposeFile, d.cfg.Project, d.env, args...)
}

func (d *dockerCluster) container(n *node) string { return d.cfg.Project + "_" + n.id + "_1" }

func (d *dockerCluster) members() []*node { return d.nodes }

func (d *dockerCluster) start(n *node) error {
	if d.running(n) {
		return nil
	}
	_, err := docker("start", d.container(n))
	return err
}

func (d *dockerCluster) running(n *node) bool {
	out, err := docker("inspect", "-f", "{{.State.Running}}", d.container(n))
	return err == nil && out == "true"
}

func (d *dockerCluster) kill(n *node)   { _, _ = docker("kill", d.container(n)) }
func (d *dockerCluster) pause(n *node)  { _, _ = docker("pause", d.container(n)) }
func (d *dockerCluster) resume(n *node) { _, _ = docker("unpause", d.container(n)) } // fails harmlessly when not paused

// stopAll leaves the project to its owner, who removes it with its volumes
// (the data stays inspectable until then).
func (d *dockerCluster) stopAll() {}

func (d *dockerCluster) isolate(n *node) (func(), bool, error) {
	network := d.cfg.Project + "_keyraft"
	if out, err := docker("network", "disconnect", network, d.container(n)); err != nil {
		return nil, true, fmt.Errorf("network disconnect: %v: %s", err, out)
	}
	ip := fmt.Sprintf("%s.%d", d.cfg.NetPrefix, 10+nodeNumber(n))
	return func() { _, _ = docker("network", "connect", "--ip", ip, network, d.container(n)) }, true, nil
}

func nodeNumber(n *node) int {
	var k int
	fmt.Sscanf(n.id, "n%d", &k)
	return k
}
