// Package api serves keyraft's AWS KMS-compatible wire protocol: the AWS JSON
// 1.1 protocol ("awsJson1_1", target prefix TrentService) over HTTP, for the
// HMAC-key subset of KMS that keyraft implements.
//
// A request is a POST to "/" whose X-Amz-Target header names the operation
// (e.g. "TrentService.GenerateMac") and whose body is a JSON object with the
// model's PascalCase member names. Answers carry Content-Type
// application/x-amz-json-1.1 and an x-amzn-RequestId header; errors are
// {"__type":"<ShapeName>","message":"..."} with HTTP 400 for every client
// error, 500 for KMSInternalException and KeyUnavailableException and 503 for
// DependencyTimeoutException (kms-api.md §9.1).
//
// The package validates requests exactly as AWS documents (constraint
// violations are ValidationException with AWS's "N validation error(s)
// detected: ..." message), resolves KeyId forms (key id, key ARN, alias name,
// alias ARN, depending on the operation), performs the cryptography through
// package engine and reads or changes state through a Store:
//
//   - reads (GenerateMac, VerifyMac, DescribeKey, List*, GetKeyPolicy, ...) are
//     answered from Store.State(), the local replica of the FSM, without a
//     round trip through Raft;
//   - writes are encoded with fsm.Encode and proposed with Store.Apply; the FSM
//     re-validates every transition against the state it meets and its
//     verdict (an fsm.Result) is turned into the AWS answer. The API layer
//     pre-checks the same rules on the local state first so that obviously
//     invalid requests never reach the log.
//
// Key material never leaves this package other than as GenerateRandom's
// Plaintext: it is generated or unwrapped here, sealed with the cluster's
// engine.Sealer (AAD = key ARN) before it is proposed, and never logged or
// echoed in an error. Validation errors omit the value of blob members.
//
// Every request is authenticated (Config.Auth), then counted against its
// request quota (Config.Quotas), then authorized inside its operation, after
// validation and key lookup and before the key-state checks (docs/auth.md):
//
//   - AuthSigV4: the signature is verified with package auth over the body as
//     read; the principal gives the account, the credential scope the
//     region. Failures are the verifier's AWS errors.
//   - AuthNone: nothing is verified; the region is the credential scope's
//     (Config.DefaultRegion for unsigned requests). A request whose access
//     key is in Config.Credentials acts as that principal and is authorized;
//     any other acts, unauthorized, as the administrator of
//     Config.AccountID.
//
// Authorization is policy.EvaluateKMS of the key's policy (parsed once per
// policy text and cached) and the caller's identity policy (parsed once, in
// New) for kms:<Operation> on the key ARN; CreateKey, ListKeys, ListAliases
// without KeyId and GenerateRandom are decided by the identity policy alone.
// DescribeKey and the cryptographic operations may name another account's
// key by key ARN or alias ARN, the grant operations by key ARN.
//
// After an implicit deny (never an explicit one), a grant of the key, or a
// grant token, may allow GenerateMac, VerifyMac, DescribeKey and CreateGrant
// (granttokens.go): a grant only once this node considers it effective
// (Config.GrantPropagationDelay, docs/consistency.md), a token, verified with
// the replicated cluster secret, at once on any node. The grant operations
// themselves are in grants.go.
package api
