package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/keyraft/keyraft/auth"
	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/policy"
)

// Authorization (docs/auth.md). Every operation is authorized as AWS KMS
// does it, after validation and key lookup and before the key-state checks:
//
//   - key operations: policy.EvaluateKMS of the key's policy and the caller's
//     identity policy for kms:<Operation> on the key ARN;
//   - CreateKey, ListKeys, ListAliases without KeyId and GenerateRandom have
//     no key: only the identity policy decides (resource "*"), and a caller
//     without one is the administrator of its own account.
//
// Callers that are not authorized at all (enforce false) are the anonymous
// callers of "none" mode: requests whose access key is not configured act as
// the administrator of the default account, without any policy check.

const codeAccessDenied = "AccessDeniedException"

// callerInfo is an authenticated caller, computed once per principal.
type callerInfo struct {
	pc       policy.Caller
	identity *policy.Document // nil: administrator of its own account
	idCtx    bool             // the identity policy needs the request context
	enforce  bool             // authorize this caller's requests
}

// newCallerInfo builds the caller of principal p, parsing its identity
// policy.
func newCallerInfo(p *auth.Principal) (*callerInfo, error) {
	c := &callerInfo{pc: policy.Caller{ARN: p.ARN, AccountID: p.AccountID}, enforce: true}
	if p.IdentityPolicy == nil {
		return c, nil
	}
	doc, err := parseIdentityPolicy(p.IdentityPolicy)
	if err != nil {
		return nil, fmt.Errorf("identity policy of %s (access key %s): %w", p.ARN, p.AccessKeyID, err)
	}
	c.identity = doc
	c.idCtx = needsContext(doc)
	return c, nil
}

// CheckCredentials parses the identity policy of every principal of creds
// with the policy language, as New does: the error names the first
// principal whose policy keyraft cannot evaluate.
func CheckCredentials(creds *auth.Credentials) error {
	for _, p := range creds.Principals() {
		if _, err := newCallerInfo(p); err != nil {
			return fmt.Errorf("credentials: %w", err)
		}
	}
	return nil
}

// parseIdentityPolicy parses an identity policy of the credentials file. The
// credentials file accepts {} (and a document without Statement) as "allows
// nothing"; the policy language requires a Statement, so such a document is
// an empty one here.
func parseIdentityPolicy(raw json.RawMessage) (*policy.Document, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if _, ok := members["Statement"]; !ok {
		for k := range members {
			if k != "Version" && k != "Id" {
				return nil, fmt.Errorf("unknown element %q (and no Statement)", k)
			}
		}
		var d policy.Document
		if v, ok := members["Version"]; ok {
			_ = json.Unmarshal(v, &d.Version)
		}
		return &d, nil
	}
	return policy.ParseIdentityPolicy(string(bytes.TrimSpace(raw)))
}

// needsContext reports whether evaluating doc can depend on the request
// context (conditions, or policy variables in resources). Documents that do
// not are evaluated without building one: the GenerateMac fast path.
func needsContext(doc *policy.Document) bool {
	if doc == nil {
		return false
	}
	for i := range doc.Statements {
		st := &doc.Statements[i]
		if len(st.Conditions) > 0 {
			return true
		}
		for _, r := range st.Resource {
			if strings.Contains(r, "${") {
				return true
			}
		}
	}
	return false
}

// callerFor returns the caller of an authenticated principal.
func (s *Server) callerFor(p *auth.Principal) *callerInfo {
	if c, ok := s.principals[p]; ok {
		return c
	}
	// A principal the Config's Credentials did not list (a Verifier built
	// over other credentials): parse its identity policy once.
	if v, ok := s.lazyCallers.Load(p); ok {
		return v.(*callerInfo)
	}
	c, err := newCallerInfo(p)
	if err != nil {
		s.log.Error("api: identity policy cannot be parsed; the principal is allowed nothing", "principal", p.ARN, "error", err.Error())
		c = &callerInfo{pc: policy.Caller{ARN: p.ARN, AccountID: p.AccountID}, identity: &policy.Document{}, enforce: true}
	}
	v, _ := s.lazyCallers.LoadOrStore(p, c)
	return v.(*callerInfo)
}

// ---- key policy cache ----

// keyPolicy is a parsed key policy.
type keyPolicy struct {
	doc      *policy.Document // nil when the stored text does not parse: allows nothing
	needsCtx bool
}

// maxCachedPolicies bounds the cache; past it the cache starts over.
const maxCachedPolicies = 4096

// policyCache maps key policy texts to their parsed documents, so that a
// policy is parsed once, not per request. Reads are a map lookup through an
// atomic pointer (no lock, no allocation); a new text copies the map.
type policyCache struct {
	mu  sync.Mutex
	m   atomic.Pointer[map[string]*keyPolicy]
	log *slog.Logger // nil: discard
}

func (c *policyCache) get(text string) *keyPolicy {
	if m := c.m.Load(); m != nil {
		if kp, ok := (*m)[text]; ok {
			return kp
		}
	}
	doc, err := policy.ParseKeyPolicy(text)
	kp := &keyPolicy{doc: doc, needsCtx: needsContext(doc)}
	if err != nil {
		// Only a policy stored before policies were validated can fail
		// here: it allows nothing (fail closed). PutKeyPolicy by the
		// unauthenticated administrator of -auth none can replace it.
		kp.doc = nil
		if c.log != nil {
			c.log.Warn("api: a stored key policy is not a valid key policy; it allows nothing", "error", err.Error())
		}
	}
	c.put(text, kp)
	return kp
}

func (c *policyCache) put(text string, kp *keyPolicy) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	var next map[string]*keyPolicy
	if old == nil || len(*old) >= maxCachedPolicies {
		next = make(map[string]*keyPolicy, 16)
	} else {
		if _, ok := (*old)[text]; ok {
			return
		}
		next = make(map[string]*keyPolicy, len(*old)+1)
		for k, v := range *old {
			next[k] = v
		}
	}
	next[text] = kp
	c.m.Store(&next)
}

// ---- decisions ----

func (s *Server) accessDenied(rc *reqCtx, action, resource string, why policy.Reason) *apiError {
	return newErr(codeAccessDenied, policy.AccessDeniedMessage(rc.caller.pc.ARN, action, resource, why))
}

// authorizedKey resolves a KeyId (aliases too when allowAlias) and checks
// that the caller may perform the current operation on that key: the
// NotFound-then-AccessDenied order every key operation follows.
func (s *Server) authorizedKey(rc *reqCtx, keyID string, allowAlias bool) (fsm.Key, *apiError) {
	k, e := s.resolveKey(rc, keyID, allowAlias)
	if e != nil {
		return fsm.Key{}, e
	}
	if e := s.authorizeKey(rc, &k, ""); e != nil {
		return fsm.Key{}, e
	}
	return k, nil
}

// authorizeKey authorizes the request's own action on key k. macAlg is the
// request's MacAlgorithm (GenerateMac, VerifyMac) or "".
func (s *Server) authorizeKey(rc *reqCtx, k *fsm.Key, macAlg string) *apiError {
	if !rc.caller.enforce {
		return nil
	}
	return s.authorizeKeyAction(rc, rc.op.action, k, macAlg)
}

// authorizeKeyAction authorizes action on key k with its key policy and the
// caller's identity policy (grants are not consulted: see authorizeKeyGrants).
func (s *Server) authorizeKeyAction(rc *reqCtx, action string, k *fsm.Key, macAlg string) *apiError {
	if !rc.caller.enforce {
		return nil
	}
	res, arn := s.evalKey(rc, action, k, macAlg, nil)
	if res.Allowed() {
		return nil
	}
	return s.accessDenied(rc, action, arn, res.Reason)
}

// evalKey evaluates action on key k with its key policy and the caller's
// identity policy, and returns the verdict and the key's ARN. gc carries
// CreateGrant's condition keys (nil for other operations). The common case
// (no conditions anywhere) builds no request context and allocates nothing.
func (s *Server) evalKey(rc *reqCtx, action string, k *fsm.Key, macAlg string, gc *grantCtx) (policy.Result, string) {
	c := rc.caller
	kp := s.policies.get(k.Policy)
	arn := k.ARN
	if arn == "" {
		arn = keyARN(k.Scope, k.ID)
	}
	req := policy.Request{Principal: c.pc, Action: action, Resource: arn}
	if kp.needsCtx || c.idCtx {
		req.Context = requestContext(c, k, macAlg, "", gc)
	}
	return policy.EvaluateKMS(kp.doc, c.identity, req, k.Account), arn
}

// identityAllows reports whether the caller's identity policy alone allows
// action on key k (an administrator's always does, the root user's too):
// what a grant to the caller's account, or the account the grant was
// issued in, requires of an IAM principal of that account.
func (s *Server) identityAllows(rc *reqCtx, action string, k *fsm.Key) bool {
	c := rc.caller
	if c.identity == nil || c.pc.ARN == rootARN(c.pc.AccountID) {
		return true
	}
	arn := k.ARN
	if arn == "" {
		arn = keyARN(k.Scope, k.ID)
	}
	req := policy.Request{Principal: c.pc, Action: action, Resource: arn}
	if c.idCtx {
		req.Context = requestContext(c, k, "", "", nil)
	}
	return c.identity.Evaluate(req, false) == policy.Allow
}

// rootARN is the ARN of account acct itself (arn:aws:iam::<acct>:root).
func rootARN(acct string) string { return fsm.IssuingAccountARN(fsm.Scope{Account: acct}) }

// authorizeIdentity authorizes action on resource with the caller's identity
// policy alone (operations without a key, and alias resources). keySpec is
// CreateKey's key spec (the kms:KeySpec condition key), or "".
func (s *Server) authorizeIdentity(rc *reqCtx, action, resource, keySpec string) *apiError {
	c := rc.caller
	if !c.enforce || c.identity == nil {
		return nil // an administrator of its own account
	}
	req := policy.Request{Principal: c.pc, Action: action, Resource: resource}
	if c.idCtx {
		req.Context = requestContext(c, nil, "", keySpec, nil)
	}
	switch c.identity.Evaluate(req, false) {
	case policy.Allow:
		return nil
	case policy.ExplicitDeny:
		return s.accessDenied(rc, action, resource, policy.ReasonExplicitDenyIdentityPolicy)
	}
	return s.accessDenied(rc, action, resource, policy.ReasonNoIdentityPolicyAllows)
}

// grantCtx carries the condition keys of a CreateGrant request
// (kms:GrantOperations, kms:GranteePrincipal, kms:RetiringPrincipal).
type grantCtx struct {
	operations        []string
	grantee, retiring string
}

// requestContext builds the condition keys of a request (lowercased, as the
// policy package wants them): the caller's, the key's (spec, tags), the MAC
// algorithm and, for CreateGrant, the grant's.
func requestContext(c *callerInfo, k *fsm.Key, macAlg, keySpec string, gc *grantCtx) map[string][]string {
	n := 6
	if k != nil {
		n += len(k.Tags)
		keySpec = k.KeySpec
	}
	if gc != nil {
		n += 3
	}
	vals := make([]string, 0, n)
	m := make(map[string][]string, n)
	set := func(key, v string) {
		vals = append(vals, v)
		i := len(vals) - 1
		m[key] = vals[i : i+1 : i+1]
	}
	set("kms:calleraccount", c.pc.AccountID)
	set("aws:principalaccount", c.pc.AccountID)
	set("aws:principalarn", c.pc.ARN)
	set("kms:grantisforawsresource", "false")
	if keySpec != "" {
		set("kms:keyspec", keySpec)
	}
	if macAlg != "" {
		set("kms:macalgorithm", macAlg)
	}
	if k != nil {
		for _, t := range k.Tags {
			set("aws:resourcetag/"+strings.ToLower(t.Key), t.Value)
		}
	}
	if gc != nil {
		// Multi-valued: ForAllValues/ForAnyValue apply to it.
		m["kms:grantoperations"] = gc.operations
		if gc.grantee != "" {
			set("kms:granteeprincipal", gc.grantee)
		}
		if gc.retiring != "" {
			set("kms:retiringprincipal", gc.retiring)
		}
	}
	return m
}

// checkLockout is the lockout safety check of CreateKey and PutKeyPolicy: the
// caller must still be allowed kms:PutKeyPolicy under the new policy.
func (s *Server) checkLockout(rc *reqCtx, doc *policy.Document, keyAccount, keyARN string) *apiError {
	c := rc.caller
	if err := policy.CheckLockout(doc, c.pc, c.identity, keyAccount, keyARN); err != nil {
		return newErr(codeMalformedPolicy, err.Error())
	}
	return nil
}

// parseKeyPolicyDocument applies the size quota and the policy language to a
// CreateKey or PutKeyPolicy policy that passed the model constraints.
func (s *Server) parseKeyPolicyDocument(p string) (*policy.Document, *apiError) {
	if len(p) > maxPolicyBytes {
		return nil, errf(codeLimitExceeded, "The key policy is %d bytes; the maximum key policy size is %d bytes.", len(p), maxPolicyBytes)
	}
	doc, err := policy.ParseKeyPolicy(p)
	if err != nil {
		return nil, newErr(codeMalformedPolicy, err.Error())
	}
	s.policies.put(p, &keyPolicy{doc: doc, needsCtx: needsContext(doc)})
	return doc, nil
}

// accessKeyOf returns the access key id of a SigV4 Authorization header
// (Credential=AKID/...), without verifying anything; "" if there is none.
func accessKeyOf(h string) string {
	i := strings.Index(h, "Credential=")
	if i < 0 {
		return ""
	}
	cred := h[i+len("Credential="):]
	if j := strings.IndexByte(cred, '/'); j >= 0 {
		return cred[:j]
	}
	return ""
}
