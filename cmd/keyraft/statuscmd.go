package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// nodeStatus is the part of GET /v1/status that `keyraft status` and
// `keyraft dev` read.
type nodeStatus struct {
	NodeID       string         `json:"node_id"`
	State        string         `json:"state"`
	LeaderID     string         `json:"leader_id"`
	LeaderAddr   string         `json:"leader_addr"`
	Term         uint64         `json:"term"`
	CommitIndex  uint64         `json:"commit_index"`
	AppliedIndex uint64         `json:"applied_index"`
	LastContact  *float64       `json:"last_contact"`
	Members      []memberStatus `json:"members"`
	Extra        map[string]any `json:"extra"`
	Faults       *struct {
		Rules []map[string]any `json:"rules"`
	} `json:"faults"`
}

type memberStatus struct {
	ID           string `json:"id"`
	RaftAddr     string `json:"raft_addr"`
	APIAddr      string `json:"api_addr"`
	GossipAddr   string `json:"gossip_addr"`
	GossipStatus string `json:"gossip_status"`
	Voter        bool   `json:"voter"`
	InRaftConfig bool   `json:"in_raft_config"`
}

func fetchStatus(client *http.Client, base string) (*nodeStatus, []byte, error) {
	resp, err := client.Get(strings.TrimRight(base, "/") + "/v1/status")
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, body, fmt.Errorf("GET /v1/status: %s", resp.Status)
	}
	var st nodeStatus
	if err := json.Unmarshal(body, &st); err != nil {
		return nil, body, fmt.Errorf("GET /v1/status: %w", err)
	}
	return &st, body, nil
}

func runStatus(args []string) int {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	addr := fs.String("addr", "http://127.0.0.1:8081", "URL of a node's API (also KEYRAFT_ADDR)")
	format := fs.String("format", "text", "text or json")
	check := fs.Bool("check", false, "health check: print nothing, exit 0 only if the node knows a leader and is not stale")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: keyraft status [-addr URL] [-format text|json] [-check]\n\nPrints one node's view of the cluster.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := loadFlags(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "keyraft status:", err)
		return 2
	}
	base := *addr
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	st, raw, err := fetchStatus(&http.Client{Timeout: 5 * time.Second}, base)
	if err != nil {
		fmt.Fprintln(os.Stderr, "keyraft status:", err)
		return 1
	}
	if *check {
		if st.LeaderID == "" {
			fmt.Fprintln(os.Stderr, "keyraft status: no leader known")
			return 1
		}
		if st.Extra["stale"] == true {
			fmt.Fprintln(os.Stderr, "keyraft status: stale:", st.Extra["stale_reason"])
			return 1
		}
		return 0
	}
	if *format == "json" {
		os.Stdout.Write(raw)
		fmt.Println()
		return 0
	}
	printStatus(os.Stdout, st)
	return 0
}

func printStatus(w io.Writer, st *nodeStatus) {
	contact := "never"
	if st.LastContact != nil && *st.LastContact >= 0 {
		contact = fmt.Sprintf("%.3fs ago", *st.LastContact)
	}
	if st.State == "Leader" {
		contact = "this node is the leader"
	}
	fmt.Fprintf(w, "Node:          %s (%s)\n", st.NodeID, st.State)
	fmt.Fprintf(w, "Leader:        %s %s\n", orNone(st.LeaderID), st.LeaderAddr)
	fmt.Fprintf(w, "Term:          %d\n", st.Term)
	fmt.Fprintf(w, "Commit index:  %d\n", st.CommitIndex)
	fmt.Fprintf(w, "Applied index: %d\n", st.AppliedIndex)
	fmt.Fprintf(w, "Last contact:  %s\n", contact)
	keys := make([]string, 0, len(st.Extra))
	for k := range st.Extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "%-14s %v\n", k+":", st.Extra[k])
	}
	if st.Faults != nil && len(st.Faults.Rules) > 0 {
		fmt.Fprintf(w, "Faults:        %d in force (keyraft fault list -addr ...)\n", len(st.Faults.Rules))
		for _, r := range st.Faults.Rules {
			fmt.Fprintf(w, "               %v %v %v\n", r["kind"], r["peers"], r["direction"])
		}
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tAPI\tRAFT\tGOSSIP\tSTATUS\tVOTER")
	for _, m := range st.Members {
		role := "no"
		if m.Voter {
			role = "yes"
		}
		if m.ID == st.LeaderID {
			role += " (leader)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", m.ID, m.APIAddr, m.RaftAddr, m.GossipAddr, m.GossipStatus, role)
	}
	tw.Flush()
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
