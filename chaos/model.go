package chaos

import (
	"fmt"
	"hash/fnv"

	"github.com/anishathalye/porcupine"
)

// Operations of the key-state model. Reads are only linearizable once the
// cluster has healed and converged (nodes serve them from their own
// replica), so a history contains Describe operations only from then.
const (
	OpEnable   = "EnableKey"
	OpDisable  = "DisableKey"
	OpSchedule = "ScheduleKeyDeletion"
	OpCancel   = "CancelKeyDeletion"
	OpDescribe = "DescribeKey"
)

// Key states as DescribeKey reports them.
const (
	StateEnabled         = "Enabled"
	StateDisabled        = "Disabled"
	StatePendingDeletion = "PendingDeletion"
)

// codeInvalidState is what keyraft (and AWS) answers for a transition the
// key's state does not allow.
const codeInvalidState = "KMSInvalidStateException"

// KeyInput is one call on one key.
type KeyInput struct {
	Key string
	Op  string
}

// KeyOutput is its answer: Code is "" on success or the AWS error code;
// Unknown marks a call whose outcome the client could not learn (timeout,
// connection lost, 5xx): it may or may not have taken effect. State is
// what a Describe returned.
type KeyOutput struct {
	Code    string
	Unknown bool
	State   string
}

// transition applies op to state by keyraft's (and AWS's) rules: the new
// state and the error code a client sees ("" = success).
func transition(state, op string) (string, string) {
	switch op {
	case OpEnable:
		if state == StatePendingDeletion {
			return state, codeInvalidState
		}
		return StateEnabled, ""
	case OpDisable:
		if state == StatePendingDeletion {
			return state, codeInvalidState
		}
		return StateDisabled, ""
	case OpSchedule:
		if state == StatePendingDeletion {
			return state, codeInvalidState
		}
		return StatePendingDeletion, ""
	case OpCancel:
		if state != StatePendingDeletion {
			return state, codeInvalidState
		}
		return StateDisabled, "" // AWS: a cancelled key is Disabled, never Enabled
	case OpDescribe:
		return state, ""
	}
	return state, "UnknownOperation"
}

// KeyModel is the sequential specification of one key's state, for keys
// that start Enabled. It is nondeterministic only in one way: a call with
// an unknown outcome either happened or did not.
func KeyModel() porcupine.Model {
	m := &porcupine.NondeterministicModel{
		Partition: partitionByKey,
		Init:      func() []interface{} { return []interface{}{StateEnabled} },
		Step: func(s, in, out interface{}) []interface{} {
			state := s.(string)
			input := in.(KeyInput)
			output := out.(KeyOutput)
			next, code := transition(state, input.Op)
			if output.Unknown {
				if next == state {
					return []interface{}{state}
				}
				return []interface{}{state, next}
			}
			if code != output.Code {
				return nil
			}
			if input.Op == OpDescribe && output.State != state {
				return nil
			}
			return []interface{}{next}
		},
		Hash: func(s interface{}) uint64 {
			h := fnv.New64a()
			h.Write([]byte(s.(string)))
			return h.Sum64()
		},
		DescribeOperation: func(in, out interface{}) string {
			input, output := in.(KeyInput), out.(KeyOutput)
			switch {
			case output.Unknown:
				return input.Op + " -> ?"
			case input.Op == OpDescribe:
				return fmt.Sprintf("%s -> %s", input.Op, output.State)
			case output.Code != "":
				return fmt.Sprintf("%s -> %s", input.Op, output.Code)
			}
			return input.Op + " -> ok"
		},
		DescribeState: func(s interface{}) string { return s.(string) },
	}
	return m.ToModel()
}

func partitionByKey(history []porcupine.Operation) [][]porcupine.Operation {
	byKey := map[string][]porcupine.Operation{}
	var order []string
	for _, op := range history {
		k := op.Input.(KeyInput).Key
		if _, ok := byKey[k]; !ok {
			order = append(order, k)
		}
		byKey[k] = append(byKey[k], op)
	}
	out := make([][]porcupine.Operation, 0, len(order))
	for _, k := range order {
		out = append(out, byKey[k])
	}
	return out
}
