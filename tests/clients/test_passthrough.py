"""Buckets matching `plain-*` are passed through: stored bytes equal the plaintext."""

import os

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
