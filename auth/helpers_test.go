package auth

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// AWS's documentation example key pair (the SigV4 test suite uses it).
const (
	exampleAKID   = "AKIDEXAMPLE"
	exampleSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

	bobAKID   = "ASIABOBEXAMPLE"
	bobSecret = "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY"
	bobToken  = "FwoGZXIvYXdzEXAMPLE//TOKEN+value=="
)

// t0 is the signing time of most test requests.
var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

const gmBody = `{"KeyId":"alias/rfc4231","MacAlgorithm":"HMAC_SHA_256","Message":"d2hhdCBkbyB5YSB3YW50IGZvciBub3RoaW5nPw=="}`

func testCreds(t testing.TB) *Credentials {
	t.Helper()
	c, err := NewCredentials([]Principal{
		{AccessKeyID: exampleAKID, SecretAccessKey: exampleSecret, AccountID: "111122223333",
			ARN: "arn:aws:iam::111122223333:user/alice"},
		{AccessKeyID: bobAKID, SecretAccessKey: bobSecret, SessionToken: bobToken, AccountID: "444455556666",
			ARN: "arn:aws:iam::444455556666:role/bob"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func clockAt(t time.Time) func() time.Time { return func() time.Time { return t } }

func newTestVerifier(t testing.TB, now time.Time) *Verifier {
	return NewVerifier(testCreds(t), VerifierOptions{Service: "kms", MaxSkew: 15 * time.Minute, Now: clockAt(now)})
}

// kmsRequest builds the client-side request an SDK would send for
// GenerateMac, before signing.
func kmsRequest(t testing.TB, host, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "https://"+host+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "TrentService.GenerateMac")
	req.Header.Set("Amz-Sdk-Invocation-Id", "6f0d1a4e-2f7c-4c7e-9a55-1d0b1a5d1e01")
	req.Header.Set("Amz-Sdk-Request", "attempt=1; max=3")
	return req
}

func payloadHash(body string) string {
	s := sha256.Sum256([]byte(body))
	return hex.EncodeToString(s[:])
}

// sdkSign signs req with the real AWS SDK for Go v2 signer.
func sdkSign(t testing.TB, req *http.Request, body, akid, secret, token, service, region string, at time.Time) {
	t.Helper()
	creds := aws.Credentials{AccessKeyID: akid, SecretAccessKey: secret, SessionToken: token}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, payloadHash(body), service, region, at); err != nil {
		t.Fatal(err)
	}
}

// serverView sends req through HTTP/1.1 serialisation and parsing, so the
// result looks exactly as a net/http server hands it to a handler; it
// returns the request and its body.
func serverView(t testing.TB, req *http.Request) (*http.Request, []byte) {
	t.Helper()
	var wire bytes.Buffer
	if err := req.Write(&wire); err != nil {
		t.Fatal(err)
	}
	return parseRaw(t, wire.String())
}

// parseRaw parses an HTTP/1.1 request (LF line ends are turned into CRLF).
func parseRaw(t testing.TB, raw string) (*http.Request, []byte) {
	t.Helper()
	if !strings.Contains(raw, "\r\n") {
		head, body, _ := strings.Cut(raw, "\n\n")
		raw = strings.ReplaceAll(head, "\n", "\r\n") + "\r\n\r\n" + body
	}
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return r, body
}

// signedGM returns a server-side GenerateMac request signed by the SDK for
// alice at t0 in us-east-1.
func signedGM(t testing.TB) (*http.Request, []byte) {
	req := kmsRequest(t, "kms.us-east-1.amazonaws.com", gmBody)
	sdkSign(t, req, gmBody, exampleAKID, exampleSecret, "", "kms", "us-east-1", t0)
	return serverView(t, req)
}

// --- an independent SigV4 reference, written from the documented steps ---

func refHMAC(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

func refSigningKey(secret, date, region, service string) []byte {
	kDate := refHMAC([]byte("AWS4"+secret), date)
	kRegion := refHMAC(kDate, region)
	kService := refHMAC(kRegion, service)
	return refHMAC(kService, "aws4_request")
}

func refHex(b []byte) string { return hex.EncodeToString(b) }

func refSHA(s string) string { x := sha256.Sum256([]byte(s)); return refHex(x[:]) }

// refSignature signs a canonical request given verbatim.
func refSignature(secret, amzDate, region, service, canonical string) string {
	scope := amzDate[:8] + "/" + region + "/" + service + "/aws4_request"
	sts := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + refSHA(canonical)
	return refHex(refHMAC(refSigningKey(secret, amzDate[:8], region, service), sts))
}

// checkErr asserts that err is an *Error with code and a message containing
// want (or equal to it when exact), status 400, and no secrets.
func checkErr(t *testing.T, r *http.Request, err error, code, want string, exact bool) {
	t.Helper()
	if err == nil {
		t.Fatalf("Verify succeeded; want %s", code)
	}
	e, ok := err.(*Error)
	if !ok {
		t.Fatalf("error %T %v is not *auth.Error", err, err)
	}
	if e.Code != code {
		t.Errorf("code = %q, want %q (message %q)", e.Code, code, e.Message)
	}
	if e.Status != http.StatusBadRequest {
		t.Errorf("status = %d, want 400", e.Status)
	}
	if exact && e.Message != want {
		t.Errorf("message = %q\nwant      %q", e.Message, want)
	}
	if !exact && !strings.Contains(e.Message, want) {
		t.Errorf("message = %q, want it to contain %q", e.Message, want)
	}
	assertNoSecrets(t, r, e.Error())
}

var hexRun = regexp.MustCompile(`[0-9a-fA-F]{64,}`)

// assertNoSecrets checks that msg carries neither a secret nor a token nor
// any signature except the one the client itself sent.
func assertNoSecrets(t *testing.T, r *http.Request, msg string) {
	t.Helper()
	for _, s := range []string{exampleSecret, bobSecret, bobToken, "EXAMPLEKEY"} {
		if strings.Contains(msg, s) {
			t.Errorf("error message leaks a secret: %q", msg)
		}
	}
	given := ""
	if r != nil {
		if _, sig, ok := strings.Cut(r.Header.Get("Authorization"), "Signature="); ok {
			given = sig
		}
	}
	for _, h := range hexRun.FindAllString(msg, -1) {
		if given == "" || !strings.Contains(given, h) {
			t.Errorf("error message contains a signature-like value %q that the client did not send: %q", h, msg)
		}
	}
}
