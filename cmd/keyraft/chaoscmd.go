package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/keyraft/keyraft/chaos"
)

// runChaos runs robustness campaigns against clusters of this very binary.
func runChaos(args []string) int {
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	runs := fs.Int("runs", 1, "number of runs (schedules)")
	seed := fs.Uint64("seed", 0, "seed of the first run (0: random); run i uses seed+i")
	nodes := fs.Int("nodes", 3, "cluster size (3 or 5)")
	clients := fs.Int("clients", 8, "concurrent workload clients")
	warmup := fs.Duration("warmup", 5*time.Second, "traffic before faults")
	faultFor := fs.Duration("faults", 20*time.Second, "how long faults are injected")
	cooldown := fs.Duration("cooldown", 5*time.Second, "traffic after healing")
	kinds := fs.String("kinds", "", "comma-separated fault kinds (default all: "+strings.Join(chaos.FaultKinds, ",")+")")
	staleness := fs.Duration("max-staleness", 3*time.Second, "the agents' staleness bound")
	dir := fs.String("dir", "", "where runs keep data dirs, logs and reports (default: a temporary directory; kept on failure)")
	keep := fs.Bool("keep", false, "keep the data of passing runs too")
	jsonOut := fs.Bool("json", false, "print each run's JSON report instead of the summary")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: keyraft chaos [-runs N] [-seed S] [flags]\n\nStarts clusters of real keyraft agents on loopback, drives them with the AWS SDK while\ninjecting a seeded random fault schedule, heals, and checks the recorded history\n(linearizability, no lost writes, convergence, MACs, bounded staleness, liveness).\nA failing run keeps its data dirs, node logs and an HTML report. Exit status 1 if any run fails.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := loadFlags(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "keyraft chaos:", err)
		return 2
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "keyraft chaos:", err)
		return 1
	}
	var kindList []string
	if *kinds != "" {
		known := map[string]bool{}
		for _, k := range chaos.FaultKinds {
			known[k] = true
		}
		for _, k := range strings.Split(*kinds, ",") {
			if k = strings.TrimSpace(k); !known[k] {
				fmt.Fprintf(os.Stderr, "keyraft chaos: unknown fault kind %q\n", k)
				return 2
			}
			kindList = append(kindList, k)
		}
	}
	first := *seed
	if first == 0 {
		first = rand.Uint64() % 1_000_000_000
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	failed := 0
	for i := 0; i < *runs && ctx.Err() == nil; i++ {
		s := first + uint64(i)
		runDir := ""
		if *dir != "" {
			runDir = filepath.Join(*dir, fmt.Sprintf("seed-%d", s))
		}
		rep, err := chaos.Run(ctx, chaos.Config{
			Binary: self, Seed: s, Nodes: *nodes, Clients: *clients,
			Warmup: *warmup, Faults: *faultFor, Cooldown: *cooldown, FaultKinds: kindList,
			MaxStaleness: *staleness, Dir: runDir, Keep: *keep, Progress: os.Stderr,
		})
		if err != nil {
			fmt.Fprintf(os.Stderr, "keyraft chaos: seed %d: %v\n", s, err)
			failed++
			continue
		}
		if *jsonOut {
			b, _ := json.MarshalIndent(rep, "", "  ")
			fmt.Println(string(b))
		} else {
			fmt.Print(rep.Summary())
		}
		if !rep.Passed {
			failed++
		}
	}
	fmt.Printf("==> %d run(s) from seed %d: %d failed\n", *runs, first, failed)
	if failed > 0 {
		return 1
	}
	return 0
}
