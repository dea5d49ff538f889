// Package auth authenticates AWS KMS API requests: it holds the principals
// that may call keyraft (the -credentials file) and verifies AWS Signature
// Version 4 on each request the way AWS does, with AWS's error codes and
// messages. It depends on the standard library only.
//
// # Credentials file
//
// A JSON object with one member, "principals", a non-empty array:
//
//	{
//	  "principals": [
//	    {
//	      "access_key_id": "AKIAIOSFODNN7EXAMPLE",
//	      "secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
//	      "account_id": "111122223333",
//	      "arn": "arn:aws:iam::111122223333:user/alice"
//	    },
//	    {
//	      "access_key_id": "ASIAIOSFODNN7EXAMPLE",
//	      "secret_access_key": "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
//	      "session_token": "FwoGZXIvYXdzEXAMPLETOKEN",
//	      "account_id": "444455556666",
//	      "arn": "arn:aws:iam::444455556666:role/mac-signer",
//	      "identity_policy": {
//	        "Version": "2012-10-17",
//	        "Statement": [{"Effect": "Allow", "Action": ["kms:GenerateMac", "kms:VerifyMac"], "Resource": "*"}]
//	      }
//	    }
//	  ]
//	}
//
// Members of a principal:
//
//   - access_key_id (required): 1-128 characters of A-Z a-z 0-9 - _ . ;
//     unique across the file.
//   - secret_access_key (required): at most 256 printable ASCII characters.
//   - session_token (optional): when present, every request signed with this
//     key must send it as X-Amz-Security-Token and sign that header, as
//     temporary (STS) credentials do; when absent, a request that sends a
//     token is refused (UnrecognizedClientException).
//   - account_id (required): exactly 12 digits.
//   - arn (required): arn:aws:iam::<account_id>:user/<name> or
//     arn:aws:iam::<account_id>:role/<name> (an IAM path before the name is
//     allowed, e.g. user/ops/alice); its account must equal account_id.
//   - identity_policy (optional): the principal's identity-based IAM policy
//     document (a JSON object). Absent: the principal is an administrator of
//     its own account. Present: it may do exactly what the policy allows, so
//     {} or an empty Statement list allows nothing. null is rejected (omit
//     the member instead). Several access keys with the same arn must carry
//     the same policy.
//
// Unknown members, trailing data and malformed JSON are errors. Error
// messages name the principal by index and access key id and never contain
// a secret access key or a session token (not even a character of one).
// Keep the file readable only by keyraft: it holds secrets.
//
// # Signature verification
//
// Verifier.Verify accepts the header form of SigV4 as the AWS SDKs, the AWS
// CLI and boto3 send it:
//
//	Authorization: AWS4-HMAC-SHA256 Credential=AKID/20250101/us-east-1/kms/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=<64 hex>
//
// It rebuilds the canonical request from exactly the headers named in
// SignedHeaders (host from the request's Host), recomputes the signature with
// the principal's secret and compares in constant time. The signing time
// comes from X-Amz-Date (or Date) and must lie within MaxSkew (15 minutes) of
// the server clock; the region of the credential scope becomes
// Identity.Region. Derived signing keys are cached per (secret, date, region)
// in a small lock-free cache, so a verification costs a few SHA-256 blocks
// and no key derivation.
//
// Failures are *Error values with AWS's codes (kms-api.md §9 decision 9),
// all HTTP 400:
//
//	MissingAuthenticationTokenException  no Authorization header
//	IncompleteSignature                  malformed Authorization header, missing date,
//	                                     host or session token not signed, presigned URL
//	UnrecognizedClientException          unknown access key; wrong, missing or unexpected session token
//	InvalidSignatureException            signature mismatch; wrong service, region or terminator in
//	                                     the scope; scope date != request date; clock skew
//
// A signature-mismatch message never contains the expected signature or the
// canonical request. InvalidSignatureException with the response's Date
// header is what lets the AWS SDKs correct their clock and retry.
package auth
