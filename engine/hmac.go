package engine

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
)

// KMS key specs of HMAC keys.
const (
	KeySpecHMAC224 = "HMAC_224"
	KeySpecHMAC256 = "HMAC_256"
	KeySpecHMAC384 = "HMAC_384"
	KeySpecHMAC512 = "HMAC_512"
)

// KMS MAC algorithms (MacAlgorithmSpec).
const (
	MacHMACSHA224 = "HMAC_SHA_224"
	MacHMACSHA256 = "HMAC_SHA_256"
	MacHMACSHA384 = "HMAC_SHA_384"
	MacHMACSHA512 = "HMAC_SHA_512"
)

// KeySpecs lists the HMAC key specs keyraft serves. Treat as read-only.
var KeySpecs = []string{KeySpecHMAC224, KeySpecHMAC256, KeySpecHMAC384, KeySpecHMAC512}

// MacAlgorithms lists the MAC algorithms keyraft serves, in the same order as
// KeySpecs. Treat as read-only.
var MacAlgorithms = []string{MacHMACSHA224, MacHMACSHA256, MacHMACSHA384, MacHMACSHA512}

// ErrUnknownAlgorithm is returned (wrapped) for a MAC algorithm that is not
// one of MacAlgorithms.
var ErrUnknownAlgorithm = errors.New("unknown MAC algorithm")

// ErrUnknownKeySpec is returned (wrapped) for a key spec that is not one of
// KeySpecs.
var ErrUnknownKeySpec = errors.New("unknown HMAC key spec")

// MacAlgorithmForSpec maps an HMAC key spec to its only MAC algorithm (the
// mapping is one-to-one in KMS).
func MacAlgorithmForSpec(keySpec string) (alg string, ok bool) {
	switch keySpec {
	case KeySpecHMAC224:
		return MacHMACSHA224, true
	case KeySpecHMAC256:
		return MacHMACSHA256, true
	case KeySpecHMAC384:
		return MacHMACSHA384, true
	case KeySpecHMAC512:
		return MacHMACSHA512, true
	}
	return "", false
}

// hashFor returns the hash constructor and digest size of a MAC algorithm.
// A switch on a string constant set is cheaper than a map lookup and keeps
// the hot path free of allocations.
func hashFor(alg string) (func() hash.Hash, int, bool) {
	switch alg {
	case MacHMACSHA224:
		return sha256.New224, sha256.Size224, true
	case MacHMACSHA256:
		return sha256.New, sha256.Size, true
	case MacHMACSHA384:
		return sha512.New384, sha512.Size384, true
	case MacHMACSHA512:
		return sha512.New, sha512.Size, true
	}
	return nil, 0, false
}

// digestSize returns the digest size in bytes of an HMAC key spec.
func digestSize(keySpec string) (int, bool) {
	alg, ok := MacAlgorithmForSpec(keySpec)
	if !ok {
		return 0, false
	}
	_, size, _ := hashFor(alg)
	return size, true
}

// GenerateKeyMaterial returns fresh random key material for an HMAC key spec.
// Its length is the digest size of the spec's hash (28, 32, 48 or 64 bytes),
// which is what AWS generates and what RFC 2104 recommends as the minimum.
func GenerateKeyMaterial(keySpec string) ([]byte, error) {
	n, ok := digestSize(keySpec)
	if !ok {
		return nil, fmt.Errorf("engine: generate key material: %w %q", ErrUnknownKeySpec, keySpec)
	}
	return RandomBytes(n)
}

// ImportLengthRange returns the accepted length in bytes of imported key
// material for an HMAC key spec (kms-api.md §9 decision 2). It returns 0, 0
// for an unknown spec.
func ImportLengthRange(keySpec string) (min, max int) {
	switch keySpec {
	case KeySpecHMAC224:
		return 28, 64
	case KeySpecHMAC256:
		return 32, 64
	case KeySpecHMAC384:
		return 48, 128
	case KeySpecHMAC512:
		return 64, 128
	}
	return 0, 0
}

// MAC returns the full-length HMAC of msg under key with algorithm alg (KMS
// never truncates). The key may have any length; RFC 2104 hashes keys longer
// than the block size.
func MAC(alg string, key, msg []byte) ([]byte, error) {
	newHash, size, ok := hashFor(alg)
	if !ok {
		return nil, fmt.Errorf("engine: mac: %w %q", ErrUnknownAlgorithm, alg)
	}
	h := hmac.New(newHash, key)
	h.Write(msg)
	// Sum into an exactly sized buffer so the result never grows.
	return h.Sum(make([]byte, 0, size)), nil
}

// VerifyMAC reports whether mac is the HMAC of msg under key. The comparison
// is constant time (hmac.Equal); a mac of the wrong length is simply false.
// The error is non-nil only for an unknown algorithm.
func VerifyMAC(alg string, key, msg, mac []byte) (bool, error) {
	newHash, size, ok := hashFor(alg)
	if !ok {
		return false, fmt.Errorf("engine: verify mac: %w %q", ErrUnknownAlgorithm, alg)
	}
	h := hmac.New(newHash, key)
	h.Write(msg)
	return hmac.Equal(h.Sum(make([]byte, 0, size)), mac), nil
}

// RandomBytes returns n bytes from crypto/rand.
func RandomBytes(n int) ([]byte, error) {
	if n < 0 {
		return nil, fmt.Errorf("engine: random bytes: negative length %d", n)
	}
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("engine: random bytes: %w", err)
	}
	return b, nil
}
