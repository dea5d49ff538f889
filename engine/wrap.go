package engine

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"hash"
)

// Wrapping key specs accepted by GetParametersForImport (kms-api.md §9.3).
const (
	WrappingKeySpecRSA2048 = "RSA_2048"
	WrappingKeySpecRSA3072 = "RSA_3072"
	WrappingKeySpecRSA4096 = "RSA_4096"
)

// Wrapping algorithms accepted for HMAC key material (kms-api.md §9.3).
const (
	WrappingRSAESOAEPSHA1   = "RSAES_OAEP_SHA_1"
	WrappingRSAESOAEPSHA256 = "RSAES_OAEP_SHA_256"
)

// WrappingKeySpecs and WrappingAlgorithms list the supported values. Treat as
// read-only.
var (
	WrappingKeySpecs   = []string{WrappingKeySpecRSA2048, WrappingKeySpecRSA3072, WrappingKeySpecRSA4096}
	WrappingAlgorithms = []string{WrappingRSAESOAEPSHA1, WrappingRSAESOAEPSHA256}
)

// ErrUnsupportedWrapping is returned (wrapped) for a wrapping key spec or
// wrapping algorithm keyraft does not support; the API maps it to
// UnsupportedOperationException.
var ErrUnsupportedWrapping = errors.New("unsupported wrapping key spec or algorithm")

// ErrUnwrapFailed is returned (wrapped) when wrapped key material does not
// decrypt under the wrapping key; the API maps it to
// InvalidCiphertextException.
var ErrUnwrapFailed = errors.New("wrapped key material could not be decrypted")

// GenerateWrappingKey returns a fresh RSA wrapping key pair for spec and the
// public key as DER SubjectPublicKeyInfo (what GetParametersForImport returns
// in PublicKey).
func GenerateWrappingKey(spec string) (priv *rsa.PrivateKey, pubDER []byte, err error) {
	var bits int
	switch spec {
	case WrappingKeySpecRSA2048:
		bits = 2048
	case WrappingKeySpecRSA3072:
		bits = 3072
	case WrappingKeySpecRSA4096:
		bits = 4096
	default:
		return nil, nil, fmt.Errorf("engine: generate wrapping key: %w: key spec %q", ErrUnsupportedWrapping, spec)
	}
	priv, err = rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return nil, nil, fmt.Errorf("engine: generate wrapping key: %w", err)
	}
	pubDER, err = x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		return nil, nil, fmt.Errorf("engine: marshal wrapping public key: %w", err)
	}
	return priv, pubDER, nil
}

// MarshalPrivateKey encodes an RSA private key as PKCS#8 DER (to be sealed
// before it is replicated).
func MarshalPrivateKey(priv *rsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("engine: marshal private key: %w", err)
	}
	return der, nil
}

// ParsePrivateKey decodes a PKCS#8 DER RSA private key.
func ParsePrivateKey(der []byte) (*rsa.PrivateKey, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		// x509's parse errors describe the ASN.1 structure, never key bytes.
		return nil, fmt.Errorf("engine: parse private key: %w", err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("engine: parse private key: not an RSA key (%T)", k)
	}
	return rk, nil
}

// UnwrapKeyMaterial decrypts key material that the importer wrapped with
// the wrapping public key using wrappingAlg (RSAES_OAEP_SHA_1 or
// RSAES_OAEP_SHA_256, empty OAEP label as AWS uses).
func UnwrapKeyMaterial(priv *rsa.PrivateKey, wrappingAlg string, ciphertext []byte) ([]byte, error) {
	var h hash.Hash
	switch wrappingAlg {
	case WrappingRSAESOAEPSHA1:
		h = sha1.New()
	case WrappingRSAESOAEPSHA256:
		h = sha256.New()
	default:
		return nil, fmt.Errorf("engine: unwrap key material: %w: algorithm %q", ErrUnsupportedWrapping, wrappingAlg)
	}
	if priv == nil {
		return nil, errors.New("engine: unwrap key material: no wrapping key")
	}
	pt, err := rsa.DecryptOAEP(h, rand.Reader, priv, ciphertext, nil)
	if err != nil {
		// rsa's error is a fixed "decryption error"; hide it anyway so that
		// no OAEP padding oracle detail can ever reach a client.
		return nil, fmt.Errorf("engine: unwrap key material: %w", ErrUnwrapFailed)
	}
	return pt, nil
}
