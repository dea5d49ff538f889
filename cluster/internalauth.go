package cluster

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Internal HTTP requests (forwarded writes, bootstrap checks, commit-index
// queries, removals) travel on the API port, which may be plain HTTP. So they
// carry no bearer secret that a listener could copy: each is signed.
//
//	X-Keyraft-Cluster-Auth: KRFT-HMAC-SHA256 t=<unix ms>,n=<nonce, 32 hex>,s=<signature, 64 hex>
//	signature = HMAC-SHA256(HMAC-SHA256(ClusterAuthKey, purposeHTTPSign),
//	            method "\n" request URI "\n" t "\n" n "\n" hex(SHA-256(body)))
//
// A node accepts a signature made within internalAuthWindow of its own clock
// and each nonce once, so a recorded request cannot be replayed (for
// instance a forwarded DisableKey sent again after a later EnableKey).

const (
	internalAuthScheme = "KRFT-HMAC-SHA256"
	// internalAuthWindow bounds the clock difference between two nodes and
	// how long a nonce is remembered (twice this).
	internalAuthWindow = time.Minute
)

// requestSigner signs this node's internal requests and verifies its
// peers'.
type requestSigner struct {
	key []byte

	mu     sync.Mutex
	nonces map[string]time.Time // nonce -> when it may be forgotten
	pruned time.Time
}

func newRequestSigner(clusterAuthKey []byte) *requestSigner {
	return &requestSigner{key: deriveKey(clusterAuthKey, purposeHTTPSign), nonces: make(map[string]time.Time)}
}

func (s *requestSigner) mac(method, uri, ts, nonce string, body []byte) []byte {
	sum := sha256.Sum256(body)
	m := hmac.New(sha256.New, s.key)
	fmt.Fprintf(m, "%s\n%s\n%s\n%s\n%x", method, uri, ts, nonce, sum)
	return m.Sum(nil)
}

// sign sets the AuthHeader of req, whose body is body.
func (s *requestSigner) sign(req *http.Request, body []byte, now time.Time) error {
	var nb [16]byte
	if _, err := rand.Read(nb[:]); err != nil {
		return err
	}
	ts, nonce := strconv.FormatInt(now.UnixMilli(), 10), hex.EncodeToString(nb[:])
	sig := s.mac(req.Method, req.URL.RequestURI(), ts, nonce, body)
	req.Header.Set(AuthHeader, internalAuthScheme+" t="+ts+",n="+nonce+",s="+hex.EncodeToString(sig))
	return nil
}

// verify checks r's AuthHeader over body. It answers the HTTP status to
// refuse with (401: no header; 403: anything else wrong) and why, or 0.
func (s *requestSigner) verify(r *http.Request, body []byte, now time.Time) (int, string) {
	h := r.Header.Get(AuthHeader)
	if h == "" {
		return http.StatusUnauthorized, "missing " + AuthHeader + " header"
	}
	rest, ok := strings.CutPrefix(h, internalAuthScheme+" ")
	if !ok {
		return http.StatusForbidden, "invalid " + AuthHeader + " header: want " + internalAuthScheme
	}
	var ts, nonce, sig string
	for _, part := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "n":
			nonce = v
		case "s":
			sig = v
		}
	}
	ms, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(nonce) != 32 || len(sig) != 64 {
		return http.StatusForbidden, "invalid " + AuthHeader + " header"
	}
	given, err := hex.DecodeString(sig)
	if err != nil || !hmac.Equal(given, s.mac(r.Method, r.RequestURI, ts, nonce, body)) {
		return http.StatusForbidden, "invalid cluster request signature (another seal key?)"
	}
	signed := time.UnixMilli(ms)
	if d := now.Sub(signed); d > internalAuthWindow || d < -internalAuthWindow {
		return http.StatusForbidden, fmt.Sprintf("cluster request signed at %s, %s from this node's clock (allowed: %s; are the clocks in sync?)",
			signed.UTC().Format(time.RFC3339Nano), d.Round(time.Millisecond), internalAuthWindow)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Sub(s.pruned) > internalAuthWindow {
		for n, until := range s.nonces {
			if now.After(until) {
				delete(s.nonces, n)
			}
		}
		s.pruned = now
	}
	if _, seen := s.nonces[nonce]; seen {
		return http.StatusForbidden, "replayed cluster request"
	}
	s.nonces[nonce] = signed.Add(2 * internalAuthWindow)
	return 0, ""
}
