package chaos

import (
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

type call struct {
	client    int
	key, op   string
	call, ret int64
	out       KeyOutput
}

func historyOf(calls ...call) *History {
	h := NewHistory()
	for _, c := range calls {
		h.KeyCall(c.client, KeyInput{Key: c.key, Op: c.op}, c.call, c.ret, c.out, "n1")
	}
	return h
}

var (
	ok      = KeyOutput{}
	invalid = KeyOutput{Code: codeInvalidState}
	unknown = KeyOutput{Unknown: true}
)

func state(s string) KeyOutput { return KeyOutput{State: s} }

func TestTransitionsFollowAWS(t *testing.T) {
	cases := []struct{ from, op, to, code string }{
		{StateEnabled, OpDisable, StateDisabled, ""},
		{StateDisabled, OpDisable, StateDisabled, ""},
		{StateDisabled, OpEnable, StateEnabled, ""},
		{StateEnabled, OpSchedule, StatePendingDeletion, ""},
		{StatePendingDeletion, OpSchedule, StatePendingDeletion, codeInvalidState},
		{StatePendingDeletion, OpEnable, StatePendingDeletion, codeInvalidState},
		{StatePendingDeletion, OpDisable, StatePendingDeletion, codeInvalidState},
		{StatePendingDeletion, OpCancel, StateDisabled, ""},
		{StateEnabled, OpCancel, StateEnabled, codeInvalidState},
	}
	for _, c := range cases {
		to, code := transition(c.from, c.op)
		if to != c.to || code != c.code {
			t.Errorf("%s on %s: got %s/%q, want %s/%q", c.op, c.from, to, code, c.to, c.code)
		}
	}
}

func TestLinearizability(t *testing.T) {
	tests := []struct {
		name  string
		h     *History
		valid bool
	}{
		{"sequential", historyOf(
			call{0, "k", OpDisable, 0, 10, ok},
			call{0, "k", OpSchedule, 20, 30, ok},
			call{0, "k", OpEnable, 40, 50, invalid},
			call{0, "k", OpCancel, 60, 70, ok},
			call{0, "k", OpDescribe, 80, 90, state(StateDisabled)},
		), true},
		{"concurrent schedules: exactly one wins", historyOf(
			call{0, "k", OpSchedule, 0, 10, ok},
			call{1, "k", OpSchedule, 0, 10, invalid},
		), true},
		{"two winning schedules are impossible", historyOf(
			call{0, "k", OpSchedule, 0, 10, ok},
			call{1, "k", OpSchedule, 0, 10, ok},
		), false},
		{"a refusal that contradicts an earlier acknowledged write", historyOf(
			call{0, "k", OpSchedule, 0, 10, ok},
			call{1, "k", OpCancel, 20, 30, ok},
			call{1, "k", OpCancel, 40, 50, ok}, // the key is no longer pending deletion
		), false},
		{"lost acknowledged write: the final read disagrees", historyOf(
			call{0, "k", OpDisable, 0, 10, ok},
			call{0, "k", OpDescribe, 100, 110, state(StateEnabled)},
		), false},
		{"unknown outcome may have happened", historyOf(
			call{0, "k", OpSchedule, 0, 10, unknown},
			call{1, "k", OpDescribe, 100, 110, state(StatePendingDeletion)},
		), true},
		{"unknown outcome may not have happened", historyOf(
			call{0, "k", OpSchedule, 0, 10, unknown},
			call{1, "k", OpDescribe, 100, 110, state(StateEnabled)},
		), true},
		{"unknown outcome may have happened later than a refusal", historyOf(
			call{0, "k", OpSchedule, 0, 10, unknown},
			call{1, "k", OpCancel, 20, 30, invalid}, // not yet pending here
			call{1, "k", OpDescribe, 100, 110, state(StatePendingDeletion)},
		), true},
		{"keys are independent", historyOf(
			call{0, "a", OpDisable, 0, 10, ok},
			call{1, "b", OpSchedule, 0, 10, ok},
			call{0, "a", OpDescribe, 20, 30, state(StateDisabled)},
			call{1, "b", OpDescribe, 20, 30, state(StatePendingDeletion)},
		), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, info := CheckLinearizability(tt.h.KeyOperations(95), 10*time.Second)
			if got := res == porcupine.Ok; got != tt.valid {
				t.Fatalf("linearizable = %v (%s), want %v", got, res, tt.valid)
			}
			if !tt.valid {
				// The failure renders as porcupine's HTML visualization.
				var sb strings.Builder
				if err := porcupine.Visualize(KeyModel(), info, &sb); err != nil || !strings.Contains(sb.String(), "<html") {
					t.Fatalf("visualization: %v", err)
				}
			}
		})
	}
}

func TestUnknownOutcomesEndWhenTheClusterHealed(t *testing.T) {
	h := historyOf(call{0, "k", OpDisable, 5, 0, unknown}, call{1, "k", OpEnable, 10, 20, ok})
	ops := h.KeyOperations(50)
	for _, op := range ops {
		if op.Input.(KeyInput).Op == OpDisable && op.Return != 50 {
			t.Fatalf("unknown outcome returns at %d, want the healing time 50", op.Return)
		}
	}
	ops = h.KeyOperations(0)
	for _, op := range ops {
		if op.Input.(KeyInput).Op == OpDisable && op.Return != 21 {
			t.Fatalf("unknown outcome returns at %d, want just after the last event (21)", op.Return)
		}
	}
}

func TestMacChecks(t *testing.T) {
	macs := []MacRecord{
		{Node: "n1", Key: "k", Algorithm: "HMAC_SHA_256", Message: "m", Mac: []byte{1, 2}},
		{Node: "n2", Key: "k", Algorithm: "HMAC_SHA_256", Message: "m", Mac: []byte{1, 2}},
		{Node: "n3", Key: "k", Algorithm: "HMAC_SHA_256", Message: "other", Mac: []byte{9}},
	}
	if v := CheckMacsIdentical(macs); len(v) != 0 {
		t.Fatalf("consistent MACs flagged: %v", v)
	}
	macs = append(macs, MacRecord{Node: "n3", Key: "k", Algorithm: "HMAC_SHA_256", Message: "m", Mac: []byte{1, 3}})
	if v := CheckMacsIdentical(macs); len(v) != 1 || !strings.Contains(v[0].Detail, "n3") {
		t.Fatalf("diverging MAC not flagged: %v", v)
	}
	if v := CheckNoWrongMacAccepted([]VerifyRecord{{Node: "n1", Key: "k"}}); len(v) != 0 {
		t.Fatal(v)
	}
	if v := CheckNoWrongMacAccepted([]VerifyRecord{{Node: "n2", Key: "k", KnownWrong: true}}); len(v) != 1 {
		t.Fatal("accepted wrong MAC not flagged")
	}
}

func TestBoundedStaleness(t *testing.T) {
	sec := int64(time.Second)
	ops := historyOf(
		call{0, "k", OpDisable, 0, 1 * sec, ok}, // acknowledged at 1s
	).KeyOperations(0)
	bound, slack := 10*time.Second, time.Second
	mac := func(at int64) MacRecord {
		return MacRecord{Node: "n3", Key: "k", StateKey: true, Call: at}
	}
	if v := CheckBoundedStaleness(ops, []MacRecord{mac(5 * sec), mac(11 * sec)}, bound, slack); len(v) != 0 {
		t.Fatalf("MACs within the bound flagged: %v", v)
	}
	v := CheckBoundedStaleness(ops, []MacRecord{mac(13 * sec)}, bound, slack)
	if len(v) != 1 || !strings.Contains(v[0].Detail, "DisableKey") {
		t.Fatalf("MAC 12s after the disable was acknowledged not flagged: %v", v)
	}
	// A MAC on a key whose state the workload does not change is ignored.
	stable := mac(13 * sec)
	stable.StateKey = false
	if v := CheckBoundedStaleness(ops, []MacRecord{stable}, bound, slack); len(v) != 0 {
		t.Fatal(v)
	}
	// An EnableKey in between, even with an unknown outcome, may have made
	// the key usable again.
	ops = historyOf(
		call{0, "k", OpDisable, 0, 1 * sec, ok},
		call{1, "k", OpEnable, 2 * sec, 0, unknown},
	).KeyOperations(0)
	if v := CheckBoundedStaleness(ops, []MacRecord{mac(13 * sec)}, bound, slack); len(v) != 0 {
		t.Fatalf("MAC after a possible re-enable flagged: %v", v)
	}
	// A refused EnableKey did not.
	ops = historyOf(
		call{0, "k", OpSchedule, 0, 1 * sec, ok},
		call{1, "k", OpEnable, 2 * sec, 3 * sec, invalid},
	).KeyOperations(0)
	if v := CheckBoundedStaleness(ops, []MacRecord{mac(13 * sec)}, bound, slack); len(v) != 1 {
		t.Fatalf("MAC 12s after ScheduleKeyDeletion not flagged: %v", v)
	}
}
