package faults

import (
	"bytes"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// GossipTransport wraps memberlist's transport (normally a
// *memberlist.NetTransport) for one node:
//
//   - TCP streams carry the preamble (ChannelGossip) like raft connections:
//     dials send it, accepted streams must start with it (others are closed).
//   - UDP packets are single messages: the peer of an outgoing packet is the
//     node it is addressed to (memberlist passes the name, else Resolve maps
//     the address); the peer of an incoming packet is identified by its
//     source address (memberlist sends from its one bound socket, so that is
//     the peer's gossip address).
//   - Rules: an outbound cut drops packets to the peer silently and refuses
//     stream dials; an inbound cut drops packets from it and closes its
//     streams; latency delays each outgoing packet (UDP may reorder) and
//     each stream write.
//
// Use it as memberlist.Config.Transport. Shutdown (called by memberlist's
// Shutdown) shuts the wrapped transport down too.
type GossipTransport struct {
	inner memberlist.NodeAwareTransport
	n     *Net

	packetCh  chan *memberlist.Packet
	streamCh  chan net.Conn
	closing   chan struct{} // Shutdown began: stop handing on
	innerDone chan struct{} // the wrapped transport is shut down
	once      sync.Once
	wg        sync.WaitGroup

	mu      sync.Mutex
	pending map[net.Conn]struct{} // streams in handshake
	timers  map[*time.Timer]struct{}
}

var _ memberlist.NodeAwareTransport = (*GossipTransport)(nil)

// GossipTransport wraps inner; it takes ownership of it.
func (n *Net) GossipTransport(inner memberlist.NodeAwareTransport) *GossipTransport {
	t := &GossipTransport{
		inner: inner, n: n,
		packetCh:  make(chan *memberlist.Packet),
		streamCh:  make(chan net.Conn),
		closing:   make(chan struct{}),
		innerDone: make(chan struct{}),
		pending:   make(map[net.Conn]struct{}),
		timers:    make(map[*time.Timer]struct{}),
	}
	t.wg.Add(2)
	go t.packetLoop()
	go t.streamLoop()
	return t
}

func (t *GossipTransport) isClosing() bool {
	select {
	case <-t.closing:
		return true
	default:
		return false
	}
}

// packetLoop hands incoming packets on, dropping the ones an inbound rule
// cuts. After Shutdown began it keeps draining the wrapped transport (whose
// listener blocks on an unbuffered channel) until that is shut down.
func (t *GossipTransport) packetLoop() {
	defer t.wg.Done()
	in := t.inner.PacketCh()
	for {
		select {
		case p := <-in:
			if t.isClosing() {
				continue
			}
			if inj := t.n.Injector; inj != nil && inj.Active() && p.From != nil {
				if inj.Blocked(t.n.resolve(p.From.String()), Inbound) {
					inj.stats.packetsInDrop.Add(1)
					continue
				}
			}
			select {
			case t.packetCh <- p:
			case <-t.closing:
			}
		case <-t.innerDone:
			return
		}
	}
}

// streamLoop hands incoming streams to handshake goroutines.
func (t *GossipTransport) streamLoop() {
	defer t.wg.Done()
	in := t.inner.StreamCh()
	for {
		select {
		case c := <-in:
			if !t.track(c) {
				c.Close()
				continue
			}
			t.wg.Add(1)
			go t.handshake(c)
		case <-t.innerDone:
			return
		}
	}
}

func (t *GossipTransport) track(c net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pending == nil {
		return false
	}
	t.pending[c] = struct{}{}
	return true
}

func (t *GossipTransport) handshake(raw net.Conn) {
	defer t.wg.Done()
	c, err := t.n.handshake(raw, ChannelGossip)
	t.mu.Lock()
	if t.pending != nil {
		delete(t.pending, raw)
	}
	t.mu.Unlock()
	if c == nil {
		if err != nil && !t.isClosing() {
			t.n.logRejected(ChannelGossip, raw, err)
		}
		return
	}
	select {
	case t.streamCh <- c:
	case <-t.closing:
		c.Close()
	}
}

// FinalAdvertiseAddr implements memberlist.Transport.
func (t *GossipTransport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	return t.inner.FinalAdvertiseAddr(ip, port)
}

// WriteTo implements memberlist.Transport.
func (t *GossipTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// WriteToAddress implements memberlist.NodeAwareTransport.
func (t *GossipTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	inj := t.n.Injector
	if !inj.Active() {
		return t.inner.WriteToAddress(b, a)
	}
	peer := a.Name
	if peer == "" {
		peer = t.n.resolve(a.Addr)
	}
	eff := inj.effectFor(peer)
	if eff.cutOut {
		inj.stats.packetsOutDrop.Add(1)
		return time.Now(), nil // lost on the way, as UDP is
	}
	d := eff.delay()
	if d == 0 {
		return t.inner.WriteToAddress(b, a)
	}
	inj.stats.packetsDelayed.Add(1)
	buf := bytes.Clone(b)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.timers == nil { // shut down
		return time.Now(), nil
	}
	var tm *time.Timer
	tm = time.AfterFunc(d, func() {
		t.mu.Lock()
		_, live := t.timers[tm]
		delete(t.timers, tm)
		t.mu.Unlock()
		if live {
			t.inner.WriteToAddress(buf, a)
		}
	})
	t.timers[tm] = struct{}{}
	return time.Now(), nil
}

// PacketCh implements memberlist.Transport.
func (t *GossipTransport) PacketCh() <-chan *memberlist.Packet { return t.packetCh }

// DialTimeout implements memberlist.Transport.
func (t *GossipTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout implements memberlist.NodeAwareTransport.
func (t *GossipTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	var peer string
	if inj := t.n.Injector; inj != nil {
		peer = a.Name
		if peer == "" {
			peer = t.n.resolve(a.Addr)
		}
		if inj.Blocked(peer, Outbound) {
			inj.stats.dialsRefused.Add(1)
			return nil, refused("tcp", a.Addr, peer)
		}
	}
	c, err := t.inner.DialAddressTimeout(a, timeout)
	if err != nil {
		return nil, err
	}
	if timeout > 0 {
		c.SetWriteDeadline(time.Now().Add(timeout))
	}
	if err := WritePreamble(c, ChannelGossip, t.n.Self); err != nil {
		c.Close()
		return nil, fmt.Errorf("send gossip preamble to %s: %w", a.Addr, err)
	}
	c.SetWriteDeadline(time.Time{})
	return t.n.wrapOutbound(c, "tcp", a.Addr, peer)
}

// StreamCh implements memberlist.Transport.
func (t *GossipTransport) StreamCh() <-chan net.Conn { return t.streamCh }

// Shutdown implements memberlist.Transport: it shuts the wrapped transport
// down, aborts handshakes and delayed packets, and waits for its goroutines.
// It is idempotent.
func (t *GossipTransport) Shutdown() error {
	var err error
	t.once.Do(func() {
		close(t.closing)
		t.mu.Lock()
		for c := range t.pending {
			c.Close()
		}
		t.pending = nil
		for tm := range t.timers {
			tm.Stop()
		}
		t.timers = nil
		t.mu.Unlock()
		err = t.inner.Shutdown()
		close(t.innerDone)
		t.wg.Wait()
	})
	return err
}
