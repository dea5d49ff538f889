package api

import (
	"strings"

	"github.com/keyraft/keyraft/fsm"
)

// ARNs are built by the fsm (partition "aws", the only one keyraft serves).

const arnPartition = "aws"

// keyARN is the ARN of key id in scope.
func keyARN(scope fsm.Scope, id string) string { return fsm.KeyARN(scope, id) }

// aliasARN is the ARN of alias name ("alias/...") in scope.
func aliasARN(scope fsm.Scope, name string) string { return fsm.AliasARN(scope, name) }

// validKeyID reports whether s has the shape of a KMS key id: a lowercase
// UUID, or "mrk-" and 32 lowercase hex digits (multi-Region key ids).
func validKeyID(s string) bool {
	if len(s) != 36 {
		return false
	}
	if strings.HasPrefix(s, "mrk-") {
		for i := 4; i < 36; i++ {
			if !isLowerHex(s[i]) {
				return false
			}
		}
		return true
	}
	for i := 0; i < 36; i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !isLowerHex(c) {
				return false
			}
		}
	}
	return true
}

func isLowerHex(c byte) bool { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') }

// keyRef is a parsed KeyId member: either a key id or an alias name, in the
// scope it lives in (another account's for a cross-account ARN).
type keyRef struct {
	id    string // key id, when the value named a key
	alias string // alias name ("alias/..."), when it named an alias
	scope fsm.Scope
}

// parseKeyID parses a KeyId member of a request in scope. allowAlias tells
// whether the operation accepts alias names and alias ARNs (kms-api.md §6);
// cross whether a key ARN or alias ARN of another account (same region)
// names that account's key, as for the cryptographic operations and
// DescribeKey. Without cross such an ARN names nothing (NotFoundException).
// It does not look anything up.
func parseKeyID(scope fsm.Scope, v string, allowAlias, cross bool) (keyRef, *apiError) {
	if strings.HasPrefix(v, "arn:") {
		// arn:<partition>:kms:<region>:<account>:<resource>
		parts := strings.SplitN(v, ":", 6)
		if len(parts) != 6 || parts[2] != "kms" || parts[1] == "" {
			return keyRef{}, errInvalidKeyID(v)
		}
		partition, region, account, resource := parts[1], parts[3], parts[4], parts[5]
		ref := keyRef{scope: scope}
		switch {
		case strings.HasPrefix(resource, "key/"):
			id := resource[len("key/"):]
			if !validKeyID(id) {
				return keyRef{}, errInvalidKeyID(v)
			}
			ref.id = id
		case strings.HasPrefix(resource, "alias/"):
			if !allowAlias || len(resource) == len("alias/") {
				return keyRef{}, errInvalidKeyID(v)
			}
			ref.alias = resource
		default:
			return keyRef{}, errInvalidKeyID(v)
		}
		if region != scope.Region {
			return keyRef{}, errInvalidArnRegion(region)
		}
		if partition != arnPartition {
			return keyRef{}, errInvalidKeyID(v)
		}
		if account != scope.Account {
			if cross && validAccount(account) {
				ref.scope = fsm.Scope{Account: account, Region: scope.Region}
				return ref, nil
			}
			// The key or alias does not exist for this caller.
			if ref.alias != "" {
				return keyRef{}, fromFSM(fsm.ErrAliasNotFound(v))
			}
			return keyRef{}, fromFSM(fsm.ErrNotFound(v))
		}
		return ref, nil
	}
	if strings.HasPrefix(v, "alias/") {
		if !allowAlias || len(v) == len("alias/") {
			return keyRef{}, errInvalidKeyID(v)
		}
		return keyRef{alias: v, scope: scope}, nil
	}
	if !validKeyID(v) {
		return keyRef{}, errInvalidKeyID(v)
	}
	return keyRef{id: v, scope: scope}, nil
}

func validAccount(a string) bool {
	if len(a) != 12 {
		return false
	}
	for i := 0; i < len(a); i++ {
		if a[i] < '0' || a[i] > '9' {
			return false
		}
	}
	return true
}

// resolveKey finds the key a KeyId member names in the local state, following
// an alias when the operation accepts alias forms. An authorized caller of an
// operation that allows it may name another account's key by ARN.
func (s *Server) resolveKey(rc *reqCtx, v string, allowAlias bool) (fsm.Key, *apiError) {
	cross := rc.op != nil && rc.op.cross && rc.caller != nil && rc.caller.enforce
	ref, aerr := parseKeyID(rc.scope, v, allowAlias, cross)
	if aerr != nil {
		return fsm.Key{}, aerr
	}
	st := s.store.State()
	if st == nil {
		return fsm.Key{}, errInternal("The request could not be completed because the local state is not available; retry.")
	}
	id := ref.id
	if ref.alias != "" {
		a, ok := st.Alias(ref.scope, ref.alias)
		if !ok {
			return fsm.Key{}, fromFSM(fsm.ErrAliasNotFound(aliasARN(ref.scope, ref.alias)))
		}
		id = a.TargetKeyID
	}
	k, ok := st.Key(ref.scope, id)
	if !ok {
		return fsm.Key{}, fromFSM(fsm.ErrNotFound(keyARN(ref.scope, id)))
	}
	return k, nil
}

// targetKey parses a key id / key ARN member of a write and returns the key
// id, its ARN and the local copy of the key when this replica has it. A key
// this replica does not (yet) know is not refused here when the caller is not
// authorized (the FSM decides, authoritatively, so that a write right after a
// CreateKey through another node is not lost to replication lag); for an
// authorized caller the key's policy must be known, so such a key is
// NotFoundException (eventual consistency, as AWS documents it: retry). The
// write is authorized here (action) when the key is known.
func (s *Server) targetKey(rc *reqCtx, v, action string) (id, arn string, k fsm.Key, ok bool, aerr *apiError) {
	ref, aerr := parseKeyID(rc.scope, v, false, false)
	if aerr != nil {
		return "", "", fsm.Key{}, false, aerr
	}
	arn = keyARN(rc.scope, ref.id)
	if st := s.store.State(); st != nil {
		k, ok = st.Key(rc.scope, ref.id)
	}
	if ok && k.ARN != "" {
		arn = k.ARN
	}
	if rc.caller != nil && rc.caller.enforce {
		if !ok {
			return "", "", fsm.Key{}, false, fromFSM(fsm.ErrNotFound(arn))
		}
		if action != "" {
			if e := s.authorizeKeyAction(rc, action, &k, ""); e != nil {
				return "", "", fsm.Key{}, false, e
			}
		}
	}
	return ref.id, arn, k, ok, nil
}

// Alias names (kms-api.md §2.3): AliasNameType is 1–256 characters matching
// ^[a-zA-Z0-9:/_-]+$ (ValidationException); the name must start with
// "alias/" (ValidationException with AWS's text), must not be under
// "alias/aws/" (NotAuthorizedException, decision §9.6) and may contain only
// [a-zA-Z0-9/_-] after the prefix (InvalidAliasNameException).

const aliasNamePattern = `^[a-zA-Z0-9:/_-]+$`

func aliasModelChar(c byte) bool {
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		c == ':' || c == '/' || c == '_' || c == '-'
}

// checkAliasModel adds the model constraints of an AliasName member.
func checkAliasModel(v *validator, member string, name *string) {
	if name == nil {
		v.null(member)
		return
	}
	v.strLen(member, *name, 1, 256)
	for i := 0; i < len(*name); i++ {
		if !aliasModelChar((*name)[i]) {
			v.pattern(member, *name, aliasNamePattern)
			return
		}
	}
}

// checkAliasName applies the semantic alias-name rules (after the model
// constraints passed).
func checkAliasName(name string) *apiError {
	if !strings.HasPrefix(name, "alias/") {
		return errValidation(`Alias must start with the prefix "alias/". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html`)
	}
	if strings.HasPrefix(name, "alias/aws/") {
		return errf(codeNotAuthorized, "Alias names beginning with alias/aws/ are reserved for AWS managed keys: %s", name)
	}
	rest := name[len("alias/"):]
	if rest == "" {
		return errf(codeInvalidAliasName, "Alias name %s is not valid: a name is required after the alias/ prefix.", name)
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if c == ':' {
			return errf(codeInvalidAliasName, "Alias name %s is not valid: alias names can contain only alphanumeric characters, forward slashes (/), underscores (_), and dashes (-).", name)
		}
	}
	return nil
}
