package engine

import (
	"bytes"
	"encoding/base64"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func testSecret(fill byte) []byte { return bytes.Repeat([]byte{fill}, GrantTokenSecretSize) }

func sampleClaims() GrantTokenClaims {
	return GrantTokenClaims{
		KeyARN:            "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
		GrantID:           strings.Repeat("0123456789abcdef", 4),
		GranteePrincipal:  "arn:aws:iam::111122223333:role/app",
		RetiringPrincipal: "arn:aws:iam::111122223333:role/admin",
		Operations:        []string{"DescribeKey", "GenerateMac", "VerifyMac"},
		CreationDate:      1_700_000_000_123_456_789,
		SourceArn:         "arn:aws:s3:::bucket",
	}
}

func mustSign(t testing.TB, secret []byte, c GrantTokenClaims) string {
	t.Helper()
	tok, err := SignGrantToken(secret, c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestGrantTokenRoundTrip(t *testing.T) {
	secret := testSecret(7)
	cases := map[string]GrantTokenClaims{
		"full": sampleClaims(),
		"minimal": {KeyARN: "arn:k", GrantID: "g", GranteePrincipal: "p", Operations: []string{"GenerateMac"},
			CreationDate: -5},
		"empty": {},
		"contexts": func() GrantTokenClaims {
			c := sampleClaims()
			c.EncryptionContextSubset = map[string]string{"b": "2", "a": "1", "": "empty key"}
			c.EncryptionContextEquals = map[string]string{"x": ""}
			return c
		}(),
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			tok := mustSign(t, secret, c)
			if len(tok) > MaxGrantTokenLen || strings.ContainsAny(tok, "+/=") {
				t.Fatalf("token %q is not unpadded base64url within the bound", tok)
			}
			got, err := VerifyGrantToken(secret, tok)
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Nonce) != GrantTokenNonceSize {
				t.Fatalf("nonce %x", got.Nonce)
			}
			want := c
			want.Nonce = got.Nonce
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("claims differ:\n got %#v\nwant %#v", got, want)
			}
			// A caller-supplied nonce reproduces the exact token.
			if again := mustSign(t, secret, got); again != tok {
				t.Fatal("re-signing the verified claims gives another token")
			}
		})
	}
}

func TestGrantTokenUnique(t *testing.T) {
	secret := testSecret(7)
	seen := map[string]bool{}
	for range 200 {
		tok := mustSign(t, secret, sampleClaims())
		if seen[tok] {
			t.Fatal("two calls gave the same token")
		}
		seen[tok] = true
	}
}

// TestGrantTokenTamper changes every character of a token to every other
// base64url character (and to a few outside the alphabet): each change must
// fail, as Malformed or Forged.
func TestGrantTokenTamper(t *testing.T) {
	secret := testSecret(7)
	tok := mustSign(t, secret, sampleClaims())
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	others := alphabet + "+/=\n\r .\x00\xff"
	n := 0
	for i := range len(tok) {
		for j := range len(others) {
			if others[j] == tok[i] {
				continue
			}
			bad := tok[:i] + string(others[j]) + tok[i+1:]
			_, err := VerifyGrantToken(secret, bad)
			if !errors.Is(err, ErrGrantTokenMalformed) && !errors.Is(err, ErrGrantTokenForged) {
				t.Fatalf("position %d -> %q: err %v", i, others[j], err)
			}
			n++
		}
	}
	// Raw byte tampering (every bit of every byte) is always Forged or,
	// for the version byte, Malformed.
	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	for i := range raw {
		for bit := range 8 {
			b := bytes.Clone(raw)
			b[i] ^= 1 << bit
			_, err := VerifyGrantToken(secret, base64.RawURLEncoding.EncodeToString(b))
			want := ErrGrantTokenForged
			if i == 0 {
				want = ErrGrantTokenMalformed
			}
			if !errors.Is(err, want) {
				t.Fatalf("byte %d bit %d: err %v, want %v", i, bit, err, want)
			}
		}
	}
	// Inserted characters (the base64 decoder would skip newlines).
	for _, ins := range []string{"\n", "\r\n", "A", "=", "=="} {
		for _, pos := range []int{0, 10, len(tok)} {
			if _, err := VerifyGrantToken(secret, tok[:pos]+ins+tok[pos:]); err == nil {
				t.Fatalf("insert %q at %d verified", ins, pos)
			}
		}
	}
	t.Logf("%d single-character changes rejected", n)
}

func TestGrantTokenTruncation(t *testing.T) {
	secret := testSecret(7)
	tok := mustSign(t, secret, sampleClaims())
	for n := range len(tok) {
		_, err := VerifyGrantToken(secret, tok[:n])
		if !errors.Is(err, ErrGrantTokenMalformed) && !errors.Is(err, ErrGrantTokenForged) {
			t.Fatalf("prefix of %d chars: err %v", n, err)
		}
	}
	for n := 1; n < len(tok); n++ {
		if _, err := VerifyGrantToken(secret, tok[n:]); err == nil {
			t.Fatalf("suffix from %d verified", n)
		}
	}
	// A re-signed body that lost structure (valid tag over a truncated
	// body) is Malformed, not accepted.
	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	key, _ := grantTokenKey(secret)
	body := raw[:len(raw)-grantTokenTagSize-GrantTokenNonceSize-3]
	body = append(body, make([]byte, GrantTokenNonceSize)...)
	forged := base64.RawURLEncoding.EncodeToString(append(body, grantTokenTag(key, body)...))
	if _, err := VerifyGrantToken(secret, forged); !errors.Is(err, ErrGrantTokenMalformed) {
		t.Fatalf("signed garbage: err %v", err)
	}
}

func TestGrantTokenWrongSecret(t *testing.T) {
	tok := mustSign(t, testSecret(7), sampleClaims())
	if _, err := VerifyGrantToken(testSecret(8), tok); !errors.Is(err, ErrGrantTokenForged) {
		t.Fatalf("other secret: err %v", err)
	}
	// The tag key is derived: a token tagged with the raw secret does not
	// verify.
	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	body := raw[:len(raw)-grantTokenTagSize]
	direct := base64.RawURLEncoding.EncodeToString(append(bytes.Clone(body), grantTokenTag(testSecret(7), body)...))
	if _, err := VerifyGrantToken(testSecret(7), direct); !errors.Is(err, ErrGrantTokenForged) {
		t.Fatalf("tag under the raw secret: err %v", err)
	}
	// Unusable secrets are the server's error, not the token's.
	for _, s := range [][]byte{nil, make([]byte, MinGrantTokenSecretSize-1)} {
		if _, err := SignGrantToken(s, sampleClaims()); err == nil {
			t.Fatalf("Sign with %d-byte secret succeeded", len(s))
		}
		_, err := VerifyGrantToken(s, tok)
		if err == nil || errors.Is(err, ErrGrantTokenMalformed) || errors.Is(err, ErrGrantTokenForged) {
			t.Fatalf("Verify with %d-byte secret: %v", len(s), err)
		}
	}
	if s := NewGrantTokenSecret(); len(s) != GrantTokenSecretSize || bytes.Equal(s, NewGrantTokenSecret()) {
		t.Fatal("NewGrantTokenSecret")
	}
}

func TestGrantTokenSizes(t *testing.T) {
	secret := testSecret(7)
	for name, tok := range map[string]string{
		"empty":     "",
		"short":     "AQ",
		"min-1":     strings.Repeat("A", base64.RawURLEncoding.EncodedLen(grantTokenMinRaw)-1),
		"oversize":  strings.Repeat("A", MaxGrantTokenLen+1),
		"huge":      strings.Repeat("A", 1<<20),
		"prefixed":  "A" + mustSign(t, secret, sampleClaims()),
		"padded":    mustSign(t, secret, sampleClaims()) + "=",
		"std-alpha": strings.ReplaceAll(strings.ReplaceAll(mustSign(t, secret, sampleClaims()), "-", "+"), "_", "/"),
	} {
		if _, err := VerifyGrantToken(secret, tok); !errors.Is(err, ErrGrantTokenMalformed) && !errors.Is(err, ErrGrantTokenForged) {
			t.Errorf("%s: err %v", name, err)
		}
	}
	if _, err := VerifyGrantToken(secret, strings.Repeat("A", MaxGrantTokenLen+1)); !errors.Is(err, ErrGrantTokenMalformed) {
		t.Errorf("oversize: %v", err)
	}

	// Largest claims AWS allows (ArnType 2048, GrantIdType 128,
	// PrincipalIdType 256, every GrantOperation) stay within the bound.
	ops := []string{"Decrypt", "Encrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "ReEncryptFrom",
		"ReEncryptTo", "Sign", "Verify", "GetPublicKey", "CreateGrant", "RetireGrant", "DescribeKey",
		"GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext", "GenerateMac", "VerifyMac", "DeriveSharedSecret"}
	big := GrantTokenClaims{
		KeyARN:            strings.Repeat("k", 2048),
		GrantID:           strings.Repeat("g", 128),
		GranteePrincipal:  strings.Repeat("p", 256),
		RetiringPrincipal: strings.Repeat("r", 256),
		Operations:        ops,
		CreationDate:      -1,
		SourceArn:         strings.Repeat("s", 2048),
	}
	tok := mustSign(t, secret, big)
	if len(tok) > MaxGrantTokenLen {
		t.Fatalf("max-size token has %d characters", len(tok))
	}
	if got, err := VerifyGrantToken(secret, tok); err != nil || got.SourceArn != big.SourceArn || len(got.Operations) != len(ops) {
		t.Fatalf("max-size token: %v", err)
	}
	t.Logf("max-size token: %d characters", len(tok))

	// Claims that cannot fit are refused at signing.
	over := big
	over.EncryptionContextSubset = map[string]string{"k": strings.Repeat("v", 4096)}
	if _, err := SignGrantToken(secret, over); !errors.Is(err, ErrGrantTokenTooLong) {
		t.Fatalf("oversize claims: %v", err)
	}
	field := GrantTokenClaims{KeyARN: strings.Repeat("k", 70000)}
	if _, err := SignGrantToken(secret, field); !errors.Is(err, ErrGrantTokenTooLong) {
		t.Fatalf("oversize field: %v", err)
	}
	bad := sampleClaims()
	bad.Nonce = []byte("short")
	if _, err := SignGrantToken(secret, bad); err == nil {
		t.Fatal("short nonce accepted")
	}
}

func TestGrantTokenErrorsCarryNoSecret(t *testing.T) {
	secret := []byte("a-very-recognisable-cluster-secret!")
	tok := mustSign(t, secret, sampleClaims())
	for _, bad := range []string{tok[:len(tok)-2] + "AA", "x", tok + "!"} {
		_, err := VerifyGrantToken(secret, bad)
		if err == nil || strings.Contains(err.Error(), string(secret)) || (len(bad) > 8 && strings.Contains(err.Error(), bad)) {
			t.Fatalf("error %v", err)
		}
	}
}

func BenchmarkVerifyGrantToken(b *testing.B) {
	secret := testSecret(7)
	tok := mustSign(b, secret, sampleClaims())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := VerifyGrantToken(secret, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzVerifyGrantToken: no input panics; every error is one of the two
// sentinels; anything that verifies is exactly what signing its claims
// gives (the encoding is canonical, so no second text verifies).
func FuzzVerifyGrantToken(f *testing.F) {
	secret := testSecret(7)
	tok, err := SignGrantToken(secret, sampleClaims())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tok)
	f.Add(tok[:len(tok)/2])
	f.Add("")
	f.Add(strings.Repeat("A", 98))
	f.Add(strings.Repeat("_", 200))
	empty, _ := SignGrantToken(secret, GrantTokenClaims{})
	f.Add(empty)
	f.Fuzz(func(t *testing.T, token string) {
		c, err := VerifyGrantToken(secret, token)
		if err != nil {
			if !errors.Is(err, ErrGrantTokenMalformed) && !errors.Is(err, ErrGrantTokenForged) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		again, err := SignGrantToken(secret, c)
		if err != nil || again != token {
			t.Fatalf("verified token %q is not canonical (%v)", token, err)
		}
	})
}
