package chaos

import (
	"math"
	"sort"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// History records what clients did, safely from many goroutines. Times are
// nanoseconds since the history began, on the monotonic clock.
type History struct {
	start time.Time

	mu    sync.Mutex
	keys  []porcupine.Operation
	macs  []MacRecord
	verif []VerifyRecord
}

// NewHistory starts an empty history now.
func NewHistory() *History { return &History{start: time.Now()} }

// Now is the history's clock.
func (h *History) Now() int64 { return int64(time.Since(h.start)) }

// Start is when the history began.
func (h *History) Start() time.Time { return h.start }

// KeyCall records one key-state call made by client between call and ret.
// An Unknown output is given an open end (see Finish).
func (h *History) KeyCall(client int, in KeyInput, call, ret int64, out KeyOutput, node string) {
	if out.Unknown {
		ret = math.MaxInt64
	}
	h.mu.Lock()
	h.keys = append(h.keys, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret, Metadata: node})
	h.mu.Unlock()
}

// MacRecord is one successful GenerateMac.
type MacRecord struct {
	Node      string
	Key       string // key id
	Algorithm string
	Message   string // the message bytes, as a string
	Mac       []byte
	Call      int64
	Return    int64
	// StateKey marks MACs on keys whose state the workload changes, the
	// ones the staleness check looks at.
	StateKey bool
}

// Mac records a successful GenerateMac.
func (h *History) Mac(r MacRecord) {
	h.mu.Lock()
	h.macs = append(h.macs, r)
	h.mu.Unlock()
}

// VerifyRecord is one VerifyMac that the key's service accepted, and
// whether the client had sent a MAC it knew to be wrong.
type VerifyRecord struct {
	Node       string
	Key        string
	KnownWrong bool
	Call       int64
}

// Verified records a VerifyMac that answered MacValid.
func (h *History) Verified(r VerifyRecord) {
	h.mu.Lock()
	h.verif = append(h.verif, r)
	h.mu.Unlock()
}

// KeyOperations returns the key-state operations for porcupine. A call
// with an unknown outcome may have taken effect at any point after it was
// made, up to openEnd: the moment the cluster had healed and converged, after
// which nothing in flight can still be applied. openEnd 0 means just after
// the last recorded event.
func (h *History) KeyOperations(openEnd int64) []porcupine.Operation {
	h.mu.Lock()
	ops := append([]porcupine.Operation(nil), h.keys...)
	h.mu.Unlock()
	end := openEnd
	if end == 0 {
		for _, op := range ops {
			if op.Return != math.MaxInt64 && op.Return > end {
				end = op.Return
			}
			if op.Call > end {
				end = op.Call
			}
		}
		end++
	}
	for i := range ops {
		if ops[i].Return == math.MaxInt64 {
			ops[i].Return = max(end, ops[i].Call)
		}
	}
	sort.SliceStable(ops, func(i, j int) bool { return ops[i].Call < ops[j].Call })
	return ops
}

// Macs returns the successful GenerateMac calls.
func (h *History) Macs() []MacRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]MacRecord(nil), h.macs...)
}

// Verifications returns the accepted VerifyMac calls.
func (h *History) Verifications() []VerifyRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]VerifyRecord(nil), h.verif...)
}
