package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyraft/keyraft/chaos"
)

// composeCluster is one Compose project of deploy/compose.yaml under test.
type composeCluster struct {
	t       *testing.T
	project string
	env     []string
	ports   []int
	// netPrefix is the /24 of the project's network, e.g. "10.201.7".
	netPrefix string
}

func dockerAvailable(t *testing.T) {
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("docker not installed")
	}
	if _, err := exec.LookPath("docker-compose"); err != nil {
		t.Skip("docker-compose not installed")
	}
	if out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("docker is installed but the engine does not answer: %s", out)
		}
		t.Skipf("no Docker engine: %s", bytes.TrimSpace(out))
	}
}

func run(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// buildImage builds the static binary and the keyraft:latest image from it,
// exactly as `make docker-image` does.
func buildImage(t *testing.T) {
	ctxDir := t.TempDir()
	build := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(ctxDir, "keyraft"), "../cmd/keyraft")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, d := range []string{"data", "secrets"} {
		if err := os.Mkdir(filepath.Join(ctxDir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	run(t, nil, "docker", "build", "-q", "-f", "Dockerfile", "-t", "keyraft:latest", ctxDir)
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func startCompose(t *testing.T) *composeCluster {
	dockerAvailable(t)
	buildImage(t)
	c := &composeCluster{t: t, project: fmt.Sprintf("keyrafttest%d", rand.IntN(1_000_000))}
	// Host ports and a subnet of its own, so that it never collides with a
	// cluster a developer already runs or another project on the engine.
	for i := 1; i <= 3; i++ {
		p := freePort(t)
		c.ports = append(c.ports, p)
		c.env = append(c.env, fmt.Sprintf("KEYRAFT_PORT_N%d=%d", i, p))
	}
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := c.compose("logs", "--no-color", "--tail", "60")
			t.Logf("container logs:\n%s", logs)
		}
		if out, err := c.compose("down", "-v", "--remove-orphans", "-t", "5"); err != nil {
			t.Logf("compose down: %v\n%s", err, out)
		}
	})
	prefix, err := chaos.ComposeUp("compose.yaml", c.project, c.env)
	if err != nil {
		t.Fatal(err)
	}
	c.netPrefix = prefix
	c.env = append(c.env, "KEYRAFT_NET_PREFIX="+prefix)
	c.waitHealthy(90 * time.Second)
	return c
}

func (c *composeCluster) compose(args ...string) (string, error) {
	return chaos.Compose("compose.yaml", c.project, c.env, args...)
}

func (c *composeCluster) container(node string) string { return c.project + "_" + node + "_1" }

func (c *composeCluster) health(node string) string {
	out, err := exec.Command("docker", "inspect", "-f", "{{.State.Health.Status}}", c.container(node)).Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

func (c *composeCluster) waitHealthy(timeout time.Duration, nodes ...string) {
	c.t.Helper()
	if len(nodes) == 0 {
		nodes = []string{"n1", "n2", "n3"}
	}
	deadline := time.Now().Add(timeout)
	for {
		healthy := 0
		for _, n := range nodes {
			if c.health(n) == "healthy" {
				healthy++
			}
		}
		if healthy == len(nodes) {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("containers not healthy after %s", timeout)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func (c *composeCluster) client(i int) *kms.Client {
	return kms.New(kms.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String("http://127.0.0.1:" + strconv.Itoa(c.ports[i])),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDDOCKER", "docker-secret", ""),
		HTTPClient:   &http.Client{Timeout: 10 * time.Second},
	})
}

// eventually retries f (as a client of an eventually consistent service
// would) until it succeeds or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestComposeCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("container test")
	}
	c := startCompose(t)
	ctx := context.Background()
	key, err := c.client(0).CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecHmac256, KeyUsage: types.KeyUsageTypeGenerateVerifyMac})
	if err != nil {
		t.Fatalf("CreateKey on n1: %v", err)
	}
	msg := []byte("from the host into the containers")
	var mac []byte
	eventually(t, 10*time.Second, "GenerateMac on n2", func() error {
		out, err := c.client(1).GenerateMac(ctx, &kms.GenerateMacInput{KeyId: key.KeyMetadata.KeyId, MacAlgorithm: types.MacAlgorithmSpecHmacSha256, Message: msg})
		if err == nil {
			mac = out.Mac
		}
		return err
	})
	eventually(t, 10*time.Second, "VerifyMac on n3", func() error {
		_, err := c.client(2).VerifyMac(ctx, &kms.VerifyMacInput{KeyId: key.KeyMetadata.KeyId, MacAlgorithm: types.MacAlgorithmSpecHmacSha256, Message: msg, Mac: mac})
		return err
	})

	// Kill a container outright: the others keep serving and taking writes,
	// and the killed node comes back with its volume and catches up.
	run(t, nil, "docker", "kill", c.container("n1"))
	var key2 *kms.CreateKeyOutput
	eventually(t, 30*time.Second, "CreateKey on n2 after n1 was killed", func() error {
		var err error
		key2, err = c.client(1).CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecHmac512, KeyUsage: types.KeyUsageTypeGenerateVerifyMac})
		return err
	})
	if _, err := c.client(2).GenerateMac(ctx, &kms.GenerateMacInput{KeyId: key.KeyMetadata.KeyId, MacAlgorithm: types.MacAlgorithmSpecHmacSha256, Message: msg}); err != nil {
		t.Fatalf("GenerateMac on n3 while n1 is down: %v", err)
	}
	run(t, nil, "docker", "start", c.container("n1"))
	c.waitHealthy(60*time.Second, "n1")
	eventually(t, 30*time.Second, "n1 catches up", func() error {
		_, err := c.client(0).DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: key2.KeyMetadata.KeyId})
		return err
	})
	out, err := c.client(0).GenerateMac(ctx, &kms.GenerateMacInput{KeyId: key.KeyMetadata.KeyId, MacAlgorithm: types.MacAlgorithmSpecHmacSha256, Message: msg})
	if err != nil || !bytes.Equal(out.Mac, mac) {
		t.Fatalf("restarted n1 computes a different MAC: %v", err)
	}

	// Partition n3 at the network level: the majority keeps taking writes,
	// and n3, cut off, stops serving once past its staleness bound (10s).
	network := c.project + "_keyraft"
	run(t, nil, "docker", "network", "disconnect", network, c.container("n3"))
	// n3's published port goes with the network, so probe it from inside.
	eventually(t, 30*time.Second, "writes on the majority while n3 is partitioned", func() error {
		_, err := c.client(0).DisableKey(ctx, &kms.DisableKeyInput{KeyId: key2.KeyMetadata.KeyId})
		return err
	})
	eventually(t, 30*time.Second, "n3 reports itself stale", func() error {
		out, err := exec.Command("docker", "exec", c.container("n3"), "/keyraft", "status", "-addr", "http://127.0.0.1:8081", "-check").CombinedOutput()
		if err == nil {
			return errors.New("n3 still healthy while partitioned")
		}
		if !strings.Contains(string(out), "stale") && !strings.Contains(string(out), "no leader") {
			return fmt.Errorf("unexpected: %s", out)
		}
		return nil
	})
	run(t, nil, "docker", "network", "connect", "--ip", c.netPrefix+".13", network, c.container("n3"))
	c.waitHealthy(60*time.Second, "n3")
	eventually(t, 30*time.Second, "n3 sees the key disabled after healing", func() error {
		_, err := c.client(2).GenerateMac(ctx, &kms.GenerateMacInput{KeyId: key2.KeyMetadata.KeyId, MacAlgorithm: types.MacAlgorithmSpecHmacSha512, Message: msg})
		var disabled *types.DisabledException
		if errors.As(err, &disabled) {
			return nil
		}
		return fmt.Errorf("want DisabledException, got %v", err)
	})
}
