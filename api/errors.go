package api

import (
	"fmt"
	"net/http"

	"github.com/keyraft/keyraft/fsm"
)

// AWS error shape names used by this package.
const (
	codeDryRun               = "DryRunOperationException"
	codeIncompleteSignature  = "IncompleteSignature"
	codeInternal             = "KMSInternalException"
	codeInvalidAliasName     = "InvalidAliasNameException"
	codeInvalidCiphertext    = "InvalidCiphertextException"
	codeInvalidGrantID       = "InvalidGrantIdException"
	codeInvalidGrantToken    = "InvalidGrantTokenException"
	codeInvalidKeyUsage      = "InvalidKeyUsageException"
	codeInvalidMac           = "KMSInvalidMacException"
	codeInvalidMarker        = "InvalidMarkerException"
	codeKeyUnavailable       = "KeyUnavailableException"
	codeLimitExceeded        = "LimitExceededException"
	codeMalformedPolicy      = "MalformedPolicyDocumentException"
	codeNotAuthorized        = "NotAuthorizedException"
	codeNotFound             = "NotFoundException"
	codeSerialization        = "SerializationException"
	codeTag                  = "TagException"
	codeUnknownOperation     = "UnknownOperationException"
	codeUnsupportedOperation = "UnsupportedOperationException"
	codeValidation           = "ValidationException"
	codeDependencyTimeout    = "DependencyTimeoutException"
	codeMethodNotAllowed     = "MethodNotAllowedException"
)

// apiError is an AWS error answer: the bare shape name and the message.
type apiError struct {
	code string
	msg  string
	// httpStatus overrides the status derived from the code (auth errors
	// carry their own).
	httpStatus int
}

func (e *apiError) Error() string { return e.code + ": " + e.msg }

// status is the HTTP status of the answer (kms-api.md §9.1).
func (e *apiError) status() int {
	if e.httpStatus != 0 {
		return e.httpStatus
	}
	return statusForCode(e.code)
}

func statusForCode(code string) int {
	switch code {
	case codeInternal, codeKeyUnavailable:
		return http.StatusInternalServerError
	case codeDependencyTimeout:
		return http.StatusServiceUnavailable
	}
	return http.StatusBadRequest
}

func newErr(code, msg string) *apiError { return &apiError{code: code, msg: msg} }

func errf(code, format string, args ...any) *apiError {
	return &apiError{code: code, msg: fmt.Sprintf(format, args...)}
}

// fromFSM converts a refusal of the replicated state into its AWS answer.
func fromFSM(e *fsm.Error) *apiError {
	if e == nil {
		return nil
	}
	code := e.Code
	if code == "" {
		code = codeInternal
	}
	return &apiError{code: code, msg: e.Message}
}

func errInternal(msg string) *apiError { return newErr(codeInternal, msg) }

func errSerialization(msg string) *apiError { return newErr(codeSerialization, msg) }

func errValidation(msg string) *apiError { return newErr(codeValidation, msg) }

func errUnsupported(msg string) *apiError { return newErr(codeUnsupportedOperation, msg) }

// errInvalidKeyID is AWS's answer for a KeyId that is not a key id or key ARN
// (or an alias form where the operation takes none).
func errInvalidKeyID(v string) *apiError {
	return errf(codeNotFound, "Invalid keyId '%s'", v)
}

// errInvalidArnRegion is AWS's answer for an ARN of another region.
func errInvalidArnRegion(region string) *apiError {
	return errf(codeNotFound, "Invalid arn %s", region)
}

var errDryRun = newErr(codeDryRun, "The request would have succeeded, but the DryRun option is set.")

// errInvalidMac is KMSInvalidMacException; AWS sends it with an empty message.
var errInvalidMac = newErr(codeInvalidMac, "")
