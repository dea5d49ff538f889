package auth

import (
	"testing"
)

// BenchmarkVerify measures one verification of an SDK-signed GenerateMac
// request (seven signed headers, cached signing key), as a server sees it.
func BenchmarkVerify(b *testing.B) {
	r, body := signedGM(b)
	r.Header.Set("User-Agent", "aws-sdk-go-v2/1.47.7 os/linux lang/go#1.26 md/GOOS#linux md/GOARCH#amd64 api/kms#1.62.4")
	v := newTestVerifier(b, t0)
	if _, err := v.Verify(r, body); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := v.Verify(r, body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyParallel(b *testing.B) {
	r, body := signedGM(b)
	v := newTestVerifier(b, t0)
	if _, err := v.Verify(r, body); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(r, body); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkVerifyBadSignature is the cost of refusing a forged request for
// a known access key (derives the key each time: forged requests never
// enter the cache).
func BenchmarkVerifyBadSignature(b *testing.B) {
	req := kmsRequest(b, "kms.us-east-1.amazonaws.com", gmBody)
	sdkSign(b, req, gmBody, exampleAKID, "wrong", "", "kms", "us-east-1", t0)
	r, body := serverView(b, req)
	v := newTestVerifier(b, t0)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := v.Verify(r, body); err == nil {
			b.Fatal("verified")
		}
	}
}
