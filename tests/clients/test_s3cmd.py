"""s3cmd (Debian 2.3.0) through s3seal's plain HTTP listener."""

import os

import harness

PUT_MD5_WARNING = harness.S3CMD_PUT_MD5_WARNING
GET_MD5_WARNING = harness.S3CMD_GET_MD5_WARNING


def test_s3cmd_put_get_ls_del(s3cmd, enc_bucket, upstream, tmp_path):
    data = os.urandom(200_000)
    source = tmp_path / "upload.bin"
    source.write_bytes(data)
    uri = f"s3://{enc_bucket}/dir/upload.bin"

    put = s3cmd("put", str(source), uri)
    assert put.returncode == 0, harness.describe(put)
    assert PUT_MD5_WARNING not in put.stderr, harness.describe(put)
    upstream.assert_encrypted(enc_bucket, "dir/upload.bin", data)

    target = tmp_path / "download.bin"
    got = s3cmd("get", uri, str(target))
    assert got.returncode == 0, harness.describe(got)
    assert GET_MD5_WARNING not in got.stderr, harness.describe(got)
    assert target.read_bytes() == data

    listed = s3cmd("ls", f"s3://{enc_bucket}/dir/")
    assert listed.returncode == 0, harness.describe(listed)
    assert harness.parse_s3cmd_ls(listed.stdout) == {uri: len(data)}, listed.stdout

    deleted = s3cmd("del", uri)
    assert deleted.returncode == 0, harness.describe(deleted)
    assert not upstream.exists(enc_bucket, "dir/upload.bin")


def test_s3cmd_get_etag(s3cmd, s3_http, enc_bucket, tmp_path):
    # An object written by boto3 has no s3cmd-attrs metadata, so s3cmd checks
    # the downloaded bytes against the ETag of the GET response.
    data = os.urandom(70_000)
    s3_http.put_object(Bucket=enc_bucket, Key="from-boto3.bin", Body=data)
    target = tmp_path / "download.bin"

    got = s3cmd("get", f"s3://{enc_bucket}/from-boto3.bin", str(target))

    assert got.returncode == 0, harness.describe(got)
    assert GET_MD5_WARNING not in got.stderr, harness.describe(got)
    assert target.read_bytes() == data


def test_s3cmd_disable_multipart(s3cmd, enc_bucket, upstream, tmp_path):
    # 20 MiB is above s3cmd's default 15 MiB part size, so only
    # --disable-multipart makes this one PutObject.
    data = os.urandom(20 * 1024 * 1024)
    source = tmp_path / "single.bin"
    source.write_bytes(data)
    uri = f"s3://{enc_bucket}/single.bin"

    put = s3cmd("put", "--disable-multipart", str(source), uri)
    assert put.returncode == 0, harness.describe(put)
    assert PUT_MD5_WARNING not in put.stdout + put.stderr, harness.describe(put)
    upstream.assert_encrypted(enc_bucket, "single.bin", data)

    target = tmp_path / "download.bin"
    got = s3cmd("get", uri, str(target))
    assert got.returncode == 0, harness.describe(got)
    assert GET_MD5_WARNING not in got.stdout + got.stderr, harness.describe(got)
    harness.assert_same_bytes(target.read_bytes(), data, "downloaded single.bin")
