package agent_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/keyraft/keyraft/auth"
	"github.com/keyraft/keyraft/keyrafttest"
	"github.com/keyraft/keyraft/policy"
	"github.com/keyraft/keyraft/quota"
)

// The principals of the authenticated test clusters: accounts A
// (111122223333) and B (444455556666).
var (
	pAlice = auth.Principal{AccessKeyID: "AKIAALICE", SecretAccessKey: "alice/secret+key", AccountID: "111122223333",
		ARN: "arn:aws:iam::111122223333:user/alice"} // administrator of A
	pBob = auth.Principal{AccessKeyID: "AKIABOB", SecretAccessKey: "bob-secret", AccountID: "111122223333",
		ARN:            "arn:aws:iam::111122223333:user/bob",
		IdentityPolicy: []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:GenerateMac","kms:VerifyMac","kms:DescribeKey"],"Resource":"*"}]}`)}
	pCarol = auth.Principal{AccessKeyID: "AKIACAROL", SecretAccessKey: "carol-secret", AccountID: "111122223333",
		ARN: "arn:aws:iam::111122223333:user/carol", IdentityPolicy: []byte(`{}`)} // empty policy: nothing
	pDave = auth.Principal{AccessKeyID: "ASIADAVE", SecretAccessKey: "dave-secret", SessionToken: "dave-session-token",
		AccountID: "111122223333", ARN: "arn:aws:iam::111122223333:role/dave"} // temporary credentials
	pErin = auth.Principal{AccessKeyID: "AKIAERIN", SecretAccessKey: "erin-secret", AccountID: "444455556666",
		ARN: "arn:aws:iam::444455556666:user/erin"} // administrator of B
)

func testCredentials(t testing.TB) *auth.Credentials {
	t.Helper()
	c, err := auth.NewCredentials([]auth.Principal{pAlice, pBob, pCarol, pDave, pErin})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// awsCode asserts the AWS error code of err and a message fragment.
func awsCode(t *testing.T, err error, code, msgSub string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v, want %s", err, code)
	}
	if ae.ErrorCode() != code || !strings.Contains(ae.ErrorMessage(), msgSub) {
		t.Fatalf("error %s: %q, want %s containing %q", ae.ErrorCode(), ae.ErrorMessage(), code, msgSub)
	}
}

// skewedSigner is the SDK's signer with a clock off by skew.
type skewedSigner struct{ skew time.Duration }

func (s skewedSigner) SignHTTP(ctx context.Context, c aws.Credentials, r *http.Request, payloadHash, service, region string, at time.Time, o ...func(*v4.SignerOptions)) error {
	return v4.NewSigner().SignHTTP(ctx, c, r, payloadHash, service, region, at.Add(s.skew), o...)
}

// tamperer changes one character of the request's message after the SDK
// signed it (same length, still valid JSON and base64).
type tamperer struct{ n int }

func (tp *tamperer) Do(r *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	r.Body.Close()
	if i := bytes.Index(body, []byte(`"Message":"`)); i >= 0 {
		j := i + len(`"Message":"`)
		if body[j] == 'A' {
			body[j] = 'B'
		} else {
			body[j] = 'A'
		}
		tp.n++
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return http.DefaultClient.Do(r)
}

func mac(c *kms.Client, keyID string, dryRun bool) (*kms.GenerateMacOutput, error) {
	in := &kms.GenerateMacInput{KeyId: aws.String(keyID), MacAlgorithm: types.MacAlgorithmSpecHmacSha256, Message: msg}
	if dryRun {
		in.DryRun = aws.Bool(true)
	}
	return c.GenerateMac(context.Background(), in)
}

// TestSigV4Cluster runs a 3-node cluster with -auth sigv4 and several
// principals: authentication failures, key and identity policies, explicit
// deny, cross-account use, DryRun and the lockout check, each seen through
// different nodes.
func TestSigV4Cluster(t *testing.T) {
	c := keyrafttest.Start(t, keyrafttest.Options{Auth: "sigv4", Credentials: testCredentials(t)})
	ctx := keyrafttest.Context(t, 60*time.Second)
	alice := func(i int) *kms.Client { return c.ClientFor(i, &pAlice) }
	md := createKey(t, alice(0), types.KeySpecHmac256)
	keyID, keyARN := aws.ToString(md.KeyId), aws.ToString(md.Arn)
	for i := 1; i < 3; i++ {
		waitForKey(t, c, i, keyID) // c.Client(i) signs as alice, the first principal
	}

	t.Run("authentication", func(t *testing.T) {
		wrong := pAlice
		wrong.SecretAccessKey = "not-the-secret"
		_, err := mac(c.ClientFor(1, &wrong), keyID, false)
		awsCode(t, err, "InvalidSignatureException", "The request signature we calculated does not match the signature you provided.")

		_, err = mac(c.ClientAs(2, "AKIANOBODY", "x", ""), keyID, false)
		awsCode(t, err, "UnrecognizedClientException", "The security token included in the request is invalid.")

		_, err = mac(c.ClientFor(0, &pAlice, func(o *kms.Options) { o.HTTPSignerV4 = skewedSigner{-20 * time.Minute} }), keyID, false)
		awsCode(t, err, "InvalidSignatureException", "Signature expired")
		_, err = mac(c.ClientFor(1, &pAlice, func(o *kms.Options) { o.HTTPSignerV4 = skewedSigner{20 * time.Minute} }), keyID, false)
		awsCode(t, err, "InvalidSignatureException", "Signature not yet current")

		tp := &tamperer{}
		_, err = mac(c.ClientFor(2, &pAlice, func(o *kms.Options) { o.HTTPClient = tp }), keyID, false)
		awsCode(t, err, "InvalidSignatureException", "signature we calculated does not match")
		if tp.n != 1 {
			t.Fatalf("the body was tampered with %d times", tp.n)
		}

		// Temporary credentials: with their session token only.
		if _, err := mac(c.ClientFor(2, &pDave), keyARN, false); err != nil {
			t.Fatalf("session-token principal: %v", err)
		}
		_, err = mac(c.ClientAs(2, pDave.AccessKeyID, pDave.SecretAccessKey, ""), keyARN, false)
		awsCode(t, err, "UnrecognizedClientException", "security token")

		// An unsigned request.
		req, _ := http.NewRequest(http.MethodPost, c.Endpoint(1)+"/", strings.NewReader(`{"KeyId":"`+keyID+`"}`))
		req.Header.Set("X-Amz-Target", "TrentService.DescribeKey")
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || !bytes.Contains(body, []byte(`"__type":"MissingAuthenticationTokenException"`)) || resp.Header.Get("X-Amzn-Requestid") == "" {
			t.Fatalf("unsigned: %d %s", resp.StatusCode, body)
		}
	})

	t.Run("identity policies", func(t *testing.T) {
		if _, err := mac(c.ClientFor(1, &pBob), keyID, false); err != nil {
			t.Fatalf("bob GenerateMac: %v", err)
		}
		_, err := c.ClientFor(2, &pBob).DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(keyID)})
		awsCode(t, err, "AccessDeniedException", "User: arn:aws:iam::111122223333:user/bob is not authorized to perform: kms:DisableKey on resource: "+keyARN+" because no identity-based policy allows the kms:DisableKey action")
		// An empty identity policy allows nothing.
		_, err = c.ClientFor(0, &pCarol).DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(keyID)})
		awsCode(t, err, "AccessDeniedException", "kms:DescribeKey")
		_, err = c.ClientFor(1, &pCarol).CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecHmac256, KeyUsage: types.KeyUsageTypeGenerateVerifyMac})
		awsCode(t, err, "AccessDeniedException", "kms:CreateKey on resource: *")
		_, err = mac(c.ClientFor(2, &pCarol), keyID, false)
		awsCode(t, err, "AccessDeniedException", "kms:GenerateMac")
	})

	t.Run("dry run", func(t *testing.T) {
		_, err := mac(c.ClientFor(1, &pBob), keyID, true)
		awsCode(t, err, "DryRunOperationException", "The request would have succeeded, but the DryRun option is set.")
		_, err = mac(c.ClientFor(1, &pCarol), keyID, true)
		awsCode(t, err, "AccessDeniedException", "kms:GenerateMac")
	})

	t.Run("explicit deny", func(t *testing.T) {
		deny := `{"Version":"2012-10-17","Statement":[
			{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
			{"Sid":"NotBob","Effect":"Deny","Principal":{"AWS":"arn:aws:iam::111122223333:user/bob"},"Action":"kms:GenerateMac","Resource":"*"}]}`
		md2 := createKey(t, alice(1), types.KeySpecHmac256)
		if _, err := alice(1).PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: md2.KeyId, Policy: aws.String(deny)}); err != nil {
			t.Fatalf("PutKeyPolicy: %v", err)
		}
		c.WaitForConvergence(10 * time.Second)
		for i := range c.Nodes {
			_, err := mac(c.ClientFor(i, &pBob), aws.ToString(md2.KeyId), false)
			awsCode(t, err, "AccessDeniedException", "with an explicit deny in a resource-based policy")
			if _, err := mac(alice(i), aws.ToString(md2.KeyId), false); err != nil {
				t.Fatalf("alice on node %d: %v", i, err)
			}
		}
	})

	t.Run("cross account", func(t *testing.T) {
		md3 := createKey(t, alice(0), types.KeySpecHmac256)
		arn3 := aws.ToString(md3.Arn)
		c.WaitForConvergence(10 * time.Second)
		_, err := mac(c.ClientFor(1, &pErin), arn3, false)
		awsCode(t, err, "AccessDeniedException", "User: arn:aws:iam::444455556666:user/erin is not authorized to perform: kms:GenerateMac on resource: "+arn3+" because no resource-based policy allows the kms:GenerateMac action")
		_, err = mac(c.ClientFor(1, &pErin), aws.ToString(md3.KeyId), false)
		awsCode(t, err, "NotFoundException", "arn:aws:kms:us-east-1:444455556666:key/")

		share := `{"Statement":[
			{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:*","Resource":"*"},
			{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":["kms:GenerateMac","kms:VerifyMac","kms:DescribeKey"],"Resource":"*"}]}`
		if _, err := alice(0).PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: md3.KeyId, Policy: aws.String(share)}); err != nil {
			t.Fatalf("PutKeyPolicy: %v", err)
		}
		c.WaitForConvergence(10 * time.Second)
		g, err := mac(c.ClientFor(1, &pErin), arn3, false)
		if err != nil {
			t.Fatalf("erin GenerateMac by key ARN: %v", err)
		}
		v, err := c.ClientFor(2, &pErin).VerifyMac(ctx, &kms.VerifyMacInput{KeyId: aws.String(arn3), MacAlgorithm: types.MacAlgorithmSpecHmacSha256, Message: msg, Mac: g.Mac})
		if err != nil || !v.MacValid {
			t.Fatalf("erin VerifyMac on another node: %v", err)
		}
		// The owner's MAC is the same MAC.
		if own, err := mac(alice(2), arn3, false); err != nil || !bytes.Equal(own.Mac, g.Mac) {
			t.Fatalf("alice's MAC differs: %v", err)
		}
		// Only the cross-account operations may name the key.
		_, err = c.ClientFor(0, &pErin).DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(arn3)})
		awsCode(t, err, "NotFoundException", arn3)
		// The rest of account B still cannot use account A's other keys.
		_, err = mac(c.ClientFor(0, &pErin), keyARN, false)
		awsCode(t, err, "AccessDeniedException", "no resource-based policy allows")
	})

	t.Run("lockout", func(t *testing.T) {
		md4 := createKey(t, alice(2), types.KeySpecHmac256)
		onlyBob := `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/bob"},"Action":"kms:*","Resource":"*"}]}`
		_, err := alice(2).PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: md4.KeyId, Policy: aws.String(onlyBob)})
		awsCode(t, err, "MalformedPolicyDocumentException", policy.MsgLockout)
		if _, err := alice(2).PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: md4.KeyId, Policy: aws.String(onlyBob), BypassPolicyLockoutSafetyCheck: true}); err != nil {
			t.Fatalf("PutKeyPolicy with bypass: %v", err)
		}
		c.WaitForConvergence(10 * time.Second)
		for i := range c.Nodes {
			_, err := alice(i).GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: md4.KeyId})
			awsCode(t, err, "AccessDeniedException", "because no resource-based policy allows the kms:GetKeyPolicy action")
		}
		// bob is named by the key policy directly: he may use the key
		// beyond his identity policy.
		if _, err := c.ClientFor(1, &pBob).GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: md4.KeyId}); err != nil {
			t.Fatalf("bob GetKeyPolicy: %v", err)
		}
	})
}

// TestThrottling: with AWS's default quotas CreateKey admits 5 requests per
// second per account and region; a burst beyond that is ThrottlingException
// (seen here with the SDK's retries off).
func TestThrottling(t *testing.T) {
	c := keyrafttest.Start(t, keyrafttest.Options{Nodes: 1, Auth: "sigv4", Credentials: testCredentials(t), Quotas: quota.DefaultAWSRates()})
	client := c.ClientFor(0, &pAlice)
	const burst = 12
	var wg sync.WaitGroup
	errs := make([]error, burst)
	for i := 0; i < burst; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, errs[i] = client.CreateKey(context.Background(), &kms.CreateKeyInput{KeySpec: types.KeySpecHmac256, KeyUsage: types.KeyUsageTypeGenerateVerifyMac})
		}(i)
	}
	wg.Wait()
	ok, throttled := 0, 0
	for _, err := range errs {
		var ae smithy.APIError
		switch {
		case err == nil:
			ok++
		case errors.As(err, &ae) && ae.ErrorCode() == "ThrottlingException":
			throttled++
			if ae.ErrorMessage() != quota.ThrottlingMessage {
				t.Errorf("message %q", ae.ErrorMessage())
			}
		default:
			t.Fatalf("CreateKey: %v", err)
		}
	}
	if ok < 5 || ok > 6 || throttled != burst-ok {
		t.Fatalf("%d created, %d throttled; want 5 (or 6 with a refill) and the rest throttled", ok, throttled)
	}
	// Throttled per account: account B is not affected; other quota
	// classes are not either.
	if _, err := c.ClientFor(0, &pErin).CreateKey(context.Background(), &kms.CreateKeyInput{KeySpec: types.KeySpecHmac256, KeyUsage: types.KeyUsageTypeGenerateVerifyMac}); err != nil {
		t.Fatalf("account B: %v", err)
	}
	if _, err := client.ListKeys(context.Background(), &kms.ListKeysInput{}); err != nil {
		t.Fatalf("ListKeys: %v", err)
	}
	// The bucket refills at 5 per second.
	time.Sleep(450 * time.Millisecond)
	if _, err := client.CreateKey(context.Background(), &kms.CreateKeyInput{KeySpec: types.KeySpecHmac256, KeyUsage: types.KeyUsageTypeGenerateVerifyMac}); err != nil {
		t.Fatalf("after refill: %v", err)
	}
}
