package fsm

import (
	"slices"
	"strings"
)

// AWS error codes (the __type of the error response) that the state decides.
const (
	CodeNotFound             = "NotFoundException"
	CodeDisabled             = "DisabledException"
	CodeInvalidState         = "KMSInvalidStateException"
	CodeInternal             = "KMSInternalException"
	CodeAlreadyExists        = "AlreadyExistsException"
	CodeLimitExceeded        = "LimitExceededException"
	CodeTag                  = "TagException"
	CodeValidation           = "ValidationException"
	CodeUnsupportedOperation = "UnsupportedOperationException"
	CodeInvalidImportToken   = "InvalidImportTokenException"
	CodeExpiredImportToken   = "ExpiredImportTokenException"
	CodeIncorrectKeyMaterial = "IncorrectKeyMaterialException"
)

// Quotas enforced by the replicated state (kms-api.md §5).
const (
	MaxTagsPerKey    = 50
	MaxAliasesPerKey = 50
)

// arnPartition is the only partition keyraft serves.
const arnPartition = "aws"

// KeyARN returns the ARN of key id in scope:
// arn:aws:kms:<region>:<account>:key/<id>.
func KeyARN(scope Scope, id string) string {
	return "arn:" + arnPartition + ":kms:" + scope.Region + ":" + scope.Account + ":key/" + id
}

// AliasARN returns the ARN of alias name (alias/...) in scope:
// arn:aws:kms:<region>:<account>:alias/<name>.
func AliasARN(scope Scope, name string) string {
	return "arn:" + arnPartition + ":kms:" + scope.Region + ":" + scope.Account + ":" + name
}

// arnOf returns the key's stored ARN, or the one its scope and id imply.
func arnOf(k *Key) string {
	if k.ARN != "" {
		return k.ARN
	}
	return KeyARN(k.Scope, k.ID)
}

func newError(code, msg string) *Error { return &Error{Code: code, Message: msg} }

// ErrNotFound is the error for a key that does not exist; arn is the ARN the
// request's key id implies (KeyARN).
func ErrNotFound(arn string) *Error {
	return newError(CodeNotFound, "Key '"+arn+"' does not exist")
}

// ErrDisabled is the error for a cryptographic operation on a disabled key.
func ErrDisabled(arn string) *Error { return newError(CodeDisabled, arn+" is disabled.") }

// ErrPendingDeletion is the error for an operation a key pending deletion
// refuses.
func ErrPendingDeletion(arn string) *Error {
	return newError(CodeInvalidState, arn+" is pending deletion.")
}

// ErrPendingImport is the error for an operation a key without material
// refuses.
func ErrPendingImport(arn string) *Error {
	return newError(CodeInvalidState, arn+" is pending import.")
}

// ErrNotPendingDeletion is CancelKeyDeletion's error for a key that is not
// pending deletion (also the reaper's DeleteKey).
func ErrNotPendingDeletion(arn string) *Error {
	return newError(CodeInvalidState, arn+" is not pending deletion.")
}

// ErrAliasNotFound is the error for an alias that does not exist.
func ErrAliasNotFound(aliasARN string) *Error {
	return newError(CodeNotFound, "Alias "+aliasARN+" is not found.")
}

// ErrAliasExists is CreateAlias's error for a name already taken in the scope.
func ErrAliasExists(aliasARN string) *Error {
	return newError(CodeAlreadyExists, "An alias with the name "+aliasARN+" already exists")
}

// ErrTooManyAliases is the error when a key already has MaxAliasesPerKey
// aliases.
func ErrTooManyAliases(arn string) *Error {
	return newError(CodeLimitExceeded, "The request was rejected because a quota was exceeded: "+arn+" already has the maximum of 50 aliases.")
}

// ErrTooManyTags is the error when a key would have more than MaxTagsPerKey
// tags.
func ErrTooManyTags() *Error { return newError(CodeTag, "Too many tags") }

// ErrUnsupportedOrigin is the error for an import operation on a key whose
// origin is not EXTERNAL.
func ErrUnsupportedOrigin(arn, origin string) *Error {
	if origin == "" {
		origin = OriginAWSKMS
	}
	return newError(CodeUnsupportedOperation, arn+" origin is "+origin+" which is not valid for this operation.")
}

// ErrInvalidImportToken is the error for an import token that does not name
// the key's current import parameters.
func ErrInvalidImportToken() *Error {
	return newError(CodeInvalidImportToken, "Import token is invalid or does not match the key.")
}

// ErrExpiredImportToken is the error for import parameters past ValidTo.
func ErrExpiredImportToken() *Error {
	return newError(CodeExpiredImportToken, "Import token has expired.")
}

// ErrIncorrectKeyMaterial is the error for a re-import of different material.
func ErrIncorrectKeyMaterial() *Error {
	return newError(CodeIncorrectKeyMaterial, "Key material does not match the existing key material.")
}

// ErrAliasIncompatible is UpdateAlias's error when the new target key differs
// in type or key usage from the current one.
func ErrAliasIncompatible(aliasARN, arn string) *Error {
	return newError(CodeValidation, "Alias "+aliasARN+" cannot be associated with "+arn+
		": its key type or key usage differs from the alias's current target key.")
}

// ErrInternal is a KMSInternalException with msg.
func ErrInternal(msg string) *Error { return newError(CodeInternal, msg) }

// CheckOp applies the key-state table (kms-api.md §3) and the origin rules
// to a management operation on existing key k (for CreateAlias and
// UpdateAlias: the target key). It is the single place these rules live:
// Apply calls it, and the API layer calls it to pre-check a request. Rules
// that also depend on time or on the request (import token, material digest,
// alias compatibility, deletion date) are in the other Check functions.
func CheckOp(op Op, k *Key) *Error {
	arn := arnOf(k)
	switch op {
	case OpEnableKey, OpDisableKey:
		switch k.State {
		case StatePendingDeletion:
			return ErrPendingDeletion(arn)
		case StatePendingImport:
			return ErrPendingImport(arn)
		}
	case OpScheduleKeyDeletion, OpUpdateKeyDescription, OpTagResource, OpUntagResource,
		OpCreateAlias, OpUpdateAlias:
		if k.State == StatePendingDeletion {
			return ErrPendingDeletion(arn)
		}
	case OpCancelKeyDeletion, OpDeleteKey:
		if k.State != StatePendingDeletion {
			return ErrNotPendingDeletion(arn)
		}
	case OpSetImportParameters, OpImportKeyMaterial:
		// Origin first: an AWS_KMS key can never take imported material,
		// whatever its state.
		if k.Origin != OriginExternal {
			return ErrUnsupportedOrigin(arn, k.Origin)
		}
		if k.State == StatePendingDeletion {
			return ErrPendingDeletion(arn)
		}
	case OpDeleteImportedKeyMaterial, OpExpireKeyMaterial:
		if k.Origin != OriginExternal {
			return ErrUnsupportedOrigin(arn, k.Origin)
		}
	case OpCreateGrant:
		switch k.State {
		case StateDisabled:
			return ErrDisabled(arn)
		case StatePendingDeletion:
			return ErrPendingDeletion(arn)
		case StatePendingImport:
			return ErrPendingImport(arn)
		}
	}
	// PutKeyPolicy, DeleteAlias, CreateKey, RetireGrant and RevokeGrant have
	// no key-state rule.
	return nil
}

// CheckUsableForMac decides whether k may serve GenerateMac/VerifyMac
// (kms-api.md §9 decision 4): Disabled ⇒ DisabledException, PendingDeletion
// and PendingImport ⇒ KMSInvalidStateException, material that this node
// could not unseal ⇒ KMSInternalException. The messages never include
// material or the unseal error.
func CheckUsableForMac(k *Key) *Error {
	arn := arnOf(k)
	switch k.State {
	case StateEnabled:
	case StateDisabled:
		return ErrDisabled(arn)
	case StatePendingDeletion:
		return ErrPendingDeletion(arn)
	case StatePendingImport:
		return ErrPendingImport(arn)
	default:
		return ErrInternal(arn + " is in an unknown state.")
	}
	if k.MaterialErr != "" || len(k.Material) == 0 {
		return ErrInternal("The key material of " + arn + " is not available on this node.")
	}
	return nil
}

// CheckImportToken checks that tokenID names k's current import parameters
// and that they have not expired at now (unix ns). Import parameters stay
// usable until they expire, as in AWS.
func CheckImportToken(k *Key, tokenID string, now int64) *Error {
	if k.Import == nil || k.Import.TokenID == "" || k.Import.TokenID != tokenID {
		return ErrInvalidImportToken()
	}
	if k.Import.ValidTo < now {
		return ErrExpiredImportToken()
	}
	return nil
}

// CheckMaterialDigest checks that material with fingerprint digest may be
// imported into k: HMAC material can never change once imported, so a key
// that has (or had) material only accepts the same material again.
func CheckMaterialDigest(k *Key, digest string) *Error {
	if k.MaterialDigest != "" && k.MaterialDigest != digest {
		return ErrIncorrectKeyMaterial()
	}
	return nil
}

// keyFamily groups key specs the way UpdateAlias compares them: symmetric
// encryption, HMAC (any size) or asymmetric.
func keyFamily(spec string) string {
	switch {
	case spec == "" || spec == "SYMMETRIC_DEFAULT":
		return "SYMMETRIC"
	case strings.HasPrefix(spec, "HMAC_"):
		return "HMAC"
	default:
		return "ASYMMETRIC"
	}
}

// CheckAliasRetarget checks that the alias aliasARN may move from key oldK
// to key newK: AWS requires the same key type and key usage (HMAC_224 and
// HMAC_512 keys are both HMAC keys, so they are compatible). The state of
// newK is checked by CheckOp(OpUpdateAlias, newK), not here.
func CheckAliasRetarget(aliasARN string, oldK, newK *Key) *Error {
	if keyFamily(oldK.KeySpec) != keyFamily(newK.KeySpec) || oldK.KeyUsage != newK.KeyUsage {
		return ErrAliasIncompatible(aliasARN, arnOf(newK))
	}
	return nil
}

// dueForDeletion is the reaper's DeleteKey condition.
func dueForDeletion(k *Key, now int64) bool {
	return k.State == StatePendingDeletion && k.DeletionDate <= now
}

// materialExpired is the reaper's ExpireKeyMaterial condition.
func materialExpired(k *Key, now int64) bool {
	return k.ExpirationModel == KeyMaterialExpires && len(k.SealedMaterial) > 0 && k.ValidTo <= now
}

// CheckDueForDeletion checks the reaper's DeleteKey condition: k is pending
// deletion and its DeletionDate is not after now.
func CheckDueForDeletion(k *Key, now int64) *Error {
	if e := CheckOp(OpDeleteKey, k); e != nil {
		return e
	}
	if !dueForDeletion(k, now) {
		return newError(CodeInvalidState, arnOf(k)+" is not yet due for deletion.")
	}
	return nil
}

// CheckMaterialExpired checks the reaper's ExpireKeyMaterial condition: k
// holds imported material with KEY_MATERIAL_EXPIRES whose ValidTo is not
// after now.
func CheckMaterialExpired(k *Key, now int64) *Error {
	if e := CheckOp(OpExpireKeyMaterial, k); e != nil {
		return e
	}
	if !materialExpired(k, now) {
		return newError(CodeInvalidState, arnOf(k)+" key material has not expired.")
	}
	return nil
}

// StripSecrets returns a copy of k without SealedMaterial, Import (which
// holds the sealed wrapping private key), Material and MaterialErr: what
// Result.Key carries and what may be shown outside the node. Tags are copied.
func StripSecrets(k Key) Key {
	k.SealedMaterial = nil
	k.Import = nil
	k.Material = nil
	k.MaterialErr = ""
	k.Tags = slices.Clone(k.Tags)
	return k
}

// Clone returns a deep copy of k that shares nothing with it (Material
// included).
func (k Key) Clone() Key {
	k.Tags = slices.Clone(k.Tags)
	k.SealedMaterial = slices.Clone(k.SealedMaterial)
	k.Material = slices.Clone(k.Material)
	if k.Import != nil {
		imp := *k.Import
		imp.SealedPrivateKey = slices.Clone(imp.SealedPrivateKey)
		k.Import = &imp
	}
	return k
}
