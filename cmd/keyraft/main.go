// Command keyraft is an AWS KMS-compatible HMAC key service replicated with
// Raft. Subcommands follow the HashiCorp style: `keyraft agent` runs one
// node, `keyraft dev` a local multi-node cluster, `keyraft status` prints a
// node's view of the cluster, `keyraft keygen` creates a seal key.
package main

import (
	"fmt"
	"os"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

type command struct {
	name     string
	synopsis string
	run      func(args []string) int
}

func commands() []command {
	return []command{
		{"agent", "Run one keyraft node", runAgent},
		{"dev", "Start a local multi-node cluster on loopback", runDev},
		{"status", "Show a node's view of the cluster", runStatus},
		{"fault", "Inject faults into a node (partitions, latency, apply lag)", runFault},
		{"chaos", "Run robustness campaigns: faults, workload, history checks", runChaos},
		{"keygen", "Print a new random seal key (base64)", runKeygen},
		{"version", "Print the keyraft version", func([]string) int { fmt.Println("keyraft", version); return 0 }},
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "Usage: keyraft <command> [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(os.Stderr, "    %-10s %s\n", c.name, c.synopsis)
	}
	fmt.Fprintln(os.Stderr, "\nRun `keyraft <command> -h` for a command's flags.")
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(1)
	}
	name := os.Args[1]
	if name == "-h" || name == "-help" || name == "--help" || name == "help" {
		usage()
		os.Exit(0)
	}
	if name == "-v" || name == "-version" || name == "--version" {
		name = "version"
	}
	for _, c := range commands() {
		if c.name == name {
			os.Exit(c.run(os.Args[2:]))
		}
	}
	fmt.Fprintf(os.Stderr, "keyraft: unknown command %q\n\n", name)
	usage()
	os.Exit(1)
}
