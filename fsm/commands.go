package fsm

import (
	"encoding/json"
	"fmt"
)

// CommandVersion is the version of the command encoding this build writes.
// Apply accepts every version up to this one and rejects newer ones, so a
// node that is older than the log it replays fails loudly instead of
// mis-applying it.
const CommandVersion = 1

// Op names one kind of state change.
type Op string

// The replicated operations. Their payloads are the *Cmd structs below.
const (
	OpCreateKey                 Op = "CreateKey"
	OpEnableKey                 Op = "EnableKey"
	OpDisableKey                Op = "DisableKey"
	OpScheduleKeyDeletion       Op = "ScheduleKeyDeletion"
	OpCancelKeyDeletion         Op = "CancelKeyDeletion"
	OpUpdateKeyDescription      Op = "UpdateKeyDescription"
	OpCreateAlias               Op = "CreateAlias"
	OpUpdateAlias               Op = "UpdateAlias"
	OpDeleteAlias               Op = "DeleteAlias"
	OpTagResource               Op = "TagResource"
	OpUntagResource             Op = "UntagResource"
	OpPutKeyPolicy              Op = "PutKeyPolicy"
	OpSetImportParameters       Op = "SetImportParameters"
	OpImportKeyMaterial         Op = "ImportKeyMaterial"
	OpDeleteImportedKeyMaterial Op = "DeleteImportedKeyMaterial"
	// OpDeleteKey is proposed by the leader's reaper once a key's
	// DeletionDate has passed; OpExpireKeyMaterial once imported material's
	// ValidTo has passed. Both re-check their condition against Command.Time
	// inside Apply, so a late or duplicated proposal is harmless.
	OpDeleteKey         Op = "DeleteKey"
	OpExpireKeyMaterial Op = "ExpireKeyMaterial"
)

// Command is one entry of the Raft log. Time is the proposer's clock (unix
// nanoseconds): Apply never reads a clock of its own.
type Command struct {
	Version int             `json:"v"`
	Op      Op              `json:"op"`
	Time    int64           `json:"t"`
	Scope   Scope           `json:"scope"`
	Payload json.RawMessage `json:"p"`
}

// CreateKeyCmd carries the complete new key as the proposer built it (id,
// ARN, sealed material, policy, tags, creation date, initial state).
type CreateKeyCmd struct {
	Key Key `json:"key"`
}

// KeyCmd names a key by id; used by EnableKey, DisableKey, CancelKeyDeletion,
// DeleteImportedKeyMaterial, DeleteKey and ExpireKeyMaterial.
type KeyCmd struct {
	KeyID string `json:"key_id"`
}

// ScheduleKeyDeletionCmd schedules deletion at DeletionDate (unix ns),
// computed by the proposer from PendingWindowInDays.
type ScheduleKeyDeletionCmd struct {
	KeyID               string `json:"key_id"`
	PendingWindowInDays int    `json:"pending_window_in_days"`
	DeletionDate        int64  `json:"deletion_date"`
}

// UpdateKeyDescriptionCmd replaces a key's description.
type UpdateKeyDescriptionCmd struct {
	KeyID       string `json:"key_id"`
	Description string `json:"description"`
}

// AliasCmd creates or re-points an alias (TargetKeyID unused by DeleteAlias).
type AliasCmd struct {
	Name        string `json:"name"`
	TargetKeyID string `json:"target_key_id,omitempty"`
}

// TagResourceCmd adds or replaces tags.
type TagResourceCmd struct {
	KeyID string `json:"key_id"`
	Tags  []Tag  `json:"tags"`
}

// UntagResourceCmd removes tags by key; absent keys are ignored.
type UntagResourceCmd struct {
	KeyID   string   `json:"key_id"`
	TagKeys []string `json:"tag_keys"`
}

// PutKeyPolicyCmd replaces the key policy.
type PutKeyPolicyCmd struct {
	KeyID  string `json:"key_id"`
	Policy string `json:"policy"`
}

// SetImportParametersCmd records the newest import parameters of a key.
type SetImportParametersCmd struct {
	KeyID  string       `json:"key_id"`
	Import ImportParams `json:"import"`
}

// ImportKeyMaterialCmd installs imported material, already unwrapped by the
// proposer and sealed under the cluster seal key. TokenID must name the
// key's current import parameters.
type ImportKeyMaterialCmd struct {
	KeyID           string `json:"key_id"`
	TokenID         string `json:"token_id"`
	SealedMaterial  []byte `json:"sealed_material"`
	MaterialDigest  string `json:"material_digest"`
	ExpirationModel string `json:"expiration_model"`
	ValidTo         int64  `json:"valid_to,omitempty"`
}

// Encode builds the log entry for op with the given payload.
func Encode(op Op, time int64, scope Scope, payload any) ([]byte, error) {
	p, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("encode %s payload: %w", op, err)
	}
	return json.Marshal(Command{Version: CommandVersion, Op: op, Time: time, Scope: scope, Payload: p})
}

// Result is what Apply returns for every entry, and what travels back to the
// node that took the request when a write was forwarded to the leader. Error
// is set when the command was refused by the state it met (its Code is the
// AWS error name); Key is the key after the change (without SealedMaterial,
// Import or Material), Alias the alias after the change, Grant the grant
// after the change (for a CreateGrant answered by Name idempotency: the
// existing grant).
type Result struct {
	Error *Error `json:"error,omitempty"`
	Key   *Key   `json:"key,omitempty"`
	Alias *Alias `json:"alias,omitempty"`
	Grant *Grant `json:"grant,omitempty"`
}

// Error is a refusal decided by the replicated state. Code is an AWS error
// name (NotFoundException, KMSInvalidStateException, ...), Message AWS's text.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }
