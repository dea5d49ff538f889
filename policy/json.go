package policy

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
)

// A strict JSON reader for policy documents. encoding/json's map decoding
// silently keeps the last of duplicated members ({"Effect":"Deny","Effect":
// "Allow"}), which is unacceptable in an authorization language: the reader
// below keeps members in order, rejects duplicates and trailing data, and
// bounds nesting.

type jkind uint8

const (
	jString jkind = iota
	jNumber
	jBool
	jNull
	jObject
	jArray
)

type jmember struct {
	key string
	val *jval
}

type jval struct {
	kind jkind
	s    string // jString, jNumber (its literal text)
	b    bool   // jBool
	obj  []jmember
	arr  []*jval
}

const maxJSONDepth = 32

var errTrailingData = errors.New("trailing data after the policy document")

// decodeJSON reads exactly one JSON value from doc.
func decodeJSON(doc string) (*jval, error) {
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.UseNumber()
	v, err := readJSON(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errTrailingData
	}
	return v, nil
}

func readJSON(dec *json.Decoder, depth int) (*jval, error) {
	if depth > maxJSONDepth {
		return nil, errors.New("policy document nested too deeply")
	}
	tok, err := dec.Token()
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			v := &jval{kind: jObject}
			var seen map[string]bool // once the object is large
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, ok := kt.(string)
				if !ok {
					return nil, errors.New("object key is not a string")
				}
				switch {
				case seen != nil:
					if seen[k] {
						return nil, &dupKeyError{k}
					}
					seen[k] = true
				case len(v.obj) < 16:
					for _, m := range v.obj {
						if m.key == k {
							return nil, &dupKeyError{k}
						}
					}
				default:
					seen = make(map[string]bool, 2*len(v.obj))
					for _, m := range v.obj {
						seen[m.key] = true
					}
					if seen[k] {
						return nil, &dupKeyError{k}
					}
					seen[k] = true
				}
				mv, err := readJSON(dec, depth+1)
				if err != nil {
					return nil, err
				}
				v.obj = append(v.obj, jmember{k, mv})
			}
			if _, err := dec.Token(); err != nil { // '}'
				return nil, err
			}
			return v, nil
		case '[':
			v := &jval{kind: jArray}
			for dec.More() {
				ev, err := readJSON(dec, depth+1)
				if err != nil {
					return nil, err
				}
				v.arr = append(v.arr, ev)
			}
			if _, err := dec.Token(); err != nil { // ']'
				return nil, err
			}
			return v, nil
		}
		return nil, errors.New("unexpected delimiter")
	case string:
		return &jval{kind: jString, s: t}, nil
	case json.Number:
		return &jval{kind: jNumber, s: string(t)}, nil
	case bool:
		return &jval{kind: jBool, b: t}, nil
	case nil:
		return &jval{kind: jNull}, nil
	}
	return nil, errors.New("unexpected JSON token")
}

type dupKeyError struct{ key string }

func (e *dupKeyError) Error() string { return "duplicate member " + e.key }

// scalarString is the string form of a JSON scalar as IAM reads it:
// strings as they are, numbers by their literal text, booleans as
// "true"/"false". ok is false for null, objects and arrays.
func (v *jval) scalarString() (string, bool) {
	switch v.kind {
	case jString, jNumber:
		return v.s, true
	case jBool:
		if v.b {
			return "true", true
		}
		return "false", true
	}
	return "", false
}
