package quota

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a settable clock.
type fakeClock struct{ ns atomic.Int64 }

var epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func (c *fakeClock) now() time.Time          { return epoch.Add(time.Duration(c.ns.Load())) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func newLimiter(rates map[string]float64) (*Limiter, *fakeClock) {
	c := &fakeClock{}
	return New(rates, c.now), c
}

// allowN calls Allow n times and returns how many were allowed.
func allowN(l *Limiter, account, region, op string, n int) int {
	ok := 0
	for i := 0; i < n; i++ {
		if l.Allow(account, region, op) {
			ok++
		}
	}
	return ok
}

func TestClassesTable(t *testing.T) {
	// kms-api.md §5, request quotas.
	want := map[string]Class{}
	for _, op := range []string{"Decrypt", "Encrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "GenerateMac",
		"GenerateRandom", "ReEncrypt", "VerifyMac"} {
		want[op] = Class{ClassCryptographic, 50000}
	}
	own := map[float64][]string{
		5: {"CancelKeyDeletion", "CreateAlias", "CreateKey", "DeleteImportedKeyMaterial", "DisableKey", "EnableKey",
			"ImportKeyMaterial", "UntagResource", "UpdateAlias", "UpdateKeyDescription"},
		15:   {"DeleteAlias", "PutKeyPolicy", "ScheduleKeyDeletion", "EnableKeyRotation"},
		10:   {"TagResource"},
		30:   {"RetireGrant", "RevokeGrant"},
		50:   {"CreateGrant"},
		100:  {"ListGrants", "ListKeyPolicies", "ListRetirableGrants"},
		500:  {"ListAliases", "ListKeys"},
		1000: {"GetKeyPolicy"},
		2000: {"DescribeKey", "ListResourceTags"},
		0.25: {"GetParametersForImport"},
	}
	for rate, ops := range own {
		for _, op := range ops {
			want[op] = Class{op, rate}
		}
	}
	if len(Classes) != len(want) {
		t.Errorf("Classes has %d operations, the table %d", len(Classes), len(want))
	}
	for op, w := range want {
		if got, ok := ClassOf(op); !ok || got != w {
			t.Errorf("ClassOf(%s) = %+v, %v; want %+v", op, got, ok, w)
		}
	}
	for op := range Classes {
		if _, ok := want[op]; !ok {
			t.Errorf("Classes has %s, which is not in the table", op)
		}
	}
	for _, op := range []string{"Sign", "Verify", "GetPublicKey", "NoSuchOp", ""} {
		if _, ok := ClassOf(op); ok {
			t.Errorf("ClassOf(%q) found", op)
		}
	}

	rates := DefaultAWSRates()
	if len(rates) != len(ClassNames()) || rates[ClassCryptographic] != 50000 || rates["CreateKey"] != 5 ||
		rates["DescribeKey"] != 2000 || rates["GetParametersForImport"] != 0.25 {
		t.Errorf("DefaultAWSRates = %v", rates)
	}
	rates["CreateKey"] = 1
	if DefaultAWSRates()["CreateKey"] != 5 {
		t.Error("DefaultAWSRates shares its map")
	}
}

func TestParseOverrides(t *testing.T) {
	for _, c := range []struct {
		in   string
		want map[string]float64
	}{
		{"", map[string]float64{}},
		{"  ", map[string]float64{}},
		{"CreateKey=10,cryptographic=100", map[string]float64{"CreateKey": 10, ClassCryptographic: 100}},
		{" CreateKey = 10 , GetParametersForImport=0.5,", map[string]float64{"CreateKey": 10, "GetParametersForImport": 0.5}},
		{"DescribeKey=1e4", map[string]float64{"DescribeKey": 10000}},
	} {
		got, err := ParseOverrides(c.in)
		if err != nil {
			t.Errorf("ParseOverrides(%q): %v", c.in, err)
			continue
		}
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("ParseOverrides(%q) = %v, want %v", c.in, got, c.want)
		}
	}
	for _, c := range []struct{ in, want string }{
		{"CreateKey", "want class=rate"},
		{"CreateKey=", "want class=rate"},
		{"=5", "want class=rate"},
		{"Nope=5", `unknown quota class "Nope"`},
		{"createkey=5", `unknown quota class "createkey"`},
		{"GenerateMac=5", `GenerateMac counts against the "cryptographic" quota; set cryptographic=<rate>`},
		{"CreateKey=0", "positive number"},
		{"CreateKey=-1", "positive number"},
		{"CreateKey=abc", "positive number"},
		{"CreateKey=NaN", "positive number"},
		{"CreateKey=Inf", "positive number"},
		{"CreateKey=1,CreateKey=2", "set twice"},
	} {
		_, err := ParseOverrides(c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseOverrides(%q) error = %v, want %q", c.in, err, c.want)
		}
	}
}

func TestBurstAndRefill(t *testing.T) {
	l, clk := newLimiter(map[string]float64{"CreateKey": 5})
	const a, r = "111122223333", "us-east-1"
	if got := allowN(l, a, r, "CreateKey", 10); got != 5 {
		t.Fatalf("burst: %d allowed, want 5", got)
	}
	clk.advance(199 * time.Millisecond)
	if l.Allow(a, r, "CreateKey") {
		t.Fatal("allowed before a token refilled")
	}
	clk.advance(time.Millisecond)
	if !l.Allow(a, r, "CreateKey") || l.Allow(a, r, "CreateKey") {
		t.Fatal("want exactly one request after 200 ms")
	}
	clk.advance(time.Hour) // refills to capacity, never beyond
	if got := allowN(l, a, r, "CreateKey", 10); got != 5 {
		t.Fatalf("after idling: %d allowed, want 5", got)
	}
	// Sustained demand over 10 s admits burst + rate*10.
	clk.advance(time.Hour)
	total := 0
	for i := 0; i < 10000; i++ {
		total += allowN(l, a, r, "CreateKey", 3)
		clk.advance(time.Millisecond)
	}
	if total < 54 || total > 55 {
		t.Errorf("10 s of overload admitted %d, want 5 + 50", total)
	}
}

func TestFractionalRate(t *testing.T) {
	l, clk := newLimiter(DefaultAWSRates())
	const a, r = "111122223333", "eu-west-1"
	if !l.Allow(a, r, "GetParametersForImport") {
		t.Fatal("first request refused")
	}
	for _, d := range []time.Duration{0, time.Second, 2900 * time.Millisecond} {
		clk.advance(d)
		if l.Allow(a, r, "GetParametersForImport") {
			t.Fatalf("allowed within 4 s")
		}
	}
	clk.advance(100 * time.Millisecond) // 4 s since the first
	if !l.Allow(a, r, "GetParametersForImport") {
		t.Fatal("refused after 4 s")
	}
	if rate, ok := l.Rate("GetParametersForImport"); !ok || rate != 0.25 {
		t.Errorf("Rate = %v, %v", rate, ok)
	}
}

func TestSharedAndSeparateBuckets(t *testing.T) {
	l, _ := newLimiter(map[string]float64{ClassCryptographic: 3, "DescribeKey": 2})
	const a, r = "111122223333", "us-east-1"
	// GenerateMac, VerifyMac and GenerateRandom share one bucket.
	if !l.Allow(a, r, "GenerateMac") || !l.Allow(a, r, "VerifyMac") || !l.Allow(a, r, "GenerateRandom") {
		t.Fatal("cryptographic burst refused")
	}
	for _, op := range []string{"GenerateMac", "VerifyMac", "GenerateRandom", "Encrypt"} {
		if l.Allow(a, r, op) {
			t.Errorf("%s allowed with the shared bucket empty", op)
		}
	}
	// Other classes, accounts and regions are independent.
	if got := allowN(l, a, r, "DescribeKey", 5); got != 2 {
		t.Errorf("DescribeKey: %d allowed, want 2", got)
	}
	if got := allowN(l, "444455556666", r, "GenerateMac", 5); got != 3 {
		t.Errorf("other account: %d allowed, want 3", got)
	}
	if got := allowN(l, a, "eu-west-1", "GenerateMac", 5); got != 3 {
		t.Errorf("other region: %d allowed, want 3", got)
	}
	// Unlimited: classes without a rate, operations without a class.
	for _, op := range []string{"CreateKey", "ListKeys", "Sign", "NoSuchOperation"} {
		if got := allowN(l, a, r, op, 1000); got != 1000 {
			t.Errorf("%s: %d of 1000 allowed, want all", op, got)
		}
	}
	if _, ok := l.Rate("CreateKey"); ok {
		t.Error("CreateKey reported as limited")
	}
	var nilLimiter *Limiter
	if !nilLimiter.Allow(a, r, "GenerateMac") {
		t.Error("nil Limiter refused")
	}
}

func TestInvalidRatesAreUnlimited(t *testing.T) {
	l, _ := newLimiter(map[string]float64{"CreateKey": 0, "CreateAlias": -1, "DescribeKey": 1e12, "NoSuchClass": 1})
	for _, op := range []string{"CreateKey", "CreateAlias", "DescribeKey"} {
		if got := allowN(l, "a", "r", op, 100); got != 100 {
			t.Errorf("%s: %d of 100 allowed", op, got)
		}
	}
	if New(nil, nil).Allow("a", "r", "CreateKey") != true {
		t.Error("New(nil, nil) limits")
	}
}

func TestClockGoingBackwards(t *testing.T) {
	l, clk := newLimiter(map[string]float64{"CreateKey": 2})
	clk.advance(time.Minute)
	if got := allowN(l, "a", "r", "CreateKey", 5); got != 2 {
		t.Fatalf("%d allowed", got)
	}
	clk.advance(-30 * time.Second)
	if got := allowN(l, "a", "r", "CreateKey", 5); got != 0 {
		t.Errorf("a clock step back granted %d requests", got)
	}
	clk.advance(30*time.Second + time.Second)
	if got := allowN(l, "a", "r", "CreateKey", 5); got != 2 {
		t.Errorf("after the clock recovered: %d allowed, want 2", got)
	}
}

// TestConcurrentExactBurst: at a frozen clock, concurrent callers are
// admitted exactly burst times in total.
func TestConcurrentExactBurst(t *testing.T) {
	l, _ := newLimiter(map[string]float64{ClassCryptographic: 1000, "CreateKey": 5})
	var allowed, created atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				if l.Allow("111122223333", "us-east-1", []string{"GenerateMac", "VerifyMac"}[i%2]) {
					allowed.Add(1)
				}
				if l.Allow("111122223333", "us-east-1", "CreateKey") {
					created.Add(1)
				}
				l.Allow(fmt.Sprintf("acct-%d", g), "us-east-1", "GenerateMac")
			}
		}(g)
	}
	wg.Wait()
	if allowed.Load() != 1000 || created.Load() != 5 {
		t.Errorf("allowed %d crypto (want 1000) and %d CreateKey (want 5)", allowed.Load(), created.Load())
	}
}

// TestIdleScopesForgotten: memory stays bounded when many (account, region)
// pairs come and go.
func TestIdleScopesForgotten(t *testing.T) {
	l, clk := newLimiter(map[string]float64{"CreateKey": 5})
	const n = 20000
	for i := 0; i < n; i++ {
		l.Allow(fmt.Sprintf("%012d", i), "us-east-1", "CreateKey")
		if i%100 == 99 {
			clk.advance(time.Second) // earlier pairs refill and become idle
		}
	}
	// Each shard sweeps when it reaches minSweep entries, and almost all of
	// them are idle by then.
	if got := l.scopes(); got > numShards*minSweep {
		t.Errorf("%d scopes tracked after %d short-lived ones (bound %d)", got, n, numShards*minSweep)
	}
	// A forgotten scope starts full, like the one it replaces.
	if got := allowN(l, fmt.Sprintf("%012d", 0), "us-east-1", "CreateKey", 10); got != 5 {
		t.Errorf("re-created scope admitted %d, want 5", got)
	}
	// Busy scopes are kept (their buckets are not full).
	l2, clk2 := newLimiter(map[string]float64{"CreateKey": 5})
	allowN(l2, "busy", "r", "CreateKey", 5)
	for i := 0; i < 2000; i++ {
		l2.Allow(fmt.Sprintf("%012d", i), "r", "CreateKey")
	}
	clk2.advance(100 * time.Millisecond)
	if l2.Allow("busy", "r", "CreateKey") {
		t.Error("a busy scope was forgotten and refilled early")
	}
}

func BenchmarkAllow(b *testing.B) {
	l := New(DefaultAWSRates(), nil)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		l.Allow("111122223333", "us-east-1", "GenerateMac")
	}
}

func BenchmarkAllowParallel(b *testing.B) {
	l := New(DefaultAWSRates(), nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l.Allow("111122223333", "us-east-1", "GenerateMac")
		}
	})
}
