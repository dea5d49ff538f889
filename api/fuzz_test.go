package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/keyraft/keyraft/engine"
	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/policy"
)

// Fixed ids of the fuzz fixture keys, so that the seed corpus can name them.
const (
	fuzzKey      = "11111111-1111-4111-8111-111111111111" // HMAC_256, enabled, alias/fuzz
	fuzzDisabled = "22222222-2222-4222-8222-222222222222" // HMAC_224, disabled
	fuzzExternal = "33333333-3333-4333-8333-333333333333" // HMAC_512, EXTERNAL, pending import
)

// fuzzTargets are the operations FuzzDecode exercises (GetParametersForImport
// is left out: generating RSA keys would dominate the run).
var fuzzTargets = []string{
	"TrentService.GenerateMac", "TrentService.VerifyMac", "TrentService.CreateKey",
	"TrentService.DescribeKey", "TrentService.ListKeys", "TrentService.ListAliases",
	"TrentService.CreateAlias", "TrentService.TagResource", "TrentService.UntagResource",
	"TrentService.ListResourceTags", "TrentService.PutKeyPolicy", "TrentService.GetKeyPolicy",
	"TrentService.ScheduleKeyDeletion", "TrentService.ImportKeyMaterial", "TrentService.GenerateRandom",
	"TrentService.Encrypt", "TrentService.EnableKeyRotation", "TrentService.CreateGrant",
	"TrentService.Bogus", "",
	// Appended, so that the existing corpus keeps its targets.
	"TrentService.ListGrants", "TrentService.RetireGrant", "TrentService.RevokeGrant",
	"TrentService.ListRetirableGrants",
}

func seedFixedKey(t testing.TB, store *memStore, sealer *engine.Sealer, scope fsm.Scope, id, spec, origin string) {
	t.Helper()
	k := fsm.Key{Scope: scope, ID: id, ARN: fsm.KeyARN(scope, id), KeySpec: spec, KeyUsage: "GENERATE_VERIFY_MAC",
		Origin: origin, State: fsm.StateEnabled, Policy: policy.DefaultKeyPolicy(scope.Account), CreationDate: 1}
	if origin == fsm.OriginExternal {
		k.State = fsm.StatePendingImport
	} else {
		m, err := engine.GenerateKeyMaterial(spec)
		if err != nil {
			t.Fatal(err)
		}
		if k.SealedMaterial, err = sealer.Seal(m, []byte(k.ARN)); err != nil {
			t.Fatal(err)
		}
		k.MaterialDigest = sealer.Fingerprint(m)
	}
	applyCmd(t, store, scope, fsm.OpCreateKey, fsm.CreateKeyCmd{Key: k})
}

func applyCmd(t testing.TB, store *memStore, scope fsm.Scope, op fsm.Op, p any) {
	t.Helper()
	cmd, err := fsm.Encode(op, 1, scope, p)
	if err != nil {
		t.Fatal(err)
	}
	out, err := store.Apply(context.Background(), cmd)
	if err != nil {
		t.Fatal(err)
	}
	var res fsm.Result
	if err := json.Unmarshal(out, &res); err != nil || res.Error != nil {
		t.Fatalf("%s: %v %v", op, err, res.Error)
	}
}

func FuzzDecode(f *testing.F) {
	sealer := newSealer(f)
	store := newMemStore(sealer)
	s, err := New(Config{Sealer: sealer}, store)
	if err != nil {
		f.Fatal(err)
	}
	scope := fsm.Scope{Account: s.cfg.AccountID, Region: s.cfg.DefaultRegion}
	installClusterSecret(f, store, sealer)
	seedFixedKey(f, store, sealer, scope, fuzzKey, "HMAC_256", fsm.OriginAWSKMS)
	seedFixedKey(f, store, sealer, scope, fuzzDisabled, "HMAC_224", fsm.OriginAWSKMS)
	seedFixedKey(f, store, sealer, scope, fuzzExternal, "HMAC_512", fsm.OriginExternal)
	applyCmd(f, store, scope, fsm.OpDisableKey, fsm.KeyCmd{KeyID: fuzzDisabled})
	applyCmd(f, store, scope, fsm.OpCreateAlias, fsm.AliasCmd{Name: "alias/fuzz", TargetKeyID: fuzzKey})
	h := s.Handler()

	idx := func(name string) uint8 {
		for i, t := range fuzzTargets {
			if t == "TrentService."+name || (name == "" && t == "") {
				return uint8(i)
			}
		}
		panic(name)
	}
	seeds := []struct {
		op, body string
	}{
		{"GenerateMac", `{"KeyId":"` + fuzzKey + `","MacAlgorithm":"HMAC_SHA_256","Message":"aGVsbG8="}`},
		{"GenerateMac", `{"KeyId":"alias/fuzz","MacAlgorithm":"HMAC_SHA_256","Message":"aGVsbG8=","DryRun":true,"GrantTokens":["x"]}`},
		{"GenerateMac", `{"KeyId":"` + fuzzDisabled + `","MacAlgorithm":"HMAC_SHA_224","Message":"aGVsbG8="}`},
		{"GenerateMac", `{"KeyId":"arn:aws:kms:us-east-1:111122223333:key/` + fuzzKey + `","MacAlgorithm":"HMAC_SHA_512","Message":"AA=="}`},
		{"VerifyMac", `{"KeyId":"` + fuzzKey + `","MacAlgorithm":"HMAC_SHA_256","Message":"aGVsbG8=","Mac":"AAAA"}`},
		{"VerifyMac", `{"KeyId":"arn:aws:kms:us-east-1:111122223333:alias/fuzz","MacAlgorithm":"HMAC_SHA_256","Message":"aGVsbG8=","Mac":"AAAA","DryRun":false}`},
		{"CreateKey", `{"KeySpec":"HMAC_256","KeyUsage":"GENERATE_VERIFY_MAC","Tags":[{"TagKey":"a","TagValue":"b"}],"Description":"d"}`},
		{"CreateKey", `{"KeySpec":"HMAC_384","KeyUsage":"GENERATE_VERIFY_MAC","Origin":"EXTERNAL","Policy":"{\"a\":1}"}`},
		{"CreateKey", `{"CustomerMasterKeySpec":"RSA_2048","MultiRegion":true}`},
		{"DescribeKey", `{"KeyId":"alias/fuzz"}`},
		{"DescribeKey", `{"KeyId":"arn:aws:kms:eu-west-1:111122223333:key/` + fuzzKey + `"}`},
		{"ListKeys", `{"Limit":2}`},
		{"ListKeys", `{"Limit":1,"Marker":"` + encodeMarker(fuzzKey) + `"}`},
		{"ListAliases", `{"KeyId":"` + fuzzKey + `","Limit":1}`},
		{"CreateAlias", `{"AliasName":"alias/new-1","TargetKeyId":"` + fuzzKey + `"}`},
		{"TagResource", `{"KeyId":"` + fuzzKey + `","Tags":[{"TagKey":"k","TagValue":"v"}]}`},
		{"UntagResource", `{"KeyId":"` + fuzzKey + `","TagKeys":["k"]}`},
		{"ListResourceTags", `{"KeyId":"` + fuzzKey + `","Limit":1,"Marker":"aw"}`},
		{"PutKeyPolicy", `{"KeyId":"` + fuzzKey + `","Policy":"{}","PolicyName":"default"}`},
		{"GetKeyPolicy", `{"KeyId":"` + fuzzKey + `"}`},
		{"ScheduleKeyDeletion", `{"KeyId":"` + fuzzDisabled + `","PendingWindowInDays":7}`},
		{"ImportKeyMaterial", `{"KeyId":"` + fuzzExternal + `","ImportToken":"AQ==","EncryptedKeyMaterial":"AA==","ValidTo":1e12}`},
		{"GenerateRandom", `{"NumberOfBytes":16}`},
		{"Encrypt", `{"KeyId":"alias/fuzz","Plaintext":"AA=="}`},
		{"EnableKeyRotation", `{"KeyId":"` + fuzzKey + `","RotationPeriodInDays":90}`},
		{"CreateGrant", `{"KeyId":"` + fuzzKey + `"}`},
		{"CreateGrant", `{"KeyId":"` + fuzzKey + `","GranteePrincipal":"arn:aws:iam::111122223333:user/g","Operations":["GenerateMac"],"Name":"n","Constraints":{"SourceArn":"arn:aws:s3:::bucket-x"}}`},
		{"CreateGrant", `{"KeyId":"` + fuzzKey + `","GranteePrincipal":"arn:aws:iam::111122223333:role/r","Operations":["Encrypt"],"DryRun":true,"GrantTokens":["AAAA"]}`},
		{"ListGrants", `{"KeyId":"` + fuzzKey + `","Limit":1,"Marker":"MTIzLw"}`},
		{"ListGrants", `{"KeyId":"` + fuzzKey + `","GrantId":"` + rep("ab", 32) + `","GranteePrincipal":"arn:aws:iam::111122223333:user/g"}`},
		{"RetireGrant", `{"GrantToken":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`},
		{"RetireGrant", `{"KeyId":"arn:aws:kms:us-east-1:111122223333:key/` + fuzzKey + `","GrantId":"` + rep("0", 64) + `","DryRun":true}`},
		{"RevokeGrant", `{"KeyId":"` + fuzzKey + `","GrantId":"x"}`},
		{"ListRetirableGrants", `{"RetiringPrincipal":"arn:aws:iam::111122223333:user/g","Limit":100}`},
		{"Bogus", `{}`},
		{"", `{}`},
		{"GenerateMac", `{"KeyId":`},
		{"GenerateMac", `[1,2]`},
		{"GenerateMac", `{"Message":"!!"}`},
		{"ListKeys", `{"Limit":1e99}`},
		{"DescribeKey", "{\"KeyId\":\"\xff\xfe\"}"},
		{"TagResource", `{"KeyId":"` + fuzzKey + `","Tags":[null,{}]}`},
	}
	for _, sd := range seeds {
		f.Add(idx(sd.op), []byte(sd.body))
	}

	f.Fuzz(func(t *testing.T, target uint8, body []byte) {
		op := fuzzTargets[int(target)%len(fuzzTargets)]
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		if op != "" {
			req.Header.Set("X-Amz-Target", op)
		}
		req.Header.Set("Content-Type", contentTypeAmzJSON)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if n := s.panics.Load(); n != 0 {
			t.Fatalf("%s %q: recovered %d panic(s)", op, body, n)
		}
		if rec.Header().Get("X-Amzn-Requestid") == "" || rec.Header().Get("Content-Type") != contentTypeAmzJSON {
			t.Fatalf("%s %q: headers %v", op, body, rec.Header())
		}
		out := rec.Body.Bytes()
		if rec.Code == http.StatusOK {
			if len(out) > 0 && !json.Valid(out) {
				t.Fatalf("%s %q: 200 with invalid JSON %q", op, body, out)
			}
			return
		}
		var e struct {
			Type    *string `json:"__type"`
			Message *string `json:"message"`
		}
		if err := json.Unmarshal(out, &e); err != nil || e.Type == nil || e.Message == nil || *e.Type == "" {
			t.Fatalf("%s %q: status %d with a body that is not an AWS error: %q", op, body, rec.Code, out)
		}
		switch {
		case rec.Code == http.StatusBadRequest:
		case rec.Code == http.StatusInternalServerError && *e.Type == codeInternal:
		default:
			t.Fatalf("%s %q: status %d %s: %s", op, body, rec.Code, *e.Type, *e.Message)
		}
		if *e.Type == codeInternal {
			t.Fatalf("%s %q: KMSInternalException on an in-process store: %s", op, body, *e.Message)
		}
	})
}
