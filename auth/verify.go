package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"net/textproto"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	algorithm      = "AWS4-HMAC-SHA256"
	terminator     = "aws4_request"
	amzDateLayout  = "20060102T150405Z"
	defaultService = "kms"
	defaultSkew    = 15 * time.Minute
	// maxEcho bounds how much of a client's Authorization header is quoted
	// back in an error message.
	maxEcho = 512
)

// VerifierOptions configures a Verifier.
type VerifierOptions struct {
	// Service is the signing name the credential scope must carry
	// (default "kms").
	Service string
	// MaxSkew is how far the signing time may be from Now in either
	// direction (default 15 minutes, AWS's value).
	MaxSkew time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Verifier checks AWS Signature Version 4 (header form) on incoming
// requests against a fixed set of Credentials. It is safe for concurrent use.
type Verifier struct {
	creds   *Credentials
	service string
	skew    time.Duration
	now     func() time.Time
	cache   keyCache
	// derivations counts signing-key derivations (cache misses); tests use it.
	derivations atomic.Int64
}

// NewVerifier returns a Verifier for creds.
func NewVerifier(creds *Credentials, opts VerifierOptions) *Verifier {
	v := &Verifier{creds: creds, service: opts.Service, skew: opts.MaxSkew, now: opts.Now}
	if v.service == "" {
		v.service = defaultService
	}
	if v.skew <= 0 {
		v.skew = defaultSkew
	}
	if v.now == nil {
		v.now = time.Now
	}
	v.cache.init()
	return v
}

// Identity is the authenticated caller of a request.
type Identity struct {
	Principal *Principal
	// Region is the region of the SigV4 credential scope: the region the
	// client addressed.
	Region      string
	AccessKeyID string
	// Time is the signing time of the request (X-Amz-Date or Date).
	Time time.Time
}

// authHeader is a parsed Authorization header; all strings are substrings of
// the header value.
type authHeader struct {
	raw           string
	credential    string
	accessKeyID   string
	date          string
	region        string
	service       string
	term          string
	signedHeaders string
	signature     string
	hasCred       bool
	hasSigned     bool
	hasSignature  bool
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// Verify authenticates r, whose complete body the caller has already read
// into body. It returns the caller's identity, or an *Error (as error) with
// the AWS error code, message and HTTP status to answer with.
//
// Only the header form of SigV4 (Authorization: AWS4-HMAC-SHA256 ...) is
// accepted; query-string (presigned URL) authentication is refused, as no KMS
// SDK uses it.
func (v *Verifier) Verify(r *http.Request, body []byte) (*Identity, error) {
	id, err := v.verify(r, body)
	if err != nil {
		return nil, err
	}
	return id, nil
}

// verify returns a typed *Error so that Verify never returns a non-nil error
// interface holding a nil pointer.
func (v *Verifier) verify(r *http.Request, body []byte) (*Identity, *Error) {
	if r.URL != nil && r.URL.RawQuery != "" && isPresigned(r.URL.RawQuery) {
		return nil, errIncomplete("Query-string (presigned URL) authentication is not supported by this service; " +
			"sign the request with an 'Authorization: AWS4-HMAC-SHA256 ...' header instead.")
	}
	authValues := r.Header["Authorization"]
	if len(authValues) == 0 || authValues[0] == "" {
		return nil, newError(CodeMissingAuthenticationToken, msgMissingAuthToken)
	}
	if len(authValues) > 1 {
		return nil, errIncomplete("The request must carry exactly one Authorization header.")
	}

	// Date: X-Amz-Date, or Date when X-Amz-Date is absent.
	dateValue, fromAmzDate := "", false
	if vs := r.Header["X-Amz-Date"]; len(vs) > 0 {
		dateValue, fromAmzDate = vs[0], true
	} else if vs := r.Header["Date"]; len(vs) > 0 {
		dateValue = vs[0]
	}

	ah, aerr := parseAuthorization(authValues[0], dateValue != "")
	if aerr != nil {
		return nil, aerr
	}
	if aerr := v.checkScope(&ah); aerr != nil {
		return nil, aerr
	}

	var amzDate [16]byte
	t, ok := parseAmzDate(dateValue)
	if !ok && !fromAmzDate {
		t, ok = parseHTTPDate(dateValue)
	}
	if !ok {
		return nil, errIncomplete("Date must be in ISO-8601 'basic format'. Got '" + echo(dateValue) +
			"'. See http://en.wikipedia.org/wiki/ISO_8601")
	}
	t.AppendFormat(amzDate[:0], amzDateLayout)
	if ah.date != string(amzDate[:8]) {
		return nil, errInvalidSignature("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '" +
			echo(ah.date) + "' != '" + string(amzDate[:8]) + "', from '" + string(amzDate[:]) + "'.")
	}

	if !listHas(ah.signedHeaders, "host") {
		return nil, errIncomplete("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
	}

	p, ok := v.creds.Lookup(ah.accessKeyID)
	if !ok {
		return nil, errUnrecognized()
	}

	// Session token.
	var token string
	if vs := r.Header["X-Amz-Security-Token"]; len(vs) > 0 {
		token = vs[0]
	}
	switch {
	case p.SessionToken == "" && token != "":
		return nil, errUnrecognized()
	case p.SessionToken != "" && (token == "" || subtle.ConstantTimeCompare([]byte(token), []byte(p.SessionToken)) != 1):
		return nil, errUnrecognized()
	case p.SessionToken != "" && !listHas(ah.signedHeaders, "x-amz-security-token"):
		return nil, errIncomplete("'X-Amz-Security-Token' must be a 'SignedHeader' in the AWS Authorization.")
	}

	// Clock skew.
	now := v.now()
	if d := now.Sub(t); d > v.skew {
		return nil, errInvalidSignature("Signature expired: " + string(amzDate[:]) + " is now earlier than " +
			fmtAmz(now.Add(-v.skew)) + " (" + fmtAmz(now) + " - " + fmtSkew(v.skew) + ".)")
	} else if -d > v.skew {
		return nil, errInvalidSignature("Signature not yet current: " + string(amzDate[:]) + " is still later than " +
			fmtAmz(now.Add(v.skew)) + " (" + fmtAmz(now) + " + " + fmtSkew(v.skew) + ".)")
	}

	// Payload hash: the body's SHA-256, which X-Amz-Content-Sha256 (if sent)
	// must equal: KMS has no use for unsigned or streaming payloads.
	var bodyHash [64]byte
	sum := sha256.Sum256(body)
	hex.Encode(bodyHash[:], sum[:])
	payloadHash := bodyHash[:]
	if vs := r.Header["X-Amz-Content-Sha256"]; len(vs) > 0 {
		if !strings.EqualFold(vs[0], string(bodyHash[:])) {
			return nil, errInvalidSignature("The provided 'x-amz-content-sha256' header does not match what was computed.")
		}
		payloadHash = []byte(vs[0])
	}

	var given [sha256.Size]byte
	if len(ah.signature) != 2*sha256.Size {
		return nil, errInvalidSignature(msgSignatureInvalid)
	}
	if _, err := hex.Decode(given[:], []byte(ah.signature)); err != nil {
		return nil, errInvalidSignature(msgSignatureInvalid)
	}

	bp := bufPool.Get().(*[]byte)
	buf := (*bp)[:0]

	// Canonical request.
	buf = append(buf, r.Method...)
	buf = append(buf, '\n')
	buf = appendCanonicalURI(buf, r.URL)
	buf = append(buf, '\n')
	if r.URL != nil && r.URL.RawQuery != "" {
		buf = appendCanonicalQuery(buf, r.URL.RawQuery)
	}
	buf = append(buf, '\n')
	buf = appendCanonicalHeaders(buf, r, ah.signedHeaders)
	buf = append(buf, '\n')
	buf = append(buf, ah.signedHeaders...)
	buf = append(buf, '\n')
	buf = append(buf, payloadHash...)
	crHash := sha256.Sum256(buf)

	// String to sign, prefixed by the HMAC inner pad block.
	key, fresh := v.signingKey(p.SecretAccessKey, ah.date, ah.region)
	buf = append(buf[:0], key.ipad[:]...)
	buf = append(buf, algorithm...)
	buf = append(buf, '\n')
	buf = append(buf, amzDate[:]...)
	buf = append(buf, '\n')
	buf = append(buf, ah.date...)
	buf = append(buf, '/')
	buf = append(buf, ah.region...)
	buf = append(buf, '/')
	buf = append(buf, ah.service...)
	buf = append(buf, '/')
	buf = append(buf, terminator...)
	buf = append(buf, '\n')
	buf = hex.AppendEncode(buf, crHash[:])
	inner := sha256.Sum256(buf)
	var outerMsg [sha256.BlockSize + sha256.Size]byte
	copy(outerMsg[:], key.opad[:])
	copy(outerMsg[sha256.BlockSize:], inner[:])
	want := sha256.Sum256(outerMsg[:])

	if cap(buf) <= 64<<10 { // do not keep the buffer of a freak request
		*bp = buf
		bufPool.Put(bp)
	}

	if !hmac.Equal(want[:], given[:]) {
		return nil, errInvalidSignature(msgSignatureInvalid)
	}
	if fresh {
		v.cache.put(key) // only keys proven by a valid signature enter the cache
	}
	return &Identity{Principal: p, Region: ah.region, AccessKeyID: p.AccessKeyID, Time: t}, nil
}

// parseAuthorization splits an Authorization header the way AWS does:
// components separated by commas and/or spaces, each key=value.
func parseAuthorization(h string, haveDate bool) (authHeader, *Error) {
	ah := authHeader{raw: h}
	rest, ok := strings.CutPrefix(h, algorithm)
	if !ok || (rest != "" && rest[0] != ' ' && rest[0] != ',') {
		alg, _, _ := strings.Cut(h, " ")
		if strings.HasPrefix(alg, "AWS") && !strings.Contains(alg, "=") {
			return ah, errIncomplete("Unsupported AWS 'algorithm': '" + echo(alg) + "'; this service accepts only " +
				algorithm + " (Signature Version 4).")
		}
		// Not SigV4 at all: report every part as missing, as AWS does.
		return ah, errIncomplete(missingParts(false, false, false, haveDate) + " Authorization=" + echo(h))
	}
	for rest != "" {
		i := 0
		for i < len(rest) && (rest[i] == ' ' || rest[i] == ',' || rest[i] == '\t') {
			i++
		}
		rest = rest[i:]
		if rest == "" {
			break
		}
		j := strings.IndexAny(rest, ", \t")
		var part string
		if j < 0 {
			part, rest = rest, ""
		} else {
			part, rest = rest[:j], rest[j:]
		}
		k, val, ok := strings.Cut(part, "=")
		if !ok {
			return ah, errIncomplete("'" + echo(part) + "' not a valid key=value pair (missing equal-sign) in Authorization header: '" +
				echo(h) + "'.")
		}
		switch k {
		case "Credential":
			if !ah.hasCred {
				ah.credential, ah.hasCred = val, true
			}
		case "SignedHeaders":
			if !ah.hasSigned {
				ah.signedHeaders, ah.hasSigned = val, true
			}
		case "Signature":
			if !ah.hasSignature {
				ah.signature, ah.hasSignature = val, true
			}
		}
	}
	if !ah.hasCred || !ah.hasSigned || !ah.hasSignature || !haveDate {
		return ah, errIncomplete(missingParts(ah.hasCred, ah.hasSigned, ah.hasSignature, haveDate) + " Authorization=" + echo(h))
	}
	// Credential = AKID/date/region/service/aws4_request
	parts := [5]string{}
	c := ah.credential
	for n := 0; n < 5; n++ {
		if n == 4 {
			if strings.IndexByte(c, '/') >= 0 {
				return ah, errCredentialShape(ah.credential)
			}
			parts[n] = c
			break
		}
		el, more, ok := strings.Cut(c, "/")
		if !ok {
			return ah, errCredentialShape(ah.credential)
		}
		parts[n], c = el, more
	}
	if parts[0] == "" {
		return ah, errCredentialShape(ah.credential)
	}
	ah.accessKeyID, ah.date, ah.region, ah.service, ah.term = parts[0], parts[1], parts[2], parts[3], parts[4]
	return ah, nil
}

func errCredentialShape(cred string) *Error {
	return errIncomplete("Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '" +
		echo(cred) + "'")
}

func missingParts(cred, signed, sig, date bool) string {
	var b strings.Builder
	add := func(s string) {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s)
	}
	if !cred {
		add("Authorization header requires 'Credential' parameter.")
	}
	if !sig {
		add("Authorization header requires 'Signature' parameter.")
	}
	if !signed {
		add("Authorization header requires 'SignedHeaders' parameter.")
	}
	if !date {
		add("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
	}
	return b.String()
}

func (v *Verifier) checkScope(ah *authHeader) *Error {
	if ah.term != terminator {
		return errInvalidSignature("Credential should be scoped with a valid terminator: '" + terminator + "', not '" +
			echo(ah.term) + "'.")
	}
	if ah.service != v.service {
		return errInvalidSignature("Credential should be scoped to correct service: '" + v.service + "'.")
	}
	if !ValidRegion(ah.region) {
		return errInvalidSignature("Credential should be scoped to a valid region, not '" + echo(ah.region) + "'.")
	}
	return nil
}

// ValidRegion reports whether r looks like an AWS region name (1-32
// characters of a-z, 0-9 and '-'), the rule applied to credential scopes.
func ValidRegion(r string) bool {
	if len(r) == 0 || len(r) > 32 {
		return false
	}
	for i := 0; i < len(r); i++ {
		c := r[i]
		if !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-') {
			return false
		}
	}
	return true
}

// isPresigned reports whether a raw query carries SigV4 query authentication.
func isPresigned(rawQuery string) bool {
	if !strings.Contains(rawQuery, "X-Amz-") && !strings.Contains(rawQuery, "x-amz-") {
		return false
	}
	q, _ := url.ParseQuery(rawQuery)
	for k := range q {
		switch strings.ToLower(k) {
		case "x-amz-signature", "x-amz-algorithm", "x-amz-credential":
			return true
		}
	}
	return false
}

// listHas reports whether the ';'-separated list contains name.
func listHas(list, name string) bool {
	for list != "" {
		var el string
		el, list, _ = strings.Cut(list, ";")
		if el == name {
			return true
		}
	}
	return false
}

// parseAmzDate parses YYYYMMDD'T'HHMMSS'Z' without allocating.
func parseAmzDate(s string) (time.Time, bool) {
	if len(s) != 16 || s[8] != 'T' || s[15] != 'Z' {
		return time.Time{}, false
	}
	num := func(a, b int) (int, bool) {
		n := 0
		for i := a; i < b; i++ {
			c := s[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	y, ok1 := num(0, 4)
	mo, ok2 := num(4, 6)
	d, ok3 := num(6, 8)
	h, ok4 := num(9, 11)
	mi, ok5 := num(11, 13)
	se, ok6 := num(13, 15)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 59 {
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(mo), d, h, mi, se, 0, time.UTC)
	if t.Day() != d { // e.g. February 30th
		return time.Time{}, false
	}
	return t, true
}

// parseHTTPDate parses a Date header (RFC 1123 and the other HTTP forms).
func parseHTTPDate(s string) (time.Time, bool) {
	t, err := http.ParseTime(s)
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC(), true
}

func fmtAmz(t time.Time) string { return t.UTC().Format(amzDateLayout) }

func fmtSkew(d time.Duration) string {
	if d%time.Minute == 0 {
		return strconv.FormatInt(int64(d/time.Minute), 10) + " min"
	}
	return d.String()
}

// echo bounds client-supplied text quoted in an error message.
func echo(s string) string {
	if len(s) > maxEcho {
		return s[:maxEcho] + "..."
	}
	return s
}

// appendCanonicalURI appends the URI-encoded escaped path ("/" when empty):
// SigV4 for services other than S3 encodes the already-escaped path once more.
func appendCanonicalURI(buf []byte, u *url.URL) []byte {
	path := "/"
	if u != nil {
		if u.Opaque != "" {
			path = opaquePath(u.Opaque)
		} else if p := u.EscapedPath(); p != "" {
			path = p
		}
	}
	for i := 0; i < len(path); i++ {
		c := path[i]
		if unreserved(c) || c == '/' {
			buf = append(buf, c)
		} else {
			buf = append(buf, '%', upperHex[c>>4], upperHex[c&15])
		}
	}
	return buf
}

func opaquePath(opaque string) string {
	if i := strings.IndexByte(opaque, '?'); i >= 0 {
		opaque = opaque[:i]
	}
	opaque = strings.TrimPrefix(opaque, "//")
	if i := strings.IndexByte(opaque, '/'); i >= 0 {
		return opaque[i:]
	}
	return "/"
}

const upperHex = "0123456789ABCDEF"

func unreserved(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

func appendQueryEscape(buf []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) {
			buf = append(buf, c)
		} else {
			buf = append(buf, '%', upperHex[c>>4], upperHex[c&15])
		}
	}
	return buf
}

// appendCanonicalQuery appends the canonical query string: every name and
// value decoded, then strictly URI-encoded, pairs sorted by encoded name and
// then value.
func appendCanonicalQuery(buf []byte, raw string) []byte {
	type pair struct{ k, v string }
	var pairs []pair
	for raw != "" {
		var part string
		part, raw, _ = strings.Cut(raw, "&")
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		if dk, err := url.QueryUnescape(k); err == nil {
			k = dk
		}
		if dv, err := url.QueryUnescape(v); err == nil {
			v = dv
		}
		pairs = append(pairs, pair{string(appendQueryEscape(nil, k)), string(appendQueryEscape(nil, v))})
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	for i, p := range pairs {
		if i > 0 {
			buf = append(buf, '&')
		}
		buf = append(buf, p.k...)
		buf = append(buf, '=')
		buf = append(buf, p.v...)
	}
	return buf
}

// appendCanonicalHeaders appends one "name:value\n" line per name of the
// signed-header list, in its order, with the values the request carries.
func appendCanonicalHeaders(buf []byte, r *http.Request, signed string) []byte {
	keys := keysUnknown
	for signed != "" {
		var name string
		name, signed, _ = strings.Cut(signed, ";")
		buf = append(buf, name...)
		buf = append(buf, ':')
		switch {
		case name == "host":
			host := r.Host
			if host == "" && r.URL != nil {
				host = r.URL.Host
			}
			buf = appendTrimmed(buf, host)
		default:
			values := headerValues(r.Header, name, &keys)
			if values == nil && name == "content-length" && r.ContentLength > 0 {
				buf = strconv.AppendInt(buf, r.ContentLength, 10)
			}
			for i, v := range values {
				if i > 0 {
					buf = append(buf, ',')
				}
				buf = appendTrimmed(buf, v)
			}
		}
		buf = append(buf, '\n')
	}
	return buf
}

// appendTrimmed appends v without leading and trailing spaces and with every
// inner run of spaces collapsed to one.
func appendTrimmed(buf []byte, v string) []byte {
	i, j := 0, len(v)
	for i < j && (v[i] == ' ' || v[i] == '\t') {
		i++
	}
	for j > i && (v[j-1] == ' ' || v[j-1] == '\t') {
		j--
	}
	space := false
	for k := i; k < j; k++ {
		c := v[k]
		if c == ' ' {
			if space {
				continue
			}
			space = true
		} else {
			space = false
		}
		buf = append(buf, c)
	}
	return buf
}

// Whether a header map has only canonical keys, found out on the first miss.
const (
	keysUnknown = iota
	keysCanonical
	keysMixed
)

// headerValues looks name (any case) up in h without allocating when h is
// keyed canonically, as net/http servers key it. Maps built by hand with
// other keys are searched case-insensitively; *keys remembers per request
// whether that search can be skipped, so a long SignedHeaders list of absent
// names costs one pass over the headers, not one per name.
func headerValues(h http.Header, name string, keys *int) []string {
	var kb [64]byte
	if len(name) <= len(kb) {
		upper := true
		for i := 0; i < len(name); i++ {
			c := name[i]
			if upper && c >= 'a' && c <= 'z' {
				c -= 'a' - 'A'
			} else if !upper && c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			kb[i] = c
			upper = c == '-'
		}
		if vs, ok := h[string(kb[:len(name)])]; ok {
			return vs
		}
	}
	if *keys == keysUnknown {
		*keys = keysCanonical
		for k := range h {
			if textproto.CanonicalMIMEHeaderKey(k) != k {
				*keys = keysMixed
				break
			}
		}
	}
	if *keys == keysCanonical && len(name) <= len(kb) {
		return nil
	}
	for k, vs := range h {
		if strings.EqualFold(k, name) {
			return vs
		}
	}
	return nil
}
