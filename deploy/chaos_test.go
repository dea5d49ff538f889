package deploy

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/keyraft/keyraft/chaos"
)

// TestComposeChaos is the container-level robustness run (make
// chaos-docker; CI runs it when a Docker engine answers): the Compose
// cluster under real engine faults — docker kill/start, docker
// pause/unpause, docker network disconnect/connect — plus the nodes' own
// fault API for asymmetric cuts and apply lag, driven from the host with the
// SDK workload and judged by the same checks as the process-level runs.
func TestComposeChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("container robustness run")
	}
	dockerAvailable(t)
	buildImage(t)
	abs, err := filepath.Abs("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := chaos.DockerConfig{
		ComposeFile: abs,
		Project:     fmt.Sprintf("keyraftchaos%d", rand.IntN(1_000_000)),
		Ports:       []int{freePort(t), freePort(t), freePort(t)},
	}
	t.Cleanup(func() {
		env := []string{"KEYRAFT_NET_PREFIX=" + cfg.NetPrefix}
		if out, err := chaos.Compose(cfg.ComposeFile, cfg.Project, env, "down", "-v", "--remove-orphans", "-t", "5"); err != nil {
			t.Logf("compose down: %v\n%s", err, out)
		}
	})
	seed := uint64(20261124)
	if v := os.Getenv("KEYRAFT_CHAOS_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("KEYRAFT_CHAOS_SEED: %v", err)
		}
		seed = n
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := chaos.Run(ctx, chaos.Config{
		Docker: &cfg, Seed: seed, Clients: 4,
		Warmup: 3 * time.Second, Faults: 15 * time.Second, Cooldown: 3 * time.Second,
		// Every kind: the partition kinds disconnect a container from the
		// network; bridge and asymmetric cut single links through the
		// nodes' fault API (the engine has no per-pair cut); double
		// combines two, engine faults included.
		FaultKinds: chaos.FaultKinds,
		Dir:        t.TempDir(),
		Progress:   testLog{t},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + rep.Summary())
	if !rep.Passed {
		logs, _ := chaos.Compose(cfg.ComposeFile, cfg.Project, nil, "logs", "--no-color", "--tail", "80")
		t.Fatalf("robustness violations in the container run (seed %d); container logs:\n%s", seed, logs)
	}
}

type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(string(p[:len(p)-1]))
	return len(p), nil
}
