package api

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/keyraft/keyraft/fsm"
)

const benchMacBody = `{"KeyId":"alias/bench","MacAlgorithm":"HMAC_SHA_256","Message":"d2hhdCBkbyB5YSB3YW50IGZvciBub3RoaW5nPw=="}`

// fixedJSON is the baseline: a bare net/http handler answering fixed JSON.
var fixedJSON = []byte(`{"KeyId":"arn:aws:kms:us-east-1:111122223333:key/11111111-1111-4111-8111-111111111111","Mac":"W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM=","MacAlgorithm":"HMAC_SHA_256"}`)

func bareHandler(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", contentTypeAmzJSON)
	_, _ = w.Write(fixedJSON)
}

func benchServer(b testing.TB) (*env, string) {
	e := newEnv(b, nil)
	seedFixedKey(b, e.store, e.sealer, e.scope, fuzzKey, "HMAC_256", fsm.OriginAWSKMS)
	applyCmd(b, e.store, e.scope, fsm.OpCreateAlias, fsm.AliasCmd{Name: "alias/bench", TargetKeyID: fuzzKey})
	return e, e.srv.URL
}

func benchClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1024, MaxConnsPerHost: 0}}
}

// runHTTP posts body to url from parallel goroutines and returns requests/s.
func runHTTP(b *testing.B, url, target, body string) {
	c := benchClient()
	defer c.CloseIdleConnections()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPost, url+"/", bytes.NewReader([]byte(body)))
			req.Header.Set("X-Amz-Target", target)
			req.Header.Set("Content-Type", contentTypeAmzJSON)
			resp, err := c.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
	})
}

func BenchmarkBareHandlerHTTP(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(bareHandler))
	defer srv.Close()
	runHTTP(b, srv.URL, "TrentService.GenerateMac", benchMacBody)
}

func BenchmarkGenerateMacHTTP(b *testing.B) {
	_, url := benchServer(b)
	runHTTP(b, url, "TrentService.GenerateMac", benchMacBody)
}

func BenchmarkVerifyMacHTTP(b *testing.B) {
	e, url := benchServer(b)
	r := e.mustCall("GenerateMac", benchMacBody)
	body := `{"KeyId":"alias/bench","MacAlgorithm":"HMAC_SHA_256","Message":"d2hhdCBkbyB5YSB3YW50IGZvciBub3RoaW5nPw==","Mac":"` + r.str("Mac") + `"}`
	runHTTP(b, url, "TrentService.VerifyMac", body)
}

// BenchmarkGenerateMacServeHTTP measures the handler alone (no network).
func BenchmarkGenerateMacServeHTTP(b *testing.B) {
	e, _ := benchServer(b)
	h := e.api.Handler()
	body := []byte(benchMacBody)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
			req.Header.Set("X-Amz-Target", "TrentService.GenerateMac")
			req.Header.Set("Content-Type", contentTypeAmzJSON)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != 200 {
				b.Fatalf("status %d", rec.Code)
			}
		}
	})
}
