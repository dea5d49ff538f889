package engine

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// SealKeySize is the size in bytes of the cluster seal (root) key.
const SealKeySize = 32

// sealVersion is the first byte of every sealed blob. It lets a later build
// change the construction (or rotate keys) while still opening old data.
const sealVersion byte = 1

const (
	gcmNonceSize = 12
	gcmTagSize   = 16
	sealOverhead = 1 + gcmNonceSize + gcmTagSize
)

// Derivation labels. Internal subkeys and DeriveKey's public ones live in
// separate namespaces so that no DeriveKey(purpose) call can ever return the
// encryption or fingerprint subkey, whatever purpose string it is given.
const (
	infoSeal        = "keyraft/v1/internal/seal/aes-256-gcm"
	infoFingerprint = "keyraft/v1/internal/fingerprint/hmac-sha256"
	infoDerivePref  = "keyraft/v1/derive/"
)

// ErrSealedDataInvalid is returned (wrapped) by Open when sealed data is
// truncated, has an unknown version, was sealed under another key or AAD, or
// was tampered with. The cases are deliberately not distinguished.
var ErrSealedDataInvalid = errors.New("sealed data is invalid or was sealed under another key")

// Sealer encrypts data at rest under the cluster seal key with AES-256-GCM
// and derives the other cluster secrets from it. It is safe for concurrent
// use.
//
// Sealed format: version (1 byte) || nonce (12 bytes) || GCM ciphertext+tag.
// The caller's AAD binds a blob to its context (the key ARN for material,
// ARN + "/import" for import private keys), so a blob copied onto another key
// does not open.
type Sealer struct {
	root           []byte
	aead           cipher.AEAD
	fingerprintKey []byte
}

// NewSealer returns a Sealer for a 32-byte root key. The key is copied.
func NewSealer(rootKey []byte) (*Sealer, error) {
	if len(rootKey) != SealKeySize {
		return nil, fmt.Errorf("engine: seal key must be %d bytes, got %d", SealKeySize, len(rootKey))
	}
	s := &Sealer{root: append([]byte(nil), rootKey...)}
	// The data-encryption key is a derived subkey rather than the root key
	// itself, so the root key is only ever used as a derivation key.
	block, err := aes.NewCipher(s.expand(infoSeal))
	if err != nil {
		return nil, fmt.Errorf("engine: new sealer: %w", err)
	}
	if s.aead, err = cipher.NewGCM(block); err != nil {
		return nil, fmt.Errorf("engine: new sealer: %w", err)
	}
	s.fingerprintKey = s.expand(infoFingerprint)
	return s, nil
}

// expand is HKDF-Expand (RFC 5869) with the root key as the pseudorandom key:
// the seal key is 32 uniformly random bytes, so the extract step adds nothing.
func (s *Sealer) expand(info string) []byte {
	k, err := hkdf.Expand(sha256.New, s.root, info, 32)
	if err != nil {
		// Only possible for an output length HKDF cannot produce; 32 bytes
		// from SHA-256 always works.
		panic("engine: hkdf expand: " + err.Error())
	}
	return k
}

// Seal encrypts plaintext bound to aad with a fresh random nonce.
func (s *Sealer) Seal(plaintext, aad []byte) ([]byte, error) {
	out := make([]byte, 1+gcmNonceSize, len(plaintext)+sealOverhead)
	out[0] = sealVersion
	nonce := out[1 : 1+gcmNonceSize]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("engine: seal: nonce: %w", err)
	}
	// Seal appends after the nonce; the nonce bytes are only read.
	return s.aead.Seal(out, nonce, plaintext, aad), nil
}

// Open decrypts data produced by Seal with the same key and aad. Any failure
// returns an error wrapping ErrSealedDataInvalid.
func (s *Sealer) Open(sealed, aad []byte) ([]byte, error) {
	if len(sealed) < sealOverhead {
		return nil, fmt.Errorf("engine: open: %w (too short)", ErrSealedDataInvalid)
	}
	if sealed[0] != sealVersion {
		return nil, fmt.Errorf("engine: open: %w (unknown version %d)", ErrSealedDataInvalid, sealed[0])
	}
	nonce := sealed[1 : 1+gcmNonceSize]
	pt, err := s.aead.Open(nil, nonce, sealed[1+gcmNonceSize:], aad)
	if err != nil {
		// The GCM error says nothing useful beyond "authentication failed".
		return nil, fmt.Errorf("engine: open: %w", ErrSealedDataInvalid)
	}
	return pt, nil
}

// Fingerprint returns a keyed digest (hex HMAC-SHA256 under a derived
// subkey) of material. Equal material gives equal fingerprints under the same
// seal key, which lets the replicated state check that re-imported material is
// identical without ever holding the material; without the seal key the
// fingerprint reveals nothing, unlike a plain hash of low-entropy input would.
func (s *Sealer) Fingerprint(material []byte) string {
	h := hmac.New(sha256.New, s.fingerprintKey)
	h.Write(material)
	var buf [sha256.Size]byte
	return hex.EncodeToString(h.Sum(buf[:0]))
}

// DeriveKey returns a 32-byte subkey of the seal key for purpose (for example
// "cluster-auth" or "gossip"). The same seal key and purpose always give the
// same subkey; different purposes give independent subkeys.
func (s *Sealer) DeriveKey(purpose string) []byte {
	return s.expand(infoDerivePref + purpose)
}

// MaterialAAD is the AAD that binds sealed key material to its key: the key
// ARN. The fsm package unseals with exactly these bytes.
func MaterialAAD(keyARN string) []byte { return []byte(keyARN) }

// ImportKeyAAD is the AAD that binds a sealed import wrapping private key to
// its key: the key ARN + "/import", so it can never be opened as material.
func ImportKeyAAD(keyARN string) []byte { return []byte(keyARN + "/import") }
