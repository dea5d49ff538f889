package chaos

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestOverlapsAny(t *testing.T) {
	parse := func(s string) *net.IPNet {
		_, n, err := net.ParseCIDR(s)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	taken := []*net.IPNet{parse("172.17.0.0/16"), parse("10.201.7.0/24"), parse("192.168.0.0/20")}
	for _, tc := range []struct {
		cidr string
		want bool
	}{
		{"172.17.4.0/24", true},   // inside a taken /16
		{"10.201.7.0/24", true},   // the same network
		{"10.201.8.0/24", false},  // its neighbour
		{"10.0.0.0/8", true},      // contains a taken network
		{"192.168.15.0/24", true}, // last /24 of the /20
		{"192.168.16.0/24", false},
	} {
		if got := overlapsAny(parse(tc.cidr), taken); got != tc.want {
			t.Errorf("overlapsAny(%s) = %v, want %v", tc.cidr, got, tc.want)
		}
	}
}

// TestFreeNetPrefixAvoidsEngineNetworks occupies part of the range that
// FreeNetPrefix draws from with a real Docker network and checks that it is
// never handed out.
func TestFreeNetPrefixAvoidsEngineNetworks(t *testing.T) {
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("docker not installed")
	}
	if out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("docker is installed but the engine does not answer: %s", out)
		}
		t.Skip("no Docker engine")
	}
	// 10.200.0.0/14 is half of the range; take it unless something else has.
	name := fmt.Sprintf("keyraftsubnettest%d", rand.IntN(1_000_000))
	if out, err := docker("network", "create", "--subnet", "10.200.0.0/14", name); err != nil {
		if strings.Contains(out, "overlaps") {
			t.Skipf("10.200.0.0/14 is already in use on this engine: %s", out)
		}
		t.Fatalf("docker network create: %v: %s", err, out)
	}
	t.Cleanup(func() { _, _ = docker("network", "rm", name) })
	_, occupied, _ := net.ParseCIDR("10.200.0.0/14")
	for range 50 {
		prefix, err := FreeNetPrefix()
		if err != nil {
			t.Fatal(err)
		}
		if occupied.Contains(net.ParseIP(prefix + ".1")) {
			t.Fatalf("FreeNetPrefix returned %s inside the engine's network %s", prefix, occupied)
		}
	}
}
