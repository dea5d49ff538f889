package api

// opInfo describes one operation of the dispatch table.
type opInfo struct {
	fn     opFunc
	name   string
	action string // the IAM action authorized: "kms:" + name (ReEncrypt: kms:ReEncryptFrom)
	// cross: the operation may name another account's key by key ARN or
	// alias ARN (kms-api.md §6: cryptographic operations, DescribeKey, and
	// by key ARN the grant operations).
	cross bool
	// localRead: answered from this node's replica (refused while stale,
	// see Config.CheckFresh).
	localRead bool
}

// operations is the dispatch table: every KMS operation name keyraft knows.
func operations() map[string]*opInfo {
	fns := map[string]opFunc{
		"CreateKey":                 opCreateKey,
		"DescribeKey":               opDescribeKey,
		"ListKeys":                  opListKeys,
		"EnableKey":                 opEnableKey,
		"DisableKey":                opDisableKey,
		"ScheduleKeyDeletion":       opScheduleKeyDeletion,
		"CancelKeyDeletion":         opCancelKeyDeletion,
		"UpdateKeyDescription":      opUpdateKeyDescription,
		"CreateAlias":               opCreateAlias,
		"UpdateAlias":               opUpdateAlias,
		"DeleteAlias":               opDeleteAlias,
		"ListAliases":               opListAliases,
		"TagResource":               opTagResource,
		"UntagResource":             opUntagResource,
		"ListResourceTags":          opListResourceTags,
		"GetKeyPolicy":              opGetKeyPolicy,
		"PutKeyPolicy":              opPutKeyPolicy,
		"ListKeyPolicies":           opListKeyPolicies,
		"GenerateMac":               opGenerateMac,
		"VerifyMac":                 opVerifyMac,
		"GenerateRandom":            opGenerateRandom,
		"GetParametersForImport":    opGetParametersForImport,
		"ImportKeyMaterial":         opImportKeyMaterial,
		"DeleteImportedKeyMaterial": opDeleteImportedKeyMaterial,
		"CreateGrant":               opCreateGrant,
		"ListGrants":                opListGrants,
		"ListRetirableGrants":       opListRetirableGrants,
		"RetireGrant":               opRetireGrant,
		"RevokeGrant":               opRevokeGrant,
	}
	// The grant operations resolve their key themselves (grantKey), by key
	// id or key ARN, cross-account included.
	cross := map[string]bool{"DescribeKey": true, "GenerateMac": true, "VerifyMac": true,
		"CreateGrant": true, "ListGrants": true, "RetireGrant": true, "RevokeGrant": true}
	// Cryptographic operations no HMAC key supports: resolve the key, then
	// InvalidKeyUsageException.
	for _, name := range []string{"Encrypt", "Decrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext",
		"GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext", "ReEncrypt", "Sign", "Verify",
		"GetPublicKey", "DeriveSharedSecret", "Encapsulate", "Decapsulate"} {
		fns[name] = cryptoOp(name)
		cross[name] = true
	}
	// Key rotation: HMAC keys never support it (kms-api.md §3 footnote 7).
	for _, name := range []string{"EnableKeyRotation", "DisableKeyRotation", "GetKeyRotationStatus",
		"ListKeyRotations", "RotateKeyOnDemand"} {
		fns[name] = rotationOp
	}
	fns["GetKeyLastUsage"] = unsupportedOp("keyraft does not support GetKeyLastUsage yet.")
	for _, name := range []string{"ConnectCustomKeyStore", "CreateCustomKeyStore", "DeleteCustomKeyStore",
		"DescribeCustomKeyStores", "DisconnectCustomKeyStore", "UpdateCustomKeyStore"} {
		fns[name] = unsupportedOp("keyraft does not support custom key stores (" + name + ").")
	}
	for _, name := range []string{"ReplicateKey", "UpdatePrimaryRegion"} {
		fns[name] = unsupportedOp("keyraft does not support multi-Region keys (" + name + ").")
	}
	ops := make(map[string]*opInfo, len(fns))
	for name, fn := range fns {
		action := "kms:" + name
		if name == "ReEncrypt" {
			action = "kms:ReEncryptFrom" // the source key's permission
		}
		ops[name] = &opInfo{fn: fn, name: name, action: action, cross: cross[name], localRead: localReads[name]}
	}
	return ops
}

// localReads are the operations answered from this node's replica; with a
// staleness bound (Config.CheckFresh) a stale node refuses them.
var localReads = map[string]bool{
	"DescribeKey": true, "ListKeys": true, "ListAliases": true, "ListResourceTags": true,
	"GetKeyPolicy": true, "ListKeyPolicies": true, "GenerateMac": true, "VerifyMac": true,
	"ListGrants": true, "ListRetirableGrants": true,
}

func unsupportedOp(msg string) opFunc {
	return func(s *Server, rc *reqCtx, body []byte) ([]byte, *apiError) {
		var req struct{}
		if e := decodeBody(body, &req); e != nil {
			return nil, e
		}
		return nil, errUnsupported(msg)
	}
}

// cryptoReq holds the members of the non-MAC cryptographic operations that
// keyraft checks before answering InvalidKeyUsageException.
type cryptoReq struct {
	KeyId                 *string
	SourceKeyId           *string
	DestinationKeyId      *string
	CiphertextBlob        []byte
	Plaintext             []byte
	Message               []byte
	Signature             []byte
	PublicKey             []byte
	KeyPairSpec           *string
	SigningAlgorithm      *string
	KeyAgreementAlgorithm *string
	Ciphertext            []byte
	GrantTokens           []string
}

func cryptoOp(name string) opFunc {
	return func(s *Server, rc *reqCtx, body []byte) ([]byte, *apiError) {
		var req cryptoReq
		if e := decodeBody(body, &req); e != nil {
			return nil, e
		}
		var v validator
		keyID := req.KeyId
		switch name {
		case "Encrypt":
			v.reqStr("keyId", req.KeyId, 1, 2048)
			v.blob("plaintext", req.Plaintext, true, 1, 4096)
		case "Decrypt":
			v.blob("ciphertextBlob", req.CiphertextBlob, true, 1, 6144)
			v.optStr("keyId", req.KeyId, 1, 2048)
		case "ReEncrypt":
			v.blob("ciphertextBlob", req.CiphertextBlob, true, 1, 6144)
			v.optStr("sourceKeyId", req.SourceKeyId, 1, 2048)
			v.reqStr("destinationKeyId", req.DestinationKeyId, 1, 2048)
			keyID = req.SourceKeyId
		case "GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext":
			v.reqStr("keyId", req.KeyId, 1, 2048)
			if req.KeyPairSpec == nil {
				v.null("keyPairSpec")
			}
		case "Sign":
			v.reqStr("keyId", req.KeyId, 1, 2048)
			v.blob("message", req.Message, true, 1, 4096)
			if req.SigningAlgorithm == nil {
				v.null("signingAlgorithm")
			}
		case "Verify":
			v.reqStr("keyId", req.KeyId, 1, 2048)
			v.blob("message", req.Message, true, 1, 4096)
			v.blob("signature", req.Signature, true, 1, 6144)
			if req.SigningAlgorithm == nil {
				v.null("signingAlgorithm")
			}
		case "DeriveSharedSecret":
			v.reqStr("keyId", req.KeyId, 1, 2048)
			if req.KeyAgreementAlgorithm == nil {
				v.null("keyAgreementAlgorithm")
			}
			v.blob("publicKey", req.PublicKey, true, 1, 8192)
		default:
			v.reqStr("keyId", req.KeyId, 1, 2048)
		}
		v.grantTokens(req.GrantTokens)
		if e := v.err(); e != nil {
			return nil, e
		}
		if keyID == nil {
			// Decrypt / ReEncrypt without a key: the ciphertext would name the
			// key, and no ciphertext can come from a keyraft key.
			return nil, newErr(codeInvalidCiphertext,
				"The ciphertext is not valid: keyraft serves HMAC keys only, so no ciphertext can be decrypted.")
		}
		k, e := s.resolveKey(rc, *keyID, true)
		if e != nil {
			return nil, e
		}
		// Tokens are checked (InvalidGrantTokenException), but no grant on
		// an HMAC key can allow these operations (decision §9.7).
		if _, e := s.verifyGrantTokens(req.GrantTokens); e != nil {
			return nil, e
		}
		if e := s.authorizeKey(rc, &k, ""); e != nil {
			return nil, e
		}
		return nil, errKeyUsage(&k, name)
	}
}

type rotationReq struct {
	KeyId                *string
	RotationPeriodInDays *int64
	Limit                *int64
	Marker               *string
}

func rotationOp(s *Server, rc *reqCtx, body []byte) ([]byte, *apiError) {
	var req rotationReq
	if e := decodeBody(body, &req); e != nil {
		return nil, e
	}
	var v validator
	v.reqStr("keyId", req.KeyId, 1, 2048)
	v.intRange("rotationPeriodInDays", req.RotationPeriodInDays, 90, 2560)
	v.intRange("limit", req.Limit, 1, 1000)
	v.marker(req.Marker)
	if e := v.err(); e != nil {
		return nil, e
	}
	k, e := s.authorizedKey(rc, *req.KeyId, false)
	if e != nil {
		return nil, e
	}
	return nil, errf(codeUnsupportedOperation, "%s is an HMAC key (KeySpec %s); key rotation is not supported for HMAC keys.", k.ARN, k.KeySpec)
}
