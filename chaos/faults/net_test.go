package faults

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestPreamble(t *testing.T) {
	var b bytes.Buffer
	if err := WritePreamble(&b, ChannelRaft, "node-1"); err != nil {
		t.Fatal(err)
	}
	raw := bytes.Clone(b.Bytes())
	if id, err := ReadPreamble(bytes.NewReader(raw), ChannelRaft); err != nil || id != "node-1" {
		t.Fatalf("round trip: %q %v", id, err)
	}
	if _, err := ReadPreamble(bytes.NewReader(raw), ChannelGossip); !errors.Is(err, ErrBadPreamble) ||
		!strings.Contains(err.Error(), "raft connection on the gossip port") {
		t.Fatalf("wrong channel: %v", err)
	}
	for name, in := range map[string][]byte{
		"empty":     nil,
		"raft rpc":  {0, 0x83, 0xa1, 'x'},
		"bad magic": []byte("HTTP/1.1 200"),
		"version":   append([]byte("KRFT\x09\x01"), 0, 1, 'a'),
		"zero len":  append([]byte("KRFT\x01\x01"), 0, 0),
		"long len":  append([]byte("KRFT\x01\x01"), 0xff, 0xff),
		"truncated": raw[:len(raw)-1],
	} {
		if _, err := ReadPreamble(bytes.NewReader(in), ChannelRaft); !errors.Is(err, ErrBadPreamble) {
			t.Errorf("%s: want ErrBadPreamble, got %v", name, err)
		}
	}
	if WritePreamble(io.Discard, ChannelRaft, "") == nil || WritePreamble(io.Discard, ChannelRaft, strings.Repeat("x", MaxNodeIDLen+1)) == nil {
		t.Error("bad ids accepted")
	}
}

// pair is a listening Net (node "b") and a dialling Net (node "a").
type pair struct {
	a, b   *Net
	ia, ib *Injector
	ln     *Listener
}

func newPair(t *testing.T) *pair {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pair{ia: New(WithLogger(quietLogger())), ib: New(WithLogger(quietLogger()))}
	bAddr := raw.Addr().String()
	p.a = &Net{Self: "a", Injector: p.ia, Logger: quietLogger(),
		Resolve: func(addr string) string {
			if addr == bAddr {
				return "b"
			}
			return ""
		}}
	p.b = &Net{Self: "b", Injector: p.ib, Logger: quietLogger(), HandshakeTimeout: 300 * time.Millisecond}
	p.ln = p.b.Listen(raw, ChannelRaft)
	t.Cleanup(func() { p.ln.Close() })
	return p
}

// accept returns the next accepted connection, or nil after timeout.
func (p *pair) accept(t *testing.T, timeout time.Duration) net.Conn {
	t.Helper()
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := p.ln.Accept()
		if err != nil {
			ch <- nil
			return
		}
		ch <- c
	}()
	select {
	case c := <-ch:
		return c
	case <-time.After(timeout):
		// Unblock the Accept goroutine: a later test step accepts nothing.
		t.Cleanup(func() {
			if c := <-ch; c != nil {
				c.Close()
			}
		})
		return nil
	}
}

func (p *pair) dial(t *testing.T) net.Conn {
	t.Helper()
	c, err := p.a.Dial(ChannelRaft, p.ln.Addr().String(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func expectClosed(t *testing.T, c net.Conn, what string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 16)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("%s: connection still open", what)
		}
		return
	}
}

func TestListenerHandshake(t *testing.T) {
	p := newPair(t)
	c := p.dial(t)
	defer c.Close()
	s := p.accept(t, 5*time.Second)
	if s == nil {
		t.Fatal("no connection accepted")
	}
	defer s.Close()
	if got := s.(*conn).Peer(); got != "a" {
		t.Fatalf("peer %q", got)
	}
	if got := c.(*conn).Peer(); got != "b" {
		t.Fatalf("dialled peer %q", got)
	}
	c.Write([]byte("hello"))
	buf := make([]byte, 5)
	if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("read %q %v", buf, err)
	}

	// A raw connection with raft bytes but no preamble is closed and never
	// reaches Accept.
	raw, err := net.Dial("tcp", p.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	raw.Write([]byte{0, 0x83, 0xa4, 'T', 'e', 'r', 'm'})
	expectClosed(t, raw, "raw connection with raft bytes")
	raw.Close()
	// A silent one is closed after the handshake timeout.
	raw, _ = net.Dial("tcp", p.ln.Addr().String())
	expectClosed(t, raw, "silent raw connection")
	raw.Close()
	if s := p.accept(t, 200*time.Millisecond); s != nil {
		s.Close()
		t.Fatal("a connection without preamble was accepted")
	}
	// Close aborts a handshake in progress and makes Accept fail.
	raw, _ = net.Dial("tcp", p.ln.Addr().String())
	defer raw.Close()
	time.Sleep(20 * time.Millisecond)
	p.ln.Close()
	if _, err := p.ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v", err)
	}
}

func TestPartitionConns(t *testing.T) {
	p := newPair(t)
	// Outbound cut on a: existing conn closed, new dials refused as dial errors.
	c := p.dial(t)
	s := p.accept(t, 5*time.Second)
	if s == nil {
		t.Fatal("no connection accepted")
	}
	defer s.Close()
	p.ia.Partition([]string{"b"}, Outbound)
	expectClosed(t, s, "server side of a cut connection")
	if _, err := c.Write([]byte("x")); !errors.Is(err, ErrPartitioned) {
		t.Fatalf("write on a cut conn: %v", err)
	}
	c.Close()
	_, err := p.a.Dial(ChannelRaft, p.ln.Addr().String(), time.Second)
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" || !errors.Is(err, ErrPartitioned) {
		t.Fatalf("dial under partition: %v", err)
	}
	if _, err := p.a.DialContext(context.Background(), "tcp", p.ln.Addr().String()); !errors.Is(err, ErrPartitioned) {
		t.Fatalf("DialContext under partition: %v", err)
	}
	// An inbound cut on a does not stop a from dialling.
	p.ia.Partition([]string{"b"}, Inbound)
	c = p.dial(t)
	s = p.accept(t, 5*time.Second)
	if s == nil {
		t.Fatal("no connection accepted")
	}
	defer s.Close()
	// An inbound cut on b closes the accepted conn and rejects new ones.
	p.ib.Partition([]string{"a"}, Inbound)
	expectClosed(t, c, "client side of an inbound-cut connection")
	c.Close()
	c = p.dial(t) // the dial itself succeeds; b closes it after the preamble
	expectClosed(t, c, "new connection from a cut peer")
	c.Close()
	if got := p.ib.Snapshot().Counters; got["inbound_rejected"] < 1 || got["conns_closed"] < 1 {
		t.Fatalf("counters %v", got)
	}
	if got := p.ia.Snapshot().Counters["dials_refused"]; got < 2 {
		t.Fatalf("dials_refused %d", got)
	}
	// Healed.
	p.ia.Clear()
	p.ib.Clear()
	c = p.dial(t)
	defer c.Close()
	s = p.accept(t, 5*time.Second)
	if s == nil {
		t.Fatal("no connection after heal")
	}
	s.Close()
	c.Close()
	eventuallyT(t, func() bool { return p.ia.liveConns() == 0 && p.ib.liveConns() == 0 }, "registry empties")
}

func eventuallyT(t *testing.T, f func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestLatencyConn(t *testing.T) {
	p := newPair(t)
	c := p.dial(t)
	s := p.accept(t, 5*time.Second)
	if s == nil {
		t.Fatal("no connection accepted")
	}
	defer s.Close()
	const d = 150 * time.Millisecond
	p.ia.Latency([]string{"b"}, d, 20*time.Millisecond)
	start := time.Now()
	var want []byte
	for i := range 50 {
		msg := []byte{byte(i)}
		want = append(want, msg...)
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
	}
	if el := time.Since(start); el > d {
		t.Fatalf("writes blocked for %s: they should be queued", el)
	}
	got := make([]byte, len(want))
	if _, err := io.ReadFull(s, got); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < d-20*time.Millisecond {
		t.Fatalf("data arrived after %s, latency %s", el, d)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("order not kept: %v", got)
	}
	// Close flushes what is queued, then closes.
	p.ia.Latency([]string{"b"}, d, 0)
	c.Write([]byte("bye"))
	c.Close()
	if _, err := c.Write([]byte("late")); err == nil {
		t.Fatal("write after Close succeeded")
	}
	all, err := io.ReadAll(s)
	if err != nil || string(all) != "bye" {
		t.Fatalf("after close: %q %v", all, err)
	}
	if p.ia.Snapshot().Counters["writes_delayed"] < 51 {
		t.Fatal("writes_delayed not counted")
	}
	// A partition kills a conn with queued writes at once.
	p.ia.Clear()
	c = p.dial(t)
	s2 := p.accept(t, 5*time.Second)
	if s2 == nil {
		t.Fatal("no connection accepted")
	}
	defer s2.Close()
	p.ia.Latency([]string{"b"}, time.Hour, 0)
	c.Write([]byte("never"))
	p.ia.Partition([]string{"b"}, Outbound)
	expectClosed(t, s2, "conn with queued writes")
	c.Close()
	p.ia.Clear()
}
