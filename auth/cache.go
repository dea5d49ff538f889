package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"hash/maphash"
	"sync/atomic"
)

// cacheSlots is the size of the signing-key cache (a power of two). Keys are
// valid for one (secret, date, region), so a busy server needs about one
// slot per active principal and region, plus the day before around midnight.
const cacheSlots = 512

// signingKey is a derived SigV4 signing key, stored as the two HMAC-SHA256
// pad blocks so that signing a string costs two SHA-256 calls and no
// allocation.
type signingKey struct {
	secret, date, region string
	ipad, opad           [sha256.BlockSize]byte
}

// keyCache is a lock-free direct-mapped cache: a colliding entry simply
// replaces the previous one. Entries are immutable.
type keyCache struct {
	seed  maphash.Seed
	slots [cacheSlots]atomic.Pointer[signingKey]
}

func (c *keyCache) init() { c.seed = maphash.MakeSeed() }

func (c *keyCache) slot(secret, date, region string) *atomic.Pointer[signingKey] {
	h := maphash.String(c.seed, secret)
	h = h*0x9E3779B97F4A7C15 ^ maphash.String(c.seed, date)
	h = h*0x9E3779B97F4A7C15 ^ maphash.String(c.seed, region)
	return &c.slots[h&(cacheSlots-1)]
}

func (c *keyCache) get(secret, date, region string) *signingKey {
	k := c.slot(secret, date, region).Load()
	if k != nil && k.date == date && k.region == region && k.secret == secret {
		return k
	}
	return nil
}

func (c *keyCache) put(k *signingKey) { c.slot(k.secret, k.date, k.region).Store(k) }

// signingKey returns the key for (secret, date, region) and whether it was
// derived now (and is therefore not cached yet).
func (v *Verifier) signingKey(secret, date, region string) (*signingKey, bool) {
	if k := v.cache.get(secret, date, region); k != nil {
		return k, false
	}
	v.derivations.Add(1)
	raw := deriveKey(secret, date, region, v.service)
	k := &signingKey{secret: secret, date: date, region: region}
	for i := range k.ipad {
		k.ipad[i], k.opad[i] = 0x36, 0x5c
	}
	for i, b := range raw {
		k.ipad[i] ^= b
		k.opad[i] ^= b
	}
	// The cache may outlive the request: own the substrings of the header.
	k.date, k.region = string([]byte(date)), string([]byte(region))
	return k, true
}

// deriveKey is the SigV4 key derivation:
// kSigning = HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service), "aws4_request").
func deriveKey(secret, date, region, service string) []byte {
	mac := func(key []byte, data string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(data))
		return h.Sum(nil)
	}
	k := mac([]byte("AWS4"+secret), date)
	k = mac(k, region)
	k = mac(k, service)
	return mac(k, terminator)
}
