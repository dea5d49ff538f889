package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// buildKeyraft builds the agent binary the runner starts.
func buildKeyraft(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "keyraft")
	cmd := exec.Command("go", "build", "-o", bin, "../cmd/keyraft")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestShortCampaign is CI's robustness run: a fixed seed, so a regression
// reproduces, and a random one, printed, so coverage grows run by run.
// KEYRAFT_CHAOS_SEEDS=1,2,3 replays chosen seeds.
func TestShortCampaign(t *testing.T) {
	if testing.Short() {
		t.Skip("robustness campaign")
	}
	bin := buildKeyraft(t)
	seeds := []uint64{20261124, rand.Uint64() % 1_000_000}
	if s := os.Getenv("KEYRAFT_CHAOS_SEEDS"); s != "" {
		seeds = nil
		for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
			n, err := strconv.ParseUint(f, 10, 64)
			if err != nil {
				t.Fatalf("KEYRAFT_CHAOS_SEEDS: %v", err)
			}
			seeds = append(seeds, n)
		}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			defer cancel()
			rep, err := Run(ctx, Config{
				Binary: bin, Seed: seed, Nodes: 3, Clients: 6,
				Warmup: 3 * time.Second, Faults: 15 * time.Second, Cooldown: 3 * time.Second,
				Dir:      filepath.Join(os.TempDir(), fmt.Sprintf("keyraft-chaos-%d-%d", seed, time.Now().UnixNano())),
				Progress: testWriter{t},
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Log("\n" + rep.Summary())
			if !rep.Passed {
				t.Fatalf("robustness violations with seed %d (data kept in %s)", seed, rep.Dir)
			}
			if len(rep.Faults) < 2 {
				t.Fatalf("only %d faults injected", len(rep.Faults))
			}
		})
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p[:len(p)-1]))
	return len(p), nil
}
