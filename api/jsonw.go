package api

import (
	"strconv"
	"unicode/utf8"
)

// Small allocation-free JSON writers used by the hot path and by error
// answers. Everything else is encoded with encoding/json.

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string literal. Invalid UTF-8 is
// replaced by U+FFFD, as encoding/json does.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		// U+2028 and U+2029 are valid JSON but break JavaScript parsers.
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendError appends the AWS error body {"__type":...,"message":...}.
func appendError(b []byte, e *apiError) []byte {
	b = append(b, `{"__type":`...)
	b = appendJSONString(b, e.code)
	b = append(b, `,"message":`...)
	b = appendJSONString(b, e.msg)
	return append(b, '}')
}

// epochTime is a unix-nanosecond time that marshals as an AWS timestamp:
// epoch seconds as a JSON number with millisecond precision.
type epochTime int64

func (t epochTime) MarshalJSON() ([]byte, error) {
	return appendEpoch(nil, int64(t)), nil
}

// appendEpoch appends ns (unix nanoseconds) as epoch seconds with up to three
// fractional digits (trailing zeros dropped).
func appendEpoch(b []byte, ns int64) []byte {
	ms := ns / 1e6 // truncated toward zero
	if ms < 0 {
		b = append(b, '-')
		ms = -ms
	}
	sec, frac := ms/1000, ms%1000
	b = strconv.AppendInt(b, sec, 10)
	if frac == 0 {
		return b
	}
	digits := [3]byte{byte('0' + frac/100), byte('0' + frac/10%10), byte('0' + frac%10)}
	n := 3
	for n > 0 && digits[n-1] == '0' {
		n--
	}
	b = append(b, '.')
	return append(b, digits[:n]...)
}
