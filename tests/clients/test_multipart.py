"""Multipart uploads and multipart reads through s3seal with each client's default transfer settings.

Every object is read back and compared with its source byte for byte, and
the upstream copy is checked for the multipart layout and for plaintext.
"""

import io
import os
import time

import botocore.exceptions
import pytest

import harness

MiB = 1024 * 1024

# Default part sizes: aws cli 1.45 and boto3 1.43 (s3transfer), rclone 1.60.
AWSCLI_PART_SIZE = 8 * MiB
BOTO3_PART_SIZE = 8 * MiB
RCLONE_PART_SIZE = 5 * MiB


def test_awscli_cp_large(aws, enc_bucket, upstream, large_file, tmp_path):
    size = len(large_file.data)

    uploaded = aws("s3", "cp", str(large_file.path), f"s3://{enc_bucket}/large.bin", timeout=600)
    assert uploaded.returncode == 0, harness.describe(uploaded)
    upstream.assert_encrypted_multipart(enc_bucket, "large.bin", large_file.data, AWSCLI_PART_SIZE)

    listed = aws("s3", "ls", f"s3://{enc_bucket}/")
    assert listed.returncode == 0, harness.describe(listed)
    assert harness.parse_s3_ls(listed.stdout) == {"large.bin": size}, listed.stdout

    # The download is a HEAD followed by parallel 8 MiB ranged GETs.
    target = tmp_path / "large.bin"
    downloaded = aws("s3", "cp", f"s3://{enc_bucket}/large.bin", str(target), timeout=600)
    assert downloaded.returncode == 0, harness.describe(downloaded)
    harness.assert_same_bytes(target.read_bytes(), large_file.data, "downloaded large.bin")



def test_awscli_cp_large_from_encrypting_to_passthrough(aws, enc_bucket, plain_bucket, upstream, tmp_path):
    # Above the 8 MiB threshold, `aws s3 cp` between buckets copies with
    # UploadPartCopy, so s3seal decrypts each part's range of the source.
    data = os.urandom(20 * MiB + 4321)
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    uploaded = aws("s3", "cp", str(source), f"s3://{enc_bucket}/big.bin", timeout=600)
    assert uploaded.returncode == 0, harness.describe(uploaded)

    copied = aws("s3", "cp", f"s3://{enc_bucket}/big.bin", f"s3://{plain_bucket}/big.bin", timeout=600)
    assert copied.returncode == 0, harness.describe(copied)
    upstream.assert_plain(plain_bucket, "big.bin", data)

    # And back: parts of the passthrough object are sealed into the encrypting upload.
    returned = aws("s3", "cp", f"s3://{plain_bucket}/big.bin", f"s3://{enc_bucket}/back.bin", timeout=600)
    assert returned.returncode == 0, harness.describe(returned)
    upstream.assert_encrypted_multipart(enc_bucket, "back.bin", data, AWSCLI_PART_SIZE)
    target = tmp_path / "back.bin"
    downloaded = aws("s3", "cp", f"s3://{enc_bucket}/back.bin", str(target), timeout=600)
    assert downloaded.returncode == 0, harness.describe(downloaded)
    harness.assert_same_bytes(target.read_bytes(), data, "back.bin")

# Sizes of the files that `aws s3 sync` uploads. Files of 8 MiB and more go up
# in 8 MiB parts, so "eight.bin" is a multipart object of one part.
SYNC_FILE_SIZES = {
    "small/one.txt": 1,
    "small/segment.bin": 65537,
    "small/below threshold.bin": AWSCLI_PART_SIZE - 1,
    "eight.bin": AWSCLI_PART_SIZE,
    "deep/dir/nine.bin": 9 * MiB + 12345,
    "twenty.bin": 20 * MiB,
}


def test_awscli_sync_round_trip(aws, enc_bucket, upstream, tmp_path):
    source = tmp_path / "source"
    files = {}
    # S3 and moto list LastModified in whole seconds, and `aws s3 sync` uploads
    # a file whose mtime is later than its object's LastModified. A file
    # written in the same second as its upload would go up again, so the files
    # get an mtime one minute in the past.
    minute_ago = time.time() - 60
    for name, size in SYNC_FILE_SIZES.items():
        files[name] = os.urandom(size)
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes(files[name])
        os.utime(source / name, (minute_ago, minute_ago))

    synced = aws("s3", "sync", str(source), f"s3://{enc_bucket}/", timeout=600)
    assert synced.returncode == 0, harness.describe(synced)
    for name, data in files.items():
        if len(data) >= AWSCLI_PART_SIZE:
            upstream.assert_encrypted_multipart(enc_bucket, name, data, AWSCLI_PART_SIZE)
        else:
            upstream.assert_encrypted(enc_bucket, name, data)

    listed = aws("s3", "ls", "--recursive", f"s3://{enc_bucket}/")
    assert listed.returncode == 0, harness.describe(listed)
    assert harness.parse_s3_ls(listed.stdout) == SYNC_FILE_SIZES, listed.stdout

    # Sizes match and every local file is older than its object, so a second
    # sync has nothing to upload and prints nothing.
    resynced = aws("s3", "sync", str(source), f"s3://{enc_bucket}/", timeout=600)
    assert resynced.returncode == 0, harness.describe(resynced)
    assert resynced.stdout == "", harness.describe(resynced)

    target = tmp_path / "target"
    synced_down = aws("s3", "sync", f"s3://{enc_bucket}/", str(target), timeout=600)
    assert synced_down.returncode == 0, harness.describe(synced_down)
    downloaded = sorted(str(path.relative_to(target)) for path in target.rglob("*") if path.is_file())
    assert downloaded == sorted(files), downloaded
    for name, data in files.items():
        harness.assert_same_bytes((target / name).read_bytes(), data, f"downloaded {name}")


def test_boto3_tls_large(s3_tls, enc_bucket, upstream, large_file, tmp_path):
    parts = len(harness.split_parts(len(large_file.data), BOTO3_PART_SIZE))

    with harness.sent_headers(s3_tls, "UploadPart") as headers:
        s3_tls.upload_file(str(large_file.path), enc_bucket, "large.bin")
    # Check that the parts really went aws-chunked with a trailing checksum.
    assert len(headers) == parts
    for sent in headers:
        assert sent.get("x-amz-content-sha256") == "STREAMING-UNSIGNED-PAYLOAD-TRAILER", sent
        assert "x-amz-trailer" in sent, sent
    upstream.assert_encrypted_multipart(enc_bucket, "large.bin", large_file.data, BOTO3_PART_SIZE)

    head = s3_tls.head_object(Bucket=enc_bucket, Key="large.bin")
    assert head["ContentLength"] == len(large_file.data)
    assert head["ETag"].endswith(f'-{parts}"'), head["ETag"]

    target = tmp_path / "large.bin"
    s3_tls.download_file(enc_bucket, "large.bin", str(target))
    harness.assert_same_bytes(target.read_bytes(), large_file.data, "downloaded large.bin")


def test_boto3_http_checksum_when_required(s3_http, enc_bucket, upstream, large_file, tmp_path):
    with harness.sent_headers(s3_http, "UploadPart") as headers:
        s3_http.upload_file(str(large_file.path), enc_bucket, "large.bin")
    assert len(headers) == len(harness.split_parts(len(large_file.data), BOTO3_PART_SIZE))
    for sent in headers:
        assert "x-amz-trailer" not in sent, sent
    upstream.assert_encrypted_multipart(enc_bucket, "large.bin", large_file.data, BOTO3_PART_SIZE)

    target = tmp_path / "large.bin"
    s3_http.download_file(enc_bucket, "large.bin", str(target))
    harness.assert_same_bytes(target.read_bytes(), large_file.data, "downloaded large.bin")


THREE_PART_SIZE = 2 * BOTO3_PART_SIZE + 4 * MiB + 12345  # parts of 8 MiB, 8 MiB, 4 MiB + 12345


@pytest.fixture(scope="module")
def three_part_object(stack, upstream):
    """A bucket and key holding THREE_PART_SIZE random bytes, uploaded by boto3 in 8 MiB parts."""
    client = harness.s3_client(stack.endpoint, stack.access_key_id, stack.secret_access_key)
    bucket = harness.unique_name("enc")
    data = os.urandom(THREE_PART_SIZE)
    client.create_bucket(Bucket=bucket)
    client.upload_fileobj(io.BytesIO(data), bucket, "three.bin")
    upstream.assert_encrypted_multipart(bucket, "three.bin", data, BOTO3_PART_SIZE)
    return bucket, "three.bin", data


PART_2_START = BOTO3_PART_SIZE
PART_3_START = 2 * BOTO3_PART_SIZE


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        (f"bytes={PART_2_START - 10}-{PART_2_START + 9}", PART_2_START - 10, PART_2_START + 9),
        (f"bytes={PART_2_START - 70000}-{PART_3_START + 70000}", PART_2_START - 70000, PART_3_START + 70000),
        (f"bytes={PART_2_START}-{PART_3_START - 1}", PART_2_START, PART_3_START - 1),
        (f"bytes={PART_3_START - 1}-", PART_3_START - 1, THREE_PART_SIZE - 1),
        ("bytes=-100", THREE_PART_SIZE - 100, THREE_PART_SIZE - 1),
    ],
    ids=["across-one-boundary", "across-two-boundaries", "whole-part-2", "from-end-of-part-2", "suffix"],
)
def test_boto3_range_across_parts(s3_http, three_part_object, header, start, end):
    bucket, key, data = three_part_object

    got = s3_http.get_object(Bucket=bucket, Key=key, Range=header)

    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert got["ContentRange"] == f"bytes {start}-{end}/{THREE_PART_SIZE}"
    assert got["ContentLength"] == end - start + 1
    harness.assert_same_bytes(got["Body"].read(), data[start : end + 1], f"range {header}")


@pytest.mark.parametrize("part_number", [1, 2, 3])
def test_boto3_get_part_number(s3_http, three_part_object, part_number):
    bucket, key, data = three_part_object
    start = (part_number - 1) * BOTO3_PART_SIZE
    end = min(start + BOTO3_PART_SIZE, THREE_PART_SIZE) - 1

    got = s3_http.get_object(Bucket=bucket, Key=key, PartNumber=part_number)

    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert got["ContentRange"] == f"bytes {start}-{end}/{THREE_PART_SIZE}"
    assert got["ContentLength"] == end - start + 1
    assert got.get("PartsCount") == 3, got.get("PartsCount")
    harness.assert_same_bytes(got["Body"].read(), data[start : end + 1], f"part {part_number}")


@pytest.mark.parametrize("part_number", [1, 3])
def test_boto3_head_part_number(s3_http, three_part_object, part_number):
    bucket, key, _ = three_part_object
    start = (part_number - 1) * BOTO3_PART_SIZE
    end = min(start + BOTO3_PART_SIZE, THREE_PART_SIZE) - 1

    head = s3_http.head_object(Bucket=bucket, Key=key, PartNumber=part_number)

    assert head["ContentLength"] == end - start + 1
    assert head.get("PartsCount") == 3, head.get("PartsCount")
    assert head["ETag"].endswith('-3"'), head["ETag"]


def test_completed_upload_location_names_s3seal(stack, s3_http, s3_tls, enc_bucket, plain_bucket):
    """CompleteMultipartUpload over HTTP and TLS names the object at s3seal, not at moto."""
    key = "dir/a b.bin"
    for client, endpoint in ((s3_http, stack.endpoint), (s3_tls, stack.tls_endpoint)):
        for bucket in (enc_bucket, plain_bucket):
            upload_id = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
            part = client.upload_part(
                Bucket=bucket, Key=key, PartNumber=1, UploadId=upload_id, Body=b"x" * 1000
            )

            done = client.complete_multipart_upload(
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
            )

            expected = f"{endpoint}/{bucket}/dir/a%20b.bin"
            assert done["Location"] == expected, (endpoint, bucket, done["Location"])


def test_boto3_abort_upload(s3_http, enc_bucket, upstream):
    key = "aborted.bin"
    part = os.urandom(5 * MiB)

    upload_id = s3_http.create_multipart_upload(Bucket=enc_bucket, Key=key)["UploadId"]
    s3_http.upload_part(Bucket=enc_bucket, Key=key, PartNumber=1, UploadId=upload_id, Body=part)

    # Before the abort: one upload in progress, with a part of plaintext size
    # through s3seal and of sealed size upstream.
    in_progress = s3_http.list_multipart_uploads(Bucket=enc_bucket).get("Uploads", [])
    assert [upload["Key"] for upload in in_progress] == [key], in_progress
    listed_parts = s3_http.list_parts(Bucket=enc_bucket, Key=key, UploadId=upload_id).get("Parts", [])
    assert [(entry["PartNumber"], entry["Size"]) for entry in listed_parts] == [(1, len(part))]
    upstream_uploads = upstream.client.list_multipart_uploads(Bucket=enc_bucket).get("Uploads", [])
    assert len(upstream_uploads) == 1, upstream_uploads
    upstream_parts = upstream.client.list_parts(
        Bucket=enc_bucket, Key=key, UploadId=upstream_uploads[0]["UploadId"]
    ).get("Parts", [])
    assert [entry["Size"] for entry in upstream_parts] == [harness.multipart_sealed_size([len(part)])]

    s3_http.abort_multipart_upload(Bucket=enc_bucket, Key=key, UploadId=upload_id)

    assert not upstream.exists(enc_bucket, key)
    assert upstream.client.list_multipart_uploads(Bucket=enc_bucket).get("Uploads", []) == []
    assert s3_http.list_multipart_uploads(Bucket=enc_bucket).get("Uploads", []) == []
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        s3_http.get_object(Bucket=enc_bucket, Key=key)
    assert raised.value.response["Error"]["Code"] == "NoSuchKey"


def test_boto3_part_number_gap(s3_http, enc_bucket, upstream):
    key = "gaps.bin"
    upload_id = s3_http.create_multipart_upload(Bucket=enc_bucket, Key=key)["UploadId"]
    parts = []
    for number, body in ((1, os.urandom(5 * MiB)), (3, os.urandom(1000))):
        uploaded = s3_http.upload_part(
            Bucket=enc_bucket, Key=key, PartNumber=number, UploadId=upload_id, Body=body
        )
        parts.append({"PartNumber": number, "ETag": uploaded["ETag"]})

    with pytest.raises(botocore.exceptions.ClientError) as raised:
        s3_http.complete_multipart_upload(
            Bucket=enc_bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )

    assert raised.value.response["Error"]["Code"] == "InvalidPartOrder"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert not upstream.exists(enc_bucket, key)
    s3_http.abort_multipart_upload(Bucket=enc_bucket, Key=key, UploadId=upload_id)


@pytest.fixture(scope="module")
def rclone_large(rclone, large_file):
    """A bucket into which `rclone copy` uploaded the large file in 5 MiB parts."""
    bucket = harness.unique_name("enc")

    # rclone 1.60 uploads files below --s3-upload-cutoff (default 200 MiB) in
    # one PUT, so the cutoff is lowered. The part size stays at its default.
    # NOTE: moto 5.2.6 sends `x-amz-version-id: null` with CompleteMultipartUpload
    # on an unversioned bucket and then rejects rclone's follow-up
    # `HEAD ?versionId=null` with 400, with or without s3seal in between. S3
    # sends no version id for an unversioned bucket, so --s3-no-head, which
    # skips only that check after the upload, keeps rclone's behaviour
    # against S3. It can go once moto accepts that HEAD.
    copied = rclone(
        "copy", "--s3-upload-cutoff", "10M", "--s3-no-head",
        str(large_file.path), f"s3seal:{bucket}", timeout=600,
    )

    assert copied.returncode == 0, harness.describe(copied)
    return bucket


def test_rclone_copy_large(rclone_large, upstream, large_file):
    upstream.assert_encrypted_multipart(rclone_large, "large.bin", large_file.data, RCLONE_PART_SIZE)


def test_rclone_ls_large(rclone, rclone_large, large_file):
    listed = rclone("ls", f"s3seal:{rclone_large}")

    assert listed.returncode == 0, harness.describe(listed)
    assert harness.parse_rclone_ls(listed.stdout) == {"large.bin": len(large_file.data)}


def test_rclone_multi_thread_download(rclone, rclone_large, large_file, tmp_path):
    copied = rclone(
        "copy", "-vv", "--multi-thread-streams", "4", "--multi-thread-cutoff", "10M",
        f"s3seal:{rclone_large}", str(tmp_path), timeout=600,
    )

    assert copied.returncode == 0, harness.describe(copied)
    assert "Starting multi-thread copy" in copied.stderr, harness.describe(copied)
    harness.assert_same_bytes((tmp_path / "large.bin").read_bytes(), large_file.data, "downloaded large.bin")


@pytest.mark.parametrize("options", [[], ["--checksum"]], ids=["default", "checksum"])
def test_rclone_check_large(rclone, rclone_large, large_file, options):
    # The session's large file is the only file in its directory.
    checked = rclone("check", *options, str(large_file.path.parent), f"s3seal:{rclone_large}", timeout=600)

    assert checked.returncode == 0, harness.describe(checked)
    assert "0 differences found" in checked.stderr, harness.describe(checked)
    assert "1 matching files" in checked.stderr, harness.describe(checked)
    # The multipart ETag is no MD5, so rclone compares the MD5 that it stored
    # in x-amz-meta-md5chksum at upload. For a single-part object ("-0" ETag,
    # no md5chksum) it would report "1 hashes could not be checked" instead.
    assert "hashes could not be checked" not in checked.stderr, harness.describe(checked)


def test_s3cmd_multipart_put_get(s3cmd, enc_bucket, upstream, tmp_path):
    data = os.urandom(30 * MiB)
    source = tmp_path / "upload.bin"
    source.write_bytes(data)
    uri = f"s3://{enc_bucket}/upload.bin"

    put = s3cmd("put", "--multipart-chunk-size-mb=5", str(source), uri, timeout=600)
    assert put.returncode == 0, harness.describe(put)
    assert harness.S3CMD_PUT_MD5_WARNING not in put.stdout + put.stderr, harness.describe(put)
    upstream.assert_encrypted_multipart(enc_bucket, "upload.bin", data, 5 * MiB)

    target = tmp_path / "download.bin"
    got = s3cmd("get", uri, str(target), timeout=600)
    assert got.returncode == 0, harness.describe(got)
    assert harness.S3CMD_GET_MD5_WARNING not in got.stdout + got.stderr, harness.describe(got)
    harness.assert_same_bytes(target.read_bytes(), data, "downloaded upload.bin")

    listed = s3cmd("ls", f"s3://{enc_bucket}/")
    assert listed.returncode == 0, harness.describe(listed)
    assert harness.parse_s3cmd_ls(listed.stdout) == {uri: len(data)}, listed.stdout
