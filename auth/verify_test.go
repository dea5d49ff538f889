package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// suiteTime is the signing time of AWS's SigV4 test suite.
var suiteTime = time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC)

// TestDeriveKeyAWSExample checks the key derivation against the example in
// AWS's SigV4 documentation ("derive a signing key", IAM, 20120215).
func TestDeriveKeyAWSExample(t *testing.T) {
	const want = "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
	if got := refHex(deriveKey(exampleSecret, "20120215", "us-east-1", "iam")); got != want {
		t.Errorf("deriveKey = %s, want %s", got, want)
	}
	if got := refHex(refSigningKey(exampleSecret, "20120215", "us-east-1", "iam")); got != want {
		t.Errorf("reference derivation = %s, want %s", got, want)
	}
}

// TestAWSTestSuite verifies requests of AWS's published SigV4 test suite
// (service "service", us-east-1, 20150830T123600Z) with their published
// signatures.
func TestAWSTestSuite(t *testing.T) {
	const head = "Host:example.amazonaws.com\nX-Amz-Date:20150830T123600Z\n"
	auth := func(signed, sig string) string {
		return "Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=" +
			signed + ", Signature=" + sig + "\n"
	}
	cases := []struct {
		name, raw string
	}{
		{"get-vanilla", "GET / HTTP/1.1\n" + head +
			auth("host;x-amz-date", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31") + "\n"},
		{"post-vanilla", "POST / HTTP/1.1\n" + head +
			auth("host;x-amz-date", "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b") + "\n"},
		{"get-vanilla-query-order-key-case", "GET /?Param2=value2&Param1=value1 HTTP/1.1\n" + head +
			auth("host;x-amz-date", "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500") + "\n"},
		{"get-header-value-trim", "GET / HTTP/1.1\n" + head +
			"My-Header1: value1\nMy-Header2:    \"a   b   c\"  \n" +
			auth("host;my-header1;my-header2;x-amz-date", "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736") + "\n"},
	}
	v := NewVerifier(testCreds(t), VerifierOptions{Service: "service", Now: clockAt(suiteTime)})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, body := parseRaw(t, tc.raw)
			id, err := v.Verify(r, body)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if id.Region != "us-east-1" || id.AccessKeyID != exampleAKID || id.Principal.ARN != "arn:aws:iam::111122223333:user/alice" ||
				!id.Time.Equal(suiteTime) {
				t.Errorf("identity = %+v", id)
			}
		})
	}
}

// TestKMSKnownAnswer is a KMS-shaped vector in the test-suite style: the
// canonical request is written out, the signature computed independently
// (and fixed as hex), and the AWS SDK signer must agree with both.
func TestKMSKnownAnswer(t *testing.T) {
	const (
		amzDate   = "20150830T123600Z"
		canonical = "POST\n/\n\n" +
			"content-type:application/x-amz-json-1.1\n" +
			"host:kms.us-east-1.amazonaws.com\n" +
			"x-amz-date:20150830T123600Z\n" +
			"x-amz-target:TrentService.GenerateMac\n" +
			"\n" +
			"content-type;host;x-amz-date;x-amz-target\n" +
			"5fd1fa907bd66681196cb020807732829a6728e29ba481eac8cba2d7b46a798f"
		wantBodyHash      = "5fd1fa907bd66681196cb020807732829a6728e29ba481eac8cba2d7b46a798f"
		wantCanonicalHash = "f0969565249e081922ea891ba7bd43b984464de601b6fe5b547ae03abffda622"
		wantSignature     = "1fe518808417d45eac3b8700a8d080c338f75a83f03f21f37118491e217a1cba"
	)
	if got := payloadHash(gmBody); got != wantBodyHash {
		t.Fatalf("body hash = %s, want %s", got, wantBodyHash)
	}
	if got := refSHA(canonical); got != wantCanonicalHash {
		t.Fatalf("canonical request hash = %s, want %s", got, wantCanonicalHash)
	}
	if got := refSignature(exampleSecret, amzDate, "us-east-1", "kms", canonical); got != wantSignature {
		t.Fatalf("reference signature = %s, want %s", got, wantSignature)
	}

	// The AWS SDK signer produces the same signature for the same request
	// (no Content-Length, so the signed set is exactly the four headers).
	req, _ := http.NewRequest(http.MethodPost, "https://kms.us-east-1.amazonaws.com/", nil)
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "TrentService.GenerateMac")
	sdkSign(t, req, gmBody, exampleAKID, exampleSecret, "", "kms", "us-east-1", suiteTime)
	wantAuth := "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/kms/aws4_request, " +
		"SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=" + wantSignature
	if got := req.Header.Get("Authorization"); got != wantAuth {
		t.Fatalf("SDK Authorization = %q\nwant               %q", got, wantAuth)
	}

	raw := "POST / HTTP/1.1\n" +
		"Host: kms.us-east-1.amazonaws.com\n" +
		"Content-Type: application/x-amz-json-1.1\n" +
		"X-Amz-Date: " + amzDate + "\n" +
		"X-Amz-Target: TrentService.GenerateMac\n" +
		"Authorization: " + wantAuth + "\n" +
		fmt.Sprintf("Content-Length: %d\n", len(gmBody)) +
		"\n" + gmBody
	r, body := parseRaw(t, raw)
	v := newTestVerifier(t, suiteTime.Add(3*time.Minute))
	id, err := v.Verify(r, body)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if id.Region != "us-east-1" || id.Principal.AccountID != "111122223333" {
		t.Errorf("identity = %+v", id)
	}
	// One changed byte of the body breaks it.
	if _, err := v.Verify(r, []byte(strings.Replace(gmBody, "HMAC_SHA_256", "HMAC_SHA_384", 1))); err == nil {
		t.Error("a tampered body verified")
	}
}

// TestVerifySDKSigned verifies requests signed by the SDK signer in
// several regions, for a plain and a session-token principal, with both
// separators SDKs use in the Authorization header.
func TestVerifySDKSigned(t *testing.T) {
	v := newTestVerifier(t, t0)
	for _, region := range []string{"us-east-1", "eu-west-2", "ap-southeast-1", "us-gov-west-1"} {
		for _, who := range []struct{ akid, secret, token, arn string }{
			{exampleAKID, exampleSecret, "", "arn:aws:iam::111122223333:user/alice"},
			{bobAKID, bobSecret, bobToken, "arn:aws:iam::444455556666:role/bob"},
		} {
			req := kmsRequest(t, "kms."+region+".amazonaws.com", gmBody)
			sdkSign(t, req, gmBody, who.akid, who.secret, who.token, "kms", region, t0)
			r, body := serverView(t, req)
			for _, sep := range []string{", ", ","} {
				r.Header.Set("Authorization", strings.ReplaceAll(req.Header.Get("Authorization"), ", ", sep))
				id, err := v.Verify(r, body)
				if err != nil {
					t.Fatalf("%s %s sep %q: %v", region, who.akid, sep, err)
				}
				if id.Region != region || id.AccessKeyID != who.akid || id.Principal.ARN != who.arn {
					t.Errorf("identity = %+v", id)
				}
			}
		}
	}
}

// rewriteAuth replaces old with new in the Authorization header.
func rewriteAuth(old, new string) func(*http.Request) {
	return func(r *http.Request) {
		r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), old, new, 1))
	}
}

func TestVerifyFailures(t *testing.T) {
	base := func(t *testing.T) (*http.Request, []byte) { return signedGM(t) }
	type tc struct {
		name string
		// build returns the request and body to verify (default: base).
		build func(t *testing.T) (*http.Request, []byte)
		// mutate changes the (server-side) request before verification.
		mutate func(r *http.Request)
		body   string // replaces the body when set
		now    time.Time
		code   string // "" = must succeed
		msg    string
		exact  bool
	}
	sdk := func(region, service, akid, secret, token string, at time.Time, pre func(*http.Request)) func(t *testing.T) (*http.Request, []byte) {
		return func(t *testing.T) (*http.Request, []byte) {
			req := kmsRequest(t, "kms."+region+".amazonaws.com", gmBody)
			if pre != nil {
				pre(req)
			}
			sdkSign(t, req, gmBody, akid, secret, token, service, region, at)
			return serverView(t, req)
		}
	}
	const wrongSig = "The request signature we calculated does not match the signature you provided. " +
		"Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
	cases := []tc{
		{name: "baseline"},
		{name: "missing Authorization", mutate: func(r *http.Request) { r.Header.Del("Authorization") },
			code: CodeMissingAuthenticationToken, msg: "Request is missing Authentication Token", exact: true},
		{name: "empty Authorization", mutate: func(r *http.Request) { r.Header.Set("Authorization", "") },
			code: CodeMissingAuthenticationToken, msg: "Request is missing Authentication Token", exact: true},
		{name: "two Authorization headers", mutate: func(r *http.Request) { r.Header.Add("Authorization", r.Header.Get("Authorization")) },
			code: CodeIncompleteSignature, msg: "exactly one Authorization header"},
		{name: "no Credential", mutate: func(r *http.Request) {
			a := r.Header.Get("Authorization")
			i, j := strings.Index(a, "Credential="), strings.Index(a, "SignedHeaders=")
			r.Header.Set("Authorization", a[:i]+a[j:])
		}, code: CodeIncompleteSignature, msg: "Authorization header requires 'Credential' parameter. Authorization=AWS4-HMAC-SHA256 SignedHeaders="},
		{name: "no SignedHeaders", mutate: func(r *http.Request) {
			a := r.Header.Get("Authorization")
			i, j := strings.Index(a, "SignedHeaders="), strings.Index(a, "Signature=")
			r.Header.Set("Authorization", a[:i]+a[j:])
		}, code: CodeIncompleteSignature, msg: "Authorization header requires 'SignedHeaders' parameter. Authorization="},
		{name: "no Signature", mutate: func(r *http.Request) {
			a := r.Header.Get("Authorization")
			r.Header.Set("Authorization", a[:strings.Index(a, ", Signature=")])
		}, code: CodeIncompleteSignature, msg: "Authorization header requires 'Signature' parameter. Authorization="},
		{name: "algorithm only", mutate: func(r *http.Request) { r.Header.Set("Authorization", "AWS4-HMAC-SHA256") },
			code: CodeIncompleteSignature, exact: true,
			msg: "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. " +
				"Authorization header requires 'SignedHeaders' parameter. Authorization=AWS4-HMAC-SHA256"},
		{name: "not SigV4 and no date", mutate: func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer abc.def")
			r.Header.Del("X-Amz-Date")
		}, code: CodeIncompleteSignature, exact: true,
			msg: "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. " +
				"Authorization header requires 'SignedHeaders' parameter. Authorization header requires existence of either a " +
				"'X-Amz-Date' or a 'Date' header. Authorization=Bearer abc.def"},
		{name: "no date header", mutate: func(r *http.Request) { r.Header.Del("X-Amz-Date") },
			code: CodeIncompleteSignature, msg: "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=AWS4-HMAC-SHA256 Credential="},
		{name: "SigV4a", mutate: func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256", 1))
		}, code: CodeIncompleteSignature, msg: "Unsupported AWS 'algorithm': 'AWS4-ECDSA-P256-SHA256'"},
		{name: "space inside the credential", mutate: rewriteAuth("AKIDEXAMPLE/", "AKIDEXAMPLE /"),
			code: CodeIncompleteSignature, msg: "'/20250101/us-east-1/kms/aws4_request' not a valid key=value pair (missing equal-sign) in Authorization header: 'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE /20250101"},
		{name: "credential with 4 elements", mutate: rewriteAuth("/kms/aws4_request", "/kms"),
			code: CodeIncompleteSignature, exact: true,
			msg: "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got 'AKIDEXAMPLE/20250101/us-east-1/kms'"},
		{name: "credential with 6 elements", mutate: rewriteAuth("/aws4_request", "/aws4_request/x"),
			code: CodeIncompleteSignature, msg: "exactly 5 slash-delimited elements"},
		{name: "empty access key", mutate: rewriteAuth("AKIDEXAMPLE/", "/"),
			code: CodeIncompleteSignature, msg: "exactly 5 slash-delimited elements"},
		{name: "unknown access key", mutate: rewriteAuth("AKIDEXAMPLE/", "AKIDUNKNOWN/"),
			code: CodeUnrecognizedClient, msg: "The security token included in the request is invalid.", exact: true},
		{name: "wrong secret", build: sdk("us-east-1", "kms", exampleAKID, "not-the-secret", "", t0, nil),
			code: CodeInvalidSignature, msg: wrongSig, exact: true},
		{name: "tampered body", body: strings.Replace(gmBody, "rfc4231", "rfc4232", 1),
			code: CodeInvalidSignature, msg: wrongSig, exact: true},
		{name: "empty body", body: " ", code: CodeInvalidSignature, msg: wrongSig, exact: true},
		{name: "signed header changed (x-amz-target)", mutate: func(r *http.Request) { r.Header.Set("X-Amz-Target", "TrentService.VerifyMac") },
			code: CodeInvalidSignature, msg: wrongSig, exact: true},
		{name: "signed header removed (content-type)", mutate: func(r *http.Request) { r.Header.Del("Content-Type") },
			code: CodeInvalidSignature, msg: wrongSig, exact: true},
		{name: "signed header duplicated", mutate: func(r *http.Request) { r.Header.Add("X-Amz-Target", "TrentService.GenerateMac") },
			code: CodeInvalidSignature, msg: wrongSig, exact: true},
		{name: "host changed", mutate: func(r *http.Request) { r.Host = "kms.us-west-2.amazonaws.com" },
			code: CodeInvalidSignature, msg: wrongSig, exact: true},
		{name: "method changed", mutate: func(r *http.Request) { r.Method = http.MethodPut },
			code: CodeInvalidSignature, msg: wrongSig, exact: true},
		{name: "path changed", mutate: func(r *http.Request) { r.URL.Path = "/x" },
			code: CodeInvalidSignature, msg: wrongSig, exact: true},
		{name: "query added", mutate: func(r *http.Request) { r.URL.RawQuery = "a=b" },
			code: CodeInvalidSignature, msg: wrongSig, exact: true},
		{name: "signed-header list reordered", mutate: rewriteAuth("content-length;content-type", "content-type;content-length"),
			code: CodeInvalidSignature, msg: wrongSig, exact: true},
		{name: "unsigned header changed (User-Agent)", mutate: func(r *http.Request) { r.Header.Set("User-Agent", "evil/1.0") }},
		{name: "unsigned header added", mutate: func(r *http.Request) { r.Header.Set("X-Extra", "1") }},
		{name: "x-amz-target not signed but changed", build: func(t *testing.T) (*http.Request, []byte) {
			// A client that signs only host and x-amz-date: x-amz-target is
			// then not protected (its value may change) - but if it was
			// signed, changing it fails (case above).
			r, body := parseRaw(t, "POST / HTTP/1.1\nHost: kms.us-east-1.amazonaws.com\nX-Amz-Date: 20250101T000000Z\n"+
				"X-Amz-Target: TrentService.GenerateMac\nAuthorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/us-east-1/kms/aws4_request, "+
				"SignedHeaders=host;x-amz-date, Signature="+refSignature(exampleSecret, "20250101T000000Z", "us-east-1", "kms",
				"POST\n/\n\nhost:kms.us-east-1.amazonaws.com\nx-amz-date:20250101T000000Z\n\nhost;x-amz-date\n"+payloadHash(gmBody))+
				fmt.Sprintf("\nContent-Length: %d\n\n", len(gmBody))+gmBody)
			return r, body
		}, mutate: func(r *http.Request) { r.Header.Set("X-Amz-Target", "TrentService.ListKeys") }},
		{name: "host not signed", mutate: rewriteAuth(";host;", ";"),
			code: CodeIncompleteSignature, msg: "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.", exact: true},
		{name: "empty signed-header list", mutate: func(r *http.Request) {
			a := r.Header.Get("Authorization")
			i, j := strings.Index(a, "SignedHeaders="), strings.Index(a, ", Signature=")
			r.Header.Set("Authorization", a[:i]+"SignedHeaders="+a[j:])
		}, code: CodeIncompleteSignature, msg: "'Host' or ':authority' must be a 'SignedHeader'"},
		{name: "wrong service", build: sdk("us-east-1", "s3", exampleAKID, exampleSecret, "", t0, nil),
			code: CodeInvalidSignature, msg: "Credential should be scoped to correct service: 'kms'.", exact: true},
		{name: "wrong terminator", mutate: rewriteAuth("/aws4_request", "/aws4_requests"),
			code: CodeInvalidSignature, msg: "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws4_requests'.", exact: true},
		{name: "invalid region", mutate: rewriteAuth("/us-east-1/", "/US_EAST_1/"),
			code: CodeInvalidSignature, msg: "Credential should be scoped to a valid region, not 'US_EAST_1'.", exact: true},
		{name: "scope date differs from X-Amz-Date", mutate: rewriteAuth("/20250101/", "/20241231/"),
			code: CodeInvalidSignature, exact: true,
			msg: "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20241231' != '20250101', from '20250101T000000Z'."},
		{name: "X-Amz-Date malformed", mutate: func(r *http.Request) { r.Header.Set("X-Amz-Date", "2025-01-01T00:00:00Z") },
			code: CodeIncompleteSignature, msg: "Date must be in ISO-8601 'basic format'. Got '2025-01-01T00:00:00Z'."},
		{name: "X-Amz-Date impossible day", mutate: func(r *http.Request) { r.Header.Set("X-Amz-Date", "20250230T000000Z") },
			code: CodeIncompleteSignature, msg: "Date must be in ISO-8601 'basic format'"},
		{name: "X-Amz-Date changed within the same day", mutate: func(r *http.Request) { r.Header.Set("X-Amz-Date", "20250101T000001Z") },
			code: CodeInvalidSignature, msg: wrongSig, exact: true},
		{name: "skew: exactly 15 min late", now: t0.Add(15 * time.Minute)},
		{name: "skew: 15 min 1 s late", now: t0.Add(15*time.Minute + time.Second), code: CodeInvalidSignature, exact: true,
			msg: "Signature expired: 20250101T000000Z is now earlier than 20250101T000001Z (20250101T001501Z - 15 min.)"},
		{name: "skew: a day late", now: t0.Add(24 * time.Hour), code: CodeInvalidSignature, msg: "Signature expired: 20250101T000000Z"},
		{name: "skew: exactly 15 min early", now: t0.Add(-15 * time.Minute)},
		{name: "skew: 15 min 1 s early", now: t0.Add(-15*time.Minute - time.Second), code: CodeInvalidSignature, exact: true,
			msg: "Signature not yet current: 20250101T000000Z is still later than 20241231T235959Z (20241231T234459Z + 15 min.)"},
		{name: "session token ok", build: sdk("us-east-1", "kms", bobAKID, bobSecret, bobToken, t0, nil)},
		{name: "session token missing", build: sdk("us-east-1", "kms", bobAKID, bobSecret, "", t0, nil),
			code: CodeUnrecognizedClient, msg: "The security token included in the request is invalid.", exact: true},
		{name: "session token removed after signing", build: sdk("us-east-1", "kms", bobAKID, bobSecret, bobToken, t0, nil),
			mutate: func(r *http.Request) { r.Header.Del("X-Amz-Security-Token") },
			code:   CodeUnrecognizedClient, msg: "The security token included in the request is invalid.", exact: true},
		{name: "session token wrong", build: sdk("us-east-1", "kms", bobAKID, bobSecret, bobToken+"x", t0, nil),
			code: CodeUnrecognizedClient, msg: "The security token included in the request is invalid.", exact: true},
		{name: "session token not signed", build: sdk("us-east-1", "kms", bobAKID, bobSecret, "", t0, nil),
			mutate: func(r *http.Request) { r.Header.Set("X-Amz-Security-Token", bobToken) },
			code:   CodeIncompleteSignature, msg: "'X-Amz-Security-Token' must be a 'SignedHeader' in the AWS Authorization.", exact: true},
		{name: "session token unexpected", build: sdk("us-east-1", "kms", exampleAKID, exampleSecret, "some-token", t0, nil),
			code: CodeUnrecognizedClient, msg: "The security token included in the request is invalid.", exact: true},
		{name: "presigned URL", build: func(t *testing.T) (*http.Request, []byte) {
			req := kmsRequest(t, "kms.us-east-1.amazonaws.com", gmBody)
			u, _, err := v4.NewSigner().PresignHTTP(context.Background(), aws.Credentials{AccessKeyID: exampleAKID, SecretAccessKey: exampleSecret},
				req, payloadHash(gmBody), "kms", "us-east-1", t0)
			if err != nil {
				t.Fatal(err)
			}
			r, body := parseRaw(t, "POST "+strings.TrimPrefix(u, "https://kms.us-east-1.amazonaws.com")+" HTTP/1.1\nHost: kms.us-east-1.amazonaws.com\n"+
				fmt.Sprintf("Content-Length: %d\n\n", len(gmBody))+gmBody)
			if r.URL.Query().Get("X-Amz-Signature") == "" {
				t.Fatalf("presigned URL %q has no X-Amz-Signature", u)
			}
			return r, body
		}, code: CodeIncompleteSignature, msg: "presigned URL"},
		{name: "presigned query next to a valid header", mutate: func(r *http.Request) {
			r.URL.RawQuery = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=00"
		}, code: CodeIncompleteSignature, msg: "presigned URL"},
		{name: "x-amz-content-sha256 matching", build: sdk("us-east-1", "kms", exampleAKID, exampleSecret, "", t0,
			func(r *http.Request) { r.Header.Set("X-Amz-Content-Sha256", payloadHash(gmBody)) })},
		{name: "x-amz-content-sha256 not matching the body", build: sdk("us-east-1", "kms", exampleAKID, exampleSecret, "", t0,
			func(r *http.Request) { r.Header.Set("X-Amz-Content-Sha256", payloadHash("{}")) }),
			code: CodeInvalidSignature, msg: "The provided 'x-amz-content-sha256' header does not match what was computed."},
		{name: "x-amz-content-sha256 UNSIGNED-PAYLOAD", build: sdk("us-east-1", "kms", exampleAKID, exampleSecret, "", t0,
			func(r *http.Request) { r.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD") }),
			code: CodeInvalidSignature, msg: "x-amz-content-sha256"},
		{name: "signature not hex", mutate: func(r *http.Request) {
			a := r.Header.Get("Authorization")
			r.Header.Set("Authorization", a[:len(a)-64]+strings.Repeat("z", 64))
		}, code: CodeInvalidSignature, msg: wrongSig, exact: true},
		{name: "signature too short", mutate: func(r *http.Request) {
			a := r.Header.Get("Authorization")
			r.Header.Set("Authorization", a[:len(a)-2])
		}, code: CodeInvalidSignature, msg: wrongSig, exact: true},
		{name: "signature upper-case hex", mutate: func(r *http.Request) {
			a := r.Header.Get("Authorization")
			r.Header.Set("Authorization", a[:len(a)-64]+strings.ToUpper(a[len(a)-64:]))
		}},
		{name: "signature one bit off", mutate: func(r *http.Request) {
			a := r.Header.Get("Authorization")
			last := a[len(a)-1]
			repl := byte('0')
			if last == '0' {
				repl = '1'
			}
			r.Header.Set("Authorization", a[:len(a)-1]+string(repl))
		}, code: CodeInvalidSignature, msg: wrongSig, exact: true},
		{name: "Date header instead of X-Amz-Date (botocore style)", build: func(t *testing.T) (*http.Request, []byte) {
			const amz = "20250101T000000Z"
			date := t0.Format(http.TimeFormat)
			canonical := "POST\n/\n\ncontent-type:application/x-amz-json-1.1\ndate:" + date + "\nhost:kms.us-east-1.amazonaws.com\n" +
				"x-amz-target:TrentService.GenerateMac\n\ncontent-type;date;host;x-amz-target\n" + payloadHash(gmBody)
			sig := refSignature(exampleSecret, amz, "us-east-1", "kms", canonical)
			return parseRaw(t, "POST / HTTP/1.1\nHost: kms.us-east-1.amazonaws.com\nContent-Type: application/x-amz-json-1.1\n"+
				"Date: "+date+"\nX-Amz-Target: TrentService.GenerateMac\n"+
				"Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/us-east-1/kms/aws4_request,SignedHeaders=content-type;date;host;x-amz-target,Signature="+sig+"\n"+
				fmt.Sprintf("Content-Length: %d\n\n", len(gmBody))+gmBody)
		}},
		{name: "Date header malformed", mutate: func(r *http.Request) {
			r.Header.Del("X-Amz-Date")
			r.Header.Set("Date", "yesterday")
		}, code: CodeIncompleteSignature, msg: "Date must be in ISO-8601 'basic format'. Got 'yesterday'."},
		{name: "huge garbage header is echoed truncated", mutate: func(r *http.Request) {
			r.Header.Set("Authorization", "AWS4-HMAC-SHA256 "+strings.Repeat("x", 5000))
		}, code: CodeIncompleteSignature, msg: "not a valid key=value pair"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			build := c.build
			if build == nil {
				build = base
			}
			r, body := build(t)
			if c.mutate != nil {
				c.mutate(r)
			}
			if c.body != "" {
				body = []byte(c.body)
			}
			now := c.now
			if now.IsZero() {
				now = t0.Add(30 * time.Second)
			}
			v := newTestVerifier(t, now)
			id, err := v.Verify(r, body)
			if c.code == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if id == nil || id.Principal == nil || id.Region != "us-east-1" {
					t.Fatalf("identity = %+v", id)
				}
				return
			}
			checkErr(t, r, err, c.code, c.msg, c.exact)
			if id != nil {
				t.Errorf("identity %+v returned with an error", id)
			}
			if e := (*Error)(nil); !errors.As(err, &e) || len(e.Message) > 2*maxEcho+600 {
				t.Errorf("error message too long (%d bytes)", len(e.Message))
			}
		})
	}
}

// TestVerifyRealServer sends SDK-signed requests over a real net/http
// server: what a handler sees (Content-Length, Host, header casing) must
// verify.
func TestVerifyRealServer(t *testing.T) {
	// Covered with the full SDK client in sdk_test.go; this checks the
	// plain signer + http.Client path with odd header spacing.
	v := newTestVerifier(t, time.Now())
	srv := newAuthServer(t, v)
	req := kmsRequest(t, strings.TrimPrefix(srv.URL, "http://"), gmBody)
	req.URL.Scheme = "http"
	req.Header.Set("X-Custom", "  a   b  c ")
	sdkSign(t, req, gmBody, exampleAKID, exampleSecret, "", "kms", "eu-central-1", time.Now())
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d (%s)", resp.StatusCode, resp.Header.Get("X-Test-Error"))
	}
	if got := resp.Header.Get("X-Test-Region"); got != "eu-central-1" {
		t.Errorf("region = %q", got)
	}
}

func TestSigningKeyCache(t *testing.T) {
	v := newTestVerifier(t, t0)
	verify := func(region string, at time.Time, akid, secret, token string) error {
		t.Helper()
		v.now = clockAt(at)
		req := kmsRequest(t, "kms."+region+".amazonaws.com", gmBody)
		sdkSign(t, req, gmBody, akid, secret, token, "kms", region, at)
		r, body := serverView(t, req)
		_, err := v.Verify(r, body)
		return err
	}
	step := func(name string, err error, wantErr bool, wantDerivations int64) {
		t.Helper()
		if (err != nil) != wantErr {
			t.Fatalf("%s: err = %v, want error %v", name, err, wantErr)
		}
		if got := v.derivations.Load(); got != wantDerivations {
			t.Fatalf("%s: derivations = %d, want %d", name, got, wantDerivations)
		}
	}
	day2 := t0.Add(24 * time.Hour)
	step("first use derives", verify("us-east-1", t0, exampleAKID, exampleSecret, ""), false, 1)
	step("same key is cached", verify("us-east-1", t0.Add(time.Minute), exampleAKID, exampleSecret, ""), false, 1)
	step("another region derives", verify("eu-west-1", t0, exampleAKID, exampleSecret, ""), false, 2)
	step("... and is then cached", verify("eu-west-1", t0, exampleAKID, exampleSecret, ""), false, 2)
	step("another date derives", verify("us-east-1", day2, exampleAKID, exampleSecret, ""), false, 3)
	step("... and is then cached", verify("us-east-1", day2, exampleAKID, exampleSecret, ""), false, 3)
	step("another secret derives", verify("us-east-1", day2, bobAKID, bobSecret, bobToken), false, 4)
	step("... and is then cached", verify("us-east-1", day2, bobAKID, bobSecret, bobToken), false, 4)
	// A failed verification never enters the cache.
	step("bad signature derives", verify("sa-east-1", t0, exampleAKID, "wrong", ""), true, 5)
	step("bad signature derives again", verify("sa-east-1", t0, exampleAKID, "wrong", ""), true, 6)
	step("good signature for it derives", verify("sa-east-1", t0, exampleAKID, exampleSecret, ""), false, 7)
	step("... and is then cached", verify("sa-east-1", t0, exampleAKID, exampleSecret, ""), false, 7)

	// A cached entry only answers for its own (secret, date, region), even
	// when another key lands in the same slot.
	var c keyCache
	c.init()
	k, _ := v.signingKey(exampleSecret, "20250101", "us-east-1")
	c.put(k)
	if c.get(exampleSecret, "20250101", "us-east-1") != k {
		t.Fatal("cache miss right after put")
	}
	for _, miss := range [][3]string{
		{exampleSecret, "20250102", "us-east-1"},
		{exampleSecret, "20250101", "us-east-2"},
		{bobSecret, "20250101", "us-east-1"},
	} {
		if got := c.get(miss[0], miss[1], miss[2]); got != nil {
			t.Errorf("get(%s/%s) returned the key of %s/%s", miss[1], miss[2], got.date, got.region)
		}
	}
	// The cached key is the derived key.
	want := refSigningKey(exampleSecret, "20250101", "us-east-1", "kms")
	for i := range want {
		if k.ipad[i]^0x36 != want[i] || k.opad[i]^0x5c != want[i] {
			t.Fatal("cached pads do not hold the derived signing key")
		}
	}
}

func TestVerifyConcurrent(t *testing.T) {
	v := newTestVerifier(t, t0)
	type item struct {
		r      *http.Request
		body   []byte
		region string
		ok     bool
	}
	var items []item
	for _, region := range []string{"us-east-1", "eu-west-1", "ap-northeast-1"} {
		for _, at := range []time.Time{t0.Add(-5 * time.Minute), t0.Add(5 * time.Minute)} { // two dates
			for _, who := range [][3]string{{exampleAKID, exampleSecret, ""}, {bobAKID, bobSecret, bobToken}} {
				req := kmsRequest(t, "kms."+region+".amazonaws.com", gmBody)
				sdkSign(t, req, gmBody, who[0], who[1], who[2], "kms", region, at)
				r, body := serverView(t, req)
				items = append(items, item{r, body, region, true})
				bad := kmsRequest(t, "kms."+region+".amazonaws.com", gmBody)
				sdkSign(t, bad, gmBody, who[0], "wrong"+who[1], who[2], "kms", region, at)
				r, body = serverView(t, bad)
				items = append(items, item{r, body, region, false})
			}
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 300; i++ {
				it := items[(i*7+g)%len(items)]
				id, err := v.Verify(it.r, it.body)
				if it.ok && (err != nil || id.Region != it.region) {
					errs <- fmt.Errorf("valid request failed: %v", err)
					return
				}
				if !it.ok && err == nil {
					errs <- errors.New("invalid request verified")
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestVerifyDefaults(t *testing.T) {
	v := NewVerifier(testCreds(t), VerifierOptions{})
	if v.service != "kms" || v.skew != 15*time.Minute || v.now == nil {
		t.Fatalf("defaults: service %q skew %v", v.service, v.skew)
	}
	req := kmsRequest(t, "kms.us-east-1.amazonaws.com", gmBody)
	now := time.Now()
	sdkSign(t, req, gmBody, exampleAKID, exampleSecret, "", "kms", "us-east-1", now)
	r, body := serverView(t, req)
	if _, err := v.Verify(r, body); err != nil {
		t.Fatal(err)
	}
	// A nil *Error is never returned as a non-nil error.
	var err error
	if _, err = v.Verify(r, body); err != nil {
		t.Fatal(err)
	}
}

func TestCanonicalHelpers(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"a", "a"}, {"  a  ", "a"}, {"a   b    c", "a b c"}, {"\t a \t", "a"}, {"", ""}, {"   ", ""},
	} {
		if got := string(appendTrimmed(nil, c.in)); got != c.want {
			t.Errorf("appendTrimmed(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	for _, c := range []struct{ in, want string }{
		{"", ""}, {"b=2&a=1", "a=1&b=2"}, {"a=2&a=1", "a=1&a=2"}, {"x=a b", "x=a%20b"}, {"x=a+b", "x=a%20b"},
		{"x=%7e", "x=~"}, {"k=a-b&k=a/b", "k=a%2Fb&k=a-b"}, {"flag", "flag="},
	} {
		if got := string(appendCanonicalQuery(nil, c.in)); got != c.want {
			t.Errorf("appendCanonicalQuery(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	h := http.Header{"X-Amz-Target": {"t"}, "x-lower": {"l"}}
	keys := keysUnknown
	if got := headerValues(h, "x-amz-target", &keys); len(got) != 1 || got[0] != "t" {
		t.Errorf("headerValues canonical = %v", got)
	}
	if got := headerValues(h, "x-lower", &keys); len(got) != 1 || got[0] != "l" || keys != keysMixed {
		t.Errorf("headerValues non-canonical = %v (keys %d)", got, keys)
	}
	if got := headerValues(h, "absent", &keys); got != nil {
		t.Errorf("headerValues absent = %v", got)
	}
	canon := http.Header{"X-Amz-Target": {"t"}}
	keys = keysUnknown
	if got := headerValues(canon, "absent", &keys); got != nil || keys != keysCanonical {
		t.Errorf("headerValues absent in a canonical map = %v (keys %d)", got, keys)
	}
	for _, s := range []string{"20250101T000000Z", "20241231T235959Z", "20240229T120000Z"} {
		if tm, ok := parseAmzDate(s); !ok || tm.Format(amzDateLayout) != s {
			t.Errorf("parseAmzDate(%q) = %v, %v", s, tm, ok)
		}
	}
	for _, s := range []string{"", "20250101", "20250101T000000", "20250101T240000Z", "20251301T000000Z", "20250229T000000Z",
		"2025010aT000000Z", "20250101t000000Z", "20250100T000000Z"} {
		if _, ok := parseAmzDate(s); ok {
			t.Errorf("parseAmzDate(%q) accepted", s)
		}
	}
}
