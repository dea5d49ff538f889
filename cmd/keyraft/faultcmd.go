package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// runFault drives a node's fault-injection admin API (/v1/faults, served
// when the node runs with -enable-fault-injection, as `keyraft dev` nodes
// do).
func runFault(args []string) int {
	usage := func() {
		fmt.Fprint(os.Stderr, `Usage: keyraft fault <action> -addr URL [flags]

Injects faults into one node (it must run with -enable-fault-injection; keyraft dev does).
Faults are decided by that node about its peers, by node id:

    partition    -to n2,n3 [-direction both|inbound|outbound] [-for 30s]
                 cut traffic between this node and the peers (Raft, forwarding and gossip);
                 outbound: this node cannot send to them, inbound: it does not hear them
    latency      -to n2 -latency 200ms [-jitter 50ms] [-for 30s]
    pause-apply  -for 5s        stop applying the Raft log for a while (apply lag)
    list                        show the faults in force
    clear                       heal everything on this node

Example: isolate n1 from n2 and n3 in both directions, symmetric on both sides:
    keyraft fault partition -addr http://127.0.0.1:8081 -from n1 -to n2,n3
    keyraft fault partition -addr http://127.0.0.1:8082 -to n1
    keyraft fault partition -addr http://127.0.0.1:8083 -to n1
`)
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
		usage()
		return 2
	}
	action, rest := args[0], args[1:]
	fs := flag.NewFlagSet("fault "+action, flag.ContinueOnError)
	addr := fs.String("addr", "http://127.0.0.1:8081", "URL of the node to inject into (also KEYRAFT_ADDR)")
	fs.String("from", "", "the node at -addr (informational; faults always apply to the node at -addr)")
	to := fs.String("to", "", "peer node ids, comma-separated, or * for all")
	direction := fs.String("direction", "both", "both, inbound or outbound")
	dur := fs.Duration("for", 0, "heal by itself after this long (0: until cleared)")
	latency := fs.Duration("latency", 0, "added latency per write/packet")
	jitter := fs.Duration("jitter", 0, "random extra latency, up to this much")
	fs.Usage = usage
	if err := loadFlags(fs, rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "keyraft fault:", err)
		return 2
	}
	base := strings.TrimRight(*addr, "/")
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	peers := func() []string {
		var out []string
		for _, p := range strings.Split(*to, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
		return out
	}
	body := map[string]any{}
	if *dur > 0 {
		body["for"] = dur.String()
	}
	var method, path string
	switch action {
	case "partition":
		method, path = http.MethodPost, "/partition"
		body["peers"], body["direction"] = peers(), *direction
	case "latency":
		method, path = http.MethodPost, "/latency"
		body["peers"], body["latency"], body["jitter"] = peers(), latency.String(), jitter.String()
	case "pause-apply":
		method, path = http.MethodPost, "/pause-apply"
	case "list":
		method, path, body = http.MethodGet, "", nil
	case "clear":
		method, path, body = http.MethodDelete, "", nil
	default:
		fmt.Fprintf(os.Stderr, "keyraft fault: unknown action %q\n\n", action)
		usage()
		return 2
	}
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, base+"/v1/faults"+path, rd)
	if err != nil {
		fmt.Fprintln(os.Stderr, "keyraft fault:", err)
		return 2
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, "keyraft fault:", err)
		return 1
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		fmt.Fprintf(os.Stderr, "keyraft fault: %s: %s\n", resp.Status, bytes.TrimSpace(out))
		return 1
	}
	os.Stdout.Write(out)
	if len(out) > 0 && out[len(out)-1] != '\n' {
		fmt.Println()
	}
	return 0
}
