package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// python3 is Debian's interpreter, with python3-boto3 (.ci/run installs it).
const python3 = "/usr/bin/python3"

func needBoto3(t *testing.T) {
	t.Helper()
	if err := exec.Command(python3, "-c", "import boto3").Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("boto3 (Debian python3-boto3) is not installed: .ci/run installs it")
		}
		t.Skip("boto3 (/usr/bin/python3 with Debian python3-boto3) not installed")
	}
}

// TestDevSigV4WithBoto3 runs testdata/boto3_e2e.py against `keyraft dev
// -auth sigv4`: a key created on one node, MACs generated and verified on
// the others, a session-token principal, a wrong secret and an unknown
// access key refused, AccessDenied for a principal with an empty identity
// policy; a grant used with its grant token inside the dev cluster's grant
// propagation delay, refused without it, Name idempotency, ListGrants and
// RevokeGrant.
func TestDevSigV4WithBoto3(t *testing.T) {
	needBoto3(t)
	creds, err := filepath.Abs("testdata/credentials.json")
	if err != nil {
		t.Fatal(err)
	}
	d := startDev(t, 3, "-auth", "sigv4", "-credentials", creds)
	out := d.out.String()
	for _, want := range []string{"Authentication: sigv4", "AKIAE2EALICE", "arn:aws:iam::111122223333:user/alice",
		"Grant propagation delay: 3s on every node"} {
		if !strings.Contains(out, want) {
			t.Errorf("the banner does not mention %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "alice/e2e+secret") {
		t.Errorf("the banner prints a secret:\n%s", out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, python3, "testdata/boto3_e2e.py")
	home := t.TempDir()
	cmd.Env = append(envWithoutAWS(), "KEYRAFT_ENDPOINTS="+strings.Join(d.apis, ","), "HOME="+home,
		"AWS_CONFIG_FILE="+filepath.Join(home, "config"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(home, "credentials"))
	output, err := cmd.CombinedOutput()
	t.Logf("boto3 script:\n%s", output)
	if err != nil || !strings.Contains(string(output), "PASS") {
		t.Fatalf("boto3 script failed: %v", err)
	}

	// The AWS CLI too, when it is installed: signed by a principal of the
	// file, refused with a wrong secret.
	if _, err := os.Stat("/usr/bin/aws"); err != nil {
		return
	}
	cli := func(akid, secret string, args ...string) (string, error) {
		c := exec.CommandContext(ctx, "/usr/bin/aws", append(append([]string{"kms"}, args...), "--endpoint-url", d.apis[1], "--output", "json")...)
		c.Env = append(envWithoutAWS(), "AWS_ACCESS_KEY_ID="+akid, "AWS_SECRET_ACCESS_KEY="+secret,
			"AWS_DEFAULT_REGION=us-east-1", "AWS_CONFIG_FILE="+filepath.Join(home, "config"),
			"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(home, "credentials"), "AWS_PAGER=", "HOME="+home, "AWS_MAX_ATTEMPTS=1")
		b, err := c.CombinedOutput()
		return string(b), err
	}
	if out, err := cli("AKIAE2EALICE", "alice/e2e+secret", "list-keys"); err != nil || !strings.Contains(out, "KeyArn") {
		t.Fatalf("aws kms list-keys as alice: %v: %s", err, out)
	}
	if out, err := cli("AKIAE2EALICE", "wrong", "list-keys"); err == nil || !strings.Contains(out, "InvalidSignatureException") {
		t.Fatalf("aws kms list-keys with a wrong secret: %v: %s", err, out)
	}
}

// envWithoutAWS is the environment without AWS_* settings (credentials,
// profiles, endpoints) that could change what an SDK sends.
func envWithoutAWS() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	return env
}

func TestAgentSigV4NeedsCredentials(t *testing.T) {
	dir := t.TempDir()
	seal := filepath.Join(dir, "seal.key")
	if out, err := exec.Command(keyraftBin, "keygen", "-out", seal).CombinedOutput(); err != nil {
		t.Fatalf("keygen: %v %s", err, out)
	}
	out, err := exec.Command(keyraftBin, "agent", "-node-id", "x", "-data-dir", dir, "-seal-key-file", seal).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "-auth sigv4 (the default) needs -credentials FILE") || !strings.Contains(string(out), "-auth none") {
		t.Fatalf("agent without credentials: %v: %s", err, out)
	}
	bad := filepath.Join(dir, "creds.json")
	os.WriteFile(bad, []byte(`{"principals":[{"access_key_id":"AKIDX","secret_access_key":"topsecret","account_id":"1","arn":"arn:aws:iam::1:user/x"}]}`), 0o600)
	out, err = exec.Command(keyraftBin, "agent", "-node-id", "x", "-data-dir", dir, "-seal-key-file", seal, "-credentials", bad).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "account_id") || strings.Contains(string(out), "topsecret") {
		t.Fatalf("agent with a bad credentials file: %v: %s", err, out)
	}
	out, err = exec.Command(keyraftBin, "dev", "-auth", "sigv4").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "needs -credentials FILE") {
		t.Fatalf("dev -auth sigv4 without credentials: %v: %s", err, out)
	}
}

// badPolicyFile writes a credentials file whose identity policy names a
// Principal (valid JSON, not a valid identity policy).
func badPolicyFile(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "creds.json")
	os.WriteFile(p, []byte(`{"principals":[{"access_key_id":"AKIDX","secret_access_key":"s","account_id":"111122223333",
		"arn":"arn:aws:iam::111122223333:user/x","identity_policy":{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}]}}]}`), 0o600)
	return p
}

func TestAuthAndQuotaFlags(t *testing.T) {
	cases := []struct {
		flags   agentFlags
		mode    string
		rates   map[string]float64
		errPart string
	}{
		{flags: agentFlags{authMode: "none", quotas: "off"}, mode: "none"},
		{flags: agentFlags{authMode: "sigv4", quotas: "off"}, errPart: "needs -credentials"},
		{flags: agentFlags{authMode: "sigv4", credentialsFile: "testdata/credentials.json", quotas: "off"}, mode: "sigv4"},
		{flags: agentFlags{authMode: "kerberos", quotas: "off"}, errPart: `"kerberos" is not sigv4 or none`},
		{flags: agentFlags{authMode: "none", quotas: "aws", quotaOverrides: "CreateKey=10,cryptographic=100"}, mode: "none",
			rates: map[string]float64{"CreateKey": 10, "cryptographic": 100, "DescribeKey": 2000, "GetParametersForImport": 0.25}},
		{flags: agentFlags{authMode: "none", quotas: "off", quotaOverrides: "CreateKey=2"}, mode: "none", rates: map[string]float64{"CreateKey": 2}},
		{flags: agentFlags{authMode: "none", quotas: "some"}, errPart: `-quotas: "some" is not off or aws`},
		{flags: agentFlags{authMode: "none", quotas: "aws", quotaOverrides: "GenerateMac=5"}, errPart: "cryptographic"},
		{flags: agentFlags{authMode: "none", quotas: "off", credentialsFile: "testdata/missing.json"}, errPart: "missing.json"},
		{flags: agentFlags{authMode: "sigv4", quotas: "off", credentialsFile: badPolicyFile(t)}, errPart: "should not specify a principal"},
	}
	for _, c := range cases {
		mode, creds, rates, err := c.flags.authSettings()
		if c.errPart != "" {
			if err == nil || !strings.Contains(err.Error(), c.errPart) {
				t.Errorf("%+v: error %v, want %q", c.flags, err, c.errPart)
			}
			continue
		}
		if err != nil || mode != c.mode {
			t.Errorf("%+v: %q %v", c.flags, mode, err)
			continue
		}
		if c.flags.credentialsFile != "" && creds.Len() != 3 {
			t.Errorf("credentials: %d principals", creds.Len())
		}
		if c.rates == nil && rates != nil {
			t.Errorf("%+v: rates %v, want none", c.flags, rates)
		}
		for k, v := range c.rates {
			if rates[k] != v {
				t.Errorf("%+v: rate %s = %v, want %v", c.flags, k, rates[k], v)
			}
		}
		if c.flags.quotas == "off" && len(rates) != len(c.rates) {
			t.Errorf("%+v: rates %v", c.flags, rates)
		}
	}
}

func TestDevGrantDelays(t *testing.T) {
	cases := []struct {
		nodes     int
		def       time.Duration
		spec      string
		retention time.Duration
		want      []time.Duration
		errPart   string
	}{
		{3, 3 * time.Second, "", time.Hour, []time.Duration{3 * time.Second, 3 * time.Second, 3 * time.Second}, ""},
		{3, 3 * time.Second, "n1=0s, n3=5s", time.Hour, []time.Duration{0, 3 * time.Second, 5 * time.Second}, ""},
		{2, 0, "n2=1m", time.Hour, []time.Duration{0, time.Minute}, ""},
		{3, 0, "n4=1s", time.Hour, nil, `"n4" is not a node of this cluster (n1 to n3)`},
		{3, 0, "x1=1s", time.Hour, nil, "is not a node"},
		{3, 0, "n1:1s", time.Hour, nil, "is not NODE=DURATION"},
		{3, 0, "n1=soon", time.Hour, nil, `"soon" is not a duration`},
		{3, 0, "n1=-1s", time.Hour, nil, "is not a duration >= 0"},
		{3, -time.Second, "", time.Hour, nil, "is negative"},
		{3, time.Second, "n2=2h", time.Hour, nil, "-grant-tombstone-retention (1h0m0s) must exceed every node's grant propagation delay (n2: 2h0m0s)"},
	}
	for _, c := range cases {
		got, err := grantDelaysOf(c.nodes, c.def, c.spec, c.retention)
		if c.errPart != "" {
			if err == nil || !strings.Contains(err.Error(), c.errPart) {
				t.Errorf("%q: error %v, want %q", c.spec, err, c.errPart)
			}
			continue
		}
		if err != nil || len(got) != len(c.want) {
			t.Errorf("%q: %v %v", c.spec, got, err)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%q: %v, want %v", c.spec, got, c.want)
			}
		}
	}
}
