package api

import (
	"encoding/base64"

	"github.com/keyraft/keyraft/engine"
	"github.com/keyraft/keyraft/fsm"
)

// GenerateMac and VerifyMac are the hot path: they are served from the local
// replica, decode into one small struct and build their answer in the pooled
// output buffer.

type macReq struct {
	Message      []byte
	KeyId        *string
	MacAlgorithm *string
	Mac          []byte
	GrantTokens  []string
	DryRun       *bool
}

const keyUsageMac = "GENERATE_VERIFY_MAC"

// macKey validates a GenerateMac/VerifyMac request and returns the key to use
// once every precondition short of the MAC itself holds (kms-api.md §2.3,
// decision §9.4): the state is checked before any MAC work.
func (s *Server) macKey(rc *reqCtx, body []byte, verify bool, req *macReq) (fsm.Key, *apiError) {
	if e := decodeBody(body, req); e != nil {
		return fsm.Key{}, e
	}
	var v validator
	v.blob("message", req.Message, true, 1, 4096)
	v.reqStr("keyId", req.KeyId, 1, 2048)
	v.enum("macAlgorithm", req.MacAlgorithm, true, macAlgorithms, macAlgorithmsText)
	if verify {
		v.blob("mac", req.Mac, true, 1, 6144)
	}
	v.grantTokens(req.GrantTokens)
	if e := v.err(); e != nil {
		return fsm.Key{}, e
	}
	k, e := s.resolveKey(rc, *req.KeyId, true)
	if e != nil {
		return fsm.Key{}, e
	}
	toks, e := s.verifyGrantTokens(req.GrantTokens)
	if e != nil {
		return fsm.Key{}, e
	}
	if e := s.authorizeKeyGrants(rc, &k, *req.MacAlgorithm, &toks, nil); e != nil {
		return fsm.Key{}, e
	}
	op := "GenerateMac"
	if verify {
		op = "VerifyMac"
	}
	if k.KeyUsage != keyUsageMac {
		return fsm.Key{}, errKeyUsage(&k, op)
	}
	if fe := fsm.CheckUsableForMac(&k); fe != nil {
		return fsm.Key{}, fromFSM(fe)
	}
	if alg, _ := macAlgorithmOf(k.KeySpec); alg != *req.MacAlgorithm {
		return fsm.Key{}, errf(codeInvalidKeyUsage, "Algorithm %s is incompatible with key spec %s.", *req.MacAlgorithm, k.KeySpec)
	}
	if len(k.Material) == 0 {
		// The key is usable by its state but this node cannot open its
		// material (e.g. a different seal key): a server-side fault.
		s.log.Error("api: key material unavailable", "key", k.ARN, "reason", k.MaterialErr)
		return fsm.Key{}, errf(codeKeyUnavailable, "%s is unavailable: its key material could not be opened on this node.", k.ARN)
	}
	return k, nil
}

func opGenerateMac(s *Server, rc *reqCtx, body []byte) ([]byte, *apiError) {
	var req macReq
	k, e := s.macKey(rc, body, false, &req)
	if e != nil {
		return nil, e
	}
	if req.DryRun != nil && *req.DryRun {
		return nil, errDryRun
	}
	mac, err := engine.MAC(*req.MacAlgorithm, k.Material, req.Message)
	if err != nil {
		return nil, errInternal("The MAC could not be computed.")
	}
	b := append(rc.buf[:0], `{"KeyId":`...)
	b = appendJSONString(b, k.ARN)
	b = append(b, `,"Mac":"`...)
	b = base64.StdEncoding.AppendEncode(b, mac)
	b = append(b, `","MacAlgorithm":"`...)
	b = append(b, *req.MacAlgorithm...) // one of the four enum values
	b = append(b, `"}`...)
	rc.buf = b
	return b, nil
}

func opVerifyMac(s *Server, rc *reqCtx, body []byte) ([]byte, *apiError) {
	var req macReq
	k, e := s.macKey(rc, body, true, &req)
	if e != nil {
		return nil, e
	}
	ok, err := engine.VerifyMAC(*req.MacAlgorithm, k.Material, req.Message, req.Mac)
	if err != nil {
		return nil, errInternal("The MAC could not be verified.")
	}
	if !ok {
		return nil, errInvalidMac
	}
	if req.DryRun != nil && *req.DryRun {
		return nil, errDryRun
	}
	b := append(rc.buf[:0], `{"KeyId":`...)
	b = appendJSONString(b, k.ARN)
	b = append(b, `,"MacValid":true,"MacAlgorithm":"`...)
	b = append(b, *req.MacAlgorithm...)
	b = append(b, `"}`...)
	rc.buf = b
	return b, nil
}

// ---- GenerateRandom ----

type recipientIn struct {
	KeyEncryptionAlgorithm *string
	AttestationDocument    []byte
}

type generateRandomReq struct {
	NumberOfBytes    *int64
	CustomKeyStoreId *string
	Recipient        *recipientIn
}

func opGenerateRandom(s *Server, rc *reqCtx, body []byte) ([]byte, *apiError) {
	var req generateRandomReq
	if e := decodeBody(body, &req); e != nil {
		return nil, e
	}
	var v validator
	v.intRange("numberOfBytes", req.NumberOfBytes, 1, 1024)
	v.optStr("customKeyStoreId", req.CustomKeyStoreId, 1, 64)
	if req.Recipient != nil {
		v.enum("recipient.keyEncryptionAlgorithm", req.Recipient.KeyEncryptionAlgorithm, false,
			[]string{"RSAES_OAEP_SHA_256"}, "[RSAES_OAEP_SHA_256]")
		v.blob("recipient.attestationDocument", req.Recipient.AttestationDocument, false, 1, 262144)
	}
	if e := v.err(); e != nil {
		return nil, e
	}
	if req.CustomKeyStoreId != nil {
		return nil, errUnsupported("keyraft does not support custom key stores (CustomKeyStoreId).")
	}
	if req.Recipient != nil {
		return nil, errUnsupported("keyraft does not support Nitro Enclaves attestation (Recipient).")
	}
	if req.NumberOfBytes == nil {
		return nil, errValidation("NumberOfBytes is required.")
	}
	if e := s.authorizeIdentity(rc, rc.op.action, "*", ""); e != nil {
		return nil, e
	}
	rnd, err := engine.RandomBytes(int(*req.NumberOfBytes))
	if err != nil {
		return nil, errInternal("Random bytes could not be generated.")
	}
	b := append(rc.buf[:0], `{"Plaintext":"`...)
	b = base64.StdEncoding.AppendEncode(b, rnd)
	b = append(b, `"}`...)
	clear(rnd)
	rc.buf = b
	return b, nil
}
