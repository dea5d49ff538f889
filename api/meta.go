package api

import (
	"strings"

	"github.com/keyraft/keyraft/fsm"
)

// ---- CreateAlias, UpdateAlias, DeleteAlias ----

type aliasReq struct {
	AliasName   *string
	TargetKeyId *string
}

func (s *Server) aliasWrite(rc *reqCtx, body []byte, op fsm.Op) *apiError {
	var req aliasReq
	if e := decodeBody(body, &req); e != nil {
		return e
	}
	var v validator
	checkAliasModel(&v, "aliasName", req.AliasName)
	if op != fsm.OpDeleteAlias {
		v.reqStr("targetKeyId", req.TargetKeyId, 1, 2048)
	}
	if e := v.err(); e != nil {
		return e
	}
	if e := checkAliasName(*req.AliasName); e != nil {
		return e
	}
	cmd := fsm.AliasCmd{Name: *req.AliasName}
	var k fsm.Key
	var ok bool
	if op != fsm.OpDeleteAlias {
		var id string
		var e *apiError
		id, _, k, ok, e = s.targetKey(rc, *req.TargetKeyId, rc.op.action)
		if e != nil {
			return e
		}
		cmd.TargetKeyID = id
	}
	if e := s.authorizeAlias(rc, *req.AliasName, op); e != nil {
		return e
	}
	if ok {
		if e := checkWriteState(op, &k); e != nil {
			return e
		}
		if op == fsm.OpUpdateAlias {
			if e := s.checkRetarget(rc.scope, *req.AliasName, &k); e != nil {
				return e
			}
		}
	}
	_, e := s.apply(rc, op, cmd)
	return e
}

// authorizeAlias authorizes an alias write as AWS does: the action on the
// alias (identity policy) and, for UpdateAlias and DeleteAlias, on the key
// the alias points to now (key policy; the new target of CreateAlias and
// UpdateAlias is authorized by targetKey). For an authorized caller an alias
// this replica does not know is NotFoundException.
func (s *Server) authorizeAlias(rc *reqCtx, name string, op fsm.Op) *apiError {
	if !rc.caller.enforce {
		return nil
	}
	arn := aliasARN(rc.scope, name)
	if op != fsm.OpCreateAlias {
		st := s.store.State()
		if st == nil {
			return errInternal("The local state is not available; retry.")
		}
		a, ok := st.Alias(rc.scope, name)
		if !ok {
			return fromFSM(fsm.ErrAliasNotFound(arn))
		}
		if a.ARN != "" {
			arn = a.ARN
		}
		if cur, ok := st.Key(rc.scope, a.TargetKeyID); ok {
			if e := s.authorizeKeyAction(rc, rc.op.action, &cur, ""); e != nil {
				return e
			}
		}
	}
	return s.authorizeIdentity(rc, rc.op.action, arn, "")
}

// checkRetarget pre-checks UpdateAlias: the alias must exist and the new
// target must be compatible with the current one.
func (s *Server) checkRetarget(scope fsm.Scope, name string, newK *fsm.Key) *apiError {
	st := s.store.State()
	if st == nil {
		return nil
	}
	a, ok := st.Alias(scope, name)
	if !ok {
		return nil // the FSM decides (this replica may lag)
	}
	oldK, ok := st.Key(scope, a.TargetKeyID)
	if !ok {
		return nil
	}
	arn := a.ARN
	if arn == "" {
		arn = aliasARN(scope, name)
	}
	return fromFSM(fsm.CheckAliasRetarget(arn, &oldK, newK))
}

func opCreateAlias(s *Server, rc *reqCtx, body []byte) ([]byte, *apiError) {
	return nil, s.aliasWrite(rc, body, fsm.OpCreateAlias)
}

func opUpdateAlias(s *Server, rc *reqCtx, body []byte) ([]byte, *apiError) {
	return nil, s.aliasWrite(rc, body, fsm.OpUpdateAlias)
}

func opDeleteAlias(s *Server, rc *reqCtx, body []byte) ([]byte, *apiError) {
	return nil, s.aliasWrite(rc, body, fsm.OpDeleteAlias)
}

// ---- ListAliases ----

type aliasListEntry struct {
	AliasArn        string    `json:"AliasArn"`
	AliasName       string    `json:"AliasName"`
	CreationDate    epochTime `json:"CreationDate"`
	LastUpdatedDate epochTime `json:"LastUpdatedDate"`
	TargetKeyId     string    `json:"TargetKeyId"`
}

func validAliasMarker(name string) bool {
	return strings.HasPrefix(name, "alias/") && len(name) <= 256
}

func opListAliases(s *Server, rc *reqCtx, body []byte) ([]byte, *apiError) {
	var req listReq
	if e := decodeBody(body, &req); e != nil {
		return nil, e
	}
	var v validator
	v.optStr("keyId", req.KeyId, 1, 2048)
	req.validate(&v, 100)
	if e := v.err(); e != nil {
		return nil, e
	}
	keyID := ""
	if req.KeyId != nil {
		k, e := s.authorizedKey(rc, *req.KeyId, false)
		if e != nil {
			return nil, e
		}
		keyID = k.ID
	} else if e := s.authorizeIdentity(rc, rc.op.action, "*", ""); e != nil {
		return nil, e
	}
	after := ""
	if req.Marker != nil {
		var e *apiError
		if after, e = decodeMarker(*req.Marker, validAliasMarker); e != nil {
			return nil, e
		}
	}
	st := s.store.State()
	if st == nil {
		return nil, errInternal("The local state is not available; retry.")
	}
	aliases, more := st.ListAliases(rc.scope, keyID, after, limitOr(req.Limit, 50))
	out := struct {
		Aliases    []aliasListEntry `json:"Aliases"`
		NextMarker string           `json:"NextMarker,omitempty"`
		Truncated  bool             `json:"Truncated"`
	}{Aliases: make([]aliasListEntry, 0, len(aliases))}
	for i := range aliases {
		a := &aliases[i]
		arn := a.ARN
		if arn == "" {
			arn = aliasARN(rc.scope, a.Name)
		}
		out.Aliases = append(out.Aliases, aliasListEntry{
			AliasArn: arn, AliasName: a.Name, TargetKeyId: a.TargetKeyID,
			CreationDate: epochTime(a.CreationDate), LastUpdatedDate: epochTime(a.LastUpdatedDate),
		})
	}
	if more && len(aliases) > 0 {
		out.Truncated = true
		out.NextMarker = encodeMarker(aliases[len(aliases)-1].Name)
	}
	return marshal(out)
}

// ---- TagResource, UntagResource, ListResourceTags ----

type tagResourceReq struct {
	KeyId *string
	Tags  []tagIn
}

func opTagResource(s *Server, rc *reqCtx, body []byte) ([]byte, *apiError) {
	var req tagResourceReq
	if e := decodeBody(body, &req); e != nil {
		return nil, e
	}
	var v validator
	v.reqStr("keyId", req.KeyId, 1, 2048)
	if req.Tags == nil {
		v.null("tags")
	}
	checkTagsModel(&v, "tags", req.Tags)
	if e := v.err(); e != nil {
		return nil, e
	}
	tags, e := checkTags(req.Tags)
	if e != nil {
		return nil, e
	}
	if len(tags) > maxTagsPerKey {
		return nil, errTooManyTags()
	}
	id, _, k, ok, e := s.targetKey(rc, *req.KeyId, rc.op.action)
	if e != nil {
		return nil, e
	}
	if ok {
		if e := checkWriteState(fsm.OpTagResource, &k); e != nil {
			return nil, e
		}
		n := len(k.Tags)
		for _, t := range tags {
			if !hasTag(k.Tags, t.Key) {
				n++
			}
		}
		if n > maxTagsPerKey {
			return nil, errTooManyTags()
		}
	}
	_, e = s.apply(rc, fsm.OpTagResource, fsm.TagResourceCmd{KeyID: id, Tags: tags})
	return nil, e
}

func hasTag(tags []fsm.Tag, key string) bool {
	for _, t := range tags {
		if t.Key == key {
			return true
		}
	}
	return false
}

type untagReq struct {
	KeyId   *string
	TagKeys []string
}

func opUntagResource(s *Server, rc *reqCtx, body []byte) ([]byte, *apiError) {
	var req untagReq
	if e := decodeBody(body, &req); e != nil {
		return nil, e
	}
	var v validator
	v.reqStr("keyId", req.KeyId, 1, 2048)
	if req.TagKeys == nil {
		v.null("tagKeys")
	}
	checkTagKeysModel(&v, req.TagKeys)
	if e := v.err(); e != nil {
		return nil, e
	}
	for _, k := range req.TagKeys {
		if reservedTagKey(k) {
			return nil, errReservedTag()
		}
	}
	id, _, k, ok, e := s.targetKey(rc, *req.KeyId, rc.op.action)
	if e != nil {
		return nil, e
	}
	if ok {
		if e := checkWriteState(fsm.OpUntagResource, &k); e != nil {
			return nil, e
		}
	}
	_, e = s.apply(rc, fsm.OpUntagResource, fsm.UntagResourceCmd{KeyID: id, TagKeys: req.TagKeys})
	return nil, e
}

func validTagMarker(k string) bool { return k != "" && utf16Len(k) <= 128 }

func opListResourceTags(s *Server, rc *reqCtx, body []byte) ([]byte, *apiError) {
	var req listReq
	if e := decodeBody(body, &req); e != nil {
		return nil, e
	}
	var v validator
	v.reqStr("keyId", req.KeyId, 1, 2048)
	req.validate(&v, 50)
	if e := v.err(); e != nil {
		return nil, e
	}
	k, e := s.authorizedKey(rc, *req.KeyId, false)
	if e != nil {
		return nil, e
	}
	after := ""
	hasAfter := false
	if req.Marker != nil {
		if after, e = decodeMarker(*req.Marker, validTagMarker); e != nil {
			return nil, e
		}
		hasAfter = true
	}
	limit := limitOr(req.Limit, 50)
	out := struct {
		Tags       []tagOut `json:"Tags"`
		NextMarker string   `json:"NextMarker,omitempty"`
		Truncated  bool     `json:"Truncated"`
	}{Tags: make([]tagOut, 0, min(len(k.Tags), limit))}
	tags := make([]fsm.Tag, len(k.Tags))
	copy(tags, k.Tags)
	sortTags(tags)
	for _, t := range tags {
		if hasAfter && t.Key <= after {
			continue
		}
		if len(out.Tags) == limit {
			out.Truncated = true
			out.NextMarker = encodeMarker(out.Tags[len(out.Tags)-1].TagKey)
			break
		}
		out.Tags = append(out.Tags, tagOut{TagKey: t.Key, TagValue: t.Value})
	}
	return marshal(out)
}

// ---- GetKeyPolicy, PutKeyPolicy, ListKeyPolicies ----

type policyReq struct {
	KeyId                          *string
	PolicyName                     *string
	Policy                         *string
	BypassPolicyLockoutSafetyCheck *bool
}

func checkPolicyName(v *validator, name *string) {
	if name == nil {
		return
	}
	v.strLen("policyName", *name, 1, 128)
	for i := 0; i < len(*name); i++ {
		c := (*name)[i]
		if !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_') {
			v.pattern("policyName", *name, `[\w]+`)
			return
		}
	}
}

func errNoSuchPolicy() *apiError { return newErr(codeNotFound, "No such policy exists") }

func opGetKeyPolicy(s *Server, rc *reqCtx, body []byte) ([]byte, *apiError) {
	var req policyReq
	if e := decodeBody(body, &req); e != nil {
		return nil, e
	}
	var v validator
	v.reqStr("keyId", req.KeyId, 1, 2048)
	checkPolicyName(&v, req.PolicyName)
	if e := v.err(); e != nil {
		return nil, e
	}
	k, e := s.authorizedKey(rc, *req.KeyId, false)
	if e != nil {
		return nil, e
	}
	if req.PolicyName != nil && *req.PolicyName != "default" {
		return nil, errNoSuchPolicy()
	}
	return marshal(struct {
		Policy     string `json:"Policy"`
		PolicyName string `json:"PolicyName"`
	}{k.Policy, "default"})
}

func opPutKeyPolicy(s *Server, rc *reqCtx, body []byte) ([]byte, *apiError) {
	var req policyReq
	if e := decodeBody(body, &req); e != nil {
		return nil, e
	}
	var v validator
	v.reqStr("keyId", req.KeyId, 1, 2048)
	checkPolicyName(&v, req.PolicyName)
	checkPolicyModel(&v, req.Policy, true)
	if e := v.err(); e != nil {
		return nil, e
	}
	id, arn, k, ok, e := s.targetKey(rc, *req.KeyId, "")
	if e != nil {
		return nil, e
	}
	if req.PolicyName != nil && *req.PolicyName != "default" {
		return nil, errNoSuchPolicy()
	}
	doc, e := s.parseKeyPolicyDocument(*req.Policy)
	if e != nil {
		return nil, e
	}
	if ok {
		if e := s.authorizeKey(rc, &k, ""); e != nil {
			return nil, e
		}
	}
	if req.BypassPolicyLockoutSafetyCheck == nil || !*req.BypassPolicyLockoutSafetyCheck {
		if e := s.checkLockout(rc, doc, rc.scope.Account, arn); e != nil {
			return nil, e
		}
	}
	_, e = s.apply(rc, fsm.OpPutKeyPolicy, fsm.PutKeyPolicyCmd{KeyID: id, Policy: *req.Policy})
	return nil, e
}

func opListKeyPolicies(s *Server, rc *reqCtx, body []byte) ([]byte, *apiError) {
	var req listReq
	if e := decodeBody(body, &req); e != nil {
		return nil, e
	}
	var v validator
	v.reqStr("keyId", req.KeyId, 1, 2048)
	req.validate(&v, 1000)
	if e := v.err(); e != nil {
		return nil, e
	}
	if _, e := s.authorizedKey(rc, *req.KeyId, false); e != nil {
		return nil, e
	}
	if req.Marker != nil {
		// keyraft never truncates this one-item list, so no marker is valid.
		if _, e := decodeMarker(*req.Marker, func(string) bool { return false }); e != nil {
			return nil, e
		}
	}
	return []byte(`{"PolicyNames":["default"],"Truncated":false}`), nil
}
