// Package policy is keyraft's policy engine: the parts of the IAM policy
// language that AWS KMS uses (key policies and identity-based policies),
// compiled once and evaluated on every request. It depends on the standard
// library only and holds no state: a *Document is immutable and safe for
// concurrent use.
//
// # Parsing
//
// Parse (and ParseKeyPolicy / ParseIdentityPolicy, which add the Principal
// rule of each kind) reads Version ("2012-10-17", "2008-10-17" or absent),
// Id and Statement (an object or an array). A statement has Sid (unique in
// the policy when set), Effect (Allow|Deny), Principal, Action or NotAction,
// Resource or NotResource, and Condition. Every rejection is a
// *MalformedError whose Message the API returns as
// MalformedPolicyDocumentException. Rejected: text outside printable
// ASCII/Latin-1 plus TAB/LF/CR, and control characters written as JSON
// escapes; invalid JSON, duplicate members, trailing data, nesting deeper
// than 32; a document that is not an object; a missing Statement; unknown
// members at the top level or in a statement (names are case-sensitive);
// duplicate non-empty Sids; a missing or invalid Effect;
// both or neither of Action/NotAction and of Resource/NotResource; actions
// not of the form "*" or service:action; resources other than "*" or ARNs;
// invalid principals; NotPrincipal; unknown condition operators, values
// that do not suit their operator, duplicate operators or keys.
// An empty Statement array is accepted (it allows nothing). The messages
// MsgInvalidPrincipals, MsgNoPrincipal, MsgLockout, MsgPrincipalInIAM,
// MsgDuplicateSid, MsgNoActions and MsgNoResources are AWS's wording; the
// others are keyraft's. MaxKeyPolicyBytes is exported but not enforced:
// size is a LimitExceededException, the caller's check.
//
// Principal: "*", or {"AWS": v} with v "*", a 12-digit account id, an
// account root ARN arn:aws:iam::<acct>:root, an IAM user or role ARN, an STS
// assumed-role or federated-user ARN, or a list of those; {"Service": v}
// with dotted service names is accepted and stored but never matches a
// Caller. Anything else, wildcards inside ARNs, IAM groups, "Federated" and
// "CanonicalUser" are "Policy contains a statement with one or more invalid
// principals." NotPrincipal is rejected as unsupported (its AWS semantics
// with account principals are a well-known trap; a Deny statement with a
// condition on aws:PrincipalArn says the same thing clearly).
//
// # Matching
//
// Actions: '*' and '?' wildcards, case-insensitive. Unknown actions are
// accepted, as AWS does; Actions lists the ones keyraft knows. Resources and
// the Arn* operators: case-sensitive wildcards applied per ARN component (a
// wildcard does not cross a colon), except that the last component of a
// pattern takes the rest of the value and a component ending in '*' may
// swallow further components (AWS's documented Resource rule). StringLike:
// case-sensitive wildcards over the whole value. Policy variables (${key},
// ${key, 'default'}, ${*}, ${?}, ${$}) are substituted in resources and
// string/ARN condition values of Version 2012-10-17 policies; an
// unresolvable variable (key absent, or multi-valued) makes that value
// match nothing.
//
// Conditions: String(Not)Equals, String(Not)EqualsIgnoreCase,
// String(Not)Like, Numeric*, Date*, Bool, Arn(Not)Equals, Arn(Not)Like
// (ArnEquals is ArnLike, as in AWS), (Not)IpAddress, BinaryEquals and Null,
// each with the ForAnyValue:/ForAllValues: prefixes and the IfExists suffix
// (not Null). Operators and keys are case-insensitive; the request Context
// holds lowercased keys. A key absent from the context (or with no values)
// makes a positive operator false, a negated one (StringNotEquals,
// ArnNotLike, NotIpAddress, ...) true, any operator with IfExists true,
// ForAllValues true and ForAnyValue false (true with IfExists). With
// values: ForAnyValue holds when some value satisfies the operator,
// ForAllValues when every value does; a plain positive operator holds when
// some value matches some policy value and a plain negated operator when no
// value matches any policy value. Operators, keys and set prefixes are all
// matched case-insensitively; values per operator (StringEquals, StringLike
// and the Arn operators are case-sensitive).
//
// # Authorization
//
// Document.Evaluate is the policy language alone. EvaluateKMS is KMS
// authorization: explicit deny in the key policy or identity policy wins; a
// key policy statement naming the caller allows a same-account caller on its
// own; a statement naming the caller's account only delegates to the
// identity policy; a cross-account caller needs both. A nil identity policy
// means "administrator of its own account" (an implicit Allow kms:* on *),
// an empty one allows nothing. Result.WithGrant folds in grants;
// AccessDeniedMessage renders AWS's AccessDeniedException text; CheckLockout
// is the PutKeyPolicy/CreateKey lockout safety check; DefaultKeyPolicy is
// AWS's default key policy.
//
// Evaluate does no parsing and no allocation for policies without policy
// variables.
package policy
