package quota

import (
	"fmt"
	"hash/maphash"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ThrottlingCode and ThrottlingMessage are the AWS error (HTTP 400) for a
// request refused by Allow.
const (
	ThrottlingCode    = "ThrottlingException"
	ThrottlingMessage = "You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls."
)

// ClassCryptographic is the shared class of the symmetric cryptographic
// operations (GenerateMac, VerifyMac, GenerateRandom, Encrypt, ...).
const ClassCryptographic = "cryptographic"

// DefaultCryptographicRate is the default of ClassCryptographic: AWS's quota
// in its largest regions (us-east-1 and others; 10,000 or 5,500 elsewhere).
const DefaultCryptographicRate = 50000

// Class is the request quota an operation counts against.
type Class struct {
	// Name is ClassCryptographic or, for operations with a quota of their
	// own, the operation name.
	Name string
	// DefaultRate is AWS's default quota in requests per second (per account
	// and region).
	DefaultRate float64
}

// Classes maps each KMS operation with a request quota to its class and
// AWS's default rate (kms-api.md §5). Operations not listed are not limited.
// Read-only.
var Classes = map[string]Class{
	// Cryptographic operations (symmetric): one shared quota.
	"Decrypt":                         {ClassCryptographic, DefaultCryptographicRate},
	"Encrypt":                         {ClassCryptographic, DefaultCryptographicRate},
	"GenerateDataKey":                 {ClassCryptographic, DefaultCryptographicRate},
	"GenerateDataKeyWithoutPlaintext": {ClassCryptographic, DefaultCryptographicRate},
	"GenerateMac":                     {ClassCryptographic, DefaultCryptographicRate},
	"GenerateRandom":                  {ClassCryptographic, DefaultCryptographicRate},
	"ReEncrypt":                       {ClassCryptographic, DefaultCryptographicRate},
	"VerifyMac":                       {ClassCryptographic, DefaultCryptographicRate},

	// 5 requests per second each.
	"CancelKeyDeletion":         {"CancelKeyDeletion", 5},
	"CreateAlias":               {"CreateAlias", 5},
	"CreateKey":                 {"CreateKey", 5},
	"DeleteImportedKeyMaterial": {"DeleteImportedKeyMaterial", 5},
	"DisableKey":                {"DisableKey", 5},
	"EnableKey":                 {"EnableKey", 5},
	"ImportKeyMaterial":         {"ImportKeyMaterial", 5},
	"UntagResource":             {"UntagResource", 5},
	"UpdateAlias":               {"UpdateAlias", 5},
	"UpdateKeyDescription":      {"UpdateKeyDescription", 5},

	// 15 each.
	"DeleteAlias":         {"DeleteAlias", 15},
	"PutKeyPolicy":        {"PutKeyPolicy", 15},
	"ScheduleKeyDeletion": {"ScheduleKeyDeletion", 15},
	"EnableKeyRotation":   {"EnableKeyRotation", 15},

	"TagResource": {"TagResource", 10},

	"RetireGrant": {"RetireGrant", 30},
	"RevokeGrant": {"RevokeGrant", 30},

	"CreateGrant": {"CreateGrant", 50},

	"ListGrants":          {"ListGrants", 100},
	"ListKeyPolicies":     {"ListKeyPolicies", 100},
	"ListRetirableGrants": {"ListRetirableGrants", 100},

	"ListAliases": {"ListAliases", 500},
	"ListKeys":    {"ListKeys", 500},

	"GetKeyPolicy": {"GetKeyPolicy", 1000},

	"DescribeKey":      {"DescribeKey", 2000},
	"ListResourceTags": {"ListResourceTags", 2000},

	"GetParametersForImport": {"GetParametersForImport", 0.25},
}

// ClassOf returns the quota class of a KMS operation.
func ClassOf(op string) (Class, bool) {
	c, ok := Classes[op]
	return c, ok
}

// DefaultAWSRates returns AWS's default rate of every class (class name →
// requests per second); the caller owns the map.
func DefaultAWSRates() map[string]float64 {
	m := make(map[string]float64)
	for _, c := range Classes {
		m[c.Name] = c.DefaultRate
	}
	return m
}

// ClassNames returns the sorted class names.
func ClassNames() []string {
	seen := make(map[string]bool)
	var names []string
	for _, c := range Classes {
		if !seen[c.Name] {
			seen[c.Name] = true
			names = append(names, c.Name)
		}
	}
	sort.Strings(names)
	return names
}

// ParseOverrides parses "class=rate,class=rate" (e.g.
// "CreateKey=10,cryptographic=100"): class names as in Classes, rates
// positive requests per second (fractions allowed: 0.25 is one request
// every 4 s). The empty string yields an empty map. Apply the result on top
// of DefaultAWSRates (or of an empty map to limit only the named classes).
func ParseOverrides(s string) (map[string]float64, error) {
	out := make(map[string]float64)
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	known := make(map[string]bool)
	for _, c := range Classes {
		known[c.Name] = true
	}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, val, ok := strings.Cut(item, "=")
		name, val = strings.TrimSpace(name), strings.TrimSpace(val)
		if !ok || name == "" || val == "" {
			return nil, fmt.Errorf("quota override %q: want class=rate", item)
		}
		if !known[name] {
			if c, isOp := Classes[name]; isOp {
				return nil, fmt.Errorf("quota override %q: %s counts against the %q quota; set %s=<rate>", item, name, c.Name, c.Name)
			}
			return nil, fmt.Errorf("quota override %q: unknown quota class %q (known: %s)", item, name, strings.Join(ClassNames(), ", "))
		}
		rate, err := strconv.ParseFloat(val, 64)
		if err != nil || rate <= 0 || math.IsInf(rate, 0) || math.IsNaN(rate) {
			return nil, fmt.Errorf("quota override %q: the rate must be a positive number of requests per second", item)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("quota override %q: %s is set twice", item, name)
		}
		out[name] = rate
	}
	return out, nil
}

// Limiter enforces request-rate quotas with one token bucket per (account,
// region, class): capacity = rate (at least 1), refilled continuously at
// rate per second. It is safe for concurrent use; Allow is O(1) and
// lock-free on its bucket. A nil *Limiter allows everything.
type Limiter struct {
	now     func() time.Time
	start   time.Time
	classOf map[string]int // operation → index into limits
	limits  []limit
	seed    maphash.Seed
	shards  [numShards]shard
}

// limit is a class's bucket shape for GCRA: one request costs interval ns
// of "theoretical arrival time"; tolerance is the burst in ns.
type limit struct {
	name      string
	rate      float64
	interval  int64
	tolerance int64
}

const (
	numShards = 32
	// minSweep is the shard size at which idle buckets are first swept.
	minSweep = 256
)

type shard struct {
	mu      sync.RWMutex
	m       map[scope]*buckets
	sweepAt int
	_       [24]byte // 64 bytes: keep shards on separate cache lines
}

type scope struct{ account, region string }

// buckets holds the theoretical arrival time (ns since Limiter start) of
// each limited class of one (account, region).
type buckets struct {
	tat []atomic.Int64
}

// New returns a Limiter with the given class rates (requests per second;
// burst = rate, at least 1). Classes missing from rates, or with a rate that
// is not a positive finite number, are not limited; so are operations not in
// Classes. now is the clock (nil: time.Now).
func New(rates map[string]float64, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	l := &Limiter{now: now, classOf: make(map[string]int), seed: maphash.MakeSeed()}
	l.start = now()
	index := make(map[string]int)
	for _, name := range ClassNames() {
		rate, ok := rates[name]
		if !ok || !(rate > 0) || math.IsInf(rate, 0) {
			continue
		}
		interval := int64(math.Round(float64(time.Second) / rate))
		if interval <= 0 { // faster than 1e9/s: effectively unlimited
			continue
		}
		burst := int64(math.Max(1, math.Floor(rate)))
		if burst > math.MaxInt64/interval {
			continue
		}
		index[name] = len(l.limits)
		l.limits = append(l.limits, limit{name: name, rate: rate, interval: interval, tolerance: burst * interval})
	}
	for op, c := range Classes {
		if i, ok := index[c.Name]; ok {
			l.classOf[op] = i
		}
	}
	for i := range l.shards {
		l.shards[i].m = make(map[scope]*buckets)
		l.shards[i].sweepAt = minSweep
	}
	return l
}

// Rate returns the configured rate of a class and whether it is limited.
func (l *Limiter) Rate(class string) (float64, bool) {
	if l == nil {
		return 0, false
	}
	for _, lim := range l.limits {
		if lim.name == class {
			return lim.rate, true
		}
	}
	return 0, false
}

// Allow reports whether a request for op by account in region fits its
// quota, and if so consumes one token. Operations without a limited class
// are always allowed.
func (l *Limiter) Allow(account, region, op string) bool {
	if l == nil {
		return true
	}
	ci, ok := l.classOf[op]
	if !ok {
		return true
	}
	lim := &l.limits[ci]
	now := int64(l.now().Sub(l.start))
	tat := &l.bucketsFor(account, region, now).tat[ci]
	for {
		old := tat.Load()
		next := max(old, now) + lim.interval
		if next-now > lim.tolerance {
			return false
		}
		if tat.CompareAndSwap(old, next) {
			return true
		}
	}
}

func (l *Limiter) bucketsFor(account, region string, now int64) *buckets {
	k := scope{account, region}
	h := maphash.String(l.seed, account) ^ maphash.String(l.seed, region)*0x9E3779B97F4A7C15
	sh := &l.shards[h%numShards]
	sh.mu.RLock()
	b := sh.m[k]
	sh.mu.RUnlock()
	if b != nil {
		return b
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if b = sh.m[k]; b != nil {
		return b
	}
	if len(sh.m) >= sh.sweepAt {
		sh.sweep(now)
		sh.sweepAt = max(minSweep, 2*len(sh.m))
	}
	b = &buckets{tat: make([]atomic.Int64, len(l.limits))}
	sh.m[scope{strings.Clone(account), strings.Clone(region)}] = b
	return b
}

// sweep drops the buckets of scopes whose every bucket is full again: a full
// bucket behaves exactly like a new one, so forgetting it changes nothing
// (except that a request racing with the sweep may be counted in a bucket
// that is then dropped, allowing at most one extra request).
func (sh *shard) sweep(now int64) {
	for k, b := range sh.m {
		idle := true
		for i := range b.tat {
			if b.tat[i].Load() > now {
				idle = false
				break
			}
		}
		if idle {
			delete(sh.m, k)
		}
	}
}

// scopes counts the tracked (account, region) pairs (tests).
func (l *Limiter) scopes() int {
	n := 0
	for i := range l.shards {
		l.shards[i].mu.RLock()
		n += len(l.shards[i].m)
		l.shards[i].mu.RUnlock()
	}
	return n
}
