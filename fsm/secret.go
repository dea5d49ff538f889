package fsm

import "slices"

// OpInitClusterSecret installs the cluster secret that signs grant tokens
// (ClusterSecretCmd). The leader proposes it when the state has none; it is
// applied only if no secret exists yet, so of two racing proposals the
// first one committed wins and the second is refused without any change.
const OpInitClusterSecret Op = "InitClusterSecret"

// ClusterSecretAAD is the AAD the cluster secret is sealed with (and
// unsealed with through Options.Unseal).
const ClusterSecretAAD = "keyraft:grant-token-secret"

// ClusterSecretCmd carries the cluster secret sealed under the seal key
// with aad ClusterSecretAAD. The plaintext never enters the log, a snapshot
// or a Result.
type ClusterSecretCmd struct {
	Sealed []byte `json:"sealed"`
}

// ErrSecretExists is InitClusterSecret's refusal when a secret is already
// installed.
func ErrSecretExists() *Error { return ErrInternal("cluster secret already initialised") }

// unsealSecret sets f.secret (or f.secretErr) from f.sealedSecret. It
// always assigns fresh values, since readers may hold the old secret slice.
// Callers hold f.mu for writing, or own f (Restore builds aside).
func (f *FSM) unsealSecret() {
	f.secret, f.secretErr = unsealClusterSecret(f.unseal, f.sealedSecret)
}

func unsealClusterSecret(unseal func(sealed, aad []byte) ([]byte, error), sealed []byte) ([]byte, string) {
	if len(sealed) == 0 || unseal == nil {
		return nil, ""
	}
	s, err := unseal(sealed, []byte(ClusterSecretAAD))
	if err != nil {
		// This node's seal key does not open the secret: it cannot verify
		// or issue grant tokens, but the replicated state is unaffected.
		return nil, "unseal cluster secret: " + err.Error()
	}
	if len(s) == 0 {
		return nil, "unseal cluster secret: empty secret"
	}
	return slices.Clip(s), ""
}

func (f *FSM) applyInitClusterSecret(cmd *Command) *Result {
	var p ClusterSecretCmd
	if e := payload(cmd, &p); e != nil {
		return errResult(e)
	}
	if len(p.Sealed) == 0 {
		return errResult(ErrInternal("malformed InitClusterSecret payload: no sealed secret"))
	}
	if len(f.sealedSecret) > 0 {
		return errResult(ErrSecretExists())
	}
	f.sealedSecret = slices.Clip(p.Sealed)
	f.unsealSecret()
	return &Result{}
}

// ClusterSecret returns the unsealed cluster secret, and false when the
// state holds none or this node could not unseal it (ClusterSecretErr says
// why). The slice is shared with the state and must not be modified.
func (f *FSM) ClusterSecret() ([]byte, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.secret, len(f.secret) > 0
}

// HasClusterSecret reports whether the replicated state holds a (sealed)
// cluster secret, whether or not this node could unseal it: when false, the
// leader proposes OpInitClusterSecret.
func (f *FSM) HasClusterSecret() bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return len(f.sealedSecret) > 0
}

// ClusterSecretErr is the reason this node could not unseal the cluster
// secret ("" when it could, or when there is none). It never contains the
// secret.
func (f *FSM) ClusterSecretErr() string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.secretErr
}
