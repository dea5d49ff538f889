package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/policy"
)

func keysOf(m map[string]any) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func TestCreateKeyMetadata(t *testing.T) {
	e := newEnv(t, nil)
	before := e.clock.Now()
	r := e.mustCall("CreateKey", `{"KeySpec":"HMAC_384","KeyUsage":"GENERATE_VERIFY_MAC","Description":"d1","Tags":[{"TagKey":"b","TagValue":"2"},{"TagKey":"a","TagValue":""}]}`)
	if ct := r.header.Get("Content-Type"); ct != contentTypeAmzJSON {
		t.Errorf("Content-Type %q", ct)
	}
	md := r.obj["KeyMetadata"].(map[string]any)
	want := []string{"AWSAccountId", "Arn", "CreationDate", "CustomerMasterKeySpec", "Description", "Enabled",
		"KeyId", "KeyManager", "KeySpec", "KeyState", "KeyUsage", "MacAlgorithms", "MultiRegion", "Origin"}
	if got := keysOf(md); !slices.Equal(got, want) {
		t.Fatalf("KeyMetadata members %v, want %v", got, want)
	}
	id := md["KeyId"].(string)
	if !validKeyID(id) {
		t.Errorf("KeyId %q is not a lowercase UUID", id)
	}
	checks := map[string]any{
		"AWSAccountId": "111122223333", "Arn": "arn:aws:kms:us-east-1:111122223333:key/" + id,
		"CustomerMasterKeySpec": "HMAC_384", "Description": "d1", "Enabled": true, "KeyManager": "CUSTOMER",
		"KeySpec": "HMAC_384", "KeyState": "Enabled", "KeyUsage": "GENERATE_VERIFY_MAC", "MultiRegion": false,
		"Origin": "AWS_KMS",
	}
	for k, v := range checks {
		if md[k] != v {
			t.Errorf("%s = %v, want %v", k, md[k], v)
		}
	}
	if algs := md["MacAlgorithms"].([]any); len(algs) != 1 || algs[0] != "HMAC_SHA_384" {
		t.Errorf("MacAlgorithms = %v", algs)
	}
	cd := md["CreationDate"].(float64)
	if math.Abs(cd-float64(before.UnixMilli())/1000) > 0.002 {
		t.Errorf("CreationDate %v, want ~%v", cd, before.Unix())
	}
	// Material is sealed in the state, never in the response.
	if strings.Contains(string(r.body), "aterial") {
		t.Errorf("response mentions material: %s", r.body)
	}
	k, ok := e.store.State().Key(e.scope, id)
	if !ok || len(k.SealedMaterial) == 0 || len(k.Material) != 48 || k.MaterialDigest != e.sealer.Fingerprint(k.Material) {
		t.Fatalf("stored key: ok=%v sealed=%d material=%d", ok, len(k.SealedMaterial), len(k.Material))
	}
	if got := k.Tags; len(got) != 2 || got[0].Key != "a" || got[1].Key != "b" {
		t.Errorf("tags %v", got)
	}
	if k.Policy != policy.DefaultKeyPolicy("111122223333") {
		t.Errorf("policy %q", k.Policy)
	}

	// DescribeKey by every accepted form returns the same metadata.
	e.mustCall("CreateAlias", `{"AliasName":"alias/x/y_z-1","TargetKeyId":"`+id+`"}`)
	for _, form := range []string{id, e.arn(id), "alias/x/y_z-1", "arn:aws:kms:us-east-1:111122223333:alias/x/y_z-1"} {
		d := e.mustCall("DescribeKey", `{"KeyId":`+jsonStr(form)+`}`)
		dm := d.obj["KeyMetadata"].(map[string]any)
		if dm["KeyId"] != id || dm["Arn"] != e.arn(id) || dm["CreationDate"] != md["CreationDate"] {
			t.Errorf("DescribeKey(%s) = %v", form, dm)
		}
	}
}

func TestCreateExternalKey(t *testing.T) {
	e := newEnv(t, nil)
	pol := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:*","Resource":"*"}]}`
	r := e.mustCall("CreateKey", `{"KeySpec":"HMAC_256","KeyUsage":"GENERATE_VERIFY_MAC","Origin":"EXTERNAL","Policy":`+jsonStr(pol)+`}`)
	md := r.obj["KeyMetadata"].(map[string]any)
	if md["KeyState"] != "PendingImport" || md["Enabled"] != false || md["Origin"] != "EXTERNAL" {
		t.Errorf("metadata %v", md)
	}
	if _, ok := md["ExpirationModel"]; ok {
		t.Errorf("ExpirationModel present before import: %v", md)
	}
	id := md["KeyId"].(string)
	p := e.mustCall("GetKeyPolicy", `{"KeyId":"`+id+`"}`)
	if p.str("Policy") != pol || p.str("PolicyName") != "default" {
		t.Errorf("GetKeyPolicy %s", p.body)
	}
	k, _ := e.store.State().Key(e.scope, id)
	if len(k.SealedMaterial) != 0 || k.MaterialDigest != "" {
		t.Errorf("external key has material")
	}
}

func macOf(t *testing.T, e *env, keyID, alg, msg string) []byte {
	t.Helper()
	r := e.mustCall("GenerateMac", `{"KeyId":`+jsonStr(keyID)+`,"MacAlgorithm":"`+alg+`","Message":"`+base64.StdEncoding.EncodeToString([]byte(msg))+`"}`)
	mac, err := base64.StdEncoding.DecodeString(r.str("Mac"))
	if err != nil {
		t.Fatal(err)
	}
	return mac
}

func TestGenerateVerifyMac(t *testing.T) {
	e := newEnv(t, nil)
	id := e.createKey("HMAC_256", "")
	e.mustCall("CreateAlias", `{"AliasName":"alias/m","TargetKeyId":"`+id+`"}`)
	k, _ := e.store.State().Key(e.scope, id)
	h := hmac.New(sha256.New, k.Material)
	h.Write([]byte("hello"))
	want := h.Sum(nil)

	for _, form := range []string{id, e.arn(id), "alias/m", "arn:aws:kms:us-east-1:111122223333:alias/m"} {
		r := e.mustCall("GenerateMac", `{"KeyId":`+jsonStr(form)+`,"MacAlgorithm":"HMAC_SHA_256","Message":"aGVsbG8="}`)
		if got := keysOf(r.obj); !slices.Equal(got, []string{"KeyId", "Mac", "MacAlgorithm"}) {
			t.Errorf("members %v", got)
		}
		if r.str("KeyId") != e.arn(id) || r.str("MacAlgorithm") != "HMAC_SHA_256" ||
			r.str("Mac") != base64.StdEncoding.EncodeToString(want) {
			t.Errorf("GenerateMac(%s) = %s", form, r.body)
		}
		v := e.mustCall("VerifyMac", `{"KeyId":`+jsonStr(form)+`,"MacAlgorithm":"HMAC_SHA_256","Message":"aGVsbG8=","Mac":"`+base64.StdEncoding.EncodeToString(want)+`"}`)
		if v.str("KeyId") != e.arn(id) || v.obj["MacValid"] != true || v.str("MacAlgorithm") != "HMAC_SHA_256" {
			t.Errorf("VerifyMac(%s) = %s", form, v.body)
		}
	}
	// DryRun on VerifyMac with a correct MAC: DryRunOperationException.
	r := e.call("VerifyMac", `{"KeyId":"alias/m","MacAlgorithm":"HMAC_SHA_256","Message":"aGVsbG8=","Mac":"`+base64.StdEncoding.EncodeToString(want)+`","DryRun":true}`)
	checkAWSError(t, r, 400, "DryRunOperationException", "The request would have succeeded, but the DryRun option is set.")
	// DryRun false behaves normally.
	e.mustCall("GenerateMac", `{"KeyId":"alias/m","MacAlgorithm":"HMAC_SHA_256","Message":"aGVsbG8=","DryRun":false}`)
	// A truncated MAC is not valid.
	r = e.call("VerifyMac", `{"KeyId":"alias/m","MacAlgorithm":"HMAC_SHA_256","Message":"aGVsbG8=","Mac":"`+base64.StdEncoding.EncodeToString(want[:16])+`"}`)
	checkAWSError(t, r, 400, "KMSInvalidMacException", "")
	if !strings.Contains(string(r.body), `"message":""`) {
		t.Errorf("body %s", r.body)
	}
	// Unknown members are ignored; GrantTokens are verified even when the
	// caller does not need them (grants_test.go has the rest).
	e.mustCall("GenerateMac", `{"KeyId":"alias/m","MacAlgorithm":"HMAC_SHA_256","Message":"aGVsbG8=","GrantTokens":[],"Whatever":{"x":[1]}}`)
	r = e.call("GenerateMac", `{"KeyId":"alias/m","MacAlgorithm":"HMAC_SHA_256","Message":"aGVsbG8=","GrantTokens":["t"]}`)
	checkAWSError(t, r, 400, "InvalidGrantTokenException", "The grant token is not valid.")
	// Every answer has its own request id.
	a := e.call("ListKeys", `{}`).header.Get("X-Amzn-Requestid")
	b := e.call("ListKeys", `{}`).header.Get("X-Amzn-Requestid")
	if a == "" || a == b || len(a) != 36 {
		t.Errorf("request ids %q %q", a, b)
	}
}

func TestKeyLifecycle(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.DeletionDay = time.Minute })
	id := e.createKey("HMAC_512", "")
	arn := e.arn(id)

	r := e.mustCall("DisableKey", `{"KeyId":"`+arn+`"}`)
	if len(r.body) != 0 || r.header.Get("X-Amzn-Requestid") == "" {
		t.Errorf("DisableKey answer %q", r.body)
	}
	checkAWSError(t, e.call("GenerateMac", `{"KeyId":"`+id+`","MacAlgorithm":"HMAC_SHA_512","Message":"eA=="}`), 400, "DisabledException", arn+" is disabled.")
	e.mustCall("DisableKey", `{"KeyId":"`+id+`"}`) // idempotent
	e.mustCall("EnableKey", `{"KeyId":"`+id+`"}`)
	e.mustCall("GenerateMac", `{"KeyId":"`+id+`","MacAlgorithm":"HMAC_SHA_512","Message":"eA=="}`)

	e.mustCall("UpdateKeyDescription", `{"KeyId":"`+id+`","Description":"new \"desc\""}`)
	d := e.mustCall("DescribeKey", `{"KeyId":"`+id+`"}`).obj["KeyMetadata"].(map[string]any)
	if d["Description"] != `new "desc"` {
		t.Errorf("Description %v", d["Description"])
	}

	now := e.clock.Now()
	r = e.mustCall("ScheduleKeyDeletion", `{"KeyId":"`+id+`","PendingWindowInDays":7}`)
	if got := keysOf(r.obj); !slices.Equal(got, []string{"DeletionDate", "KeyId", "KeyState", "PendingWindowInDays"}) {
		t.Errorf("members %v", got)
	}
	wantDel := float64(now.Add(7*time.Minute).UnixMilli()) / 1000
	if r.str("KeyId") != arn || r.str("KeyState") != "PendingDeletion" || r.obj["PendingWindowInDays"] != float64(7) ||
		math.Abs(r.obj["DeletionDate"].(float64)-wantDel) > 0.002 {
		t.Errorf("ScheduleKeyDeletion %s (want DeletionDate %v)", r.body, wantDel)
	}
	d = e.mustCall("DescribeKey", `{"KeyId":"`+id+`"}`).obj["KeyMetadata"].(map[string]any)
	if d["KeyState"] != "PendingDeletion" || d["Enabled"] != false || d["DeletionDate"] != r.obj["DeletionDate"] {
		t.Errorf("metadata while pending deletion %v", d)
	}
	checkAWSError(t, e.call("GenerateMac", `{"KeyId":"`+id+`","MacAlgorithm":"HMAC_SHA_512","Message":"eA=="}`), 400, "KMSInvalidStateException", arn+" is pending deletion.")
	// GetKeyPolicy and DescribeKey work in any state.
	e.mustCall("GetKeyPolicy", `{"KeyId":"`+id+`"}`)

	r = e.mustCall("CancelKeyDeletion", `{"KeyId":"`+id+`"}`)
	if r.str("KeyId") != arn || len(r.obj) != 1 {
		t.Errorf("CancelKeyDeletion %s", r.body)
	}
	d = e.mustCall("DescribeKey", `{"KeyId":"`+id+`"}`).obj["KeyMetadata"].(map[string]any)
	if d["KeyState"] != "Disabled" {
		t.Errorf("state after cancel %v", d["KeyState"])
	}
	if _, ok := d["DeletionDate"]; ok {
		t.Errorf("DeletionDate after cancel")
	}
	// Default window: 30 days.
	r = e.mustCall("ScheduleKeyDeletion", `{"KeyId":"`+id+`"}`)
	if r.obj["PendingWindowInDays"] != float64(30) {
		t.Errorf("default window %v", r.obj["PendingWindowInDays"])
	}
}

func TestAliasesTagsPolicies(t *testing.T) {
	e := newEnv(t, nil)
	a := e.createKey("HMAC_256", "")
	b := e.createKey("HMAC_224", "")
	e.mustCall("CreateAlias", `{"AliasName":"alias/app","TargetKeyId":"`+e.arn(a)+`"}`)
	if got := macOf(t, e, "alias/app", "HMAC_SHA_256", "m"); len(got) != 32 {
		t.Fatalf("mac len %d", len(got))
	}
	// Re-point to an HMAC key of another size (both are HMAC keys).
	e.mustCall("UpdateAlias", `{"AliasName":"alias/app","TargetKeyId":"`+b+`"}`)
	r := e.call("GenerateMac", `{"KeyId":"alias/app","MacAlgorithm":"HMAC_SHA_256","Message":"eA=="}`)
	checkAWSError(t, r, 400, "InvalidKeyUsageException", "Algorithm HMAC_SHA_256 is incompatible with key spec HMAC_224.")
	if got := macOf(t, e, "alias/app", "HMAC_SHA_224", "m"); len(got) != 28 {
		t.Fatalf("mac len %d", len(got))
	}
	l := e.mustCall("ListAliases", `{}`)
	aliases := l.obj["Aliases"].([]any)
	if len(aliases) != 1 || l.obj["Truncated"] != false {
		t.Fatalf("ListAliases %s", l.body)
	}
	al := aliases[0].(map[string]any)
	if got := keysOf(al); !slices.Equal(got, []string{"AliasArn", "AliasName", "CreationDate", "LastUpdatedDate", "TargetKeyId"}) {
		t.Errorf("alias members %v", got)
	}
	if al["AliasArn"] != "arn:aws:kms:us-east-1:111122223333:alias/app" || al["TargetKeyId"] != b {
		t.Errorf("alias %v", al)
	}
	if got := e.mustCall("ListAliases", `{"KeyId":"`+a+`"}`).obj["Aliases"].([]any); len(got) != 0 {
		t.Errorf("aliases of a: %v", got)
	}
	if got := e.mustCall("ListAliases", `{"KeyId":"`+e.arn(b)+`"}`).obj["Aliases"].([]any); len(got) != 1 {
		t.Errorf("aliases of b: %v", got)
	}
	e.mustCall("DeleteAlias", `{"AliasName":"alias/app"}`)
	checkAWSError(t, e.call("DescribeKey", `{"KeyId":"alias/app"}`), 400, "NotFoundException", "is not found.")

	// Tags.
	e.mustCall("TagResource", `{"KeyId":"`+a+`","Tags":[{"TagKey":"env","TagValue":"prod"},{"TagKey":"team","TagValue":"x"}]}`)
	e.mustCall("TagResource", `{"KeyId":"`+a+`","Tags":[{"TagKey":"env","TagValue":"dev"}]}`)
	tags := e.mustCall("ListResourceTags", `{"KeyId":"`+a+`"}`)
	if string(mustJSON(tags.obj["Tags"])) != `[{"TagKey":"env","TagValue":"dev"},{"TagKey":"team","TagValue":"x"}]` || tags.obj["Truncated"] != false {
		t.Errorf("tags %s", tags.body)
	}
	e.mustCall("UntagResource", `{"KeyId":"`+a+`","TagKeys":["team","absent"]}`)
	tags = e.mustCall("ListResourceTags", `{"KeyId":"`+e.arn(a)+`"}`)
	if string(mustJSON(tags.obj["Tags"])) != `[{"TagKey":"env","TagValue":"dev"}]` {
		t.Errorf("tags %s", tags.body)
	}
	// 49 more tags fit; one more does not.
	e.mustCall("TagResource", `{"KeyId":"`+a+`","Tags":`+manyTags(49)+`}`)
	checkAWSError(t, e.call("TagResource", `{"KeyId":"`+a+`","Tags":[{"TagKey":"one-more","TagValue":""}]}`), 400, "TagException", "Too many tags")

	// Policies.
	pol := `{"Version":"2012-10-17","Statement":[]}`
	e.mustCall("PutKeyPolicy", `{"KeyId":"`+a+`","Policy":`+jsonStr(pol)+`,"BypassPolicyLockoutSafetyCheck":true}`)
	p := e.mustCall("GetKeyPolicy", `{"KeyId":"`+a+`","PolicyName":"default"}`)
	if p.str("Policy") != pol {
		t.Errorf("policy %q", p.str("Policy"))
	}
	p = e.mustCall("GetKeyPolicy", `{"KeyId":"`+b+`"}`)
	var doc map[string]any
	if err := json.Unmarshal([]byte(p.str("Policy")), &doc); err != nil || doc["Id"] != "key-default-1" {
		t.Errorf("default policy %q", p.str("Policy"))
	}
	if !strings.Contains(p.str("Policy"), `"AWS" : "arn:aws:iam::111122223333:root"`) {
		t.Errorf("default policy principal: %s", p.str("Policy"))
	}
	lp := e.mustCall("ListKeyPolicies", `{"KeyId":"`+a+`"}`)
	if string(lp.body) != `{"PolicyNames":["default"],"Truncated":false}` {
		t.Errorf("ListKeyPolicies %s", lp.body)
	}
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

func TestGenerateRandom(t *testing.T) {
	e := newEnv(t, nil)
	for _, n := range []int{1, 32, 1024} {
		r := e.mustCall("GenerateRandom", `{"NumberOfBytes":`+itoa(n)+`}`)
		b, err := base64.StdEncoding.DecodeString(r.str("Plaintext"))
		if err != nil || len(b) != n {
			t.Errorf("GenerateRandom(%d): %d bytes, %v", n, len(b), err)
		}
	}
	if e.store.applyCount() != 0 {
		t.Errorf("GenerateRandom went through Apply")
	}
}

// TestReadsAreLocal checks that reads never reach Apply, and which refused writes do.
func TestReadsAreLocal(t *testing.T) {
	f := newFixture(t)
	n := f.store.applyCount()
	f.store.setErr(errNoLeader) // reads must still work without a leader
	defer f.store.setErr(nil)
	for _, c := range []struct{ op, body string }{
		{"GenerateMac", `{"KeyId":"` + f.K + `","MacAlgorithm":"HMAC_SHA_256","Message":"eA=="}`},
		{"DescribeKey", `{"KeyId":"alias/k"}`},
		{"ListKeys", `{}`},
		{"ListAliases", `{}`},
		{"ListResourceTags", `{"KeyId":"` + f.K + `"}`},
		{"GetKeyPolicy", `{"KeyId":"` + f.K + `"}`},
		{"ListKeyPolicies", `{"KeyId":"` + f.K + `"}`},
	} {
		f.mustCall(c.op, c.body)
	}
	// A write refused by a rule that replication lag cannot change (here the
	// key's origin) is not proposed.
	r := f.call("GetParametersForImport", `{"KeyId":"`+f.K+`","WrappingAlgorithm":"RSAES_OAEP_SHA_256","WrappingKeySpec":"RSA_2048"}`)
	if r.status != 400 {
		t.Errorf("GetParametersForImport on an AWS_KMS key: status %d %s", r.status, r.body)
	}
	if got := f.store.applyCount(); got != n {
		t.Errorf("Apply called %d times by reads and locally refused writes", got-n)
	}
	// Key-state rules are decided by the FSM on the leader, never on this
	// node's possibly stale replica: such writes are proposed, and the
	// FSM's refusal is what the client sees.
	f.store.setErr(nil)
	for _, c := range []struct{ op, body string }{
		{"EnableKey", `{"KeyId":"` + f.P + `"}`},
		{"CancelKeyDeletion", `{"KeyId":"` + f.K + `"}`},
		{"TagResource", `{"KeyId":"` + f.P + `","Tags":[]}`},
		{"CreateAlias", `{"AliasName":"alias/z","TargetKeyId":"` + f.P + `"}`},
	} {
		r := f.call(c.op, c.body)
		checkAWSError(t, r, 400, "KMSInvalidStateException", "")
	}
	if got := f.store.applyCount(); got != n+4 {
		t.Errorf("state-dependent writes proposed %d times, want 4", got-n)
	}
}

// TestWriteOfUnknownKeyIsProposed: a key this replica does not know is
// decided by the FSM (the replica may lag behind the leader).
func TestWriteOfUnknownKeyIsProposed(t *testing.T) {
	e := newEnv(t, nil)
	n := e.store.applyCount()
	checkAWSError(t, e.call("DisableKey", `{"KeyId":"`+absentID+`"}`), 400, "NotFoundException", "Key '"+e.arn(absentID)+"' does not exist")
	if e.store.applyCount() != n+1 {
		t.Errorf("DisableKey of an unknown key was not proposed")
	}
}

// TestRegionFromCredentialScope: the SigV4 scope selects the region; keys of
// other regions are invisible.
func TestRegionFromCredentialScope(t *testing.T) {
	e := newEnv(t, nil)
	auth := func(region string) map[string]string {
		return map[string]string{"Authorization": "AWS4-HMAC-SHA256 Credential=AKID/20250101/" + region +
			"/kms/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + strings.Repeat("0", 64)}
	}
	r := e.do(http.MethodPost, "/", "TrentService.CreateKey", contentTypeAmzJSON,
		[]byte(`{"KeySpec":"HMAC_256","KeyUsage":"GENERATE_VERIFY_MAC"}`), auth("eu-west-1"))
	if r.status != 200 {
		t.Fatalf("CreateKey: %d %s", r.status, r.body)
	}
	md := r.obj["KeyMetadata"].(map[string]any)
	id := md["KeyId"].(string)
	if md["Arn"] != "arn:aws:kms:eu-west-1:111122223333:key/"+id {
		t.Errorf("Arn %v", md["Arn"])
	}
	r = e.do(http.MethodPost, "/", "TrentService.DescribeKey", contentTypeAmzJSON, []byte(`{"KeyId":"`+id+`"}`), auth("eu-west-1"))
	if r.status != 200 {
		t.Errorf("DescribeKey in eu-west-1: %d %s", r.status, r.body)
	}
	// Unsigned: default region us-east-1.
	checkAWSError(t, e.call("DescribeKey", `{"KeyId":"`+id+`"}`), 400, "NotFoundException", "Key 'arn:aws:kms:us-east-1:111122223333:key/"+id+"' does not exist")
	checkAWSError(t, e.call("DescribeKey", `{"KeyId":"arn:aws:kms:eu-west-1:111122223333:key/`+id+`"}`), 400, "NotFoundException", "Invalid arn eu-west-1")
	if got := e.store.State().ScopeKeyCount(fsm.Scope{Account: "111122223333", Region: "eu-west-1"}); got != 1 {
		t.Errorf("keys in eu-west-1: %d", got)
	}
}

func TestRegionOf(t *testing.T) {
	for _, c := range []struct {
		auth, want string
		err        bool
	}{
		{"", "us-east-1", false},
		{"AWS4-HMAC-SHA256 Credential=AKID/20250101/ap-south-2/kms/aws4_request, SignedHeaders=host, Signature=ab", "ap-south-2", false},
		{"AWS4-HMAC-SHA256 Credential=AKID/20250101/ap-south-2/kms/aws4_request,SignedHeaders=host,Signature=ab", "ap-south-2", false},
		{"AWS4-HMAC-SHA256 SignedHeaders=host, Credential=AKID/20250101/eu-central-1/kms/aws4_request", "eu-central-1", false},
		{"AWS4-ECDSA-P256-SHA256 Credential=AKID/20250101/kms/aws4_request", "us-east-1", false},
		{"Basic dXNlcjpwYXNz", "us-east-1", false},
		{"AWS4-HMAC-SHA256 Credential=AKID/20250101/EU WEST/kms/aws4_request", "", true},
		{"AWS4-HMAC-SHA256 Credential=AKID/20250101/../kms/aws4_request", "", true},
		{"AWS4-HMAC-SHA256 Credential=", "", true},
		{"AWS4-HMAC-SHA256", "", true},
	} {
		got, err := regionOf(c.auth, "us-east-1")
		if (err != nil) != c.err || got != c.want {
			t.Errorf("regionOf(%q) = %q, %v", c.auth, got, err)
		}
	}
}

func TestEpochFormat(t *testing.T) {
	for _, c := range []struct {
		ns   int64
		want string
	}{
		{0, "0"},
		{1593622000191000000, "1593622000.191"},
		{1593622000190000000, "1593622000.19"},
		{1593622000000999999, "1593622000"},
		{1593622000001000000, "1593622000.001"},
		{-1500000000, "-1.5"},
	} {
		if got := string(appendEpoch(nil, c.ns)); got != c.want {
			t.Errorf("appendEpoch(%d) = %s, want %s", c.ns, got, c.want)
		}
	}
}

func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "plain", `q"b\s`, "ctl\x00\x01\x1f\n\r\t", "ünï€😀", "bad\xffutf8", "\u2028\u2029"} {
		b := appendJSONString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Errorf("%q: invalid JSON %s: %v", s, b, err)
			continue
		}
		want := strings.ToValidUTF8(s, "\ufffd")
		if got != want {
			t.Errorf("round trip %q = %q", s, got)
		}
	}
}

func TestValidatorUTF16Length(t *testing.T) {
	// 128 characters outside the BMP are 256 UTF-16 code units: too long
	// for a tag key (AWS counts Java string length).
	var v validator
	v.strLen("tagKey", strings.Repeat("😀", 64), 1, 128)
	if v.err() != nil {
		t.Errorf("64 astral characters (128 units) rejected")
	}
	v.strLen("tagKey", strings.Repeat("😀", 65), 1, 128)
	if v.err() == nil {
		t.Errorf("65 astral characters (130 units) accepted")
	}
}

func TestPanicRecovery(t *testing.T) {
	e := newEnv(t, nil)
	e.api.ops["Boom"] = &opInfo{name: "Boom", action: "kms:Boom", fn: func(*Server, *reqCtx, []byte) ([]byte, *apiError) { panic("boom") }}
	r := e.call("Boom", `{}`)
	checkAWSError(t, r, 500, "KMSInternalException", "internal error")
	if e.api.panics.Load() != 1 {
		t.Fatalf("panics = %d", e.api.panics.Load())
	}
	e.api.panics.Store(0) // expected
	e.mustCall("ListKeys", `{}`)
}

// TestAccessLog checks the Debug access log: op, status, duration and
// request id, and never a body (key material, messages, MACs).
func TestAccessLog(t *testing.T) {
	var buf syncBuffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := newEnv(t, func(c *Config) { c.Logger = logger })
	id := e.createKey("HMAC_256", "")
	r := e.mustCall("GenerateMac", `{"KeyId":"`+id+`","MacAlgorithm":"HMAC_SHA_256","Message":"c2VjcmV0LW1lc3NhZ2U="}`)
	e.call("DescribeKey", `{"KeyId":"nope"}`)
	rnd := e.mustCall("GenerateRandom", `{"NumberOfBytes":32}`)

	var entries []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["msg"] == "api request" {
			entries = append(entries, m)
		}
	}
	if len(entries) != 4 {
		t.Fatalf("%d access log entries: %s", len(entries), buf.String())
	}
	mac := entries[1]
	if mac["op"] != "GenerateMac" || mac["status"] != float64(200) || mac["request_id"] != r.header.Get("X-Amzn-Requestid") || mac["level"] != "DEBUG" {
		t.Errorf("entry %v", mac)
	}
	if _, ok := mac["duration"]; !ok {
		t.Errorf("no duration in %v", mac)
	}
	if entries[2]["op"] != "DescribeKey" || entries[2]["status"] != float64(400) {
		t.Errorf("entry %v", entries[2])
	}
	k, _ := e.store.State().Key(e.scope, id)
	for _, secret := range []string{"c2VjcmV0LW1lc3NhZ2U=", "secret-message", r.str("Mac"), rnd.str("Plaintext"),
		base64.StdEncoding.EncodeToString(k.Material), base64.StdEncoding.EncodeToString(k.SealedMaterial)} {
		if strings.Contains(buf.String(), secret) {
			t.Errorf("log contains %q", secret)
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestConcurrentRequests exercises the pooled writers and buffers under
// concurrent reads and writes (run with -race).
func TestConcurrentRequests(t *testing.T) {
	e := newEnv(t, nil)
	id := e.createKey("HMAC_256", "")
	e.mustCall("CreateAlias", `{"AliasName":"alias/c","TargetKeyId":"`+id+`"}`)
	want := base64.StdEncoding.EncodeToString(macOf(t, e, id, "HMAC_SHA_256", "x"))
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				switch g % 4 {
				case 0, 1:
					r := e.call("GenerateMac", `{"KeyId":"alias/c","MacAlgorithm":"HMAC_SHA_256","Message":"eA=="}`)
					if r.status == 200 && r.str("Mac") != want {
						errs <- "wrong MAC " + r.str("Mac")
					}
				case 2:
					e.call("VerifyMac", `{"KeyId":"alias/c","MacAlgorithm":"HMAC_SHA_256","Message":"eA==","Mac":"`+want+`"}`)
				case 3:
					if i%2 == 0 {
						e.call("DisableKey", `{"KeyId":"`+id+`"}`)
					} else {
						e.call("EnableKey", `{"KeyId":"`+id+`"}`)
					}
					e.call("TagResource", `{"KeyId":"`+id+`","Tags":[{"TagKey":"k`+itoa(g)+`","TagValue":"`+itoa(i)+`"}]}`)
					e.call("ListKeys", `{"Limit":1}`)
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Error(msg)
	}
}

func TestStatusForCode(t *testing.T) {
	for code, want := range map[string]int{
		"KMSInternalException": 500, "KeyUnavailableException": 500, "DependencyTimeoutException": 503,
		"NotFoundException": 400, "DryRunOperationException": 400, "KMSInvalidStateException": 400,
		"DisabledException": 400, "LimitExceededException": 400, "SomethingNew": 400,
	} {
		if got := statusForCode(code); got != want {
			t.Errorf("statusForCode(%s) = %d, want %d", code, got, want)
		}
	}
	// An FSM refusal without a code is an internal error, never a 200.
	if e := fromFSM(&fsm.Error{Message: "x"}); e.code != "KMSInternalException" || e.status() != 500 {
		t.Errorf("fromFSM without code: %+v", e)
	}
}
