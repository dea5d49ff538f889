package faults

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"
)

// DefaultHandshakeTimeout bounds how long a listener waits for a new
// connection's preamble.
const DefaultHandshakeTimeout = 5 * time.Second

// Resolver maps a peer's address (host:port as dialled, or the source
// address of a UDP packet) to its node ID, or "" if unknown. It must be cheap
// and safe for concurrent use, and must not call into the Injector.
type Resolver func(addr string) string

// Net is one node's view of the network: it writes and checks the
// connection preamble that tells each side who the other is, and applies
// the Injector's rules. The cluster layer always uses it; with a nil
// Injector it only adds the preamble.
type Net struct {
	// Self is this node's ID, sent in the preamble. Required.
	Self string
	// Resolve identifies the peer behind an address we dial or receive UDP
	// packets from. Required when Injector is set.
	Resolve Resolver
	// Injector holds the fault rules; nil means no faults.
	Injector *Injector
	// Dialer is the base for all dials (its Timeout is overridden by
	// Dial's timeout argument). Zero value: net.Dialer defaults.
	Dialer net.Dialer
	// HandshakeTimeout bounds reading a preamble; default
	// DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// Logger for rejected connections; default slog.Default().
	Logger *slog.Logger
}

func (n *Net) logger() *slog.Logger {
	if n.Logger != nil {
		return n.Logger
	}
	return slog.Default()
}

func (n *Net) handshakeTimeout() time.Duration {
	if n.HandshakeTimeout > 0 {
		return n.HandshakeTimeout
	}
	return DefaultHandshakeTimeout
}

func (n *Net) resolve(addr string) string {
	if n.Resolve == nil {
		return ""
	}
	return n.Resolve(addr)
}

// refused is the error of a dial cut by a rule: a *net.OpError with Op
// "dial", so callers treat it as "nothing was sent".
func refused(network, addr, peer string) error {
	if peer == "" {
		peer = "unidentified peer"
	}
	return &net.OpError{Op: "dial", Net: network, Addr: stringAddr{network, addr},
		Err: fmt.Errorf("outbound traffic to %s: %w", peer, ErrPartitioned)}
}

type stringAddr struct{ net, addr string }

func (a stringAddr) Network() string { return a.net }
func (a stringAddr) String() string  { return a.addr }

// checkOutbound refuses a dial to addr if a rule cuts it; it returns the
// peer's id for wrapping.
func (n *Net) checkOutbound(network, addr string) (string, error) {
	if n.Injector == nil {
		return "", nil
	}
	peer := n.resolve(addr)
	if n.Injector.Blocked(peer, Outbound) {
		n.Injector.stats.dialsRefused.Add(1)
		return peer, refused(network, addr, peer)
	}
	return peer, nil
}

// wrapOutbound registers a dialled connection with the Injector (nil
// Injector: returned as is).
func (n *Net) wrapOutbound(c net.Conn, network, addr, peer string) (net.Conn, error) {
	if n.Injector == nil {
		return c, nil
	}
	w := newConn(c, n.Injector, true, peer, addr, n.Resolve)
	if n.Injector.register(w) { // a rule arrived while we dialled
		w.kill(fmt.Errorf("outbound connection to %s: %w", w.peerLabel(), ErrPartitioned))
		n.Injector.stats.dialsRefused.Add(1)
		return nil, refused(network, addr, peer)
	}
	return w, nil
}

// Dial opens a TCP connection to addr for channel ch and sends the
// preamble; the connection is subject to the Injector's rules for the peer
// at addr. A dial cut by a partition fails at once with a *net.OpError
// (Op "dial") wrapping ErrPartitioned.
func (n *Net) Dial(ch Channel, addr string, timeout time.Duration) (net.Conn, error) {
	peer, err := n.checkOutbound("tcp", addr)
	if err != nil {
		return nil, err
	}
	d := n.Dialer
	d.Timeout = timeout
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	if timeout > 0 {
		c.SetWriteDeadline(time.Now().Add(timeout))
	}
	if err := WritePreamble(c, ch, n.Self); err != nil {
		c.Close()
		return nil, fmt.Errorf("send %s preamble to %s: %w", ch, addr, err)
	}
	c.SetWriteDeadline(time.Time{})
	return n.wrapOutbound(c, "tcp", addr, peer)
}

// DialContext is for HTTP clients talking to peers' internal endpoints
// (http.Transport.DialContext): no preamble (the request carries
// FromHeader instead), but outbound rules apply to the peer at addr.
func (n *Net) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	peer, err := n.checkOutbound(network, addr)
	if err != nil {
		return nil, err
	}
	c, err := n.Dialer.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return n.wrapOutbound(c, network, addr, peer)
}

// handshake reads c's preamble and applies inbound rules. It returns the
// connection to hand on, or nil (c is then closed) with the reason a
// preamble was refused (nil when a rule cut it).
func (n *Net) handshake(c net.Conn, ch Channel) (net.Conn, error) {
	c.SetReadDeadline(time.Now().Add(n.handshakeTimeout()))
	peer, err := ReadPreamble(c, ch)
	if err != nil {
		c.Close()
		return nil, err
	}
	c.SetReadDeadline(time.Time{})
	if n.Injector == nil {
		return c, nil
	}
	w := newConn(c, n.Injector, false, peer, "", nil)
	if n.Injector.register(w) {
		n.Injector.stats.inboundRejected.Add(1)
		w.kill(fmt.Errorf("inbound connection from %s: %w", peer, ErrPartitioned))
		return nil, nil
	}
	return w, nil
}

func (n *Net) logRejected(ch Channel, c net.Conn, err error) {
	n.logger().Warn("rejected connection without a valid keyraft preamble",
		"channel", ch.String(), "remote", c.RemoteAddr().String(), "error", err)
}

// Listener accepts connections that start with a preamble for its channel.
// Preambles are read in per-connection goroutines (bounded by the handshake
// timeout), so a slow or bogus client never blocks Accept, and Accept never
// returns an error for one: raft's accept loop backs off on errors.
type Listener struct {
	raw     net.Listener
	n       *Net
	ch      Channel
	conns   chan net.Conn
	closed  chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
	mu      sync.Mutex
	pending map[net.Conn]struct{} // connections in handshake
}

// Listen wraps ln: Accept returns only connections whose preamble for ch
// was valid and that no inbound rule cuts (wrapped so later rules can
// close them). It takes ownership of ln.
func (n *Net) Listen(ln net.Listener, ch Channel) *Listener {
	l := &Listener{raw: ln, n: n, ch: ch, conns: make(chan net.Conn), closed: make(chan struct{}),
		pending: make(map[net.Conn]struct{})}
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

func (l *Listener) acceptLoop() {
	defer l.wg.Done()
	var delay time.Duration
	for {
		c, err := l.raw.Accept()
		if err != nil {
			select {
			case <-l.closed:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Transient (e.g. too many open files): back off as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			l.n.logger().Warn("accept failed; retrying", "channel", l.ch.String(), "error", err, "retry_in", delay)
			select {
			case <-l.closed:
				return
			case <-time.After(delay):
			}
			continue
		}
		delay = 0
		if !l.track(c) {
			c.Close()
			return
		}
		l.wg.Add(1)
		go l.handle(c)
	}
}

// track records a connection in handshake; false once closed.
func (l *Listener) track(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pending == nil {
		return false
	}
	l.pending[c] = struct{}{}
	return true
}

func (l *Listener) untrack(c net.Conn) {
	l.mu.Lock()
	if l.pending != nil {
		delete(l.pending, c)
	}
	l.mu.Unlock()
}

func (l *Listener) handle(raw net.Conn) {
	defer l.wg.Done()
	c, err := l.n.handshake(raw, l.ch)
	l.untrack(raw)
	if c == nil {
		if err != nil && !l.isClosed() {
			l.n.logRejected(l.ch, raw, err)
		}
		return
	}
	select {
	case l.conns <- c:
	case <-l.closed:
		c.Close()
	}
}

func (l *Listener) isClosed() bool {
	select {
	case <-l.closed:
		return true
	default:
		return false
	}
}

// Accept returns the next identified connection; after Close it returns an
// error wrapping net.ErrClosed.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.raw.Addr(), Err: net.ErrClosed}
	}
}

// Close stops accepting, aborts pending handshakes and waits for its
// goroutines. Connections already accepted stay open.
func (l *Listener) Close() error {
	var err error
	l.once.Do(func() {
		close(l.closed)
		err = l.raw.Close()
		l.mu.Lock()
		for c := range l.pending {
			c.Close()
		}
		l.pending = nil
		l.mu.Unlock()
		l.wg.Wait()
	})
	return err
}

// Addr is the bound address.
func (l *Listener) Addr() net.Addr { return l.raw.Addr() }
