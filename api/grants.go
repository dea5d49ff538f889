package api

import (
	"encoding/base64"
	"encoding/hex"
	"slices"
	"strings"

	"github.com/keyraft/keyraft/engine"
	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/policy"
)

// The grant operations: CreateGrant, ListGrants, ListRetirableGrants,
// RetireGrant and RevokeGrant (kms-api.md §2.2, §2.3 Grants, §4, §6).
// Grants live in the replicated state (fsm/grants.go); when they authorize
// what on this node is granttokens.go.

// GrantOperation enum (kms-api.md §2.1) and the subset valid for HMAC keys
// (decision §9.7).
var (
	grantOperations = []string{"Decrypt", "Encrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext",
		"ReEncryptFrom", "ReEncryptTo", "Sign", "Verify", "GetPublicKey", "CreateGrant", "RetireGrant",
		"DescribeKey", "GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext", "GenerateMac",
		"VerifyMac", "DeriveSharedSecret"}
	grantOperationsText = "[" + strings.Join(grantOperations, ", ") + "]"

	hmacGrantOperations     = []string{"GenerateMac", "VerifyMac", "DescribeKey", "CreateGrant", "RetireGrant"}
	hmacGrantOperationsText = "[" + strings.Join(hmacGrantOperations, ", ") + "]"
)

const principalPattern = `^[\w+=,.@:/-]+$`

func principalChar(c byte) bool {
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		c == '_' || c == '+' || c == '=' || c == ',' || c == '.' || c == '@' || c == ':' || c == '/' || c == '-'
}

// principalModel adds the model constraints of a PrincipalIdType member.
func principalModel(v *validator, member string, p *string) {
	if p == nil {
		return
	}
	v.strLen(member, *p, 1, 256)
	for i := 0; i < len(*p); i++ {
		if !principalChar((*p)[i]) {
			v.pattern(member, *p, principalPattern)
			return
		}
	}
}

// validPrincipalARN reports whether p is the ARN of a principal a grant can
// name: an account (arn:aws:iam::<acct>:root), an IAM user or role, a
// federated user or an assumed-role session.
func validPrincipalARN(p string) bool {
	rest, ok := strings.CutPrefix(p, "arn:"+arnPartition+":")
	if !ok {
		return false
	}
	svc, rest, ok := strings.Cut(rest, "::")
	if !ok || (svc != "iam" && svc != "sts") {
		return false
	}
	acct, res, ok := strings.Cut(rest, ":")
	if !ok || !validAccount(acct) {
		return false
	}
	var prefixes []string
	if svc == "iam" {
		if res == "root" {
			return true
		}
		prefixes = []string{"user/", "role/"}
	} else {
		prefixes = []string{"assumed-role/", "federated-user/"}
	}
	for _, pre := range prefixes {
		if name, ok := strings.CutPrefix(res, pre); ok && name != "" && !strings.HasSuffix(name, "/") {
			return true
		}
	}
	return false
}

func errInvalidPrincipal(member, p string) *apiError {
	return errf(codeValidation, "Invalid principal %s for %s: specify the ARN of an AWS account (arn:aws:iam::<account>:root), an IAM user or role, a federated user or an assumed-role session.", p, member)
}

// validGrantID reports whether id has the shape of the grant ids keyraft
// issues: 64 lowercase hex characters.
func validGrantID(id string) bool {
	if len(id) != 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if !isLowerHex(id[i]) {
			return false
		}
	}
	return true
}

func errInvalidGrantID(id string) *apiError {
	return errf(codeInvalidGrantID, "Invalid grant ID '%s'.", id)
}

// newGrantID is a fresh grant id: 64 lowercase hex characters from
// crypto/rand, chosen by the proposer.
func newGrantID() (string, *apiError) {
	b, err := engine.RandomBytes(32)
	if err != nil {
		return "", errInternal("A grant ID could not be generated.")
	}
	return hex.EncodeToString(b), nil
}

// grantKey resolves the KeyId of a grant operation: a key id or key ARN
// (an alias names nothing here), and another account's key by key ARN for an
// authenticated caller (kms-api.md §6). known tells whether this replica has
// the key. A caller that is authorized at all needs it (NotFoundException
// while this replica does not know it: eventual consistency); the
// unauthorized caller of "none" mode may write to a key the leader knows
// (the FSM decides), unless mustKnow.
func (s *Server) grantKey(rc *reqCtx, v string, mustKnow bool) (keyRef, fsm.Key, bool, *apiError) {
	ref, e := parseKeyID(rc.scope, v, false, rc.caller.enforce)
	if e != nil {
		return keyRef{}, fsm.Key{}, false, e
	}
	st := s.store.State()
	if st == nil {
		return keyRef{}, fsm.Key{}, false, errInternal("The local state is not available; retry.")
	}
	k, ok := st.Key(ref.scope, ref.id)
	if !ok && (mustKnow || rc.caller.enforce || ref.scope != rc.scope) {
		return keyRef{}, fsm.Key{}, false, fromFSM(fsm.ErrNotFound(keyARN(ref.scope, ref.id)))
	}
	return ref, k, ok, nil
}

// ---- CreateGrant ----

type grantConstraintsIn struct {
	EncryptionContextSubset map[string]string
	EncryptionContextEquals map[string]string
	SourceArn               *string
}

type createGrantReq struct {
	KeyId                    *string
	GranteePrincipal         *string
	RetiringPrincipal        *string
	Operations               []string
	Constraints              *grantConstraintsIn
	GrantTokens              []string
	Name                     *string
	DryRun                   *bool
	GranteeServicePrincipal  *string
	RetiringServicePrincipal *string
}

// checkOperationsModel adds the model constraint of a GrantOperationList:
// every member in the enum, reported as AWS reports list members.
func checkOperationsModel(v *validator, ops []string) {
	for _, op := range ops {
		if !slices.Contains(grantOperations, op) {
			s := "[" + strings.Join(ops, ", ") + "]"
			v.add(&s, "operations", "satisfy constraint: [Member must satisfy enum value set: "+grantOperationsText+"]")
			return
		}
	}
}

func opCreateGrant(s *Server, rc *reqCtx, body []byte) ([]byte, *apiError) {
	var req createGrantReq
	if e := decodeBody(body, &req); e != nil {
		return nil, e
	}
	var v validator
	v.reqStr("keyId", req.KeyId, 1, 2048)
	principalModel(&v, "granteePrincipal", req.GranteePrincipal)
	principalModel(&v, "retiringPrincipal", req.RetiringPrincipal)
	if req.Operations == nil {
		v.null("operations")
	}
	checkOperationsModel(&v, req.Operations)
	if req.Constraints != nil && req.Constraints.SourceArn != nil {
		v.strLen("constraints.sourceArn", *req.Constraints.SourceArn, 20, 2048)
	}
	v.grantTokens(req.GrantTokens)
	if req.Name != nil {
		v.strLen("name", *req.Name, 1, 256)
		for i := 0; i < len(*req.Name); i++ {
			if !aliasModelChar((*req.Name)[i]) {
				v.pattern("name", *req.Name, `^[a-zA-Z0-9:/_-]+$`)
				break
			}
		}
	}
	v.optStr("granteeServicePrincipal", req.GranteeServicePrincipal, 1, 128)
	v.optStr("retiringServicePrincipal", req.RetiringServicePrincipal, 1, 128)
	if e := v.err(); e != nil {
		return nil, e
	}
	if req.GranteePrincipal != nil && req.GranteeServicePrincipal != nil {
		return nil, errValidation("You must specify either GranteePrincipal or GranteeServicePrincipal, but not both.")
	}
	if req.RetiringPrincipal != nil && req.RetiringServicePrincipal != nil {
		return nil, errValidation("You can specify either RetiringPrincipal or RetiringServicePrincipal, but not both.")
	}
	if req.GranteeServicePrincipal != nil || req.RetiringServicePrincipal != nil {
		return nil, errUnsupported("keyraft does not support grants for AWS service principals (GranteeServicePrincipal, RetiringServicePrincipal): no AWS service calls keyraft. Use GranteePrincipal and RetiringPrincipal.")
	}
	if req.GranteePrincipal == nil {
		var v validator
		v.null("granteePrincipal")
		return nil, v.err()
	}
	if !validPrincipalARN(*req.GranteePrincipal) {
		return nil, errInvalidPrincipal("GranteePrincipal", *req.GranteePrincipal)
	}
	if req.RetiringPrincipal != nil && !validPrincipalARN(*req.RetiringPrincipal) {
		return nil, errInvalidPrincipal("RetiringPrincipal", *req.RetiringPrincipal)
	}
	if len(req.Operations) == 0 {
		return nil, errValidation("The grant must allow at least one operation: Operations is empty.")
	}
	dryRun := req.DryRun != nil && *req.DryRun

	ref, k, known, e := s.grantKey(rc, *req.KeyId, dryRun)
	if e != nil {
		return nil, e
	}
	toks, e := s.verifyGrantTokens(req.GrantTokens)
	if e != nil {
		return nil, e
	}
	ops := slices.Clone(req.Operations)
	slices.Sort(ops)
	ops = slices.Compact(ops)
	gc := &grantCtx{operations: ops, grantee: *req.GranteePrincipal}
	if req.RetiringPrincipal != nil {
		gc.retiring = *req.RetiringPrincipal
	}
	if known {
		if e := s.authorizeKeyGrants(rc, &k, "", &toks, gc); e != nil {
			return nil, e
		}
	}
	arn := keyARN(ref.scope, ref.id)
	if known && k.ARN != "" {
		arn = k.ARN
	}
	// What the key supports (every keyraft key is an HMAC key).
	var bad []string
	for _, op := range ops {
		if !slices.Contains(hmacGrantOperations, op) {
			bad = append(bad, op)
		}
	}
	spec := "HMAC"
	if known {
		spec = k.KeySpec
	}
	if len(bad) > 0 {
		return nil, errf(codeValidation, "Grant operations [%s] are not valid for %s: it is an HMAC key (KeySpec %s), whose grants may allow only %s.",
			strings.Join(bad, ", "), arn, spec, hmacGrantOperationsText)
	}
	var constraints *fsm.GrantConstraints
	if c := req.Constraints; c != nil {
		if len(c.EncryptionContextSubset) > 0 || len(c.EncryptionContextEquals) > 0 {
			return nil, errf(codeValidation, "EncryptionContextSubset and EncryptionContextEquals grant constraints are not valid for %s: it is an HMAC key (KeySpec %s), and HMAC keys have no encryption context.", arn, spec)
		}
		if c.SourceArn != nil {
			constraints = &fsm.GrantConstraints{SourceArn: *c.SourceArn}
		}
	}
	if dryRun {
		if fe := fsm.CheckOp(fsm.OpCreateGrant, &k); fe != nil {
			return nil, fromFSM(fe)
		}
		if fe := fsm.CheckGrantQuota(s.store.State().GrantCount(ref.scope, ref.id)); fe != nil {
			return nil, fromFSM(fe)
		}
		return nil, errDryRun
	}
	if known {
		if e := checkWriteState(fsm.OpCreateGrant, &k); e != nil {
			return nil, e
		}
	}
	// The token is signed after the grant is applied; without a secret
	// the grant would exist but its creator would get no token, so refuse
	// first (retryable: the leader installs the secret when it starts).
	if _, ok := s.store.State().ClusterSecret(); !ok {
		return nil, errTokensUnavailable
	}
	id, e := newGrantID()
	if e != nil {
		return nil, e
	}
	g := fsm.Grant{
		Scope:            ref.scope,
		KeyID:            ref.id,
		GrantID:          id,
		GranteePrincipal: *req.GranteePrincipal,
		IssuingAccount:   rootARN(rc.caller.pc.AccountID),
		Operations:       ops,
		Constraints:      constraints,
		CreationDate:     rc.now.UnixNano(),
	}
	if req.Name != nil {
		g.Name = *req.Name
	}
	if req.RetiringPrincipal != nil {
		g.RetiringPrincipal = *req.RetiringPrincipal
	}
	res, e := s.applyIn(rc, ref.scope, fsm.OpCreateGrant, fsm.CreateGrantCmd{Grant: g})
	if e != nil {
		return nil, e
	}
	if res.Grant != nil {
		g = *res.Grant // Name idempotency: the existing grant, with a fresh token
	}
	tok, e := s.signGrantToken(&g)
	if e != nil {
		return nil, e
	}
	return marshal(struct {
		GrantId    string `json:"GrantId"`
		GrantToken string `json:"GrantToken"`
	}{g.GrantID, tok})
}

// ---- ListGrants, ListRetirableGrants ----

// grantListEntry is GrantListEntry (kms-api.md §2.3), without tokens.
type grantListEntry struct {
	KeyId             string                `json:"KeyId"`
	GrantId           string                `json:"GrantId"`
	Name              string                `json:"Name"`
	CreationDate      epochTime             `json:"CreationDate"`
	GranteePrincipal  string                `json:"GranteePrincipal"`
	RetiringPrincipal string                `json:"RetiringPrincipal,omitempty"`
	IssuingAccount    string                `json:"IssuingAccount"`
	Operations        []string              `json:"Operations"`
	Constraints       *fsm.GrantConstraints `json:"Constraints,omitempty"`
}

type grantList struct {
	Grants     []grantListEntry `json:"Grants"`
	NextMarker string           `json:"NextMarker,omitempty"`
	Truncated  bool             `json:"Truncated"`
}

func listOfGrants(grants []fsm.Grant, more bool) ([]byte, *apiError) {
	out := grantList{Grants: make([]grantListEntry, 0, len(grants))}
	for i := range grants {
		g := &grants[i]
		out.Grants = append(out.Grants, grantListEntry{
			KeyId:             fsm.KeyARN(g.Scope, g.KeyID),
			GrantId:           g.GrantID,
			Name:              g.Name,
			CreationDate:      epochTime(g.CreationDate),
			GranteePrincipal:  g.GranteePrincipal,
			RetiringPrincipal: g.RetiringPrincipal,
			IssuingAccount:    g.IssuingAccount,
			Operations:        g.Operations,
			Constraints:       g.Constraints,
		})
	}
	if more && len(grants) > 0 {
		out.Truncated = true
		out.NextMarker = base64.RawURLEncoding.EncodeToString([]byte(fsm.GrantCursor(grants[len(grants)-1])))
	}
	return marshal(out)
}

// decodeGrantMarker turns a NextMarker of ListGrants or ListRetirableGrants
// back into an fsm.GrantCursor.
func decodeGrantMarker(m *string) (string, *apiError) {
	if m == nil {
		return "", nil
	}
	return decodeMarker(*m, func(c string) bool {
		_, id, ok := fsm.ParseGrantCursor(c)
		return ok && validGrantID(id)
	})
}

type listGrantsReq struct {
	KeyId                   *string
	Limit                   *int64
	Marker                  *string
	GrantId                 *string
	GranteePrincipal        *string
	GranteeServicePrincipal *string
}

func opListGrants(s *Server, rc *reqCtx, body []byte) ([]byte, *apiError) {
	var req listGrantsReq
	if e := decodeBody(body, &req); e != nil {
		return nil, e
	}
	var v validator
	v.intRange("limit", req.Limit, 1, 100)
	v.marker(req.Marker)
	v.reqStr("keyId", req.KeyId, 1, 2048)
	v.optStr("grantId", req.GrantId, 1, 128)
	principalModel(&v, "granteePrincipal", req.GranteePrincipal)
	v.optStr("granteeServicePrincipal", req.GranteeServicePrincipal, 1, 128)
	if e := v.err(); e != nil {
		return nil, e
	}
	if req.GrantId != nil && !validGrantID(*req.GrantId) {
		return nil, errInvalidGrantID(*req.GrantId)
	}
	after, e := decodeGrantMarker(req.Marker)
	if e != nil {
		return nil, e
	}
	ref, k, _, e := s.grantKey(rc, *req.KeyId, true)
	if e != nil {
		return nil, e
	}
	if e := s.authorizeKey(rc, &k, ""); e != nil {
		return nil, e
	}
	if req.GranteeServicePrincipal != nil {
		// No grant is for a service principal (CreateGrant refuses them).
		return listOfGrants(nil, false)
	}
	grantID, grantee := "", ""
	if req.GrantId != nil {
		grantID = *req.GrantId
	}
	if req.GranteePrincipal != nil {
		grantee = *req.GranteePrincipal
	}
	grants, more := s.store.State().ListGrants(ref.scope, ref.id, after, limitOr(req.Limit, 50), grantID, grantee)
	return listOfGrants(grants, more)
}

type listRetirableReq struct {
	Limit                    *int64
	Marker                   *string
	RetiringPrincipal        *string
	RetiringServicePrincipal *string
}

func opListRetirableGrants(s *Server, rc *reqCtx, body []byte) ([]byte, *apiError) {
	var req listRetirableReq
	if e := decodeBody(body, &req); e != nil {
		return nil, e
	}
	var v validator
	v.intRange("limit", req.Limit, 1, 100)
	v.marker(req.Marker)
	if req.RetiringPrincipal == nil && req.RetiringServicePrincipal == nil {
		v.null("retiringPrincipal")
	}
	principalModel(&v, "retiringPrincipal", req.RetiringPrincipal)
	v.optStr("retiringServicePrincipal", req.RetiringServicePrincipal, 1, 128)
	if e := v.err(); e != nil {
		return nil, e
	}
	if req.RetiringPrincipal != nil && req.RetiringServicePrincipal != nil {
		return nil, errValidation("You must specify either RetiringPrincipal or RetiringServicePrincipal, but not both.")
	}
	after, e := decodeGrantMarker(req.Marker)
	if e != nil {
		return nil, e
	}
	if e := s.authorizeIdentity(rc, rc.op.action, "*", ""); e != nil {
		return nil, e
	}
	if req.RetiringServicePrincipal != nil {
		return listOfGrants(nil, false)
	}
	st := s.store.State()
	if st == nil {
		return nil, errInternal("The local state is not available; retry.")
	}
	grants, more := st.ListRetirableGrants(rc.scope, *req.RetiringPrincipal, after, limitOr(req.Limit, 50))
	return listOfGrants(grants, more)
}

// ---- RetireGrant ----

type retireGrantReq struct {
	GrantToken *string
	KeyId      *string
	GrantId    *string
	DryRun     *bool
}

func opRetireGrant(s *Server, rc *reqCtx, body []byte) ([]byte, *apiError) {
	var req retireGrantReq
	if e := decodeBody(body, &req); e != nil {
		return nil, e
	}
	var v validator
	v.optStr("grantToken", req.GrantToken, 1, 8192)
	v.optStr("keyId", req.KeyId, 1, 2048)
	v.optStr("grantId", req.GrantId, 1, 128)
	if e := v.err(); e != nil {
		return nil, e
	}
	if req.GrantToken == nil && (req.KeyId == nil || req.GrantId == nil) {
		return nil, errValidation("Specify the grant to retire by its GrantToken, or by both KeyId (the key ARN) and GrantId.")
	}
	if req.GrantId != nil && !validGrantID(*req.GrantId) {
		return nil, errInvalidGrantID(*req.GrantId)
	}
	var claims *engine.GrantTokenClaims
	if req.GrantToken != nil {
		toks, e := s.verifyGrantTokens([]string{*req.GrantToken})
		if e != nil {
			return nil, e
		}
		if toks.unverified {
			return nil, errTokensUnverifiable
		}
		claims = &toks.claims[0]
		if req.GrantId != nil && *req.GrantId != claims.GrantID {
			return nil, errf(codeInvalidGrantID, "The grant ID '%s' is not the grant ID of the grant token.", *req.GrantId)
		}
	}
	keyID, grantID := "", ""
	if claims != nil {
		keyID, grantID = claims.KeyARN, claims.GrantID
	} else {
		keyID, grantID = *req.KeyId, *req.GrantId
	}
	dryRun := req.DryRun != nil && *req.DryRun
	ref, k, _, e := s.grantKey(rc, keyID, dryRun)
	if e != nil {
		return nil, e
	}
	if claims != nil && req.KeyId != nil {
		other, e := parseKeyID(rc.scope, *req.KeyId, false, rc.caller.enforce)
		if e != nil {
			return nil, e
		}
		if other.scope != ref.scope || other.id != ref.id {
			return nil, errValidation("The KeyId is not the key of the grant token.")
		}
	}
	var g fsm.Grant
	var gKnown bool
	if st := s.store.State(); st != nil {
		g, gKnown = st.Grant(ref.scope, ref.id, grantID)
	}
	if gKnown && !g.Active() {
		return nil, fromFSM(fsm.ErrGrantNotFound()) // already retired or revoked
	}
	if !gKnown && claims != nil {
		// Not applied on this node yet: the token tells who it is for.
		g = fsm.Grant{Scope: ref.scope, KeyID: ref.id, GrantID: grantID, GranteePrincipal: claims.GranteePrincipal,
			RetiringPrincipal: claims.RetiringPrincipal, Operations: claims.Operations, CreationDate: claims.CreationDate}
		gKnown = true
	}
	if rc.caller.enforce || dryRun {
		if !gKnown {
			// Neither applied here nor named by a token: as far as this
			// node knows, there is no such grant (retry, or use the token).
			return nil, fromFSM(fsm.ErrGrantNotFound())
		}
		if e := s.authorizeRetire(rc, &k, &g); e != nil {
			return nil, e
		}
	}
	if dryRun {
		return nil, errDryRun
	}
	_, e = s.applyIn(rc, ref.scope, fsm.OpRetireGrant, fsm.GrantCmd{KeyID: ref.id, GrantID: grantID})
	return nil, e
}

// authorizeRetire decides who may retire grant g of key k (kms-api.md §2.3):
// its retiring principal, its grantee if the grant allows RetireGrant, or a
// principal of the account the grant was issued in that policy allows
// kms:RetireGrant. An explicit deny of kms:RetireGrant in the key policy or
// the caller's identity policy refuses all of them.
func (s *Server) authorizeRetire(rc *reqCtx, k *fsm.Key, g *fsm.Grant) *apiError {
	c := rc.caller
	if !c.enforce {
		return nil
	}
	const action = "kms:RetireGrant"
	res, arn := s.evalKey(rc, action, k, "", nil)
	if res.Decision == policy.ExplicitDeny {
		return s.accessDenied(rc, action, arn, res.Reason)
	}
	if g.RetiringPrincipal != "" && s.granteeIs(rc, g.RetiringPrincipal, action, k) {
		return nil
	}
	if slices.Contains(g.Operations, "RetireGrant") && s.granteeIs(rc, g.GranteePrincipal, action, k) {
		return nil
	}
	issuing := g.IssuingAccount
	if issuing == "" {
		// Known only from its token (not applied here yet): grants are
		// issued in the key's account unless created cross-account.
		issuing = rootARN(k.Account)
	}
	if rootARN(c.pc.AccountID) == issuing {
		if res.Allowed() {
			return nil
		}
		if c.pc.AccountID != k.Account && s.identityAllows(rc, action, k) {
			// A grant issued by another account on this key: that
			// account's identity policies decide, as for its CreateGrant.
			return nil
		}
	}
	reason := res.Reason
	if res.Allowed() {
		// Allowed by policy, but not a principal of the issuing account.
		reason = policy.ReasonNoResourcePolicyAllows
	}
	return s.accessDenied(rc, action, arn, reason)
}

// ---- RevokeGrant ----

type revokeGrantReq struct {
	KeyId   *string
	GrantId *string
	DryRun  *bool
}

func opRevokeGrant(s *Server, rc *reqCtx, body []byte) ([]byte, *apiError) {
	var req revokeGrantReq
	if e := decodeBody(body, &req); e != nil {
		return nil, e
	}
	var v validator
	v.reqStr("keyId", req.KeyId, 1, 2048)
	v.reqStr("grantId", req.GrantId, 1, 128)
	if e := v.err(); e != nil {
		return nil, e
	}
	if !validGrantID(*req.GrantId) {
		return nil, errInvalidGrantID(*req.GrantId)
	}
	dryRun := req.DryRun != nil && *req.DryRun
	ref, k, known, e := s.grantKey(rc, *req.KeyId, dryRun)
	if e != nil {
		return nil, e
	}
	if known {
		if e := s.authorizeKey(rc, &k, ""); e != nil {
			return nil, e
		}
	}
	if dryRun {
		if g, ok := s.store.State().Grant(ref.scope, ref.id, *req.GrantId); !ok || !g.Active() {
			return nil, fromFSM(fsm.ErrGrantNotFound())
		}
		return nil, errDryRun
	}
	_, e = s.applyIn(rc, ref.scope, fsm.OpRevokeGrant, fsm.GrantCmd{KeyID: ref.id, GrantID: *req.GrantId})
	return nil, e
}
