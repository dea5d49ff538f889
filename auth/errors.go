package auth

import "net/http"

// Error codes (the "__type" of an AWS JSON error body) returned by Verify.
// See kms-api.md §9 decision 9.
const (
	// CodeMissingAuthenticationToken: the request carries no Authorization
	// header.
	CodeMissingAuthenticationToken = "MissingAuthenticationTokenException"
	// CodeIncompleteSignature: the Authorization header (or the date headers
	// it depends on) is malformed or incomplete.
	CodeIncompleteSignature = "IncompleteSignature"
	// CodeUnrecognizedClient: unknown access key, or a session token that
	// does not belong to it.
	CodeUnrecognizedClient = "UnrecognizedClientException"
	// CodeInvalidSignature: the signature does not match, the credential
	// scope is wrong, or the signing time is outside the allowed skew.
	CodeInvalidSignature = "InvalidSignatureException"
)

// AWS's texts for the common cases.
const (
	msgMissingAuthToken = "Request is missing Authentication Token"
	msgInvalidToken     = "The security token included in the request is invalid."
	msgSignatureInvalid = "The request signature we calculated does not match the signature you provided. " +
		"Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)

// Error is an authentication failure in the shape of an AWS error: Code is
// the error type ("__type"), Message the human-readable text ("message"),
// Status the HTTP status to answer with (always 400). No Error ever contains
// a secret access key, a session token or the signature the server expected.
type Error struct {
	Code    string
	Message string
	Status  int
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func newError(code, msg string) *Error {
	return &Error{Code: code, Message: msg, Status: http.StatusBadRequest}
}

func errIncomplete(msg string) *Error       { return newError(CodeIncompleteSignature, msg) }
func errInvalidSignature(msg string) *Error { return newError(CodeInvalidSignature, msg) }
func errUnrecognized() *Error               { return newError(CodeUnrecognizedClient, msgInvalidToken) }
