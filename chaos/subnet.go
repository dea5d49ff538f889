package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os/exec"
	"strings"
	"time"
)

// FreeNetPrefix returns a /24 network prefix such as "10.231.17" for a
// Compose project's private network, chosen at random from 10.200.0.0/13 and
// overlapping neither a network the Docker engine already has nor an address
// of this host. It lowers the odds of a collision; ComposeUp still retries,
// because another project (a parallel CI job on a shared engine) may take the
// same range between the check and the creation.
func FreeNetPrefix() (string, error) {
	taken, err := takenSubnets()
	if err != nil {
		return "", err
	}
	for range 200 {
		prefix := fmt.Sprintf("10.%d.%d", 200+rand.IntN(8), rand.IntN(256))
		_, candidate, _ := net.ParseCIDR(prefix + ".0/24")
		if !overlapsAny(candidate, taken) {
			return prefix, nil
		}
	}
	return "", errors.New("no free /24 left in 10.200.0.0/13")
}

func overlapsAny(n *net.IPNet, taken []*net.IPNet) bool {
	for _, t := range taken {
		if t.Contains(n.IP) || n.Contains(t.IP) {
			return true
		}
	}
	return false
}

// takenSubnets lists the subnets of every Docker network and of this host's
// interfaces.
func takenSubnets() ([]*net.IPNet, error) {
	var taken []*net.IPNet
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
				taken = append(taken, n)
			}
		}
	}
	ids, err := docker("network", "ls", "-q")
	if err != nil {
		return nil, fmt.Errorf("docker network ls: %v: %s", err, ids)
	}
	if ids == "" {
		return taken, nil
	}
	args := append([]string{"network", "inspect", "--format", "{{range .IPAM.Config}}{{.Subnet}} {{end}}"}, strings.Fields(ids)...)
	out, err := docker(args...)
	if err != nil {
		// A network removed between ls and inspect: try once more.
		if out, err = docker(args...); err != nil {
			return nil, fmt.Errorf("docker network inspect: %v: %s", err, out)
		}
	}
	for _, f := range strings.Fields(out) {
		if _, n, err := net.ParseCIDR(f); err == nil && n.IP.To4() != nil {
			taken = append(taken, n)
		}
	}
	return taken, nil
}

// ComposeUp runs `docker-compose -p project -f file up -d` on a private
// network whose prefix it picks with FreeNetPrefix (passed to the file as
// KEYRAFT_NET_PREFIX), and picks again when the engine still reports an
// address-pool overlap. It returns the prefix in use.
func ComposeUp(file, project string, env []string) (string, error) {
	var lastErr error
	for range 5 {
		prefix, err := FreeNetPrefix()
		if err != nil {
			return "", err
		}
		withPrefix := append(append([]string(nil), env...), "KEYRAFT_NET_PREFIX="+prefix)
		out, err := Compose(file, project, withPrefix, "up", "-d")
		if err == nil {
			return prefix, nil
		}
		lastErr = fmt.Errorf("compose up: %v: %s", err, out)
		if !strings.Contains(out, "overlaps") {
			return "", lastErr
		}
		_, _ = Compose(file, project, withPrefix, "down", "-v", "--remove-orphans", "-t", "5")
	}
	return "", lastErr
}

// Compose runs docker-compose on one project with env added to this
// process's environment, bounded by three minutes, and returns its
// combined output.
func Compose(file, project string, env []string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker-compose", append([]string{"-p", project, "-f", file}, args...)...)
	cmd.Env = append(cmd.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
