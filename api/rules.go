package api

import (
	"strconv"
	"strings"

	"github.com/keyraft/keyraft/engine"
	"github.com/keyraft/keyraft/fsm"
)

// Local pre-checks of state transitions use the fsm's exported rule
// functions (fsm.CheckOp and friends), so that the messages are the ones the
// FSM itself would return; the FSM re-checks every command against the state
// it meets, authoritatively.

// checkWriteState pre-checks a write on key k against the rules that
// replication lag cannot change (the key's origin and usage). The key-state
// table (kms-api.md §3) is left to the FSM on the leader: this node's replica
// may be behind, and a KMSInvalidStateException or DisabledException decided
// on a stale state is an answer the leader would not give, which makes the
// history of key-state changes non-linearizable. (The chaos suite's
// linearizability check found exactly that.)
func checkWriteState(op fsm.Op, k *fsm.Key) *apiError {
	e := fsm.CheckOp(op, k)
	if e == nil || e.Code == fsm.CodeInvalidState || e.Code == fsm.CodeDisabled {
		return nil
	}
	return fromFSM(e)
}

// errKeyUsage is AWS's answer for an operation the key's usage does not allow.
func errKeyUsage(k *fsm.Key, op string) *apiError {
	return errf(codeInvalidKeyUsage, "%s key usage is %s which is not valid for %s.", k.ARN, k.KeyUsage, op)
}

// macAlgorithmOf is the one MAC algorithm of an HMAC key spec.
func macAlgorithmOf(spec string) (string, bool) {
	return engine.MacAlgorithmForSpec(spec)
}

// Key policies.

const maxPolicyBytes = 32768

// policyPatternOK reports whether p matches PolicyType's pattern
// [\u0009\u000A\u000D\u0020-\u00FF]+.
func policyPatternOK(p string) bool {
	for _, r := range p {
		if r == '\t' || r == '\n' || r == '\r' || (r >= 0x20 && r <= 0xff) {
			continue
		}
		return false
	}
	return true
}

const policyPattern = `[\u0009\u000A\u000D\u0020-\u00FF]+`

// checkPolicyModel adds the model constraints of a Policy member.
func checkPolicyModel(v *validator, p *string, required bool) {
	if p == nil {
		if required {
			v.null("policy")
		}
		return
	}
	v.strLen("policy", *p, 1, 131072)
	if !policyPatternOK(*p) {
		v.pattern("policy", *p, policyPattern)
	}
}

// Tags.

const maxTagsPerKey = fsm.MaxTagsPerKey

type tagIn struct {
	TagKey   *string
	TagValue *string
}

type tagOut struct {
	TagKey   string `json:"TagKey"`
	TagValue string `json:"TagValue"`
}

// checkTagsModel adds the model constraints of a Tags member.
func checkTagsModel(v *validator, member string, tags []tagIn) {
	for i, t := range tags {
		p := member + "." + itoa(i+1) + ".member."
		v.reqStr(p+"tagKey", t.TagKey, 1, 128)
		v.reqStr(p+"tagValue", t.TagValue, 0, 256)
	}
}

// checkTagKeysModel adds the model constraints of UntagResource's TagKeys.
func checkTagKeysModel(v *validator, keys []string) {
	for i, k := range keys {
		v.strLen("tagKeys."+itoa(i+1)+".member", k, 1, 128)
	}
}

func errReservedTag() *apiError { return newErr(codeTag, "Tags beginning with aws: are reserved") }

func reservedTagKey(k string) bool {
	return len(k) >= 4 && strings.EqualFold(k[:4], "aws:")
}

// checkTags applies the TagException rules to tags that passed the model
// constraints, and converts them (sorted by key).
func checkTags(tags []tagIn) ([]fsm.Tag, *apiError) {
	out := make([]fsm.Tag, 0, len(tags))
	seen := make(map[string]struct{}, len(tags))
	for _, t := range tags {
		if reservedTagKey(*t.TagKey) {
			return nil, errReservedTag()
		}
		if _, dup := seen[*t.TagKey]; dup {
			return nil, newErr(codeTag, "Duplicate tag keys")
		}
		seen[*t.TagKey] = struct{}{}
		out = append(out, fsm.Tag{Key: *t.TagKey, Value: *t.TagValue})
	}
	sortTags(out)
	return out, nil
}

func sortTags(tags []fsm.Tag) {
	// insertion sort: at most a few dozen tags
	for i := 1; i < len(tags); i++ {
		for j := i; j > 0 && tags[j].Key < tags[j-1].Key; j-- {
			tags[j], tags[j-1] = tags[j-1], tags[j]
		}
	}
}

func errTooManyTags() *apiError { return fromFSM(fsm.ErrTooManyTags()) }

func itoa(i int) string { return strconv.Itoa(i) }
