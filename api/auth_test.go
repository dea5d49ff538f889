package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/keyraft/keyraft/auth"
	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/policy"
	"github.com/keyraft/keyraft/quota"
)

const (
	acctA = "111122223333"
	acctB = "444455556666"
)

// principal is one test identity.
type principal struct {
	akid, secret, token, account, arn string
	identity                          string // "" = administrator
}

var (
	alice   = principal{"AKIAALICE", "alice-secret", "", acctA, "arn:aws:iam::111122223333:user/alice", ""}
	bob     = principal{"AKIABOB", "bob-secret", "", acctA, "arn:aws:iam::111122223333:user/bob", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:GenerateMac","kms:VerifyMac","kms:DescribeKey"],"Resource":"*"}]}`}
	carol   = principal{"AKIACAROL", "carol-secret", "", acctA, "arn:aws:iam::111122223333:user/carol", `{}`}
	dave    = principal{"ASIADAVE", "dave-secret", "dave-session-token", acctA, "arn:aws:iam::111122223333:role/dave", ""}
	erin    = principal{"AKIAERIN", "erin-secret", "", acctB, "arn:aws:iam::444455556666:user/erin", ""}
	frank   = principal{"AKIAFRANK", "frank-secret", "", acctB, "arn:aws:iam::444455556666:user/frank", `{"Statement":[{"Effect":"Allow","Action":"kms:DescribeKey","Resource":"*"}]}`}
	mallory = principal{"AKIAMALLORY", "mallory-secret", "", acctA, "arn:aws:iam::111122223333:user/mallory", ""}
	// tagger may MAC only with keys tagged env=prod*, HMAC_SHA_256 only,
	// and is explicitly denied DisableKey.
	tagger = principal{"AKIATAGGER", "tagger-secret", "", acctA, "arn:aws:iam::111122223333:user/tagger", `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":["kms:GenerateMac","kms:VerifyMac"],"Resource":"arn:aws:kms:*:111122223333:key/*",
		 "Condition":{"StringLike":{"aws:ResourceTag/env":"prod*"},"StringEquals":{"kms:MacAlgorithm":"HMAC_SHA_256","kms:CallerAccount":"111122223333"}}},
		{"Effect":"Allow","Action":["kms:CreateKey"],"Resource":"*","Condition":{"StringEquals":{"kms:KeySpec":"HMAC_512"}}},
		{"Effect":"Deny","Action":"kms:DisableKey","Resource":"*"}]}`}
	allPrincipals = []principal{alice, bob, carol, dave, erin, frank, mallory, tagger}
)

func testCredentials(t testing.TB) *auth.Credentials {
	t.Helper()
	ps := make([]auth.Principal, 0, len(allPrincipals))
	for _, p := range allPrincipals {
		ap := auth.Principal{AccessKeyID: p.akid, SecretAccessKey: p.secret, SessionToken: p.token, AccountID: p.account, ARN: p.arn}
		if p.identity != "" {
			ap.IdentityPolicy = []byte(p.identity)
		}
		ps = append(ps, ap)
	}
	c, err := auth.NewCredentials(ps)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newAuthEnv starts a sigv4 server with allPrincipals.
func newAuthEnv(t testing.TB, mod func(*Config)) *env {
	creds := testCredentials(t)
	return newEnv(t, func(c *Config) {
		c.Auth = AuthSigV4
		c.Credentials = creds
		c.Verifier = auth.NewVerifier(creds, auth.VerifierOptions{})
		if mod != nil {
			mod(c)
		}
	})
}

// skewSigner signs with a clock off by skew.
type skewSigner struct {
	skew time.Duration
}

func (s skewSigner) SignHTTP(ctx context.Context, c aws.Credentials, r *http.Request, payloadHash, service, region string, at time.Time, opts ...func(*v4.SignerOptions)) error {
	return v4.NewSigner().SignHTTP(ctx, c, r, payloadHash, service, region, at.Add(s.skew), opts...)
}

// client is an SDK client signing as p (secret and token as given).
func (e *env) client(p principal, mods ...func(*kms.Options)) *kms.Client {
	o := kms.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(e.srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider(p.akid, p.secret, p.token),
		Retryer:      aws.NopRetryer{},
	}
	for _, m := range mods {
		m(&o)
	}
	return kms.New(o)
}

func inRegion(r string) func(*kms.Options) { return func(o *kms.Options) { o.Region = r } }

// apiCode asserts that err is an AWS error with code (and, if set, a
// message containing msgSub) answered with status 400.
func apiCode(t *testing.T, err error, code, msgSub string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v, want %s", err, code)
	}
	if ae.ErrorCode() != code {
		t.Fatalf("error code %q (%s), want %q", ae.ErrorCode(), ae.ErrorMessage(), code)
	}
	if !strings.Contains(ae.ErrorMessage(), msgSub) {
		t.Errorf("message %q, want it to contain %q", ae.ErrorMessage(), msgSub)
	}
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) && re.HTTPStatusCode() != 400 {
		t.Errorf("status %d, want 400", re.HTTPStatusCode())
	}
}

func mustKey(t *testing.T, c *kms.Client, tags ...types.Tag) *types.KeyMetadata {
	t.Helper()
	out, err := c.CreateKey(context.Background(), &kms.CreateKeyInput{KeySpec: types.KeySpecHmac256,
		KeyUsage: types.KeyUsageTypeGenerateVerifyMac, Tags: tags})
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	return out.KeyMetadata
}

var macMsg = []byte("message to authenticate")

func genMac(c *kms.Client, keyID string) (*kms.GenerateMacOutput, error) {
	return c.GenerateMac(context.Background(), &kms.GenerateMacInput{KeyId: aws.String(keyID),
		MacAlgorithm: types.MacAlgorithmSpecHmacSha256, Message: macMsg})
}

// signedRequest builds a raw GenerateMac request signed by the SDK signer
// as p at time at.
func (e *env) signedRequest(t *testing.T, p principal, body string, at time.Time) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentTypeAmzJSON)
	req.Header.Set("X-Amz-Target", "TrentService.GenerateMac")
	sum := sha256.Sum256([]byte(body))
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: p.akid, SecretAccessKey: p.secret, SessionToken: p.token},
		req, hex.EncodeToString(sum[:]), "kms", "us-east-1", at); err != nil {
		t.Fatal(err)
	}
	return req
}

func (e *env) send(t *testing.T, req *http.Request) *response {
	t.Helper()
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := &response{status: resp.StatusCode, header: resp.Header, body: b}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &r.obj); err != nil {
			t.Fatalf("response %q: %v", b, err)
		}
	}
	return r
}

// TestSigV4Authentication: every authentication failure is answered with
// the verifier's AWS error, before anything else happens.
func TestSigV4Authentication(t *testing.T) {
	type obs struct{ op, code string }
	var mu sync.Mutex
	var seen []obs
	e := newAuthEnv(t, func(c *Config) {
		c.Observe = func(op, code string, status int, _ time.Duration) {
			mu.Lock()
			seen = append(seen, obs{op, code})
			mu.Unlock()
		}
	})
	key := mustKey(t, e.client(alice))
	keyID := aws.ToString(key.KeyId)
	body := `{"KeyId":"` + keyID + `","MacAlgorithm":"HMAC_SHA_256","Message":"` + base64.StdEncoding.EncodeToString(macMsg) + `"}`
	applies := e.store.applyCount()

	wrong := alice
	wrong.secret = "not-alice-secret"
	unknown := alice
	unknown.akid = "AKIANOBODY"
	daveNoToken := dave
	daveNoToken.token = ""
	aliceToken := alice
	aliceToken.token = "unexpected"

	sdkCases := []struct {
		name      string
		c         *kms.Client
		code, msg string
	}{
		{"wrong secret", e.client(wrong), auth.CodeInvalidSignature, "The request signature we calculated does not match"},
		{"unknown access key", e.client(unknown), auth.CodeUnrecognizedClient, "The security token included in the request is invalid."},
		{"session token missing", e.client(daveNoToken), auth.CodeUnrecognizedClient, "security token"},
		{"unexpected session token", e.client(aliceToken), auth.CodeUnrecognizedClient, "security token"},
		{"clock 20 min behind", e.client(alice, func(o *kms.Options) { o.HTTPSignerV4 = skewSigner{-20 * time.Minute} }), auth.CodeInvalidSignature, "Signature expired"},
		{"clock 20 min ahead", e.client(alice, func(o *kms.Options) { o.HTTPSignerV4 = skewSigner{20 * time.Minute} }), auth.CodeInvalidSignature, "Signature not yet current"},
	}
	for _, tc := range sdkCases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := genMac(tc.c, keyID)
			apiCode(t, err, tc.code, tc.msg)
			// Writes are refused before they reach the log.
			_, err = tc.c.CreateKey(context.Background(), &kms.CreateKeyInput{KeySpec: types.KeySpecHmac256, KeyUsage: types.KeyUsageTypeGenerateVerifyMac})
			apiCode(t, err, tc.code, "")
		})
	}
	if n := e.store.applyCount(); n != applies {
		t.Errorf("%d writes were proposed by unauthenticated requests", n-applies)
	}

	// Within the skew window the signature is good.
	if _, err := genMac(e.client(alice, func(o *kms.Options) { o.HTTPSignerV4 = skewSigner{-10 * time.Minute} }), keyID); err != nil {
		t.Errorf("clock 10 min behind: %v", err)
	}
	// Session-token principal.
	if _, err := genMac(e.client(dave), keyID); err != nil {
		t.Errorf("dave with session token: %v", err)
	}

	rawCases := []struct {
		name      string
		req       func() *http.Request
		code, msg string
	}{
		{"unsigned", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/", strings.NewReader(body))
			r.Header.Set("X-Amz-Target", "TrentService.GenerateMac")
			r.Header.Set("Content-Type", contentTypeAmzJSON)
			return r
		}, auth.CodeMissingAuthenticationToken, "Request is missing Authentication Token"},
		{"tampered body", func() *http.Request {
			r := e.signedRequest(t, alice, body, time.Now())
			tampered := strings.Replace(body, base64.StdEncoding.EncodeToString(macMsg), base64.StdEncoding.EncodeToString([]byte("message to authenticatf")), 1)
			r.Body = io.NopCloser(strings.NewReader(tampered))
			return r
		}, auth.CodeInvalidSignature, "signature we calculated does not match"},
		{"tampered target", func() *http.Request {
			r := e.signedRequest(t, alice, body, time.Now())
			r.Header.Set("X-Amz-Target", "TrentService.VerifyMac")
			return r
		}, auth.CodeInvalidSignature, "signature we calculated does not match"},
		{"malformed header", func() *http.Request {
			r := e.signedRequest(t, alice, body, time.Now())
			r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAALICE/20250101")
			return r
		}, auth.CodeIncompleteSignature, "Authorization header requires"},
	}
	for _, tc := range rawCases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.send(t, tc.req())
			checkAWSError(t, r, 400, tc.code, tc.msg)
		})
	}
	// The raw request itself, untampered, is fine.
	if r := e.send(t, e.signedRequest(t, alice, body, time.Now())); r.status != 200 {
		t.Fatalf("signed raw request: %d %s", r.status, r.body)
	}
	mu.Lock()
	defer mu.Unlock()
	found := false
	for _, o := range seen {
		if o.op == "GenerateMac" && o.code == auth.CodeInvalidSignature {
			found = true
		}
	}
	if !found {
		t.Errorf("metrics never saw GenerateMac/%s: %v", auth.CodeInvalidSignature, seen)
	}
}

// TestSigV4AccountAndRegion: the principal decides the account, the
// credential scope the region.
func TestSigV4AccountAndRegion(t *testing.T) {
	e := newAuthEnv(t, nil)
	ctx := context.Background()
	ka := mustKey(t, e.client(alice, inRegion("eu-west-1")))
	if aws.ToString(ka.Arn) != "arn:aws:kms:eu-west-1:111122223333:key/"+aws.ToString(ka.KeyId) || aws.ToString(ka.AWSAccountId) != acctA {
		t.Fatalf("alice's key %s in %s", aws.ToString(ka.Arn), aws.ToString(ka.AWSAccountId))
	}
	kb := mustKey(t, e.client(erin))
	if aws.ToString(kb.Arn) != "arn:aws:kms:us-east-1:444455556666:key/"+aws.ToString(kb.KeyId) || aws.ToString(kb.AWSAccountId) != acctB {
		t.Fatalf("erin's key %s", aws.ToString(kb.Arn))
	}
	// Each account and region lists only its own keys.
	for _, c := range []struct {
		cl   *kms.Client
		want string
	}{{e.client(alice, inRegion("eu-west-1")), aws.ToString(ka.KeyId)}, {e.client(erin), aws.ToString(kb.KeyId)}} {
		lk, err := c.cl.ListKeys(ctx, &kms.ListKeysInput{})
		if err != nil || len(lk.Keys) != 1 || aws.ToString(lk.Keys[0].KeyId) != c.want {
			t.Errorf("ListKeys: %v %+v", err, lk)
		}
	}
	lk, err := e.client(alice).ListKeys(ctx, &kms.ListKeysInput{})
	if err != nil || len(lk.Keys) != 0 {
		t.Errorf("alice in us-east-1 sees %v %v", lk, err)
	}
	// A bare key id is always the caller's own account.
	_, err = e.client(alice).DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: kb.KeyId})
	apiCode(t, err, "NotFoundException", "arn:aws:kms:us-east-1:111122223333:key/"+aws.ToString(kb.KeyId))
}

// TestAuthorizationMatrix: which principal may do what with a key under the
// default key policy.
func TestAuthorizationMatrix(t *testing.T) {
	e := newAuthEnv(t, nil)
	ctx := context.Background()
	k := mustKey(t, e.client(alice), types.Tag{TagKey: aws.String("env"), TagValue: aws.String("production")})
	keyID := aws.ToString(k.KeyId)
	arn := aws.ToString(k.Arn)
	dev := mustKey(t, e.client(alice), types.Tag{TagKey: aws.String("env"), TagValue: aws.String("dev")})

	type call func(c *kms.Client) error
	gen := func(id string, alg types.MacAlgorithmSpec) call {
		return func(c *kms.Client) error {
			_, err := c.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: aws.String(id), MacAlgorithm: alg, Message: macMsg})
			return err
		}
	}
	describe := func(c *kms.Client) error {
		_, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(keyID)})
		return err
	}
	disable := func(c *kms.Client) error {
		_, err := c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: dev.KeyId})
		return err
	}
	tag := func(c *kms.Client) error {
		_, err := c.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(keyID), Tags: []types.Tag{{TagKey: aws.String("t"), TagValue: aws.String("v")}}})
		return err
	}
	getPolicy := func(c *kms.Client) error {
		_, err := c.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: aws.String(keyID)})
		return err
	}
	createKey := func(spec types.KeySpec) call {
		return func(c *kms.Client) error {
			_, err := c.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: spec, KeyUsage: types.KeyUsageTypeGenerateVerifyMac})
			return err
		}
	}
	listKeys := func(c *kms.Client) error { _, err := c.ListKeys(ctx, &kms.ListKeysInput{}); return err }
	listAliases := func(c *kms.Client) error { _, err := c.ListAliases(ctx, &kms.ListAliasesInput{}); return err }
	random := func(c *kms.Client) error {
		_, err := c.GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(8)})
		return err
	}
	encrypt := func(c *kms.Client) error {
		_, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(keyID), Plaintext: []byte("x")})
		return err
	}
	createAlias := func(name string) call {
		return func(c *kms.Client) error {
			_, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(name), TargetKeyId: aws.String(keyID)})
			return err
		}
	}

	noIdentity := "because no identity-based policy allows the "
	cases := []struct {
		name string
		p    principal
		f    call
		code string // "" = allowed
		msg  string
	}{
		{"admin mac", alice, gen(keyID, types.MacAlgorithmSpecHmacSha256), "", ""},
		{"admin tag", alice, tag, "", ""},
		{"admin policy", alice, getPolicy, "", ""},
		{"admin alias", alice, createAlias("alias/by-alice"), "", ""},
		{"role session mac", dave, gen(arn, types.MacAlgorithmSpecHmacSha256), "", ""},
		{"role session create", dave, createKey(types.KeySpecHmac384), "", ""},
		{"restricted mac", bob, gen(keyID, types.MacAlgorithmSpecHmacSha256), "", ""},
		{"restricted describe", bob, describe, "", ""},
		{"restricted disable", bob, disable, codeAccessDenied, "User: " + bob.arn + " is not authorized to perform: kms:DisableKey on resource: arn:aws:kms:us-east-1:111122223333:key/"},
		{"restricted tag", bob, tag, codeAccessDenied, noIdentity + "kms:TagResource action"},
		{"restricted create", bob, createKey(types.KeySpecHmac256), codeAccessDenied, "kms:CreateKey on resource: * because no identity-based policy allows the kms:CreateKey action"},
		{"restricted list keys", bob, listKeys, codeAccessDenied, "kms:ListKeys on resource: *"},
		{"restricted list aliases", bob, listAliases, codeAccessDenied, "kms:ListAliases on resource: *"},
		{"restricted random", bob, random, codeAccessDenied, "kms:GenerateRandom on resource: *"},
		{"restricted encrypt", bob, encrypt, codeAccessDenied, "kms:Encrypt"},
		{"restricted alias", bob, createAlias("alias/by-bob"), codeAccessDenied, "kms:CreateAlias"},
		{"empty identity mac", carol, gen(keyID, types.MacAlgorithmSpecHmacSha256), codeAccessDenied, noIdentity + "kms:GenerateMac action"},
		{"empty identity describe", carol, describe, codeAccessDenied, "kms:DescribeKey"},
		{"empty identity create", carol, createKey(types.KeySpecHmac256), codeAccessDenied, "kms:CreateKey"},
		{"empty identity random", carol, random, codeAccessDenied, "kms:GenerateRandom"},
		{"condition tag and algorithm", tagger, gen(keyID, types.MacAlgorithmSpecHmacSha256), "", ""},
		{"condition wrong tag", tagger, gen(aws.ToString(dev.KeyId), types.MacAlgorithmSpecHmacSha256), codeAccessDenied, "kms:GenerateMac"},
		{"condition key spec allowed", tagger, createKey(types.KeySpecHmac512), "", ""},
		{"condition key spec refused", tagger, createKey(types.KeySpecHmac256), codeAccessDenied, "kms:CreateKey"},
		{"identity explicit deny", tagger, disable, codeAccessDenied, "with an explicit deny in an identity-based policy"},
		// Usage errors come after authorization: an HMAC key with a wrong
		// algorithm is InvalidKeyUsage for an allowed caller...
		{"allowed, wrong algorithm", bob, gen(keyID, types.MacAlgorithmSpecHmacSha512), "InvalidKeyUsageException", "incompatible"},
		// ...and AccessDenied for a caller whose conditions fail on it.
		{"denied before usage", tagger, gen(keyID, types.MacAlgorithmSpecHmacSha512), codeAccessDenied, "kms:GenerateMac"},
		// Lookup comes first: a missing key is NotFound even for carol.
		{"missing key first", carol, gen(absentID, types.MacAlgorithmSpecHmacSha256), "NotFoundException", "does not exist"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.f(e.client(tc.p))
			if tc.code == "" {
				if err != nil {
					t.Fatalf("want success, got %v", err)
				}
				return
			}
			apiCode(t, err, tc.code, tc.msg)
		})
	}
	// The key's state was not changed by a refused DisableKey.
	d, err := e.client(alice).DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: dev.KeyId})
	if err != nil || !d.KeyMetadata.Enabled {
		t.Fatalf("dev key: %v %+v", err, d)
	}
}

// TestKeyPolicies: explicit Deny, key policies naming principals, lockout.
func TestKeyPolicies(t *testing.T) {
	e := newAuthEnv(t, nil)
	ctx := context.Background()
	admin := e.client(alice)
	k := mustKey(t, admin)
	keyID := aws.ToString(k.KeyId)

	// An explicit Deny for mallory, otherwise the default delegation.
	denyMallory := `{"Version":"2012-10-17","Statement":[
		{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
		{"Sid":"NoMallory","Effect":"Deny","Principal":{"AWS":"arn:aws:iam::111122223333:user/mallory"},"Action":["kms:GenerateMac","kms:DescribeKey"],"Resource":"*"}]}`
	if _, err := admin.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: k.KeyId, Policy: aws.String(denyMallory)}); err != nil {
		t.Fatalf("PutKeyPolicy: %v", err)
	}
	_, err := genMac(e.client(mallory), keyID)
	apiCode(t, err, codeAccessDenied, "User: "+mallory.arn+" is not authorized to perform: kms:GenerateMac on resource: "+aws.ToString(k.Arn)+" with an explicit deny in a resource-based policy")
	if _, err := genMac(admin, keyID); err != nil {
		t.Fatalf("alice after the deny: %v", err)
	}
	// mallory may still VerifyMac (not denied).
	g, _ := genMac(admin, keyID)
	if _, err := e.client(mallory).VerifyMac(ctx, &kms.VerifyMacInput{KeyId: k.KeyId, MacAlgorithm: types.MacAlgorithmSpecHmacSha256, Message: macMsg, Mac: g.Mac}); err != nil {
		t.Fatalf("mallory VerifyMac: %v", err)
	}

	// A key policy naming carol directly allows her without any identity
	// policy permission (same account).
	forCarol := `{"Statement":[
		{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:*","Resource":"*"},
		{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/carol"},"Action":"kms:GenerateMac","Resource":"*",
		 "Condition":{"StringEquals":{"kms:MacAlgorithm":"HMAC_SHA_256","aws:PrincipalArn":"arn:aws:iam::111122223333:user/carol"}}}]}`
	if _, err := admin.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: k.KeyId, Policy: aws.String(forCarol)}); err != nil {
		t.Fatalf("PutKeyPolicy: %v", err)
	}
	if _, err := genMac(e.client(carol), keyID); err != nil {
		t.Fatalf("carol named by the key policy: %v", err)
	}
	_, err = e.client(carol).DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: k.KeyId})
	apiCode(t, err, codeAccessDenied, "because no identity-based policy allows the kms:DescribeKey action")

	// Lockout: a policy that would lock alice out is refused...
	onlyBob := `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/bob"},"Action":"kms:*","Resource":"*"}]}`
	_, err = admin.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: k.KeyId, Policy: aws.String(onlyBob)})
	apiCode(t, err, "MalformedPolicyDocumentException", policy.MsgLockout)
	// ...unless the check is bypassed: then alice has lost the key.
	if _, err := admin.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: k.KeyId, Policy: aws.String(onlyBob), BypassPolicyLockoutSafetyCheck: true}); err != nil {
		t.Fatalf("PutKeyPolicy with bypass: %v", err)
	}
	_, err = admin.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: k.KeyId})
	apiCode(t, err, codeAccessDenied, "kms:GetKeyPolicy on resource: "+aws.ToString(k.Arn)+" because no resource-based policy allows the kms:GetKeyPolicy action")
	// bob is named directly: he may manage the key although his identity
	// policy does not mention PutKeyPolicy. The default policy would leave
	// him to that identity policy, so it fails his lockout check...
	_, err = e.client(bob).PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: k.KeyId, Policy: aws.String(policy.DefaultKeyPolicy(acctA))})
	apiCode(t, err, "MalformedPolicyDocumentException", policy.MsgLockout)
	// ...and he bypasses it.
	if _, err := e.client(bob).PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: k.KeyId, Policy: aws.String(policy.DefaultKeyPolicy(acctA)), BypassPolicyLockoutSafetyCheck: true}); err != nil {
		t.Fatalf("bob restores the default policy: %v", err)
	}
	if _, err := genMac(admin, keyID); err != nil {
		t.Fatalf("alice after restore: %v", err)
	}

	// CreateKey with a policy: lockout checked against the caller.
	_, err = admin.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecHmac256, KeyUsage: types.KeyUsageTypeGenerateVerifyMac, Policy: aws.String(onlyBob)})
	apiCode(t, err, "MalformedPolicyDocumentException", policy.MsgLockout)
	ck, err := e.client(bob).CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecHmac256, KeyUsage: types.KeyUsageTypeGenerateVerifyMac, Policy: aws.String(onlyBob)})
	apiCode(t, err, codeAccessDenied, "kms:CreateKey") // bob's identity policy has no CreateKey
	if ck != nil {
		t.Fatal("created")
	}
	_, err = admin.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecHmac256, KeyUsage: types.KeyUsageTypeGenerateVerifyMac, Policy: aws.String(`{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*"}]}`)})
	apiCode(t, err, "MalformedPolicyDocumentException", policy.MsgNoResources)
	big := `{"Statement":[{"Sid":"` + strings.Repeat("x", maxPolicyBytes) + `","Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}]}`
	_, err = admin.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: k.KeyId, Policy: aws.String(big)})
	apiCode(t, err, "LimitExceededException", "32768")
}

// TestCrossAccount: another account's key is reachable only by ARN, only
// by DescribeKey and the cryptographic operations, only where its key
// policy allows.
func TestCrossAccount(t *testing.T) {
	e := newAuthEnv(t, nil)
	ctx := context.Background()
	admin := e.client(alice)
	k := mustKey(t, admin)
	arn := aws.ToString(k.Arn)
	if _, err := admin.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/shared"), TargetKeyId: k.KeyId}); err != nil {
		t.Fatal(err)
	}
	aliasArn := "arn:aws:kms:us-east-1:111122223333:alias/shared"
	other := e.client(erin)

	// The default key policy names only account A.
	_, err := genMac(other, arn)
	apiCode(t, err, codeAccessDenied, "User: "+erin.arn+" is not authorized to perform: kms:GenerateMac on resource: "+arn+" because no resource-based policy allows the kms:GenerateMac action")
	_, err = genMac(other, aws.ToString(k.KeyId))
	apiCode(t, err, "NotFoundException", "arn:aws:kms:us-east-1:444455556666:key/")
	_, err = genMac(other, "alias/shared")
	apiCode(t, err, "NotFoundException", "arn:aws:kms:us-east-1:444455556666:alias/shared")

	share := `{"Statement":[
		{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
		{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":["kms:GenerateMac","kms:VerifyMac","kms:DescribeKey","kms:DisableKey"],"Resource":"*"}]}`
	if _, err := admin.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: k.KeyId, Policy: aws.String(share)}); err != nil {
		t.Fatal(err)
	}
	g, err := genMac(other, arn)
	if err != nil {
		t.Fatalf("erin GenerateMac by key ARN: %v", err)
	}
	if aws.ToString(g.KeyId) != arn {
		t.Errorf("KeyId %s", aws.ToString(g.KeyId))
	}
	if v, err := other.VerifyMac(ctx, &kms.VerifyMacInput{KeyId: aws.String(aliasArn), MacAlgorithm: types.MacAlgorithmSpecHmacSha256, Message: macMsg, Mac: g.Mac}); err != nil || !v.MacValid {
		t.Fatalf("erin VerifyMac by alias ARN: %v", err)
	}
	d, err := other.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(arn)})
	if err != nil || aws.ToString(d.KeyMetadata.AWSAccountId) != acctA {
		t.Fatalf("erin DescribeKey: %v", err)
	}
	// Other operations cannot name another account's key, even where the
	// key policy would allow them.
	_, err = other.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(arn)})
	apiCode(t, err, "NotFoundException", arn)
	_, err = other.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: aws.String(arn)})
	apiCode(t, err, "NotFoundException", arn)
	// Cross-account needs the caller's identity policy too: frank may only
	// DescribeKey.
	if _, err := e.client(frank).DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(arn)}); err != nil {
		t.Fatalf("frank DescribeKey: %v", err)
	}
	_, err = genMac(e.client(frank), arn)
	apiCode(t, err, codeAccessDenied, "because no identity-based policy allows the kms:GenerateMac action")
	// DryRun cross-account: allowed caller gets DryRunOperationException.
	_, err = other.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: aws.String(arn), MacAlgorithm: types.MacAlgorithmSpecHmacSha256, Message: macMsg, DryRun: aws.Bool(true)})
	apiCode(t, err, "DryRunOperationException", "DryRun option is set")
	// A missing key of the other account is NotFound.
	_, err = genMac(other, "arn:aws:kms:us-east-1:111122223333:key/"+absentID)
	apiCode(t, err, "NotFoundException", "does not exist")
}

// TestDryRunAuthorization: DryRunOperationException only for an allowed
// caller whose call would succeed.
func TestDryRunAuthorization(t *testing.T) {
	e := newAuthEnv(t, nil)
	ctx := context.Background()
	k := mustKey(t, e.client(alice))
	dry := func(p principal, id string) error {
		_, err := e.client(p).GenerateMac(ctx, &kms.GenerateMacInput{KeyId: aws.String(id), MacAlgorithm: types.MacAlgorithmSpecHmacSha256, Message: macMsg, DryRun: aws.Bool(true)})
		return err
	}
	apiCode(t, dry(bob, aws.ToString(k.KeyId)), "DryRunOperationException", "The request would have succeeded, but the DryRun option is set.")
	apiCode(t, dry(carol, aws.ToString(k.KeyId)), codeAccessDenied, "kms:GenerateMac")
	if _, err := e.client(alice).DisableKey(ctx, &kms.DisableKeyInput{KeyId: k.KeyId}); err != nil {
		t.Fatal(err)
	}
	apiCode(t, dry(bob, aws.ToString(k.KeyId)), "DisabledException", "is disabled")
	apiCode(t, dry(carol, aws.ToString(k.KeyId)), codeAccessDenied, "kms:GenerateMac")
}

// TestQuotas: ThrottlingException per caller account, region and class,
// after authentication; DryRun calls count.
func TestQuotas(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	lim := quota.New(map[string]float64{"CreateKey": 5, quota.ClassCryptographic: 3}, clk.Now)
	e := newAuthEnv(t, func(c *Config) { c.Quotas = lim })
	ctx := context.Background()
	create := func(c *kms.Client) error {
		_, err := c.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecHmac256, KeyUsage: types.KeyUsageTypeGenerateVerifyMac})
		return err
	}
	var keyID string
	for i := 0; i < 5; i++ {
		out, err := e.client(alice).CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecHmac256, KeyUsage: types.KeyUsageTypeGenerateVerifyMac})
		if err != nil {
			t.Fatalf("CreateKey %d: %v", i+1, err)
		}
		keyID = aws.ToString(out.KeyMetadata.KeyId)
	}
	apiCode(t, create(e.client(alice)), quota.ThrottlingCode, quota.ThrottlingMessage)
	// Same account, another principal: the quota is the account's.
	apiCode(t, create(e.client(dave)), quota.ThrottlingCode, quota.ThrottlingMessage)
	// Another region and another account have quotas of their own.
	if err := create(e.client(alice, inRegion("eu-west-1"))); err != nil {
		t.Fatalf("other region: %v", err)
	}
	if err := create(e.client(erin)); err != nil {
		t.Fatalf("other account: %v", err)
	}
	// Other classes are not affected; unauthenticated requests are refused
	// as such, not throttled.
	if _, err := e.client(alice).DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(keyID)}); err != nil {
		t.Fatalf("DescribeKey: %v", err)
	}
	wrong := alice
	wrong.secret = "x"
	apiCode(t, create(e.client(wrong)), auth.CodeInvalidSignature, "")
	// The bucket refills.
	clk.Advance(200 * time.Millisecond)
	if err := create(e.client(alice)); err != nil {
		t.Fatalf("after refill: %v", err)
	}
	apiCode(t, create(e.client(alice)), quota.ThrottlingCode, "")

	// Cryptographic class, 3/s: DryRun counts, refused calls count.
	_, err := e.client(alice).GenerateMac(ctx, &kms.GenerateMacInput{KeyId: aws.String(keyID), MacAlgorithm: types.MacAlgorithmSpecHmacSha256, Message: macMsg, DryRun: aws.Bool(true)})
	apiCode(t, err, "DryRunOperationException", "")
	if _, err := genMac(e.client(alice), keyID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client(alice).GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(4)}); err != nil {
		t.Fatal(err)
	}
	_, err = genMac(e.client(alice), keyID)
	apiCode(t, err, quota.ThrottlingCode, quota.ThrottlingMessage)
}

// TestNoneModeWithCredentials: nothing is verified; a configured access key
// makes the request that principal's (authorized), anything else is the
// default account's administrator.
func TestNoneModeWithCredentials(t *testing.T) {
	creds := testCredentials(t)
	e := newEnv(t, func(c *Config) { c.Auth = AuthNone; c.Credentials = creds })
	ctx := context.Background()
	// Unsigned and unknown keys: the default account, no authorization.
	r := e.mustCall("CreateKey", `{"KeySpec":"HMAC_256","KeyUsage":"GENERATE_VERIFY_MAC"}`)
	anonKey := r.obj["KeyMetadata"].(map[string]any)["KeyId"].(string)
	if _, err := genMac(e.client(principal{akid: "AKIDANYONE", secret: "whatever"}), anonKey); err != nil {
		t.Fatalf("unknown access key: %v", err)
	}
	// A configured access key with a wrong secret still acts as the
	// principal: signatures are not checked.
	wrongCarol := carol
	wrongCarol.secret = "not-carol"
	apiCode(t, func() error { _, err := genMac(e.client(wrongCarol), anonKey); return err }(), codeAccessDenied, carol.arn)
	wrongBob := bob
	wrongBob.secret = "nope"
	if _, err := genMac(e.client(wrongBob), anonKey); err != nil {
		t.Fatalf("bob in none mode: %v", err)
	}
	// erin's requests are account B's.
	kb := mustKey(t, e.client(principal{akid: erin.akid, secret: "anything"}))
	if aws.ToString(kb.AWSAccountId) != acctB {
		t.Fatalf("erin's key in %s", aws.ToString(kb.AWSAccountId))
	}
	// Anonymous callers cannot reach other accounts.
	_, err := e.client(principal{akid: "AKIDANYONE", secret: "x"}).DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: kb.Arn})
	apiCode(t, err, "NotFoundException", "")
	// A session-token principal without its token is still that principal.
	if _, err := genMac(e.client(principal{akid: dave.akid, secret: "x"}), anonKey); err != nil {
		t.Fatalf("dave: %v", err)
	}
}

func TestNewRejectsBadAuthConfig(t *testing.T) {
	store := newMemStore(newSealer(t))
	if _, err := New(Config{Auth: "magic"}, store); err == nil || !strings.Contains(err.Error(), "magic") {
		t.Errorf("unknown mode: %v", err)
	}
	if _, err := New(Config{Auth: AuthSigV4}, store); err == nil || !strings.Contains(err.Error(), "Verifier") {
		t.Errorf("sigv4 without verifier: %v", err)
	}
	bad, err := auth.NewCredentials([]auth.Principal{{AccessKeyID: "AKIDBAD", SecretAccessKey: "s", AccountID: acctA,
		ARN: "arn:aws:iam::111122223333:user/bad", IdentityPolicy: []byte(`{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}]}`)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Credentials: bad}, store); err == nil || !strings.Contains(err.Error(), "should not specify a principal") {
		t.Errorf("identity policy with a principal: %v", err)
	}
}

// TestPolicyCache: a key policy is parsed once, not per request.
func TestPolicyCache(t *testing.T) {
	e := newAuthEnv(t, nil)
	k := mustKey(t, e.client(alice))
	for i := 0; i < 20; i++ {
		if _, err := genMac(e.client(bob), aws.ToString(k.KeyId)); err != nil {
			t.Fatal(err)
		}
	}
	m := e.api.policies.m.Load()
	if m == nil || len(*m) != 1 {
		t.Fatalf("cache holds %v", m)
	}
	if _, ok := (*m)[policy.DefaultKeyPolicy(acctA)]; !ok {
		t.Fatal("default key policy not cached")
	}
	// The cache is bounded.
	var c policyCache
	for i := 0; i < maxCachedPolicies+10; i++ {
		c.get(`{"Statement":[],"Id":"` + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + itoa(i) + `"}`)
	}
	if n := len(*c.m.Load()); n > maxCachedPolicies {
		t.Fatalf("cache grew to %d", n)
	}
}

// TestAuthorizeFastPathAllocs: authorizing GenerateMac for an administrator
// under the default key policy builds no request context and allocates
// nothing.
func TestAuthorizeFastPathAllocs(t *testing.T) {
	e := newAuthEnv(t, nil)
	k := mustKey(t, e.client(alice))
	key, _ := e.store.State().Key(fsm.Scope{Account: acctA, Region: "us-east-1"}, aws.ToString(k.KeyId))
	alicePrincipal, _ := e.api.cfg.Credentials.Lookup(alice.akid)
	rc := &reqCtx{caller: e.api.callerFor(alicePrincipal), op: e.api.ops["GenerateMac"]}
	if e := e.api.authorizeKey(rc, &key, "HMAC_SHA_256"); e != nil {
		t.Fatal(e)
	}
	if n := testing.AllocsPerRun(200, func() { _ = e.api.authorizeKey(rc, &key, "HMAC_SHA_256") }); n != 0 {
		t.Errorf("%v allocations per authorization", n)
	}
}

func BenchmarkAuthorizeDefaultPolicyAdmin(b *testing.B) {
	e := newAuthEnv(b, nil)
	sc := fsm.Scope{Account: acctA, Region: "us-east-1"}
	seedFixedKey(b, e.store, e.sealer, sc, fuzzKey, "HMAC_256", fsm.OriginAWSKMS)
	key, _ := e.store.State().Key(sc, fuzzKey)
	p, _ := e.api.cfg.Credentials.Lookup(alice.akid)
	rc := &reqCtx{caller: e.api.callerFor(p), op: e.api.ops["GenerateMac"]}
	b.ReportAllocs()
	for b.Loop() {
		if e := e.api.authorizeKey(rc, &key, "HMAC_SHA_256"); e != nil {
			b.Fatal(e)
		}
	}
}

// BenchmarkGenerateMacServeHTTPSigV4 is BenchmarkGenerateMacServeHTTP with
// signature verification and authorization (requests signed once, outside
// the timed region).
func BenchmarkGenerateMacServeHTTPSigV4(b *testing.B) {
	e := newAuthEnv(b, nil)
	sc := fsm.Scope{Account: acctA, Region: "us-east-1"}
	seedFixedKey(b, e.store, e.sealer, sc, fuzzKey, "HMAC_256", fsm.OriginAWSKMS)
	applyCmd(b, e.store, sc, fsm.OpCreateAlias, fsm.AliasCmd{Name: "alias/bench", TargetKeyID: fuzzKey})
	h := e.api.Handler()
	body := []byte(benchMacBody)
	signed, _ := http.NewRequest(http.MethodPost, "http://kms.local/", bytes.NewReader(body))
	signed.Header.Set("X-Amz-Target", "TrentService.GenerateMac")
	signed.Header.Set("Content-Type", contentTypeAmzJSON)
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: alice.akid, SecretAccessKey: alice.secret},
		signed, hex.EncodeToString(sum[:]), "kms", "us-east-1", time.Now()); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPost, "http://kms.local/", bytes.NewReader(body))
			req.Header = signed.Header.Clone()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != 200 {
				b.Fatalf("status %d: %s", rec.Code, rec.Body.Bytes())
			}
		}
	})
}
