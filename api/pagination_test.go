package api

import (
	"fmt"
	"slices"
	"sort"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
)

// pages walks a list operation with Limit and returns the pages' item names.
func pages(t *testing.T, e *env, op, listKey, nameKey, extra string, limit int) [][]string {
	t.Helper()
	var out [][]string
	marker := ""
	for i := 0; i < 100; i++ {
		body := fmt.Sprintf(`{"Limit":%d%s`, limit, extra)
		if marker != "" {
			body += `,"Marker":` + jsonStr(marker)
		}
		r := e.mustCall(op, body+"}")
		items := r.obj[listKey].([]any)
		var names []string
		for _, it := range items {
			names = append(names, it.(map[string]any)[nameKey].(string))
		}
		out = append(out, names)
		truncated := r.obj["Truncated"].(bool)
		nm, hasMarker := r.obj["NextMarker"].(string)
		if truncated != hasMarker {
			t.Fatalf("%s: Truncated=%v but NextMarker present=%v (%s)", op, truncated, hasMarker, r.body)
		}
		if !truncated {
			return out
		}
		if len(items) == 0 {
			t.Fatalf("%s: truncated empty page", op)
		}
		marker = nm
	}
	t.Fatalf("%s: pagination does not end", op)
	return nil
}

func flatten(p [][]string) []string {
	var all []string
	for _, pg := range p {
		all = append(all, pg...)
	}
	return all
}

func TestPagination(t *testing.T) {
	e := newEnv(t, nil)
	var ids []string
	for i := 0; i < 7; i++ {
		ids = append(ids, e.createKey("HMAC_256", ""))
	}
	sort.Strings(ids)

	t.Run("ListKeys", func(t *testing.T) {
		p := pages(t, e, "ListKeys", "Keys", "KeyId", "", 3)
		if len(p) != 3 || len(p[0]) != 3 || len(p[1]) != 3 || len(p[2]) != 1 {
			t.Fatalf("pages %v", p)
		}
		if all := flatten(p); !slices.Equal(all, ids) {
			t.Errorf("keys %v, want %v", all, ids)
		}
		// Exactly one page when Limit >= count: not truncated.
		if p := pages(t, e, "ListKeys", "Keys", "KeyId", "", 7); len(p) != 1 || len(p[0]) != 7 {
			t.Errorf("limit 7: %v", p)
		}
		// Default limit (100) and KeyArn members.
		r := e.mustCall("ListKeys", `{}`)
		keys := r.obj["Keys"].([]any)
		if len(keys) != 7 || r.obj["Truncated"] != false {
			t.Fatalf("ListKeys %s", r.body)
		}
		k0 := keys[0].(map[string]any)
		if k0["KeyArn"] != e.arn(ids[0]) || k0["KeyId"] != ids[0] || len(k0) != 2 {
			t.Errorf("entry %v", k0)
		}
		if _, ok := r.obj["NextMarker"]; ok {
			t.Errorf("NextMarker on an untruncated page")
		}
	})

	for i := 0; i < 5; i++ {
		e.mustCall("CreateAlias", fmt.Sprintf(`{"AliasName":"alias/a%d","TargetKeyId":"%s"}`, i, ids[i%2]))
	}
	t.Run("ListAliases", func(t *testing.T) {
		p := pages(t, e, "ListAliases", "Aliases", "AliasName", "", 2)
		if all := flatten(p); !slices.Equal(all, []string{"alias/a0", "alias/a1", "alias/a2", "alias/a3", "alias/a4"}) || len(p) != 3 {
			t.Errorf("aliases %v", p)
		}
		p = pages(t, e, "ListAliases", "Aliases", "AliasName", `,"KeyId":"`+ids[0]+`"`, 2)
		if all := flatten(p); !slices.Equal(all, []string{"alias/a0", "alias/a2", "alias/a4"}) || len(p) != 2 {
			t.Errorf("aliases of key 0: %v", p)
		}
	})

	e.mustCall("TagResource", `{"KeyId":"`+ids[0]+`","Tags":[{"TagKey":"e","TagValue":"5"},{"TagKey":"a","TagValue":"1"},{"TagKey":"c","TagValue":"3"},{"TagKey":"b","TagValue":"2"},{"TagKey":"d","TagValue":"4"}]}`)
	t.Run("ListResourceTags", func(t *testing.T) {
		p := pages(t, e, "ListResourceTags", "Tags", "TagKey", `,"KeyId":"`+ids[0]+`"`, 2)
		if all := flatten(p); !slices.Equal(all, []string{"a", "b", "c", "d", "e"}) || len(p) != 3 {
			t.Errorf("tags %v", p)
		}
		if p := pages(t, e, "ListResourceTags", "Tags", "TagKey", `,"KeyId":"`+ids[0]+`"`, 5); len(p) != 1 {
			t.Errorf("limit 5: %v", p)
		}
	})

	t.Run("SDK paginators", func(t *testing.T) {
		c := e.sdk("us-east-1")
		ctx := ctxT(t)
		var got []string
		pg := kms.NewListKeysPaginator(c, &kms.ListKeysInput{Limit: aws.Int32(2)})
		n := 0
		for pg.HasMorePages() {
			out, err := pg.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			n++
			for _, k := range out.Keys {
				got = append(got, aws.ToString(k.KeyId))
			}
		}
		if !slices.Equal(got, ids) || n != 4 {
			t.Errorf("ListKeys paginator: %d pages %v", n, got)
		}
		var aliases []string
		ap := kms.NewListAliasesPaginator(c, &kms.ListAliasesInput{Limit: aws.Int32(3)})
		for ap.HasMorePages() {
			out, err := ap.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range out.Aliases {
				aliases = append(aliases, aws.ToString(a.AliasName))
				if a.CreationDate == nil || a.LastUpdatedDate == nil || aws.ToString(a.TargetKeyId) == "" {
					t.Errorf("alias entry %+v", a)
				}
			}
		}
		if len(aliases) != 5 {
			t.Errorf("ListAliases paginator %v", aliases)
		}
		var tags []string
		tp := kms.NewListResourceTagsPaginator(c, &kms.ListResourceTagsInput{KeyId: aws.String(ids[0]), Limit: aws.Int32(4)})
		for tp.HasMorePages() {
			out, err := tp.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, tg := range out.Tags {
				tags = append(tags, aws.ToString(tg.TagKey))
			}
		}
		if !slices.Equal(tags, []string{"a", "b", "c", "d", "e"}) {
			t.Errorf("ListResourceTags paginator %v", tags)
		}
	})

	t.Run("markers are scoped to their list", func(t *testing.T) {
		r := e.mustCall("ListAliases", `{"Limit":1}`)
		m := r.str("NextMarker")
		checkAWSError(t, e.call("ListKeys", `{"Marker":`+jsonStr(m)+`}`), 400, "InvalidMarkerException", "")
		r = e.mustCall("ListKeys", `{"Limit":1}`)
		checkAWSError(t, e.call("ListAliases", `{"Marker":`+jsonStr(r.str("NextMarker"))+`}`), 400, "InvalidMarkerException", "")
	})
}
