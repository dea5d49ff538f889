package api

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// decodeBody decodes the JSON object body into v (a pointer to a request
// struct). An empty body is an empty object. Unknown members are ignored, as
// AWS ignores them. Anything that is not a JSON object of the right member
// types is a SerializationException.
func decodeBody(body []byte, v any) *apiError {
	i := 0
	for i < len(body) && isJSONSpace(body[i]) {
		i++
	}
	if i == len(body) {
		return nil
	}
	if body[i] != '{' {
		return errSerialization("The request body must be a JSON object (it starts with " + describeJSONStart(body[i]) + ").")
	}
	err := json.Unmarshal(body, v)
	if err == nil {
		return nil
	}
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var b64 base64.CorruptInputError
	switch {
	case errors.As(err, &syn):
		return errSerialization(fmt.Sprintf("The request body is not valid JSON: %s (at byte offset %d).", syn.Error(), syn.Offset))
	case errors.As(err, &typ):
		if typ.Field == "" {
			return errSerialization(fmt.Sprintf("The request body must be a JSON object, not %s.", typ.Value))
		}
		return errSerialization(fmt.Sprintf("Unexpected JSON %s for member '%s': expected %s.",
			typ.Value, typ.Field, describeGoType(typ.Type)))
	case errors.As(err, &b64):
		if name := badBlobMember(body, v); name != "" {
			return errSerialization(fmt.Sprintf("Member '%s' is not valid base64: %s.", name, b64.Error()))
		}
		return errSerialization(fmt.Sprintf("A blob member is not valid base64: %s.", b64.Error()))
	}
	return errSerialization("The request body could not be decoded: " + err.Error() + ".")
}

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func describeJSONStart(c byte) string {
	switch {
	case c == '[':
		return "an array"
	case c == '"':
		return "a string"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == 'n':
		return "null"
	case c == '-' || (c >= '0' && c <= '9'):
		return "a number"
	}
	return strconv.QuoteRune(rune(c))
}

func describeGoType(t reflect.Type) string {
	if t == nil {
		return "another type"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number (epoch seconds)"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return "a base64-encoded string"
		}
		return "a list"
	case reflect.Struct, reflect.Map:
		return "a structure"
	}
	return "another type"
}

// badBlobMember finds the top-level []byte member of v whose JSON string is
// not valid base64 (error path only).
func badBlobMember(body []byte, v any) string {
	t := reflect.TypeOf(v)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return ""
	}
	var raw map[string]json.RawMessage
	if json.Unmarshal(body, &raw) != nil {
		return ""
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Type.Kind() != reflect.Slice || f.Type.Elem().Kind() != reflect.Uint8 {
			continue
		}
		for _, k := range keys {
			if !strings.EqualFold(k, f.Name) {
				continue
			}
			var s string
			if json.Unmarshal(raw[k], &s) != nil {
				continue
			}
			if _, err := base64.StdEncoding.DecodeString(s); err != nil {
				return f.Name
			}
		}
	}
	return ""
}

// validator collects constraint violations in AWS's format (kms-api.md §1.5):
//
//	1 validation error detected: Value '<v>' at '<member>' failed to satisfy constraint: Member must <rule>
//
// It allocates only when a violation is found.
type validator struct {
	msgs []string
}

func (v *validator) add(value *string, member, rule string) {
	var b strings.Builder
	if value == nil {
		b.WriteString("Value at '")
	} else {
		b.WriteString("Value '")
		b.WriteString(*value)
		b.WriteString("' at '")
	}
	b.WriteString(member)
	b.WriteString("' failed to satisfy constraint: Member must ")
	b.WriteString(rule)
	v.msgs = append(v.msgs, b.String())
}

// null reports a missing required member.
func (v *validator) null(member string) {
	v.msgs = append(v.msgs, "Value null at '"+member+"' failed to satisfy constraint: Member must not be null")
}

// err returns the collected violations as one ValidationException, or nil.
func (v *validator) err() *apiError {
	switch len(v.msgs) {
	case 0:
		return nil
	case 1:
		return errValidation("1 validation error detected: " + v.msgs[0])
	}
	return errValidation(strconv.Itoa(len(v.msgs)) + " validation errors detected: " + strings.Join(v.msgs, "; "))
}

// strLen checks a string member's length in UTF-16 code units (AWS counts
// Java string length).
func (v *validator) strLen(member, s string, minLen, maxLen int) {
	n := utf16Len(s)
	if n < minLen {
		v.add(&s, member, "have length greater than or equal to "+strconv.Itoa(minLen))
	}
	if maxLen >= 0 && n > maxLen {
		v.add(&s, member, "have length less than or equal to "+strconv.Itoa(maxLen))
	}
}

// optStr checks an optional string member.
func (v *validator) optStr(member string, s *string, minLen, maxLen int) {
	if s != nil {
		v.strLen(member, *s, minLen, maxLen)
	}
}

// reqStr checks a required string member.
func (v *validator) reqStr(member string, s *string, minLen, maxLen int) {
	if s == nil {
		v.null(member)
		return
	}
	v.strLen(member, *s, minLen, maxLen)
}

// blob checks a blob member's length in bytes; the value is never echoed.
func (v *validator) blob(member string, b []byte, required bool, minLen, maxLen int) {
	if b == nil {
		if required {
			v.null(member)
		}
		return
	}
	if len(b) < minLen {
		v.add(nil, member, "have length greater than or equal to "+strconv.Itoa(minLen))
	}
	if len(b) > maxLen {
		v.add(nil, member, "have length less than or equal to "+strconv.Itoa(maxLen))
	}
}

// enum checks an enum member against its value set; setText is AWS's
// rendering of the set ("[A, B, C]").
func (v *validator) enum(member string, s *string, required bool, set []string, setText string) {
	if s == nil {
		if required {
			v.null(member)
		}
		return
	}
	for _, x := range set {
		if *s == x {
			return
		}
	}
	v.add(s, member, "satisfy enum value set: "+setText)
}

// intRange checks an integer member.
func (v *validator) intRange(member string, n *int64, minV, maxV int64) {
	if n == nil {
		return
	}
	s := strconv.FormatInt(*n, 10)
	if *n < minV {
		v.add(&s, member, "have value greater than or equal to "+strconv.FormatInt(minV, 10))
	}
	if *n > maxV {
		v.add(&s, member, "have value less than or equal to "+strconv.FormatInt(maxV, 10))
	}
}

// pattern records a pattern violation.
func (v *validator) pattern(member, s, re string) {
	v.add(&s, member, "satisfy regular expression pattern: "+re)
}

// grantTokens checks GrantTokens (0–10 items of 1–8192 characters).
func (v *validator) grantTokens(tokens []string) {
	if len(tokens) > 10 {
		s := "[" + strings.Join(tokens, ", ") + "]"
		v.add(&s, "grantTokens", "have length less than or equal to 10")
	}
	for i, t := range tokens {
		v.strLen("grantTokens."+strconv.Itoa(i+1)+".member", t, 1, 8192)
	}
}

// marker checks a pagination Marker (1–1024, [\u0020-\u00FF]*).
func (v *validator) marker(s *string) {
	if s == nil {
		return
	}
	v.strLen("marker", *s, 1, 1024)
	for _, r := range *s {
		if r < 0x20 || r > 0xff {
			v.pattern("marker", *s, `[\u0020-\u00FF]*`)
			return
		}
	}
}

func utf16Len(s string) int {
	n := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			n++
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		n += utf16RuneLen(r)
	}
	return n
}

func utf16RuneLen(r rune) int {
	if utf16.IsSurrogate(r) || r <= 0xffff {
		return 1
	}
	return 2
}

// Enum value sets and their AWS renderings.
var (
	macAlgorithms     = []string{"HMAC_SHA_224", "HMAC_SHA_256", "HMAC_SHA_384", "HMAC_SHA_512"}
	macAlgorithmsText = "[HMAC_SHA_384, HMAC_SHA_256, HMAC_SHA_224, HMAC_SHA_512]" // as AWS renders it

	keySpecs = []string{"RSA_2048", "RSA_3072", "RSA_4096", "ECC_NIST_P256", "ECC_NIST_P384",
		"ECC_NIST_P521", "ECC_SECG_P256K1", "SYMMETRIC_DEFAULT", "HMAC_224", "HMAC_256", "HMAC_384",
		"HMAC_512", "SM2", "ML_DSA_44", "ML_DSA_65", "ML_DSA_87", "ECC_NIST_EDWARDS25519"}
	keySpecsText = "[" + strings.Join(keySpecs, ", ") + "]"

	customerMasterKeySpecs = []string{"RSA_2048", "RSA_3072", "RSA_4096", "ECC_NIST_P256",
		"ECC_NIST_P384", "ECC_NIST_P521", "ECC_SECG_P256K1", "SYMMETRIC_DEFAULT", "HMAC_224",
		"HMAC_256", "HMAC_384", "HMAC_512", "SM2"}
	customerMasterKeySpecsText = "[" + strings.Join(customerMasterKeySpecs, ", ") + "]"

	keyUsages     = []string{"SIGN_VERIFY", "ENCRYPT_DECRYPT", "GENERATE_VERIFY_MAC", "KEY_AGREEMENT"}
	keyUsagesText = "[" + strings.Join(keyUsages, ", ") + "]"

	origins     = []string{"AWS_KMS", "EXTERNAL", "AWS_CLOUDHSM", "EXTERNAL_KEY_STORE"}
	originsText = "[" + strings.Join(origins, ", ") + "]"

	wrappingAlgorithms = []string{"RSAES_PKCS1_V1_5", "RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256",
		"RSA_AES_KEY_WRAP_SHA_1", "RSA_AES_KEY_WRAP_SHA_256", "SM2PKE"}
	wrappingAlgorithmsText = "[" + strings.Join(wrappingAlgorithms, ", ") + "]"

	wrappingKeySpecs     = []string{"RSA_2048", "RSA_3072", "RSA_4096", "SM2"}
	wrappingKeySpecsText = "[" + strings.Join(wrappingKeySpecs, ", ") + "]"

	expirationModels     = []string{"KEY_MATERIAL_EXPIRES", "KEY_MATERIAL_DOES_NOT_EXPIRE"}
	expirationModelsText = "[" + strings.Join(expirationModels, ", ") + "]"

	importTypes     = []string{"NEW_KEY_MATERIAL", "EXISTING_KEY_MATERIAL"}
	importTypesText = "[" + strings.Join(importTypes, ", ") + "]"
)
