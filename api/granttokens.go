package api

import (
	"errors"
	"slices"

	"github.com/keyraft/keyraft/engine"
	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/policy"
)

// Authorization by grants and grant tokens (docs/auth.md, docs/consistency.md).
//
// Grants are consulted only after the key policy and the identity policy
// have not allowed a request (an implicit deny; an explicit deny always
// wins), so that the common case, an owner or administrator using its key,
// does no grant work at all. Then a grant of the key authorizes the caller
// for an operation when
//
//   - its GranteePrincipal is the caller's ARN, or the caller's account
//     (arn:aws:iam::<acct>:root) and the caller's identity policy allows
//     the action, as an account principal in a key policy delegates;
//   - its Operations include the operation (for CreateGrant: every
//     operation of the new grant too, so a grant can only hand on what it
//     holds);
//   - it has no SourceArn constraint (such a grant is for requests an AWS
//     service makes on behalf of a resource; no keyraft caller is one);
//   - and THIS node considers it effective: CreationDate +
//     GrantPropagationDelay <= now, and it is either active or was retired
//     less than GrantPropagationDelay ago.
//
// A grant token (GrantTokens) is self-verifying: signed with the cluster
// secret (engine.SignGrantToken), it carries the grant's key, id, grantee,
// operations and constraints. A genuine token authorizes its grantee as the
// grant would, on its key only, even on a node that has not applied the
// grant yet or does not consider it effective yet: that is what tokens are
// for. It never revives a grant this node knows to be retired or revoked,
// and for a grant this node does not know at all it is honoured only within
// GrantTombstoneRetention of the grant's creation (after that, the grant's
// tombstone may have been purged). A malformed or forged token is
// InvalidGrantTokenException, whether or not the caller needed it.

// grantTokens are the verified grant tokens of a request.
type grantTokens struct {
	claims []engine.GrantTokenClaims
	// unverified: the request carried well-formed tokens that this node
	// could not verify because it has no cluster secret (yet).
	unverified bool
}

// zeroSecret lets tokenWellFormed run VerifyGrantToken's format checks,
// which come before the tag check, without the cluster secret.
var zeroSecret = make([]byte, engine.GrantTokenSecretSize)

// tokenWellFormed reports whether t has the format of a grant token (it may
// still be forged).
func tokenWellFormed(t string) bool {
	_, err := engine.VerifyGrantToken(zeroSecret, t)
	return !errors.Is(err, engine.ErrGrantTokenMalformed)
}

var errInvalidGrantToken = newErr(codeInvalidGrantToken, "The grant token is not valid.")

// errTokensUnverifiable: a token was needed but this node cannot check it
// yet. KMSInternalException (500) is retried by the SDKs.
var errTokensUnverifiable = errInternal("This node cannot verify grant tokens yet: it has not received the cluster's grant token secret. Retry the request.")

// verifyGrantTokens checks every token of a request with the cluster
// secret. Without tokens it does nothing (and allocates nothing).
func (s *Server) verifyGrantTokens(tokens []string) (grantTokens, *apiError) {
	var out grantTokens
	if len(tokens) == 0 {
		return out, nil
	}
	var secret []byte
	ok := false
	if st := s.store.State(); st != nil {
		secret, ok = st.ClusterSecret()
	}
	for _, t := range tokens {
		if !ok {
			if !tokenWellFormed(t) {
				return grantTokens{}, errInvalidGrantToken
			}
			out.unverified = true
			continue
		}
		c, err := engine.VerifyGrantToken(secret, t)
		if err != nil {
			if errors.Is(err, engine.ErrGrantTokenMalformed) || errors.Is(err, engine.ErrGrantTokenForged) {
				return grantTokens{}, errInvalidGrantToken
			}
			// An unusable secret: the server's fault. The error names no
			// secret material.
			s.log.Error("api: grant tokens cannot be verified", "error", err.Error())
			return grantTokens{}, errInternal("Grant tokens cannot be verified on this node. Retry the request.")
		}
		out.claims = append(out.claims, c)
	}
	return out, nil
}

// grantEffective reports whether this node, at now (unix ns) and with
// propagation delay delay, considers grant g effective.
func grantEffective(g *fsm.Grant, now, delay int64) bool {
	if g.CreationDate+delay > now {
		return false
	}
	return g.RetiredAt == 0 || now < g.RetiredAt+delay
}

// grantCovers reports whether a grant with ops and sourceArn allows op
// (and, for CreateGrant, every operation of need).
func grantCovers(ops []string, sourceArn, op string, need []string) bool {
	if sourceArn != "" || !slices.Contains(ops, op) {
		return false
	}
	for _, n := range need {
		if !slices.Contains(ops, n) {
			return false
		}
	}
	return true
}

// granteeIs reports whether principal p of a grant names the caller: its
// ARN, or its account, in which case the identity policy must allow action.
func (s *Server) granteeIs(rc *reqCtx, p, action string, k *fsm.Key) bool {
	c := rc.caller
	if p == c.pc.ARN {
		return true
	}
	return p == rootARN(c.pc.AccountID) && s.identityAllows(rc, action, k)
}

// grantAllows reports whether a grant of key k (arn), or one of the
// request's grant tokens, lets the caller perform operation op on this node
// now. need: CreateGrant's requested operations. It fails only when no
// grant allows but tokens were given that this node cannot verify yet.
func (s *Server) grantAllows(rc *reqCtx, k *fsm.Key, arn, op string, toks *grantTokens, need []string) (bool, *apiError) {
	st := s.store.State()
	if st == nil {
		return false, nil
	}
	c := rc.caller
	action := "kms:" + op
	now := rc.now.UnixNano()
	delay := int64(s.cfg.GrantPropagationDelay)
	for _, g := range st.GrantsFor(k.Scope, k.ID, c.pc.ARN) {
		if grantEffective(&g, now, delay) && grantCovers(g.Operations, sourceArnOf(g.Constraints), op, need) {
			return true, nil
		}
	}
	if root := rootARN(c.pc.AccountID); root != c.pc.ARN {
		for _, g := range st.GrantsFor(k.Scope, k.ID, root) {
			if grantEffective(&g, now, delay) && grantCovers(g.Operations, sourceArnOf(g.Constraints), op, need) &&
				s.identityAllows(rc, action, k) {
				return true, nil
			}
		}
	}
	if toks != nil {
		for i := range toks.claims {
			cl := &toks.claims[i]
			if cl.KeyARN != arn || !grantCovers(cl.Operations, cl.SourceArn, op, need) ||
				!s.granteeIs(rc, cl.GranteePrincipal, action, k) {
				continue
			}
			if g, known := st.Grant(k.Scope, k.ID, cl.GrantID); known {
				if !g.Active() {
					continue // retired or revoked: its token does not revive it
				}
			} else if now >= cl.CreationDate+int64(s.cfg.GrantTombstoneRetention) {
				continue // unknown and old: it may be retired with its tombstone purged
			}
			return true, nil
		}
		if toks.unverified {
			return false, errTokensUnverifiable
		}
	}
	return false, nil
}

func sourceArnOf(c *fsm.GrantConstraints) string {
	if c == nil {
		return ""
	}
	return c.SourceArn
}

// authorizeKeyGrants authorizes the request's own action on key k: by the
// key and identity policies, and after an implicit deny by a grant or a
// grant token (toks, may be nil). need: CreateGrant's requested operations
// (and gc its condition keys); nil otherwise.
func (s *Server) authorizeKeyGrants(rc *reqCtx, k *fsm.Key, macAlg string, toks *grantTokens, gc *grantCtx) *apiError {
	if !rc.caller.enforce {
		return nil
	}
	res, arn := s.evalKey(rc, rc.op.action, k, macAlg, gc)
	if res.Allowed() {
		return nil
	}
	if res.Decision == policy.NotApplicable {
		var need []string
		if gc != nil {
			need = gc.operations
		}
		granted, e := s.grantAllows(rc, k, arn, rc.op.name, toks, need)
		if e != nil {
			return e
		}
		if res = res.WithGrant(granted); res.Allowed() {
			return nil
		}
	}
	return s.accessDenied(rc, rc.op.action, arn, res.Reason)
}

// signGrantToken issues a new token for grant g.
func (s *Server) signGrantToken(g *fsm.Grant) (string, *apiError) {
	st := s.store.State()
	if st == nil {
		return "", errTokensUnavailable
	}
	secret, ok := st.ClusterSecret()
	if !ok {
		return "", errTokensUnavailable
	}
	c := engine.GrantTokenClaims{
		KeyARN:            fsm.KeyARN(g.Scope, g.KeyID),
		GrantID:           g.GrantID,
		GranteePrincipal:  g.GranteePrincipal,
		RetiringPrincipal: g.RetiringPrincipal,
		Operations:        g.Operations,
		CreationDate:      g.CreationDate,
	}
	if g.Constraints != nil {
		c.EncryptionContextSubset = g.Constraints.EncryptionContextSubset
		c.EncryptionContextEquals = g.Constraints.EncryptionContextEquals
		c.SourceArn = g.Constraints.SourceArn
	}
	tok, err := engine.SignGrantToken(secret, c)
	if err != nil {
		s.log.Error("api: a grant token cannot be signed", "error", err.Error())
		return "", errInternal("The grant token could not be issued.")
	}
	return tok, nil
}

// errTokensUnavailable: this node cannot issue grant tokens (no cluster
// secret applied yet, or one it cannot unseal). Retryable.
var errTokensUnavailable = errInternal("This node cannot issue grant tokens yet: it has not received the cluster's grant token secret. Retry the request.")
