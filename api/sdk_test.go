package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"hash"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
)

// wantCode asserts an SDK error's code (for errors KMS does not model, such
// as ValidationException).
func wantCode(t *testing.T, err error, code, msgSub string) {
	t.Helper()
	ae := wantErr[smithy.APIError](t, err, msgSub)
	if ae.ErrorCode() != code {
		t.Errorf("error code %q, want %q", ae.ErrorCode(), code)
	}
}

func (e *env) sdk(region string) *kms.Client {
	return kms.New(kms.Options{
		Region:           region,
		BaseEndpoint:     aws.String(e.srv.URL),
		Credentials:      credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
		RetryMaxAttempts: 1,
	})
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// wantErr asserts that err is (or wraps) the typed SDK error T.
func wantErr[T error](t *testing.T, err error, msgSub string) T {
	t.Helper()
	var target T
	if !errors.As(err, &target) {
		t.Fatalf("error %v (%T), want %T", err, err, target)
	}
	if !strings.Contains(target.Error(), msgSub) {
		t.Errorf("error %q, want it to contain %q", target.Error(), msgSub)
	}
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.ServiceRequestID() == "" {
		t.Errorf("no request id on error %v", err)
	}
	return target
}

func TestSDKKeysAndMacs(t *testing.T) {
	e := newEnv(t, nil)
	c := e.sdk("us-east-1")
	ctx := ctxT(t)

	ck, err := c.CreateKey(ctx, &kms.CreateKeyInput{
		KeySpec:     types.KeySpecHmac256,
		KeyUsage:    types.KeyUsageTypeGenerateVerifyMac,
		Description: aws.String("sdk key"),
		Tags:        []types.Tag{{TagKey: aws.String("env"), TagValue: aws.String("test")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	md := ck.KeyMetadata
	if md.KeySpec != types.KeySpecHmac256 || md.KeyUsage != types.KeyUsageTypeGenerateVerifyMac ||
		!md.Enabled || md.KeyState != types.KeyStateEnabled || md.Origin != types.OriginTypeAwsKms ||
		md.KeyManager != types.KeyManagerTypeCustomer || aws.ToBool(md.MultiRegion) ||
		len(md.MacAlgorithms) != 1 || md.MacAlgorithms[0] != types.MacAlgorithmSpecHmacSha256 ||
		aws.ToString(md.AWSAccountId) != "111122223333" || aws.ToString(md.Description) != "sdk key" ||
		aws.ToString(md.Arn) != e.arn(aws.ToString(md.KeyId)) || md.CustomerMasterKeySpec != types.CustomerMasterKeySpecHmac256 {
		t.Fatalf("metadata %+v", md)
	}
	if d := time.Since(aws.ToTime(md.CreationDate)); d < -time.Second || d > time.Minute {
		t.Errorf("CreationDate %v", md.CreationDate)
	}
	if id, ok := awsmiddleware.GetRequestIDMetadata(ck.ResultMetadata); !ok || len(id) != 36 {
		t.Errorf("request id %q", id)
	}
	keyID := aws.ToString(md.KeyId)

	if _, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/sdk"), TargetKeyId: md.Arn}); err != nil {
		t.Fatal(err)
	}
	dk, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/sdk")})
	if err != nil || aws.ToString(dk.KeyMetadata.KeyId) != keyID {
		t.Fatalf("DescribeKey: %v %+v", err, dk)
	}

	msg := []byte("what do ya want for nothing?")
	gm, err := c.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: aws.String("alias/sdk"), MacAlgorithm: types.MacAlgorithmSpecHmacSha256, Message: msg})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(gm.KeyId) != e.arn(keyID) || gm.MacAlgorithm != types.MacAlgorithmSpecHmacSha256 || len(gm.Mac) != 32 {
		t.Fatalf("GenerateMac %+v", gm)
	}
	vm, err := c.VerifyMac(ctx, &kms.VerifyMacInput{KeyId: aws.String(keyID), MacAlgorithm: types.MacAlgorithmSpecHmacSha256, Message: msg, Mac: gm.Mac})
	if err != nil || !vm.MacValid || aws.ToString(vm.KeyId) != e.arn(keyID) {
		t.Fatalf("VerifyMac: %v %+v", err, vm)
	}

	// Typed errors.
	bad := bytes.Clone(gm.Mac)
	bad[0] ^= 1
	_, err = c.VerifyMac(ctx, &kms.VerifyMacInput{KeyId: aws.String(keyID), MacAlgorithm: types.MacAlgorithmSpecHmacSha256, Message: msg, Mac: bad})
	if ie := wantErr[*types.KMSInvalidMacException](t, err, ""); ie.ErrorMessage() != "" {
		t.Errorf("KMSInvalidMacException message %q", ie.ErrorMessage())
	}
	_, err = c.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: aws.String("alias/sdk"), MacAlgorithm: types.MacAlgorithmSpecHmacSha256, Message: msg, DryRun: aws.Bool(true)})
	wantErr[*types.DryRunOperationException](t, err, "DryRun option is set")
	_, err = c.VerifyMac(ctx, &kms.VerifyMacInput{KeyId: aws.String(keyID), MacAlgorithm: types.MacAlgorithmSpecHmacSha256, Message: msg, Mac: gm.Mac, DryRun: aws.Bool(true)})
	wantErr[*types.DryRunOperationException](t, err, "DryRun option is set")
	_, err = c.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: aws.String("alias/sdk"), MacAlgorithm: types.MacAlgorithmSpecHmacSha512, Message: msg})
	wantErr[*types.InvalidKeyUsageException](t, err, "Algorithm HMAC_SHA_512 is incompatible with key spec HMAC_256.")
	_, err = c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(absentID)})
	wantErr[*types.NotFoundException](t, err, "Key '"+e.arn(absentID)+"' does not exist")
	_, err = c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/none")})
	wantErr[*types.NotFoundException](t, err, "Alias arn:aws:kms:us-east-1:111122223333:alias/none is not found.")
	_, err = c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(keyID), Plaintext: []byte("x")})
	wantErr[*types.InvalidKeyUsageException](t, err, "key usage is GENERATE_VERIFY_MAC which is not valid for Encrypt.")
	_, err = c.CreateKey(ctx, &kms.CreateKeyInput{})
	wantErr[*types.UnsupportedOperationException](t, err, "HMAC keys only")
	_, err = c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/sdk"), TargetKeyId: aws.String(keyID)})
	wantErr[*types.AlreadyExistsException](t, err, "already exists")
	_, err = c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/a:b"), TargetKeyId: aws.String(keyID)})
	wantErr[*types.InvalidAliasNameException](t, err, "alias/a:b")
	_, err = c.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(keyID), Tags: []types.Tag{{TagKey: aws.String("aws:x"), TagValue: aws.String("")}}})
	wantErr[*types.TagException](t, err, "reserved")
	_, err = c.ListKeys(ctx, &kms.ListKeysInput{Marker: aws.String("bogus!")})
	wantErr[*types.InvalidMarkerException](t, err, "marker")
	_, err = c.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(keyID), Policy: aws.String("nope")})
	wantErr[*types.MalformedPolicyDocumentException](t, err, "JSON")
	_, err = c.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: aws.String(keyID)})
	wantErr[*types.UnsupportedOperationException](t, err, "rotation")

	// Management operations.
	if _, err := c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(keyID)}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: aws.String(keyID), MacAlgorithm: types.MacAlgorithmSpecHmacSha256, Message: msg})
	wantErr[*types.DisabledException](t, err, e.arn(keyID)+" is disabled.")
	if _, err := c.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(keyID)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateKeyDescription(ctx, &kms.UpdateKeyDescriptionInput{KeyId: aws.String(keyID), Description: aws.String("")}); err != nil {
		t.Fatal(err)
	}
	tags, err := c.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: aws.String(keyID)})
	if err != nil || len(tags.Tags) != 1 || aws.ToString(tags.Tags[0].TagKey) != "env" || tags.Truncated {
		t.Fatalf("ListResourceTags %v %+v", err, tags)
	}
	if _, err := c.UntagResource(ctx, &kms.UntagResourceInput{KeyId: aws.String(keyID), TagKeys: []string{"env"}}); err != nil {
		t.Fatal(err)
	}
	pol, err := c.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: aws.String(keyID)})
	if err != nil || !strings.Contains(aws.ToString(pol.Policy), "key-default-1") || aws.ToString(pol.PolicyName) != "default" {
		t.Fatalf("GetKeyPolicy %v %+v", err, pol)
	}
	_, err = c.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(keyID), Policy: aws.String(`{"Statement":[]}`)})
	wantErr[*types.MalformedPolicyDocumentException](t, err, "will not allow you to update the key policy in the future")
	if _, err := c.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(keyID), Policy: aws.String(`{"Statement":[]}`),
		BypassPolicyLockoutSafetyCheck: true}); err != nil {
		t.Fatal(err)
	}
	lp, err := c.ListKeyPolicies(ctx, &kms.ListKeyPoliciesInput{KeyId: aws.String(keyID)})
	if err != nil || len(lp.PolicyNames) != 1 || lp.PolicyNames[0] != "default" {
		t.Fatalf("ListKeyPolicies %v %+v", err, lp)
	}
	rnd, err := c.GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(64)})
	if err != nil || len(rnd.Plaintext) != 64 {
		t.Fatalf("GenerateRandom %v", err)
	}
	_, err = c.GenerateRandom(ctx, &kms.GenerateRandomInput{})
	wantCode(t, err, "ValidationException", "NumberOfBytes is required.")

	sk, err := c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(keyID), PendingWindowInDays: aws.Int32(7)})
	if err != nil || sk.KeyState != types.KeyStatePendingDeletion || aws.ToInt32(sk.PendingWindowInDays) != 7 || aws.ToString(sk.KeyId) != e.arn(keyID) {
		t.Fatalf("ScheduleKeyDeletion %v %+v", err, sk)
	}
	if d := time.Until(aws.ToTime(sk.DeletionDate)); d < 7*24*time.Hour-time.Minute || d > 7*24*time.Hour+time.Minute {
		t.Errorf("DeletionDate in %v", d)
	}
	_, err = c.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: aws.String(keyID), MacAlgorithm: types.MacAlgorithmSpecHmacSha256, Message: msg})
	wantErr[*types.KMSInvalidStateException](t, err, "is pending deletion.")
	ckd, err := c.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: aws.String(keyID)})
	if err != nil || aws.ToString(ckd.KeyId) != e.arn(keyID) {
		t.Fatalf("CancelKeyDeletion %v", err)
	}
	_, err = c.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: aws.String(keyID)})
	wantErr[*types.KMSInvalidStateException](t, err, "is not pending deletion.")
	if _, err := c.DeleteAlias(ctx, &kms.DeleteAliasInput{AliasName: aws.String("alias/sdk")}); err != nil {
		t.Fatal(err)
	}
}

func TestSDKRegions(t *testing.T) {
	e := newEnv(t, nil)
	ctx := ctxT(t)
	eu := e.sdk("eu-west-1")
	us := e.sdk("us-east-1")
	ck, err := eu.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecHmac224, KeyUsage: types.KeyUsageTypeGenerateVerifyMac})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(aws.ToString(ck.KeyMetadata.Arn), "arn:aws:kms:eu-west-1:111122223333:key/") {
		t.Errorf("Arn %s", aws.ToString(ck.KeyMetadata.Arn))
	}
	_, err = us.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: ck.KeyMetadata.KeyId})
	wantErr[*types.NotFoundException](t, err, "does not exist")
	_, err = us.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: ck.KeyMetadata.Arn})
	wantErr[*types.NotFoundException](t, err, "Invalid arn eu-west-1")
	if _, err := eu.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: ck.KeyMetadata.Arn}); err != nil {
		t.Fatal(err)
	}
}

// wrapMaterial encrypts material for the public key GetParametersForImport
// returned.
func wrapMaterial(t *testing.T, pubDER []byte, alg types.AlgorithmSpec, material []byte) []byte {
	t.Helper()
	pub, err := x509.ParsePKIXPublicKey(pubDER)
	if err != nil {
		t.Fatal(err)
	}
	var h hash.Hash = sha256.New()
	if alg == types.AlgorithmSpecRsaesOaepSha1 {
		h = sha1.New()
	}
	ct, err := rsa.EncryptOAEP(h, rand.Reader, pub.(*rsa.PublicKey), material, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ct
}

func seq(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

// TestSDKImportRFCVectors imports the in-range vectors of kms-api.md §7
// through GetParametersForImport + ImportKeyMaterial and compares the MACs.
func TestSDKImportRFCVectors(t *testing.T) {
	e := newEnv(t, nil)
	c := e.sdk("us-east-1")
	ctx := ctxT(t)
	msg := []byte("what do ya want for nothing?")
	vectors := []struct {
		spec types.KeySpec
		alg  types.MacAlgorithmSpec
		n    int
		hex  string
	}{
		{types.KeySpecHmac224, types.MacAlgorithmSpecHmacSha224, 28, "bf43ffd96fc2324eebe3f097b440ad68045a11c24ae6e1b288531dab"},
		{types.KeySpecHmac224, types.MacAlgorithmSpecHmacSha224, 64, "f8ad08ef3ed0b456e49e920b1a2f3e6b33482455215582aae9fd786f"},
		{types.KeySpecHmac256, types.MacAlgorithmSpecHmacSha256, 32, "099805f4ac310786968565c098db515cc50862b420ae31e20238312344bed36a"},
		{types.KeySpecHmac256, types.MacAlgorithmSpecHmacSha256, 64, "5431cc41830bee7889a6b5d04b33877387ea9b8170759f4dca4323cfb5725508"},
		{types.KeySpecHmac384, types.MacAlgorithmSpecHmacSha384, 48, "822101068661a631a5bc51aa6bd788bfa7f96480291d0449f95bde86d684652a7b39c9410d114487fdc8f7a246714e42"},
		{types.KeySpecHmac384, types.MacAlgorithmSpecHmacSha384, 128, "c9c29fca7348d7199b42f78b7556c31325552abfb330e72ed240145ba451a69254ef2a967136ecea77803262f2d00494"},
		{types.KeySpecHmac512, types.MacAlgorithmSpecHmacSha512, 64, "a4e4293ad3d01934e3485a2e4b5d4d4b21eee4105f5774e35dafb3d53c6d885e47134b39a81705c0af381c23be19b9c7d63cd25fca21dcbddeb242210629f646"},
		{types.KeySpecHmac512, types.MacAlgorithmSpecHmacSha512, 128, "45a2353553c24eb6dc843fa22df01bec0a487ca3c7fe017d2d7bec8e7714686d2d9ab5a2817902eac0a6a50bcc8265f00308b8258c903c2ec7f7e4305d546cf4"},
	}
	for i, v := range vectors {
		ck, err := c.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: v.spec, KeyUsage: types.KeyUsageTypeGenerateVerifyMac, Origin: types.OriginTypeExternal})
		if err != nil {
			t.Fatal(err)
		}
		keyID := ck.KeyMetadata.KeyId
		alg := types.AlgorithmSpecRsaesOaepSha256
		if i%2 == 1 {
			alg = types.AlgorithmSpecRsaesOaepSha1
		}
		p, err := c.GetParametersForImport(ctx, &kms.GetParametersForImportInput{KeyId: keyID, WrappingAlgorithm: alg, WrappingKeySpec: types.WrappingKeySpecRsa2048})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(p.KeyId) != e.arn(aws.ToString(keyID)) || len(p.ImportToken) == 0 {
			t.Fatalf("GetParametersForImport %+v", p)
		}
		if d := time.Until(aws.ToTime(p.ParametersValidTo)); d < 23*time.Hour || d > 25*time.Hour {
			t.Errorf("ParametersValidTo in %v", d)
		}
		imp, err := c.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{
			KeyId: keyID, ImportToken: p.ImportToken, EncryptedKeyMaterial: wrapMaterial(t, p.PublicKey, alg, seq(v.n)),
			ExpirationModel: types.ExpirationModelTypeKeyMaterialDoesNotExpire,
		})
		if err != nil {
			t.Fatalf("%s/%d: ImportKeyMaterial: %v", v.spec, v.n, err)
		}
		if aws.ToString(imp.KeyId) != e.arn(aws.ToString(keyID)) || len(aws.ToString(imp.KeyMaterialId)) != 64 {
			t.Errorf("ImportKeyMaterial %+v", imp)
		}
		gm, err := c.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: keyID, MacAlgorithm: v.alg, Message: msg})
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(gm.Mac); got != v.hex {
			t.Errorf("%s key of %d bytes: MAC %s, want %s", v.spec, v.n, got, v.hex)
		}
		want, _ := hex.DecodeString(v.hex)
		if _, err := c.VerifyMac(ctx, &kms.VerifyMacInput{KeyId: keyID, MacAlgorithm: v.alg, Message: msg, Mac: want}); err != nil {
			t.Errorf("VerifyMac: %v", err)
		}
	}
}

func TestSDKImportLifecycle(t *testing.T) {
	e := newEnv(t, nil)
	c := e.sdk("us-east-1")
	ctx := ctxT(t)
	newExternal := func() *string {
		ck, err := c.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecHmac256, KeyUsage: types.KeyUsageTypeGenerateVerifyMac, Origin: types.OriginTypeExternal})
		if err != nil {
			t.Fatal(err)
		}
		return ck.KeyMetadata.KeyId
	}
	params := func(id *string) *kms.GetParametersForImportOutput {
		p, err := c.GetParametersForImport(ctx, &kms.GetParametersForImportInput{KeyId: id, WrappingAlgorithm: types.AlgorithmSpecRsaesOaepSha256, WrappingKeySpec: types.WrappingKeySpecRsa2048})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	importInto := func(id *string, p *kms.GetParametersForImportOutput, material []byte, validTo *time.Time) error {
		in := &kms.ImportKeyMaterialInput{KeyId: id, ImportToken: p.ImportToken,
			EncryptedKeyMaterial: wrapMaterial(t, p.PublicKey, types.AlgorithmSpecRsaesOaepSha256, material)}
		if validTo != nil {
			in.ValidTo = validTo
		} else {
			in.ExpirationModel = types.ExpirationModelTypeKeyMaterialDoesNotExpire
		}
		_, err := c.ImportKeyMaterial(ctx, in)
		return err
	}
	a, b := newExternal(), newExternal()
	pa, pb := params(a), params(b)
	material := seq(32)

	// A token issued for another key, garbage, a wrong ciphertext, a bad length.
	wantErr[*types.InvalidImportTokenException](t, importInto(a, pb, material, nil), "Import token is invalid")
	_, err := c.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{KeyId: a, ImportToken: []byte("garbage"), EncryptedKeyMaterial: []byte("x"),
		ExpirationModel: types.ExpirationModelTypeKeyMaterialDoesNotExpire})
	wantErr[*types.InvalidImportTokenException](t, err, "Import token is invalid")
	_, err = c.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{KeyId: a, ImportToken: pa.ImportToken, EncryptedKeyMaterial: bytes.Repeat([]byte{1}, 256),
		ExpirationModel: types.ExpirationModelTypeKeyMaterialDoesNotExpire})
	wantErr[*types.InvalidCiphertextException](t, err, "could not be decrypted")
	wantCode(t, importInto(a, pa, seq(31), nil), "ValidationException", "must be 32 to 64 bytes long")
	wantCode(t, importInto(a, pa, seq(65), nil), "ValidationException", "must be 32 to 64 bytes long")

	// Import with an expiry.
	validTo := time.Now().Add(48 * time.Hour).Truncate(time.Millisecond)
	if err := importInto(a, pa, material, &validTo); err != nil {
		t.Fatal(err)
	}
	dk, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: a})
	if err != nil {
		t.Fatal(err)
	}
	md := dk.KeyMetadata
	if md.KeyState != types.KeyStateEnabled || md.ExpirationModel != types.ExpirationModelTypeKeyMaterialExpires ||
		!aws.ToTime(md.ValidTo).Equal(validTo) || md.Origin != types.OriginTypeExternal {
		t.Fatalf("metadata after import %+v (ValidTo %v, want %v)", md, aws.ToTime(md.ValidTo), validTo)
	}
	// The same material again (same token, still valid) is accepted; other
	// material is not.
	if err := importInto(a, pa, material, &validTo); err != nil {
		t.Errorf("re-import of the same material: %v", err)
	}
	wantErr[*types.IncorrectKeyMaterialException](t, importInto(a, pa, seq(33), &validTo), "does not match")

	// A newer GetParametersForImport supersedes the old token.
	pa2 := params(a)
	wantErr[*types.InvalidImportTokenException](t, importInto(a, pa, material, nil), "Import token is invalid")
	// An expired token.
	e.clock.Advance(25 * time.Hour)
	wantErr[*types.ExpiredImportTokenException](t, importInto(a, pa2, material, nil), "expired")
	e.clock.Advance(-25 * time.Hour)

	// Delete the material: back to PendingImport.
	del, err := c.DeleteImportedKeyMaterial(ctx, &kms.DeleteImportedKeyMaterialInput{KeyId: a})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(del.KeyId) != e.arn(aws.ToString(a)) || len(aws.ToString(del.KeyMaterialId)) != 64 {
		t.Errorf("DeleteImportedKeyMaterial %+v", del)
	}
	dk, _ = c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: a})
	if dk.KeyMetadata.KeyState != types.KeyStatePendingImport || dk.KeyMetadata.ExpirationModel != "" || dk.KeyMetadata.ValidTo != nil {
		t.Errorf("metadata after delete %+v", dk.KeyMetadata)
	}
	_, err = c.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: a, MacAlgorithm: types.MacAlgorithmSpecHmacSha256, Message: []byte("x")})
	wantErr[*types.KMSInvalidStateException](t, err, "is pending import.")
	// Only the same material may come back.
	if err := importInto(a, pa2, material, nil); err != nil {
		t.Fatalf("re-import after delete: %v", err)
	}
	dk, _ = c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: a})
	if dk.KeyMetadata.ExpirationModel != types.ExpirationModelTypeKeyMaterialDoesNotExpire || dk.KeyMetadata.ValidTo != nil {
		t.Errorf("metadata after re-import %+v", dk.KeyMetadata)
	}
	gm, err := c.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: a, MacAlgorithm: types.MacAlgorithmSpecHmacSha256, Message: []byte("what do ya want for nothing?")})
	if err != nil || hex.EncodeToString(gm.Mac) != "099805f4ac310786968565c098db515cc50862b420ae31e20238312344bed36a" {
		t.Errorf("MAC after re-import: %v %x", err, gm.Mac)
	}
	// The wrapping private key is never in a response or the state in clear.
	k, _ := e.store.State().Key(e.scope, aws.ToString(a))
	if k.Import == nil || bytes.Contains(pa2.ImportToken, k.Import.SealedPrivateKey) || len(pa2.ImportToken) > 200 {
		t.Errorf("import token %d bytes", len(pa2.ImportToken))
	}
}
