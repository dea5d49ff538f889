package engine

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
)

// NewSealKey returns a new seal key: 32 random bytes, standard base64, as
// written to a seal key file (keyraft keygen).
func NewSealKey() string {
	b := make([]byte, SealKeySize)
	// crypto/rand.Read never returns an error (it aborts the program if the
	// OS cannot supply randomness), so there is nothing to handle.
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// LoadSealKey reads a seal key file: standard base64 of exactly 32 bytes,
// surrounding whitespace ignored. Errors name the file and the problem but
// never include any of its content.
func LoadSealKey(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("engine: read seal key file: %w", err)
	}
	text := bytes.TrimSpace(raw)
	if len(text) == 0 {
		return nil, fmt.Errorf("engine: seal key file %s is empty", path)
	}
	key := make([]byte, base64.StdEncoding.DecodedLen(len(text)))
	n, err := base64.StdEncoding.Decode(key, text)
	if err != nil {
		// base64.CorruptInputError carries only an offset, but the message
		// is kept fixed so that no future change can echo file content.
		return nil, fmt.Errorf("engine: seal key file %s is not valid standard base64", path)
	}
	if n != SealKeySize {
		return nil, fmt.Errorf("engine: seal key file %s holds %d bytes after base64 decoding, want %d", path, n, SealKeySize)
	}
	return key[:n], nil
}
