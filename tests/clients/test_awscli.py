"""aws cli (v1) through s3seal's plain HTTP listener."""

import json
import os

import pytest

import harness

RANGE_OBJECT_SIZE = 150_000  # three encryption segments, the last one partial


def test_awscli_mb_cp_ls_rm(aws, upstream, tmp_path):
    bucket = harness.unique_name("enc")
    data = os.urandom(300_000)
    source = tmp_path / "upload.bin"
    source.write_bytes(data)

    created = aws("s3", "mb", f"s3://{bucket}")
    assert created.returncode == 0, harness.describe(created)

    uploaded = aws("s3", "cp", str(source), f"s3://{bucket}/dir/upload.bin")
    assert uploaded.returncode == 0, harness.describe(uploaded)
    upstream.assert_encrypted(bucket, "dir/upload.bin", data)

    target = tmp_path / "download.bin"
    downloaded = aws("s3", "cp", f"s3://{bucket}/dir/upload.bin", str(target))
    assert downloaded.returncode == 0, harness.describe(downloaded)
    assert target.read_bytes() == data

    listed = aws("s3", "ls", f"s3://{bucket}/dir/")
    assert listed.returncode == 0, harness.describe(listed)
    assert harness.parse_s3_ls(listed.stdout) == {"upload.bin": len(data)}, listed.stdout

    removed = aws("s3", "rm", f"s3://{bucket}/dir/upload.bin")
    assert removed.returncode == 0, harness.describe(removed)
    assert not upstream.exists(bucket, "dir/upload.bin")

    listed_after = aws("s3", "ls", f"s3://{bucket}/dir/")
    assert harness.parse_s3_ls(listed_after.stdout) == {}, listed_after.stdout


def test_awscli_put_get_object(aws, enc_bucket, upstream, tmp_path):
    data = os.urandom(70_000)
    source = tmp_path / "body.bin"
    source.write_bytes(data)

    put = aws("s3api", "put-object", "--bucket", enc_bucket, "--key", "object.bin", "--body", str(source))
    assert put.returncode == 0, harness.describe(put)
    put_etag = json.loads(put.stdout)["ETag"]
    harness.assert_client_etag(put_etag, data)
    upstream.assert_encrypted(enc_bucket, "object.bin", data)

    target = tmp_path / "out.bin"
    got = aws("s3api", "get-object", "--bucket", enc_bucket, "--key", "object.bin", str(target))
    assert got.returncode == 0, harness.describe(got)
    assert json.loads(got.stdout)["ContentLength"] == len(data)
    assert json.loads(got.stdout)["ETag"] == put_etag
    assert target.read_bytes() == data


@pytest.fixture(scope="module")
def range_object(stack, upstream):
    """A bucket and key holding RANGE_OBJECT_SIZE random bytes, written with boto3."""
    client = harness.s3_client(stack.endpoint, stack.access_key_id, stack.secret_access_key)
    bucket = harness.unique_name("enc")
    data = os.urandom(RANGE_OBJECT_SIZE)
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="ranged.bin", Body=data)
    upstream.assert_encrypted(bucket, "ranged.bin", data)
    return bucket, "ranged.bin", data


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-9", 0, 9),
        ("bytes=5-", 5, RANGE_OBJECT_SIZE - 1),
        ("bytes=-7", RANGE_OBJECT_SIZE - 7, RANGE_OBJECT_SIZE - 1),
        # The end lies past the object, so S3 returns the bytes up to the end.
        (f"bytes={RANGE_OBJECT_SIZE - 10}-{RANGE_OBJECT_SIZE + 5000}", RANGE_OBJECT_SIZE - 10, RANGE_OBJECT_SIZE - 1),
    ],
    ids=["first10", "from5", "last7", "clamped"],
)
def test_awscli_range(aws, range_object, tmp_path, header, start, end):
    bucket, key, data = range_object
    target = tmp_path / "part.bin"

    got = aws("s3api", "get-object", "--bucket", bucket, "--key", key, "--range", header, str(target))
    assert got.returncode == 0, harness.describe(got)
    output = json.loads(got.stdout)

    assert target.read_bytes() == data[start : end + 1]
    assert output["ContentLength"] == end - start + 1
    assert output["ContentRange"] == f"bytes {start}-{end}/{len(data)}"


def test_awscli_range_unsatisfiable(aws, range_object, tmp_path):
    bucket, key, data = range_object
    header = f"bytes={len(data)}-{len(data) + 10}"

    got = aws("s3api", "get-object", "--bucket", bucket, "--key", key, "--range", header, str(tmp_path / "x"))

    assert got.returncode != 0, harness.describe(got)
    assert "InvalidRange" in got.stderr, harness.describe(got)


def test_awscli_head_object(aws, range_object):
    bucket, key, data = range_object

    head = aws("s3api", "head-object", "--bucket", bucket, "--key", key)
    assert head.returncode == 0, harness.describe(head)
    output = json.loads(head.stdout)

    assert output["ContentLength"] == len(data)
    harness.assert_client_etag(output["ETag"], data)
    visible = [name for name in output.get("Metadata", {}) if name.startswith("s3seal-")]
    assert not visible, f"s3seal metadata visible to the client: {visible}"


@pytest.mark.parametrize("directive", ["COPY", "REPLACE"])
@pytest.mark.parametrize("target_kind", ["same", "cross"])
def test_awscli_copy_object(aws, make_bucket, upstream, tmp_path, directive, target_kind):
    source_bucket = make_bucket("enc")
    target_bucket = source_bucket if target_kind == "same" else make_bucket("enc")
    data = os.urandom(100_000)
    source = tmp_path / "source.bin"
    source.write_bytes(data)

    put = aws(
        "s3api", "put-object", "--bucket", source_bucket, "--key", "source.bin",
        "--body", str(source), "--metadata", "color=blue", "--content-type", "text/plain",
    )
    assert put.returncode == 0, harness.describe(put)

    copy_args = [
        "s3api", "copy-object", "--bucket", target_bucket, "--key", "copied.bin",
        "--copy-source", f"{source_bucket}/source.bin", "--metadata-directive", directive,
    ]
    if directive == "REPLACE":
        copy_args += ["--metadata", "color=red", "--content-type", "application/x-replaced"]
    copied = aws(*copy_args)
    assert copied.returncode == 0, harness.describe(copied)
    upstream.assert_encrypted(target_bucket, "copied.bin", data)

    head = aws("s3api", "head-object", "--bucket", target_bucket, "--key", "copied.bin")
    assert head.returncode == 0, harness.describe(head)
    output = json.loads(head.stdout)
    expected_color, expected_type = ("blue", "text/plain") if directive == "COPY" else ("red", "application/x-replaced")
    assert output["ContentLength"] == len(data)
    harness.assert_client_etag(output["ETag"], data)
    assert output.get("Metadata", {}).get("color") == expected_color, output
    assert output.get("ContentType") == expected_type, output
    visible = [name for name in output.get("Metadata", {}) if name.startswith("s3seal-")]
    assert not visible, f"s3seal metadata visible to the client: {visible}"

    target = tmp_path / "copied.bin"
    got = aws("s3api", "get-object", "--bucket", target_bucket, "--key", "copied.bin", str(target))
    assert got.returncode == 0, harness.describe(got)
    assert target.read_bytes() == data


@pytest.mark.parametrize("kind", ["enc", "plain"])
def test_awscli_rm_recursive(aws, make_bucket, upstream, tmp_path, kind):
    # `aws s3 rm --recursive` deletes with DeleteObjects, whose keys s3seal
    # reads from the body before it forwards the body unchanged.
    bucket = make_bucket(kind)
    source = tmp_path / "small.txt"
    source.write_bytes(b"x")
    keys = ["dir/a.txt", "dir/sub dir/b.txt", "dir/ü+%.txt", "keep.txt"]
    for key in keys:
        put = aws("s3api", "put-object", "--bucket", bucket, "--key", key, "--body", str(source))
        assert put.returncode == 0, harness.describe(put)

    removed = aws("s3", "rm", f"s3://{bucket}/dir/", "--recursive")
    assert removed.returncode == 0, harness.describe(removed)
    assert removed.stdout.count("delete: ") == 3, removed.stdout
    for key in keys[:3]:
        assert not upstream.exists(bucket, key), key
    assert upstream.exists(bucket, "keep.txt")


def test_awscli_delete_objects_rejects_dot_segments(aws, enc_bucket, upstream, tmp_path):
    source = tmp_path / "small.txt"
    source.write_bytes(b"x")
    put = aws("s3api", "put-object", "--bucket", enc_bucket, "--key", "b", "--body", str(source))
    assert put.returncode == 0, harness.describe(put)

    deleted = aws(
        "s3api", "delete-objects", "--bucket", enc_bucket,
        "--delete", json.dumps({"Objects": [{"Key": "b"}, {"Key": "a/../b"}]}),
    )
    assert deleted.returncode != 0, harness.describe(deleted)
    assert "InvalidArgument" in deleted.stderr, harness.describe(deleted)
    assert upstream.exists(enc_bucket, "b")
