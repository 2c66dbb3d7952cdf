"""0-byte objects through every client. s3seal stores them as one 16-byte tag."""

import harness


def test_empty_boto3_tls(s3_tls, enc_bucket, upstream):
    s3_tls.put_object(Bucket=enc_bucket, Key="empty", Body=b"")

    upstream.assert_encrypted(enc_bucket, "empty", b"")
    got = s3_tls.get_object(Bucket=enc_bucket, Key="empty")
    assert got["Body"].read() == b""
    assert got["ContentLength"] == 0
    harness.assert_client_etag(s3_tls.head_object(Bucket=enc_bucket, Key="empty")["ETag"], b"")


def test_empty_boto3_http(s3_http, enc_bucket, upstream):
    s3_http.put_object(Bucket=enc_bucket, Key="empty", Body=b"")

    upstream.assert_encrypted(enc_bucket, "empty", b"")
    got = s3_http.get_object(Bucket=enc_bucket, Key="empty")
    assert got["Body"].read() == b""
    assert got["ContentLength"] == 0


def test_empty_awscli(aws, enc_bucket, upstream, tmp_path):
    source = tmp_path / "empty"
    source.write_bytes(b"")

    copied = aws("s3", "cp", str(source), f"s3://{enc_bucket}/copied-empty")
    assert copied.returncode == 0, harness.describe(copied)
    upstream.assert_encrypted(enc_bucket, "copied-empty", b"")

    # put-object without --body sends an empty body.
    put = aws("s3api", "put-object", "--bucket", enc_bucket, "--key", "put-empty")
    assert put.returncode == 0, harness.describe(put)
    upstream.assert_encrypted(enc_bucket, "put-empty", b"")

    for key in ["copied-empty", "put-empty"]:
        target = tmp_path / f"{key}.out"
        target.write_bytes(b"stale")
        downloaded = aws("s3", "cp", f"s3://{enc_bucket}/{key}", str(target))
        assert downloaded.returncode == 0, harness.describe(downloaded)
        assert target.read_bytes() == b"", key


def test_empty_rclone(rclone, enc_bucket, upstream, tmp_path):
    source = tmp_path / "up" / "empty"
    source.parent.mkdir()
    source.write_bytes(b"")

    copied = rclone("copyto", str(source), f"s3seal:{enc_bucket}/empty")
    assert copied.returncode == 0, harness.describe(copied)
    upstream.assert_encrypted(enc_bucket, "empty", b"")

    checked = rclone("check", str(source.parent), f"s3seal:{enc_bucket}")
    assert checked.returncode == 0, harness.describe(checked)

    target = tmp_path / "down" / "empty"
    downloaded = rclone("copyto", f"s3seal:{enc_bucket}/empty", str(target))
    assert downloaded.returncode == 0, harness.describe(downloaded)
    assert target.read_bytes() == b""


def test_empty_s3cmd(s3cmd, enc_bucket, upstream, tmp_path):
    source = tmp_path / "empty"
    source.write_bytes(b"")

    put = s3cmd("put", str(source), f"s3://{enc_bucket}/empty")
    assert put.returncode == 0, harness.describe(put)
    assert harness.S3CMD_PUT_MD5_WARNING not in put.stderr, harness.describe(put)
    upstream.assert_encrypted(enc_bucket, "empty", b"")

    target = tmp_path / "empty.out"
    got = s3cmd("get", f"s3://{enc_bucket}/empty", str(target))
    assert got.returncode == 0, harness.describe(got)
    assert harness.S3CMD_GET_MD5_WARNING not in got.stderr, harness.describe(got)
    assert target.read_bytes() == b""


def test_empty_then_small_puts_boto3(s3_http, enc_bucket, upstream):
    # botocore sends "Expect: 100-continue" with PutObject, also with an
    # empty body. It misreads the response of the next such request on a
    # connection whose last response came without "100 Continue".
    for index in range(3):
        s3_http.put_object(Bucket=enc_bucket, Key=f"pair-{index}-empty", Body=b"")
        put = s3_http.put_object(Bucket=enc_bucket, Key=f"pair-{index}-byte", Body=b"x")
        assert put["ETag"], put
        assert put["ResponseMetadata"]["HTTPHeaders"].get("x-amz-request-id"), put

    for index in range(3):
        upstream.assert_encrypted(enc_bucket, f"pair-{index}-empty", b"")
        upstream.assert_encrypted(enc_bucket, f"pair-{index}-byte", b"x")


def test_awscli_sync_with_empty_files(aws, enc_bucket, upstream, tmp_path):
    folder = tmp_path / "tree"
    folder.mkdir()
    contents = {"a-empty": b"", "b-small": b"small file\n", "c-empty": b"", "d-small": b"d" * 5000}
    for name, data in contents.items():
        (folder / name).write_bytes(data)

    synced = aws("s3", "sync", str(folder), f"s3://{enc_bucket}/tree/", timeout=20)
    assert synced.returncode == 0, harness.describe(synced)
    for name, data in contents.items():
        upstream.assert_encrypted(enc_bucket, f"tree/{name}", data)
