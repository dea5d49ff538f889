package api

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyraft/keyraft/auth"
	"github.com/keyraft/keyraft/engine"
	"github.com/keyraft/keyraft/fsm"
)

const (
	carolARN = "arn:aws:iam::111122223333:user/carol"
	bobARN   = "arn:aws:iam::111122223333:user/bob"
	frankARN = "arn:aws:iam::444455556666:user/frank"
	erinARN  = "arn:aws:iam::444455556666:user/erin"
)

// TestGrantErrorTable covers every error the grant operations answer for
// the request itself (none mode, the unauthorized administrator): model
// constraints, semantic validation, key lookup, key states, markers, grant
// ids and tokens, DryRun.
func TestGrantErrorTable(t *testing.T) {
	f := newFixture(t)
	// A real grant, for the cases that need one.
	r := f.mustCall("CreateGrant", f.expand(`{"KeyId":"{K}","GranteePrincipal":"`+carolARN+`","Operations":["GenerateMac"]}`))
	gid := r.str("GrantId")
	otherAcct := "arn:aws:kms:us-east-1:444455556666:key/" + absentID
	const vErr = "1 validation error detected: "
	grantee := `"GranteePrincipal":"` + carolARN + `"`
	cases := []struct {
		name, op, body string
		status         int
		typ, msg       string
	}{
		// ---- CreateGrant: the request ----
		{"create no key", "CreateGrant", `{` + grantee + `,"Operations":["GenerateMac"]}`, 400, "ValidationException", vErr + "Value null at 'keyId' failed to satisfy constraint: Member must not be null"},
		{"create no operations", "CreateGrant", `{"KeyId":"{K}",` + grantee + `}`, 400, "ValidationException", vErr + "Value null at 'operations' failed to satisfy constraint: Member must not be null"},
		{"create bad operation", "CreateGrant", `{"KeyId":"{K}",` + grantee + `,"Operations":["GenerateMac","Bogus"]}`, 400, "ValidationException",
			vErr + "Value '[GenerateMac, Bogus]' at 'operations' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: [Decrypt, Encrypt, GenerateDataKey, GenerateDataKeyWithoutPlaintext, ReEncryptFrom, ReEncryptTo, Sign, Verify, GetPublicKey, CreateGrant, RetireGrant, DescribeKey, GenerateDataKeyPair, GenerateDataKeyPairWithoutPlaintext, GenerateMac, VerifyMac, DeriveSharedSecret]]"},
		{"create empty operations", "CreateGrant", `{"KeyId":"{K}",` + grantee + `,"Operations":[]}`, 400, "ValidationException", "at least one operation"},
		{"create no grantee", "CreateGrant", `{"KeyId":"{K}","Operations":["GenerateMac"]}`, 400, "ValidationException", vErr + "Value null at 'granteePrincipal' failed to satisfy constraint: Member must not be null"},
		{"create grantee pattern", "CreateGrant", `{"KeyId":"{K}","GranteePrincipal":"user carol","Operations":["GenerateMac"]}`, 400, "ValidationException",
			vErr + "Value 'user carol' at 'granteePrincipal' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[\\w+=,.@:/-]+$"},
		{"create grantee too long", "CreateGrant", `{"KeyId":"{K}","GranteePrincipal":"` + rep("a", 257) + `","Operations":["GenerateMac"]}`, 400, "ValidationException", "at 'granteePrincipal' failed to satisfy constraint: Member must have length less than or equal to 256"},
		{"create grantee not an arn", "CreateGrant", `{"KeyId":"{K}","GranteePrincipal":"carol","Operations":["GenerateMac"]}`, 400, "ValidationException", "Invalid principal carol for GranteePrincipal"},
		{"create grantee service arn", "CreateGrant", `{"KeyId":"{K}","GranteePrincipal":"arn:aws:s3:::bucket","Operations":["GenerateMac"]}`, 400, "ValidationException", "Invalid principal arn:aws:s3:::bucket"},
		{"create grantee bad account", "CreateGrant", `{"KeyId":"{K}","GranteePrincipal":"arn:aws:iam::1234:user/x","Operations":["GenerateMac"]}`, 400, "ValidationException", "Invalid principal"},
		{"create retiring not an arn", "CreateGrant", `{"KeyId":"{K}",` + grantee + `,"RetiringPrincipal":"bob","Operations":["GenerateMac"]}`, 400, "ValidationException", "Invalid principal bob for RetiringPrincipal"},
		{"create service grantee", "CreateGrant", `{"KeyId":"{K}","GranteeServicePrincipal":"logs.amazonaws.com","Operations":["GenerateMac"]}`, 400, "UnsupportedOperationException", "service principals"},
		{"create service retiring", "CreateGrant", `{"KeyId":"{K}",` + grantee + `,"RetiringServicePrincipal":"logs.amazonaws.com","Operations":["GenerateMac"]}`, 400, "UnsupportedOperationException", "service principals"},
		{"create both grantees", "CreateGrant", `{"KeyId":"{K}",` + grantee + `,"GranteeServicePrincipal":"logs.amazonaws.com","Operations":["GenerateMac"]}`, 400, "ValidationException", "either GranteePrincipal or GranteeServicePrincipal, but not both"},
		{"create name pattern", "CreateGrant", `{"KeyId":"{K}",` + grantee + `,"Operations":["GenerateMac"],"Name":"my grant"}`, 400, "ValidationException",
			vErr + "Value 'my grant' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$"},
		{"create name too long", "CreateGrant", `{"KeyId":"{K}",` + grantee + `,"Operations":["GenerateMac"],"Name":"` + rep("n", 257) + `"}`, 400, "ValidationException", "at 'name' failed to satisfy constraint: Member must have length less than or equal to 256"},
		{"create source arn short", "CreateGrant", `{"KeyId":"{K}",` + grantee + `,"Operations":["GenerateMac"],"Constraints":{"SourceArn":"arn:x"}}`, 400, "ValidationException", "at 'constraints.sourceArn' failed to satisfy constraint: Member must have length greater than or equal to 20"},
		{"create too many tokens", "CreateGrant", `{"KeyId":"{K}",` + grantee + `,"Operations":["GenerateMac"],"GrantTokens":["a","a","a","a","a","a","a","a","a","a","a"]}`, 400, "ValidationException", "at 'grantTokens' failed to satisfy constraint: Member must have length less than or equal to 10"},
		{"create malformed token", "CreateGrant", `{"KeyId":"{K}",` + grantee + `,"Operations":["GenerateMac"],"GrantTokens":["not-a-token"]}`, 400, "InvalidGrantTokenException", "The grant token is not valid."},
		{"create not json", "CreateGrant", `{"KeyId":`, 400, "SerializationException", "not valid JSON"},
		{"create constraints type", "CreateGrant", `{"KeyId":"{K}",` + grantee + `,"Operations":["GenerateMac"],"Constraints":{"EncryptionContextSubset":{"a":1}}}`, 400, "SerializationException", "Unexpected JSON number"},

		// ---- CreateGrant: what the key allows ----
		{"create non-hmac operation", "CreateGrant", `{"KeyId":"{K}",` + grantee + `,"Operations":["GenerateMac","Encrypt","Decrypt"]}`, 400, "ValidationException",
			"Grant operations [Decrypt, Encrypt] are not valid for {KARN}: it is an HMAC key (KeySpec HMAC_256), whose grants may allow only [GenerateMac, VerifyMac, DescribeKey, CreateGrant, RetireGrant]."},
		{"create encryption context subset", "CreateGrant", `{"KeyId":"{K}",` + grantee + `,"Operations":["GenerateMac"],"Constraints":{"EncryptionContextSubset":{"purpose":"test"}}}`, 400, "ValidationException",
			"EncryptionContextSubset and EncryptionContextEquals grant constraints are not valid for {KARN}: it is an HMAC key (KeySpec HMAC_256), and HMAC keys have no encryption context."},
		{"create encryption context equals", "CreateGrant", `{"KeyId":"{K}",` + grantee + `,"Operations":["VerifyMac"],"Constraints":{"EncryptionContextEquals":{"a":"b"}}}`, 400, "ValidationException", "HMAC keys have no encryption context"},
		{"create alias", "CreateGrant", `{"KeyId":"alias/k",` + grantee + `,"Operations":["GenerateMac"]}`, 400, "NotFoundException", "Invalid keyId 'alias/k'"},
		{"create absent", "CreateGrant", `{"KeyId":"{ABSENT}",` + grantee + `,"Operations":["GenerateMac"]}`, 400, "NotFoundException", "Key '{ABSENTARN}' does not exist"},
		{"create other account", "CreateGrant", `{"KeyId":"` + otherAcct + `",` + grantee + `,"Operations":["GenerateMac"]}`, 400, "NotFoundException", "Key '" + otherAcct + "' does not exist"},
		{"create other region", "CreateGrant", `{"KeyId":"arn:aws:kms:eu-west-1:111122223333:key/{K}",` + grantee + `,"Operations":["GenerateMac"]}`, 400, "NotFoundException", "Invalid arn eu-west-1"},
		{"create disabled", "CreateGrant", `{"KeyId":"{D}",` + grantee + `,"Operations":["GenerateMac"]}`, 400, "DisabledException", "{DARN} is disabled."},
		{"create pending deletion", "CreateGrant", `{"KeyId":"{P}",` + grantee + `,"Operations":["GenerateMac"]}`, 400, "KMSInvalidStateException", "{PARN} is pending deletion."},
		{"create pending import", "CreateGrant", `{"KeyId":"{X}",` + grantee + `,"Operations":["GenerateMac"]}`, 400, "KMSInvalidStateException", "{XARN} is pending import."},
		{"create dry run", "CreateGrant", `{"KeyId":"{KARN}",` + grantee + `,"Operations":["GenerateMac"],"DryRun":true}`, 400, "DryRunOperationException", "The request would have succeeded, but the DryRun option is set."},
		{"create dry run disabled", "CreateGrant", `{"KeyId":"{D}",` + grantee + `,"Operations":["GenerateMac"],"DryRun":true}`, 400, "DisabledException", "{DARN} is disabled."},
		{"create dry run absent", "CreateGrant", `{"KeyId":"{ABSENT}",` + grantee + `,"Operations":["GenerateMac"],"DryRun":true}`, 400, "NotFoundException", "does not exist"},
		{"create dry run bad operation", "CreateGrant", `{"KeyId":"{K}",` + grantee + `,"Operations":["Sign"],"DryRun":true}`, 400, "ValidationException", "Grant operations [Sign] are not valid"},

		// ---- ListGrants ----
		{"list no key", "ListGrants", `{}`, 400, "ValidationException", vErr + "Value null at 'keyId' failed to satisfy constraint: Member must not be null"},
		{"list limit 0", "ListGrants", `{"KeyId":"{K}","Limit":0}`, 400, "ValidationException", vErr + "Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1"},
		{"list limit 101", "ListGrants", `{"KeyId":"{K}","Limit":101}`, 400, "ValidationException", vErr + "Value '101' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 100"},
		{"list marker garbage", "ListGrants", `{"KeyId":"{K}","Marker":"!!!"}`, 400, "InvalidMarkerException", "The pagination marker is not valid"},
		{"list marker not a cursor", "ListGrants", `{"KeyId":"{K}","Marker":"` + base64.RawURLEncoding.EncodeToString([]byte("12/abc")) + `"}`, 400, "InvalidMarkerException", "marker is not valid"},
		{"list marker empty", "ListGrants", `{"KeyId":"{K}","Marker":""}`, 400, "ValidationException", "at 'marker' failed to satisfy constraint: Member must have length greater than or equal to 1"},
		{"list grant id malformed", "ListGrants", `{"KeyId":"{K}","GrantId":"abc"}`, 400, "InvalidGrantIdException", "Invalid grant ID 'abc'."},
		{"list grant id uppercase", "ListGrants", `{"KeyId":"{K}","GrantId":"` + strings.ToUpper(gid) + `"}`, 400, "InvalidGrantIdException", "Invalid grant ID"},
		{"list grant id too long", "ListGrants", `{"KeyId":"{K}","GrantId":"` + rep("a", 129) + `"}`, 400, "ValidationException", "at 'grantId' failed to satisfy constraint: Member must have length less than or equal to 128"},
		{"list grantee pattern", "ListGrants", `{"KeyId":"{K}","GranteePrincipal":"a b"}`, 400, "ValidationException", "at 'granteePrincipal' failed to satisfy constraint: Member must satisfy regular expression pattern"},
		{"list absent", "ListGrants", `{"KeyId":"{ABSENT}"}`, 400, "NotFoundException", "Key '{ABSENTARN}' does not exist"},
		{"list alias", "ListGrants", `{"KeyId":"alias/k"}`, 400, "NotFoundException", "Invalid keyId 'alias/k'"},

		// ---- ListRetirableGrants ----
		{"retirable no principal", "ListRetirableGrants", `{}`, 400, "ValidationException", vErr + "Value null at 'retiringPrincipal' failed to satisfy constraint: Member must not be null"},
		{"retirable limit", "ListRetirableGrants", `{"RetiringPrincipal":"` + bobARN + `","Limit":101}`, 400, "ValidationException", "at 'limit' failed to satisfy constraint: Member must have value less than or equal to 100"},
		{"retirable marker", "ListRetirableGrants", `{"RetiringPrincipal":"` + bobARN + `","Marker":"x"}`, 400, "InvalidMarkerException", "marker is not valid"},
		{"retirable both", "ListRetirableGrants", `{"RetiringPrincipal":"` + bobARN + `","RetiringServicePrincipal":"logs.amazonaws.com"}`, 400, "ValidationException", "not both"},

		// ---- RetireGrant ----
		{"retire nothing", "RetireGrant", `{}`, 400, "ValidationException", "Specify the grant to retire by its GrantToken, or by both KeyId (the key ARN) and GrantId."},
		{"retire grant id only", "RetireGrant", `{"GrantId":"` + gid + `"}`, 400, "ValidationException", "Specify the grant to retire"},
		{"retire key only", "RetireGrant", `{"KeyId":"{KARN}"}`, 400, "ValidationException", "Specify the grant to retire"},
		{"retire malformed token", "RetireGrant", `{"GrantToken":"t"}`, 400, "InvalidGrantTokenException", "The grant token is not valid."},
		{"retire token too long", "RetireGrant", `{"GrantToken":"` + rep("A", 8193) + `"}`, 400, "ValidationException", "at 'grantToken' failed to satisfy constraint: Member must have length less than or equal to 8192"},
		{"retire malformed grant id", "RetireGrant", `{"KeyId":"{KARN}","GrantId":"xyz"}`, 400, "InvalidGrantIdException", "Invalid grant ID 'xyz'."},
		{"retire unknown grant", "RetireGrant", `{"KeyId":"{KARN}","GrantId":"` + rep("0", 64) + `"}`, 400, "NotFoundException", "Grant ID not found"},
		{"retire unknown grant dry run", "RetireGrant", `{"KeyId":"{KARN}","GrantId":"` + rep("0", 64) + `","DryRun":true}`, 400, "NotFoundException", "Grant ID not found"},
		{"retire absent key", "RetireGrant", `{"KeyId":"{ABSENTARN}","GrantId":"` + gid + `"}`, 400, "NotFoundException", "does not exist"},
		{"retire dry run", "RetireGrant", `{"KeyId":"{KARN}","GrantId":"` + gid + `","DryRun":true}`, 400, "DryRunOperationException", "DryRun option is set"},

		// ---- RevokeGrant ----
		{"revoke no key", "RevokeGrant", `{"GrantId":"` + gid + `"}`, 400, "ValidationException", vErr + "Value null at 'keyId' failed to satisfy constraint: Member must not be null"},
		{"revoke no grant id", "RevokeGrant", `{"KeyId":"{K}"}`, 400, "ValidationException", vErr + "Value null at 'grantId' failed to satisfy constraint: Member must not be null"},
		{"revoke malformed grant id", "RevokeGrant", `{"KeyId":"{K}","GrantId":"123"}`, 400, "InvalidGrantIdException", "Invalid grant ID '123'."},
		{"revoke unknown grant", "RevokeGrant", `{"KeyId":"{K}","GrantId":"` + rep("1", 64) + `"}`, 400, "NotFoundException", "Grant ID not found"},
		{"revoke grant of another key", "RevokeGrant", `{"KeyId":"{K224}","GrantId":"` + gid + `"}`, 400, "NotFoundException", "Grant ID not found"},
		{"revoke absent key", "RevokeGrant", `{"KeyId":"{ABSENT}","GrantId":"` + gid + `"}`, 400, "NotFoundException", "Key '{ABSENTARN}' does not exist"},
		{"revoke alias", "RevokeGrant", `{"KeyId":"alias/k","GrantId":"` + gid + `"}`, 400, "NotFoundException", "Invalid keyId 'alias/k'"},
		{"revoke dry run", "RevokeGrant", `{"KeyId":"{K}","GrantId":"` + gid + `","DryRun":true}`, 400, "DryRunOperationException", "DryRun option is set"},
		{"revoke dry run unknown", "RevokeGrant", `{"KeyId":"{K}","GrantId":"` + rep("2", 64) + `","DryRun":true}`, 400, "NotFoundException", "Grant ID not found"},

		// ---- grant tokens on the other operations ----
		{"mac malformed token", "GenerateMac", `{"KeyId":"{K}","MacAlgorithm":"HMAC_SHA_256","Message":"{MSG}","GrantTokens":["x"]}`, 400, "InvalidGrantTokenException", "The grant token is not valid."},
		{"describe malformed token", "DescribeKey", `{"KeyId":"{K}","GrantTokens":["` + rep("A", 200) + `"]}`, 400, "InvalidGrantTokenException", "The grant token is not valid."},
		{"encrypt malformed token", "Encrypt", `{"KeyId":"{K}","Plaintext":"{MSG}","GrantTokens":["x"]}`, 400, "InvalidGrantTokenException", "The grant token is not valid."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := f.call(tc.op, f.expand(tc.body))
			checkAWSError(t, r, tc.status, tc.typ, f.expand(tc.msg))
		})
	}
	// Nothing above changed the grant.
	r = f.mustCall("ListGrants", `{"KeyId":"`+f.K+`"}`)
	if gs, _ := r.obj["Grants"].([]any); len(gs) != 1 {
		t.Fatalf("grants after the error table: %s", r.body)
	}
}

// callAs sends op with body signed as p (the SDK's signer).
func (e *env) callAs(t *testing.T, p principal, op, body string) *response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentTypeAmzJSON)
	req.Header.Set("X-Amz-Target", "TrentService."+op)
	sum := sha256.Sum256([]byte(body))
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: p.akid, SecretAccessKey: p.secret, SessionToken: p.token},
		req, hex.EncodeToString(sum[:]), "kms", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	return e.send(t, req)
}

// grantEnv is a sigv4 server whose clock the test moves, with a grant
// propagation delay.
func grantEnv(t *testing.T, delay time.Duration) *env {
	return newAuthEnv(t, func(c *Config) { c.GrantPropagationDelay = delay })
}

type grantOut struct{ id, token string }

func createGrant(t *testing.T, c *kms.Client, in *kms.CreateGrantInput) grantOut {
	t.Helper()
	out, err := c.CreateGrant(context.Background(), in)
	if err != nil {
		t.Fatalf("CreateGrant: %v", err)
	}
	id, tok := aws.ToString(out.GrantId), aws.ToString(out.GrantToken)
	if !validGrantID(id) || tok == "" {
		t.Fatalf("CreateGrant: id %q token %q", id, tok)
	}
	return grantOut{id, tok}
}

func ops(o ...types.GrantOperation) []types.GrantOperation { return o }

func macWith(c *kms.Client, keyID string, tokens ...string) error {
	_, err := c.GenerateMac(context.Background(), &kms.GenerateMacInput{KeyId: aws.String(keyID),
		MacAlgorithm: types.MacAlgorithmSpecHmacSha256, Message: macMsg, GrantTokens: tokens})
	return err
}

// TestGrantLifecycle: a grantee without a grant is refused; a grant lets it
// use exactly its operations; Name idempotency; listing; who may retire;
// revoke; a retired grant's token does not revive it.
func TestGrantLifecycle(t *testing.T) {
	e := grantEnv(t, 0)
	ctx := ctxT(t)
	a, carol, bob := e.client(alice), e.client(principal(carol)), e.client(principal(bob))
	k := mustKey(t, a)
	keyID, arn := aws.ToString(k.KeyId), aws.ToString(k.Arn)

	apiCode(t, macWith(carol, keyID), "AccessDeniedException",
		"User: "+carolARN+" is not authorized to perform: kms:GenerateMac on resource: "+arn+" because no identity-based policy allows the kms:GenerateMac action")

	g1 := createGrant(t, a, &kms.CreateGrantInput{KeyId: aws.String(keyID), GranteePrincipal: aws.String(carolARN),
		RetiringPrincipal: aws.String(bobARN), Operations: ops(types.GrantOperationGenerateMac, types.GrantOperationVerifyMac), Name: aws.String("g1")})
	if err := macWith(carol, keyID); err != nil {
		t.Fatalf("carol with a grant: %v", err)
	}
	mac, _ := genMac(a, keyID)
	if v, err := carol.VerifyMac(ctx, &kms.VerifyMacInput{KeyId: aws.String(arn), MacAlgorithm: types.MacAlgorithmSpecHmacSha256, Message: macMsg, Mac: mac.Mac}); err != nil || !v.MacValid {
		t.Fatalf("carol VerifyMac: %v", err)
	}
	// Only the grant's operations.
	_, err := carol.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(keyID)})
	apiCode(t, err, "AccessDeniedException", "kms:DescribeKey")
	_, err = carol.ListGrants(ctx, &kms.ListGrantsInput{KeyId: aws.String(keyID)})
	apiCode(t, err, "AccessDeniedException", "kms:ListGrants")
	// Only its key.
	other := mustKey(t, a)
	apiCode(t, macWith(carol, aws.ToString(other.KeyId)), "AccessDeniedException", "kms:GenerateMac")

	// Name idempotency: the same grant, a fresh token; both tokens work.
	again := createGrant(t, a, &kms.CreateGrantInput{KeyId: aws.String(arn), GranteePrincipal: aws.String(carolARN),
		RetiringPrincipal: aws.String(bobARN), Operations: ops(types.GrantOperationVerifyMac, types.GrantOperationGenerateMac), Name: aws.String("g1")})
	if again.id != g1.id || again.token == g1.token {
		t.Fatalf("Name idempotency: %v then %v", g1, again)
	}
	for _, tok := range []string{g1.token, again.token} {
		if err := macWith(carol, keyID, tok); err != nil {
			t.Fatalf("with a token: %v", err)
		}
	}
	// The same name with other parameters is another grant.
	g2 := createGrant(t, a, &kms.CreateGrantInput{KeyId: aws.String(keyID), GranteePrincipal: aws.String(carolARN),
		Operations: ops(types.GrantOperationDescribeKey, types.GrantOperationRetireGrant), Name: aws.String("g1")})
	if g2.id == g1.id {
		t.Fatal("a grant with the same name and other operations is the same grant")
	}
	if _, err := carol.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(keyID)}); err != nil {
		t.Fatalf("carol DescribeKey with g2: %v", err)
	}

	// Listing: exactly AWS's GrantListEntry members, never a token.
	r := e.callAs(t, alice, "ListGrants", `{"KeyId":"`+keyID+`","GrantId":"`+g1.id+`"}`)
	if r.status != 200 {
		t.Fatalf("ListGrants: %s", r.body)
	}
	gs := r.obj["Grants"].([]any)
	if len(gs) != 1 || r.obj["Truncated"] != false || r.obj["NextMarker"] != nil {
		t.Fatalf("ListGrants by id: %s", r.body)
	}
	entry := gs[0].(map[string]any)
	if got := strings.Join(keysOf(entry), ","); got != "CreationDate,GrantId,GranteePrincipal,IssuingAccount,KeyId,Name,Operations,RetiringPrincipal" {
		t.Errorf("GrantListEntry members: %s", got)
	}
	if entry["KeyId"] != arn || entry["GrantId"] != g1.id || entry["Name"] != "g1" || entry["GranteePrincipal"] != carolARN ||
		entry["RetiringPrincipal"] != bobARN || entry["IssuingAccount"] != "arn:aws:iam::111122223333:root" {
		t.Errorf("entry %v", entry)
	}
	if strings.Contains(string(r.body), g1.token) || strings.Contains(string(r.body), "Token") {
		t.Errorf("ListGrants shows a token: %s", r.body)
	}
	lg, err := a.ListGrants(ctx, &kms.ListGrantsInput{KeyId: aws.String(keyID), GranteePrincipal: aws.String(carolARN)})
	if err != nil || len(lg.Grants) != 2 {
		t.Fatalf("ListGrants by grantee: %v %v", lg, err)
	}
	if c := lg.Grants[0].CreationDate; c == nil || time.Since(*c) > time.Minute {
		t.Errorf("CreationDate %v", c)
	}
	for _, g := range lg.Grants {
		want := ops(types.GrantOperationDescribeKey, types.GrantOperationRetireGrant)
		if aws.ToString(g.GrantId) == g1.id {
			want = ops(types.GrantOperationGenerateMac, types.GrantOperationVerifyMac)
		}
		if !slices.Equal(g.Operations, want) {
			t.Errorf("operations %v, want %v", g.Operations, want)
		}
	}
	// bob's identity policy does not allow kms:ListRetirableGrants; an
	// administrator of the account may list what bob can retire.
	_, err = bob.ListRetirableGrants(ctx, &kms.ListRetirableGrantsInput{RetiringPrincipal: aws.String(bobARN)})
	apiCode(t, err, "AccessDeniedException", "kms:ListRetirableGrants on resource: *")
	lr, err := a.ListRetirableGrants(ctx, &kms.ListRetirableGrantsInput{RetiringPrincipal: aws.String(bobARN)})
	if err != nil || len(lr.Grants) != 1 || aws.ToString(lr.Grants[0].GrantId) != g1.id {
		t.Fatalf("ListRetirableGrants: %+v %v", lr, err)
	}

	// Who may retire: not a stranger, not the grantee of a grant without
	// RetireGrant; the retiring principal may, without any policy.
	_, err = e.client(frank).RetireGrant(ctx, &kms.RetireGrantInput{KeyId: aws.String(arn), GrantId: aws.String(g1.id)})
	apiCode(t, err, "AccessDeniedException", "User: "+frankARN+" is not authorized to perform: kms:RetireGrant on resource: "+arn)
	_, err = carol.RetireGrant(ctx, &kms.RetireGrantInput{GrantToken: aws.String(g1.token)})
	apiCode(t, err, "AccessDeniedException", "kms:RetireGrant")
	_, err = bob.RetireGrant(ctx, &kms.RetireGrantInput{KeyId: aws.String(arn), GrantId: aws.String(g1.id), DryRun: aws.Bool(true)})
	apiCode(t, err, "DryRunOperationException", "DryRun option is set")
	if _, err := bob.RetireGrant(ctx, &kms.RetireGrantInput{KeyId: aws.String(arn), GrantId: aws.String(g1.id)}); err != nil {
		t.Fatalf("retiring principal RetireGrant: %v", err)
	}
	// Gone (delay 0), and its tokens do not revive it.
	apiCode(t, macWith(carol, keyID), "AccessDeniedException", "kms:GenerateMac")
	apiCode(t, macWith(carol, keyID, g1.token, again.token), "AccessDeniedException", "kms:GenerateMac")
	_, err = bob.RetireGrant(ctx, &kms.RetireGrantInput{GrantToken: aws.String(g1.token)})
	apiCode(t, err, "NotFoundException", "Grant ID not found")
	if lr, _ := a.ListRetirableGrants(ctx, &kms.ListRetirableGrantsInput{RetiringPrincipal: aws.String(bobARN)}); len(lr.Grants) != 0 {
		t.Fatalf("a retired grant is still retirable: %+v", lr.Grants)
	}

	// The grantee of a grant that allows RetireGrant may retire it, by its
	// token alone.
	if _, err := carol.RetireGrant(ctx, &kms.RetireGrantInput{GrantToken: aws.String(g2.token)}); err != nil {
		t.Fatalf("grantee RetireGrant by token: %v", err)
	}
	_, err = carol.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(keyID)})
	apiCode(t, err, "AccessDeniedException", "kms:DescribeKey")

	// A principal of the issuing account whom policy allows RetireGrant.
	g3 := createGrant(t, a, &kms.CreateGrantInput{KeyId: aws.String(keyID), GranteePrincipal: aws.String(carolARN), Operations: ops(types.GrantOperationGenerateMac)})
	if _, err := e.client(mallory).RetireGrant(ctx, &kms.RetireGrantInput{KeyId: aws.String(arn), GrantId: aws.String(g3.id)}); err != nil {
		t.Fatalf("administrator RetireGrant: %v", err)
	}

	// RevokeGrant: key policy kms:RevokeGrant (bob's identity policy lacks it).
	g4 := createGrant(t, a, &kms.CreateGrantInput{KeyId: aws.String(keyID), GranteePrincipal: aws.String(carolARN), Operations: ops(types.GrantOperationGenerateMac)})
	_, err = bob.RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: aws.String(keyID), GrantId: aws.String(g4.id)})
	apiCode(t, err, "AccessDeniedException", "User: "+bobARN+" is not authorized to perform: kms:RevokeGrant on resource: "+arn+" because no identity-based policy allows the kms:RevokeGrant action")
	_, err = a.RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: aws.String(keyID), GrantId: aws.String(g4.id), DryRun: aws.Bool(true)})
	apiCode(t, err, "DryRunOperationException", "DryRun")
	if err := macWith(carol, keyID); err != nil {
		t.Fatalf("a DryRun revoked the grant: %v", err)
	}
	if _, err := a.RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: aws.String(keyID), GrantId: aws.String(g4.id)}); err != nil {
		t.Fatalf("RevokeGrant: %v", err)
	}
	apiCode(t, macWith(carol, keyID, g4.token), "AccessDeniedException", "kms:GenerateMac")
	_, err = a.RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: aws.String(keyID), GrantId: aws.String(g4.id)})
	apiCode(t, err, "NotFoundException", "Grant ID not found")
	if g, ok := e.store.State().Grant(e.scope, keyID, g4.id); !ok || g.RetiredBy != fsm.RetiredByRevoke {
		t.Fatalf("tombstone %+v %v", g, ok)
	}
	lg, _ = a.ListGrants(ctx, &kms.ListGrantsInput{KeyId: aws.String(keyID)})
	if len(lg.Grants) != 0 {
		t.Fatalf("retired and revoked grants are listed: %+v", lg.Grants)
	}
}

// TestGrantPropagationWindow drives the node's clock through a grant's
// creation and revocation windows (GrantPropagationDelay 10s).
func TestGrantPropagationWindow(t *testing.T) {
	const delay = 10 * time.Second
	e := grantEnv(t, delay)
	ctx := ctxT(t)
	a, carol := e.client(alice), e.client(principal(carol))
	k := mustKey(t, a)
	keyID := aws.ToString(k.KeyId)
	g := createGrant(t, a, &kms.CreateGrantInput{KeyId: aws.String(keyID), GranteePrincipal: aws.String(carolARN),
		Operations: ops(types.GrantOperationGenerateMac, types.GrantOperationDescribeKey)})

	// Inside the creation window: only the token works.
	apiCode(t, macWith(carol, keyID), "AccessDeniedException", "kms:GenerateMac")
	if err := macWith(carol, keyID, g.token); err != nil {
		t.Fatalf("with the token inside the window: %v", err)
	}
	if _, err := carol.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(keyID), GrantTokens: []string{g.token}}); err != nil {
		t.Fatalf("DescribeKey with the token: %v", err)
	}
	// The listing is not delayed (it shows the replica).
	if lg, _ := a.ListGrants(ctx, &kms.ListGrantsInput{KeyId: aws.String(keyID)}); len(lg.Grants) != 1 {
		t.Fatalf("ListGrants inside the window: %d grants", len(lg.Grants))
	}
	e.clock.Advance(delay - time.Millisecond)
	apiCode(t, macWith(carol, keyID), "AccessDeniedException", "kms:GenerateMac")
	e.clock.Advance(time.Millisecond)
	if err := macWith(carol, keyID); err != nil {
		t.Fatalf("after the delay: %v", err)
	}

	// Revoked: still honoured for the delay, then not, token or not.
	if _, err := a.RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: aws.String(keyID), GrantId: aws.String(g.id)}); err != nil {
		t.Fatal(err)
	}
	if err := macWith(carol, keyID); err != nil {
		t.Fatalf("right after the revocation: %v", err)
	}
	e.clock.Advance(delay - time.Millisecond)
	if err := macWith(carol, keyID, g.token); err != nil {
		t.Fatalf("at the end of the revocation window: %v", err)
	}
	e.clock.Advance(time.Millisecond)
	apiCode(t, macWith(carol, keyID), "AccessDeniedException", "kms:GenerateMac")
	apiCode(t, macWith(carol, keyID, g.token), "AccessDeniedException", "kms:GenerateMac")

	// Retired (by the account) likewise.
	g2 := createGrant(t, a, &kms.CreateGrantInput{KeyId: aws.String(keyID), GranteePrincipal: aws.String(carolARN), Operations: ops(types.GrantOperationGenerateMac)})
	e.clock.Advance(delay)
	if err := macWith(carol, keyID); err != nil {
		t.Fatalf("g2 after the delay: %v", err)
	}
	if _, err := a.RetireGrant(ctx, &kms.RetireGrantInput{GrantToken: aws.String(g2.token)}); err != nil {
		t.Fatalf("RetireGrant by token: %v", err)
	}
	e.clock.Advance(delay / 2)
	if err := macWith(carol, keyID); err != nil {
		t.Fatalf("inside the retirement window: %v", err)
	}
	e.clock.Advance(delay / 2)
	apiCode(t, macWith(carol, keyID), "AccessDeniedException", "kms:GenerateMac")

	// A grant retired before this node considered it effective: the
	// tombstone is known, so neither the grant nor its token works.
	g3 := createGrant(t, a, &kms.CreateGrantInput{KeyId: aws.String(keyID), GranteePrincipal: aws.String(carolARN), Operations: ops(types.GrantOperationGenerateMac)})
	e.clock.Advance(time.Second)
	if _, err := a.RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: aws.String(keyID), GrantId: aws.String(g3.id)}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Second)
	apiCode(t, macWith(carol, keyID, g3.token), "AccessDeniedException", "kms:GenerateMac")
	apiCode(t, macWith(carol, keyID), "AccessDeniedException", "kms:GenerateMac")
}

// signToken issues a token with the env's cluster secret for claims (a
// grant the node may not know: one created through another node).
func signToken(t *testing.T, e *env, c engine.GrantTokenClaims) string {
	t.Helper()
	secret, ok := e.store.State().ClusterSecret()
	if !ok {
		t.Fatal("no cluster secret")
	}
	tok, err := engine.SignGrantToken(secret, c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestGrantTokens: tampered and forged tokens, tokens of other keys and
// other grantees, tokens of grants this node has not applied, and the
// retention bound on those.
func TestGrantTokens(t *testing.T) {
	e := grantEnv(t, time.Minute)
	ctx := ctxT(t)
	a, carol := e.client(alice), e.client(principal(carol))
	k, k2 := mustKey(t, a), mustKey(t, a)
	keyID, arn := aws.ToString(k.KeyId), aws.ToString(k.Arn)
	g := createGrant(t, a, &kms.CreateGrantInput{KeyId: aws.String(keyID), GranteePrincipal: aws.String(carolARN), Operations: ops(types.GrantOperationGenerateMac)})
	if err := macWith(carol, keyID, g.token); err != nil {
		t.Fatal(err)
	}

	// Tampered: every single-character change is refused, even for a
	// caller who needs no token.
	for _, i := range []int{0, len(g.token) / 3, len(g.token) / 2, len(g.token) - 1} {
		b := []byte(g.token)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		apiCode(t, macWith(carol, keyID, string(b)), "InvalidGrantTokenException", "The grant token is not valid.")
		apiCode(t, macWith(a, keyID, string(b)), "InvalidGrantTokenException", "The grant token is not valid.")
	}
	apiCode(t, macWith(a, keyID, g.token, "AAAA"), "InvalidGrantTokenException", "")
	// Forged: well-formed, signed with another secret.
	claims := engine.GrantTokenClaims{KeyARN: arn, GrantID: strings.Repeat("f", 64), GranteePrincipal: carolARN,
		Operations: []string{"GenerateMac"}, CreationDate: e.clock.Now().UnixNano()}
	forged, err := engine.SignGrantToken(engine.NewGrantTokenSecret(), claims)
	if err != nil {
		t.Fatal(err)
	}
	apiCode(t, macWith(carol, keyID, forged), "InvalidGrantTokenException", "")
	_, err = carol.RetireGrant(ctx, &kms.RetireGrantInput{GrantToken: aws.String(forged)})
	apiCode(t, err, "InvalidGrantTokenException", "")

	// A genuine token authorizes nothing but its grantee, its operations,
	// its key.
	apiCode(t, macWith(carol, aws.ToString(k2.KeyId), g.token), "AccessDeniedException", "kms:GenerateMac")
	_, err = carol.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(keyID), GrantTokens: []string{g.token}})
	apiCode(t, err, "AccessDeniedException", "kms:DescribeKey")
	apiCode(t, macWith(e.client(frank), arn, g.token), "AccessDeniedException", "kms:GenerateMac")
	// Ten tokens are fine; the right one among them counts.
	ten := []string{g.token}
	for len(ten) < 10 {
		ten = append(ten, createGrant(t, a, &kms.CreateGrantInput{KeyId: k2.KeyId, GranteePrincipal: aws.String(carolARN), Operations: ops(types.GrantOperationVerifyMac)}).token)
	}
	slices.Reverse(ten)
	if err := macWith(carol, keyID, ten...); err != nil {
		t.Fatalf("ten tokens: %v", err)
	}
	apiCode(t, macWith(carol, keyID, append(ten, g.token)...), "ValidationException", "at 'grantTokens' failed to satisfy constraint: Member must have length less than or equal to 10")

	// A grant this node has not applied (created through another node):
	// its genuine token authorizes at once...
	claims.GrantID = strings.Repeat("a", 64)
	unknown := signToken(t, e, claims)
	if err := macWith(carol, keyID, unknown); err != nil {
		t.Fatalf("token of an unapplied grant: %v", err)
	}
	// ...but only within the tombstone retention of its creation: past
	// it, the grant may have been retired and its tombstone purged.
	claims.GrantID = strings.Repeat("b", 64)
	claims.CreationDate = e.clock.Now().Add(-DefaultGrantTombstoneRetention).UnixNano()
	apiCode(t, macWith(carol, keyID, signToken(t, e, claims)), "AccessDeniedException", "kms:GenerateMac")
	// A grant with a SourceArn constraint is for AWS services acting for a
	// resource: it never authorizes a keyraft caller.
	claims.CreationDate, claims.SourceArn = e.clock.Now().UnixNano(), "arn:aws:s3:::some-bucket"
	apiCode(t, macWith(carol, keyID, signToken(t, e, claims)), "AccessDeniedException", "kms:GenerateMac")
	// RetireGrant by the token of an unapplied grant is proposed (the
	// leader decides; here the grant does not exist).
	claims.SourceArn, claims.RetiringPrincipal = "", carolARN
	_, err = carol.RetireGrant(ctx, &kms.RetireGrantInput{GrantToken: aws.String(signToken(t, e, claims))})
	apiCode(t, err, "NotFoundException", "Grant ID not found")
}

// TestGrantTokensWithoutSecret: a node that has not applied the cluster
// secret yet checks the format of tokens, answers a retryable error where a
// token is needed (and only there), and creates no grants.
func TestGrantTokensWithoutSecret(t *testing.T) {
	creds := testCredentials(t)
	e := newEnvOpts(t, func(c *Config) {
		c.Auth, c.Credentials, c.Verifier = AuthSigV4, creds, auth.NewVerifier(creds, auth.VerifierOptions{})
	}, false)
	ctx := ctxT(t)
	a, carolC := e.client(alice), e.client(principal(carol))
	k := mustKey(t, a)
	keyID, arn := aws.ToString(k.KeyId), aws.ToString(k.Arn)
	tok, err := engine.SignGrantToken(engine.NewGrantTokenSecret(), engine.GrantTokenClaims{KeyARN: arn, GrantID: strings.Repeat("c", 64),
		GranteePrincipal: carolARN, Operations: []string{"GenerateMac"}, CreationDate: e.clock.Now().UnixNano()})
	if err != nil {
		t.Fatal(err)
	}
	// Needed and unverifiable: retryable (500).
	err = macWith(carolC, keyID, tok)
	wantCode(t, err, "KMSInternalException", "cannot verify grant tokens yet")
	// Not needed: the administrator's request goes through.
	if err := macWith(a, keyID, tok); err != nil {
		t.Fatalf("administrator with an unverifiable token: %v", err)
	}
	// Malformed is malformed without the secret too.
	apiCode(t, macWith(carolC, keyID, "garbage"), "InvalidGrantTokenException", "")
	apiCode(t, macWith(a, keyID, tok[:10]+"*"+tok[11:]), "InvalidGrantTokenException", "")
	// No secret, no grants, no retiring by token.
	in := &kms.CreateGrantInput{KeyId: k.KeyId, GranteePrincipal: aws.String(carolARN), Operations: ops(types.GrantOperationGenerateMac)}
	_, err = a.CreateGrant(ctx, in)
	wantCode(t, err, "KMSInternalException", "cannot issue grant tokens yet")
	_, err = a.RetireGrant(ctx, &kms.RetireGrantInput{GrantToken: aws.String(tok)})
	wantCode(t, err, "KMSInternalException", "cannot verify grant tokens yet")
	if lg, _ := a.ListGrants(ctx, &kms.ListGrantsInput{KeyId: k.KeyId}); len(lg.Grants) != 0 {
		t.Fatalf("a grant was created without a token: %+v", lg.Grants)
	}
	// Once the secret is applied, everything works; the forged token is
	// now recognised as such.
	installClusterSecret(t, e.store, e.sealer)
	g := createGrant(t, a, in)
	apiCode(t, macWith(carolC, keyID, tok), "InvalidGrantTokenException", "")
	if err := macWith(carolC, keyID, g.token); err != nil {
		t.Fatal(err)
	}
}

// TestGrantCrossAccount: a grant to a principal of another account, which
// uses the key by its ARN; a grant created by another account (the key
// policy lets it), retired by that account.
func TestGrantCrossAccount(t *testing.T) {
	e := grantEnv(t, 0)
	ctx := ctxT(t)
	a, erinC, frankC := e.client(alice), e.client(erin), e.client(frank)
	k := mustKey(t, a)
	keyID, arn := aws.ToString(k.KeyId), aws.ToString(k.Arn)
	apiCode(t, macWith(frankC, arn), "AccessDeniedException", "because no resource-based policy allows the kms:GenerateMac action")
	g := createGrant(t, a, &kms.CreateGrantInput{KeyId: aws.String(keyID), GranteePrincipal: aws.String(frankARN), Operations: ops(types.GrantOperationGenerateMac)})
	if err := macWith(frankC, arn); err != nil {
		t.Fatalf("cross-account grantee by key ARN: %v", err)
	}
	apiCode(t, macWith(frankC, keyID), "NotFoundException", "arn:aws:kms:us-east-1:444455556666:key/"+keyID)
	// Grant operations take the other account's key by ARN only, and only
	// where the key policy allows.
	_, err := erinC.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(arn), GranteePrincipal: aws.String(frankARN), Operations: ops(types.GrantOperationVerifyMac)})
	apiCode(t, err, "AccessDeniedException", "User: "+erinARN+" is not authorized to perform: kms:CreateGrant on resource: "+arn)
	_, err = erinC.ListGrants(ctx, &kms.ListGrantsInput{KeyId: aws.String(arn)})
	apiCode(t, err, "AccessDeniedException", "kms:ListGrants")
	_, err = erinC.RetireGrant(ctx, &kms.RetireGrantInput{KeyId: aws.String(arn), GrantId: aws.String(g.id)})
	apiCode(t, err, "AccessDeniedException", "kms:RetireGrant")

	share := `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
		{"Effect":"Allow","Principal":{"AWS":"444455556666"},"Action":["kms:CreateGrant","kms:ListGrants"],"Resource":"*"}]}`
	if _, err := a.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(keyID), Policy: aws.String(share)}); err != nil {
		t.Fatal(err)
	}
	g2 := createGrant(t, erinC, &kms.CreateGrantInput{KeyId: aws.String(arn), GranteePrincipal: aws.String(frankARN),
		Operations: ops(types.GrantOperationVerifyMac, types.GrantOperationDescribeKey)})
	if _, err := frankC.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(arn)}); err != nil {
		t.Fatalf("frank DescribeKey by the grant of erin: %v", err)
	}
	lg, err := erinC.ListGrants(ctx, &kms.ListGrantsInput{KeyId: aws.String(arn), GrantId: aws.String(g2.id)})
	if err != nil || len(lg.Grants) != 1 || aws.ToString(lg.Grants[0].IssuingAccount) != "arn:aws:iam::444455556666:root" ||
		aws.ToString(lg.Grants[0].KeyId) != arn {
		t.Fatalf("ListGrants cross-account: %+v %v", lg, err)
	}
	// The issuing account retires its grant (its identity policy decides);
	// it may not retire the key owner's grant.
	_, err = erinC.RetireGrant(ctx, &kms.RetireGrantInput{KeyId: aws.String(arn), GrantId: aws.String(g.id)})
	apiCode(t, err, "AccessDeniedException", "kms:RetireGrant")
	if _, err := erinC.RetireGrant(ctx, &kms.RetireGrantInput{KeyId: aws.String(arn), GrantId: aws.String(g2.id)}); err != nil {
		t.Fatalf("issuing account RetireGrant: %v", err)
	}
	_, err = frankC.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(arn)})
	apiCode(t, err, "AccessDeniedException", "kms:DescribeKey")
	// The owner revokes the other.
	if _, err := a.RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: aws.String(arn), GrantId: aws.String(g.id)}); err != nil {
		t.Fatal(err)
	}
	apiCode(t, macWith(frankC, arn), "AccessDeniedException", "kms:GenerateMac")
	// ListRetirableGrants lists the caller's account's keys.
	if lr, err := erinC.ListRetirableGrants(ctx, &kms.ListRetirableGrantsInput{RetiringPrincipal: aws.String(frankARN)}); err != nil || len(lr.Grants) != 0 {
		t.Fatalf("ListRetirableGrants: %+v %v", lr, err)
	}
}

// TestGrantPolicies: condition keys on CreateGrant, grants that create
// grants (a subset only), grants to an account, explicit denies, SourceArn.
func TestGrantPolicies(t *testing.T) {
	e := grantEnv(t, 0)
	ctx := ctxT(t)
	a, bobC, carolC := e.client(alice), e.client(principal(bob)), e.client(principal(carol))
	k := mustKey(t, a)
	keyID := aws.ToString(k.KeyId)

	// kms:GrantOperations (ForAllValues) and kms:GrantIsForAWSResource.
	pol := `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
		{"Effect":"Allow","Principal":{"AWS":"` + bobARN + `"},"Action":"kms:CreateGrant","Resource":"*",
		 "Condition":{"ForAllValues:StringEquals":{"kms:GrantOperations":["GenerateMac","VerifyMac"]},"Bool":{"kms:GrantIsForAWSResource":"false"},
		              "StringLike":{"kms:GranteePrincipal":"arn:aws:iam::111122223333:*"}}},
		{"Effect":"Deny","Principal":{"AWS":"` + carolARN + `"},"Action":"kms:VerifyMac","Resource":"*"}]}`
	if _, err := a.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(keyID), Policy: aws.String(pol)}); err != nil {
		t.Fatal(err)
	}
	createGrant(t, bobC, &kms.CreateGrantInput{KeyId: aws.String(keyID), GranteePrincipal: aws.String(carolARN), Operations: ops(types.GrantOperationGenerateMac, types.GrantOperationVerifyMac)})
	_, err := bobC.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(keyID), GranteePrincipal: aws.String(carolARN), Operations: ops(types.GrantOperationGenerateMac, types.GrantOperationCreateGrant)})
	apiCode(t, err, "AccessDeniedException", "User: "+bobARN+" is not authorized to perform: kms:CreateGrant")
	_, err = bobC.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(keyID), GranteePrincipal: aws.String(frankARN), Operations: ops(types.GrantOperationGenerateMac)})
	apiCode(t, err, "AccessDeniedException", "kms:CreateGrant")
	_, err = bobC.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(keyID), GranteePrincipal: aws.String(carolARN), Operations: ops(types.GrantOperationGenerateMac), DryRun: aws.Bool(true)})
	apiCode(t, err, "DryRunOperationException", "DryRun")
	// The explicit deny beats carol's grant.
	if err := macWith(carolC, keyID); err != nil {
		t.Fatalf("carol GenerateMac: %v", err)
	}
	mac, _ := genMac(a, keyID)
	_, err = carolC.VerifyMac(ctx, &kms.VerifyMacInput{KeyId: aws.String(keyID), MacAlgorithm: types.MacAlgorithmSpecHmacSha256, Message: macMsg, Mac: mac.Mac})
	apiCode(t, err, "AccessDeniedException", "with an explicit deny in a resource-based policy")

	// A grant that allows CreateGrant hands on a subset of itself only.
	k2 := mustKey(t, a)
	k2ID := aws.ToString(k2.KeyId)
	gc := createGrant(t, a, &kms.CreateGrantInput{KeyId: aws.String(k2ID), GranteePrincipal: aws.String(carolARN),
		Operations: ops(types.GrantOperationGenerateMac, types.GrantOperationCreateGrant)})
	sub := createGrant(t, carolC, &kms.CreateGrantInput{KeyId: aws.String(k2ID), GranteePrincipal: aws.String(frankARN), Operations: ops(types.GrantOperationGenerateMac), GrantTokens: []string{gc.token}})
	if err := macWith(e.client(frank), aws.ToString(k2.Arn)); err != nil {
		t.Fatalf("frank by carol's grant: %v", err)
	}
	_, err = carolC.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(k2ID), GranteePrincipal: aws.String(frankARN), Operations: ops(types.GrantOperationVerifyMac)})
	apiCode(t, err, "AccessDeniedException", "kms:CreateGrant")
	if lg, _ := a.ListGrants(ctx, &kms.ListGrantsInput{KeyId: aws.String(k2ID), GrantId: aws.String(sub.id)}); len(lg.Grants) != 1 ||
		aws.ToString(lg.Grants[0].IssuingAccount) != "arn:aws:iam::111122223333:root" {
		t.Fatalf("sub-grant %+v", lg.Grants)
	}

	// A grant to the account: its principals whose identity policy allows
	// the action may use it (bob), others not (carol).
	onlyAlice := `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"Action":"kms:*","Resource":"*"}]}`
	k3 := mustKey(t, a)
	k3ID := aws.ToString(k3.KeyId)
	if _, err := a.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(k3ID), Policy: aws.String(onlyAlice)}); err != nil {
		t.Fatal(err)
	}
	apiCode(t, macWith(bobC, k3ID), "AccessDeniedException", "no resource-based policy allows")
	createGrant(t, a, &kms.CreateGrantInput{KeyId: aws.String(k3ID), GranteePrincipal: aws.String("arn:aws:iam::111122223333:root"), Operations: ops(types.GrantOperationGenerateMac)})
	if err := macWith(bobC, k3ID); err != nil {
		t.Fatalf("bob by a grant to his account: %v", err)
	}
	if err := macWith(e.client(mallory), k3ID); err != nil {
		t.Fatalf("mallory by a grant to her account: %v", err)
	}
	apiCode(t, macWith(carolC, k3ID), "AccessDeniedException", "kms:GenerateMac")
	apiCode(t, macWith(e.client(frank), aws.ToString(k3.Arn)), "AccessDeniedException", "kms:GenerateMac")

	// SourceArn: accepted, stored, listed; never satisfied by a caller.
	k4 := mustKey(t, a)
	createGrant(t, a, &kms.CreateGrantInput{KeyId: k4.KeyId, GranteePrincipal: aws.String(carolARN), Operations: ops(types.GrantOperationGenerateMac),
		Constraints: &types.GrantConstraints{SourceArn: aws.String("arn:aws:s3:::some-bucket")}})
	apiCode(t, macWith(carolC, aws.ToString(k4.KeyId)), "AccessDeniedException", "kms:GenerateMac")
	r := e.callAs(t, alice, "ListGrants", `{"KeyId":"`+aws.ToString(k4.KeyId)+`"}`)
	if !strings.Contains(string(r.body), `"Constraints":{"SourceArn":"arn:aws:s3:::some-bucket"}`) {
		t.Fatalf("ListGrants: %s", r.body)
	}
}

// TestGrantPagination lists grants and retirable grants page by page; a
// marker survives the retirement of the grant it points after.
func TestGrantPagination(t *testing.T) {
	e := grantEnv(t, 0)
	ctx := ctxT(t)
	a := e.client(alice)
	k := mustKey(t, a)
	keyID := aws.ToString(k.KeyId)
	var want []string
	for i := 0; i < 7; i++ {
		e.clock.Advance(time.Millisecond) // distinct creation dates; ids break ties anyway
		in := &kms.CreateGrantInput{KeyId: aws.String(keyID), GranteePrincipal: aws.String(carolARN), Operations: ops(types.GrantOperationGenerateMac)}
		if i%2 == 0 {
			in.RetiringPrincipal = aws.String(bobARN)
		}
		if i == 6 {
			in.GranteePrincipal = aws.String(frankARN)
		}
		want = append(want, createGrant(t, a, in).id)
	}
	var got []string
	var marker *string
	pagesSeen := 0
	for {
		out, err := a.ListGrants(ctx, &kms.ListGrantsInput{KeyId: aws.String(keyID), Limit: aws.Int32(3), Marker: marker})
		if err != nil {
			t.Fatal(err)
		}
		pagesSeen++
		for _, g := range out.Grants {
			got = append(got, aws.ToString(g.GrantId))
		}
		if !out.Truncated {
			if out.NextMarker != nil {
				t.Fatal("NextMarker without Truncated")
			}
			break
		}
		if len(out.Grants) != 3 {
			t.Fatalf("a truncated page of %d", len(out.Grants))
		}
		marker = out.NextMarker
		if pagesSeen == 1 {
			// Retire the last grant of the first page: the marker still works.
			if _, err := a.RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: aws.String(keyID), GrantId: aws.String(got[2])}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !slices.Equal(got, want) || pagesSeen != 3 {
		t.Fatalf("pages %d: %v, want %v", pagesSeen, got, want)
	}
	// The paginator of the SDK, with a grantee filter.
	p := kms.NewListGrantsPaginator(a, &kms.ListGrantsInput{KeyId: aws.String(keyID), GranteePrincipal: aws.String(carolARN), Limit: aws.Int32(2)})
	n := 0
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n += len(out.Grants)
	}
	if n != 5 { // 6 of carol, one revoked
		t.Fatalf("carol's grants: %d", n)
	}
	// Retirable grants: 0, 2, 4, 6 (2 was revoked).
	var ret []string
	marker = nil
	for {
		out, err := e.client(mallory).ListRetirableGrants(ctx, &kms.ListRetirableGrantsInput{RetiringPrincipal: aws.String(bobARN), Limit: aws.Int32(1), Marker: marker})
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range out.Grants {
			ret = append(ret, aws.ToString(g.GrantId))
		}
		if !out.Truncated {
			break
		}
		marker = out.NextMarker
	}
	if !slices.Equal(ret, []string{want[0], want[4], want[6]}) {
		t.Fatalf("retirable %v", ret)
	}
	// A principal without kms:ListRetirableGrants in its identity policy.
	_, err := e.client(principal(carol)).ListRetirableGrants(ctx, &kms.ListRetirableGrantsInput{RetiringPrincipal: aws.String(carolARN)})
	apiCode(t, err, "AccessDeniedException", "kms:ListRetirableGrants on resource: *")
}

// TestAuthorizeGrantsFastPathAllocs: an administrator's GenerateMac does no
// grant work and allocates nothing, with the grant-aware authorization too.
func TestAuthorizeGrantsFastPathAllocs(t *testing.T) {
	e := newAuthEnv(t, nil)
	k := mustKey(t, e.client(alice))
	createGrant(t, e.client(alice), &kms.CreateGrantInput{KeyId: k.KeyId, GranteePrincipal: aws.String(carolARN), Operations: ops(types.GrantOperationGenerateMac)})
	key, _ := e.store.State().Key(e.scopeOf(acctA), aws.ToString(k.KeyId))
	p, _ := e.api.cfg.Credentials.Lookup(alice.akid)
	rc := &reqCtx{caller: e.api.callerFor(p), op: e.api.ops["GenerateMac"], now: time.Now()}
	var toks grantTokens
	if n := testing.AllocsPerRun(200, func() { _ = e.api.authorizeKeyGrants(rc, &key, "HMAC_SHA_256", &toks, nil) }); n != 0 {
		t.Errorf("%v allocations per authorization", n)
	}
	// And carol's, by her grant, works.
	pc, _ := e.api.cfg.Credentials.Lookup(carol.akid)
	rc.caller = e.api.callerFor(pc)
	if err := e.api.authorizeKeyGrants(rc, &key, "HMAC_SHA_256", &toks, nil); err != nil {
		t.Fatal(err)
	}
}

func (e *env) scopeOf(acct string) fsm.Scope { return fsm.Scope{Account: acct, Region: "us-east-1"} }

func TestValidPrincipalARN(t *testing.T) {
	good := []string{"arn:aws:iam::111122223333:root", "arn:aws:iam::111122223333:user/alice", "arn:aws:iam::111122223333:role/ops/deploy",
		"arn:aws:sts::111122223333:assumed-role/r/session", "arn:aws:sts::111122223333:federated-user/bob"}
	bad := []string{"alice", "111122223333", "arn:aws:iam::111122223333:group/g", "arn:aws:iam::11112222333:user/a", "arn:aws:iam::111122223333:user/",
		"arn:aws-cn:iam::111122223333:user/a", "arn:aws:sts::111122223333:root", "arn:aws:iam:us-east-1:111122223333:user/a", "arn:aws:s3:::bucket"}
	for _, p := range good {
		if !validPrincipalARN(p) {
			t.Errorf("%s refused", p)
		}
	}
	for _, p := range bad {
		if validPrincipalARN(p) {
			t.Errorf("%s accepted", p)
		}
	}
}
