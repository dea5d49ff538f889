package cluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"

	"github.com/keyraft/keyraft/chaos/faults"
)

// raftStream is the raft StreamLayer: a TCP listener whose connections must
// start with keyraft's preamble (the dialling node's ID) and a dialer that
// sends it, both through faults.Net, which applies Config.Faults (if any)
// per peer. After the preamble the connection is mutual TLS with the
// cluster CA (raft_tls.go).
type raftStream struct {
	*faults.Listener
	advertise net.Addr
	net       *faults.Net
	tls       *raftTLS
}

var _ raft.StreamLayer = (*raftStream)(nil)

func (s *raftStream) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c, err := s.net.Dial(faults.ChannelRaft, string(address), timeout)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(c, s.tls.client)
	ctx := context.Background()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("%w: dial %s: %w", errRaftTLS, address, err)
	}
	return tc, nil
}

// Accept hands raft a TLS server connection; its handshake runs on raft's
// first read, in raft's per-connection goroutine, so a slow or bogus peer
// never holds up the accept loop.
func (s *raftStream) Accept() (net.Conn, error) {
	c, err := s.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return tls.Server(c, s.tls.server), nil
}

// Addr is the advertised address (what raft puts in the configuration).
func (s *raftStream) Addr() net.Addr { return s.advertise }

// hostAddr is an advertised host-name address, kept as a name so that
// peers resolve it when they dial.
type hostAddr string

func (a hostAddr) Network() string { return "tcp" }
func (a hostAddr) String() string  { return string(a) }

// raftAdvertise returns the address raft advertises: RaftAdvertiseAddr (an
// IP address as given; a host name must resolve now but is advertised as
// is), else the bound address, which must then be a specific IP.
func raftAdvertise(advertise string, ln net.Listener) (net.Addr, error) {
	if advertise == "" {
		a, ok := ln.Addr().(*net.TCPAddr)
		if !ok {
			return nil, errors.New("local address is not a TCP address")
		}
		if a.IP == nil || a.IP.IsUnspecified() {
			return nil, errors.New("local bind address is not advertisable (set RaftAdvertiseAddr)")
		}
		return a, nil
	}
	a, err := net.ResolveTCPAddr("tcp", advertise)
	if err != nil {
		return nil, fmt.Errorf("RaftAdvertiseAddr: %w", err)
	}
	if a.IP == nil || a.IP.IsUnspecified() {
		return nil, fmt.Errorf("RaftAdvertiseAddr %q is not advertisable", advertise)
	}
	if host, _, _ := net.SplitHostPort(advertise); net.ParseIP(host) == nil {
		return hostAddr(advertise), nil
	}
	return a, nil
}

// newRaftTransport binds the raft listener and builds the NetworkTransport
// on our stream layer.
func (n *Node) newRaftTransport() (*raft.NetworkTransport, error) {
	ln, err := net.Listen("tcp", n.cfg.RaftBindAddr)
	if err != nil {
		return nil, err
	}
	advertise, err := raftAdvertise(n.cfg.RaftAdvertiseAddr, ln)
	if err != nil {
		ln.Close()
		return nil, err
	}
	rt, err := newRaftTLS(n.cfg.ClusterAuthKey, n.cfg.NodeID)
	if err != nil {
		ln.Close()
		return nil, err
	}
	stream := &raftStream{Listener: n.net.Listen(ln, faults.ChannelRaft), advertise: advertise, net: n.net, tls: rt}
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  stream,
		MaxPool: raftMaxPool,
		Timeout: raftTCPTimeout,
		Logger:  newHclogAdapter(n.log, "raft").Named("transport"),
	}), nil
}

// newGossipTransport binds memberlist's TCP and UDP sockets and wraps them
// (preamble on streams, fault rules).
func (n *Node) newGossipTransport(mc *memberlist.Config) (*faults.GossipTransport, error) {
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
		BindAddrs: []string{mc.BindAddr},
		BindPort:  mc.BindPort,
		Logger:    mc.Logger,
	})
	if err != nil {
		return nil, err
	}
	if mc.BindPort == 0 { // as memberlist does for its own transport
		port := nt.GetAutoBindPort()
		mc.BindPort = port
		if mc.AdvertiseAddr == "" {
			mc.AdvertisePort = port
		}
	}
	return n.net.GossipTransport(nt), nil
}

// resolvePeer maps an address of a peer (raft, gossip or API host:port) to
// its node ID from the gossip member table and the raft configuration; ""
// if unknown. Used by faults.Net to apply per-peer rules.
func (n *Node) resolvePeer(addr string) string {
	if id := n.members.idByAddr(addr); id != "" {
		return id
	}
	if r := n.raftRef.Load(); r != nil {
		for _, s := range r.GetConfiguration().Configuration().Servers {
			if string(s.Address) == addr {
				return string(s.ID)
			}
		}
	}
	return ""
}

// internalRequest builds a request to another node's internal endpoint,
// signed (internalauth.go) and with our ID (faults.FromHeader).
func (n *Node) internalRequest(ctx context.Context, method, url string, body []byte) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if err := n.signer.sign(req, body, time.Now()); err != nil {
		return nil, err
	}
	req.Header.Set(faults.FromHeader, n.cfg.NodeID)
	return req, nil
}

// applyPauser is implemented by FSMs wrapped with faults.WrapFSM.
type applyPauser interface {
	BlockedApplyIndex() uint64
	ReleaseApply()
}
