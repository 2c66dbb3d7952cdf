"""Buckets matching `plain-*` are passed through: stored bytes equal the plaintext."""

import os
import urllib.parse

import harness


def test_passthrough_boto3(s3_tls, plain_bucket, upstream):
    data = os.urandom(100_000)

    s3_tls.put_object(Bucket=plain_bucket, Key="plain.bin", Body=data)

    upstream.assert_plain(plain_bucket, "plain.bin", data)
    assert s3_tls.get_object(Bucket=plain_bucket, Key="plain.bin")["Body"].read() == data
    listing = s3_tls.list_objects_v2(Bucket=plain_bucket)
    assert [(entry["Key"], entry["Size"]) for entry in listing["Contents"]] == [("plain.bin", len(data))]


def test_passthrough_awscli(aws, plain_bucket, upstream, tmp_path):
    data = os.urandom(100_000)
    source = tmp_path / "plain.bin"
    source.write_bytes(data)

    uploaded = aws("s3", "cp", str(source), f"s3://{plain_bucket}/plain.bin")
    assert uploaded.returncode == 0, harness.describe(uploaded)
    upstream.assert_plain(plain_bucket, "plain.bin", data)

    target = tmp_path / "download.bin"
    downloaded = aws("s3", "cp", f"s3://{plain_bucket}/plain.bin", str(target))
    assert downloaded.returncode == 0, harness.describe(downloaded)
    assert target.read_bytes() == data


def test_passthrough_empty(s3_http, plain_bucket, upstream):
    s3_http.put_object(Bucket=plain_bucket, Key="empty", Body=b"")

    upstream.assert_plain(plain_bucket, "empty", b"")
    assert s3_http.get_object(Bucket=plain_bucket, Key="empty")["Body"].read() == b""


def tag_set(client, bucket: str, key: str) -> dict:
    """Return an object's tags as a dict."""
    tags = client.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
    return {tag["Key"]: tag["Value"] for tag in tags}


def test_copy_across_modes_keeps_tags(s3_http, plain_bucket, enc_bucket, upstream):
    data = os.urandom(70_000)
    tags = {"team": "a b", "p=q+r/s": "x:y@z.1_2", "empty": ""}
    tagging = "&".join(
        f"{urllib.parse.quote(key, safe='')}={urllib.parse.quote(value, safe='')}" for key, value in tags.items()
    )
    s3_http.put_object(Bucket=plain_bucket, Key="src", Body=data, Tagging=tagging)

    # Passthrough to encrypting and back, each a streamed copy.
    s3_http.copy_object(Bucket=enc_bucket, Key="sealed", CopySource={"Bucket": plain_bucket, "Key": "src"})
    s3_http.copy_object(Bucket=plain_bucket, Key="back", CopySource={"Bucket": enc_bucket, "Key": "sealed"})

    assert tag_set(s3_http, enc_bucket, "sealed") == tags
    assert tag_set(s3_http, plain_bucket, "back") == tags
    assert s3_http.get_object(Bucket=plain_bucket, Key="back")["Body"].read() == data
    upstream.assert_plain(plain_bucket, "back", data)

    # REPLACE takes the request's tags, and a copy of an untagged object
    # has none.
    s3_http.copy_object(
        Bucket=enc_bucket,
        Key="replaced",
        CopySource={"Bucket": plain_bucket, "Key": "src"},
        TaggingDirective="REPLACE",
        Tagging="only=this",
    )
    assert tag_set(s3_http, enc_bucket, "replaced") == {"only": "this"}
    s3_http.put_object(Bucket=plain_bucket, Key="untagged", Body=b"x")
    s3_http.copy_object(Bucket=enc_bucket, Key="untagged", CopySource={"Bucket": plain_bucket, "Key": "untagged"})
    assert tag_set(s3_http, enc_bucket, "untagged") == {}
