package policy

import "strings"

// DefaultKeyPolicy is the key policy AWS attaches to a key created without
// one ("key-default-1"), formatted as GetKeyPolicy returns it: it names the
// account, which delegates all kms:* permissions to the account's identity
// policies.
func DefaultKeyPolicy(account string) string {
	return "{\n" +
		"  \"Version\" : \"2012-10-17\",\n" +
		"  \"Id\" : \"key-default-1\",\n" +
		"  \"Statement\" : [ {\n" +
		"    \"Sid\" : \"Enable IAM User Permissions\",\n" +
		"    \"Effect\" : \"Allow\",\n" +
		"    \"Principal\" : {\n" +
		"      \"AWS\" : \"arn:aws:iam::" + account + ":root\"\n" +
		"    },\n" +
		"    \"Action\" : \"kms:*\",\n" +
		"    \"Resource\" : \"*\"\n" +
		"  } ]\n" +
		"}"
}

// Actions are the KMS permissions (policy actions) keyraft knows: one per
// KMS API operation, with ReEncrypt split into kms:ReEncryptFrom and
// kms:ReEncryptTo as in AWS, plus permission-only actions such as
// kms:SynchronizeMultiRegionKey. Policies may name other actions: AWS
// accepts unknown actions silently and so does Parse. Do not modify.
var Actions = []string{
	"kms:CancelKeyDeletion",
	"kms:ConnectCustomKeyStore",
	"kms:CreateAlias",
	"kms:CreateCustomKeyStore",
	"kms:CreateGrant",
	"kms:CreateKey",
	"kms:Decrypt",
	"kms:DeleteAlias",
	"kms:DeleteCustomKeyStore",
	"kms:DeleteImportedKeyMaterial",
	"kms:DeriveSharedSecret",
	"kms:DescribeCustomKeyStores",
	"kms:DescribeKey",
	"kms:DisableKey",
	"kms:DisableKeyRotation",
	"kms:DisconnectCustomKeyStore",
	"kms:EnableKey",
	"kms:EnableKeyRotation",
	"kms:Encrypt",
	"kms:GenerateDataKey",
	"kms:GenerateDataKeyPair",
	"kms:GenerateDataKeyPairWithoutPlaintext",
	"kms:GenerateDataKeyWithoutPlaintext",
	"kms:GenerateMac",
	"kms:GenerateRandom",
	"kms:GetKeyPolicy",
	"kms:GetKeyRotationStatus",
	"kms:GetParametersForImport",
	"kms:GetPublicKey",
	"kms:ImportKeyMaterial",
	"kms:ListAliases",
	"kms:ListGrants",
	"kms:ListKeyPolicies",
	"kms:ListKeyRotations",
	"kms:ListKeys",
	"kms:ListResourceTags",
	"kms:ListRetirableGrants",
	"kms:PutKeyPolicy",
	"kms:ReEncryptFrom",
	"kms:ReEncryptTo",
	"kms:ReplicateKey",
	"kms:RetireGrant",
	"kms:RevokeGrant",
	"kms:RotateKeyOnDemand",
	"kms:ScheduleKeyDeletion",
	"kms:Sign",
	"kms:SynchronizeMultiRegionKey",
	"kms:TagResource",
	"kms:UntagResource",
	"kms:UpdateAlias",
	"kms:UpdateCustomKeyStore",
	"kms:UpdateKeyDescription",
	"kms:UpdatePrimaryRegion",
	"kms:Verify",
	"kms:VerifyMac",
}

// KnownAction reports whether a (case-insensitively) is one of Actions.
func KnownAction(a string) bool {
	for _, k := range Actions {
		if strings.EqualFold(a, k) {
			return true
		}
	}
	return false
}
