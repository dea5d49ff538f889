package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// keyraftBin is the binary built once for the end-to-end tests.
var keyraftBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "keyraft-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	keyraftBin = filepath.Join(dir, "keyraft")
	build := exec.Command("go", "build", "-o", keyraftBin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building keyraft:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// devCluster is a `keyraft dev` process under test.
type devCluster struct {
	t       *testing.T
	cmd     *exec.Cmd
	dataDir string
	apis    []string
	out     *lockedBuffer
	done    chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// freeBasePort finds a base port whose API, Raft and gossip ports are free.
// `keyraft dev` needs three contiguous ranges, which the kernel cannot hand
// out, so the base is drawn below the kernel's ephemeral range: outgoing
// connections never take those ports between this check and the bind.
func freeBasePort(t *testing.T, nodes int) int {
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil && v > 12000 {
				low = v
			}
		}
	}
	for attempt := 0; attempt < 100; attempt++ {
		base := 10000 + rand.IntN(low-10000-200-nodes)
		ok := true
		for i := 0; i < nodes && ok; i++ {
			for _, p := range []int{base + i, base + 100 + i, base + 200 + i} {
				addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
				ln, err := net.Listen("tcp", addr)
				if err != nil {
					ok = false
					break
				}
				ln.Close()
				pc, err := net.ListenPacket("udp", addr)
				if err != nil {
					ok = false
					break
				}
				pc.Close()
			}
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free port range")
	return 0
}

// startDev starts `keyraft dev` and waits for its "Cluster ready". Another
// test's listener may still take one of its ports after freeBasePort
// checked it; then it tries again on another range.
func startDev(t *testing.T, nodes int, extra ...string) *devCluster {
	t.Helper()
	for attempt := 1; ; attempt++ {
		d, err := tryStartDev(t, nodes, extra...)
		if err == nil {
			return d
		}
		if attempt == 3 || !strings.Contains(err.Error(), "address already in use") && !strings.Contains(err.Error(), "pick another -base-port") {
			t.Fatal(err)
		}
		t.Logf("keyraft dev could not bind its ports; trying another range: %v", err)
	}
}

func tryStartDev(t *testing.T, nodes int, extra ...string) (*devCluster, error) {
	t.Helper()
	base := freeBasePort(t, nodes)
	d := &devCluster{t: t, dataDir: t.TempDir(), out: &lockedBuffer{}, done: make(chan struct{})}
	args := append([]string{"dev", "-nodes", strconv.Itoa(nodes), "-base-port", strconv.Itoa(base), "-data-dir", d.dataDir}, extra...)
	d.cmd = exec.Command(keyraftBin, args...)
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.cmd.Wait(); close(d.done) }()
	nodeLogs := func() string {
		var b strings.Builder
		for i := 1; i <= nodes; i++ {
			logData, _ := os.ReadFile(filepath.Join(d.dataDir, fmt.Sprintf("n%d", i), "keyraft.log"))
			fmt.Fprintf(&b, "n%d log (tail):\n%s\n", i, tail(string(logData), 3000))
		}
		return b.String()
	}
	stop := func() {
		d.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-d.done:
		case <-time.After(30 * time.Second):
			d.cmd.Process.Kill()
			<-d.done
		}
	}
	for i := 0; i < nodes; i++ {
		d.apis = append(d.apis, fmt.Sprintf("http://127.0.0.1:%d", base+i))
	}
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(d.out.String(), "Cluster ready") {
		select {
		case <-d.done:
			return nil, fmt.Errorf("keyraft dev exited: %s\n%s", d.out.String(), nodeLogs())
		default:
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("keyraft dev not ready: %s\n%s", d.out.String(), nodeLogs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("keyraft dev output:\n%s", d.out.String())
			t.Log(nodeLogs())
		}
	})
	return d, nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// awsCLI runs the AWS CLI v2 from Debian's awscli package against endpoint.
func awsCLI(t *testing.T, endpoint string, args ...string) (map[string]any, string, error) {
	t.Helper()
	bin := "/usr/bin/aws" // Debian's CLI v2; a pyenv or pip v1 may shadow it on PATH
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("the AWS CLI (Debian awscli) is not installed: .ci/run installs it")
		}
		t.Skip("AWS CLI v2 (/usr/bin/aws, Debian awscli) not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(append([]string{"kms"}, args...), "--endpoint-url", endpoint, "--output", "json")...)
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=AKIDE2E", "AWS_SECRET_ACCESS_KEY=e2e-secret",
		"AWS_DEFAULT_REGION=us-east-1", "AWS_CONFIG_FILE="+filepath.Join(home, "config"),
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(home, "credentials"), "AWS_PAGER=", "HOME="+home,
		"AWS_MAX_ATTEMPTS=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var out map[string]any
	if err == nil && stdout.Len() > 0 {
		if jerr := json.Unmarshal(stdout.Bytes(), &out); jerr != nil {
			t.Fatalf("aws %v: output is not JSON: %s", args, stdout.String())
		}
	}
	return out, stderr.String(), err
}

func TestDevClusterWithAWSCLI(t *testing.T) {
	d := startDev(t, 3)
	created, stderr, err := awsCLI(t, d.apis[0], "create-key", "--key-spec", "HMAC_256", "--key-usage", "GENERATE_VERIFY_MAC", "--description", "e2e")
	if err != nil {
		t.Fatalf("create-key: %v: %s", err, stderr)
	}
	md := created["KeyMetadata"].(map[string]any)
	keyID := md["KeyId"].(string)
	if md["KeyState"] != "Enabled" || md["KeySpec"] != "HMAC_256" || !strings.HasPrefix(md["Arn"].(string), "arn:aws:kms:us-east-1:111122223333:key/") {
		t.Fatalf("create-key metadata: %v", md)
	}
	message := base64.StdEncoding.EncodeToString([]byte("hello from the AWS CLI"))

	// generate-mac on the second node, verify-mac on the third: wait for
	// replication as a client would, by retrying on NotFound.
	var mac string
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, stderr, err := awsCLI(t, d.apis[1], "generate-mac", "--key-id", keyID, "--mac-algorithm", "HMAC_SHA_256", "--message", message)
		if err == nil {
			mac = out["Mac"].(string)
			if out["KeyId"] != md["Arn"] {
				t.Fatalf("generate-mac KeyId %v, want the key ARN", out["KeyId"])
			}
			break
		}
		if !strings.Contains(stderr, "NotFoundException") || time.Now().After(deadline) {
			t.Fatalf("generate-mac: %v: %s", err, stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var verified map[string]any
	deadline = time.Now().Add(15 * time.Second)
	for {
		out, stderr, err := awsCLI(t, d.apis[2], "verify-mac", "--key-id", keyID, "--mac-algorithm", "HMAC_SHA_256", "--message", message, "--mac", mac)
		if err == nil {
			verified = out
			break
		}
		if !strings.Contains(stderr, "NotFoundException") || time.Now().After(deadline) {
			t.Fatalf("verify-mac: %v: %s", err, stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if verified["MacValid"] != true {
		t.Fatalf("verify-mac: %v", verified)
	}

	// A wrong MAC is refused the way AWS refuses it.
	raw, _ := base64.StdEncoding.DecodeString(mac)
	raw[3] ^= 0xff
	_, stderr, err = awsCLI(t, d.apis[2], "verify-mac", "--key-id", keyID, "--mac-algorithm", "HMAC_SHA_256", "--message", message, "--mac", base64.StdEncoding.EncodeToString(raw))
	if err == nil || !strings.Contains(stderr, "KMSInvalidMacException") {
		t.Fatalf("verify-mac with a wrong MAC: err %v, stderr %s", err, stderr)
	}
	// And an absent key reads like AWS.
	_, stderr, err = awsCLI(t, d.apis[0], "describe-key", "--key-id", "alias/does-not-exist")
	if err == nil || !strings.Contains(stderr, "NotFoundException") {
		t.Fatalf("describe-key of a missing alias: err %v, stderr %s", err, stderr)
	}
}

// TestDevKillAndRestartNode kills one node with SIGKILL, as the README
// invites users to, restarts it with the command `keyraft dev` printed, and
// checks that it rejoins with the writes it missed.
func TestDevKillAndRestartNode(t *testing.T) {
	d := startDev(t, 3)
	st := mustStatus(t, d.apis[2])
	pid := findAgentPID(t, "n3", d.dataDir)
	syscall.Kill(pid, syscall.SIGKILL)

	var restart string
	re := regexp.MustCompile(`(?m)^==> n3 exited.*\n\s+(.+)$`)
	deadline := time.Now().Add(15 * time.Second)
	for {
		if m := re.FindStringSubmatch(d.out.String()); m != nil {
			restart = m[1]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("keyraft dev did not print a restart command: %s", d.out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// A write while n3 is down.
	created, stderr, err := awsCLIOrHTTP(t, d.apis[0])
	if err != nil {
		t.Fatalf("create-key while n3 is down: %v %s", err, stderr)
	}

	cmd := exec.Command("sh", "-c", "exec "+restart)
	logf, _ := os.OpenFile(filepath.Join(d.dataDir, "n3", "restart.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
		}
	})
	deadline = time.Now().Add(30 * time.Second)
	for {
		s, err := status(d.apis[2])
		if err == nil && s.LeaderID != "" && s.AppliedIndex > st.AppliedIndex && hasKey(d.apis[2], created) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("restarted n3 did not catch up: %+v %v", s, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// awsCLIOrHTTP creates a key with a raw JSON 1.1 request, the way an SDK
// would send it, and returns its id.
func awsCLIOrHTTP(t *testing.T, endpoint string) (string, string, error) {
	body, code := kmsCall(t, endpoint, "CreateKey", `{"KeySpec":"HMAC_256","KeyUsage":"GENERATE_VERIFY_MAC"}`)
	if code != 200 {
		return "", string(body), fmt.Errorf("status %d", code)
	}
	var out struct{ KeyMetadata struct{ KeyId string } }
	json.Unmarshal(body, &out)
	return out.KeyMetadata.KeyId, "", nil
}

func kmsCall(t *testing.T, endpoint, op, body string) ([]byte, int) {
	req, _ := http.NewRequest("POST", endpoint+"/", strings.NewReader(body))
	req.Header.Set("X-Amz-Target", "TrentService."+op)
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return b, resp.StatusCode
}

func hasKey(endpoint, keyID string) bool {
	req, _ := http.NewRequest("POST", endpoint+"/", strings.NewReader(`{"KeyId":"`+keyID+`"}`))
	req.Header.Set("X-Amz-Target", "TrentService.DescribeKey")
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

func status(endpoint string) (*nodeStatus, error) {
	st, _, err := fetchStatus(&http.Client{Timeout: 2 * time.Second}, endpoint)
	return st, err
}

func mustStatus(t *testing.T, endpoint string) *nodeStatus {
	st, err := status(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// findAgentPID finds the agent process of node id under dataDir.
func findAgentPID(t *testing.T, id, dataDir string) int {
	want := filepath.Join(dataDir, id)
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		for i, a := range args {
			if a == "-data-dir" && i+1 < len(args) && args[i+1] == want {
				return pid
			}
		}
	}
	t.Fatalf("no agent process for %s", want)
	return 0
}

func TestDevCtrlCStopsEveryNode(t *testing.T) {
	d := startDev(t, 3)
	pids := []int{findAgentPID(t, "n1", d.dataDir), findAgentPID(t, "n2", d.dataDir), findAgentPID(t, "n3", d.dataDir)}
	d.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		t.Fatal("keyraft dev did not stop on SIGINT")
	}
	if code := d.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("keyraft dev exit code %d", code)
	}
	for _, pid := range pids {
		if syscall.Kill(pid, 0) == nil {
			// A zombie reaped late still answers; give it a moment.
			time.Sleep(500 * time.Millisecond)
			if data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil && !bytes.Contains(data, []byte("zombie")) {
				t.Fatalf("node process %d still running after Ctrl-C", pid)
			}
		}
	}
	if !strings.Contains(d.out.String(), "Stopped") {
		t.Fatalf("output: %s", d.out.String())
	}
}

func TestAgentRefusesToStartWithoutSealKey(t *testing.T) {
	out, err := exec.Command(keyraftBin, "agent", "-node-id", "x", "-data-dir", t.TempDir()).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "-seal-key-file is required") {
		t.Fatalf("agent without a seal key: %v: %s", err, out)
	}
}

func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.json")
	os.WriteFile(cfg, []byte(`{"region":"eu-west-1","join":["a:1","b:2"],"bootstrap-expect":3}`), 0o600)
	var f agentFlags
	fs := newAgentFlagSet(&f)
	t.Setenv("KEYRAFT_ACCOUNT_ID", "999988887777")
	t.Setenv("KEYRAFT_REGION", "eu-central-1")
	if err := loadFlags(fs, []string{"-config", cfg, "-join", "c:3"}); err != nil {
		t.Fatal(err)
	}
	if f.region != "eu-central-1" || f.accountID != "999988887777" || f.bootstrapExpect != 3 || strings.Join(f.join.values, ",") != "c:3" {
		t.Fatalf("precedence wrong: region %s account %s expect %d join %v", f.region, f.accountID, f.bootstrapExpect, f.join.values)
	}
	if err := loadFlags(newAgentFlagSet(&agentFlags{}), []string{"-config", cfg + ".missing"}); err == nil {
		t.Fatal("a missing config file must be an error")
	}
	os.WriteFile(cfg, []byte(`{"no-such-flag":1}`), 0o600)
	if err := loadFlags(newAgentFlagSet(&agentFlags{}), []string{"-config", cfg}); err == nil || !strings.Contains(err.Error(), "unknown setting") {
		t.Fatalf("unknown setting: %v", err)
	}
}
