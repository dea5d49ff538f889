package cluster

import (
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/keyraft/keyraft/chaos/faults"
)

func TestClusterCAIsDerivedFromTheKey(t *testing.T) {
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	a, _, err := clusterCA(k1)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := clusterCA(k1)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Raw, b.Raw) {
		t.Fatal("two derivations from the same key gave different CA certificates")
	}
	c, _, err := clusterCA(k2)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a.Raw, c.Raw) {
		t.Fatal("different keys gave the same CA certificate")
	}
	// Two nodes' certificates verify against each other's view of the CA.
	n1, err := newRaftTLS(k1, "n1")
	if err != nil {
		t.Fatal(err)
	}
	leaf := n1.client.Certificates[0].Certificate[0]
	n2, err := newRaftTLS(k1, "n2")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(leaf, n2.client.Certificates[0].Certificate[0]) {
		t.Fatal("two nodes share a certificate")
	}
}

// TestRaftPortRequiresClusterCertificate dials a running node's raft port
// as an outsider: only a peer holding a certificate of the cluster CA (that
// is, the seal key) gets a raft connection, and the node proves itself to
// the peer the same way.
func TestRaftPortRequiresClusterCertificate(t *testing.T) {
	c := newTestCluster(t, nil)
	tn := c.addNode(1)
	c.start(tn)
	c.waitLeader(10 * time.Second)
	apply(t, tn, "before")

	insider, err := newRaftTLS(c.key, "peer")
	if err != nil {
		t.Fatal(err)
	}
	outsider, err := newRaftTLS(bytes.Repeat([]byte{9}, 32), "intruder")
	if err != nil {
		t.Fatal(err)
	}
	dial := func() net.Conn {
		t.Helper()
		raw, err := net.DialTimeout("tcp", tn.n().RaftAddr(), 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if err := faults.WritePreamble(raw, faults.ChannelRaft, "peer"); err != nil {
			t.Fatal(err)
		}
		return raw
	}
	// closedByServer is true when the server ends the connection (alert,
	// EOF or reset) rather than waiting for a raft RPC.
	closedByServer := func(conn net.Conn) bool {
		conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err := conn.Read(make([]byte, 1))
		return err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
	}

	t.Run("cluster certificate", func(t *testing.T) {
		conn := tls.Client(dial(), insider.client)
		defer conn.Close()
		if err := conn.Handshake(); err != nil {
			t.Fatalf("handshake with the cluster's certificate: %v", err)
		}
		if closedByServer(conn) {
			t.Fatal("the node closed a connection with a valid cluster certificate")
		}
	})
	t.Run("certificate of another cluster", func(t *testing.T) {
		cfg := outsider.client.Clone()
		cfg.RootCAs = insider.client.RootCAs // trusts the node, but is not trusted
		conn := tls.Client(dial(), cfg)
		defer conn.Close()
		// TLS 1.3: the server judges the client certificate after the
		// client's handshake is done, and answers with an alert.
		if err := conn.Handshake(); err == nil && !closedByServer(conn) {
			t.Fatal("the node kept a connection from a peer of another cluster")
		}
	})
	t.Run("no certificate", func(t *testing.T) {
		cfg := &tls.Config{RootCAs: insider.client.RootCAs, ServerName: raftTLSServerName, MinVersion: tls.VersionTLS13}
		conn := tls.Client(dial(), cfg)
		defer conn.Close()
		if err := conn.Handshake(); err == nil && !closedByServer(conn) {
			t.Fatal("the node kept a connection without a client certificate")
		}
	})
	t.Run("the node proves itself", func(t *testing.T) {
		conn := tls.Client(dial(), outsider.client) // trusts only the other CA
		defer conn.Close()
		if err := conn.Handshake(); err == nil {
			t.Fatal("a client of another cluster accepted the node's certificate")
		}
	})
	t.Run("plain raft", func(t *testing.T) {
		conn := dial()
		defer conn.Close()
		// What hashicorp/raft would send first: an rpc type byte and msgpack.
		conn.Write(append([]byte{0}, bytes.Repeat([]byte{0x80}, 64)...))
		if !closedByServer(conn) {
			t.Fatal("the node kept a plain-text raft connection")
		}
	})
	apply(t, tn, "after")
	c.waitEntries([]string{"before", "after"})
}
