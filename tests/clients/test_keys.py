"""Object keys with reserved, percent and non-ASCII characters, through boto3 and the aws cli."""

import json
import os
import urllib.parse
import xml.etree.ElementTree as ElementTree

import pytest

import harness

KEY_IDS = list(harness.SPECIAL_KEYS)


def listed_keys(xml_text: str) -> list[str]:
    """Return the <Key> values of a ListObjects response body."""
    root = ElementTree.fromstring(xml_text)
    return [element.text for element in root.findall(".//{*}Key")]


@pytest.mark.parametrize("key_id", KEY_IDS)
def test_boto3_key(s3_tls, enc_bucket, upstream, key_id):
    key = harness.SPECIAL_KEYS[key_id]
    data = os.urandom(1000)

    s3_tls.put_object(Bucket=enc_bucket, Key=key, Body=data)
    upstream.assert_encrypted(enc_bucket, key, data)

    assert s3_tls.get_object(Bucket=enc_bucket, Key=key)["Body"].read() == data
    assert s3_tls.head_object(Bucket=enc_bucket, Key=key)["ContentLength"] == len(data)

    # boto3 sends EncodingType=url by default and decodes the keys itself.
    listing_v2 = s3_tls.list_objects_v2(Bucket=enc_bucket)
    assert [entry["Key"] for entry in listing_v2["Contents"]] == [key]
    listing_v1 = s3_tls.list_objects(Bucket=enc_bucket)
    assert [entry["Key"] for entry in listing_v1["Contents"]] == [key]
    with_prefix = s3_tls.list_objects_v2(Bucket=enc_bucket, Prefix=key)
    assert [entry["Key"] for entry in with_prefix.get("Contents", [])] == [key]


@pytest.mark.parametrize("key_id", KEY_IDS)
def test_raw_listing_key(s3_http, stack, enc_bucket, key_id):
    key = harness.SPECIAL_KEYS[key_id]
    s3_http.put_object(Bucket=enc_bucket, Key=key, Body=b"listed")
    credentials = (stack.access_key_id, stack.secret_access_key)

    plain = harness.signed_request("GET", f"{stack.endpoint}/{enc_bucket}?list-type=2", *credentials)
    assert plain.status_code == 200, plain.text
    assert listed_keys(plain.text) == [key], plain.text

    encoded = harness.signed_request(
        "GET", f"{stack.endpoint}/{enc_bucket}?encoding-type=url&list-type=2", *credentials
    )
    assert encoded.status_code == 200, encoded.text
    # S3 encodes keys as application/x-www-form-urlencoded; botocore decodes
    # them with unquote_plus.
    assert [urllib.parse.unquote_plus(name) for name in listed_keys(encoded.text)] == [key], encoded.text


@pytest.mark.parametrize("key_id", KEY_IDS)
def test_awscli_key(aws, enc_bucket, upstream, tmp_path, key_id):
    key = harness.SPECIAL_KEYS[key_id]
    data = os.urandom(1000)
    source = tmp_path / "source.bin"
    source.write_bytes(data)

    uploaded = aws("s3", "cp", str(source), f"s3://{enc_bucket}/{key}")
    assert uploaded.returncode == 0, harness.describe(uploaded)
    upstream.assert_encrypted(enc_bucket, key, data)

    target = tmp_path / "target.bin"
    downloaded = aws("s3", "cp", f"s3://{enc_bucket}/{key}", str(target))
    assert downloaded.returncode == 0, harness.describe(downloaded)
    assert target.read_bytes() == data

    listed = aws("s3api", "list-objects-v2", "--bucket", enc_bucket, "--output", "json")
    assert listed.returncode == 0, harness.describe(listed)
    assert [entry["Key"] for entry in json.loads(listed.stdout)["Contents"]] == [key]
