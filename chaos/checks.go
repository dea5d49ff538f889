package chaos

import (
	"bytes"
	"fmt"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
)

// Violation is one broken promise found in a history.
type Violation struct {
	Check  string `json:"check"`
	Detail string `json:"detail"`
}

// Check names, as they appear in reports.
const (
	CheckLinearizable = "linearizable key-state changes"
	CheckMacIdentical = "identical inputs give identical MACs"
	CheckWrongMac     = "no wrong MAC accepted"
	CheckStaleness    = "bounded staleness"
)

// CheckLinearizability runs porcupine over the key-state operations. It
// returns the result and the information needed to render porcupine's
// visualization of a failure.
func CheckLinearizability(ops []porcupine.Operation, timeout time.Duration) (porcupine.CheckResult, porcupine.LinearizationInfo) {
	return porcupine.CheckOperationsVerbose(KeyModel(), ops, timeout)
}

// CheckMacsIdentical: every node must compute the same MAC for the same key,
// algorithm and message.
func CheckMacsIdentical(macs []MacRecord) []Violation {
	type input struct{ key, alg, msg string }
	first := map[input]MacRecord{}
	var out []Violation
	for _, m := range macs {
		in := input{m.Key, m.Algorithm, m.Message}
		f, ok := first[in]
		if !ok {
			first[in] = m
			continue
		}
		if !bytes.Equal(f.Mac, m.Mac) {
			out = append(out, Violation{CheckMacIdentical, fmt.Sprintf("key %s %s: node %s and node %s returned different MACs for the same message", m.Key, m.Algorithm, f.Node, m.Node)})
		}
	}
	return out
}

// CheckNoWrongMacAccepted: a VerifyMac of a MAC the client knew to be wrong
// (another message, key or algorithm) must never succeed.
func CheckNoWrongMacAccepted(v []VerifyRecord) []Violation {
	var out []Violation
	for _, r := range v {
		if r.KnownWrong {
			out = append(out, Violation{CheckWrongMac, fmt.Sprintf("node %s accepted a wrong MAC for key %s at %s", r.Node, r.Key, time.Duration(r.Call))})
		}
	}
	return out
}

// CheckBoundedStaleness: no node may produce a MAC with a key later than
// bound (+ slack for clocks and scheduling) after a write that made the key
// unusable (DisableKey, ScheduleKeyDeletion) was acknowledged, unless a
// write that may have made it usable again (EnableKey, acknowledged or
// with an unknown outcome) was made in between. Only keys whose state the
// workload changes are considered.
func CheckBoundedStaleness(ops []porcupine.Operation, macs []MacRecord, bound, slack time.Duration) []Violation {
	byKey := map[string][]porcupine.Operation{}
	for _, op := range ops {
		in := op.Input.(KeyInput)
		if in.Op == OpDescribe {
			continue
		}
		byKey[in.Key] = append(byKey[in.Key], op)
	}
	for _, list := range byKey {
		sort.Slice(list, func(i, j int) bool { return list[i].Call < list[j].Call })
	}
	limit := int64(bound + slack)
	var out []Violation
	for _, m := range macs {
		if !m.StateKey {
			continue
		}
		for _, op := range byKey[m.Key] {
			in, res := op.Input.(KeyInput), op.Output.(KeyOutput)
			disabling := (in.Op == OpDisable || in.Op == OpSchedule) && !res.Unknown && res.Code == ""
			if !disabling || op.Return+limit >= m.Call {
				continue
			}
			if mayHaveReenabled(byKey[m.Key], op.Call, m.Call) {
				continue
			}
			out = append(out, Violation{CheckStaleness, fmt.Sprintf(
				"node %s produced a MAC with key %s at %s, %s after %s was acknowledged at %s (bound %s)",
				m.Node, m.Key, time.Duration(m.Call), time.Duration(m.Call-op.Return), in.Op, time.Duration(op.Return), bound)})
			break
		}
	}
	return out
}

// mayHaveReenabled reports whether an EnableKey that was not refused was
// made on the key between from and to.
func mayHaveReenabled(ops []porcupine.Operation, from, to int64) bool {
	for _, op := range ops {
		in, res := op.Input.(KeyInput), op.Output.(KeyOutput)
		if in.Op == OpEnable && (res.Unknown || res.Code == "") && op.Return > from && op.Call < to {
			return true
		}
	}
	return false
}
