package api

import (
	"encoding/base64"
	"encoding/json"

	"github.com/google/uuid"

	"github.com/keyraft/keyraft/engine"
	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/policy"
)

// keyMetadata is KeyMetadata with exactly the members AWS returns for HMAC
// keys (kms-api.md §2.3).
type keyMetadata struct {
	AWSAccountId          string     `json:"AWSAccountId"`
	Arn                   string     `json:"Arn"`
	CreationDate          epochTime  `json:"CreationDate"`
	CustomerMasterKeySpec string     `json:"CustomerMasterKeySpec"`
	DeletionDate          *epochTime `json:"DeletionDate,omitempty"`
	Description           string     `json:"Description"`
	Enabled               bool       `json:"Enabled"`
	ExpirationModel       string     `json:"ExpirationModel,omitempty"`
	KeyId                 string     `json:"KeyId"`
	KeyManager            string     `json:"KeyManager"`
	KeySpec               string     `json:"KeySpec"`
	KeyState              string     `json:"KeyState"`
	KeyUsage              string     `json:"KeyUsage"`
	MacAlgorithms         []string   `json:"MacAlgorithms,omitempty"`
	MultiRegion           bool       `json:"MultiRegion"`
	Origin                string     `json:"Origin"`
	ValidTo               *epochTime `json:"ValidTo,omitempty"`
}

func metadataOf(k *fsm.Key) keyMetadata {
	arn := k.ARN
	if arn == "" {
		arn = keyARN(k.Scope, k.ID)
	}
	m := keyMetadata{
		AWSAccountId:          k.Account,
		Arn:                   arn,
		CreationDate:          epochTime(k.CreationDate),
		CustomerMasterKeySpec: k.KeySpec,
		Description:           k.Description,
		Enabled:               k.State == fsm.StateEnabled,
		KeyId:                 k.ID,
		KeyManager:            "CUSTOMER",
		KeySpec:               k.KeySpec,
		KeyState:              string(k.State),
		KeyUsage:              k.KeyUsage,
		Origin:                k.Origin,
	}
	if alg, ok := macAlgorithmOf(k.KeySpec); ok {
		m.MacAlgorithms = []string{alg}
	}
	if k.State == fsm.StatePendingDeletion && k.DeletionDate != 0 {
		d := epochTime(k.DeletionDate)
		m.DeletionDate = &d
	}
	// The FSM clears ExpirationModel with the material, so it is set exactly
	// while an imported key has material.
	if k.Origin == fsm.OriginExternal && k.ExpirationModel != "" {
		m.ExpirationModel = k.ExpirationModel
		if k.ExpirationModel == fsm.KeyMaterialExpires && k.ValidTo != 0 {
			v := epochTime(k.ValidTo)
			m.ValidTo = &v
		}
	}
	return m
}

func marshal(v any) ([]byte, *apiError) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, errInternal("The response could not be encoded.")
	}
	return b, nil
}

// ---- CreateKey ----

type createKeyReq struct {
	Policy                         *string
	Description                    *string
	KeyUsage                       *string
	CustomerMasterKeySpec          *string
	KeySpec                        *string
	Origin                         *string
	CustomKeyStoreId               *string
	BypassPolicyLockoutSafetyCheck *bool
	Tags                           []tagIn
	MultiRegion                    *bool
	XksKeyId                       *string
}

const xksKeyIDPattern = `^[a-zA-Z0-9-_.]+$`

func xksKeyIDChar(c byte) bool {
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		c == '-' || c == '_' || c == '.'
}

func opCreateKey(s *Server, rc *reqCtx, body []byte) ([]byte, *apiError) {
	var req createKeyReq
	if e := decodeBody(body, &req); e != nil {
		return nil, e
	}
	var v validator
	checkPolicyModel(&v, req.Policy, false)
	v.optStr("description", req.Description, 0, 8192)
	v.enum("keyUsage", req.KeyUsage, false, keyUsages, keyUsagesText)
	v.enum("customerMasterKeySpec", req.CustomerMasterKeySpec, false, customerMasterKeySpecs, customerMasterKeySpecsText)
	v.enum("origin", req.Origin, false, origins, originsText)
	v.optStr("customKeyStoreId", req.CustomKeyStoreId, 1, 64)
	checkTagsModel(&v, "tags", req.Tags)
	v.enum("keySpec", req.KeySpec, false, keySpecs, keySpecsText)
	if req.XksKeyId != nil {
		v.strLen("xksKeyId", *req.XksKeyId, 1, 128)
		for i := 0; i < len(*req.XksKeyId); i++ {
			if !xksKeyIDChar((*req.XksKeyId)[i]) {
				v.pattern("xksKeyId", *req.XksKeyId, xksKeyIDPattern)
				break
			}
		}
	}
	if e := v.err(); e != nil {
		return nil, e
	}

	if req.CustomKeyStoreId != nil || req.XksKeyId != nil {
		return nil, errUnsupported("keyraft does not support custom key stores (CustomKeyStoreId, XksKeyId).")
	}
	if req.KeySpec != nil && req.CustomerMasterKeySpec != nil {
		return nil, errValidation("You cannot specify KeySpec and CustomerMasterKeySpec in the same request. CustomerMasterKeySpec is deprecated.")
	}
	spec := "SYMMETRIC_DEFAULT"
	if req.KeySpec != nil {
		spec = *req.KeySpec
	} else if req.CustomerMasterKeySpec != nil {
		spec = *req.CustomerMasterKeySpec
	}
	if _, ok := macAlgorithmOf(spec); !ok {
		return nil, errf(codeUnsupportedOperation,
			"KeySpec %s is not supported: keyraft serves HMAC keys only (KeySpec HMAC_224, HMAC_256, HMAC_384 or HMAC_512 with KeyUsage GENERATE_VERIFY_MAC).", spec)
	}
	if req.KeyUsage == nil {
		return nil, errValidation("You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys.")
	}
	if *req.KeyUsage != "GENERATE_VERIFY_MAC" {
		return nil, errf(codeValidation,
			"KeyUsage %s is not compatible with KeySpec %s. The KeyUsage of HMAC keys must be GENERATE_VERIFY_MAC.", *req.KeyUsage, spec)
	}
	origin := fsm.OriginAWSKMS
	if req.Origin != nil {
		origin = *req.Origin
	}
	if origin != fsm.OriginAWSKMS && origin != fsm.OriginExternal {
		return nil, errf(codeUnsupportedOperation, "Origin %s is not supported: keyraft creates keys with Origin AWS_KMS or EXTERNAL.", origin)
	}
	if req.MultiRegion != nil && *req.MultiRegion {
		return nil, errUnsupported("keyraft does not support multi-Region keys (MultiRegion must be false).")
	}
	tags, e := checkTags(req.Tags)
	if e != nil {
		return nil, e
	}
	if len(tags) > maxTagsPerKey {
		return nil, errTooManyTags()
	}
	var doc *policy.Document
	if req.Policy != nil {
		if doc, e = s.parseKeyPolicyDocument(*req.Policy); e != nil {
			return nil, e
		}
	}
	if e := s.authorizeIdentity(rc, rc.op.action, "*", spec); e != nil {
		return nil, e
	}

	id := uuid.NewString()
	keyPolicy := policy.DefaultKeyPolicy(rc.scope.Account)
	if req.Policy != nil {
		if req.BypassPolicyLockoutSafetyCheck == nil || !*req.BypassPolicyLockoutSafetyCheck {
			if e := s.checkLockout(rc, doc, rc.scope.Account, keyARN(rc.scope, id)); e != nil {
				return nil, e
			}
		}
		keyPolicy = *req.Policy
	}
	k := fsm.Key{
		Scope:        rc.scope,
		ID:           id,
		ARN:          keyARN(rc.scope, id),
		KeySpec:      spec,
		KeyUsage:     "GENERATE_VERIFY_MAC",
		Origin:       origin,
		State:        fsm.StateEnabled,
		CreationDate: rc.now.UnixNano(),
		Policy:       keyPolicy,
		Tags:         tags,
	}
	if req.Description != nil {
		k.Description = *req.Description
	}
	if origin == fsm.OriginExternal {
		k.State = fsm.StatePendingImport
	} else {
		if s.cfg.Sealer == nil {
			return nil, errInternal("Key material cannot be created: this node has no seal key configured.")
		}
		material, err := engine.GenerateKeyMaterial(spec)
		if err != nil {
			return nil, errInternal("Key material could not be generated.")
		}
		sealed, err := s.cfg.Sealer.Seal(material, []byte(k.ARN))
		k.MaterialDigest = s.cfg.Sealer.Fingerprint(material)
		clear(material)
		if err != nil {
			return nil, errInternal("Key material could not be sealed.")
		}
		k.SealedMaterial = sealed
	}
	res, aerr := s.apply(rc, fsm.OpCreateKey, fsm.CreateKeyCmd{Key: k})
	if aerr != nil {
		return nil, aerr
	}
	out := k
	if res.Key != nil {
		out = *res.Key
	}
	out.SealedMaterial = nil // metadata only; no material was imported
	return marshal(struct {
		KeyMetadata keyMetadata `json:"KeyMetadata"`
	}{metadataOf(&out)})
}

// ---- DescribeKey ----

type keyIDReq struct {
	KeyId       *string
	GrantTokens []string
}

func opDescribeKey(s *Server, rc *reqCtx, body []byte) ([]byte, *apiError) {
	var req keyIDReq
	if e := decodeBody(body, &req); e != nil {
		return nil, e
	}
	var v validator
	v.reqStr("keyId", req.KeyId, 1, 2048)
	v.grantTokens(req.GrantTokens)
	if e := v.err(); e != nil {
		return nil, e
	}
	k, e := s.resolveKey(rc, *req.KeyId, true)
	if e != nil {
		return nil, e
	}
	toks, e := s.verifyGrantTokens(req.GrantTokens)
	if e != nil {
		return nil, e
	}
	if e := s.authorizeKeyGrants(rc, &k, "", &toks, nil); e != nil {
		return nil, e
	}
	return marshal(struct {
		KeyMetadata keyMetadata `json:"KeyMetadata"`
	}{metadataOf(&k)})
}

// ---- ListKeys ----

type listReq struct {
	KeyId  *string
	Limit  *int64
	Marker *string
}

// Markers are opaque to clients: base64url of the last item returned.
func encodeMarker(last string) string { return base64.RawURLEncoding.EncodeToString([]byte(last)) }

func decodeMarker(m string, valid func(string) bool) (string, *apiError) {
	b, err := base64.RawURLEncoding.DecodeString(m)
	if err != nil || !valid(string(b)) {
		return "", newErr(codeInvalidMarker, "The pagination marker is not valid; use the NextMarker of the previous response.")
	}
	return string(b), nil
}

func (r *listReq) validate(v *validator, maxLimit int64) {
	v.intRange("limit", r.Limit, 1, maxLimit)
	v.marker(r.Marker)
}

func limitOr(l *int64, def int) int {
	if l == nil {
		return def
	}
	return int(*l)
}

type keyListEntry struct {
	KeyArn string `json:"KeyArn"`
	KeyId  string `json:"KeyId"`
}

func opListKeys(s *Server, rc *reqCtx, body []byte) ([]byte, *apiError) {
	var req listReq
	if e := decodeBody(body, &req); e != nil {
		return nil, e
	}
	var v validator
	req.validate(&v, 1000)
	if e := v.err(); e != nil {
		return nil, e
	}
	after := ""
	if req.Marker != nil {
		var e *apiError
		if after, e = decodeMarker(*req.Marker, validKeyID); e != nil {
			return nil, e
		}
	}
	if e := s.authorizeIdentity(rc, rc.op.action, "*", ""); e != nil {
		return nil, e
	}
	st := s.store.State()
	if st == nil {
		return nil, errInternal("The local state is not available; retry.")
	}
	keys, more := st.ListKeys(rc.scope, after, limitOr(req.Limit, 100))
	out := struct {
		Keys       []keyListEntry `json:"Keys"`
		NextMarker string         `json:"NextMarker,omitempty"`
		Truncated  bool           `json:"Truncated"`
	}{Keys: make([]keyListEntry, 0, len(keys))}
	for i := range keys {
		arn := keys[i].ARN
		if arn == "" {
			arn = keyARN(rc.scope, keys[i].ID)
		}
		out.Keys = append(out.Keys, keyListEntry{KeyArn: arn, KeyId: keys[i].ID})
	}
	if more && len(keys) > 0 {
		out.Truncated = true
		out.NextMarker = encodeMarker(keys[len(keys)-1].ID)
	}
	return marshal(out)
}

// ---- EnableKey, DisableKey, CancelKeyDeletion ----

type keyOnlyReq struct {
	KeyId *string
}

// keyWrite is the common shape of single-key writes: validate KeyId (key id
// or key ARN), pre-check locally, propose.
func (s *Server) keyWrite(rc *reqCtx, body []byte, op fsm.Op) (*fsm.Result, string, *apiError) {
	var req keyOnlyReq
	if e := decodeBody(body, &req); e != nil {
		return nil, "", e
	}
	var v validator
	v.reqStr("keyId", req.KeyId, 1, 2048)
	if e := v.err(); e != nil {
		return nil, "", e
	}
	id, arn, k, ok, e := s.targetKey(rc, *req.KeyId, rc.op.action)
	if e != nil {
		return nil, "", e
	}
	if ok {
		if e := checkWriteState(op, &k); e != nil {
			return nil, "", e
		}
	}
	res, e := s.apply(rc, op, fsm.KeyCmd{KeyID: id})
	return res, arn, e
}

func opEnableKey(s *Server, rc *reqCtx, body []byte) ([]byte, *apiError) {
	_, _, e := s.keyWrite(rc, body, fsm.OpEnableKey)
	return nil, e
}

func opDisableKey(s *Server, rc *reqCtx, body []byte) ([]byte, *apiError) {
	_, _, e := s.keyWrite(rc, body, fsm.OpDisableKey)
	return nil, e
}

func opCancelKeyDeletion(s *Server, rc *reqCtx, body []byte) ([]byte, *apiError) {
	_, arn, e := s.keyWrite(rc, body, fsm.OpCancelKeyDeletion)
	if e != nil {
		return nil, e
	}
	return marshal(struct {
		KeyId string `json:"KeyId"`
	}{arn})
}

// ---- ScheduleKeyDeletion ----

type scheduleReq struct {
	KeyId               *string
	PendingWindowInDays *int64
}

func opScheduleKeyDeletion(s *Server, rc *reqCtx, body []byte) ([]byte, *apiError) {
	var req scheduleReq
	if e := decodeBody(body, &req); e != nil {
		return nil, e
	}
	var v validator
	v.reqStr("keyId", req.KeyId, 1, 2048)
	// The model allows 1–365; KMS enforces 7–30 (kms-api.md §2.1).
	v.intRange("pendingWindowInDays", req.PendingWindowInDays, 7, 30)
	if e := v.err(); e != nil {
		return nil, e
	}
	days := int64(30)
	if req.PendingWindowInDays != nil {
		days = *req.PendingWindowInDays
	}
	id, arn, k, ok, e := s.targetKey(rc, *req.KeyId, rc.op.action)
	if e != nil {
		return nil, e
	}
	if ok {
		if e := checkWriteState(fsm.OpScheduleKeyDeletion, &k); e != nil {
			return nil, e
		}
	}
	deletion := rc.now.UnixNano() + days*int64(s.cfg.DeletionDay)
	res, e := s.apply(rc, fsm.OpScheduleKeyDeletion, fsm.ScheduleKeyDeletionCmd{
		KeyID: id, PendingWindowInDays: int(days), DeletionDate: deletion,
	})
	if e != nil {
		return nil, e
	}
	state := string(fsm.StatePendingDeletion)
	if res.Key != nil {
		state = string(res.Key.State)
		if res.Key.DeletionDate != 0 {
			deletion = res.Key.DeletionDate
		}
		if res.Key.ARN != "" {
			arn = res.Key.ARN
		}
	}
	return marshal(struct {
		KeyId               string    `json:"KeyId"`
		DeletionDate        epochTime `json:"DeletionDate"`
		KeyState            string    `json:"KeyState"`
		PendingWindowInDays int64     `json:"PendingWindowInDays"`
	}{arn, epochTime(deletion), state, days})
}

// ---- UpdateKeyDescription ----

type updateDescriptionReq struct {
	KeyId       *string
	Description *string
}

func opUpdateKeyDescription(s *Server, rc *reqCtx, body []byte) ([]byte, *apiError) {
	var req updateDescriptionReq
	if e := decodeBody(body, &req); e != nil {
		return nil, e
	}
	var v validator
	v.reqStr("keyId", req.KeyId, 1, 2048)
	v.reqStr("description", req.Description, 0, 8192)
	if e := v.err(); e != nil {
		return nil, e
	}
	id, _, k, ok, e := s.targetKey(rc, *req.KeyId, rc.op.action)
	if e != nil {
		return nil, e
	}
	if ok {
		if e := checkWriteState(fsm.OpUpdateKeyDescription, &k); e != nil {
			return nil, e
		}
	}
	_, e = s.apply(rc, fsm.OpUpdateKeyDescription, fsm.UpdateKeyDescriptionCmd{KeyID: id, Description: *req.Description})
	return nil, e
}
