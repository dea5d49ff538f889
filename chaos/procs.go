package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	paused bool
	// served: the node has been up once, so its addresses are in the raft
	// configuration and must not change.
	served bool
	// logFrom is the size of keyraft.log when the process last started.
	logFrom int64
}

// procCluster starts and controls the agent processes.
type procCluster struct {
	bin     string
	sealKey string
	extra   []string
	nodes   []*node
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
	c.sealKey, c.extra = sealKey, extra
	for i := 1; i <= n; i++ {
		nd := &node{id: "n" + strconv.Itoa(i), dir: filepath.Join(dir, "n"+strconv.Itoa(i))}
		if err := nd.pickPorts(); err != nil {
			return nil, err
		}
		c.nodes = append(c.nodes, nd)
	}
	return c, nil
}

// pickPorts gives the node fresh loopback addresses from the kernel.
func (nd *node) pickPorts() error {
	for _, p := range []*string{&nd.http, &nd.raft, &nd.gossip} {
		addr, err := freeTCPUDPPort()
		if err != nil {
			return err
		}
		*p = addr
	}
	return nil
}

// args is the agent command line of nd.
func (c *procCluster) args(nd *node) []string {
	var seeds []string
	for _, o := range c.nodes {
		seeds = append(seeds, o.gossip)
	}
	return append([]string{"agent",
		"-node-id", nd.id, "-data-dir", nd.dir,
		"-http-addr", nd.http, "-raft-addr", nd.raft, "-gossip-addr", nd.gossip,
		"-join", strings.Join(seeds, ","), "-bootstrap-expect", strconv.Itoa(len(c.nodes)),
		"-seal-key-file", c.sealKey, "-leave-on-terminate=false",
	}, c.extra...)
}

var errAddrInUse = errors.New("address already in use")

// start starts the node's process unless it runs, and waits until it
// answers /v1/status. Its ports were picked from the kernel and closed
// again, so another process's outgoing connection may hold one by now
// (ephemeral ports share the range): a node that never served picks new
// ports and tries again; a restarted node keeps its addresses, which are in
// the raft configuration, and waits for them to be free.
func (c *procCluster) start(nd *node) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := c.spawn(nd)
		if err == nil {
			err = c.waitUp(nd, deadline)
		}
		if !errors.Is(err, errAddrInUse) || time.Now().After(deadline) {
			return err
		}
		nd.mu.Lock()
		if !nd.served {
			if err := nd.pickPorts(); err != nil {
				nd.mu.Unlock()
				return err
			}
		}
		nd.mu.Unlock()
		time.Sleep(100 * time.Millisecond)
	}
}

// waitUp waits until nd answers /v1/status (nil), its process exits
// (errAddrInUse when it could not bind, another error otherwise), or the
// deadline passes (nil: the runner's convergence checks judge it).
func (c *procCluster) waitUp(nd *node, deadline time.Time) error {
	nd.mu.Lock()
	exited, logFrom := nd.exited, nd.logFrom
	nd.mu.Unlock()
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			out := nd.logSince(logFrom)
			if strings.Contains(out, "address already in use") {
				return fmt.Errorf("%s: %w", nd.id, errAddrInUse)
			}
			return fmt.Errorf("%s exited at start: %s", nd.id, tailString(out, 2000))
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := nd.status(ctx)
		cancel()
		if err == nil {
			nd.mu.Lock()
			nd.served = true
			nd.mu.Unlock()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// logSince is what the node's log gained after offset.
func (nd *node) logSince(offset int64) string {
	f, err := os.Open(filepath.Join(nd.dir, "keyraft.log"))
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(f, 1<<20))
	return string(b)
}

func tailString(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// spawn starts the node's process unless it runs.
func (c *procCluster) spawn(nd *node) error {
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
	if fi, err := logf.Stat(); err == nil {
		nd.logFrom = fi.Size()
	}
	cmd := exec.Command(c.bin, c.args(nd)...)
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
