package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// node is one `keyraft agent` process of a chaos cluster.
type node struct {
	id                 string
	dir                string
	http, raft, gossip string
	args               []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	paused bool
}

// procCluster starts and controls the agent processes.
type procCluster struct {
	bin   string
	nodes []*node
}

func freeTCPUDPPort() (string, error) {
	for i := 0; i < 100; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		addr := ln.Addr().String()
		pc, err := net.ListenPacket("udp", addr)
		ln.Close()
		if err == nil {
			pc.Close()
			return addr, nil
		}
	}
	return "", fmt.Errorf("no port free for TCP and UDP")
}

func newProcCluster(bin, dir string, n int, extra []string) (*procCluster, error) {
	c := &procCluster{bin: bin}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	sealKey := filepath.Join(dir, "seal.key")
	if out, err := exec.Command(bin, "keygen", "-out", sealKey, "-keep").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("keygen: %v: %s", err, out)
	}
	var seeds []string
	for i := 1; i <= n; i++ {
		nd := &node{id: "n" + strconv.Itoa(i), dir: filepath.Join(dir, "n"+strconv.Itoa(i))}
		for _, p := range []*string{&nd.http, &nd.raft, &nd.gossip} {
			addr, err := freeTCPUDPPort()
			if err != nil {
				return nil, err
			}
			*p = addr
		}
		seeds = append(seeds, nd.gossip)
		c.nodes = append(c.nodes, nd)
	}
	for _, nd := range c.nodes {
		nd.args = append([]string{"agent",
			"-node-id", nd.id, "-data-dir", nd.dir,
			"-http-addr", nd.http, "-raft-addr", nd.raft, "-gossip-addr", nd.gossip,
			"-join", strings.Join(seeds, ","), "-bootstrap-expect", strconv.Itoa(n),
			"-seal-key-file", sealKey, "-leave-on-terminate=false",
		}, extra...)
	}
	return c, nil
}

func (c *procCluster) start(nd *node) error {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.cmd != nil {
		select {
		case <-nd.exited:
		default:
			return nil // running
		}
	}
	if err := os.MkdirAll(nd.dir, 0o700); err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(nd.dir, "keyraft.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(c.bin, nd.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(exited) }()
	nd.cmd, nd.exited, nd.paused = cmd, exited, false
	return nil
}

func (c *procCluster) running(nd *node) bool {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.cmd == nil {
		return false
	}
	select {
	case <-nd.exited:
		return false
	default:
		return true
	}
}

// signal sends sig to the node's process, if it runs.
func (c *procCluster) signal(nd *node, sig syscall.Signal) {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.cmd == nil || nd.cmd.Process == nil {
		return
	}
	_ = nd.cmd.Process.Signal(sig)
	switch sig {
	case syscall.SIGSTOP:
		nd.paused = true
	case syscall.SIGCONT:
		nd.paused = false
	}
}

// kill9 kills the node outright and waits for it to be gone.
func (c *procCluster) kill9(nd *node) {
	c.signal(nd, syscall.SIGKILL)
	nd.mu.Lock()
	ch := nd.exited
	nd.mu.Unlock()
	if ch != nil {
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
		}
	}
}

func (c *procCluster) stopAll() {
	for _, nd := range c.nodes {
		c.signal(nd, syscall.SIGCONT)
		c.signal(nd, syscall.SIGTERM)
	}
	deadline := time.After(15 * time.Second)
	for _, nd := range c.nodes {
		nd.mu.Lock()
		ch := nd.exited
		nd.mu.Unlock()
		if ch == nil {
			continue
		}
		select {
		case <-ch:
		case <-deadline:
			c.kill9(nd)
		}
	}
}

// nodeStatus is the part of GET /v1/status the runner reads.
type nodeStatus struct {
	NodeID       string         `json:"node_id"`
	State        string         `json:"state"`
	LeaderID     string         `json:"leader_id"`
	Term         uint64         `json:"term"`
	CommitIndex  uint64         `json:"commit_index"`
	AppliedIndex uint64         `json:"applied_index"`
	Extra        map[string]any `json:"extra"`
}

var adminClient = &http.Client{Timeout: 3 * time.Second}

func (nd *node) status(ctx context.Context) (*nodeStatus, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+nd.http+"/v1/status", nil)
	resp, err := adminClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("status: %s", resp.Status)
	}
	var st nodeStatus
	return &st, json.Unmarshal(body, &st)
}

// fault calls the node's fault-injection admin API.
func (nd *node) fault(ctx context.Context, method, path string, body any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequestWithContext(ctx, method, "http://"+nd.http+"/v1/faults"+path, rd)
	req.Header.Set("Content-Type", "application/json")
	resp, err := adminClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("%s /v1/faults%s on %s: %s: %s", method, path, nd.id, resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}
