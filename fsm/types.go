package fsm

// KeyState is the AWS KeyState of a KMS key.
type KeyState string

// The key states keyraft models. Creating, Updating, Unavailable and
// PendingReplicaDeletion belong to features keyraft does not serve.
const (
	StateEnabled         KeyState = "Enabled"
	StateDisabled        KeyState = "Disabled"
	StatePendingDeletion KeyState = "PendingDeletion"
	StatePendingImport   KeyState = "PendingImport"
)

// Origins of key material.
const (
	OriginAWSKMS   = "AWS_KMS"
	OriginExternal = "EXTERNAL"
)

// Expiration models of imported key material.
const (
	KeyMaterialExpires       = "KEY_MATERIAL_EXPIRES"
	KeyMaterialDoesNotExpire = "KEY_MATERIAL_DOES_NOT_EXPIRE"
)

// Scope is the (account, region) partition that every key and alias lives in.
// Keys of different scopes never see each other.
type Scope struct {
	Account string `json:"account"`
	Region  string `json:"region"`
}

// Tag is one user tag of a key.
type Tag struct {
	Key   string `json:"k"`
	Value string `json:"v"`
}

// ImportParams are the parameters of the latest GetParametersForImport call
// on a key: the RSA private wrapping key (sealed, PKCS#8) and the id that the
// import token names. Only the newest set is kept, as in AWS.
type ImportParams struct {
	TokenID           string `json:"token_id"`
	SealedPrivateKey  []byte `json:"sealed_private_key"`
	WrappingAlgorithm string `json:"wrapping_algorithm"`
	WrappingKeySpec   string `json:"wrapping_key_spec"`
	ValidTo           int64  `json:"valid_to"` // unix nanoseconds
}

// Key is one KMS key as replicated. All times are unix nanoseconds chosen by
// the proposer. Material is the only field that is not replicated: it is the
// plaintext key material, unsealed locally when the key is applied or
// restored, and never serialised.
type Key struct {
	Scope
	ID              string        `json:"id"`
	ARN             string        `json:"arn"`
	KeySpec         string        `json:"key_spec"`
	KeyUsage        string        `json:"key_usage"`
	Origin          string        `json:"origin"`
	State           KeyState      `json:"state"`
	Description     string        `json:"description"`
	CreationDate    int64         `json:"creation_date"`
	DeletionDate    int64         `json:"deletion_date,omitempty"`
	Policy          string        `json:"policy"`
	Tags            []Tag         `json:"tags,omitempty"` // sorted by Key
	SealedMaterial  []byte        `json:"sealed_material,omitempty"`
	MaterialDigest  string        `json:"material_digest,omitempty"` // keyed fingerprint, for re-import identity checks
	ExpirationModel string        `json:"expiration_model,omitempty"`
	ValidTo         int64         `json:"valid_to,omitempty"`
	Import          *ImportParams `json:"import,omitempty"`

	// Material is the unsealed key material (nil when there is none, or when
	// it could not be unsealed: see MaterialErr). Never serialised.
	Material []byte `json:"-"`
	// MaterialErr is set when SealedMaterial could not be unsealed on this
	// node (wrong seal key). Never serialised.
	MaterialErr string `json:"-"`
}

// Alias maps an alias name (alias/...) to a key of the same scope.
type Alias struct {
	Scope
	Name            string `json:"name"`
	ARN             string `json:"arn"`
	TargetKeyID     string `json:"target_key_id"`
	CreationDate    int64  `json:"creation_date"`
	LastUpdatedDate int64  `json:"last_updated_date"`
}
