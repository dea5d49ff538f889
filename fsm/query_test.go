package fsm_test

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/keyraft/keyraft/fsm"
)

func ids(keys []fsm.Key) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.ID
	}
	return out
}

func names(as []fsm.Alias) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.Name
	}
	return out
}

func seq(prefix string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("%s%02d", prefix, i))
	}
	return out
}

func TestListKeysPagination(t *testing.T) {
	e := newEnv(t)
	// Create out of order: listing must be by id.
	for _, i := range []int{24, 3, 17, 0, 9, 11, 5, 22, 1, 14, 7, 19, 2, 20, 13, 6, 23, 10, 4, 16, 8, 21, 12, 18, 15} {
		e.create(e.hmacKey(scA, fmt.Sprintf("k%02d", i)))
	}
	e.create(e.hmacKey(scB, "b"))

	var all []string
	after := ""
	for pages := 0; ; pages++ {
		keys, more := e.f.ListKeys(scA, after, 10)
		all = append(all, ids(keys)...)
		if !more {
			if pages != 2 || len(keys) != 5 {
				t.Fatalf("last page %d has %d keys", pages, len(keys))
			}
			break
		}
		if len(keys) != 10 {
			t.Fatalf("full page has %d keys", len(keys))
		}
		after = keys[len(keys)-1].ID
	}
	if !slices.Equal(all, seq("k", 0, 25)) {
		t.Fatalf("paged ids = %v", all)
	}

	check := func(after string, limit int, want []string, wantMore bool) {
		t.Helper()
		keys, more := e.f.ListKeys(scA, after, limit)
		if got := ids(keys); !slices.Equal(got, want) || more != wantMore {
			t.Errorf("ListKeys(%q, %d) = %v, %v; want %v, %v", after, limit, got, more, want, wantMore)
		}
	}
	check("k19", 5, seq("k", 20, 25), false) // exact fit: no more
	check("k19", 4, seq("k", 20, 24), true)
	check("k095", 2, []string{"k10", "k11"}, true) // after is exclusive, need not exist
	check("k24", 10, nil, false)
	check("", 0, seq("k", 0, 25), false) // limit <= 0: everything
	if keys, more := e.f.ListKeys(fsm.Scope{Account: "nobody"}, "", 10); len(keys) != 0 || more {
		t.Fatal("unknown scope lists keys")
	}

	// Returned keys are copies.
	keys, _ := e.f.ListKeys(scA, "", 1)
	keys[0].Description = "mutated"
	keys[0].State = fsm.StateDisabled
	if k := e.key(scA, "k00"); k.Description == "mutated" || k.State != fsm.StateEnabled {
		t.Fatal("ListKeys returned state, not a copy")
	}
}

func TestListAliasesPagination(t *testing.T) {
	e := newEnv(t)
	e.create(e.hmacKey(scA, "x"))
	e.create(e.hmacKey(scA, "y"))
	e.create(e.hmacKey(scB, "x"))
	for i := 19; i >= 0; i-- { // reverse order on purpose
		target := "x"
		if i%2 == 1 {
			target = "y"
		}
		e.ok(fsm.OpCreateAlias, scA, fsm.AliasCmd{Name: fmt.Sprintf("alias/n%02d", i), TargetKeyID: target})
	}
	e.ok(fsm.OpCreateAlias, scB, fsm.AliasCmd{Name: "alias/n00", TargetKeyID: "x"})

	check := func(keyID, after string, limit int, want []string, wantMore bool) {
		t.Helper()
		as, more := e.f.ListAliases(scA, keyID, after, limit)
		if got := names(as); !slices.Equal(got, want) || more != wantMore {
			t.Errorf("ListAliases(%q, %q, %d) = %v, %v; want %v, %v", keyID, after, limit, got, more, want, wantMore)
		}
		for _, a := range as {
			if a.Scope != scA || (keyID != "" && a.TargetKeyID != keyID) {
				t.Errorf("alias %+v does not belong to the listing", a)
			}
		}
	}
	check("", "", 7, seq("alias/n", 0, 7), true)
	check("", "alias/n06", 7, seq("alias/n", 7, 14), true)
	check("", "alias/n13", 7, seq("alias/n", 14, 20), false)
	check("", "alias/n13", 6, seq("alias/n", 14, 20), false)
	check("", "", 0, seq("alias/n", 0, 20), false)
	check("x", "", 3, []string{"alias/n00", "alias/n02", "alias/n04"}, true)
	check("x", "alias/n04", 3, []string{"alias/n06", "alias/n08", "alias/n10"}, true)
	check("x", "alias/n15", 10, []string{"alias/n16", "alias/n18"}, false)
	check("y", "alias/n18", 10, []string{"alias/n19"}, false)
	check("y", "alias/n19", 10, nil, false)
	check("nokey", "", 10, nil, false)

	if got := names(e.f.AliasesOf(scA, "y")); len(got) != 10 || got[0] != "alias/n01" || got[9] != "alias/n19" {
		t.Fatalf("AliasesOf(y) = %v", got)
	}
	if got := e.f.AliasesOf(scA, ""); got != nil {
		t.Fatalf("AliasesOf(\"\") = %v", got)
	}
	if got := names(e.f.AliasesOf(scB, "x")); !slices.Equal(got, []string{"alias/n00"}) {
		t.Fatalf("AliasesOf(scB, x) = %v", got)
	}
}

// TestConcurrentReaders runs readers on every query (and snapshots) while one
// writer applies commands, as Raft does. Run with -race.
func TestConcurrentReaders(t *testing.T) {
	e := newEnv(t)
	const nKeys = 8
	for i := range nKeys {
		e.create(e.hmacKey(scA, fmt.Sprint("k", i)))
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	var reads atomic.Int64
	errs := make(chan string, 16)
	report := func(s string) {
		select {
		case errs <- s:
		default:
		}
	}
	for r := range 6 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				id := fmt.Sprint("k", (r+i)%nKeys)
				if k, ok := e.f.Key(scA, id); ok {
					// Material is immutable once published and always
					// the key's own.
					if want := material(id, 32); string(k.Material) != string(want) {
						report("material of " + id + " changed under a reader")
					}
					if !slices.IsSortedFunc(k.Tags, func(a, b fsm.Tag) int { return cmpStr(a.Key, b.Key) }) {
						report("tags not sorted")
					}
					_ = fsm.CheckUsableForMac(&k)
				}
				switch i % 7 {
				case 0:
					e.f.ListKeys(scA, "", 3)
				case 1:
					e.f.ListAliases(scA, "", "", 5)
				case 2:
					e.f.AliasesOf(scA, id)
				case 3:
					e.f.Digest()
				case 4:
					e.f.DueForDeletion(t0 + 365*day)
					e.f.ExpiredMaterial(t0 + 365*day)
				case 5:
					snapshotBytes(t, e.f)
				case 6:
					_ = e.f.AppliedIndex() + uint64(e.f.KeyCount())
				}
				reads.Add(1)
			}
		})
	}
	for i := range 1500 {
		id := fmt.Sprint("k", i%nKeys)
		alias := fmt.Sprintf("alias/a%d", i%5)
		switch i % 6 {
		case 0:
			e.apply(fsm.OpDisableKey, scA, fsm.KeyCmd{KeyID: id})
		case 1:
			e.apply(fsm.OpEnableKey, scA, fsm.KeyCmd{KeyID: id})
		case 2:
			e.apply(fsm.OpTagResource, scA, fsm.TagResourceCmd{KeyID: id, Tags: []fsm.Tag{{Key: fmt.Sprint("t", i%9), Value: fmt.Sprint(i)}}})
		case 3:
			e.apply(fsm.OpUntagResource, scA, fsm.UntagResourceCmd{KeyID: id, TagKeys: []string{fmt.Sprint("t", i%7)}})
		case 4:
			e.apply(fsm.OpCreateAlias, scA, fsm.AliasCmd{Name: alias, TargetKeyID: id})
		case 5:
			e.apply(fsm.OpDeleteAlias, scA, fsm.AliasCmd{Name: alias})
		}
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for s := range errs {
		t.Error(s)
	}
	if reads.Load() == 0 {
		t.Fatal("readers did not run")
	}
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// BenchmarkKey measures the GenerateMac hot path lookup under parallel
// readers.
func BenchmarkKey(b *testing.B) {
	e := newEnv(b)
	for i := range 1000 {
		e.create(e.hmacKey(scA, fmt.Sprint("k", i)))
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			k, ok := e.f.Key(scA, "k500")
			if !ok || fsm.CheckUsableForMac(&k) != nil {
				b.Fatal("key not usable")
			}
			i++
		}
	})
}
