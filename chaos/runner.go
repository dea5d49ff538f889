package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// Config shapes one robustness run.
type Config struct {
	Binary  string // the keyraft binary to run as agents
	Nodes   int    // 3 or 5 (default 3)
	Seed    uint64 // the schedule and workload derive from it; printed, reproducible
	Clients int    // concurrent workload clients (default 8)

	Warmup   time.Duration // traffic before any fault (default 5s)
	Faults   time.Duration // how long faults are injected (default 20s)
	Cooldown time.Duration // traffic after healing (default 5s)
	// FaultKinds limits the schedule to these kinds (default: all).
	FaultKinds []string

	// MaxStaleness is the agents' -max-staleness (default 3s).
	MaxStaleness time.Duration
	// MinRate is the lowest acceptable rate of successful calls per second
	// before faults: a quiet run cannot pass by accident (default 20).
	MinRate float64

	// Dir holds the data dirs, logs and reports. Kept on failure; removed
	// on success unless Keep.
	Dir  string
	Keep bool

	// Progress, when set, receives a progress line every second.
	Progress io.Writer

	// Docker, when set, runs against the Compose cluster it describes
	// instead of starting agent processes (Binary is then unused).
	Docker *DockerConfig
}

// Report is what a run found; it is also written as report.json.
type Report struct {
	Seed        uint64                      `json:"seed"`
	Nodes       int                         `json:"nodes"`
	Passed      bool                        `json:"passed"`
	Faults      []FaultWindow               `json:"faults"`
	Operations  int64                       `json:"operations"`
	KeyWrites   int                         `json:"key_state_writes"`
	Macs        int                         `json:"macs"`
	Rates       map[string]float64          `json:"success_per_second"`
	SuccessRate map[string]float64          `json:"success_ratio"`
	Errors      map[string]map[string]int64 `json:"errors_by_phase"`
	Checks      map[string]string           `json:"checks"` // check → "pass" or the failure
	Violations  []Violation                 `json:"violations,omitempty"`
	Dir         string                      `json:"dir"`
	HTML        string                      `json:"html_report,omitempty"`
	Elapsed     string                      `json:"elapsed"`
}

func (c *Config) defaults() error {
	if c.Binary == "" && c.Docker == nil {
		return errors.New("chaos: Config.Binary (or Config.Docker) is required")
	}
	if c.Nodes == 0 {
		c.Nodes = 3
	}
	if c.Clients == 0 {
		c.Clients = 8
	}
	if c.Warmup == 0 {
		c.Warmup = 5 * time.Second
	}
	if c.Faults == 0 {
		c.Faults = 20 * time.Second
	}
	if c.Cooldown == 0 {
		c.Cooldown = 5 * time.Second
	}
	if c.MaxStaleness == 0 {
		c.MaxStaleness = 3 * time.Second
	}
	if c.MinRate == 0 {
		c.MinRate = 20
	}
	if len(c.FaultKinds) == 0 {
		c.FaultKinds = FaultKinds
	}
	if c.Dir == "" {
		d, err := os.MkdirTemp("", fmt.Sprintf("keyraft-chaos-%d-", c.Seed))
		if err != nil {
			return err
		}
		c.Dir = d
	}
	return nil
}

// Run performs one robustness run: start the cluster, drive traffic, inject
// the seeded fault schedule, heal, wait for convergence, check the history.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	began := time.Now()
	rep := &Report{Seed: cfg.Seed, Nodes: cfg.Nodes, Dir: cfg.Dir, Checks: map[string]string{}}
	progress := func(format string, args ...any) {
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, "[chaos seed=%d %5.1fs] %s\n", cfg.Seed, time.Since(began).Seconds(), fmt.Sprintf(format, args...))
		}
	}

	var pc driver
	if cfg.Docker != nil {
		dc, err := newDockerCluster(cfg.Docker, cfg.MaxStaleness)
		if err != nil {
			return nil, err
		}
		pc = dc
		cfg.Nodes = len(dc.nodes)
		rep.Nodes = cfg.Nodes
	} else {
		procs, err := newProcCluster(cfg.Binary, cfg.Dir, cfg.Nodes, []string{
			"-enable-fault-injection", "-max-staleness", cfg.MaxStaleness.String(),
			"-raft-heartbeat-timeout", "500ms", "-raft-election-timeout", "500ms", "-raft-leader-lease-timeout", "250ms",
			"-apply-timeout", "3s", "-log-level", "info", "-auth", "none",
		})
		if err != nil {
			return nil, err
		}
		pc = procs
	}
	defer pc.stopAll()
	for _, n := range pc.members() {
		if err := pc.start(n); err != nil {
			return nil, err
		}
	}
	if err := waitConverged(ctx, pc, 60*time.Second); err != nil {
		return nil, fmt.Errorf("cluster did not form: %w (logs in %s)", err, cfg.Dir)
	}
	progress("cluster of %d formed", cfg.Nodes)

	hist := NewHistory()
	w := newWorkload(pc.members(), hist, cfg.Seed)
	if err := w.setup(ctx, 4, 6); err != nil {
		return nil, fmt.Errorf("workload setup: %w", err)
	}

	wctx, stopWork := context.WithCancel(ctx)
	wg := w.run(wctx, cfg.Clients, cfg.Seed)
	stopProgress := make(chan struct{})
	var progressDone sync.WaitGroup
	progressDone.Add(1)
	go func() {
		defer progressDone.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stopProgress:
				return
			case <-t.C:
				p := w.phase.Load()
				progress("phase=%s ok=%d errors=%d", phaseNames[p], w.okCount[p].Load(), w.errCount[p].Load())
			}
		}
	}()

	phaseStart := time.Now()
	endPhase := func(p int) {
		w.phaseDur[p].Store(int64(time.Since(phaseStart)))
		phaseStart = time.Now()
		if p+1 < phaseCount {
			w.phase.Store(int32(p + 1))
		}
	}
	sleep(ctx, cfg.Warmup)
	endPhase(phaseBefore)

	// The fault schedule.
	inj := &injector{c: pc, hist: hist, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed+1))}
	faultsEnd := time.Now().Add(cfg.Faults)
	for time.Now().Before(faultsEnd) && ctx.Err() == nil {
		kind := cfg.FaultKinds[inj.rng.IntN(len(cfg.FaultKinds))]
		d := time.Duration(2000+inj.rng.IntN(4000)) * time.Millisecond
		fw := FaultWindow{Kind: kind, Start: hist.Now()}
		heal, detail, err := inj.apply(ctx, kind, d)
		fw.Detail = detail
		if err != nil {
			fw.Error = err.Error()
			progress("fault %s failed: %v", kind, err)
		} else {
			progress("fault %s: %s for %s", kind, detail, d)
			sleep(ctx, d)
		}
		if heal != nil {
			heal()
		}
		fw.End = hist.Now()
		rep.Faults = append(rep.Faults, fw)
		sleep(ctx, time.Duration(500+inj.rng.IntN(1500))*time.Millisecond)
	}

	// Heal everything and wait for the cluster to converge.
	for _, n := range pc.members() {
		pc.resume(n)
		if !pc.running(n) {
			_ = pc.start(n)
		}
	}
	for _, n := range pc.members() {
		_ = n.fault(ctx, "DELETE", "", nil)
	}
	healStart := time.Now()
	leaderErr := waitLeader(ctx, pc, 30*time.Second)
	if leaderErr == nil {
		progress("healed: one leader after %s", time.Since(healStart).Round(time.Millisecond))
		// The after-phase is measured once every node serves again
		// (restarted nodes caught up, none past its staleness bound).
		if err := waitServing(ctx, pc, 30*time.Second); err != nil {
			leaderErr = err
		}
	}
	endPhase(phaseFaults)
	sleep(ctx, cfg.Cooldown)
	endPhase(phaseAfter)
	stopWork()
	wg.Wait()
	close(stopProgress)
	progressDone.Wait()

	// With traffic stopped, every node must reach the same applied index
	// and state; from then on nothing that was in flight can still apply.
	convErr := waitConverged(ctx, pc, 60*time.Second)
	healedAt := hist.Now()

	// Judge.
	var violations []Violation
	setCheck := func(name string, vs []Violation) {
		if len(vs) == 0 {
			rep.Checks[name] = "pass"
			return
		}
		rep.Checks[name] = fmt.Sprintf("FAIL (%d)", len(vs))
		violations = append(violations, vs...)
	}
	if leaderErr != nil {
		setCheck("leader after healing", []Violation{{"leader after healing", leaderErr.Error()}})
	} else {
		setCheck("leader after healing", nil)
	}
	if convErr != nil {
		setCheck("convergence", []Violation{{"convergence", convErr.Error()}})
	} else {
		setCheck("convergence", nil)
		// Everything has settled, so reads anywhere are now linearizable:
		// the final state of every key on every node joins the history.
		setCheck("no acknowledged write lost", w.finalReads(ctx))
		setCheck("MACs verify on every node", w.crossVerify(ctx))
	}
	ops := hist.KeyOperations(healedAt)
	res, info := CheckLinearizability(ops, 2*time.Minute)
	switch res {
	case porcupine.Ok:
		setCheck(CheckLinearizable, nil)
	case porcupine.Illegal:
		setCheck(CheckLinearizable, []Violation{{CheckLinearizable, "the key-state history is not linearizable (see the HTML report)"}})
	default:
		rep.Checks[CheckLinearizable] = "unknown (checker timed out)"
	}
	setCheck(CheckMacIdentical, CheckMacsIdentical(hist.Macs()))
	setCheck(CheckWrongMac, CheckNoWrongMacAccepted(hist.Verifications()))
	setCheck(CheckStaleness, CheckBoundedStaleness(ops, hist.Macs(), cfg.MaxStaleness, 2*time.Second))

	rates := w.rates()
	rep.Rates, rep.SuccessRate, rep.Errors = map[string]float64{}, map[string]float64{}, map[string]map[string]int64{}
	for p := 0; p < phaseCount; p++ {
		rep.Errors[phaseNames[p]] = w.errorKinds(p)
		rep.Rates[phaseNames[p]] = round2(rates[p])
		rep.SuccessRate[phaseNames[p]] = round2(w.successRatio(p))
	}
	// Liveness: the success rate (the share of calls that succeed) is back
	// to its pre-fault level once the cluster is healthy again, and the
	// cluster is not wedged (throughput is not a fraction of what it was;
	// a loose floor, as the runner shares the machine with the cluster).
	var live []Violation
	if rates[phaseBefore] < cfg.MinRate {
		live = append(live, Violation{"liveness", fmt.Sprintf("only %.1f successful calls/s before faults (minimum %.0f): the run proves nothing", rates[phaseBefore], cfg.MinRate)})
	}
	if before, after := w.successRatio(phaseBefore), w.successRatio(phaseAfter); after < before-0.02 {
		live = append(live, Violation{"liveness", fmt.Sprintf("success rate %.3f after healing vs %.3f before", after, before)})
	}
	if rates[phaseAfter] < 0.25*rates[phaseBefore] {
		live = append(live, Violation{"liveness", fmt.Sprintf("%.1f successful calls/s after healing vs %.1f before", rates[phaseAfter], rates[phaseBefore])})
	}
	setCheck("liveness", live)

	for p := 0; p < phaseCount; p++ {
		rep.Operations += w.okCount[p].Load() + w.errCount[p].Load()
	}
	rep.KeyWrites = len(ops)
	rep.Macs = len(hist.Macs())
	rep.Violations = violations
	rep.Passed = len(violations) == 0 && res != porcupine.Illegal
	rep.Elapsed = time.Since(began).Round(time.Millisecond).String()

	if !rep.Passed {
		rep.HTML = filepath.Join(cfg.Dir, "report.html")
		info.AddAnnotations(faultAnnotations(rep.Faults))
		if err := porcupine.VisualizePath(KeyModel(), info, rep.HTML); err != nil {
			rep.HTML = ""
		}
	}
	data, _ := json.MarshalIndent(rep, "", "  ")
	_ = os.WriteFile(filepath.Join(cfg.Dir, "report.json"), data, 0o600)
	pc.stopAll()
	if rep.Passed && !cfg.Keep {
		os.RemoveAll(cfg.Dir)
		rep.Dir = ""
	}
	return rep, nil
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func faultAnnotations(fs []FaultWindow) []porcupine.Annotation {
	var out []porcupine.Annotation
	for _, f := range fs {
		out = append(out, porcupine.Annotation{Tag: "faults", Start: f.Start, End: f.End, Description: f.Kind, Details: f.Detail, BackgroundColor: "#f4cccc"})
	}
	return out
}

// waitLeader waits until every node names the same leader.
func waitLeader(ctx context.Context, pc driver, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) && ctx.Err() == nil {
		var leader string
		ok := true
		for _, n := range pc.members() {
			st, err := n.status(ctx)
			if err != nil || st.LeaderID == "" || (leader != "" && st.LeaderID != leader) {
				ok = false
				last = fmt.Sprintf("%s: leader %q (%v)", n.id, func() string {
					if st == nil {
						return ""
					}
					return st.LeaderID
				}(), err)
				break
			}
			leader = st.LeaderID
		}
		if ok {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("no agreed leader within %s: %s", timeout, last)
}

// waitServing waits until no node reports itself stale.
func waitServing(ctx context.Context, pc driver, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) && ctx.Err() == nil {
		ok := true
		for _, n := range pc.members() {
			st, err := n.status(ctx)
			if err != nil || st.Extra["stale"] == true {
				ok, last = false, fmt.Sprintf("%s still stale or unreachable (%v)", n.id, err)
				break
			}
		}
		if ok {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("nodes not serving within %s of healing: %s", timeout, last)
}

// waitConverged waits for one agreed leader and identical applied index and
// state digest on every node.
func waitConverged(ctx context.Context, pc driver, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) && ctx.Err() == nil {
		ok := true
		var leader, digest any
		var applied uint64
		for i, n := range pc.members() {
			st, err := n.status(ctx)
			if err != nil || st.LeaderID == "" {
				ok, last = false, fmt.Sprintf("%s: no leader (%v)", n.id, err)
				break
			}
			if i == 0 {
				leader, digest, applied = st.LeaderID, st.Extra["state_digest"], st.AppliedIndex
			} else if st.LeaderID != leader || st.Extra["state_digest"] != digest || st.AppliedIndex != applied {
				ok, last = false, fmt.Sprintf("%s: leader %s applied %d vs %v/%d", n.id, st.LeaderID, st.AppliedIndex, leader, applied)
				break
			}
		}
		if ok {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("no convergence within %s: %s", timeout, last)
}

// finalReads records every state key's final state on every node as a
// linearizable read, and checks that every acknowledged CreateKey exists
// on every node.
func (w *workload) finalReads(ctx context.Context) []Violation {
	var out []Violation
	for i, c := range w.clients {
		for _, key := range w.stateKeys {
			call := w.hist.Now()
			d, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(key)})
			if err != nil {
				out = append(out, Violation{"no acknowledged write lost", fmt.Sprintf("DescribeKey %s on %s: %v", key, w.nodes[i].id, err)})
				continue
			}
			w.hist.KeyCall(1000+i, KeyInput{Key: key, Op: OpDescribe}, call, w.hist.Now(), KeyOutput{State: string(d.KeyMetadata.KeyState)}, w.nodes[i].id)
		}
		w.mu.Lock()
		created := append([]string(nil), w.created...)
		aliases := append([]string(nil), w.aliases...)
		grants := make(map[string]string, len(w.grants))
		for id, key := range w.grants {
			grants[id] = key
		}
		w.mu.Unlock()
		for _, key := range created {
			if _, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(key)}); err != nil {
				out = append(out, Violation{"no acknowledged write lost", fmt.Sprintf("acknowledged CreateKey %s missing on %s: %v", key, w.nodes[i].id, err)})
			}
		}
		for _, a := range aliases {
			if _, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(a)}); err != nil {
				out = append(out, Violation{"no acknowledged write lost", fmt.Sprintf("acknowledged CreateAlias %s missing on %s: %v", a, w.nodes[i].id, err)})
			}
		}
		for id, key := range grants {
			lg, err := c.ListGrants(ctx, &kms.ListGrantsInput{KeyId: aws.String(key), GrantId: aws.String(id)})
			if err != nil || len(lg.Grants) != 1 {
				out = append(out, Violation{"no acknowledged write lost", fmt.Sprintf("acknowledged CreateGrant %s on key %s missing on %s: %v", id, key, w.nodes[i].id, err)})
			}
		}
	}
	return out
}

// crossVerify checks that MACs produced anywhere verify on every node.
func (w *workload) crossVerify(ctx context.Context) []Violation {
	w.mu.Lock()
	var sample []MacRecord
	keys := make([]string, 0, len(w.macs))
	for k := range w.macs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		recs := w.macs[k]
		if len(recs) > 8 {
			recs = recs[:8]
		}
		sample = append(sample, recs...)
	}
	w.mu.Unlock()
	var out []Violation
	for _, m := range sample {
		for i, c := range w.clients {
			_, err := c.VerifyMac(ctx, &kms.VerifyMacInput{KeyId: aws.String(m.Key), MacAlgorithm: types.MacAlgorithmSpec(m.Algorithm), Message: []byte(m.Message), Mac: m.Mac})
			if err != nil {
				out = append(out, Violation{"MACs verify on every node", fmt.Sprintf("MAC from %s for key %s does not verify on %s: %v", m.Node, m.Key, w.nodes[i].id, err)})
			}
		}
	}
	return out
}

// Summary renders a report for people.
func (r *Report) Summary() string {
	var b strings.Builder
	verdict := "PASSED"
	if !r.Passed {
		verdict = "FAILED"
	}
	fmt.Fprintf(&b, "keyraft chaos run seed=%d nodes=%d: %s in %s\n", r.Seed, r.Nodes, verdict, r.Elapsed)
	fmt.Fprintf(&b, "  operations %d (key-state writes %d, MACs %d)\n", r.Operations, r.KeyWrites, r.Macs)
	fmt.Fprintf(&b, "  successful calls/s  before %.1f  during %.1f  after %.1f\n", r.Rates["before"], r.Rates["during"], r.Rates["after"])
	fmt.Fprintf(&b, "  success ratio       before %.2f  during %.2f  after %.2f\n", r.SuccessRate["before"], r.SuccessRate["during"], r.SuccessRate["after"])
	for _, p := range phaseNames {
		if len(r.Errors[p]) > 0 {
			fmt.Fprintf(&b, "  errors %-6s %v\n", p, r.Errors[p])
		}
	}
	fmt.Fprintf(&b, "  faults (%d):\n", len(r.Faults))
	for _, f := range r.Faults {
		e := ""
		if f.Error != "" {
			e = " [injection failed: " + f.Error + "]"
		}
		fmt.Fprintf(&b, "    %6.1fs-%6.1fs %-18s %s%s\n", float64(f.Start)/1e9, float64(f.End)/1e9, f.Kind, f.Detail, e)
	}
	names := make([]string, 0, len(r.Checks))
	for n := range r.Checks {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, "  check %-40s %s\n", n, r.Checks[n])
	}
	for _, v := range r.Violations {
		fmt.Fprintf(&b, "  VIOLATION %s: %s\n", v.Check, v.Detail)
	}
	if r.HTML != "" {
		fmt.Fprintf(&b, "  HTML report: %s\n", r.HTML)
	}
	if r.Dir != "" {
		fmt.Fprintf(&b, "  data dirs and node logs: %s\n", r.Dir)
	}
	return b.String()
}
