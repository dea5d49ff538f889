package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/keyraft/keyraft/auth"
	"github.com/keyraft/keyraft/engine"
)

// devNode is one agent process started by `keyraft dev`.
type devNode struct {
	id                 string
	dir                string
	httpAddr, raftAddr string
	gossipAddr         string
	args               []string
	cmd                *exec.Cmd
	exited             chan struct{}
}

func runDev(args []string) int {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	nodes := fs.Int("nodes", 3, "number of nodes (1-9)")
	dataDir := fs.String("data-dir", "", "directory for the nodes' data (default: a fresh temporary directory, removed on exit)")
	basePort := fs.Int("base-port", 8081, "API port of the first node; node i uses API base+i-1, Raft base+100+i-1, gossip base+200+i-1")
	logLevel := fs.String("log-level", "info", "log level of the nodes (their logs go to <data-dir>/<node>/keyraft.log)")
	region := fs.String("region", "us-east-1", "region of requests without a SigV4 credential scope (-auth none)")
	account := fs.String("account-id", "111122223333", "default account: the account of requests whose access key is not in -credentials (-auth none)")
	deletionDay := fs.Duration("test-deletion-day", 24*time.Hour, "TEST ONLY: how long one day of a key's pending-deletion window lasts")
	maxStaleness := fs.Duration("max-staleness", 10*time.Second, "each node's staleness bound (see keyraft agent -h); 0 turns it off")
	authMode := fs.String("auth", "none", "authentication: none (accept every request) or sigv4 (verify signatures against -credentials)")
	credentialsFile := fs.String("credentials", "", "JSON file of principals (required with -auth sigv4; with -auth none, requests signed with a listed access key act as that principal)")
	quotas := fs.String("quotas", "off", "request-rate quotas: off or aws (AWS's default rates, enforced per node)")
	quotaOverrides := fs.String("quota-overrides", "", "quota rates per class, e.g. CreateKey=10,cryptographic=100")
	grantDelay := fs.Duration("grant-propagation-delay", defaultDevGrantDelay, "every node's grant propagation delay: for this long after a grant is created a node acts as if it had not heard of it (grant tokens bridge the gap), and for this long after it is retired still honours it (docs/consistency.md)")
	grantDelays := fs.String("grant-propagation-delays", "", "per-node overrides of -grant-propagation-delay, to model uneven propagation, e.g. n1=0s,n2=5s")
	grantRetention := fs.Duration("grant-tombstone-retention", time.Hour, "how long the tombstones of retired and revoked grants are kept; must exceed every node's grant propagation delay")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: keyraft dev [-nodes N] [-data-dir DIR] [-base-port P] [-auth none|sigv4 -credentials FILE] [-quotas off|aws]\n                   [-grant-propagation-delay D] [-grant-propagation-delays n1=D,...]\n\nStarts a local cluster of N keyraft nodes as separate processes on loopback and waits\nuntil it has a leader. Ctrl-C stops every node.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := loadFlags(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "keyraft dev:", err)
		return 2
	}
	if *nodes < 1 || *nodes > 9 {
		fmt.Fprintln(os.Stderr, "keyraft dev: -nodes must be between 1 and 9")
		return 2
	}
	if *basePort < 1 || *basePort+200+*nodes > 65535 {
		fmt.Fprintln(os.Stderr, "keyraft dev: -base-port out of range")
		return 2
	}
	delays, err := grantDelaysOf(*nodes, *grantDelay, *grantDelays, *grantRetention)
	if err != nil {
		fmt.Fprintln(os.Stderr, "keyraft dev:", err)
		return 2
	}
	af := agentFlags{authMode: *authMode, credentialsFile: *credentialsFile, quotas: *quotas, quotaOverrides: *quotaOverrides}
	mode, creds, _, err := af.authSettings()
	if err != nil {
		fmt.Fprintln(os.Stderr, "keyraft dev:", err)
		return 2
	}
	credsPath := ""
	if *credentialsFile != "" {
		if credsPath, err = filepath.Abs(*credentialsFile); err != nil {
			fmt.Fprintln(os.Stderr, "keyraft dev:", err)
			return 2
		}
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "keyraft dev: cannot find own binary:", err)
		return 1
	}

	temporary := *dataDir == ""
	dir := *dataDir
	if temporary {
		if dir, err = os.MkdirTemp("", "keyraft-dev-"); err != nil {
			fmt.Fprintln(os.Stderr, "keyraft dev:", err)
			return 1
		}
		defer os.RemoveAll(dir)
	}
	if dir, err = filepath.Abs(dir); err != nil {
		fmt.Fprintln(os.Stderr, "keyraft dev:", err)
		return 1
	}
	sealKeyFile := filepath.Join(dir, "seal.key")
	if err := ensureSealKey(sealKeyFile); err != nil {
		fmt.Fprintln(os.Stderr, "keyraft dev:", err)
		return 1
	}

	cluster := make([]*devNode, *nodes)
	var seeds []string
	for i := range cluster {
		n := &devNode{
			id:         "n" + strconv.Itoa(i+1),
			httpAddr:   net.JoinHostPort("127.0.0.1", strconv.Itoa(*basePort+i)),
			raftAddr:   net.JoinHostPort("127.0.0.1", strconv.Itoa(*basePort+100+i)),
			gossipAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(*basePort+200+i)),
		}
		n.dir = filepath.Join(dir, n.id)
		cluster[i] = n
		seeds = append(seeds, n.gossipAddr)
	}
	for i, n := range cluster {
		for _, addr := range []string{n.httpAddr, n.raftAddr, n.gossipAddr} {
			if err := checkPortFree(addr); err != nil {
				fmt.Fprintf(os.Stderr, "keyraft dev: %s: %v (another keyraft dev running? pick another -base-port)\n", addr, err)
				return 1
			}
		}
		n.args = []string{"agent",
			"-node-id", n.id, "-data-dir", n.dir,
			"-http-addr", n.httpAddr, "-raft-addr", n.raftAddr, "-gossip-addr", n.gossipAddr,
			"-join", strings.Join(seeds, ","), "-bootstrap-expect", strconv.Itoa(*nodes),
			"-seal-key-file", sealKeyFile, "-region", *region, "-account-id", *account,
			"-log-level", *logLevel, "-test-deletion-day", deletionDay.String(),
			"-max-staleness", maxStaleness.String(),
			"-auth", mode, "-quotas", *quotas,
			"-grant-propagation-delay", delays[i].String(), "-grant-tombstone-retention", grantRetention.String(),
			// A dev cluster stopped with Ctrl-C keeps its membership, so the
			// same -data-dir starts the same cluster again.
			"-leave-on-terminate=false",
			// Local clusters are for testing: partition and slow them at will
			// (keyraft fault, /v1/faults).
			"-enable-fault-injection",
		}
		if credsPath != "" {
			n.args = append(n.args, "-credentials", credsPath)
		}
		if *quotaOverrides != "" {
			n.args = append(n.args, "-quota-overrides", *quotaOverrides)
		}
	}

	fmt.Printf("==> Starting a %d-node keyraft cluster\n    data dir: %s", *nodes, dir)
	if temporary {
		fmt.Print(" (temporary: removed on exit; pass -data-dir to keep it)")
	}
	fmt.Println()
	for _, n := range cluster {
		if err := n.start(self); err != nil {
			fmt.Fprintf(os.Stderr, "keyraft dev: start %s: %v\n", n.id, err)
			stopAll(cluster)
			return 1
		}
	}

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	ready := make(chan error, 1)
	go func() { ready <- waitForLeader(cluster, 60*time.Second) }()
	select {
	case err := <-ready:
		if err != nil {
			fmt.Fprintf(os.Stderr, "keyraft dev: %v\n    node logs: %s/<node>/keyraft.log\n", err, dir)
			stopAll(cluster)
			return 1
		}
	case <-sigs:
		stopAll(cluster)
		return 1
	}
	printDevBanner(cluster, devBanner{region: *region, account: *account, auth: mode, creds: creds,
		credsPath: credsPath, quotas: *quotas, overrides: *quotaOverrides, grantDelays: delays})

	var wg sync.WaitGroup
	for _, n := range cluster {
		wg.Add(1)
		go func(n *devNode) {
			defer wg.Done()
			<-n.exited
			if n.cmd.ProcessState != nil && !n.stopping() {
				fmt.Printf("==> %s exited (%s). Restart it with:\n    %s\n", n.id, n.cmd.ProcessState, n.restartCommand(self))
			}
		}(n)
	}
	<-sigs
	fmt.Println("==> Stopping all nodes")
	stopAll(cluster)
	wg.Wait()
	fmt.Println("==> Stopped")
	return 0
}

var devStopping sync.Map // node id -> true once dev itself stops it

func (n *devNode) stopping() bool { _, ok := devStopping.Load(n.id); return ok }

func (n *devNode) start(self string) error {
	if err := os.MkdirAll(n.dir, 0o700); err != nil {
		return err
	}
	logFile, err := os.OpenFile(filepath.Join(n.dir, "keyraft.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	n.cmd = exec.Command(self, n.args...)
	n.cmd.Stdout, n.cmd.Stderr = logFile, logFile
	// Own process group: Ctrl-C reaches dev only, which stops the nodes in
	// order; Pdeathsig stops them if dev itself is killed.
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := n.cmd.Start(); err != nil {
		logFile.Close()
		return err
	}
	n.exited = make(chan struct{})
	go func() {
		n.cmd.Wait()
		logFile.Close()
		close(n.exited)
	}()
	return nil
}

func (n *devNode) restartCommand(self string) string {
	parts := []string{shellQuote(self)}
	for _, a := range n.args {
		parts = append(parts, shellQuote(a))
	}
	return strings.Join(parts, " ")
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r == '-' || r == '_' || r == '.' || r == '/' || r == ':' || r == ',' || r == '=' ||
			(r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9'))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func stopAll(cluster []*devNode) {
	for _, n := range cluster {
		if n.cmd != nil && n.cmd.Process != nil {
			devStopping.Store(n.id, true)
			n.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	deadline := time.After(15 * time.Second)
	for _, n := range cluster {
		if n.exited == nil {
			continue
		}
		select {
		case <-n.exited:
		case <-deadline:
			n.cmd.Process.Kill()
			<-n.exited
		}
	}
}

func ensureSealKey(path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(engine.NewSealKey()+"\n"), 0o600)
}

func checkPortFree(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	ln.Close()
	return nil
}

// waitForLeader polls every node until all of them name the same leader.
func waitForLeader(cluster []*devNode, timeout time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		leader, agreed := "", true
		for _, n := range cluster {
			select {
			case <-n.exited:
				return fmt.Errorf("node %s exited during start-up (%s)", n.id, n.cmd.ProcessState)
			default:
			}
			st, _, err := fetchStatus(client, "http://"+n.httpAddr)
			// Ready means serving: a leader everyone agrees on, and no node
			// still catching up (a stale node refuses MACs and reads), or
			// without the grant token secret the leader installs after the
			// first election (CreateGrant needs it).
			if err != nil || st.LeaderID == "" || (leader != "" && st.LeaderID != leader) || st.Extra["stale"] == true ||
				st.Extra["grant_tokens"] == false {
				agreed = false
				break
			}
			leader = st.LeaderID
		}
		if agreed {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("no leader after %s", timeout)
}

// devBanner is what the banner says about access.
type devBanner struct {
	region, account string
	auth            string
	creds           *auth.Credentials
	credsPath       string
	quotas          string
	overrides       string
	grantDelays     []time.Duration // per node
}

func printDevBanner(cluster []*devNode, b devBanner) {
	fmt.Println("==> Cluster ready")
	for _, n := range cluster {
		fmt.Printf("    %s  API http://%s   (raft %s, gossip %s, log %s)\n", n.id, n.httpAddr, n.raftAddr, n.gossipAddr, filepath.Join(n.dir, "keyraft.log"))
	}
	first, second := cluster[0].httpAddr, cluster[len(cluster)-1].httpAddr
	quotaLine := "off"
	if strings.EqualFold(b.quotas, "aws") {
		quotaLine = "AWS's default rates, per node"
	}
	if b.overrides != "" {
		quotaLine += " (overrides: " + b.overrides + ")"
	}
	var access, export string
	if b.auth == "sigv4" {
		access = "Authentication: sigv4. Sign requests with a principal of " + b.credsPath + ":\n"
		ps := b.creds.Principals()
		for i, p := range ps {
			if i == 5 {
				access += fmt.Sprintf("        ... and %d more\n", len(ps)-5)
				break
			}
			policy := "administrator of its account"
			if !p.IsAdministrator() {
				policy = "identity policy"
			}
			access += fmt.Sprintf("        %s  %s (%s)\n", p.AccessKeyID, p.ARN, policy)
		}
		p := ps[0]
		for _, q := range ps {
			if q.IsAdministrator() {
				p = q
				break
			}
		}
		export = "export AWS_ACCESS_KEY_ID=" + p.AccessKeyID + " AWS_SECRET_ACCESS_KEY=<its secret_access_key in the credentials file>"
		if p.SessionToken != "" {
			export += " \\\n           AWS_SESSION_TOKEN=<its session_token>"
		}
		export += " AWS_DEFAULT_REGION=" + b.region
	} else {
		access = "Authentication: none. Any request is accepted; it acts as the administrator of account " + b.account + "\n"
		if b.creds.Len() > 0 {
			access += "    unless signed with an access key of " + b.credsPath + " (then it is that principal, with its policies)\n"
		}
		export = "export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=" + b.region
	}
	fmt.Printf(`
    %s    Request quotas: %s
    Grant propagation delay: %s (a new grant works on a node only that long after its creation,
        at once with its grant token; a retired one keeps working that long: docs/consistency.md)

Try it:

    %s
    KEY=$(aws kms create-key --key-spec HMAC_256 --key-usage GENERATE_VERIFY_MAC \
          --endpoint-url http://%s --query KeyMetadata.KeyId --output text)
    MAC=$(aws kms generate-mac --key-id $KEY --mac-algorithm HMAC_SHA_256 \
          --message aGVsbG8= --endpoint-url http://%s --query Mac --output text)
    aws kms verify-mac --key-id $KEY --mac-algorithm HMAC_SHA_256 --message aGVsbG8= \
          --mac $MAC --endpoint-url http://%s

    %s status -addr http://%s

Press Ctrl-C to stop the cluster.
`, access, quotaLine, grantDelayLine(cluster, b.grantDelays), export, first, second, first, os.Args[0], first)
}

// defaultDevGrantDelay is the grant propagation delay of a `keyraft dev`
// node: long enough that a test which uses a grant right after creating
// it, without its grant token, fails as it would against AWS, and short
// enough to wait out.
const defaultDevGrantDelay = 3 * time.Second

// grantDelaysOf returns each node's grant propagation delay: def, or its
// override in spec ("n1=0s,n2=5s"). Every delay must be below retention.
func grantDelaysOf(nodes int, def time.Duration, spec string, retention time.Duration) ([]time.Duration, error) {
	if def < 0 {
		return nil, fmt.Errorf("-grant-propagation-delay: %s is negative", def)
	}
	delays := make([]time.Duration, nodes)
	for i := range delays {
		delays[i] = def
	}
	for _, part := range strings.Split(spec, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		id, val, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("-grant-propagation-delays: %q is not NODE=DURATION (e.g. n2=5s)", part)
		}
		i, err := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(id), "n"))
		if err != nil || !strings.HasPrefix(strings.TrimSpace(id), "n") || i < 1 || i > nodes {
			return nil, fmt.Errorf("-grant-propagation-delays: %q is not a node of this cluster (n1 to n%d)", id, nodes)
		}
		d, err := time.ParseDuration(strings.TrimSpace(val))
		if err != nil || d < 0 {
			return nil, fmt.Errorf("-grant-propagation-delays: %q is not a duration >= 0 (e.g. 5s)", val)
		}
		delays[i-1] = d
	}
	for i, d := range delays {
		if d >= retention {
			return nil, fmt.Errorf("-grant-tombstone-retention (%s) must exceed every node's grant propagation delay (n%d: %s)", retention, i+1, d)
		}
	}
	return delays, nil
}

// grantDelayLine describes the nodes' grant propagation delays.
func grantDelayLine(cluster []*devNode, delays []time.Duration) string {
	same := true
	for _, d := range delays {
		same = same && d == delays[0]
	}
	if same && len(delays) > 0 {
		return delays[0].String() + " on every node"
	}
	parts := make([]string, len(delays))
	for i, d := range delays {
		parts[i] = cluster[i].id + " " + d.String()
	}
	return strings.Join(parts, ", ")
}
