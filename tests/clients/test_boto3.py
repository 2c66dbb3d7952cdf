"""boto3 through s3seal: default checksums over TLS, required checksums only over HTTP, presigned URLs."""

import io
import os
import time

import boto3.s3.transfer
import botocore.exceptions
import pytest
import requests

import harness

SIZES = [1, 65535, 65536, 65537, 300_000]


@pytest.mark.parametrize("size", SIZES)
def test_tls_put_get(s3_tls, enc_bucket, upstream, size):
    data = os.urandom(size)

    with harness.sent_headers(s3_tls, "PutObject") as headers:
        put = s3_tls.put_object(Bucket=enc_bucket, Key="object.bin", Body=data)
    # Check that this client really sends the body aws-chunked with a trailing checksum.
    assert headers[0].get("x-amz-content-sha256") == "STREAMING-UNSIGNED-PAYLOAD-TRAILER", headers[0]
    assert "x-amz-trailer" in headers[0], headers[0]
    harness.assert_client_etag(put["ETag"], data)
    upstream.assert_encrypted(enc_bucket, "object.bin", data)

    got = s3_tls.get_object(Bucket=enc_bucket, Key="object.bin")
    assert got["Body"].read() == data
    assert got["ContentLength"] == size
    assert got["ETag"] == put["ETag"]


def test_tls_upload_fileobj(s3_tls, enc_bucket, upstream):
    # Below the default 8 MiB multipart threshold, so one PutObject.
    data = os.urandom(2 * 1024 * 1024 + 3)

    s3_tls.upload_fileobj(io.BytesIO(data), enc_bucket, "uploaded.bin")

    upstream.assert_encrypted(enc_bucket, "uploaded.bin", data)
    assert s3_tls.get_object(Bucket=enc_bucket, Key="uploaded.bin")["Body"].read() == data


def test_tls_single_put_above_threshold(s3_tls, enc_bucket, upstream):
    # With the threshold raised to the PUT maximum, 20 MiB goes up in one PutObject.
    data = os.urandom(20 * 1024 * 1024)
    transfer = boto3.s3.transfer.TransferConfig(multipart_threshold=harness.SINGLE_PUT_MAX)

    with harness.sent_headers(s3_tls, "PutObject") as headers:
        s3_tls.upload_fileobj(io.BytesIO(data), enc_bucket, "single.bin", Config=transfer)

    assert len(headers) == 1, headers
    upstream.assert_encrypted(enc_bucket, "single.bin", data)
    got = s3_tls.get_object(Bucket=enc_bucket, Key="single.bin")
    harness.assert_same_bytes(got["Body"].read(), data, "GET of single.bin")
    assert got["ETag"].endswith('-0"'), got["ETag"]


def test_tls_head_object(s3_tls, enc_bucket):
    data = os.urandom(100_000)
    s3_tls.put_object(Bucket=enc_bucket, Key="head.bin", Body=data, Metadata={"color": "blue"})

    head = s3_tls.head_object(Bucket=enc_bucket, Key="head.bin")

    assert head["ContentLength"] == len(data)
    harness.assert_client_etag(head["ETag"], data)
    assert head["Metadata"].get("color") == "blue", head["Metadata"]
    visible = [name for name in head["Metadata"] if name.startswith("s3seal-")]
    assert not visible, f"s3seal metadata visible to the client: {visible}"


def test_tls_list_sizes(s3_tls, enc_bucket):
    objects = {f"size-{size}.bin": os.urandom(size) for size in [0, *SIZES]}
    put_etags = {}
    for key, data in objects.items():
        put_etags[key] = s3_tls.put_object(Bucket=enc_bucket, Key=key, Body=data)["ETag"]

    listing = s3_tls.list_objects_v2(Bucket=enc_bucket)

    sizes = {entry["Key"]: entry["Size"] for entry in listing.get("Contents", [])}
    assert sizes == {key: len(data) for key, data in objects.items()}
    listed_etags = {entry["Key"]: entry["ETag"] for entry in listing.get("Contents", [])}
    assert listed_etags == put_etags


@pytest.mark.parametrize("size", SIZES)
def test_http_put_get(s3_http, enc_bucket, upstream, size):
    data = os.urandom(size)

    with harness.sent_headers(s3_http, "PutObject") as headers:
        put = s3_http.put_object(Bucket=enc_bucket, Key="object.bin", Body=data)
    assert "x-amz-trailer" not in headers[0], headers[0]
    upstream.assert_encrypted(enc_bucket, "object.bin", data)

    got = s3_http.get_object(Bucket=enc_bucket, Key="object.bin")
    assert got["Body"].read() == data

    head = s3_http.head_object(Bucket=enc_bucket, Key="object.bin")
    assert head["ContentLength"] == size
    assert head["ETag"] == put["ETag"]
    harness.assert_client_etag(head["ETag"], data)

    listing = s3_http.list_objects_v2(Bucket=enc_bucket)
    assert [(entry["Key"], entry["Size"], entry["ETag"]) for entry in listing["Contents"]] == [
        ("object.bin", size, put["ETag"])
    ]


RANGE_OBJECT_SIZE = 150_000


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=65530-65545", 65530, 65545),  # crosses the first segment boundary
        ("bytes=65536-131071", 65536, 131071),  # exactly the second segment
        ("bytes=-7", RANGE_OBJECT_SIZE - 7, RANGE_OBJECT_SIZE - 1),
        (f"bytes=100-{RANGE_OBJECT_SIZE + 100}", 100, RANGE_OBJECT_SIZE - 1),
    ],
    ids=["first-byte", "across-segments", "whole-segment", "suffix", "clamped"],
)
def test_http_range(s3_http, enc_bucket, header, start, end):
    data = os.urandom(RANGE_OBJECT_SIZE)
    s3_http.put_object(Bucket=enc_bucket, Key="ranged.bin", Body=data)

    got = s3_http.get_object(Bucket=enc_bucket, Key="ranged.bin", Range=header)

    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert got["Body"].read() == data[start : end + 1]
    assert got["ContentRange"] == f"bytes {start}-{end}/{RANGE_OBJECT_SIZE}"


def test_http_range_unsatisfiable(s3_http, enc_bucket):
    s3_http.put_object(Bucket=enc_bucket, Key="small.bin", Body=b"0123456789")

    with pytest.raises(botocore.exceptions.ClientError) as raised:
        s3_http.get_object(Bucket=enc_bucket, Key="small.bin", Range="bytes=10-20")

    assert raised.value.response["Error"]["Code"] == "InvalidRange"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 416


PAST = "Mon, 01 Jan 2001 00:00:00 GMT"


@pytest.mark.parametrize("bucket_kind", ["enc_bucket", "plain_bucket"])
@pytest.mark.parametrize(
    "method, conditions, status",
    [
        # RFC 7232, which S3's documentation cites, evaluates
        # If-Unmodified-Since only without If-Match, and If-Modified-Since
        # only without If-None-Match.
        ("get", {"IfMatch": "ETAG", "IfUnmodifiedSince": PAST}, 200),
        ("head", {"IfMatch": "ETAG", "IfUnmodifiedSince": PAST}, 200),
        ("get", {"IfNoneMatch": '"other"', "IfModifiedSince": "FUTURE"}, 200),
        ("head", {"IfNoneMatch": "ETAG", "IfModifiedSince": PAST}, 304),
    ],
    ids=["get-match-over-date", "head-match-over-date", "get-none-match-over-date", "head-none-match-hit"],
)
def test_etag_condition_overrides_date(request, s3_http, bucket_kind, method, conditions, status):
    bucket = request.getfixturevalue(bucket_kind)
    etag = s3_http.put_object(Bucket=bucket, Key="cond.txt", Body=b"conditions")["ETag"]
    future = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 86400))
    values = {"ETAG": etag, "FUTURE": future}
    args = {name: values.get(value, value) for name, value in conditions.items()}
    call = s3_http.get_object if method == "get" else s3_http.head_object

    try:
        got = call(Bucket=bucket, Key="cond.txt", **args)
        answered = got["ResponseMetadata"]["HTTPStatusCode"]
    except botocore.exceptions.ClientError as error:
        answered = error.response["ResponseMetadata"]["HTTPStatusCode"]

    assert answered == status


def test_unencrypted_read_etag_condition_overrides_date(s3_http, make_bucket, upstream):
    bucket = make_bucket("legacy")
    # An object written before the bucket's encrypt rule, straight to the store.
    upstream.client.put_object(Bucket=bucket, Key="old.txt", Body=b"before s3seal")
    etag = s3_http.head_object(Bucket=bucket, Key="old.txt")["ETag"]

    got = s3_http.get_object(Bucket=bucket, Key="old.txt", IfMatch=etag, IfUnmodifiedSince=PAST)

    assert got["Body"].read() == b"before s3seal"


@pytest.mark.parametrize("bucket_kind", ["enc_bucket", "plain_bucket"])
def test_non_ascii_header_value_rejected(request, s3_http, bucket_kind):
    bucket = request.getfixturevalue(bucket_kind)

    with pytest.raises(botocore.exceptions.ClientError) as raised:
        s3_http.put_object(
            Bucket=bucket, Key="utf8.txt", Body=b"x", ContentDisposition='attachment; filename="café.txt"'
        )

    error = raised.value.response["Error"]
    assert error["Code"] == "InvalidArgument"
    assert "content-disposition" in error["Message"]
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_presigned_get(s3_http, presigner, enc_bucket):
    data = os.urandom(5000)
    s3_http.put_object(Bucket=enc_bucket, Key="shared file.bin", Body=data)
    url = presigner.generate_presigned_url(
        "get_object", Params={"Bucket": enc_bucket, "Key": "shared file.bin"}, ExpiresIn=300
    )
    assert "X-Amz-Signature=" in url, url

    response = requests.get(url, timeout=30)

    assert response.status_code == 200, response.text
    assert response.content == data


@pytest.mark.parametrize("bucket_kind", ["enc_bucket", "plain_bucket"])
def test_status_line_is_own(request, presigner, bucket_kind):
    bucket = request.getfixturevalue(bucket_kind)
    missing = presigner.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "missing"}, ExpiresIn=300
    )
    listing = presigner.generate_presigned_url("list_objects_v2", Params={"Bucket": bucket}, ExpiresIn=300)

    # moto's status lines read "404 NOT FOUND" and "200 OK".
    for url, status, reason in [(missing, 404, "Not Found"), (listing, 200, "OK")]:
        response = requests.get(url, timeout=30)
        assert (response.status_code, response.reason) == (status, reason)
        assert response.raw.version == 11


def test_presigned_expired(s3_http, presigner, enc_bucket):
    s3_http.put_object(Bucket=enc_bucket, Key="expiring.bin", Body=b"expires soon")
    url = presigner.generate_presigned_url(
        "get_object", Params={"Bucket": enc_bucket, "Key": "expiring.bin"}, ExpiresIn=1
    )
    time.sleep(2)

    response = requests.get(url, timeout=30)

    assert response.status_code == 403, response.text
    assert "<Code>AccessDenied</Code>" in response.text, response.text


def test_copy_within_bucket_etags_agree(s3_http, enc_bucket):
    """A server-side copy shows the copy's client ETag in its header, its XML and a HEAD."""
    s3_http.put_object(Bucket=enc_bucket, Key="copy-src", Body=b"copy me")

    copied = s3_http.copy_object(Bucket=enc_bucket, Key="copy-dst", CopySource={"Bucket": enc_bucket, "Key": "copy-src"})

    result_etag = copied["CopyObjectResult"]["ETag"]
    assert result_etag.endswith('-0"'), result_etag
    # moto repeats the ETag in a response header.
    assert copied["ResponseMetadata"]["HTTPHeaders"].get("etag") == result_etag, copied["ResponseMetadata"]
    assert s3_http.head_object(Bucket=enc_bucket, Key="copy-dst")["ETag"] == result_etag
