package engine

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"hash"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func newTestSealer(t testing.TB, fill byte) *Sealer {
	t.Helper()
	s, err := NewSealer(bytes.Repeat([]byte{fill}, SealKeySize))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSealerRoundTrip(t *testing.T) {
	s := newTestSealer(t, 1)
	pt := []byte("0123456789abcdef0123456789abcdef")
	aad := []byte("arn:aws:kms:us-east-1:111122223333:key/k1")

	sealed, err := s.Seal(pt, aad)
	if err != nil {
		t.Fatal(err)
	}
	if len(sealed) != len(pt)+sealOverhead || sealed[0] != sealVersion {
		t.Fatalf("sealed len %d version %d", len(sealed), sealed[0])
	}
	if bytes.Contains(sealed, pt) {
		t.Fatal("sealed data contains the plaintext")
	}
	again, _ := s.Seal(pt, aad)
	if bytes.Equal(sealed, again) {
		t.Fatal("two seals of the same plaintext are identical (nonce reuse?)")
	}
	got, err := s.Open(sealed, aad)
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	// Empty plaintext is fine too.
	e, _ := s.Seal(nil, aad)
	if got, err := s.Open(e, aad); err != nil || len(got) != 0 {
		t.Fatalf("Open(empty) = %q, %v", got, err)
	}
}

func TestSealerRejects(t *testing.T) {
	s := newTestSealer(t, 1)
	pt := []byte("secret material")
	aad := []byte("arn:aws:kms:us-east-1:111122223333:key/k1")
	sealed, _ := s.Seal(pt, aad)

	check := func(name string, data, aad []byte, s *Sealer) {
		t.Helper()
		got, err := s.Open(data, aad)
		if !errors.Is(err, ErrSealedDataInvalid) || got != nil {
			t.Errorf("%s: Open = %q, %v; want ErrSealedDataInvalid", name, got, err)
		}
		if err != nil && strings.Contains(err.Error(), string(pt)) {
			t.Errorf("%s: error leaks plaintext", name)
		}
	}
	for i := range sealed {
		tampered := bytes.Clone(sealed)
		tampered[i] ^= 0x80
		check("tampered byte", tampered, aad, s)
	}
	check("truncated", sealed[:len(sealed)-1], aad, s)
	check("too short", sealed[:sealOverhead-1], aad, s)
	check("empty", nil, aad, s)
	check("wrong aad", sealed, []byte("arn:aws:kms:us-east-1:111122223333:key/k2"), s)
	check("no aad", sealed, nil, s)
	check("wrong key", sealed, aad, newTestSealer(t, 2))
}

func TestNewSealerKeySize(t *testing.T) {
	for _, n := range []int{0, 16, 31, 33, 64} {
		if _, err := NewSealer(make([]byte, n)); err == nil {
			t.Errorf("NewSealer accepted a %d-byte key", n)
		}
	}
	// The root key is copied: zeroing the caller's slice changes nothing.
	root := bytes.Repeat([]byte{7}, SealKeySize)
	s, _ := NewSealer(root)
	sealed, _ := s.Seal([]byte("x"), nil)
	fp := s.Fingerprint([]byte("m"))
	dk := s.DeriveKey("p")
	clear(root)
	if _, err := s.Open(sealed, nil); err != nil {
		t.Error("sealer depends on the caller's key slice")
	}
	if s.Fingerprint([]byte("m")) != fp || !bytes.Equal(s.DeriveKey("p"), dk) {
		t.Error("derivations depend on the caller's key slice")
	}
}

func TestFingerprint(t *testing.T) {
	s1, s1b, s2 := newTestSealer(t, 1), newTestSealer(t, 1), newTestSealer(t, 2)
	m := []byte("some key material")
	fp := s1.Fingerprint(m)
	if len(fp) != 64 || strings.Trim(fp, "0123456789abcdef") != "" {
		t.Fatalf("fingerprint %q is not 64 lowercase hex chars", fp)
	}
	if s1.Fingerprint(m) != fp || s1b.Fingerprint(m) != fp {
		t.Error("fingerprint is not stable for the same seal key")
	}
	if s2.Fingerprint(m) == fp {
		t.Error("fingerprint does not depend on the seal key")
	}
	if s1.Fingerprint([]byte("other material")) == fp {
		t.Error("fingerprint does not depend on the material")
	}
	// It is keyed: not a plain SHA-256 of the material.
	plain := sha256.Sum256(m)
	if fp == string(plain[:]) || strings.Contains(fp, base64.StdEncoding.EncodeToString(plain[:])) {
		t.Error("fingerprint is an unkeyed hash")
	}
}

func TestDeriveKey(t *testing.T) {
	s1, s2 := newTestSealer(t, 1), newTestSealer(t, 2)
	a := s1.DeriveKey("cluster-auth")
	if len(a) != 32 {
		t.Fatalf("DeriveKey len %d", len(a))
	}
	if !bytes.Equal(a, newTestSealer(t, 1).DeriveKey("cluster-auth")) {
		t.Error("DeriveKey not stable")
	}
	if bytes.Equal(a, s1.DeriveKey("gossip")) {
		t.Error("different purposes give the same key")
	}
	if bytes.Equal(a, s2.DeriveKey("cluster-auth")) {
		t.Error("different seal keys give the same subkey")
	}
	if bytes.Equal(a, bytes.Repeat([]byte{1}, 32)) {
		t.Error("DeriveKey returned the root key")
	}
	// No purpose string reaches the internal subkeys.
	fpKey := s1.fingerprintKey
	for _, p := range []string{"", infoFingerprint, "../internal/fingerprint/hmac-sha256"} {
		if bytes.Equal(s1.DeriveKey(p), fpKey) {
			t.Errorf("DeriveKey(%q) returned the fingerprint subkey", p)
		}
	}
}

func TestWrappingRoundTrip(t *testing.T) {
	priv, pubDER, err := GenerateWrappingKey(WrappingKeySpecRSA2048)
	if err != nil {
		t.Fatal(err)
	}
	pubAny, err := x509.ParsePKIXPublicKey(pubDER)
	if err != nil {
		t.Fatalf("public key is not PKIX DER: %v", err)
	}
	pub, ok := pubAny.(*rsa.PublicKey)
	if !ok || pub.N.BitLen() != 2048 || !pub.Equal(&priv.PublicKey) {
		t.Fatalf("public key mismatch: %T", pubAny)
	}

	der, err := MarshalPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := ParsePrivateKey(der)
	if err != nil || !parsed.Equal(priv) {
		t.Fatalf("PKCS#8 round trip: %v", err)
	}

	material := bytes.Repeat([]byte{0x42}, 64)
	for alg, h := range map[string]func() hash.Hash{WrappingRSAESOAEPSHA1: sha1.New, WrappingRSAESOAEPSHA256: sha256.New} {
		ct, err := rsa.EncryptOAEP(h(), rand.Reader, pub, material, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := UnwrapKeyMaterial(parsed, alg, ct)
		if err != nil || !bytes.Equal(got, material) {
			t.Errorf("%s: unwrap = %x, %v", alg, got, err)
		}
		// Wrapped with the other OAEP hash: must fail, not return garbage.
		other := WrappingRSAESOAEPSHA256
		if alg == other {
			other = WrappingRSAESOAEPSHA1
		}
		if _, err := UnwrapKeyMaterial(parsed, other, ct); !errors.Is(err, ErrUnwrapFailed) {
			t.Errorf("%s ciphertext under %s: err = %v, want ErrUnwrapFailed", alg, other, err)
		}
		bad := bytes.Clone(ct)
		bad[10] ^= 1
		if _, err := UnwrapKeyMaterial(parsed, alg, bad); !errors.Is(err, ErrUnwrapFailed) {
			t.Errorf("%s tampered: err = %v, want ErrUnwrapFailed", alg, err)
		}
	}
	for _, alg := range []string{"RSAES_PKCS1_V1_5", "RSA_AES_KEY_WRAP_SHA_256", ""} {
		if _, err := UnwrapKeyMaterial(parsed, alg, []byte("x")); !errors.Is(err, ErrUnsupportedWrapping) {
			t.Errorf("UnwrapKeyMaterial(%q) err = %v, want ErrUnsupportedWrapping", alg, err)
		}
	}
}

func TestGenerateWrappingKeySpecs(t *testing.T) {
	if testing.Short() {
		t.Skip("RSA 3072/4096 generation is slow")
	}
	for spec, bits := range map[string]int{WrappingKeySpecRSA3072: 3072, WrappingKeySpecRSA4096: 4096} {
		priv, _, err := GenerateWrappingKey(spec)
		if err != nil || priv.N.BitLen() != bits {
			t.Errorf("%s: %v", spec, err)
		}
	}
	if _, _, err := GenerateWrappingKey("SM2"); !errors.Is(err, ErrUnsupportedWrapping) {
		t.Errorf("SM2: err = %v", err)
	}
	if _, err := ParsePrivateKey([]byte("not der")); err == nil {
		t.Error("ParsePrivateKey accepted garbage")
	}
}

func TestSealKeyFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}

	k := NewSealKey()
	if k == NewSealKey() {
		t.Fatal("NewSealKey repeated")
	}
	raw, err := base64.StdEncoding.DecodeString(k)
	if err != nil || len(raw) != SealKeySize {
		t.Fatalf("NewSealKey: %d bytes, %v", len(raw), err)
	}
	got, err := LoadSealKey(write("good", "\n  "+k+"\r\n\t"))
	if err != nil || !bytes.Equal(got, raw) {
		t.Fatalf("LoadSealKey = %x, %v", got, err)
	}
	if _, err := NewSealer(got); err != nil {
		t.Fatal(err)
	}

	short := base64.StdEncoding.EncodeToString(raw[:31])
	long := base64.StdEncoding.EncodeToString(append(bytes.Clone(raw), 0xff))
	cases := map[string]struct{ content, want string }{
		"empty":      {"  \n", "empty"},
		"notbase64":  {"this is not base64!!", "not valid"},
		"short":      {short, "31 bytes"},
		"long":       {long, "33 bytes"},
		"raw_url":    {strings.TrimRight(base64.URLEncoding.EncodeToString(raw), "="), "not valid"},
		"two_keys":   {k + "\n" + k, "not valid"},
		"hex_of_key": {strings.Repeat("ab", 32), "48 bytes"},
	}
	for name, tc := range cases {
		_, err := LoadSealKey(write(name, tc.content))
		if err == nil {
			t.Errorf("%s: LoadSealKey succeeded", name)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, tc.want) || !strings.Contains(msg, name) {
			t.Errorf("%s: error %q does not say %q and name the file", name, msg, tc.want)
		}
		// Errors never echo the file content.
		if strings.Contains(msg, strings.TrimSpace(tc.content)) && strings.TrimSpace(tc.content) != "" {
			t.Errorf("%s: error %q contains the file content", name, msg)
		}
		if strings.Contains(msg, k) || strings.Contains(msg, short) {
			t.Errorf("%s: error leaks key text", name)
		}
	}
	if _, err := LoadSealKey(filepath.Join(dir, "missing")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: err = %v", err)
	}
}

func TestAADHelpers(t *testing.T) {
	s := newTestSealer(t, 1)
	arn := "arn:aws:kms:us-east-1:111122223333:key/k1"
	sealed, _ := s.Seal([]byte("pk"), ImportKeyAAD(arn))
	if _, err := s.Open(sealed, MaterialAAD(arn)); err == nil {
		t.Fatal("an import key opened as material")
	}
	if got, err := s.Open(sealed, ImportKeyAAD(arn)); err != nil || string(got) != "pk" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if string(MaterialAAD(arn)) != arn {
		t.Fatal("MaterialAAD is not the key ARN")
	}
}

// TestSealerConcurrent checks that one Sealer serves many goroutines (run
// with -race).
func TestSealerConcurrent(t *testing.T) {
	s := newTestSealer(t, 1)
	done := make(chan error, 8)
	for g := range 8 {
		go func() {
			aad := []byte{byte(g)}
			for i := range 200 {
				pt := []byte{byte(g), byte(i)}
				sealed, err := s.Seal(pt, aad)
				if err == nil {
					var got []byte
					got, err = s.Open(sealed, aad)
					if err == nil && !bytes.Equal(got, pt) {
						err = errors.New("round trip mismatch")
					}
				}
				if err != nil {
					done <- err
					return
				}
				_ = s.Fingerprint(pt)
			}
			done <- nil
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
