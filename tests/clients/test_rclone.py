"""rclone (Debian 1.60.1) through s3seal's plain HTTP listener."""

import os

import pytest

import harness

FILES = {
    "empty.bin": b"",
    "one.bin": b"x",
    "segment.bin": os.urandom(65536),
    "segment plus one.bin": os.urandom(65537),
    "sub dir/random 1 MiB.bin": os.urandom(1024 * 1024),
}


@pytest.fixture(scope="module")
def uploaded(rclone, tmp_path_factory):
    """A bucket that `rclone copy` filled with FILES, and the local source directory."""
    source = tmp_path_factory.mktemp("rclone-source")
    for name, data in FILES.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes(data)
    bucket = harness.unique_name("enc")

    copied = rclone("copy", str(source), f"s3seal:{bucket}")

    assert copied.returncode == 0, harness.describe(copied)
    return bucket, source


def test_rclone_copy_stores_ciphertext(uploaded, upstream):
    bucket, _ = uploaded
    for name, data in FILES.items():
        upstream.assert_encrypted(bucket, name, data)


def test_rclone_check(rclone, uploaded):
    bucket, source = uploaded

    checked = rclone("check", str(source), f"s3seal:{bucket}")

    assert checked.returncode == 0, harness.describe(checked)
    assert "0 differences found" in checked.stderr, harness.describe(checked)
    assert f"{len(FILES)} matching files" in checked.stderr, harness.describe(checked)


def test_rclone_ls_sizes(rclone, uploaded):
    bucket, _ = uploaded

    listed = rclone("ls", f"s3seal:{bucket}")

    assert listed.returncode == 0, harness.describe(listed)
    assert harness.parse_rclone_ls(listed.stdout) == {name: len(data) for name, data in FILES.items()}


def test_rclone_copy_down(rclone, uploaded, tmp_path):
    bucket, _ = uploaded

    copied = rclone("copy", f"s3seal:{bucket}", str(tmp_path))

    assert copied.returncode == 0, harness.describe(copied)
    for name, data in FILES.items():
        assert (tmp_path / name).read_bytes() == data, f"{name} differs after the round trip"


def test_rclone_single_put_below_cutoff(rclone, enc_bucket, upstream, tmp_path):
    # 20 MiB is below rclone's default --s3-upload-cutoff of 200 MiB, so one PutObject.
    data = os.urandom(20 * 1024 * 1024)
    source = tmp_path / "up" / "single.bin"
    source.parent.mkdir()
    source.write_bytes(data)

    copied = rclone("copy", str(source.parent), f"s3seal:{enc_bucket}")
    assert copied.returncode == 0, harness.describe(copied)
    upstream.assert_encrypted(enc_bucket, "single.bin", data)

    target = tmp_path / "down" / "single.bin"
    downloaded = rclone("copyto", f"s3seal:{enc_bucket}/single.bin", str(target))
    assert downloaded.returncode == 0, harness.describe(downloaded)
    harness.assert_same_bytes(target.read_bytes(), data, "downloaded single.bin")
