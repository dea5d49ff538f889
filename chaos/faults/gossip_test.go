package faults

import (
	"io"
	"log"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

type gossipNode struct {
	id   string
	addr string
	inj  *Injector
	t    *GossipTransport
}

// newGossipPair starts two wrapped memberlist NetTransports on loopback
// that know each other's addresses.
func newGossipPair(t *testing.T) (a, b *gossipNode) {
	t.Helper()
	addrs := map[string]string{}
	resolve := func(addr string) string { return addrs[addr] }
	mk := func(id string) *gossipNode {
		nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
			BindAddrs: []string{"127.0.0.1"}, BindPort: 0, Logger: log.New(io.Discard, "", 0),
		})
		if err != nil {
			t.Fatal(err)
		}
		g := &gossipNode{id: id, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(nt.GetAutoBindPort())),
			inj: New(WithLogger(quietLogger()))}
		n := &Net{Self: id, Resolve: resolve, Injector: g.inj, Logger: quietLogger(), HandshakeTimeout: 300 * time.Millisecond}
		g.t = n.GossipTransport(nt)
		t.Cleanup(func() {
			if err := g.t.Shutdown(); err != nil {
				t.Error(err)
			}
		})
		return g
	}
	a, b = mk("a"), mk("b")
	addrs[a.addr], addrs[b.addr] = "a", "b"
	return a, b
}

func (g *gossipNode) send(to *gossipNode, msg string, named bool) {
	a := memberlist.Address{Addr: to.addr}
	if named {
		a.Name = to.id
	}
	g.t.WriteToAddress([]byte(msg), a)
}

// recv returns the next packet's payload, or "" after timeout.
func (g *gossipNode) recv(timeout time.Duration) (string, string) {
	select {
	case p := <-g.t.PacketCh():
		return string(p.Buf), p.From.String()
	case <-time.After(timeout):
		return "", ""
	}
}

func TestGossipPackets(t *testing.T) {
	a, b := newGossipPair(t)
	a.send(b, "hello", true)
	if msg, from := b.recv(5 * time.Second); msg != "hello" || from != a.addr {
		t.Fatalf("got %q from %s", msg, from)
	}
	// Outbound cut on a: packets to b vanish, with or without the name.
	a.inj.Partition([]string{"b"}, Outbound)
	a.send(b, "lost1", true)
	a.send(b, "lost2", false)
	b.send(a, "still", true) // b -> a still flows
	if msg, _ := a.recv(5 * time.Second); msg != "still" {
		t.Fatalf("a got %q", msg)
	}
	if msg, _ := b.recv(200 * time.Millisecond); msg != "" {
		t.Fatalf("b received %q through an outbound cut", msg)
	}
	// Inbound cut on b (a healed): b drops what a sends.
	a.inj.Clear()
	b.inj.Partition([]string{"a"}, Inbound)
	a.send(b, "dropped", true)
	if msg, _ := b.recv(200 * time.Millisecond); msg != "" {
		t.Fatalf("b received %q through an inbound cut", msg)
	}
	if a.inj.Snapshot().Counters["packets_dropped_out"] != 2 || b.inj.Snapshot().Counters["packets_dropped_in"] != 1 {
		t.Fatalf("counters a=%v b=%v", a.inj.Snapshot().Counters, b.inj.Snapshot().Counters)
	}
	b.inj.Clear()
	// Latency delays each packet.
	a.inj.Latency([]string{"b"}, 150*time.Millisecond, 0)
	start := time.Now()
	a.send(b, "slow", true)
	if msg, _ := b.recv(5 * time.Second); msg != "slow" || time.Since(start) < 140*time.Millisecond {
		t.Fatalf("delayed packet %q after %s", msg, time.Since(start))
	}
	// A delayed packet pending at shutdown is dropped, not leaked.
	a.inj.Latency([]string{"b"}, time.Hour, 0)
	a.send(b, "never", true)
}

func TestGossipStreams(t *testing.T) {
	a, b := newGossipPair(t)
	c, err := a.t.DialAddressTimeout(memberlist.Address{Addr: b.addr, Name: "b"}, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var s net.Conn
	select {
	case s = <-b.t.StreamCh():
	case <-time.After(5 * time.Second):
		t.Fatal("no stream")
	}
	c.Write([]byte("push"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "push" {
		t.Fatalf("stream data %q %v (preamble not stripped?)", buf, err)
	}
	// An inbound cut on b closes the stream from a.
	b.inj.Partition([]string{"a"}, Inbound)
	expectClosed(t, c, "gossip stream after inbound cut")
	c.Close()
	s.Close()
	b.inj.Clear()
	// Outbound cut on a refuses the dial.
	a.inj.Partition([]string{"b"}, Both)
	if _, err := a.t.DialTimeout(b.addr, time.Second); err == nil {
		t.Fatal("dial through a partition")
	}
	a.inj.Clear()
	// A raw stream without preamble is closed and never handed to memberlist.
	raw, err := net.Dial("tcp", b.addr)
	if err != nil {
		t.Fatal(err)
	}
	raw.Write([]byte{byte(6), 0, 0, 0}) // looks like a memberlist pushPull
	expectClosed(t, raw, "raw gossip stream")
	raw.Close()
	select {
	case s := <-b.t.StreamCh():
		s.Close()
		t.Fatal("raw stream handed on")
	case <-time.After(100 * time.Millisecond):
	}
	// Shutdown is idempotent and aborts pending handshakes.
	raw, _ = net.Dial("tcp", b.addr)
	defer raw.Close()
	time.Sleep(20 * time.Millisecond)
	b.t.Shutdown()
	b.t.Shutdown()
}
