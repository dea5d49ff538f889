package engine

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex in test vector: %v", err)
	}
	return b
}

// rfc4231 holds RFC 4231 test cases 1, 2, 3, 4, 6 and 7 with full-length
// outputs (kms-api.md §7). Case 5 is omitted: the RFC only gives truncated
// output and KMS never truncates.
var rfc4231 = []struct {
	name string
	key  []byte
	data []byte
	want map[string]string // MAC algorithm -> hex
}{
	{
		name: "case1",
		key:  bytes.Repeat([]byte{0x0b}, 20),
		data: []byte("Hi There"),
		want: map[string]string{
			MacHMACSHA224: "896fb1128abbdf196832107cd49df33f47b4b1169912ba4f53684b22",
			MacHMACSHA256: "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
			MacHMACSHA384: "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59cfaea9ea9076ede7f4af152e8b2fa9cb6",
			MacHMACSHA512: "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854",
		},
	},
	{
		name: "case2",
		key:  []byte("Jefe"),
		data: []byte("what do ya want for nothing?"),
		want: map[string]string{
			MacHMACSHA224: "a30e01098bc6dbbf45690f3a7e9e6d0f8bbea2a39e6148008fd05e44",
			MacHMACSHA256: "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
			MacHMACSHA384: "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649",
			MacHMACSHA512: "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
		},
	},
	{
		name: "case3",
		key:  bytes.Repeat([]byte{0xaa}, 20),
		data: bytes.Repeat([]byte{0xdd}, 50),
		want: map[string]string{
			MacHMACSHA224: "7fb3cb3588c6c1f6ffa9694d7d6ad2649365b0c1f65d69d1ec8333ea",
			MacHMACSHA256: "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
			MacHMACSHA384: "88062608d3e6ad8a0aa2ace014c8a86f0aa635d947ac9febe83ef4e55966144b2a5ab39dc13814b94e3ab6e101a34f27",
			MacHMACSHA512: "fa73b0089d56a284efb0f0756c890be9b1b5dbdd8ee81a3655f83e33b2279d39bf3e848279a722c806b485a47e67c807b946a337bee8942674278859e13292fb",
		},
	},
	{
		name: "case4",
		key:  []byte{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19},
		data: bytes.Repeat([]byte{0xcd}, 50),
		want: map[string]string{
			MacHMACSHA224: "6c11506874013cac6a2abc1bb382627cec6a90d86efc012de7afec5a",
			MacHMACSHA256: "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
			MacHMACSHA384: "3e8a69b7783c25851933ab6290af6ca77a9981480850009cc5577c6e1f573b4e6801dd23c4a7d679ccf8a386c674cffb",
			MacHMACSHA512: "b0ba465637458c6990e5a8c5f61d4af7e576d97ff94b872de76f8050361ee3dba91ca5c11aa25eb4d679275cc5788063a5f19741120c4f2de2adebeb10a298dd",
		},
	},
	{
		name: "case6",
		key:  bytes.Repeat([]byte{0xaa}, 131),
		data: []byte("Test Using Larger Than Block-Size Key - Hash Key First"),
		want: map[string]string{
			MacHMACSHA224: "95e9a0db962095adaebe9b2d6f0dbce2d499f112f2d2b7273fa6870e",
			MacHMACSHA256: "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
			MacHMACSHA384: "4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c60c2ef6ab4030fe8296248df163f44952",
			MacHMACSHA512: "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f3526b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598",
		},
	},
	{
		name: "case7",
		key:  bytes.Repeat([]byte{0xaa}, 131),
		data: []byte("This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm."),
		want: map[string]string{
			MacHMACSHA224: "3a854166ac5d9f023f54d517d0b39dbd946770db9c2b95c9f6f565d1",
			MacHMACSHA256: "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
			MacHMACSHA384: "6617178e941f020d351e2f254e8fd32c602420feb0b8fb9adccebb82461e99c5a678cc31e799176d3860e6110c46523e",
			MacHMACSHA512: "e37b6a775dc87dbaa4dfa9f96e5e3ffddebd71f8867289865df5a32d20cdc944b6022cac3c4982b10d5eeb55c3e4de15134676fb6de0446065c97440fa8c6a58",
		},
	},
}

func TestRFC4231(t *testing.T) {
	for _, tc := range rfc4231 {
		if len(tc.want) != len(MacAlgorithms) {
			t.Fatalf("%s: vector table covers %d algorithms, want %d", tc.name, len(tc.want), len(MacAlgorithms))
		}
		for _, alg := range MacAlgorithms {
			t.Run(tc.name+"/"+alg, func(t *testing.T) {
				want := unhex(t, tc.want[alg])
				got, err := MAC(alg, tc.key, tc.data)
				if err != nil {
					t.Fatalf("MAC: %v", err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("MAC = %x, want %x", got, want)
				}
				ok, err := VerifyMAC(alg, tc.key, tc.data, want)
				if err != nil || !ok {
					t.Fatalf("VerifyMAC(correct) = %v, %v; want true, nil", ok, err)
				}
			})
		}
	}
}

// TestInRangeVectors uses the supplementary vectors of kms-api.md §7 whose
// keys are inside the importable length ranges: key = 0x00..N-1, data = "what
// do ya want for nothing?".
func TestInRangeVectors(t *testing.T) {
	data := []byte("what do ya want for nothing?")
	cases := []struct {
		spec string
		n    int
		want string
	}{
		{KeySpecHMAC224, 28, "bf43ffd96fc2324eebe3f097b440ad68045a11c24ae6e1b288531dab"},
		{KeySpecHMAC224, 64, "f8ad08ef3ed0b456e49e920b1a2f3e6b33482455215582aae9fd786f"},
		{KeySpecHMAC256, 32, "099805f4ac310786968565c098db515cc50862b420ae31e20238312344bed36a"},
		{KeySpecHMAC256, 64, "5431cc41830bee7889a6b5d04b33877387ea9b8170759f4dca4323cfb5725508"},
		{KeySpecHMAC384, 48, "822101068661a631a5bc51aa6bd788bfa7f96480291d0449f95bde86d684652a7b39c9410d114487fdc8f7a246714e42"},
		{KeySpecHMAC384, 128, "c9c29fca7348d7199b42f78b7556c31325552abfb330e72ed240145ba451a69254ef2a967136ecea77803262f2d00494"},
		{KeySpecHMAC512, 64, "a4e4293ad3d01934e3485a2e4b5d4d4b21eee4105f5774e35dafb3d53c6d885e47134b39a81705c0af381c23be19b9c7d63cd25fca21dcbddeb242210629f646"},
		{KeySpecHMAC512, 128, "45a2353553c24eb6dc843fa22df01bec0a487ca3c7fe017d2d7bec8e7714686d2d9ab5a2817902eac0a6a50bcc8265f00308b8258c903c2ec7f7e4305d546cf4"},
	}
	for _, tc := range cases {
		key := make([]byte, tc.n)
		for i := range key {
			key[i] = byte(i)
		}
		lo, hi := ImportLengthRange(tc.spec)
		if tc.n < lo || tc.n > hi {
			t.Errorf("%s: %d-byte key outside ImportLengthRange %d..%d", tc.spec, tc.n, lo, hi)
		}
		alg, ok := MacAlgorithmForSpec(tc.spec)
		if !ok {
			t.Fatalf("no algorithm for %s", tc.spec)
		}
		got, err := MAC(alg, key, data)
		if err != nil {
			t.Fatal(err)
		}
		if want := unhex(t, tc.want); !bytes.Equal(got, want) {
			t.Errorf("%s/%d: MAC = %x, want %x", tc.spec, tc.n, got, want)
		}
	}
}

func TestVerifyMAC(t *testing.T) {
	key := []byte("Jefe")
	msg := []byte("what do ya want for nothing?")
	good := unhex(t, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")

	if ok, err := VerifyMAC(MacHMACSHA256, key, msg, good); !ok || err != nil {
		t.Errorf("correct mac: got %v, %v", ok, err)
	}
	bad := bytes.Clone(good)
	bad[len(bad)-1] ^= 1
	if ok, err := VerifyMAC(MacHMACSHA256, key, msg, bad); ok || err != nil {
		t.Errorf("flipped bit: got %v, %v; want false, nil", ok, err)
	}
	if ok, err := VerifyMAC(MacHMACSHA256, key, []byte("other message"), good); ok || err != nil {
		t.Errorf("other message: got %v, %v; want false, nil", ok, err)
	}
	for _, m := range [][]byte{nil, good[:16], append(bytes.Clone(good), 0)} {
		if ok, err := VerifyMAC(MacHMACSHA256, key, msg, m); ok || err != nil {
			t.Errorf("mac of length %d: got %v, %v; want false, nil", len(m), ok, err)
		}
	}
	// The right bytes under the wrong algorithm do not verify.
	if ok, err := VerifyMAC(MacHMACSHA512, key, msg, good); ok || err != nil {
		t.Errorf("wrong algorithm: got %v, %v; want false, nil", ok, err)
	}
	if _, err := VerifyMAC("HMAC_SHA_1", key, msg, good); !errors.Is(err, ErrUnknownAlgorithm) {
		t.Errorf("unknown algorithm: err = %v, want ErrUnknownAlgorithm", err)
	}
	if _, err := MAC("", key, msg); !errors.Is(err, ErrUnknownAlgorithm) {
		t.Errorf("MAC unknown algorithm: err = %v, want ErrUnknownAlgorithm", err)
	}
}

func TestSpecsAndAlgorithms(t *testing.T) {
	wantLen := map[string]int{KeySpecHMAC224: 28, KeySpecHMAC256: 32, KeySpecHMAC384: 48, KeySpecHMAC512: 64}
	if len(KeySpecs) != 4 || len(MacAlgorithms) != 4 {
		t.Fatalf("KeySpecs=%v MacAlgorithms=%v", KeySpecs, MacAlgorithms)
	}
	for i, spec := range KeySpecs {
		alg, ok := MacAlgorithmForSpec(spec)
		if !ok || alg != MacAlgorithms[i] {
			t.Errorf("MacAlgorithmForSpec(%s) = %q, %v; want %q", spec, alg, ok, MacAlgorithms[i])
		}
		m1, err := GenerateKeyMaterial(spec)
		if err != nil {
			t.Fatal(err)
		}
		m2, _ := GenerateKeyMaterial(spec)
		if len(m1) != wantLen[spec] || bytes.Equal(m1, m2) {
			t.Errorf("GenerateKeyMaterial(%s): len %d (want %d), repeated=%v", spec, len(m1), wantLen[spec], bytes.Equal(m1, m2))
		}
		mac, err := MAC(alg, m1, []byte("x"))
		if err != nil || len(mac) != wantLen[spec] {
			t.Errorf("MAC(%s) len %d err %v", alg, len(mac), err)
		}
	}
	if _, ok := MacAlgorithmForSpec("SYMMETRIC_DEFAULT"); ok {
		t.Error("MacAlgorithmForSpec accepted SYMMETRIC_DEFAULT")
	}
	if _, err := GenerateKeyMaterial("RSA_2048"); !errors.Is(err, ErrUnknownKeySpec) {
		t.Errorf("GenerateKeyMaterial(RSA_2048) err = %v", err)
	}
	ranges := map[string][2]int{KeySpecHMAC224: {28, 64}, KeySpecHMAC256: {32, 64}, KeySpecHMAC384: {48, 128}, KeySpecHMAC512: {64, 128}, "nope": {0, 0}}
	for spec, want := range ranges {
		if lo, hi := ImportLengthRange(spec); lo != want[0] || hi != want[1] {
			t.Errorf("ImportLengthRange(%s) = %d..%d, want %d..%d", spec, lo, hi, want[0], want[1])
		}
	}
}

func TestRandomBytes(t *testing.T) {
	a, err := RandomBytes(32)
	if err != nil || len(a) != 32 {
		t.Fatalf("RandomBytes(32) = %d bytes, %v", len(a), err)
	}
	b, _ := RandomBytes(32)
	if bytes.Equal(a, b) {
		t.Error("two RandomBytes calls returned the same bytes")
	}
	if z, err := RandomBytes(0); err != nil || len(z) != 0 {
		t.Errorf("RandomBytes(0) = %v, %v", z, err)
	}
	if _, err := RandomBytes(-1); err == nil {
		t.Error("RandomBytes(-1) succeeded")
	}
}

func BenchmarkMAC(b *testing.B) {
	msg := bytes.Repeat([]byte("m"), 256)
	for _, alg := range MacAlgorithms {
		key := make([]byte, 64)
		b.Run(alg, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				if _, err := MAC(alg, key, msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerifyMAC(b *testing.B) {
	msg := bytes.Repeat([]byte("m"), 256)
	key := make([]byte, 32)
	mac, _ := MAC(MacHMACSHA256, key, msg)
	b.ReportAllocs()
	for b.Loop() {
		if ok, _ := VerifyMAC(MacHMACSHA256, key, msg, mac); !ok {
			b.Fatal("mac did not verify")
		}
	}
}
