"""End-to-end check of keyraft with boto3 and real SigV4 signatures.

Run by TestDevSigV4WithBoto3 against `keyraft dev -auth sigv4 -credentials
testdata/credentials.json`. Endpoints come from KEYRAFT_ENDPOINTS (comma
separated). Exits non-zero with a message on the first failure.
"""
import base64
import os
import sys
import time

import boto3
import botocore.config
import botocore.exceptions

ENDPOINTS = os.environ["KEYRAFT_ENDPOINTS"].split(",")
REGION = "us-east-1"
CONFIG = botocore.config.Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=10)


def client(node, akid, secret, token=None):
    return boto3.client(
        "kms",
        endpoint_url=ENDPOINTS[node % len(ENDPOINTS)],
        region_name=REGION,
        aws_access_key_id=akid,
        aws_secret_access_key=secret,
        aws_session_token=token,
        config=CONFIG,
    )


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def expect_error(code, fn, contains=""):
    try:
        fn()
    except botocore.exceptions.ClientError as e:
        got = e.response["Error"]["Code"]
        msg = e.response["Error"].get("Message", "")
        if got != code or contains not in msg:
            fail("want %s (%r), got %s: %s" % (code, contains, got, msg))
        if e.response["ResponseMetadata"]["HTTPStatusCode"] != 400:
            fail("%s answered with HTTP %d" % (code, e.response["ResponseMetadata"]["HTTPStatusCode"]))
        if not e.response["ResponseMetadata"].get("RequestId"):
            fail("%s without a request id" % code)
        print("ok: %s: %s" % (code, msg))
        return
    fail("want %s, the call succeeded" % code)


def retry_not_found(fn, timeout=15):
    """Replication to another node is asynchronous: retry NotFound, as a client would."""
    deadline = time.time() + timeout
    while True:
        try:
            return fn()
        except botocore.exceptions.ClientError as e:
            if e.response["Error"]["Code"] != "NotFoundException" or time.time() > deadline:
                raise
            time.sleep(0.2)


alice = ("AKIAE2EALICE", "alice/e2e+secret")
carol = ("AKIAE2ECAROL", "carol-e2e-secret")
dave = ("ASIAE2EDAVE", "dave-e2e-secret", "dave-e2e-session-token")

# Create a key through the first node.
md = client(0, *alice).create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC", Description="boto3 e2e")["KeyMetadata"]
key_id, arn = md["KeyId"], md["Arn"]
if md["KeyState"] != "Enabled" or not arn.startswith("arn:aws:kms:us-east-1:111122223333:key/"):
    fail("create_key metadata: %r" % md)
print("ok: created " + arn)

# MAC on the second node, verify on the third.
message = b"hello from boto3"
mac = retry_not_found(lambda: client(1, *alice).generate_mac(KeyId=key_id, MacAlgorithm="HMAC_SHA_256", Message=message))
if mac["KeyId"] != arn or len(mac["Mac"]) != 32:
    fail("generate_mac: %r" % mac)
ver = retry_not_found(lambda: client(2, *alice).verify_mac(KeyId=key_id, MacAlgorithm="HMAC_SHA_256", Message=message, Mac=mac["Mac"]))
if not ver["MacValid"]:
    fail("verify_mac: %r" % ver)
print("ok: MAC %s verified" % base64.b64encode(mac["Mac"]).decode())

# Temporary credentials with a session token, limited to MACs.
out = client(1, *dave).generate_mac(KeyId=arn, MacAlgorithm="HMAC_SHA_256", Message=message)
if out["Mac"] != mac["Mac"]:
    fail("the session-token principal got another MAC")
print("ok: session-token principal")
expect_error("AccessDeniedException", lambda: client(1, *dave).describe_key(KeyId=key_id),
             "arn:aws:iam::111122223333:role/mac-signer is not authorized to perform: kms:DescribeKey")

# A wrong secret is refused before anything happens.
expect_error("InvalidSignatureException",
             lambda: client(0, alice[0], "not-the-secret").generate_mac(KeyId=key_id, MacAlgorithm="HMAC_SHA_256", Message=message),
             "The request signature we calculated does not match")
# So is an unknown access key.
expect_error("UnrecognizedClientException", lambda: client(2, "AKIANOBODY", "x").list_keys(), "security token")

# A principal with an empty identity policy may do nothing.
expect_error("AccessDeniedException",
             lambda: client(2, *carol).generate_mac(KeyId=key_id, MacAlgorithm="HMAC_SHA_256", Message=message),
             "User: arn:aws:iam::111122223333:user/carol is not authorized to perform: kms:GenerateMac on resource: " + arn)
expect_error("AccessDeniedException", lambda: client(0, *carol).create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC"),
             "kms:CreateKey on resource: *")

# Grants: carol (no identity policy) may use the key only through a grant.
# keyraft dev gives every node a grant propagation delay of a few seconds:
# right after CreateGrant the grantee is refused without its grant token
# and served with it, on any node, as AWS documents.
grant = client(0, *alice).create_grant(KeyId=key_id, GranteePrincipal="arn:aws:iam::111122223333:user/carol",
                                       Operations=["GenerateMac", "VerifyMac"], Name="boto3-e2e")
created = time.time()
token, grant_id = grant["GrantToken"], grant["GrantId"]
if len(grant_id) != 64:
    fail("create_grant: %r" % grant)
try:
    client(1, *carol).generate_mac(KeyId=arn, MacAlgorithm="HMAC_SHA_256", Message=message)
    if time.time() - created < 2.5:
        fail("the grantee was served without its token inside the propagation delay")
except botocore.exceptions.ClientError as e:
    if e.response["Error"]["Code"] != "AccessDeniedException":
        raise
    print("ok: AccessDeniedException without the grant token inside the propagation delay")
out = retry_not_found(lambda: client(2, *carol).generate_mac(KeyId=arn, MacAlgorithm="HMAC_SHA_256", Message=message, GrantTokens=[token]))
if out["Mac"] != mac["Mac"]:
    fail("the grantee got another MAC")
print("ok: grantee served with its grant token")
expect_error("InvalidGrantTokenException",
             lambda: client(1, *carol).generate_mac(KeyId=arn, MacAlgorithm="HMAC_SHA_256", Message=message, GrantTokens=[token[:-2] + "xx"]))
# The same Name: the same grant, a new token.
again = client(1, *alice).create_grant(KeyId=arn, GranteePrincipal="arn:aws:iam::111122223333:user/carol",
                                       Operations=["VerifyMac", "GenerateMac"], Name="boto3-e2e")
if again["GrantId"] != grant_id or again["GrantToken"] == token:
    fail("create_grant with the same Name: %r" % again)
expect_error("ValidationException",
             lambda: client(0, *alice).create_grant(KeyId=key_id, GranteePrincipal="arn:aws:iam::111122223333:user/carol", Operations=["Encrypt"]),
             "not valid for")
grants = client(2, *alice).list_grants(KeyId=key_id)["Grants"]
if [g["GrantId"] for g in grants] != [grant_id] or "GrantToken" in grants[0] or grants[0]["Operations"] != ["GenerateMac", "VerifyMac"]:
    fail("list_grants: %r" % grants)
print("ok: list_grants")
client(0, *alice).revoke_grant(KeyId=key_id, GrantId=grant_id)
print("ok: revoke_grant")

print("PASS")
