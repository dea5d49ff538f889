package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
)

// Principal is one IAM identity that may call the API: an access key pair
// (optionally with a session token, as temporary credentials have), the
// account it belongs to, its IAM ARN and, optionally, its identity-based
// policy.
//
// A Principal returned by Credentials or Verify is shared: treat it as
// read-only.
type Principal struct {
	AccessKeyID     string
	SecretAccessKey string
	// SessionToken, when set, must accompany every request signed with this
	// key (X-Amz-Security-Token, signed); when empty, a request carrying a
	// token is refused.
	SessionToken string
	// AccountID is the 12-digit AWS account of the principal.
	AccountID string
	// ARN is arn:aws:iam::<AccountID>:user/<path/name> or :role/<path/name>.
	ARN string
	// IdentityPolicy is the principal's identity-based IAM policy document.
	// nil means "no policy configured": the principal is an administrator of
	// its own account. A present document grants exactly what its statements
	// allow ({} or an empty Statement list grants nothing).
	IdentityPolicy json.RawMessage
}

// IsAdministrator reports whether the principal has no identity policy, which
// keyraft treats as full access to its own account's resources.
func (p *Principal) IsAdministrator() bool { return p.IdentityPolicy == nil }

// String describes the principal without its secrets.
func (p Principal) String() string {
	return p.ARN + " (access key " + p.AccessKeyID + ")"
}

// GoString keeps %#v from printing the secret access key or session token.
func (p Principal) GoString() string {
	return "auth.Principal{AccessKeyID:" + strconv.Quote(p.AccessKeyID) +
		", AccountID:" + strconv.Quote(p.AccountID) + ", ARN:" + strconv.Quote(p.ARN) +
		", SecretAccessKey:<redacted>, SessionToken:<redacted>}"
}

// LogValue keeps log/slog from logging the secrets.
func (p Principal) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("arn", p.ARN),
		slog.String("access_key_id", p.AccessKeyID),
		slog.String("account_id", p.AccountID),
	)
}

// Credentials is an immutable, validated set of principals indexed by access
// key id. It is safe for concurrent use.
type Credentials struct {
	principals []*Principal
	byKey      map[string]*Principal
}

// Lookup returns the principal owning accessKeyID.
func (c *Credentials) Lookup(accessKeyID string) (*Principal, bool) {
	if c == nil {
		return nil, false
	}
	p, ok := c.byKey[accessKeyID]
	return p, ok
}

// Principals returns the principals in file order (shared values: read-only).
func (c *Credentials) Principals() []*Principal {
	if c == nil {
		return nil
	}
	return append([]*Principal(nil), c.principals...)
}

// Len is the number of principals.
func (c *Credentials) Len() int {
	if c == nil {
		return 0
	}
	return len(c.principals)
}

// maxCredentialsFile bounds what LoadCredentials reads.
const maxCredentialsFile = 16 << 20

// LoadCredentials reads and validates a credentials file (format in the
// package documentation). Errors name the file, the principal's index and
// access key id and the offending field, but never a secret access key or a
// session token.
func LoadCredentials(path string) (*Credentials, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("credentials file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCredentialsFile+1))
	if err != nil {
		return nil, fmt.Errorf("credentials file %s: %w", path, err)
	}
	if len(data) > maxCredentialsFile {
		return nil, fmt.Errorf("credentials file %s: larger than %d bytes", path, maxCredentialsFile)
	}
	c, err := ParseCredentials(data)
	if err != nil {
		return nil, fmt.Errorf("credentials file %s: %w", path, err)
	}
	return c, nil
}

type credentialsFile struct {
	Principals []credentialsEntry `json:"principals"`
}

type credentialsEntry struct {
	AccessKeyID     string          `json:"access_key_id"`
	SecretAccessKey string          `json:"secret_access_key"`
	SessionToken    string          `json:"session_token"`
	AccountID       string          `json:"account_id"`
	ARN             string          `json:"arn"`
	IdentityPolicy  json.RawMessage `json:"identity_policy"`
}

// ParseCredentials parses and validates the JSON of a credentials file.
func ParseCredentials(data []byte) (*Credentials, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f credentialsFile
	if err := dec.Decode(&f); err != nil {
		return nil, jsonError(data, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("unexpected data after the top-level JSON object")
	}
	ps := make([]Principal, len(f.Principals))
	for i, e := range f.Principals {
		if e.IdentityPolicy != nil && bytes.Equal(bytes.TrimSpace(e.IdentityPolicy), []byte("null")) {
			return nil, fmt.Errorf("principals[%d] (access key %q): identity_policy is null; "+
				"omit the field for an administrator or give a policy document", i, e.AccessKeyID)
		}
		ps[i] = Principal{
			AccessKeyID:     e.AccessKeyID,
			SecretAccessKey: e.SecretAccessKey,
			SessionToken:    e.SessionToken,
			AccountID:       e.AccountID,
			ARN:             e.ARN,
			IdentityPolicy:  e.IdentityPolicy,
		}
	}
	return NewCredentials(ps)
}

// jsonError turns a decoding error into a message that cannot quote file
// content (a syntax error would otherwise show a character of a secret).
func jsonError(data []byte, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		line, col := position(data, syn.Offset-1) // Offset counts the bad byte
		return fmt.Errorf("invalid JSON at line %d, column %d", line, col)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "the top-level value"
		}
		return fmt.Errorf("%s has the wrong JSON type (want %s)", field, typ.Type)
	case errors.Is(err, io.EOF):
		return errors.New("empty file; want {\"principals\": [...]}")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("invalid JSON: unexpected end of file")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// The field name comes from the file but is a key, not a value.
		return fmt.Errorf("unknown field %s (allowed: principals; access_key_id, secret_access_key, "+
			"session_token, account_id, arn, identity_policy)", strings.TrimPrefix(err.Error(), "json: unknown field "))
	default:
		return errors.New("invalid JSON")
	}
}

func position(data []byte, off int64) (line, col int) {
	off = max(0, min(off, int64(len(data))))
	line, col = 1, 1
	for _, c := range data[:off] {
		if c == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return line, col
}

// NewCredentials validates principals (the same rules as LoadCredentials)
// and indexes them. The slice is copied.
func NewCredentials(principals []Principal) (*Credentials, error) {
	if len(principals) == 0 {
		return nil, errors.New("no principals configured; want {\"principals\": [{...}, ...]}")
	}
	c := &Credentials{
		principals: make([]*Principal, 0, len(principals)),
		byKey:      make(map[string]*Principal, len(principals)),
	}
	index := make(map[string]int, len(principals))
	byARN := make(map[string]int, len(principals))
	for i := range principals {
		p := principals[i] // copy
		if err := validatePrincipal(&p); err != nil {
			if p.AccessKeyID != "" && validAccessKeyID(p.AccessKeyID) {
				return nil, fmt.Errorf("principals[%d] (access key %q): %w", i, p.AccessKeyID, err)
			}
			return nil, fmt.Errorf("principals[%d]: %w", i, err)
		}
		if j, dup := index[p.AccessKeyID]; dup {
			return nil, fmt.Errorf("principals[%d]: access_key_id %q is already used by principals[%d]; access keys must be unique",
				i, p.AccessKeyID, j)
		}
		if j, same := byARN[p.ARN]; same && !bytes.Equal(p.IdentityPolicy, c.principals[j].IdentityPolicy) {
			return nil, fmt.Errorf("principals[%d] (access key %q): arn %s is also principals[%d] with a different identity_policy; "+
				"access keys of one identity must share its policy", i, p.AccessKeyID, p.ARN, j)
		}
		index[p.AccessKeyID] = i
		if _, ok := byARN[p.ARN]; !ok {
			byARN[p.ARN] = i
		}
		pp := &p
		c.principals = append(c.principals, pp)
		c.byKey[p.AccessKeyID] = pp
	}
	return c, nil
}

// validatePrincipal checks p and normalises its identity policy (compacted
// copy). Its errors never contain the secret or the session token.
func validatePrincipal(p *Principal) error {
	switch {
	case p.AccessKeyID == "":
		return errors.New("access_key_id is missing")
	case !validAccessKeyID(p.AccessKeyID):
		return errors.New("access_key_id must be 1-128 characters of A-Z, a-z, 0-9, '-', '_' or '.'")
	case p.SecretAccessKey == "":
		return errors.New("secret_access_key is missing")
	case len(p.SecretAccessKey) > 256 || !printableASCII(p.SecretAccessKey, false):
		return errors.New("secret_access_key must be at most 256 printable ASCII characters (value not shown)")
	case len(p.SessionToken) > 16384 || !printableASCII(p.SessionToken, true):
		return errors.New("session_token must be at most 16384 printable ASCII characters without spaces (value not shown)")
	case p.AccountID == "":
		return errors.New("account_id is missing")
	case !validAccountID(p.AccountID):
		return fmt.Errorf("account_id %q must be exactly 12 digits", p.AccountID)
	case p.ARN == "":
		return errors.New("arn is missing")
	}
	account, err := parseIAMARN(p.ARN)
	if err != nil {
		return fmt.Errorf("arn %q: %w", p.ARN, err)
	}
	if account != p.AccountID {
		return fmt.Errorf("arn %q belongs to account %s but account_id is %s", p.ARN, account, p.AccountID)
	}
	if p.IdentityPolicy != nil {
		pol, err := checkPolicy(p.IdentityPolicy)
		if err != nil {
			return fmt.Errorf("identity_policy: %w", err)
		}
		p.IdentityPolicy = pol
	}
	return nil
}

func validAccessKeyID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func printableASCII(s string, noSpace bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || (noSpace && c == ' ') {
			return false
		}
	}
	return true
}

func validAccountID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// parseIAMARN validates arn:aws:iam::<account>:user/<path/name> or
// :role/<path/name> and returns the account.
func parseIAMARN(arn string) (string, error) {
	const prefix = "arn:aws:iam::"
	if !strings.HasPrefix(arn, prefix) {
		return "", errors.New("must start with arn:aws:iam:: (an IAM user or role ARN)")
	}
	account, resource, ok := strings.Cut(arn[len(prefix):], ":")
	if !ok {
		return "", errors.New("must be arn:aws:iam::<account-id>:user/<name> or arn:aws:iam::<account-id>:role/<name>")
	}
	if !validAccountID(account) {
		return "", errors.New("the account id in the ARN must be exactly 12 digits")
	}
	kind, path, ok := strings.Cut(resource, "/")
	if !ok || (kind != "user" && kind != "role") {
		return "", errors.New("the resource must be user/<name> or role/<name>")
	}
	if len(path) > 512+64 {
		return "", errors.New("the user or role path is too long")
	}
	segs := strings.Split(path, "/")
	for i, seg := range segs {
		if seg == "" {
			return "", errors.New("the user or role name (and each path element) must not be empty")
		}
		if i == len(segs)-1 && len(seg) > 64 {
			return "", errors.New("the user or role name must be at most 64 characters")
		}
		for j := 0; j < len(seg); j++ {
			c := seg[j]
			if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("+=,.@_-", c) >= 0) {
				return "", fmt.Errorf("invalid character %q in the user or role name (allowed: letters, digits and +=,.@_-)", c)
			}
		}
	}
	return account, nil
}

// checkPolicy accepts a JSON object whose Statement, if present, is an
// object or an array and whose Version, if present, is a string; it returns
// a compacted copy.
func checkPolicy(raw json.RawMessage) (json.RawMessage, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil || doc == nil {
		return nil, errors.New("must be a JSON object (a policy document)")
	}
	if st, ok := doc["Statement"]; ok {
		st = bytes.TrimSpace(st)
		if len(st) == 0 || (st[0] != '[' && st[0] != '{') {
			return nil, errors.New("Statement must be a statement object or an array of statements")
		}
	}
	if v, ok := doc["Version"]; ok {
		var s string
		if json.Unmarshal(v, &s) != nil {
			return nil, errors.New("Version must be a string such as \"2012-10-17\"")
		}
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, errors.New("must be valid JSON")
	}
	return json.RawMessage(buf.Bytes()), nil
}
