// Package quota emulates AWS KMS request-rate quotas (kms-api.md §5): a
// Limiter keeps a token bucket per (account, region, quota class) and
// answers Allow in O(1) without a global lock. A refused request is answered
// with ThrottlingException (HTTP 400) and ThrottlingMessage, which every AWS
// SDK retries with backoff.
//
// Quota classes: the symmetric cryptographic operations (GenerateMac,
// VerifyMac, GenerateRandom, Encrypt, Decrypt, ...) share ClassCryptographic;
// every other limited operation has a quota of its own, named after it
// (CreateKey, DescribeKey, ...). Classes lists them with AWS's default rates;
// operations not listed are never throttled.
//
// Typical use (quotas are off unless configured; kms-api.md §9 decision 5):
//
//	rates := quota.DefaultAWSRates()
//	over, err := quota.ParseOverrides("CreateKey=10,cryptographic=100")
//	if err != nil { ... }
//	maps.Copy(rates, over)
//	lim := quota.New(rates, nil)
//	...
//	if !lim.Allow(account, region, "GenerateMac") {
//		// answer 400 {"__type": quota.ThrottlingCode, "message": quota.ThrottlingMessage}
//	}
//
// The buckets implement GCRA (one atomic "theoretical arrival time" per
// bucket): capacity = rate (at least 1 request), refilled continuously, so a
// class at 5 requests/s admits a burst of 5 and then one request every 200 ms,
// and GetParametersForImport at 0.25/s admits one request every 4 s.
// Buckets of idle (account, region) pairs are forgotten, so memory stays
// bounded by the pairs active within about one refill period.
package quota
