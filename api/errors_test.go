package api

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// fixture keys of the error table.
type fixture struct {
	*env
	K, K224, D, P, X string // enabled HMAC_256, enabled HMAC_224, disabled, pending deletion, pending import
}

func newFixture(t *testing.T) *fixture {
	e := newEnv(t, nil)
	f := &fixture{env: e}
	f.K = e.createKey("HMAC_256", "")
	f.K224 = e.createKey("HMAC_224", "")
	f.D = e.createKey("HMAC_256", "")
	e.mustCall("DisableKey", `{"KeyId":"`+f.D+`"}`)
	f.P = e.createKey("HMAC_384", "")
	e.mustCall("ScheduleKeyDeletion", `{"KeyId":"`+f.P+`","PendingWindowInDays":7}`)
	f.X = e.createKey("HMAC_512", `,"Origin":"EXTERNAL"`)
	e.mustCall("CreateAlias", `{"AliasName":"alias/k","TargetKeyId":"`+f.K+`"}`)
	return f
}

func (f *fixture) expand(s string) string {
	return strings.NewReplacer(
		"{K}", f.K, "{K224}", f.K224, "{D}", f.D, "{P}", f.P, "{X}", f.X,
		"{KARN}", f.arn(f.K), "{DARN}", f.arn(f.D), "{PARN}", f.arn(f.P), "{XARN}", f.arn(f.X),
		"{ABSENT}", absentID, "{ABSENTARN}", f.arn(absentID),
		"{MSG}", base64.StdEncoding.EncodeToString([]byte("hello")),
	).Replace(s)
}

const absentID = "00000000-0000-4000-8000-000000000000"

func rep(s string, n int) string { return strings.Repeat(s, n) }

func b64(n int) string { return base64.StdEncoding.EncodeToString(make([]byte, n)) }

func manyTags(n int) string {
	var b strings.Builder
	b.WriteString("[")
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"TagKey":"k%d","TagValue":"v"}`, i)
	}
	b.WriteString("]")
	return b.String()
}

// TestErrorTable covers every error case the API implements: the
// operation, the request body, and the expected status, __type and message.
func TestErrorTable(t *testing.T) {
	f := newFixture(t)
	vErr := "1 validation error detected: "
	cases := []struct {
		name   string
		op     string // "" = no X-Amz-Target
		body   string
		status int
		typ    string
		msg    string
	}{
		// ---- protocol ----
		{"missing target", "", `{}`, 400, "UnknownOperationException", "X-Amz-Target header is missing"},
		{"unknown op", "TrentService.Frobnicate", `{}`, 400, "UnknownOperationException", `Unknown operation "TrentService.Frobnicate"`},
		{"wrong prefix", "Kms.GenerateMac", `{}`, 400, "UnknownOperationException", "Unknown operation"},
		{"malformed json", "GenerateMac", `{"KeyId":`, 400, "SerializationException", "not valid JSON"},
		{"trailing garbage", "GenerateMac", `{} x`, 400, "SerializationException", "not valid JSON"},
		{"array body", "GenerateMac", `[]`, 400, "SerializationException", "must be a JSON object (it starts with an array)"},
		{"null body", "GenerateMac", `null`, 400, "SerializationException", "must be a JSON object (it starts with null)"},
		{"string body", "ListKeys", `"x"`, 400, "SerializationException", "must be a JSON object"},
		{"wrong member type", "DescribeKey", `{"KeyId":5}`, 400, "SerializationException", "Unexpected JSON number for member 'KeyId': expected a string"},
		{"wrong bool type", "GenerateMac", `{"KeyId":"{K}","MacAlgorithm":"HMAC_SHA_256","Message":"{MSG}","DryRun":"yes"}`, 400, "SerializationException", "member 'DryRun': expected a boolean"},
		{"wrong int type", "ListKeys", `{"Limit":"5"}`, 400, "SerializationException", "member 'Limit': expected an integer"},
		{"fractional int", "ListKeys", `{"Limit":1.5}`, 400, "SerializationException", "member 'Limit'"},
		{"object for string", "DescribeKey", `{"KeyId":{}}`, 400, "SerializationException", "member 'KeyId'"},
		{"bad base64", "GenerateMac", `{"KeyId":"{K}","MacAlgorithm":"HMAC_SHA_256","Message":"not base64!"}`, 400, "SerializationException", "Member 'Message' is not valid base64"},
		{"bad list type", "TagResource", `{"KeyId":"{K}","Tags":{}}`, 400, "SerializationException", "member 'Tags': expected a list"},
		{"nested wrong type", "TagResource", `{"KeyId":"{K}","Tags":[{"TagKey":1,"TagValue":"v"}]}`, 400, "SerializationException", "Tags.TagKey"},

		// ---- GenerateMac / VerifyMac validation ----
		{"mac all missing", "GenerateMac", `{}`, 400, "ValidationException",
			"3 validation errors detected: Value null at 'message' failed to satisfy constraint: Member must not be null; Value null at 'keyId' failed to satisfy constraint: Member must not be null; Value null at 'macAlgorithm' failed to satisfy constraint: Member must not be null"},
		{"mac bad algorithm", "GenerateMac", `{"KeyId":"{K}","MacAlgorithm":"INVALID","Message":"{MSG}"}`, 400, "ValidationException",
			vErr + "Value 'INVALID' at 'macAlgorithm' failed to satisfy constraint: Member must satisfy enum value set: [HMAC_SHA_384, HMAC_SHA_256, HMAC_SHA_224, HMAC_SHA_512]"},
		{"mac message too long", "GenerateMac", `{"KeyId":"{K}","MacAlgorithm":"HMAC_SHA_256","Message":"` + b64(4097) + `"}`, 400, "ValidationException",
			vErr + "Value at 'message' failed to satisfy constraint: Member must have length less than or equal to 4096"},
		{"mac message empty", "GenerateMac", `{"KeyId":"{K}","MacAlgorithm":"HMAC_SHA_256","Message":""}`, 400, "ValidationException",
			vErr + "Value at 'message' failed to satisfy constraint: Member must have length greater than or equal to 1"},
		{"mac message null", "GenerateMac", `{"KeyId":"{K}","MacAlgorithm":"HMAC_SHA_256","Message":null}`, 400, "ValidationException",
			vErr + "Value null at 'message' failed to satisfy constraint: Member must not be null"},
		{"mac keyid empty", "GenerateMac", `{"KeyId":"","MacAlgorithm":"HMAC_SHA_256","Message":"{MSG}"}`, 400, "ValidationException",
			vErr + "Value '' at 'keyId' failed to satisfy constraint: Member must have length greater than or equal to 1"},
		{"mac keyid too long", "GenerateMac", `{"KeyId":"` + rep("a", 2049) + `","MacAlgorithm":"HMAC_SHA_256","Message":"{MSG}"}`, 400, "ValidationException",
			"at 'keyId' failed to satisfy constraint: Member must have length less than or equal to 2048"},
		{"mac too many grant tokens", "GenerateMac", `{"KeyId":"{K}","MacAlgorithm":"HMAC_SHA_256","Message":"{MSG}","GrantTokens":["a","a","a","a","a","a","a","a","a","a","a"]}`, 400, "ValidationException",
			"at 'grantTokens' failed to satisfy constraint: Member must have length less than or equal to 10"},
		{"mac empty grant token", "GenerateMac", `{"KeyId":"{K}","MacAlgorithm":"HMAC_SHA_256","Message":"{MSG}","GrantTokens":[""]}`, 400, "ValidationException",
			vErr + "Value '' at 'grantTokens.1.member' failed to satisfy constraint: Member must have length greater than or equal to 1"},
		{"verify mac missing", "VerifyMac", `{"KeyId":"{K}","MacAlgorithm":"HMAC_SHA_256","Message":"{MSG}"}`, 400, "ValidationException",
			vErr + "Value null at 'mac' failed to satisfy constraint: Member must not be null"},
		{"verify mac too long", "VerifyMac", `{"KeyId":"{K}","MacAlgorithm":"HMAC_SHA_256","Message":"{MSG}","Mac":"` + b64(6145) + `"}`, 400, "ValidationException",
			vErr + "Value at 'mac' failed to satisfy constraint: Member must have length less than or equal to 6144"},

		// ---- GenerateMac / VerifyMac semantics ----
		{"mac malformed id", "GenerateMac", `{"KeyId":"foo","MacAlgorithm":"HMAC_SHA_256","Message":"{MSG}"}`, 400, "NotFoundException", "Invalid keyId 'foo'"},
		{"mac uppercase id", "GenerateMac", `{"KeyId":"ABCDEF00-0000-4000-8000-000000000000","MacAlgorithm":"HMAC_SHA_256","Message":"{MSG}"}`, 400, "NotFoundException", "Invalid keyId 'ABCDEF00-0000-4000-8000-000000000000'"},
		{"mac absent key", "GenerateMac", `{"KeyId":"{ABSENT}","MacAlgorithm":"HMAC_SHA_256","Message":"{MSG}"}`, 400, "NotFoundException", "Key '{ABSENTARN}' does not exist"},
		{"mac absent alias", "GenerateMac", `{"KeyId":"alias/nope","MacAlgorithm":"HMAC_SHA_256","Message":"{MSG}"}`, 400, "NotFoundException", "Alias arn:aws:kms:us-east-1:111122223333:alias/nope is not found."},
		{"mac absent alias arn", "GenerateMac", `{"KeyId":"arn:aws:kms:us-east-1:111122223333:alias/nope","MacAlgorithm":"HMAC_SHA_256","Message":"{MSG}"}`, 400, "NotFoundException", "Alias arn:aws:kms:us-east-1:111122223333:alias/nope is not found."},
		{"mac other region arn", "GenerateMac", `{"KeyId":"arn:aws:kms:eu-west-1:111122223333:key/{K}","MacAlgorithm":"HMAC_SHA_256","Message":"{MSG}"}`, 400, "NotFoundException", "Invalid arn eu-west-1"},
		{"mac other account arn", "GenerateMac", `{"KeyId":"arn:aws:kms:us-east-1:444455556666:key/{K}","MacAlgorithm":"HMAC_SHA_256","Message":"{MSG}"}`, 400, "NotFoundException", "Key 'arn:aws:kms:us-east-1:444455556666:key/{K}' does not exist"},
		{"mac malformed arn", "GenerateMac", `{"KeyId":"arn:aws:kms:us-east-1:111122223333:grant/x","MacAlgorithm":"HMAC_SHA_256","Message":"{MSG}"}`, 400, "NotFoundException", "Invalid keyId 'arn:aws:kms:us-east-1:111122223333:grant/x'"},
		{"mac arn bad id", "GenerateMac", `{"KeyId":"arn:aws:kms:us-east-1:111122223333:key/zzz","MacAlgorithm":"HMAC_SHA_256","Message":"{MSG}"}`, 400, "NotFoundException", "Invalid keyId"},
		{"mac disabled", "GenerateMac", `{"KeyId":"{D}","MacAlgorithm":"HMAC_SHA_256","Message":"{MSG}"}`, 400, "DisabledException", "{DARN} is disabled."},
		{"mac disabled dryrun", "GenerateMac", `{"KeyId":"{D}","MacAlgorithm":"HMAC_SHA_256","Message":"{MSG}","DryRun":true}`, 400, "DisabledException", "{DARN} is disabled."},
		{"mac pending deletion", "GenerateMac", `{"KeyId":"{P}","MacAlgorithm":"HMAC_SHA_384","Message":"{MSG}"}`, 400, "KMSInvalidStateException", "{PARN} is pending deletion."},
		{"mac pending import", "GenerateMac", `{"KeyId":"{X}","MacAlgorithm":"HMAC_SHA_512","Message":"{MSG}"}`, 400, "KMSInvalidStateException", "{XARN} is pending import."},
		{"mac wrong algorithm", "GenerateMac", `{"KeyId":"{K224}","MacAlgorithm":"HMAC_SHA_256","Message":"{MSG}"}`, 400, "InvalidKeyUsageException", "Algorithm HMAC_SHA_256 is incompatible with key spec HMAC_224."},
		{"mac disabled before algorithm", "GenerateMac", `{"KeyId":"{D}","MacAlgorithm":"HMAC_SHA_512","Message":"{MSG}"}`, 400, "DisabledException", "is disabled."},
		{"mac dryrun", "GenerateMac", `{"KeyId":"alias/k","MacAlgorithm":"HMAC_SHA_256","Message":"{MSG}","DryRun":true}`, 400, "DryRunOperationException", "The request would have succeeded, but the DryRun option is set."},
		{"verify wrong algorithm", "VerifyMac", `{"KeyId":"{K}","MacAlgorithm":"HMAC_SHA_512","Message":"{MSG}","Mac":"` + b64(64) + `"}`, 400, "InvalidKeyUsageException", "Algorithm HMAC_SHA_512 is incompatible with key spec HMAC_256."},
		{"verify mismatch", "VerifyMac", `{"KeyId":"{K}","MacAlgorithm":"HMAC_SHA_256","Message":"{MSG}","Mac":"` + b64(32) + `"}`, 400, "KMSInvalidMacException", ""},
		{"verify mismatch dryrun", "VerifyMac", `{"KeyId":"{K}","MacAlgorithm":"HMAC_SHA_256","Message":"{MSG}","Mac":"` + b64(32) + `","DryRun":true}`, 400, "KMSInvalidMacException", ""},
		{"verify disabled", "VerifyMac", `{"KeyId":"{D}","MacAlgorithm":"HMAC_SHA_256","Message":"{MSG}","Mac":"` + b64(32) + `"}`, 400, "DisabledException", "is disabled."},

		// ---- GenerateRandom ----
		{"random missing", "GenerateRandom", `{}`, 400, "ValidationException", "NumberOfBytes is required."},
		{"random zero", "GenerateRandom", `{"NumberOfBytes":0}`, 400, "ValidationException", vErr + "Value '0' at 'numberOfBytes' failed to satisfy constraint: Member must have value greater than or equal to 1"},
		{"random too many", "GenerateRandom", `{"NumberOfBytes":1025}`, 400, "ValidationException", vErr + "Value '1025' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024"},
		{"random custom key store", "GenerateRandom", `{"NumberOfBytes":16,"CustomKeyStoreId":"cks-1"}`, 400, "UnsupportedOperationException", "custom key stores"},
		{"random recipient", "GenerateRandom", `{"NumberOfBytes":16,"Recipient":{"KeyEncryptionAlgorithm":"RSAES_OAEP_SHA_256","AttestationDocument":"AAAA"}}`, 400, "UnsupportedOperationException", "Recipient"},
		{"random recipient bad enum", "GenerateRandom", `{"NumberOfBytes":16,"Recipient":{"KeyEncryptionAlgorithm":"X"}}`, 400, "ValidationException", "at 'recipient.keyEncryptionAlgorithm'"},

		// ---- CreateKey ----
		{"create no key usage", "CreateKey", `{"KeySpec":"HMAC_256"}`, 400, "ValidationException", "You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys."},
		{"create symmetric", "CreateKey", `{"KeySpec":"SYMMETRIC_DEFAULT"}`, 400, "UnsupportedOperationException", "keyraft serves HMAC keys only"},
		{"create default spec", "CreateKey", `{}`, 400, "UnsupportedOperationException", "KeySpec SYMMETRIC_DEFAULT is not supported"},
		{"create rsa", "CreateKey", `{"KeySpec":"RSA_2048","KeyUsage":"SIGN_VERIFY"}`, 400, "UnsupportedOperationException", "keyraft serves HMAC keys only"},
		{"create ecc via cmks", "CreateKey", `{"CustomerMasterKeySpec":"ECC_NIST_P256","KeyUsage":"SIGN_VERIFY"}`, 400, "UnsupportedOperationException", "KeySpec ECC_NIST_P256"},
		{"create bad spec", "CreateKey", `{"KeySpec":"HMAC_999","KeyUsage":"GENERATE_VERIFY_MAC"}`, 400, "ValidationException",
			vErr + "Value 'HMAC_999' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: [RSA_2048, RSA_3072, RSA_4096, ECC_NIST_P256"},
		{"create bad usage", "CreateKey", `{"KeySpec":"HMAC_256","KeyUsage":"SIGN"}`, 400, "ValidationException", "Value 'SIGN' at 'keyUsage' failed to satisfy constraint: Member must satisfy enum value set: [SIGN_VERIFY, ENCRYPT_DECRYPT, GENERATE_VERIFY_MAC, KEY_AGREEMENT]"},
		{"create wrong usage", "CreateKey", `{"KeySpec":"HMAC_256","KeyUsage":"ENCRYPT_DECRYPT"}`, 400, "ValidationException", "KeyUsage ENCRYPT_DECRYPT is not compatible with KeySpec HMAC_256"},
		{"create both specs", "CreateKey", `{"KeySpec":"HMAC_256","CustomerMasterKeySpec":"HMAC_256","KeyUsage":"GENERATE_VERIFY_MAC"}`, 400, "ValidationException", "You cannot specify KeySpec and CustomerMasterKeySpec in the same request."},
		{"create cloudhsm", "CreateKey", `{"KeySpec":"HMAC_256","KeyUsage":"GENERATE_VERIFY_MAC","Origin":"AWS_CLOUDHSM"}`, 400, "UnsupportedOperationException", "Origin AWS_CLOUDHSM is not supported"},
		{"create bad origin", "CreateKey", `{"KeySpec":"HMAC_256","KeyUsage":"GENERATE_VERIFY_MAC","Origin":"MARS"}`, 400, "ValidationException", "Value 'MARS' at 'origin'"},
		{"create custom key store", "CreateKey", `{"KeySpec":"HMAC_256","KeyUsage":"GENERATE_VERIFY_MAC","CustomKeyStoreId":"cks-1234"}`, 400, "UnsupportedOperationException", "custom key stores"},
		{"create xks", "CreateKey", `{"KeySpec":"HMAC_256","KeyUsage":"GENERATE_VERIFY_MAC","XksKeyId":"abc"}`, 400, "UnsupportedOperationException", "custom key stores"},
		{"create xks pattern", "CreateKey", `{"KeySpec":"HMAC_256","KeyUsage":"GENERATE_VERIFY_MAC","XksKeyId":"a b"}`, 400, "ValidationException", "at 'xksKeyId' failed to satisfy constraint: Member must satisfy regular expression pattern"},
		{"create multi-region", "CreateKey", `{"KeySpec":"HMAC_256","KeyUsage":"GENERATE_VERIFY_MAC","MultiRegion":true}`, 400, "UnsupportedOperationException", "multi-Region"},
		{"create policy too big", "CreateKey", `{"KeySpec":"HMAC_256","KeyUsage":"GENERATE_VERIFY_MAC","Policy":"{\"a\":\"` + rep("x", 32768) + `\"}"}`, 400, "LimitExceededException", "maximum key policy size is 32768 bytes"},
		{"create policy over model max", "CreateKey", `{"KeySpec":"HMAC_256","KeyUsage":"GENERATE_VERIFY_MAC","Policy":"` + rep("x", 131073) + `"}`, 400, "ValidationException", "at 'policy' failed to satisfy constraint: Member must have length less than or equal to 131072"},
		{"create policy not json", "CreateKey", `{"KeySpec":"HMAC_256","KeyUsage":"GENERATE_VERIFY_MAC","Policy":"not json"}`, 400, "MalformedPolicyDocumentException", "Policy is not a valid JSON document."},
		{"create policy no statement", "CreateKey", `{"KeySpec":"HMAC_256","KeyUsage":"GENERATE_VERIFY_MAC","Policy":"{\"Version\":\"2012-10-17\"}"}`, 400, "MalformedPolicyDocumentException", "Policy is missing the required element Statement."},
		{"create policy no principal", "CreateKey", `{"KeySpec":"HMAC_256","KeyUsage":"GENERATE_VERIFY_MAC","Policy":"{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"kms:*\",\"Resource\":\"*\"}]}"}`, 400, "MalformedPolicyDocumentException", "Policy contains a statement with no principal."},
		{"create policy lockout", "CreateKey", `{"KeySpec":"HMAC_256","KeyUsage":"GENERATE_VERIFY_MAC","Policy":"{\"Statement\":[]}"}`, 400, "MalformedPolicyDocumentException", "The new key policy will not allow you to update the key policy in the future."},
		{"create policy array", "CreateKey", `{"KeySpec":"HMAC_256","KeyUsage":"GENERATE_VERIFY_MAC","Policy":"[1]"}`, 400, "MalformedPolicyDocumentException", "must be a JSON object"},
		{"create policy empty", "CreateKey", `{"KeySpec":"HMAC_256","KeyUsage":"GENERATE_VERIFY_MAC","Policy":""}`, 400, "ValidationException", "Value '' at 'policy' failed to satisfy constraint: Member must have length greater than or equal to 1"},
		{"create policy bad chars", "CreateKey", `{"KeySpec":"HMAC_256","KeyUsage":"GENERATE_VERIFY_MAC","Policy":"{\"a\":\"\u0100\"}"}`, 400, "ValidationException", `failed to satisfy constraint: Member must satisfy regular expression pattern: [\u0009\u000A\u000D\u0020-\u00FF]+`},
		{"create description too long", "CreateKey", `{"KeySpec":"HMAC_256","KeyUsage":"GENERATE_VERIFY_MAC","Description":"` + rep("d", 8193) + `"}`, 400, "ValidationException", "at 'description' failed to satisfy constraint: Member must have length less than or equal to 8192"},
		{"create reserved tag", "CreateKey", `{"KeySpec":"HMAC_256","KeyUsage":"GENERATE_VERIFY_MAC","Tags":[{"TagKey":"aws:x","TagValue":"v"}]}`, 400, "TagException", "Tags beginning with aws: are reserved"},
		{"create reserved tag case", "CreateKey", `{"KeySpec":"HMAC_256","KeyUsage":"GENERATE_VERIFY_MAC","Tags":[{"TagKey":"AwS:x","TagValue":"v"}]}`, 400, "TagException", "Tags beginning with aws: are reserved"},
		{"create duplicate tags", "CreateKey", `{"KeySpec":"HMAC_256","KeyUsage":"GENERATE_VERIFY_MAC","Tags":[{"TagKey":"a","TagValue":"1"},{"TagKey":"a","TagValue":"2"}]}`, 400, "TagException", "Duplicate tag keys"},
		{"create too many tags", "CreateKey", `{"KeySpec":"HMAC_256","KeyUsage":"GENERATE_VERIFY_MAC","Tags":` + manyTags(51) + `}`, 400, "TagException", "Too many tags"},
		{"create tag key too long", "CreateKey", `{"KeySpec":"HMAC_256","KeyUsage":"GENERATE_VERIFY_MAC","Tags":[{"TagKey":"ok","TagValue":""},{"TagKey":"` + rep("k", 129) + `","TagValue":"v"}]}`, 400, "ValidationException",
			"at 'tags.2.member.tagKey' failed to satisfy constraint: Member must have length less than or equal to 128"},
		{"create tag value too long", "CreateKey", `{"KeySpec":"HMAC_256","KeyUsage":"GENERATE_VERIFY_MAC","Tags":[{"TagKey":"k","TagValue":"` + rep("v", 257) + `"}]}`, 400, "ValidationException",
			"at 'tags.1.member.tagValue' failed to satisfy constraint: Member must have length less than or equal to 256"},
		{"create tag value missing", "CreateKey", `{"KeySpec":"HMAC_256","KeyUsage":"GENERATE_VERIFY_MAC","Tags":[{"TagKey":"k"}]}`, 400, "ValidationException",
			vErr + "Value null at 'tags.1.member.tagValue' failed to satisfy constraint: Member must not be null"},
		{"create two violations", "CreateKey", `{"KeySpec":"X","KeyUsage":"Y"}`, 400, "ValidationException", "2 validation errors detected: Value 'Y' at 'keyUsage'"},

		// ---- DescribeKey ----
		{"describe missing", "DescribeKey", `{}`, 400, "ValidationException", vErr + "Value null at 'keyId' failed to satisfy constraint: Member must not be null"},
		{"describe malformed", "DescribeKey", `{"KeyId":"1234"}`, 400, "NotFoundException", "Invalid keyId '1234'"},
		{"describe absent", "DescribeKey", `{"KeyId":"{ABSENTARN}"}`, 400, "NotFoundException", "Key '{ABSENTARN}' does not exist"},
		{"describe bare alias prefix", "DescribeKey", `{"KeyId":"alias/"}`, 400, "NotFoundException", "Invalid keyId 'alias/'"},
		{"describe other partition", "DescribeKey", `{"KeyId":"arn:aws-cn:kms:us-east-1:111122223333:key/{K}"}`, 400, "NotFoundException", "Invalid keyId"},
		{"describe not kms arn", "DescribeKey", `{"KeyId":"arn:aws:s3:::bucket"}`, 400, "NotFoundException", "Invalid keyId 'arn:aws:s3:::bucket'"},

		// ---- key id / ARN only operations given aliases ----
		{"enable alias", "EnableKey", `{"KeyId":"alias/k"}`, 400, "NotFoundException", "Invalid keyId 'alias/k'"},
		{"enable alias arn", "EnableKey", `{"KeyId":"arn:aws:kms:us-east-1:111122223333:alias/k"}`, 400, "NotFoundException", "Invalid keyId 'arn:aws:kms:us-east-1:111122223333:alias/k'"},
		{"tags alias", "ListResourceTags", `{"KeyId":"alias/k"}`, 400, "NotFoundException", "Invalid keyId 'alias/k'"},
		{"policy alias", "GetKeyPolicy", `{"KeyId":"alias/k"}`, 400, "NotFoundException", "Invalid keyId 'alias/k'"},

		// ---- key state management ----
		{"enable absent", "EnableKey", `{"KeyId":"{ABSENT}"}`, 400, "NotFoundException", "Key '{ABSENTARN}' does not exist"},
		{"enable pending deletion", "EnableKey", `{"KeyId":"{P}"}`, 400, "KMSInvalidStateException", "{PARN} is pending deletion."},
		{"enable pending import", "EnableKey", `{"KeyId":"{X}"}`, 400, "KMSInvalidStateException", "{XARN} is pending import."},
		{"disable pending deletion", "DisableKey", `{"KeyId":"{PARN}"}`, 400, "KMSInvalidStateException", "{PARN} is pending deletion."},
		{"disable pending import", "DisableKey", `{"KeyId":"{X}"}`, 400, "KMSInvalidStateException", "{XARN} is pending import."},
		{"schedule window low", "ScheduleKeyDeletion", `{"KeyId":"{K}","PendingWindowInDays":6}`, 400, "ValidationException", vErr + "Value '6' at 'pendingWindowInDays' failed to satisfy constraint: Member must have value greater than or equal to 7"},
		{"schedule window high", "ScheduleKeyDeletion", `{"KeyId":"{K}","PendingWindowInDays":31}`, 400, "ValidationException", vErr + "Value '31' at 'pendingWindowInDays' failed to satisfy constraint: Member must have value less than or equal to 30"},
		{"schedule again", "ScheduleKeyDeletion", `{"KeyId":"{P}"}`, 400, "KMSInvalidStateException", "{PARN} is pending deletion."},
		{"schedule absent", "ScheduleKeyDeletion", `{"KeyId":"{ABSENT}"}`, 400, "NotFoundException", "does not exist"},
		{"cancel not pending", "CancelKeyDeletion", `{"KeyId":"{K}"}`, 400, "KMSInvalidStateException", "{KARN} is not pending deletion."},
		{"cancel missing", "CancelKeyDeletion", `{}`, 400, "ValidationException", "Value null at 'keyId'"},
		{"description missing", "UpdateKeyDescription", `{"KeyId":"{K}"}`, 400, "ValidationException", vErr + "Value null at 'description' failed to satisfy constraint: Member must not be null"},
		{"description too long", "UpdateKeyDescription", `{"KeyId":"{K}","Description":"` + rep("d", 8193) + `"}`, 400, "ValidationException", "less than or equal to 8192"},
		{"description pending deletion", "UpdateKeyDescription", `{"KeyId":"{P}","Description":"x"}`, 400, "KMSInvalidStateException", "is pending deletion."},

		// ---- aliases ----
		{"alias no prefix", "CreateAlias", `{"AliasName":"foo","TargetKeyId":"{K}"}`, 400, "ValidationException", `Alias must start with the prefix "alias/". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html`},
		{"alias reserved", "CreateAlias", `{"AliasName":"alias/aws/foo","TargetKeyId":"{K}"}`, 400, "NotAuthorizedException", "alias/aws/"},
		{"alias colon", "CreateAlias", `{"AliasName":"alias/a:b","TargetKeyId":"{K}"}`, 400, "InvalidAliasNameException", "alias/a:b"},
		{"alias empty name", "CreateAlias", `{"AliasName":"alias/","TargetKeyId":"{K}"}`, 400, "InvalidAliasNameException", "alias/"},
		{"alias pattern", "CreateAlias", `{"AliasName":"alias/a b","TargetKeyId":"{K}"}`, 400, "ValidationException", vErr + "Value 'alias/a b' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$"},
		{"alias too long", "CreateAlias", `{"AliasName":"alias/` + rep("a", 251) + `","TargetKeyId":"{K}"}`, 400, "ValidationException", "at 'aliasName' failed to satisfy constraint: Member must have length less than or equal to 256"},
		{"alias missing", "CreateAlias", `{}`, 400, "ValidationException", "2 validation errors detected: Value null at 'aliasName' failed to satisfy constraint: Member must not be null; Value null at 'targetKeyId' failed to satisfy constraint: Member must not be null"},
		{"alias exists", "CreateAlias", `{"AliasName":"alias/k","TargetKeyId":"{K224}"}`, 400, "AlreadyExistsException", "An alias with the name arn:aws:kms:us-east-1:111122223333:alias/k already exists"},
		{"alias target pending deletion", "CreateAlias", `{"AliasName":"alias/new","TargetKeyId":"{P}"}`, 400, "KMSInvalidStateException", "{PARN} is pending deletion."},
		{"alias target alias", "CreateAlias", `{"AliasName":"alias/new","TargetKeyId":"alias/k"}`, 400, "NotFoundException", "Invalid keyId 'alias/k'"},
		{"alias target absent", "CreateAlias", `{"AliasName":"alias/new","TargetKeyId":"{ABSENT}"}`, 400, "NotFoundException", "Key '{ABSENTARN}' does not exist"},
		{"update alias absent", "UpdateAlias", `{"AliasName":"alias/nope","TargetKeyId":"{K}"}`, 400, "NotFoundException", "Alias arn:aws:kms:us-east-1:111122223333:alias/nope is not found."},
		{"update alias pending deletion", "UpdateAlias", `{"AliasName":"alias/k","TargetKeyId":"{P}"}`, 400, "KMSInvalidStateException", "is pending deletion."},
		{"delete alias absent", "DeleteAlias", `{"AliasName":"alias/nope"}`, 400, "NotFoundException", "Alias arn:aws:kms:us-east-1:111122223333:alias/nope is not found."},
		{"delete alias no prefix", "DeleteAlias", `{"AliasName":"nope"}`, 400, "ValidationException", `Alias must start with the prefix "alias/".`},
		{"list aliases limit", "ListAliases", `{"Limit":101}`, 400, "ValidationException", vErr + "Value '101' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 100"},
		{"list aliases limit zero", "ListAliases", `{"Limit":0}`, 400, "ValidationException", "greater than or equal to 1"},
		{"list aliases marker", "ListAliases", `{"Marker":"!!"}`, 400, "InvalidMarkerException", "marker is not valid"},
		{"list aliases key alias", "ListAliases", `{"KeyId":"alias/k"}`, 400, "NotFoundException", "Invalid keyId 'alias/k'"},
		{"list aliases key absent", "ListAliases", `{"KeyId":"{ABSENT}"}`, 400, "NotFoundException", "does not exist"},

		// ---- ListKeys ----
		{"list keys limit", "ListKeys", `{"Limit":1001}`, 400, "ValidationException", "less than or equal to 1000"},
		{"list keys marker garbage", "ListKeys", `{"Marker":"###"}`, 400, "InvalidMarkerException", "marker is not valid"},
		{"list keys marker not id", "ListKeys", `{"Marker":"` + encodeMarker("alias/x") + `"}`, 400, "InvalidMarkerException", "marker is not valid"},
		{"list keys marker empty", "ListKeys", `{"Marker":""}`, 400, "ValidationException", "Value '' at 'marker' failed to satisfy constraint: Member must have length greater than or equal to 1"},
		{"list keys marker chars", "ListKeys", `{"Marker":"\u0100"}`, 400, "ValidationException", `at 'marker' failed to satisfy constraint: Member must satisfy regular expression pattern: [\u0020-\u00FF]*`},

		// ---- tags ----
		{"tag missing tags", "TagResource", `{"KeyId":"{K}"}`, 400, "ValidationException", vErr + "Value null at 'tags' failed to satisfy constraint: Member must not be null"},
		{"tag reserved", "TagResource", `{"KeyId":"{K}","Tags":[{"TagKey":"aws:a","TagValue":"b"}]}`, 400, "TagException", "Tags beginning with aws: are reserved"},
		{"tag duplicate", "TagResource", `{"KeyId":"{K}","Tags":[{"TagKey":"a","TagValue":"b"},{"TagKey":"a","TagValue":"c"}]}`, 400, "TagException", "Duplicate tag keys"},
		{"tag too many", "TagResource", `{"KeyId":"{K}","Tags":` + manyTags(51) + `}`, 400, "TagException", "Too many tags"},
		{"tag pending deletion", "TagResource", `{"KeyId":"{P}","Tags":[{"TagKey":"a","TagValue":"b"}]}`, 400, "KMSInvalidStateException", "is pending deletion."},
		{"tag absent", "TagResource", `{"KeyId":"{ABSENT}","Tags":[{"TagKey":"a","TagValue":"b"}]}`, 400, "NotFoundException", "does not exist"},
		{"untag missing keys", "UntagResource", `{"KeyId":"{K}"}`, 400, "ValidationException", "Value null at 'tagKeys'"},
		{"untag reserved", "UntagResource", `{"KeyId":"{K}","TagKeys":["aws:x"]}`, 400, "TagException", "Tags beginning with aws: are reserved"},
		{"untag key too long", "UntagResource", `{"KeyId":"{K}","TagKeys":["` + rep("k", 129) + `"]}`, 400, "ValidationException", "at 'tagKeys.1.member' failed to satisfy constraint: Member must have length less than or equal to 128"},
		{"untag pending deletion", "UntagResource", `{"KeyId":"{P}","TagKeys":["a"]}`, 400, "KMSInvalidStateException", "is pending deletion."},
		{"list tags limit", "ListResourceTags", `{"KeyId":"{K}","Limit":51}`, 400, "ValidationException", "less than or equal to 50"},
		{"list tags absent", "ListResourceTags", `{"KeyId":"{ABSENT}"}`, 400, "NotFoundException", "does not exist"},
		{"list tags marker", "ListResourceTags", `{"KeyId":"{K}","Marker":"$$$"}`, 400, "InvalidMarkerException", "marker is not valid"},

		// ---- policies ----
		{"get policy other name", "GetKeyPolicy", `{"KeyId":"{K}","PolicyName":"other"}`, 400, "NotFoundException", "No such policy exists"},
		{"get policy name pattern", "GetKeyPolicy", `{"KeyId":"{K}","PolicyName":"a-b"}`, 400, "ValidationException", `Value 'a-b' at 'policyName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\w]+`},
		{"get policy absent", "GetKeyPolicy", `{"KeyId":"{ABSENT}"}`, 400, "NotFoundException", "does not exist"},
		{"put policy missing", "PutKeyPolicy", `{"KeyId":"{K}"}`, 400, "ValidationException", vErr + "Value null at 'policy' failed to satisfy constraint: Member must not be null"},
		{"put policy malformed", "PutKeyPolicy", `{"KeyId":"{K}","Policy":"{"}`, 400, "MalformedPolicyDocumentException", "Policy is not a valid JSON document."},
		{"put policy bad principal", "PutKeyPolicy", `{"KeyId":"{K}","Policy":"{\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"bob\"},\"Action\":\"kms:*\",\"Resource\":\"*\"}]}"}`, 400, "MalformedPolicyDocumentException", "Policy contains a statement with one or more invalid principals."},
		{"put policy lockout", "PutKeyPolicy", `{"KeyId":"{K}","Policy":"{\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"arn:aws:iam::111122223333:user/bob\"},\"Action\":\"kms:*\",\"Resource\":\"*\"}]}"}`, 400, "MalformedPolicyDocumentException", "The new key policy will not allow you to update the key policy in the future."},
		{"put policy lockout false bypass", "PutKeyPolicy", `{"KeyId":"{K}","BypassPolicyLockoutSafetyCheck":false,"Policy":"{\"Statement\":[]}"}`, 400, "MalformedPolicyDocumentException", "The new key policy will not allow you to update the key policy in the future."},
		{"put policy too big", "PutKeyPolicy", `{"KeyId":"{K}","Policy":"{\"a\":\"` + rep("x", 32768) + `\"}"}`, 400, "LimitExceededException", "32768"},
		{"put policy other name", "PutKeyPolicy", `{"KeyId":"{K}","PolicyName":"x","Policy":"{}"}`, 400, "NotFoundException", "No such policy exists"},
		{"put policy absent", "PutKeyPolicy", `{"KeyId":"{ABSENT}","Policy":"{\"Statement\":[]}","BypassPolicyLockoutSafetyCheck":true}`, 400, "NotFoundException", "does not exist"},
		{"list policies marker", "ListKeyPolicies", `{"KeyId":"{K}","Marker":"abc"}`, 400, "InvalidMarkerException", "marker is not valid"},
		{"list policies limit", "ListKeyPolicies", `{"KeyId":"{K}","Limit":0}`, 400, "ValidationException", "greater than or equal to 1"},

		// ---- import ----
		{"params aws_kms key", "GetParametersForImport", `{"KeyId":"{K}","WrappingAlgorithm":"RSAES_OAEP_SHA_256","WrappingKeySpec":"RSA_2048"}`, 400, "UnsupportedOperationException", "{KARN} origin is AWS_KMS which is not valid for this operation."},
		{"params pkcs1", "GetParametersForImport", `{"KeyId":"{X}","WrappingAlgorithm":"RSAES_PKCS1_V1_5","WrappingKeySpec":"RSA_2048"}`, 400, "UnsupportedOperationException", "WrappingAlgorithm RSAES_PKCS1_V1_5 is not supported"},
		{"params aes wrap", "GetParametersForImport", `{"KeyId":"{X}","WrappingAlgorithm":"RSA_AES_KEY_WRAP_SHA_256","WrappingKeySpec":"RSA_2048"}`, 400, "UnsupportedOperationException", "is not supported"},
		{"params sm2", "GetParametersForImport", `{"KeyId":"{X}","WrappingAlgorithm":"RSAES_OAEP_SHA_256","WrappingKeySpec":"SM2"}`, 400, "UnsupportedOperationException", "SM2"},
		{"params bad enum", "GetParametersForImport", `{"KeyId":"{X}","WrappingAlgorithm":"ROT13","WrappingKeySpec":"RSA_1024"}`, 400, "ValidationException", "2 validation errors detected: Value 'ROT13' at 'wrappingAlgorithm'"},
		{"params alias", "GetParametersForImport", `{"KeyId":"alias/k","WrappingAlgorithm":"RSAES_OAEP_SHA_256","WrappingKeySpec":"RSA_2048"}`, 400, "NotFoundException", "Invalid keyId 'alias/k'"},
		{"params absent", "GetParametersForImport", `{"KeyId":"{ABSENT}","WrappingAlgorithm":"RSAES_OAEP_SHA_256","WrappingKeySpec":"RSA_2048"}`, 400, "NotFoundException", "does not exist"},
		{"import garbage token", "ImportKeyMaterial", `{"KeyId":"{X}","ImportToken":"AAAA","EncryptedKeyMaterial":"AAAA","ExpirationModel":"KEY_MATERIAL_DOES_NOT_EXPIRE"}`, 400, "InvalidImportTokenException", "Import token is invalid"},
		{"import no valid to", "ImportKeyMaterial", `{"KeyId":"{X}","ImportToken":"AAAA","EncryptedKeyMaterial":"AAAA"}`, 400, "ValidationException", "A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES"},
		{"import valid to past", "ImportKeyMaterial", `{"KeyId":"{X}","ImportToken":"AAAA","EncryptedKeyMaterial":"AAAA","ValidTo":1000}`, 400, "ValidationException", "must be in the future"},
		{"import valid to far", "ImportKeyMaterial", `{"KeyId":"{X}","ImportToken":"AAAA","EncryptedKeyMaterial":"AAAA","ValidTo":99999999999}`, 400, "ValidationException", "no more than 365 days"},
		{"import valid to forbidden", "ImportKeyMaterial", `{"KeyId":"{X}","ImportToken":"AAAA","EncryptedKeyMaterial":"AAAA","ExpirationModel":"KEY_MATERIAL_DOES_NOT_EXPIRE","ValidTo":99999999999}`, 400, "ValidationException", "must not be set if the ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE"},
		{"import valid to string", "ImportKeyMaterial", `{"KeyId":"{X}","ImportToken":"AAAA","EncryptedKeyMaterial":"AAAA","ValidTo":"2030-01-01"}`, 400, "SerializationException", "member 'ValidTo'"},
		{"import bad model", "ImportKeyMaterial", `{"KeyId":"{X}","ImportToken":"AAAA","EncryptedKeyMaterial":"AAAA","ExpirationModel":"NEVER"}`, 400, "ValidationException", "Value 'NEVER' at 'expirationModel'"},
		{"import missing", "ImportKeyMaterial", `{"KeyId":"{X}"}`, 400, "ValidationException", "2 validation errors detected: Value null at 'importToken' failed to satisfy constraint: Member must not be null; Value null at 'encryptedKeyMaterial'"},
		{"import aws_kms key", "ImportKeyMaterial", `{"KeyId":"{K}","ImportToken":"AAAA","EncryptedKeyMaterial":"AAAA","ExpirationModel":"KEY_MATERIAL_DOES_NOT_EXPIRE"}`, 400, "UnsupportedOperationException", "{KARN} origin is AWS_KMS which is not valid for this operation."},
		{"import symmetric members", "ImportKeyMaterial", `{"KeyId":"{X}","ImportToken":"AAAA","EncryptedKeyMaterial":"AAAA","ExpirationModel":"KEY_MATERIAL_DOES_NOT_EXPIRE","ImportType":"NEW_KEY_MATERIAL"}`, 400, "ValidationException", "apply only to symmetric encryption keys"},
		{"import material id pattern", "ImportKeyMaterial", `{"KeyId":"{X}","ImportToken":"AAAA","EncryptedKeyMaterial":"AAAA","KeyMaterialId":"XYZ"}`, 400, "ValidationException", "at 'keyMaterialId'"},
		{"import aws_kms key pending deletion", "ImportKeyMaterial", `{"KeyId":"{P}","ImportToken":"AAAA","EncryptedKeyMaterial":"AAAA","ExpirationModel":"KEY_MATERIAL_DOES_NOT_EXPIRE"}`, 400, "UnsupportedOperationException", "origin is AWS_KMS"},
		{"delete material aws_kms", "DeleteImportedKeyMaterial", `{"KeyId":"{K}"}`, 400, "UnsupportedOperationException", "{KARN} origin is AWS_KMS which is not valid for this operation."},
		{"delete material alias", "DeleteImportedKeyMaterial", `{"KeyId":"alias/k"}`, 400, "NotFoundException", "Invalid keyId 'alias/k'"},

		// ---- other cryptographic operations on HMAC keys ----
		{"encrypt", "Encrypt", `{"KeyId":"{K}","Plaintext":"{MSG}"}`, 400, "InvalidKeyUsageException", "{KARN} key usage is GENERATE_VERIFY_MAC which is not valid for Encrypt."},
		{"encrypt via alias", "Encrypt", `{"KeyId":"alias/k","Plaintext":"{MSG}"}`, 400, "InvalidKeyUsageException", "{KARN} key usage is GENERATE_VERIFY_MAC which is not valid for Encrypt."},
		{"encrypt absent", "Encrypt", `{"KeyId":"{ABSENT}","Plaintext":"{MSG}"}`, 400, "NotFoundException", "Key '{ABSENTARN}' does not exist"},
		{"encrypt missing plaintext", "Encrypt", `{"KeyId":"{K}"}`, 400, "ValidationException", "Value null at 'plaintext'"},
		{"decrypt with key", "Decrypt", `{"KeyId":"{K}","CiphertextBlob":"AAAA"}`, 400, "InvalidKeyUsageException", "not valid for Decrypt."},
		{"decrypt no key", "Decrypt", `{"CiphertextBlob":"AAAA"}`, 400, "InvalidCiphertextException", "ciphertext is not valid"},
		{"generate data key", "GenerateDataKey", `{"KeyId":"{K}","KeySpec":"AES_256"}`, 400, "InvalidKeyUsageException", "not valid for GenerateDataKey."},
		{"generate data key wp", "GenerateDataKeyWithoutPlaintext", `{"KeyId":"{K}"}`, 400, "InvalidKeyUsageException", "not valid for GenerateDataKeyWithoutPlaintext."},
		{"generate data key pair", "GenerateDataKeyPair", `{"KeyId":"{K}","KeyPairSpec":"RSA_2048"}`, 400, "InvalidKeyUsageException", "not valid for GenerateDataKeyPair."},
		{"reencrypt", "ReEncrypt", `{"CiphertextBlob":"AAAA","SourceKeyId":"{K}","DestinationKeyId":"{K}"}`, 400, "InvalidKeyUsageException", "not valid for ReEncrypt."},
		{"sign", "Sign", `{"KeyId":"{K}","Message":"{MSG}","SigningAlgorithm":"ECDSA_SHA_256"}`, 400, "InvalidKeyUsageException", "not valid for Sign."},
		{"verify", "Verify", `{"KeyId":"{K}","Message":"{MSG}","Signature":"AAAA","SigningAlgorithm":"ECDSA_SHA_256"}`, 400, "InvalidKeyUsageException", "not valid for Verify."},
		{"get public key", "GetPublicKey", `{"KeyId":"{K}"}`, 400, "InvalidKeyUsageException", "not valid for GetPublicKey."},
		{"get public key disabled", "GetPublicKey", `{"KeyId":"{D}"}`, 400, "InvalidKeyUsageException", "not valid for GetPublicKey."},

		// ---- unserved operations ----
		{"rotation", "EnableKeyRotation", `{"KeyId":"{K}"}`, 400, "UnsupportedOperationException", "key rotation is not supported for HMAC keys"},
		{"rotation status", "GetKeyRotationStatus", `{"KeyId":"{K}"}`, 400, "UnsupportedOperationException", "key rotation is not supported"},
		{"rotation absent", "EnableKeyRotation", `{"KeyId":"{ABSENT}"}`, 400, "NotFoundException", "does not exist"},
		{"key last usage", "GetKeyLastUsage", `{"KeyId":"{K}"}`, 400, "UnsupportedOperationException", "keyraft does not support GetKeyLastUsage yet."},
		{"custom key store", "CreateCustomKeyStore", `{}`, 400, "UnsupportedOperationException", "custom key stores"},
		{"replicate", "ReplicateKey", `{}`, 400, "UnsupportedOperationException", "multi-Region"},
		{"unsupported malformed", "GetKeyLastUsage", `{`, 400, "SerializationException", "not valid JSON"},
		{"create grant malformed", "CreateGrant", `{`, 400, "SerializationException", "not valid JSON"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			target := ""
			if tc.op != "" {
				target = tc.op
				if !strings.Contains(target, ".") {
					target = "TrentService." + target
				}
			}
			r := f.do(http.MethodPost, "/", target, contentTypeAmzJSON, []byte(f.expand(tc.body)), nil)
			checkAWSError(t, r, tc.status, tc.typ, f.expand(tc.msg))
			if tc.typ == "KMSInvalidMacException" && r.str("message") != "" {
				t.Errorf("KMSInvalidMacException message = %q, want empty", r.str("message"))
			}
		})
	}
}

// TestProtocolErrors covers errors that need more than a body.
func TestProtocolErrors(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxBodyBytes = 1024 })
	t.Run("content type", func(t *testing.T) {
		r := e.do(http.MethodPost, "/", "TrentService.ListKeys", "text/plain", []byte(`{}`), nil)
		checkAWSError(t, r, 400, "UnknownOperationException", `Unsupported Content-Type "text/plain"`)
	})
	t.Run("application/json accepted", func(t *testing.T) {
		r := e.do(http.MethodPost, "/", "TrentService.ListKeys", "application/json; charset=utf-8", []byte(`{}`), nil)
		if r.status != 200 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
	})
	t.Run("no content type accepted", func(t *testing.T) {
		r := e.do(http.MethodPost, "/", "TrentService.ListKeys", "", []byte(`{}`), nil)
		if r.status != 200 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
	})
	t.Run("empty body is an empty object", func(t *testing.T) {
		r := e.do(http.MethodPost, "/", "TrentService.ListKeys", contentTypeAmzJSON, nil, nil)
		if r.status != 200 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
	})
	t.Run("body too large", func(t *testing.T) {
		body := `{"KeyId":"` + rep("a", 2000) + `"}`
		r := e.do(http.MethodPost, "/", "TrentService.DescribeKey", contentTypeAmzJSON, []byte(body), nil)
		checkAWSError(t, r, 400, "SerializationException", "larger than the maximum of 1024 bytes")
	})
	t.Run("body too large chunked", func(t *testing.T) {
		// No Content-Length: the limit is enforced while reading.
		pr, pw := io.Pipe()
		go func() {
			pw.Write([]byte(`{"KeyId":"` + rep("a", 4000) + `"}`))
			pw.Close()
		}()
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/", pr)
		req.Header.Set("X-Amz-Target", "TrentService.DescribeKey")
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	t.Run("GET /", func(t *testing.T) {
		r := e.do(http.MethodGet, "/", "", "", nil, nil)
		checkAWSError(t, r, 405, "MethodNotAllowedException", "Method GET is not allowed")
		if r.header.Get("Allow") != "POST" {
			t.Errorf("Allow = %q", r.header.Get("Allow"))
		}
	})
	t.Run("other path", func(t *testing.T) {
		r := e.do(http.MethodPost, "/foo", "TrentService.ListKeys", contentTypeAmzJSON, []byte(`{}`), nil)
		checkAWSError(t, r, 404, "UnknownOperationException", "POST /foo")
	})
	t.Run("double slash", func(t *testing.T) {
		r := e.do(http.MethodPost, "//", "TrentService.ListKeys", contentTypeAmzJSON, []byte(`{}`), nil)
		checkAWSError(t, r, 404, "UnknownOperationException", "")
	})
	t.Run("malformed credential", func(t *testing.T) {
		r := e.do(http.MethodPost, "/", "TrentService.ListKeys", contentTypeAmzJSON, []byte(`{}`),
			map[string]string{"Authorization": "AWS4-HMAC-SHA256 Credential=AKID/20250101, SignedHeaders=host, Signature=00"})
		checkAWSError(t, r, 400, "IncompleteSignature", "malformed Credential scope")
	})
	t.Run("missing credential", func(t *testing.T) {
		r := e.do(http.MethodPost, "/", "TrentService.ListKeys", contentTypeAmzJSON, []byte(`{}`),
			map[string]string{"Authorization": "AWS4-HMAC-SHA256 SignedHeaders=host, Signature=00"})
		checkAWSError(t, r, 400, "IncompleteSignature", "Credential")
	})
	t.Run("no leader", func(t *testing.T) {
		e.store.setErr(errNoLeader)
		defer e.store.setErr(nil)
		r := e.call("CreateKey", `{"KeySpec":"HMAC_256","KeyUsage":"GENERATE_VERIFY_MAC"}`)
		checkAWSError(t, r, 500, "KMSInternalException", "The request could not be completed because the cluster has no leader; retry.")
	})
	t.Run("apply timeout", func(t *testing.T) {
		e.store.setErr(errApplyTimeout)
		defer e.store.setErr(nil)
		r := e.call("CreateKey", `{"KeySpec":"HMAC_256","KeyUsage":"GENERATE_VERIFY_MAC"}`)
		checkAWSError(t, r, 500, "KMSInternalException", "did not commit it in time; retry.")
	})
	t.Run("outcome unknown", func(t *testing.T) {
		e.store.setErr(errUnknown)
		defer e.store.setErr(nil)
		r := e.call("DisableKey", `{"KeyId":"`+absentID+`"}`)
		checkAWSError(t, r, 500, "KMSInternalException", "its outcome is unknown. Retry the request.")
	})
	t.Run("shutdown", func(t *testing.T) {
		e.store.setErr(errShutdown)
		defer e.store.setErr(nil)
		r := e.call("EnableKey", `{"KeyId":"`+absentID+`"}`)
		checkAWSError(t, r, 500, "KMSInternalException", "shutting down; retry.")
	})
}
