"""The test setup itself, checked directly against moto without s3seal.

These tests show that moto verifies signatures with the upstream credentials,
and that the upstream checks used by the other tests can fail.
"""

import os

import botocore.exceptions
import pytest

import harness


@pytest.fixture
def moto_bucket(upstream) -> str:
    name = harness.unique_name("harness")
    upstream.client.create_bucket(Bucket=name)
    return name


def moto_error(call) -> str:
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        call()
    return raised.value.response["Error"]["Code"]


def test_moto_rejects_unknown_key(moto):
    client = harness.s3_client(moto.endpoint, "AKIDNOTINMOTO0000000", "not-a-secret")

    assert moto_error(client.list_buckets) == "InvalidAccessKeyId"


def test_moto_rejects_wrong_secret(moto, upstream_credentials):
    client = harness.s3_client(moto.endpoint, upstream_credentials.access_key_id, "wrong-secret")

    assert moto_error(client.list_buckets) == "SignatureDoesNotMatch"


def test_moto_accepts_upstream_key(upstream, moto_bucket):
    upstream.client.put_object(Bucket=moto_bucket, Key="direct", Body=b"direct")

    assert upstream.read(moto_bucket, "direct")[0] == b"direct"
    assert upstream.exists(moto_bucket, "direct")
    assert not upstream.exists(moto_bucket, "absent")


def test_sealed_size():
    assert harness.sealed_size(0) == 16
    assert harness.sealed_size(1) == 17
    assert harness.sealed_size(65536) == 65536 + 16
    assert harness.sealed_size(65537) == 65537 + 32
    assert harness.sealed_size(1024 * 1024) == 1024 * 1024 + 16 * 16


def test_client_etag_forms():
    data = b"content"

    harness.assert_client_etag(harness.md5_etag(data), data)
    harness.assert_client_etag('"0123456789abcdef0123456789abcdef-0"', data)
    harness.assert_client_etag('"0123456789abcdef0123456789abcdef-3"', data)
    with pytest.raises(AssertionError, match="has the form of an MD5"):
        harness.assert_client_etag(harness.md5_etag(b"ciphertext"), data)


def test_assert_encrypted_accepts_sealed_shape(upstream, moto_bucket):
    plaintext = os.urandom(70_000)
    metadata = {name: "x" for name in harness.SEAL_METADATA}
    upstream.client.put_object(
        Bucket=moto_bucket, Key="sealed", Body=os.urandom(harness.sealed_size(len(plaintext))), Metadata=metadata
    )

    upstream.assert_encrypted(moto_bucket, "sealed", plaintext)


def test_assert_encrypted_rejects_plaintext(upstream, moto_bucket):
    plaintext = os.urandom(1000)
    metadata = {name: "x" for name in harness.SEAL_METADATA}
    upstream.client.put_object(Bucket=moto_bucket, Key="plain", Body=plaintext, Metadata=metadata)

    with pytest.raises(AssertionError, match="stored as plaintext"):
        upstream.assert_encrypted(moto_bucket, "plain", plaintext)


def test_assert_encrypted_rejects_embedded_plaintext(upstream, moto_bucket):
    plaintext = os.urandom(1000)
    metadata = {name: "x" for name in harness.SEAL_METADATA}
    upstream.client.put_object(Bucket=moto_bucket, Key="embedded", Body=plaintext + os.urandom(16), Metadata=metadata)

    with pytest.raises(AssertionError, match="contains the plaintext"):
        upstream.assert_encrypted(moto_bucket, "embedded", plaintext)


def test_assert_encrypted_rejects_wrong_size(upstream, moto_bucket):
    plaintext = os.urandom(65537)
    metadata = {name: "x" for name in harness.SEAL_METADATA}
    upstream.client.put_object(Bucket=moto_bucket, Key="short", Body=os.urandom(65537 + 16), Metadata=metadata)

    with pytest.raises(AssertionError, match="expected 65569"):
        upstream.assert_encrypted(moto_bucket, "short", plaintext)


def test_assert_encrypted_rejects_missing_metadata(upstream, moto_bucket):
    plaintext = os.urandom(100)
    metadata = {name: "x" for name in harness.SEAL_METADATA if name != "s3seal-commitment"}
    upstream.client.put_object(Bucket=moto_bucket, Key="bare", Body=os.urandom(116), Metadata=metadata)

    with pytest.raises(AssertionError, match="s3seal-commitment"):
        upstream.assert_encrypted(moto_bucket, "bare", plaintext)


def test_assert_plain_rejects_ciphertext(upstream, moto_bucket):
    upstream.client.put_object(Bucket=moto_bucket, Key="changed", Body=b"changed")

    with pytest.raises(AssertionError, match="differs from the plaintext"):
        upstream.assert_plain(moto_bucket, "changed", b"original")


@pytest.mark.parametrize("key_id", list(harness.SPECIAL_KEYS))
def test_moto_special_key(upstream, moto_bucket, key_id):
    # boto3 signs these requests correctly; a failure here is moto's signature
    # check, not s3seal (harness.py describes the defect in moto 5.2.1).
    key = harness.SPECIAL_KEYS[key_id]

    upstream.client.put_object(Bucket=moto_bucket, Key=key, Body=b"special")

    assert upstream.read(moto_bucket, key)[0] == b"special"


@pytest.mark.parametrize(
    "parameters",
    [{"Prefix": "dir/"}, {"Delimiter": "/"}, {"Prefix": "ü"}, {"Prefix": "a+b=c&d"}],
    ids=["prefix-slash", "delimiter-slash", "prefix-unicode", "prefix-reserved"],
)
def test_moto_listing_query(upstream, moto_bucket, parameters):
    # A failure here is moto's signature check of the query string, not s3seal.
    upstream.client.put_object(Bucket=moto_bucket, Key="dir/a+b=c&d ü", Body=b"listed")

    listing = upstream.client.list_objects_v2(Bucket=moto_bucket, **parameters)

    assert listing["ResponseMetadata"]["HTTPStatusCode"] == 200
