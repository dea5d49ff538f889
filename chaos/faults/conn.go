package faults

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ErrPartitioned is wrapped by the errors of dials, writes and reads that a
// partition rule cut.
var ErrPartitioned = errors.New("cut by keyraft fault injection")

// writeQueueLen bounds the writes a delayed connection queues before Write
// blocks (back-pressure, like a full socket buffer).
const writeQueueLen = 256

// closeFlushGrace bounds how long Close waits for delayed writes to be
// delivered after their due time.
const closeFlushGrace = 5 * time.Second

// conn wraps a TCP connection with a known (or resolvable) peer. The
// Injector keeps every live conn in its registry so that a new rule can
// close the ones it cuts. Writes are delayed by latency rules through a
// FIFO queue drained by one goroutine (order is kept; the writer does not
// wait for the delay, as with a socket buffer).
type conn struct {
	net.Conn
	inj      *Injector
	outbound bool
	addr     string   // remote address as dialled (outbound)
	resolve  Resolver // to identify the peer later if unknown at dial time
	peer     atomic.Pointer[string]

	wmu       sync.Mutex // serialises the slow write path
	pending   atomic.Int64
	queue     chan writeItem
	writerOn  bool
	lastAt    time.Time
	asyncErr  atomic.Pointer[error]
	dead      chan struct{} // closed by kill
	killOnce  sync.Once
	killErr   error
	killed    atomic.Bool
	closed    atomic.Bool
	closeOnce sync.Once
}

type writeItem struct {
	data  []byte
	at    time.Time
	close bool // sentinel: everything before was written; close the conn
}

func newConn(c net.Conn, inj *Injector, outbound bool, peer, addr string, resolve Resolver) *conn {
	w := &conn{Conn: c, inj: inj, outbound: outbound, addr: addr, resolve: resolve, dead: make(chan struct{})}
	if peer != "" {
		w.peer.Store(&peer)
	}
	return w
}

// Peer returns the peer's node ID ("" if it could not be identified).
func (c *conn) Peer() string {
	if p := c.peer.Load(); p != nil {
		return *p
	}
	if c.resolve != nil && c.addr != "" {
		if id := c.resolve(c.addr); id != "" {
			c.peer.Store(&id)
			return id
		}
	}
	return ""
}

func (c *conn) direction() string {
	if c.outbound {
		return "outbound"
	}
	return "inbound"
}

func (c *conn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if err != nil && c.killed.Load() {
		err = c.killErr
	}
	return n, err
}

func (c *conn) Write(b []byte) (int, error) {
	if c.inj.active.Load() == nil && c.pending.Load() == 0 {
		return c.Conn.Write(b)
	}
	return c.slowWrite(b)
}

func (c *conn) slowWrite(b []byte) (int, error) {
	eff := c.inj.effectFor(c.Peer())
	if eff.blocks(c.outbound) {
		c.kill(fmt.Errorf("%s connection to %s: %w", c.direction(), c.peerLabel(), ErrPartitioned))
		return 0, c.killErr
	}
	d := eff.delay()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.killed.Load() {
		return 0, c.killErr
	}
	if c.closed.Load() {
		return 0, net.ErrClosed
	}
	if p := c.asyncErr.Load(); p != nil {
		return 0, *p
	}
	if d == 0 && c.pending.Load() == 0 {
		return c.Conn.Write(b)
	}
	if !c.writerOn {
		c.writerOn = true
		c.queue = make(chan writeItem, writeQueueLen)
		go c.writer()
	}
	at := time.Now().Add(d)
	if at.Before(c.lastAt) {
		at = c.lastAt // keep order
	}
	c.lastAt = at
	c.pending.Add(1)
	select {
	case c.queue <- writeItem{data: bytes.Clone(b), at: at}:
	case <-c.dead:
		c.pending.Add(-1)
		return 0, c.killErr
	}
	if d > 0 {
		c.inj.stats.writesDelayed.Add(1)
	}
	return len(b), nil
}

// writer delivers queued writes when they are due.
func (c *conn) writer() {
	t := time.NewTimer(time.Hour)
	t.Stop()
	defer t.Stop()
	for {
		select {
		case it := <-c.queue:
			if it.close {
				c.shut(net.ErrClosed, false)
				return
			}
			if d := time.Until(it.at); d > 0 {
				t.Reset(d)
				select {
				case <-t.C:
				case <-c.dead:
					return
				}
			}
			if _, err := c.Conn.Write(it.data); err != nil {
				c.asyncErr.Store(&err)
				c.pending.Add(-1)
				c.shut(err, false)
				return
			}
			c.pending.Add(-1)
		case <-c.dead:
			return
		}
	}
}

// Close closes the connection; writes still queued by a latency rule are
// delivered first (bounded), as the kernel would after close(2).
func (c *conn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		c.inj.unregister(c)
		c.wmu.Lock()
		flush := c.writerOn && c.pending.Load() > 0
		if flush {
			c.Conn.SetWriteDeadline(c.lastAt.Add(closeFlushGrace))
			select {
			case c.queue <- writeItem{close: true}:
			case <-c.dead:
			}
		}
		c.wmu.Unlock()
		if !flush {
			err = c.Conn.Close()
			c.shut(net.ErrClosed, false) // ends an idle writer goroutine
		}
	})
	return err
}

// kill closes the connection at once (queued writes are lost), as a
// partition does.
func (c *conn) kill(reason error) { c.shut(reason, true) }

// shut closes the connection at once; byRule: a rule cut it (counted and
// logged), otherwise a delayed write failed.
func (c *conn) shut(reason error, byRule bool) {
	c.killOnce.Do(func() {
		c.killErr = reason
		c.killed.Store(true)
		close(c.dead)
		c.Conn.Close()
		c.inj.unregister(c)
		if byRule {
			c.inj.stats.connsClosed.Add(1)
			c.inj.log.Debug("fault injection: connection closed", "peer", c.peerLabel(),
				"direction", c.direction(), "remote", c.Conn.RemoteAddr().String(), "reason", reason)
		}
	})
}

func (c *conn) peerLabel() string {
	if p := c.Peer(); p != "" {
		return p
	}
	return "unidentified peer " + c.Conn.RemoteAddr().String()
}

// register adds c to the registry and reports whether the rules in force
// cut it already (then the caller must not use it).
func (i *Injector) register(c *conn) bool {
	i.mu.Lock()
	i.conns[c] = struct{}{}
	i.mu.Unlock()
	return i.effectFor(c.Peer()).blocks(c.outbound)
}

func (i *Injector) unregister(c *conn) {
	i.mu.Lock()
	delete(i.conns, c)
	i.mu.Unlock()
}

// victimsLocked lists the registered conns the rules in force cut.
func (i *Injector) victimsLocked() []*conn {
	c := i.active.Load()
	if c == nil {
		return nil
	}
	var out []*conn
	for w := range i.conns {
		if c.lookup(w.Peer()).blocks(w.outbound) {
			out = append(out, w)
		}
	}
	return out
}

func (i *Injector) closeVictims(victims []*conn) {
	for _, w := range victims {
		w.kill(fmt.Errorf("%s connection to %s: %w", w.direction(), w.peerLabel(), ErrPartitioned))
	}
}

// liveConns returns the number of registered connections (tests).
func (i *Injector) liveConns() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return len(i.conns)
}
