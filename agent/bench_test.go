package agent_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyraft/keyraft/auth"
	"github.com/keyraft/keyraft/keyrafttest"
)

// benchClients is how many concurrent clients drive the HTTP benchmarks.
const benchClients = 32

var benchMessage = bytes.Repeat([]byte{0x5a}, 32)

func benchHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute}}
}

// drive sends n requests from benchClients goroutines and returns the
// elapsed wall time. Any non-200 answer fails the benchmark.
func drive(b *testing.B, client *http.Client, url, target string, body []byte, n int, hdr http.Header) time.Duration {
	var next atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < benchClients; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/x-amz-json-1.1")
				req.Header.Set("X-Amz-Target", target)
				for k, v := range hdr {
					req.Header[k] = v
				}
				resp, err := client.Do(req)
				if err != nil {
					failed.CompareAndSwap(nil, err.Error())
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.CompareAndSwap(nil, resp.Status)
					return
				}
			}
		}()
	}
	wg.Wait()
	if f := failed.Load(); f != nil {
		b.Fatalf("request failed: %v", f)
	}
	return time.Since(start)
}

// bareServer is the baseline: a net/http handler on a real listener that
// answers every request with a fixed JSON body of the given size.
func bareServer(b *testing.B, answer []byte) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_, _ = w.Write(answer)
	})}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String() + "/"
}

// benchMacOp compares op (GenerateMac or VerifyMac) through one node's full
// stack (listener, router, JSON, key lookup, HMAC) with the bare handler, in
// the same process and run. Metrics: ns/op of each, and ratio =
// keyraft throughput / bare throughput (target for GenerateMac: >= 0.75).
//
// With sigv4 the node runs -auth sigv4 and every request carries a real SDK
// signature (made once, before the timed region, and sent with every
// request, to the bare handler too): the node verifies it and authorizes the
// call (default key policy, administrator caller) on each request.
func benchMacOp(b *testing.B, op string, sigv4 bool) {
	opts := keyrafttest.Options{Nodes: 1}
	var principal *auth.Principal
	if sigv4 {
		principal = &auth.Principal{AccessKeyID: "AKIABENCH", SecretAccessKey: "bench-secret", AccountID: "111122223333",
			ARN: "arn:aws:iam::111122223333:user/bench"}
		creds, err := auth.NewCredentials([]auth.Principal{*principal})
		if err != nil {
			b.Fatal(err)
		}
		opts.Auth, opts.Credentials = "sigv4", creds
	}
	c := keyrafttest.Start(b, opts)
	client := c.Client(0)
	ctx := context.Background()
	md, err := client.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecHmac256, KeyUsage: types.KeyUsageTypeGenerateVerifyMac})
	if err != nil {
		b.Fatal(err)
	}
	g, err := client.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: md.KeyMetadata.KeyId, MacAlgorithm: types.MacAlgorithmSpecHmacSha256, Message: benchMessage})
	if err != nil {
		b.Fatal(err)
	}
	req := map[string]string{"KeyId": *md.KeyMetadata.KeyId, "MacAlgorithm": "HMAC_SHA_256", "Message": base64.StdEncoding.EncodeToString(benchMessage)}
	if op == "VerifyMac" {
		req["Mac"] = base64.StdEncoding.EncodeToString(g.Mac)
	}
	body, _ := json.Marshal(req)

	hc := benchHTTPClient()
	url := c.Endpoint(0) + "/"
	// One real answer tells the baseline how large its fixed answer must be.
	probe, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	probe.Header.Set("X-Amz-Target", "TrentService."+op)
	probe.Header.Set("Content-Type", "application/x-amz-json-1.1")
	var signed http.Header
	if sigv4 {
		sum := sha256.Sum256(body)
		if err := v4.NewSigner().SignHTTP(ctx, aws.Credentials{AccessKeyID: principal.AccessKeyID, SecretAccessKey: principal.SecretAccessKey},
			probe, hex.EncodeToString(sum[:]), "kms", "us-east-1", time.Now()); err != nil {
			b.Fatal(err)
		}
		signed = http.Header{}
		for _, k := range []string{"Authorization", "X-Amz-Date"} {
			signed[k] = probe.Header[k]
		}
	}
	resp, err := hc.Do(probe)
	if err != nil {
		b.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		b.Fatalf("%s: %s", op, answer)
	}
	bare := bareServer(b, answer)

	// Warm both up so connection setup is not measured.
	drive(b, hc, bare, "TrentService."+op, body, 2000, signed)
	drive(b, hc, url, "TrentService."+op, body, 2000, signed)
	// Interleave the two in rounds (bare, keyraft, bare, keyraft, ...) so
	// that a slow drift of the machine (another process, frequency scaling,
	// the GC of earlier work) weighs on both sides alike.
	const rounds = 8
	b.ResetTimer()
	var bareTime, kmsTime time.Duration
	for r := 0; r < rounds; r++ {
		n := b.N / rounds
		if r < b.N%rounds {
			n++
		}
		if n == 0 {
			continue
		}
		bareTime += drive(b, hc, bare, "TrentService."+op, body, n, signed)
		kmsTime += drive(b, hc, url, "TrentService."+op, body, n, signed)
	}
	b.StopTimer()
	b.ReportMetric(float64(bareTime.Nanoseconds())/float64(b.N), "bare-ns/op")
	b.ReportMetric(float64(kmsTime.Nanoseconds())/float64(b.N), "keyraft-ns/op")
	b.ReportMetric(bareTime.Seconds()/kmsTime.Seconds(), "ratio")
}

func BenchmarkGenerateMac(b *testing.B)      { benchMacOp(b, "GenerateMac", false) }
func BenchmarkVerifyMac(b *testing.B)        { benchMacOp(b, "VerifyMac", false) }
func BenchmarkGenerateMacSigV4(b *testing.B) { benchMacOp(b, "GenerateMac", true) }
func BenchmarkVerifyMacSigV4(b *testing.B)   { benchMacOp(b, "VerifyMac", true) }

// BenchmarkCreateKey3Node measures CreateKey on a 3-node cluster: latency
// of one client's sequential calls (p50, p99) and the throughput of
// benchClients concurrent clients, all sent to the leader.
func BenchmarkCreateKey3Node(b *testing.B) {
	c := keyrafttest.Start(b, keyrafttest.Options{})
	leader := c.WaitForLeader(10 * time.Second)
	client := kms.New(c.Client(leader).Options(), func(o *kms.Options) { o.HTTPClient = benchHTTPClient() })
	in := &kms.CreateKeyInput{KeySpec: types.KeySpecHmac256, KeyUsage: types.KeyUsageTypeGenerateVerifyMac}
	b.ResetTimer()
	lat := make([]time.Duration, 0, b.N)
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if _, err := client.CreateKey(context.Background(), in); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[(len(lat)*99)/100].Microseconds())/1000, "p99-ms")

	// Throughput with concurrent clients, same cluster.
	n := b.N * 4
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < benchClients; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				if _, err := client.CreateKey(context.Background(), in); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "keys/s")
}
