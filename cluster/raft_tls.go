package cluster

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// Raft traffic is mutual TLS 1.3, with nothing for an operator to set up:
// every node derives the same cluster CA key from ClusterAuthKey (itself
// derived from the seal key every node must hold) and, at start, signs a
// fresh certificate of its own with it. A node accepts a raft connection
// only from a peer whose certificate that CA signed, so only holders of the
// seal key can speak raft to it (append entries, install snapshots, vote),
// and everything on the wire is encrypted. Gossip has its own encryption
// (memberlist's keyring, gossipKey); internal HTTP requests are signed
// (internalauth.go).

// raftTLSServerName is the name every node certificate carries and every
// client verifies: nodes are told apart by their node ID, not by a host.
const raftTLSServerName = "raft.keyraft.internal"

// raftTLS holds the two sides' TLS configurations of one node.
type raftTLS struct {
	server, client *tls.Config
}

// clusterCA returns the cluster CA certificate and key derived from
// clusterAuthKey. Both are deterministic (Ed25519 keys come from a seed
// and its signatures involve no randomness; the template is fixed), so
// every node builds byte-identical ones.
func clusterCA(clusterAuthKey []byte) (*x509.Certificate, ed25519.PrivateKey, error) {
	key := ed25519.NewKeyFromSeed(deriveKey(clusterAuthKey, purposeRaftCA))
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "keyraft cluster CA"},
		NotBefore:             time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:              time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(nil, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: raft CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return ca, key, nil
}

// newRaftTLS builds node nodeID's raft TLS configurations: a fresh key pair
// whose certificate the cluster CA signs, valid from an hour ago (clock
// skew between nodes) for ten years.
func newRaftTLS(clusterAuthKey []byte, nodeID string) (*raftTLS, error) {
	ca, caKey, err := clusterCA(clusterAuthKey)
	if err != nil {
		return nil, err
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: nodeID, Organization: []string{"keyraft cluster"}},
		DNSNames:     []string{raftTLSServerName},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, pub, caKey)
	if err != nil {
		return nil, fmt.Errorf("cluster: raft node certificate: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv}
	return &raftTLS{
		server: &tls.Config{
			Certificates: []tls.Certificate{cert},
			ClientAuth:   tls.RequireAndVerifyClientCert,
			ClientCAs:    pool,
			MinVersion:   tls.VersionTLS13,
		},
		client: &tls.Config{
			Certificates: []tls.Certificate{cert},
			RootCAs:      pool,
			ServerName:   raftTLSServerName,
			MinVersion:   tls.VersionTLS13,
		},
	}, nil
}

// errRaftTLS wraps handshake failures so that logs say what failed.
var errRaftTLS = errors.New("raft TLS handshake failed (a peer with another seal key, or not keyraft?)")
