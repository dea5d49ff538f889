package auth

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadCredentials(t *testing.T) {
	c, err := LoadCredentials("testdata/credentials.json")
	if err != nil {
		t.Fatal(err)
	}
	if c.Len() != 3 || len(c.Principals()) != 3 {
		t.Fatalf("Len = %d", c.Len())
	}
	alice, ok := c.Lookup("AKIAIOSFODNN7EXAMPLE")
	if !ok || alice.SecretAccessKey != "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" || alice.AccountID != "111122223333" ||
		alice.ARN != "arn:aws:iam::111122223333:user/alice" || alice.SessionToken != "" || !alice.IsAdministrator() ||
		alice.IdentityPolicy != nil {
		t.Errorf("alice = %#v, admin %v", alice, alice.IsAdministrator())
	}
	signer, ok := c.Lookup("ASIAIOSFODNN7EXAMPLE")
	if !ok || signer.SessionToken != "FwoGZXIvYXdzEXAMPLETOKEN" || signer.IsAdministrator() {
		t.Fatalf("signer = %#v", signer)
	}
	const wantPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:GenerateMac","kms:VerifyMac"],"Resource":"*"}]}`
	if string(signer.IdentityPolicy) != wantPolicy {
		t.Errorf("policy = %s, want (compacted) %s", signer.IdentityPolicy, wantPolicy)
	}
	nobody, ok := c.Lookup("AKIANOTHINGEXAMPLE")
	if !ok || nobody.IsAdministrator() || string(nobody.IdentityPolicy) != "{}" || nobody.ARN != "arn:aws:iam::111122223333:user/ops/nobody" {
		t.Errorf("nobody = %#v policy %s", nobody, nobody.IdentityPolicy)
	}
	if _, ok := c.Lookup("AKIAUNKNOWN"); ok {
		t.Error("unknown key found")
	}
	if _, ok := c.Lookup(""); ok {
		t.Error("empty key found")
	}
	var nilCreds *Credentials
	if _, ok := nilCreds.Lookup("x"); ok || nilCreds.Len() != 0 || nilCreds.Principals() != nil {
		t.Error("nil Credentials misbehaves")
	}
	// Principals returns a copy of the list.
	ps := c.Principals()
	ps[0] = nil
	if c.Principals()[0] == nil {
		t.Error("Principals exposes the internal slice")
	}
}

// TestDocExample parses the example in doc.go, so the documentation cannot
// drift from the parser.
func TestDocExample(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var js strings.Builder
	in := false
	for _, line := range strings.Split(string(src), "\n") {
		if line == "//\t{" {
			in = true
		}
		if in {
			js.WriteString(strings.TrimPrefix(line, "//\t"))
			js.WriteByte('\n')
			if line == "//\t}" {
				break
			}
		}
	}
	c, err := ParseCredentials([]byte(js.String()))
	if err != nil {
		t.Fatalf("doc.go example: %v\n%s", err, js.String())
	}
	if c.Len() != 2 {
		t.Fatalf("doc.go example has %d principals", c.Len())
	}
}

const (
	leakSecret = "s3cr3t/DoNotLeak+Zq9"
	leakToken  = "t0ken/DoNotLeak+Xy7"
)

// entry renders one principal; fields maps JSON member to raw JSON value
// ("" deletes the member).
func entry(fields map[string]string) string {
	base := map[string]string{
		"access_key_id":     `"AKIDGOOD"`,
		"secret_access_key": `"` + leakSecret + `"`,
		"session_token":     `"` + leakToken + `"`,
		"account_id":        `"111122223333"`,
		"arn":               `"arn:aws:iam::111122223333:user/alice"`,
	}
	for k, v := range fields {
		base[k] = v
	}
	var parts []string
	for _, k := range []string{"access_key_id", "secret_access_key", "session_token", "account_id", "arn", "identity_policy", "secret_acess_key"} {
		if v, ok := base[k]; ok && v != "" {
			parts = append(parts, fmt.Sprintf("%q: %s", k, v))
		}
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func file(entries ...string) string {
	return `{"principals": [` + strings.Join(entries, ",\n") + `]}`
}

func TestCredentialsValidation(t *testing.T) {
	good := entry(nil)
	cases := []struct{ name, json, want string }{
		{"empty file", "", "empty file"},
		{"whitespace only", "  \n ", "empty file"},
		{"top-level array", "[]", "wrong JSON type"},
		{"no principals member", "{}", "no principals"},
		{"null principals", `{"principals": null}`, "no principals"},
		{"empty principals", `{"principals": []}`, "no principals"},
		{"syntax error inside the secret", `{"principals": [{"access_key_id": "AKID", "secret_access_key": ` + leakSecret + `}]}`,
			"invalid JSON at line 1, column 64"},
		{"syntax error on line 3", "{\n\"principals\": [\n{\"access_key_id\": \"A\",, }]}", "invalid JSON at line 3"},
		{"truncated", `{"principals": [{"access_key_id": "AKID", "secret_access_key": "` + leakSecret, "unexpected end of file"},
		{"secret of the wrong type", file(entry(map[string]string{"secret_access_key": "12345"})), "secret_access_key has the wrong JSON type"},
		{"unknown member", file(entry(map[string]string{"secret_acess_key": `"x"`})), `unknown field "secret_acess_key"`},
		{"unknown top-level member", `{"principals": [], "extra": 1}`, `unknown field "extra"`},
		{"trailing data", file(good) + " {}", "unexpected data after"},
		{"missing access key", file(entry(map[string]string{"access_key_id": ""})), "principals[0]: access_key_id is missing"},
		{"bad access key", file(entry(map[string]string{"access_key_id": `"AK ID"`})), "principals[0]: access_key_id must be"},
		{"access key too long", file(entry(map[string]string{"access_key_id": `"` + strings.Repeat("A", 129) + `"`})), "access_key_id must be"},
		{"missing secret", file(entry(map[string]string{"secret_access_key": ""})), `principals[0] (access key "AKIDGOOD"): secret_access_key is missing`},
		{"secret with a newline", file(entry(map[string]string{"secret_access_key": `"` + leakSecret + `\n"`})), "secret_access_key must be"},
		{"secret too long", file(entry(map[string]string{"secret_access_key": `"` + leakSecret + strings.Repeat("x", 300) + `"`})), "secret_access_key must be"},
		{"token with a space", file(entry(map[string]string{"session_token": `"` + leakToken + ` x"`})), "session_token must be"},
		{"missing account", file(entry(map[string]string{"account_id": ""})), "account_id is missing"},
		{"account of 11 digits", file(entry(map[string]string{"account_id": `"11112222333"`})), `account_id "11112222333" must be exactly 12 digits`},
		{"account with letters", file(entry(map[string]string{"account_id": `"11112222333a"`})), "must be exactly 12 digits"},
		{"account as a number", file(entry(map[string]string{"account_id": `111122223333`})), "account_id has the wrong JSON type"},
		{"missing arn", file(entry(map[string]string{"arn": ""})), "arn is missing"},
		{"arn of another service", file(entry(map[string]string{"arn": `"arn:aws:kms:us-east-1:111122223333:key/x"`})), "must start with arn:aws:iam::"},
		{"arn of another partition", file(entry(map[string]string{"arn": `"arn:aws-cn:iam::111122223333:user/alice"`})), "must start with arn:aws:iam::"},
		{"arn without resource", file(entry(map[string]string{"arn": `"arn:aws:iam::111122223333"`})), "must be arn:aws:iam::<account-id>:user/<name>"},
		{"arn of root", file(entry(map[string]string{"arn": `"arn:aws:iam::111122223333:root"`})), "user/<name> or role/<name>"},
		{"arn of a group", file(entry(map[string]string{"arn": `"arn:aws:iam::111122223333:group/admins"`})), "user/<name> or role/<name>"},
		{"arn with empty name", file(entry(map[string]string{"arn": `"arn:aws:iam::111122223333:role/"`})), "must not be empty"},
		{"arn with a space", file(entry(map[string]string{"arn": `"arn:aws:iam::111122223333:user/al ice"`})), "invalid character ' '"},
		{"arn name too long", file(entry(map[string]string{"arn": `"arn:aws:iam::111122223333:user/` + strings.Repeat("a", 65) + `"`})), "at most 64"},
		{"arn account malformed", file(entry(map[string]string{"arn": `"arn:aws:iam::1111:user/alice"`})), "account id in the ARN must be exactly 12 digits"},
		{"arn account mismatch", file(entry(map[string]string{"arn": `"arn:aws:iam::444455556666:user/alice"`})),
			`arn "arn:aws:iam::444455556666:user/alice" belongs to account 444455556666 but account_id is 111122223333`},
		{"duplicate access key", file(good, entry(map[string]string{"arn": `"arn:aws:iam::111122223333:user/bob"`})),
			`principals[1]: access_key_id "AKIDGOOD" is already used by principals[0]`},
		{"same identity, different policies", file(good, entry(map[string]string{"access_key_id": `"AKIDOTHER"`, "identity_policy": `{}`})),
			"is also principals[0] with a different identity_policy"},
		{"policy null", file(entry(map[string]string{"identity_policy": "null"})), "identity_policy is null"},
		{"policy array", file(entry(map[string]string{"identity_policy": `[]`})), "identity_policy: must be a JSON object"},
		{"policy string", file(entry(map[string]string{"identity_policy": `"allow all"`})), "identity_policy: must be a JSON object"},
		{"policy statement string", file(entry(map[string]string{"identity_policy": `{"Statement": "x"}`})), "Statement must be"},
		{"policy version number", file(entry(map[string]string{"identity_policy": `{"Version": 2012}`})), "Version must be a string"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseCredentials([]byte(c.json))
			if err == nil {
				t.Fatalf("accepted:\n%s", c.json)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q, want it to contain %q", err, c.want)
			}
			noLeak(t, err.Error())

			// The same through a file: the message names the file.
			path := filepath.Join(t.TempDir(), "creds.json")
			if err := os.WriteFile(path, []byte(c.json), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err = LoadCredentials(path)
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("LoadCredentials error %q", err)
			}
			noLeak(t, fmt.Sprint(err))
		})
	}
}

func noLeak(t *testing.T, msg string) {
	t.Helper()
	for _, s := range []string{leakSecret, leakToken, "s3cr3t", "t0ken", "DoNotLeak"} {
		if strings.Contains(msg, s) {
			t.Errorf("error leaks secret material %q: %s", s, msg)
		}
	}
}

func TestCredentialsValidVariants(t *testing.T) {
	c, err := ParseCredentials([]byte(file(
		entry(map[string]string{"session_token": ""}),
		entry(map[string]string{"access_key_id": `"AKID2"`, "session_token": ""}), // second key of the same user
		entry(map[string]string{"access_key_id": `"test"`, "secret_access_key": `"test"`, "session_token": "",
			"account_id": `"000000000000"`, "arn": `"arn:aws:iam::000000000000:role/path/to/Role+Name=,.@_-"`,
			"identity_policy": `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"kms:*","Resource":"*"}}`}),
	)))
	if err != nil {
		t.Fatal(err)
	}
	if c.Len() != 3 {
		t.Fatalf("Len = %d", c.Len())
	}
	if p, ok := c.Lookup("test"); !ok || p.SecretAccessKey != "test" || p.AccountID != "000000000000" || p.IsAdministrator() {
		t.Errorf("test principal = %#v", p)
	}
}

func TestNewCredentialsCopies(t *testing.T) {
	in := []Principal{{AccessKeyID: "AKID", SecretAccessKey: "s", AccountID: "111122223333", ARN: "arn:aws:iam::111122223333:user/a"}}
	c, err := NewCredentials(in)
	if err != nil {
		t.Fatal(err)
	}
	in[0].SecretAccessKey = "changed"
	if p, _ := c.Lookup("AKID"); p.SecretAccessKey != "s" {
		t.Error("NewCredentials keeps a reference to its input")
	}
	if _, err := NewCredentials(nil); err == nil {
		t.Error("no principals accepted")
	}
	if _, err := LoadCredentials(filepath.Join(t.TempDir(), "missing.json")); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("missing file: %v", err)
	}
}

func TestPrincipalFormattingHidesSecrets(t *testing.T) {
	p := &Principal{AccessKeyID: "AKIDFMT", SecretAccessKey: leakSecret, SessionToken: leakToken, AccountID: "111122223333",
		ARN: "arn:aws:iam::111122223333:user/fmt"}
	out := fmt.Sprintf("%v %+v %#v %s %v %+v %#v", p, p, p, p, *p, *p, *p)
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "principal", p, "value", *p)
	out += buf.String()
	noLeak(t, out)
	for _, want := range []string{"AKIDFMT", "arn:aws:iam::111122223333:user/fmt"} {
		if !strings.Contains(out, want) {
			t.Errorf("formatted output lacks %q: %s", want, out)
		}
	}
}
