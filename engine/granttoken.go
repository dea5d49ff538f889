package engine

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
)

// Grant tokens are self-verifying: a token carries everything a node needs
// to authorize the grantee of a grant it has not applied yet (the grant's
// key, id, principals, operations, constraints and creation date), and an
// HMAC-SHA256 tag under a subkey of the cluster secret, so any node holding
// the secret can check that the cluster issued it.
//
// Token format (base64url without padding of):
//
//	version (1 byte, 1)
//	KeyARN, GrantID, GranteePrincipal, RetiringPrincipal  (each: uint16 BE length, bytes)
//	Operations        (uint16 BE count, then each: uint16 BE length, bytes)
//	CreationDate      (int64 BE, unix ns)
//	EncryptionContextSubset, EncryptionContextEquals
//	                  (each: uint16 BE count, then key, value pairs sorted by key,
//	                   each string: uint16 BE length, bytes)
//	SourceArn         (uint16 BE length, bytes)
//	nonce             (16 bytes)
//	tag               (32 bytes: HMAC-SHA256 of everything before it)
//
// The encoding is canonical (one byte string per claims value), the tag
// covers every byte before it, and the text form admits only the base64url
// alphabet with zero padding bits, so changing any character of a token
// makes it fail verification.
const (
	grantTokenVersion byte = 1
	// MaxGrantTokenLen is the longest token SignGrantToken produces and
	// VerifyGrantToken accepts (AWS GrantTokenType: 1 to 8192 characters).
	MaxGrantTokenLen = 8192
	// GrantTokenNonceSize is the size of the random nonce in every token.
	GrantTokenNonceSize = 16
	// GrantTokenSecretSize is the size of a cluster secret made by
	// NewGrantTokenSecret; MinGrantTokenSecretSize the least accepted.
	GrantTokenSecretSize    = 32
	MinGrantTokenSecretSize = 16

	grantTokenTagSize = sha256.Size
	// version, four empty strings, no operations, creation date, two empty
	// maps, empty SourceArn, nonce, tag.
	grantTokenMinRaw = 1 + 4*2 + 2 + 8 + 2 + 2 + 2 + GrantTokenNonceSize + grantTokenTagSize

	infoGrantToken = "keyraft/v1/grant-token/hmac-sha256"
)

// Verification errors. Both mean "this is not a token this cluster issued"
// (InvalidGrantTokenException); they are distinguished for logs and tests
// only. Errors of VerifyGrantToken that wrap neither are the server's fault
// (an unusable secret).
var (
	// ErrGrantTokenMalformed: not a token of this format at all (length,
	// alphabet, base64, version or structure).
	ErrGrantTokenMalformed = errors.New("grant token is malformed")
	// ErrGrantTokenForged: well-formed, but its tag does not verify under
	// this cluster's secret (tampered, or issued by another cluster).
	ErrGrantTokenForged = errors.New("grant token was not issued by this cluster")
	// ErrGrantTokenTooLong is SignGrantToken's error for claims whose token
	// would exceed MaxGrantTokenLen characters or a field over 65535 bytes.
	ErrGrantTokenTooLong = errors.New("grant token would be too long")
)

// GrantTokenClaims is what a grant token says about its grant.
type GrantTokenClaims struct {
	KeyARN            string
	GrantID           string
	GranteePrincipal  string
	RetiringPrincipal string
	Operations        []string
	CreationDate      int64 // unix ns
	// The grant's constraints (nil maps and "" for none).
	EncryptionContextSubset map[string]string
	EncryptionContextEquals map[string]string
	SourceArn               string
	// Nonce makes every token unique. SignGrantToken draws a fresh random
	// one when it is empty (what callers should do); a caller-supplied one
	// must be GrantTokenNonceSize bytes (for tests).
	Nonce []byte
}

// NewGrantTokenSecret returns a new random cluster secret for grant tokens.
func NewGrantTokenSecret() []byte {
	b := make([]byte, GrantTokenSecretSize)
	rand.Read(b) // never fails (see NewSealKey)
	return b
}

// grantTokenKey derives the tag key from the cluster secret, so the secret
// itself is never used directly as a MAC key and could serve other
// purposes under other labels.
func grantTokenKey(secret []byte) ([]byte, error) {
	if len(secret) < MinGrantTokenSecretSize {
		return nil, fmt.Errorf("engine: grant token secret must be at least %d bytes, got %d", MinGrantTokenSecretSize, len(secret))
	}
	k, err := hkdf.Expand(sha256.New, secret, infoGrantToken, 32)
	if err != nil {
		return nil, fmt.Errorf("engine: derive grant token key: %w", err)
	}
	return k, nil
}

func grantTokenTag(key, msg []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(msg)
	return h.Sum(nil)
}

// tokenWriter appends length-prefixed fields; the first field that does not
// fit a uint16 length sets tooLong.
type tokenWriter struct {
	b       []byte
	tooLong bool
}

func (w *tokenWriter) count(n int) {
	if n > math.MaxUint16 {
		w.tooLong = true
		return
	}
	w.b = binary.BigEndian.AppendUint16(w.b, uint16(n))
}

func (w *tokenWriter) str(s string) {
	w.count(len(s))
	w.b = append(w.b, s...)
}

func (w *tokenWriter) strMap(m map[string]string) {
	w.count(len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		w.str(k)
		w.str(m[k])
	}
}

// SignGrantToken issues a token for c under the cluster secret.
func SignGrantToken(secret []byte, c GrantTokenClaims) (string, error) {
	key, err := grantTokenKey(secret)
	if err != nil {
		return "", err
	}
	nonce := c.Nonce
	switch len(nonce) {
	case 0:
		nonce = make([]byte, GrantTokenNonceSize)
		rand.Read(nonce)
	case GrantTokenNonceSize:
	default:
		return "", fmt.Errorf("engine: grant token nonce must be %d bytes, got %d", GrantTokenNonceSize, len(nonce))
	}
	w := tokenWriter{b: make([]byte, 0, 256)}
	w.b = append(w.b, grantTokenVersion)
	w.str(c.KeyARN)
	w.str(c.GrantID)
	w.str(c.GranteePrincipal)
	w.str(c.RetiringPrincipal)
	w.count(len(c.Operations))
	for _, op := range c.Operations {
		w.str(op)
	}
	w.b = binary.BigEndian.AppendUint64(w.b, uint64(c.CreationDate))
	w.strMap(c.EncryptionContextSubset)
	w.strMap(c.EncryptionContextEquals)
	w.str(c.SourceArn)
	w.b = append(w.b, nonce...)
	raw := append(w.b, grantTokenTag(key, w.b)...)
	if n := base64.RawURLEncoding.EncodedLen(len(raw)); w.tooLong || n > MaxGrantTokenLen {
		return "", fmt.Errorf("engine: sign grant token: %w (over %d characters)", ErrGrantTokenTooLong, MaxGrantTokenLen)
	}
	return base64.RawURLEncoding.EncodeToString(raw), nil
}

// tokenReader reads length-prefixed fields; any overrun sets bad.
type tokenReader struct {
	b   []byte
	bad bool
}

func (r *tokenReader) take(n int) []byte {
	if r.bad || n > len(r.b) {
		r.bad = true
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *tokenReader) count() int {
	b := r.take(2)
	if b == nil {
		return 0
	}
	return int(binary.BigEndian.Uint16(b))
}

func (r *tokenReader) str() string { return string(r.take(r.count())) }

// strMap reads a map; nil when empty. Keys must be strictly increasing (the
// canonical encoding).
func (r *tokenReader) strMap() map[string]string {
	n := r.count()
	if n == 0 || r.bad || n*4 > len(r.b) { // each pair takes at least 4 bytes
		r.bad = r.bad || n*4 > len(r.b)
		return nil
	}
	m := make(map[string]string, n)
	prev := ""
	for i := range n {
		k, v := r.str(), r.str()
		if r.bad || (i > 0 && k <= prev) {
			r.bad = true
			return nil
		}
		m[k], prev = v, k
	}
	return m
}

// validTokenText reports whether s holds only base64url characters.
func validTokenText(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// VerifyGrantToken checks that token was issued under secret and returns its
// claims. The tag is compared in constant time before anything else in the
// token is interpreted. Errors wrap ErrGrantTokenMalformed or
// ErrGrantTokenForged, except for an unusable secret.
func VerifyGrantToken(secret []byte, token string) (GrantTokenClaims, error) {
	key, err := grantTokenKey(secret)
	if err != nil {
		return GrantTokenClaims{}, err
	}
	malformed := func(why string) (GrantTokenClaims, error) {
		return GrantTokenClaims{}, fmt.Errorf("engine: verify grant token: %w (%s)", ErrGrantTokenMalformed, why)
	}
	if len(token) > MaxGrantTokenLen {
		return malformed("too long")
	}
	if len(token) < base64.RawURLEncoding.EncodedLen(grantTokenMinRaw) {
		return malformed("too short")
	}
	// The decoder would skip CR and LF; the strict decoder rejects
	// non-zero padding bits. Together: one text per byte string.
	if !validTokenText(token) {
		return malformed("not base64url")
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil {
		return malformed("not base64url")
	}
	if raw[0] != grantTokenVersion {
		return malformed("unknown version")
	}
	body, tag := raw[:len(raw)-grantTokenTagSize], raw[len(raw)-grantTokenTagSize:]
	if !hmac.Equal(tag, grantTokenTag(key, body)) {
		return GrantTokenClaims{}, fmt.Errorf("engine: verify grant token: %w", ErrGrantTokenForged)
	}

	r := tokenReader{b: body[1 : len(body)-GrantTokenNonceSize]}
	var c GrantTokenClaims
	c.KeyARN = r.str()
	c.GrantID = r.str()
	c.GranteePrincipal = r.str()
	c.RetiringPrincipal = r.str()
	if n := r.count(); n > 0 && n*2 <= len(r.b) { // each operation takes at least 2 bytes
		c.Operations = make([]string, n)
		for i := range c.Operations {
			c.Operations[i] = r.str()
		}
	} else if n > 0 {
		r.bad = true
	}
	if b := r.take(8); b != nil {
		c.CreationDate = int64(binary.BigEndian.Uint64(b))
	}
	c.EncryptionContextSubset = r.strMap()
	c.EncryptionContextEquals = r.strMap()
	c.SourceArn = r.str()
	if r.bad || len(r.b) != 0 {
		// Only a token made with the secret can get here: the secret
		// signed something that is not a token.
		return malformed("bad structure")
	}
	c.Nonce = slices.Clone(body[len(body)-GrantTokenNonceSize:])
	return c, nil
}
