// Package engine holds keyraft's cryptography: HMAC computation and
// verification for the four KMS HMAC key specs, generation of key material,
// the Sealer that encrypts key material at rest (in the Raft log and in
// snapshots) under the cluster seal key, RSA wrapping keys for
// GetParametersForImport/ImportKeyMaterial, and loading of the seal key file.
//
// The package depends on the standard library only and holds no state besides
// what a Sealer carries. Two rules apply everywhere:
//
//   - Errors never contain key material, seal keys or plaintext: they name the
//     operation and the reason, nothing else. Callers may log them freely.
//   - MAC and VerifyMAC sit on the GenerateMac/VerifyMac hot path, so they do
//     the minimum: one algorithm switch, one hmac.New, one Sum into a buffer of
//     the right size.
package engine
