package api

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"math"
	"time"

	"github.com/keyraft/keyraft/engine"
	"github.com/keyraft/keyraft/fsm"
)

// Import of HMAC key material (kms-api.md §2.3 "Import for HMAC keys",
// decisions §9.2, §9.3).

const (
	importTokenLifetime = 24 * time.Hour
	maxMaterialValidity = 365 * 24 * time.Hour

	importTokenVersion = 1
	tokenIDBytes       = 16
	tokenTagBytes      = 32
)

// Import tokens are opaque to clients:
//
//	version (1) | len(keyID) (1) | keyID | tokenID (16) | HMAC-SHA256 tag (32)
//
// The tag is keyed by a subkey of the cluster seal key, so garbage and forged
// tokens are recognised without state. The token names the key and the
// parameters set; the wrapping private key itself stays in the replicated
// state, sealed.

func (s *Server) encodeImportToken(keyID string, tokenID []byte) []byte {
	b := make([]byte, 0, 2+len(keyID)+tokenIDBytes+tokenTagBytes)
	b = append(b, importTokenVersion, byte(len(keyID)))
	b = append(b, keyID...)
	b = append(b, tokenID...)
	m := hmac.New(sha256.New, s.tokenKey)
	m.Write(b)
	return m.Sum(b)
}

// decodeImportToken returns the key id and token id a token names, or false
// for anything that is not a token this cluster issued.
func (s *Server) decodeImportToken(tok []byte) (keyID, tokenID string, ok bool) {
	if len(tok) < 2+tokenIDBytes+tokenTagBytes || tok[0] != importTokenVersion {
		return "", "", false
	}
	n := int(tok[1])
	if len(tok) != 2+n+tokenIDBytes+tokenTagBytes {
		return "", "", false
	}
	body, tag := tok[:len(tok)-tokenTagBytes], tok[len(tok)-tokenTagBytes:]
	m := hmac.New(sha256.New, s.tokenKey)
	m.Write(body)
	if !hmac.Equal(m.Sum(nil), tag) {
		return "", "", false
	}
	return string(body[2 : 2+n]), hex.EncodeToString(body[2+n:]), true
}

// keyMaterialID is the KeyMaterialId keyraft reports for imported material:
// a stable 64-hex-digit id derived from the material's keyed fingerprint.
func keyMaterialID(digest string) string {
	if digest == "" {
		return ""
	}
	sum := sha256.Sum256([]byte("keyraft-key-material-id\x00" + digest))
	return hex.EncodeToString(sum[:])
}

// ---- GetParametersForImport ----

type paramsForImportReq struct {
	KeyId             *string
	WrappingAlgorithm *string
	WrappingKeySpec   *string
}

func opGetParametersForImport(s *Server, rc *reqCtx, body []byte) ([]byte, *apiError) {
	var req paramsForImportReq
	if e := decodeBody(body, &req); e != nil {
		return nil, e
	}
	var v validator
	v.reqStr("keyId", req.KeyId, 1, 2048)
	v.enum("wrappingAlgorithm", req.WrappingAlgorithm, true, wrappingAlgorithms, wrappingAlgorithmsText)
	v.enum("wrappingKeySpec", req.WrappingKeySpec, true, wrappingKeySpecs, wrappingKeySpecsText)
	if e := v.err(); e != nil {
		return nil, e
	}
	k, e := s.authorizedKey(rc, *req.KeyId, false)
	if e != nil {
		return nil, e
	}
	if e := checkWriteState(fsm.OpSetImportParameters, &k); e != nil {
		return nil, e
	}
	switch *req.WrappingAlgorithm {
	case "RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256":
	default:
		return nil, errf(codeUnsupportedOperation,
			"WrappingAlgorithm %s is not supported for HMAC key material; use RSAES_OAEP_SHA_1 or RSAES_OAEP_SHA_256.", *req.WrappingAlgorithm)
	}
	if *req.WrappingKeySpec == "SM2" {
		return nil, errUnsupported("WrappingKeySpec SM2 is not supported; use RSA_2048, RSA_3072 or RSA_4096.")
	}
	if s.cfg.Sealer == nil {
		return nil, errInternal("Import parameters cannot be created: this node has no seal key configured.")
	}
	priv, pubDER, err := engine.GenerateWrappingKey(*req.WrappingKeySpec)
	if err != nil {
		return nil, errInternal("The wrapping key could not be generated.")
	}
	pkcs8, err := engine.MarshalPrivateKey(priv)
	if err != nil {
		return nil, errInternal("The wrapping key could not be encoded.")
	}
	sealed, err := s.cfg.Sealer.Seal(pkcs8, []byte(k.ARN+"/import"))
	clear(pkcs8)
	if err != nil {
		return nil, errInternal("The wrapping key could not be sealed.")
	}
	tokenID := make([]byte, tokenIDBytes)
	if _, err := rand.Read(tokenID); err != nil {
		return nil, errInternal("The import token could not be generated.")
	}
	validTo := rc.now.Add(importTokenLifetime).UnixNano()
	_, e = s.apply(rc, fsm.OpSetImportParameters, fsm.SetImportParametersCmd{
		KeyID: k.ID,
		Import: fsm.ImportParams{
			TokenID:           hex.EncodeToString(tokenID),
			SealedPrivateKey:  sealed,
			WrappingAlgorithm: *req.WrappingAlgorithm,
			WrappingKeySpec:   *req.WrappingKeySpec,
			ValidTo:           validTo,
		},
	})
	if e != nil {
		return nil, e
	}
	return marshal(struct {
		KeyId             string    `json:"KeyId"`
		ImportToken       []byte    `json:"ImportToken"`
		ParametersValidTo epochTime `json:"ParametersValidTo"`
		PublicKey         []byte    `json:"PublicKey"`
	}{k.ARN, s.encodeImportToken(k.ID, tokenID), epochTime(validTo), pubDER})
}

// ---- ImportKeyMaterial ----

type importReq struct {
	KeyId                  *string
	ImportToken            []byte
	EncryptedKeyMaterial   []byte
	ValidTo                *float64
	ExpirationModel        *string
	ImportType             *string
	KeyMaterialDescription *string
	KeyMaterialId          *string
}

const keyMaterialIDPattern = `^[a-f0-9]+$`

func checkKeyMaterialID(v *validator, id *string) {
	if id == nil {
		return
	}
	v.strLen("keyMaterialId", *id, 64, 64)
	for i := 0; i < len(*id); i++ {
		if !isLowerHex((*id)[i]) {
			v.pattern("keyMaterialId", *id, keyMaterialIDPattern)
			return
		}
	}
}

func opImportKeyMaterial(s *Server, rc *reqCtx, body []byte) ([]byte, *apiError) {
	var req importReq
	if e := decodeBody(body, &req); e != nil {
		return nil, e
	}
	var v validator
	v.reqStr("keyId", req.KeyId, 1, 2048)
	v.blob("importToken", req.ImportToken, true, 1, 6144)
	v.blob("encryptedKeyMaterial", req.EncryptedKeyMaterial, true, 1, 6144)
	v.enum("expirationModel", req.ExpirationModel, false, expirationModels, expirationModelsText)
	v.enum("importType", req.ImportType, false, importTypes, importTypesText)
	v.optStr("keyMaterialDescription", req.KeyMaterialDescription, 0, 256)
	checkKeyMaterialID(&v, req.KeyMaterialId)
	if e := v.err(); e != nil {
		return nil, e
	}
	if req.ImportType != nil || req.KeyMaterialDescription != nil || req.KeyMaterialId != nil {
		return nil, errValidation("ImportType, KeyMaterialDescription and KeyMaterialId apply only to symmetric encryption keys; omit them for HMAC keys.")
	}
	model := fsm.KeyMaterialExpires
	if req.ExpirationModel != nil {
		model = *req.ExpirationModel
	}
	var validTo int64
	switch model {
	case fsm.KeyMaterialExpires:
		if req.ValidTo == nil {
			return nil, errValidation("A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES")
		}
		sec := *req.ValidTo
		now := rc.now.UnixNano()
		limit := rc.now.Add(maxMaterialValidity).UnixNano()
		if math.IsNaN(sec) || sec*1e9 <= float64(now) {
			return nil, errValidation("The validTo date must be in the future.")
		}
		if sec*1e9 > float64(limit) {
			return nil, errValidation("The validTo date must be no more than 365 days in the future.")
		}
		validTo = int64(math.Round(sec*1e3)) * 1e6 // millisecond precision, as on the wire
	case fsm.KeyMaterialDoesNotExpire:
		if req.ValidTo != nil {
			return nil, errValidation("A validTo date must not be set if the ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE")
		}
	}

	k, e := s.authorizedKey(rc, *req.KeyId, false)
	if e != nil {
		return nil, e
	}
	if e := checkWriteState(fsm.OpImportKeyMaterial, &k); e != nil {
		return nil, e
	}
	if s.cfg.Sealer == nil {
		return nil, errInternal("Key material cannot be imported: this node has no seal key configured.")
	}
	tokKeyID, tokenID, ok := s.decodeImportToken(req.ImportToken)
	if !ok || tokKeyID != k.ID {
		// Garbage, forged, or issued for another key.
		return nil, fromFSM(fsm.ErrInvalidImportToken())
	}
	if fe := fsm.CheckImportToken(&k, tokenID, rc.now.UnixNano()); fe != nil {
		return nil, fromFSM(fe)
	}
	pkcs8, err := s.cfg.Sealer.Open(k.Import.SealedPrivateKey, []byte(k.ARN+"/import"))
	if err != nil {
		s.log.Error("api: import private key cannot be opened", "key", k.ARN)
		return nil, errInternal("The import parameters could not be opened on this node.")
	}
	priv, err := engine.ParsePrivateKey(pkcs8)
	clear(pkcs8)
	if err != nil {
		return nil, errInternal("The import parameters could not be decoded.")
	}
	material, err := engine.UnwrapKeyMaterial(priv, k.Import.WrappingAlgorithm, req.EncryptedKeyMaterial)
	if err != nil {
		return nil, errf(codeInvalidCiphertext,
			"The EncryptedKeyMaterial could not be decrypted with the wrapping key of the import token (wrapping algorithm %s).", k.Import.WrappingAlgorithm)
	}
	defer clear(material)
	minLen, maxLen := engine.ImportLengthRange(k.KeySpec)
	if len(material) < minLen || len(material) > maxLen {
		return nil, errf(codeValidation, "The imported key material for a %s key must be %d to %d bytes long.", k.KeySpec, minLen, maxLen)
	}
	digest := s.cfg.Sealer.Fingerprint(material)
	if fe := fsm.CheckMaterialDigest(&k, digest); fe != nil {
		return nil, fromFSM(fe)
	}
	sealed, err := s.cfg.Sealer.Seal(material, []byte(k.ARN))
	if err != nil {
		return nil, errInternal("Key material could not be sealed.")
	}
	_, e = s.apply(rc, fsm.OpImportKeyMaterial, fsm.ImportKeyMaterialCmd{
		KeyID:           k.ID,
		TokenID:         tokenID,
		SealedMaterial:  sealed,
		MaterialDigest:  digest,
		ExpirationModel: model,
		ValidTo:         validTo,
	})
	if e != nil {
		return nil, e
	}
	return marshal(struct {
		KeyId         string `json:"KeyId"`
		KeyMaterialId string `json:"KeyMaterialId"`
	}{k.ARN, keyMaterialID(digest)})
}

// ---- DeleteImportedKeyMaterial ----

type deleteImportedReq struct {
	KeyId         *string
	KeyMaterialId *string
}

func opDeleteImportedKeyMaterial(s *Server, rc *reqCtx, body []byte) ([]byte, *apiError) {
	var req deleteImportedReq
	if e := decodeBody(body, &req); e != nil {
		return nil, e
	}
	var v validator
	v.reqStr("keyId", req.KeyId, 1, 2048)
	checkKeyMaterialID(&v, req.KeyMaterialId)
	if e := v.err(); e != nil {
		return nil, e
	}
	id, arn, k, ok, e := s.targetKey(rc, *req.KeyId, rc.op.action)
	if e != nil {
		return nil, e
	}
	digest := ""
	if ok {
		if e := checkWriteState(fsm.OpDeleteImportedKeyMaterial, &k); e != nil {
			return nil, e
		}
		digest = k.MaterialDigest
	}
	if req.KeyMaterialId != nil && digest != "" && *req.KeyMaterialId != keyMaterialID(digest) {
		return nil, errf(codeNotFound, "Key material %s does not exist for %s.", *req.KeyMaterialId, arn)
	}
	res, e := s.apply(rc, fsm.OpDeleteImportedKeyMaterial, fsm.KeyCmd{KeyID: id})
	if e != nil {
		return nil, e
	}
	if res.Key != nil && res.Key.MaterialDigest != "" {
		digest = res.Key.MaterialDigest
	}
	return marshal(struct {
		KeyId         string `json:"KeyId"`
		KeyMaterialId string `json:"KeyMaterialId,omitempty"`
	}{arn, keyMaterialID(digest)})
}
