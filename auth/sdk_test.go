package auth

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
)

// newAuthServer serves a fake KMS whose only logic is Verify: errors are
// answered AWS-style, GenerateMac with the caller's region and account in
// the key ARN.
func newAuthServer(t *testing.T, v *Verifier) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.Header().Set("X-Amzn-Requestid", "00000000-0000-0000-0000-000000000000")
		id, err := v.Verify(r, body)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				http.Error(w, "not an *auth.Error", 500)
				return
			}
			w.Header().Set("X-Test-Error", e.Code)
			w.WriteHeader(e.Status)
			_ = json.NewEncoder(w).Encode(map[string]string{"__type": e.Code, "message": e.Message})
			return
		}
		w.Header().Set("X-Test-Region", id.Region)
		w.Header().Set("X-Test-Principal", id.Principal.ARN)
		switch r.Header.Get("X-Amz-Target") {
		case "TrentService.GenerateMac":
			_ = json.NewEncoder(w).Encode(map[string]string{
				"KeyId":        "arn:aws:kms:" + id.Region + ":" + id.Principal.AccountID + ":key/1234abcd-12ab-34cd-56ef-1234567890ab",
				"Mac":          "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM=",
				"MacAlgorithm": "HMAC_SHA_256",
			})
		default:
			_, _ = w.Write([]byte("{}"))
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestGoSDKClient drives the real KMS client of the AWS SDK for Go v2.
func TestGoSDKClient(t *testing.T) {
	v := NewVerifier(testCreds(t), VerifierOptions{})
	srv := newAuthServer(t, v)
	call := func(region, akid, secret, token string) (*kms.GenerateMacOutput, error) {
		client := kms.New(kms.Options{
			Region:           region,
			BaseEndpoint:     aws.String(srv.URL),
			Credentials:      credentials.NewStaticCredentialsProvider(akid, secret, token),
			RetryMaxAttempts: 1,
		})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return client.GenerateMac(ctx, &kms.GenerateMacInput{
			KeyId: aws.String("alias/rfc4231"), MacAlgorithm: types.MacAlgorithmSpecHmacSha256,
			Message: []byte("what do ya want for nothing?"),
		})
	}
	for _, c := range []struct {
		name, region, akid, secret, token string
		wantCode, wantKey                 string
	}{
		{"alice us-east-1", "us-east-1", exampleAKID, exampleSecret, "", "", "arn:aws:kms:us-east-1:111122223333:key/"},
		{"alice eu-west-2", "eu-west-2", exampleAKID, exampleSecret, "", "", "arn:aws:kms:eu-west-2:111122223333:key/"},
		{"bob with session token", "ap-south-1", bobAKID, bobSecret, bobToken, "", "arn:aws:kms:ap-south-1:444455556666:key/"},
		{"bob without token", "us-east-1", bobAKID, bobSecret, "", CodeUnrecognizedClient, ""},
		{"alice with a token", "us-east-1", exampleAKID, exampleSecret, "tok", CodeUnrecognizedClient, ""},
		{"wrong secret", "us-east-1", exampleAKID, "wrong", "", CodeInvalidSignature, ""},
		{"unknown key", "us-east-1", "AKIANOBODY", "x", "", CodeUnrecognizedClient, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := call(c.region, c.akid, c.secret, c.token)
			if c.wantCode == "" {
				if err != nil {
					t.Fatalf("GenerateMac: %v", err)
				}
				if !strings.HasPrefix(aws.ToString(out.KeyId), c.wantKey) {
					t.Errorf("KeyId = %q, want prefix %q", aws.ToString(out.KeyId), c.wantKey)
				}
				return
			}
			var ae smithy.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v, want API error %s", err, c.wantCode)
			}
			if ae.ErrorCode() != c.wantCode {
				t.Errorf("code = %q (%s), want %q", ae.ErrorCode(), ae.ErrorMessage(), c.wantCode)
			}
		})
	}
}

const botocoreScript = `
import json, sys
import botocore.session, botocore.config
from botocore.exceptions import ClientError
endpoint, region, akid, secret, token = sys.argv[1:6]
s = botocore.session.get_session()
c = s.create_client("kms", region_name=region, endpoint_url=endpoint, aws_access_key_id=akid,
    aws_secret_access_key=secret, aws_session_token=(token or None),
    config=botocore.config.Config(retries={"max_attempts": 1}))
try:
    r = c.generate_mac(KeyId="alias/x", MacAlgorithm="HMAC_SHA_256", Message=b"hello")
    print(json.dumps({"key": r["KeyId"]}))
except ClientError as e:
    print(json.dumps({"code": e.response["Error"]["Code"], "message": e.response["Error"]["Message"]}))
`

// TestBotocoreClient drives botocore (what boto3 and the AWS CLI sign
// with), when Python and botocore are installed.
func TestBotocoreClient(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	if err := exec.Command(py, "-c", "import botocore").Run(); err != nil {
		t.Skip("botocore not installed")
	}
	v := NewVerifier(testCreds(t), VerifierOptions{})
	srv := newAuthServer(t, v)
	script := filepath.Join(t.TempDir(), "sign.py")
	if err := os.WriteFile(script, []byte(botocoreScript), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, region, akid, secret, token, want string
	}{
		{"alice", "eu-central-1", exampleAKID, exampleSecret, "", "arn:aws:kms:eu-central-1:111122223333:key/"},
		{"bob with session token", "us-west-2", bobAKID, bobSecret, bobToken, "arn:aws:kms:us-west-2:444455556666:key/"},
		{"wrong secret", "us-east-1", exampleAKID, "wrong", "", CodeInvalidSignature},
		{"bob without token", "us-east-1", bobAKID, bobSecret, "", CodeUnrecognizedClient},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, py, script, srv.URL, c.region, c.akid, c.secret, c.token)
			cmd.Env = append(cleanEnv(), "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("botocore: %v\n%s", err, out)
			}
			var res struct{ Key, Code, Message string }
			if err := json.Unmarshal(out, &res); err != nil {
				t.Fatalf("botocore output %q: %v", out, err)
			}
			if strings.HasPrefix(c.want, "arn:") {
				if !strings.HasPrefix(res.Key, c.want) {
					t.Errorf("result %+v, want key %s...", res, c.want)
				}
			} else if res.Code != c.want {
				t.Errorf("result %+v, want code %s", res, c.want)
			}
		})
	}
}

// TestAWSCLI drives the AWS CLI, when installed.
func TestAWSCLI(t *testing.T) {
	cli, err := exec.LookPath("aws")
	if err != nil {
		t.Skip("aws CLI not installed")
	}
	if err := exec.Command(cli, "--version").Run(); err != nil {
		t.Skip("aws CLI not runnable")
	}
	v := NewVerifier(testCreds(t), VerifierOptions{})
	srv := newAuthServer(t, v)
	run := func(secret string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, cli, "kms", "generate-mac", "--key-id", "alias/x", "--mac-algorithm", "HMAC_SHA_256",
			"--message", "aGVsbG8=", "--endpoint-url", srv.URL, "--region", "eu-north-1", "--output", "json")
		cmd.Env = append(cleanEnv(), "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
			"AWS_ACCESS_KEY_ID="+exampleAKID, "AWS_SECRET_ACCESS_KEY="+secret, "AWS_MAX_ATTEMPTS=1",
			"AWS_PAGER=")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run(exampleSecret)
	if err != nil || !strings.Contains(out, "arn:aws:kms:eu-north-1:111122223333:key/") {
		t.Fatalf("aws kms generate-mac: %v\n%s", err, out)
	}
	out, err = run("wrong")
	if err == nil || !strings.Contains(out, "InvalidSignatureException") {
		t.Fatalf("wrong secret: err %v\n%s", err, out)
	}
}

// cleanEnv is the environment without AWS_* variables.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	return env
}
