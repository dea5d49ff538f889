package chaos

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
)

// workload drives a cluster through the AWS SDK for Go v2, the way an
// application would, and records every call in a History.
type workload struct {
	nodes   []*node
	clients []*kms.Client
	hist    *History
	rng     *rand.Rand // only for setup; each worker has its own

	stableKeys []string // never change state: MAC traffic
	stateKeys  []string // the workload changes their state

	mu      sync.Mutex
	created []string          // acknowledged CreateKey ids
	aliases []string          // acknowledged CreateAlias names
	grants  map[string]string // acknowledged CreateGrant id → key, until a revoke is attempted
	aliasN  atomic.Int64
	macs    map[string][]MacRecord

	phase    atomic.Int32
	errMu    sync.Mutex
	errKinds [phaseCount]map[string]int64 // error code (or transport failure) → count
	okCount  [phaseCount]atomic.Int64
	errCount [phaseCount]atomic.Int64
	phaseDur [phaseCount]atomic.Int64 // ns
}

// Phases of a run, for the success-rate comparison.
const (
	phaseBefore = iota
	phaseFaults
	phaseAfter
	phaseCount
)

var phaseNames = [phaseCount]string{"before", "during", "after"}

// messages is small on purpose: identical inputs recur on every node.
var messages = [][]byte{[]byte("alpha"), []byte("bravo"), []byte("charlie"), []byte("delta")}

func newWorkload(nodes []*node, hist *History, seed uint64) *workload {
	w := &workload{nodes: nodes, hist: hist, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), macs: map[string][]MacRecord{}, grants: map[string]string{}}
	for _, nd := range nodes {
		w.clients = append(w.clients, kms.New(kms.Options{
			Region:       "us-east-1",
			BaseEndpoint: aws.String("http://" + nd.http),
			Credentials:  credentials.NewStaticCredentialsProvider("AKIDCHAOS", "chaos", ""),
			Retryer:      aws.NopRetryer{},
			HTTPClient:   &http.Client{Timeout: 3 * time.Second},
		}))
	}
	return w
}

// setup creates the keys the workload uses, retrying through elections.
func (w *workload) setup(ctx context.Context, stable, state int) error {
	create := func() (string, error) {
		var id string
		err := retry(ctx, 30*time.Second, func() error {
			out, err := w.clients[w.rng.IntN(len(w.clients))].CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecHmac256, KeyUsage: types.KeyUsageTypeGenerateVerifyMac})
			if err == nil {
				id = *out.KeyMetadata.KeyId
			}
			return err
		})
		return id, err
	}
	for i := 0; i < stable; i++ {
		id, err := create()
		if err != nil {
			return err
		}
		w.stableKeys = append(w.stableKeys, id)
	}
	for i := 0; i < state; i++ {
		id, err := create()
		if err != nil {
			return err
		}
		w.stateKeys = append(w.stateKeys, id)
	}
	// Every node must know every key before traffic starts.
	for i := range w.clients {
		for _, id := range append(append([]string(nil), w.stableKeys...), w.stateKeys...) {
			if err := retry(ctx, 30*time.Second, func() error {
				_, err := w.clients[i].DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(id)})
				return err
			}); err != nil {
				return err
			}
		}
	}
	return nil
}

func retry(ctx context.Context, d time.Duration, f func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// run starts n workers that call until ctx ends.
func (w *workload) run(ctx context.Context, n int, seed uint64) *sync.WaitGroup {
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(client int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed+uint64(client), uint64(client)))
			for ctx.Err() == nil {
				w.step(ctx, client, rng)
			}
		}(i)
	}
	return &wg
}

// classify turns an SDK error into the model's output: a definite AWS
// refusal (4xx) is an observation of the state; anything else (5xx,
// timeouts, connection errors) leaves the outcome unknown.
func classify(err error) (KeyOutput, bool) {
	if err == nil {
		return KeyOutput{}, true
	}
	var api smithy.APIError
	var status interface{ HTTPStatusCode() int }
	if errors.As(err, &api) && errors.As(err, &status) && status.HTTPStatusCode() < 500 {
		return KeyOutput{Code: api.ErrorCode()}, false
	}
	return KeyOutput{Unknown: true}, false
}

// count tallies one call: ok, or failed with err (nil when a refusal is
// itself counted as a failure by the caller).
func (w *workload) count(ok bool, err error) {
	p := w.phase.Load()
	if ok {
		w.okCount[p].Add(1)
		return
	}
	w.errCount[p].Add(1)
	kind := "refused"
	var api smithy.APIError
	switch {
	case errors.As(err, &api):
		kind = api.ErrorCode()
	case err != nil && strings.Contains(err.Error(), "timeout"):
		kind = "timeout"
	case err != nil && strings.Contains(err.Error(), "connection refused"):
		kind = "connection refused"
	case err != nil:
		kind = "transport error"
	}
	w.errMu.Lock()
	if w.errKinds[p] == nil {
		w.errKinds[p] = map[string]int64{}
	}
	w.errKinds[p][kind]++
	w.errMu.Unlock()
}

// errorKinds returns the failed calls of phase p by kind.
func (w *workload) errorKinds(p int) map[string]int64 {
	w.errMu.Lock()
	defer w.errMu.Unlock()
	out := map[string]int64{}
	for k, v := range w.errKinds[p] {
		out[k] = v
	}
	return out
}

// step makes one call chosen at random.
func (w *workload) step(ctx context.Context, client int, rng *rand.Rand) {
	ni := rng.IntN(len(w.clients))
	c, nd := w.clients[ni], w.nodes[ni]
	switch r := rng.IntN(100); {
	case r < 45: // GenerateMac
		stateKey := rng.IntN(3) == 0
		key := w.stableKeys[rng.IntN(len(w.stableKeys))]
		if stateKey {
			key = w.stateKeys[rng.IntN(len(w.stateKeys))]
		}
		m := messages[rng.IntN(len(messages))]
		call := w.hist.Now()
		out, err := c.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: aws.String(key), MacAlgorithm: types.MacAlgorithmSpecHmacSha256, Message: m})
		ret := w.hist.Now()
		if err == nil {
			rec := MacRecord{Node: nd.id, Key: key, Algorithm: "HMAC_SHA_256", Message: string(m), Mac: out.Mac, Call: call, Return: ret, StateKey: stateKey}
			w.hist.Mac(rec)
			if !stateKey {
				w.mu.Lock()
				if len(w.macs[key]) < 64 {
					w.macs[key] = append(w.macs[key], rec)
				}
				w.mu.Unlock()
			}
			w.count(true, nil)
			return
		}
		// Refusals on keys the workload disabled are correct answers.
		var dis *types.DisabledException
		var inv *types.KMSInvalidStateException
		w.count(stateKey && (errors.As(err, &dis) || errors.As(err, &inv)), err)
	case r < 65: // VerifyMac, sometimes with a MAC known to be wrong
		key := w.stableKeys[rng.IntN(len(w.stableKeys))]
		w.mu.Lock()
		recs := w.macs[key]
		var rec MacRecord
		if len(recs) > 0 {
			rec = recs[rng.IntN(len(recs))]
		}
		w.mu.Unlock()
		if rec.Mac == nil {
			return
		}
		msg, wrong := []byte(rec.Message), rng.IntN(5) == 0
		if wrong {
			msg = append(msg, '!')
		}
		call := w.hist.Now()
		out, err := c.VerifyMac(ctx, &kms.VerifyMacInput{KeyId: aws.String(key), MacAlgorithm: types.MacAlgorithmSpecHmacSha256, Message: msg, Mac: rec.Mac})
		if err == nil && out.MacValid {
			w.hist.Verified(VerifyRecord{Node: nd.id, Key: key, KnownWrong: wrong, Call: call})
		}
		var invalid *types.KMSInvalidMacException
		w.count((err == nil && !wrong) || (wrong && errors.As(err, &invalid)), err)
	case r < 85: // a key-state change
		key := w.stateKeys[rng.IntN(len(w.stateKeys))]
		op := []string{OpEnable, OpDisable, OpSchedule, OpCancel}[rng.IntN(4)]
		call := w.hist.Now()
		var err error
		switch op {
		case OpEnable:
			_, err = c.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(key)})
		case OpDisable:
			_, err = c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(key)})
		case OpSchedule:
			_, err = c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(key), PendingWindowInDays: aws.Int32(30)})
		case OpCancel:
			_, err = c.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: aws.String(key)})
		}
		out, ok := classify(err)
		w.hist.KeyCall(client, KeyInput{Key: key, Op: op}, call, w.hist.Now(), out, nd.id)
		w.count(ok || (!out.Unknown && out.Code == codeInvalidState), err)
	case r < 91: // DescribeKey (served locally; not part of the linearizable history)
		_, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(w.stableKeys[rng.IntN(len(w.stableKeys))])})
		w.count(err == nil, err)
	case r < 94: // aliases: create a new one, or re-point an existing one
		w.mu.Lock()
		existing := ""
		if len(w.aliases) > 0 && rng.IntN(2) == 0 {
			existing = w.aliases[rng.IntN(len(w.aliases))]
		}
		w.mu.Unlock()
		target := aws.String(w.stableKeys[rng.IntN(len(w.stableKeys))])
		// A key holds at most 50 aliases: LimitExceededException is then
		// the right answer, not a failure.
		var limit *types.LimitExceededException
		if existing != "" {
			_, err := c.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: aws.String(existing), TargetKeyId: target})
			w.count(err == nil || errors.As(err, &limit), err)
			return
		}
		name := "alias/chaos-" + strconv.Itoa(client) + "-" + strconv.FormatInt(w.aliasN.Add(1), 10)
		_, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(name), TargetKeyId: target})
		if err == nil {
			w.mu.Lock()
			w.aliases = append(w.aliases, name)
			w.mu.Unlock()
		}
		w.count(err == nil || errors.As(err, &limit), err)
	case r < 97: // grants: create one, or revoke one
		w.mu.Lock()
		var revokeID, revokeKey string
		if len(w.grants) > 0 && rng.IntN(3) == 0 {
			for id, key := range w.grants {
				revokeID, revokeKey = id, key
				break
			}
			// Whatever the answer, the grant may now be gone: it no
			// longer counts as a write that must survive.
			delete(w.grants, revokeID)
		}
		w.mu.Unlock()
		if revokeID != "" {
			_, err := c.RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: aws.String(revokeKey), GrantId: aws.String(revokeID)})
			w.count(err == nil, err)
			return
		}
		key := w.stableKeys[rng.IntN(len(w.stableKeys))]
		out, err := c.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(key), GranteePrincipal: aws.String("arn:aws:iam::111122223333:role/chaos"),
			Operations: []types.GrantOperation{types.GrantOperationGenerateMac, types.GrantOperationVerifyMac}})
		if err == nil {
			w.mu.Lock()
			w.grants[*out.GrantId] = key
			w.mu.Unlock()
		}
		w.count(err == nil, err)
	default: // CreateKey
		out, err := c.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecHmac384, KeyUsage: types.KeyUsageTypeGenerateVerifyMac, Description: aws.String("chaos " + strconv.Itoa(client))})
		if err == nil {
			w.mu.Lock()
			w.created = append(w.created, *out.KeyMetadata.KeyId)
			w.mu.Unlock()
		}
		w.count(err == nil, err)
	}
}

// rates returns successful calls per second in each phase.
func (w *workload) rates() [phaseCount]float64 {
	var r [phaseCount]float64
	for p := 0; p < phaseCount; p++ {
		if d := time.Duration(w.phaseDur[p].Load()); d > 0 {
			r[p] = float64(w.okCount[p].Load()) / d.Seconds()
		}
	}
	return r
}

func (w *workload) successRatio(p int) float64 {
	ok, bad := w.okCount[p].Load(), w.errCount[p].Load()
	if ok+bad == 0 {
		return 0
	}
	return float64(ok) / float64(ok+bad)
}
