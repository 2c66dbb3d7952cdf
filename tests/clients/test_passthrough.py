"""Buckets matching `plain-*` are passed through: stored bytes equal the plaintext."""

import base64
import hashlib
import os
import socket
import urllib.error
import urllib.parse
import urllib.request

import botocore.exceptions
import pytest

import harness


def test_passthrough_boto3(s3_tls, plain_bucket, upstream):
    data = os.urandom(100_000)

    s3_tls.put_object(Bucket=plain_bucket, Key="plain.bin", Body=data)

    upstream.assert_plain(plain_bucket, "plain.bin", data)
    assert s3_tls.get_object(Bucket=plain_bucket, Key="plain.bin")["Body"].read() == data
    listing = s3_tls.list_objects_v2(Bucket=plain_bucket)
    assert [(entry["Key"], entry["Size"]) for entry in listing["Contents"]] == [("plain.bin", len(data))]


def test_passthrough_trailer_checksum_reaches_upstream(s3_tls, plain_bucket, upstream):
    """boto3 over HTTPS sends its checksum in an aws-chunked trailer, which the upstream stores."""
    for size in (0, 1, 65_536, 200_001):
        data = os.urandom(size)
        digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
        key = f"trailer-{size}"

        with harness.sent_headers(s3_tls, "PutObject") as headers:
            put = s3_tls.put_object(Bucket=plain_bucket, Key=key, Body=data, ChecksumAlgorithm="SHA256")

        assert headers[0].get("x-amz-trailer") == "x-amz-checksum-sha256", headers[0]
        # The passthrough response is the upstream's.
        assert put["ChecksumSHA256"] == digest, (size, put)
        stored = upstream.client.head_object(Bucket=plain_bucket, Key=key, ChecksumMode="ENABLED")
        assert stored["ChecksumSHA256"] == digest, (size, stored)
        assert stored["ContentLength"] == size
        assert "ContentEncoding" not in stored, stored
        upstream.assert_plain(plain_bucket, key, data)


def test_passthrough_multipart_with_checksum_algorithm(s3_tls, plain_bucket, upstream):
    """Parts of an upload created with a checksum algorithm carry their checksums upstream."""
    parts = [os.urandom(5 * 1024 * 1024), os.urandom(70_000)]
    upload = s3_tls.create_multipart_upload(Bucket=plain_bucket, Key="mp", ChecksumAlgorithm="SHA256")
    completed = []
    for number, data in enumerate(parts, start=1):
        digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
        with harness.sent_headers(s3_tls, "UploadPart") as headers:
            part = s3_tls.upload_part(
                Bucket=plain_bucket,
                Key="mp",
                UploadId=upload["UploadId"],
                PartNumber=number,
                Body=data,
                ChecksumAlgorithm="SHA256",
            )
        assert headers[0].get("x-amz-trailer") == "x-amz-checksum-sha256", headers[0]
        # The passthrough response is the upstream's, so the upstream got the checksum.
        assert part["ChecksumSHA256"] == digest, part
        completed.append({"PartNumber": number, "ETag": part["ETag"], "ChecksumSHA256": digest})

    s3_tls.complete_multipart_upload(
        Bucket=plain_bucket, Key="mp", UploadId=upload["UploadId"], MultipartUpload={"Parts": completed}
    )
    assert s3_tls.get_object(Bucket=plain_bucket, Key="mp")["Body"].read() == b"".join(parts)


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


def put_raw(url: str, framing: str, body: bytes) -> tuple[int, bytes]:
    """PUT `body` to a presigned URL with the framing header lines `framing`.

    The request goes out in one write: s3seal responds after the head, and a
    second write could meet a closed connection.
    """
    parts = urllib.parse.urlsplit(url)
    head = f"PUT {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\n{framing}Connection: close\r\n\r\n"
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as connection:
        connection.sendall(head.encode() + body)
        response = b""
        while block := connection.recv(65536):
            response += block
    status_line, _, rest = response.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def put_chunked(url: str, data: bytes) -> tuple[int, bytes]:
    """PUT `data` to a presigned URL with `Transfer-Encoding: chunked` and no Content-Length."""
    chunked = f"{len(data):x}\r\n".encode() + data + b"\r\n0\r\n\r\n"
    return put_raw(url, "Transfer-Encoding: chunked\r\n", chunked)


def test_chunked_presigned_put_rejected(s3_http, presigner, plain_bucket, enc_bucket):
    for bucket in (plain_bucket, enc_bucket):
        s3_http.put_object(Bucket=bucket, Key="kept", Body=b"original")
        url = presigner.generate_presigned_url(
            "put_object", Params={"Bucket": bucket, "Key": "kept"}, ExpiresIn=300
        )

        status, body = put_chunked(url, os.urandom(1000))

        assert status == 501, (bucket, body)
        assert b"<Code>NotImplemented</Code>" in body, (bucket, body)
        assert b"<Header>Transfer-Encoding</Header>" in body, (bucket, body)
        assert s3_http.get_object(Bucket=bucket, Key="kept")["Body"].read() == b"original"


def test_presigned_put_length_checked(s3_http, presigner, plain_bucket, enc_bucket):
    """A PUT without a length gets 411 and one over 5 GiB gets EntityTooLarge, in every bucket."""
    for bucket in (plain_bucket, enc_bucket):
        s3_http.put_object(Bucket=bucket, Key="kept", Body=b"original")
        url = presigner.generate_presigned_url(
            "put_object", Params={"Bucket": bucket, "Key": "kept"}, ExpiresIn=300
        )

        status, body = put_raw(url, "", b"0123456789")
        assert status == 411, (bucket, body)
        assert b"<Code>MissingContentLength</Code>" in body, (bucket, body)

        status, body = put_raw(url, f"Content-Length: {6 * 1024**3}\r\n", b"0123456789")
        assert status == 400, (bucket, body)
        assert b"<Code>EntityTooLarge</Code>" in body, (bucket, body)

        assert s3_http.get_object(Bucket=bucket, Key="kept")["Body"].read() == b"original"


def preflight(endpoint: str, path: str, origin: str) -> tuple[int, dict[str, str]]:
    """Send a browser's CORS preflight for a PUT and return its status and headers."""
    request = urllib.request.Request(
        endpoint + path,
        method="OPTIONS",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "content-type,x-amz-meta-a",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, {name.lower(): value for name, value in response.headers.items()}
    except urllib.error.HTTPError as error:
        return error.code, {name.lower(): value for name, value in error.headers.items()}


def test_cors_preflight_answered_by_upstream(stack, s3_http, plain_bucket, enc_bucket):
    """An unsigned OPTIONS preflight gets the upstream's response to the bucket's CORS rules."""
    rules = {
        "CORSRules": [
            {"AllowedOrigins": ["http://app.test"], "AllowedMethods": ["GET", "PUT"], "AllowedHeaders": ["*"]}
        ]
    }
    for bucket in (plain_bucket, enc_bucket):
        s3_http.put_bucket_cors(Bucket=bucket, CORSConfiguration=rules)

        status, headers = preflight(stack.endpoint, f"/{bucket}/object", "http://app.test")
        assert status == 200, (bucket, headers)
        assert headers.get("access-control-allow-origin") == "http://app.test", (bucket, headers)
        assert "PUT" in headers.get("access-control-allow-methods", ""), (bucket, headers)

        status, headers = preflight(stack.endpoint, f"/{bucket}/object", "http://other.test")
        assert status == 403, (bucket, headers)


def test_copy_of_encrypted_object_in_passthrough_rejected(s3_http, plain_bucket, enc_bucket, upstream):
    """No form of a copy within passthrough buckets copies an object that s3seal encrypted."""
    s3_http.put_object(Bucket=enc_bucket, Key="sealed", Body=b"secret data")
    # The stored object with its envelope, as a passthrough bucket contains it after a rule change.
    upstream.client.copy_object(Bucket=plain_bucket, Key="sealed", CopySource={"Bucket": enc_bucket, "Key": "sealed"})

    attempts = [
        {"CopySource": {"Bucket": plain_bucket, "Key": "sealed"}},
        {"CopySource": {"Bucket": plain_bucket, "Key": "sealed"}, "CopySourceIfMatch": '"0"'},
        {"CopySource": {"Bucket": plain_bucket, "Key": "sealed"}, "CopySourceIfUnmodifiedSince": "2000-01-01T00:00:00Z"},
        {"CopySource": {"Bucket": plain_bucket, "Key": "sealed"}, "CopySourceIfModifiedSince": "2039-01-01T00:00:00Z"},
        {"CopySource": f"{plain_bucket}/sealed;x"},
        {"CopySource": f"{plain_bucket}/sealed#x"},
    ]
    for number, attempt in enumerate(attempts):
        with pytest.raises(botocore.exceptions.ClientError) as raised:
            s3_http.copy_object(Bucket=plain_bucket, Key=f"copy-{number}", MetadataDirective="REPLACE", **attempt)
        assert raised.value.response["Error"]["Code"] in {"InvalidObjectState", "PreconditionFailed", "NoSuchKey"}, (
            attempt,
            raised.value.response,
        )
        assert not upstream.exists(plain_bucket, f"copy-{number}"), attempt


def test_plain_copy_checks_source_conditions(s3_http, plain_bucket, upstream):
    """Copy-source conditions hold on a passthrough copy even where moto ignores them."""
    s3_http.put_object(Bucket=plain_bucket, Key="src", Body=b"plain data")
    etag = s3_http.head_object(Bucket=plain_bucket, Key="src")["ETag"]
    failing = [
        {"CopySourceIfMatch": '"0"'},
        {"CopySourceIfUnmodifiedSince": "2000-01-01T00:00:00Z"},
        {"CopySourceIfModifiedSince": "2039-01-01T00:00:00Z"},
        {"CopySourceIfNoneMatch": etag},
    ]
    for number, conditions in enumerate(failing):
        with pytest.raises(botocore.exceptions.ClientError) as raised:
            s3_http.copy_object(
                Bucket=plain_bucket, Key=f"c{number}", CopySource={"Bucket": plain_bucket, "Key": "src"}, **conditions
            )
        assert raised.value.response["Error"]["Code"] == "PreconditionFailed", (conditions, raised.value.response)
        assert not upstream.exists(plain_bucket, f"c{number}"), conditions

    holding = [
        {"CopySourceIfMatch": etag},
        {"CopySourceIfMatch": "*"},
        # A matching If-Match decides, as S3 documents, whatever the date condition is.
        {"CopySourceIfMatch": etag, "CopySourceIfUnmodifiedSince": "2000-01-01T00:00:00Z"},
    ]
    for number, conditions in enumerate(holding):
        s3_http.copy_object(
            Bucket=plain_bucket, Key=f"ok{number}", CopySource={"Bucket": plain_bucket, "Key": "src"}, **conditions
        )
        assert s3_http.get_object(Bucket=plain_bucket, Key=f"ok{number}")["Body"].read() == b"plain data", conditions


def test_object_with_part_of_an_envelope_not_served(s3_http, plain_bucket, upstream):
    """Any s3seal metadata marks ciphertext, even without the envelope's format field."""
    upstream.client.put_object(Bucket=plain_bucket, Key="partial", Body=b"ciphertext", Metadata={"s3seal-kek": "main"})

    for read in (
        lambda: s3_http.get_object(Bucket=plain_bucket, Key="partial"),
        lambda: s3_http.copy_object(Bucket=plain_bucket, Key="copy", CopySource={"Bucket": plain_bucket, "Key": "partial"}),
    ):
        with pytest.raises(botocore.exceptions.ClientError) as raised:
            read()
        assert raised.value.response["Error"]["Code"] == "InvalidObjectState", raised.value.response
    assert not upstream.exists(plain_bucket, "copy")
