"""Start the moto upstream and the s3seal proxy, and check what the proxy stored.

Facts about moto_server that this harness relies on, checked by running moto
5.2.6 (the version tests/clients/requirements.txt pins) and 5.2.1 here:

* moto verifies SigV4 only when its request counter has reached
  INITIAL_NO_AUTH_ACTION_COUNT. Until then every AWS action (IAM or S3) is
  served without a signature check and increments the counter, whether it
  succeeds or fails. Requests to /moto-api/ do not count.
* POST /moto-api/reset-auth with the body "N" (not form-encoded) sets the limit
  to N and resets the counter to 0. The harness always does this before its IAM
  requests, so it works on a fresh moto and on one that has already served
  requests.
* Four unauthenticated requests are needed: CreateUser, CreatePolicy,
  AttachUserPolicy and CreateAccessKey. moto loads no AWS managed policies by
  default, so AdministratorAccess cannot be attached and the harness creates its
  own allow-all policy.
* After that, a request with an unknown access key fails with 403
  InvalidAccessKeyId, a wrong secret with 403 SignatureDoesNotMatch, and a
  request without an Authorization header with a 500 (moto raises KeyError).
  moto checks the signature against the x-amz-content-sha256 value as sent and
  does not hash the body, so a wrong body with a valid signature is stored.
* moto 5.2.1 builds the canonical request from Werkzeug's IRI of the URL,
  which leaves some characters unescaped that SigV4 clients escape. So it
  rejects correctly signed requests whose object key contains
  ``!$&'()*+,:;=@%`` or non-ASCII characters. It also rejects listings whose
  query contains ``/`` or non-ASCII characters, such as prefix "dir/" or
  delimiter "/". moto 5.2.6 accepts all of them. The test_moto_* tests in test_harness.py send such
  requests straight to moto, so a moto with this defect fails them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import boto3
import botocore.exceptions
import pytest
import requests
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

REPO_ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"

# The S3 maximum size of one PUT. Tests that need a single-part upload of a
# file above a client's multipart threshold raise the threshold to this.
SINGLE_PUT_MAX = 5 * 1024**3

# s3seal encrypts the body in segments of this many plaintext bytes and adds a
# 16-byte authentication tag to each segment. An empty body is one segment.
SEGMENT_SIZE = 65536
TAG_SIZE = 16

# Metadata names (without the x-amz-meta- prefix) that s3seal stores upstream
# on every encrypted object.
SEAL_METADATA = (
    "s3seal-format",
    "s3seal-kek",
    "s3seal-kek-version",
    "s3seal-wrapped-key",
    "s3seal-commitment",
)

# A stored part of a multipart object starts with a header of this many bytes:
# "S3P1", the part number (u32 big-endian), the part's plaintext length (u64
# big-endian) and a 16-byte salt. The part's segments follow it.
PART_HEADER_SIZE = 32
PART_MAGIC = b"S3P1"

# Metadata (without the x-amz-meta- prefix) that marks a multipart object upstream.
LAYOUT_METADATA = "s3seal-layout"
MULTIPART_LAYOUT = "multipart"

# s3cmd 2.3.0 prints these warnings when the ETag of a PUT or GET response is
# not the MD5 of the bytes it sent or received.
S3CMD_PUT_MD5_WARNING = "MD5 Sums don't match"
S3CMD_GET_MD5_WARNING = "MD5 signatures do not match"

# Number of unauthenticated requests the IAM setup makes: CreateUser,
# CreatePolicy, AttachUserPolicy, CreateAccessKey. .ci/run starts moto with
# INITIAL_NO_AUTH_ACTION_COUNT set to the same number.
MOTO_UNAUTHENTICATED_REQUESTS = 4

# Object keys with characters that need percent-encoding in a SigV4 canonical
# URI, in a query string, or in XML.
SPECIAL_KEYS = {
    "space": "dir one/file two.txt",
    "plus": "plus+sign.txt",
    "equals": "key=value.txt",
    "tilde": "tilde~name.txt",
    "ampersand": "fish&chips.txt",
    "percent": "100% done %41.txt",
    "hash": "hash#tag.txt",
    "question": "why?.txt",
    "unicode": "ü/日本語 ü+=~.txt",
}

CLIENT_ACCESS_KEY_ID = "AKIDTESTCLIENT0001"
KEK_NAME = "battery"

# No client retries: a failed request must fail the test, not be repeated
# until it happens to pass.
NO_RETRY = {"total_max_attempts": 1, "mode": "standard"}

ADMIN_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    }
)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free when checked."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def require_binary(name: str, install_hint: str) -> str:
    """Return the path of NAME on PATH, or fail the test with the install command."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found on PATH: install it with `{install_hint}`")
    return path


def client_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Return an environment for client subprocesses that cannot reach AWS.

    Variables that could select another endpoint, profile or proxy are
    removed, and the EC2 instance metadata lookup is disabled.
    """
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("AWS_")
        and name.lower() not in ("http_proxy", "https_proxy", "all_proxy")
    }
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env["NO_PROXY"] = "127.0.0.1,localhost"
    env["no_proxy"] = "127.0.0.1,localhost"
    if extra:
        env.update(extra)
    return env


def run(args: list[str], env: dict[str, str], timeout: float = 120, cwd: Path | None = None):
    """Run a client command and return the CompletedProcess with text output."""
    return subprocess.run(
        args,
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def describe(result: subprocess.CompletedProcess) -> str:
    """Format a command, its exit status and its output for an assert message."""
    return (
        f"command: {result.args}\nexit status: {result.returncode}\n"
        f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )


def unique_name(prefix: str) -> str:
    """Return a bucket name that no other test or earlier run uses."""
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def md5_etag(data: bytes) -> str:
    """Return the ETag S3 gives a single-part object: the quoted hex MD5."""
    return '"' + hashlib.md5(data).hexdigest() + '"'


def assert_client_etag(etag: str, plaintext: bytes) -> None:
    """Assert that a client can trust ETAG as far as clients read ETags.

    rclone and s3cmd take a quoted 32-digit hex ETag for the MD5 of the
    content, so such an ETag must be the MD5 of the plaintext. They take any
    other form, such as the "-N" suffix of multipart ETags, for an opaque
    version tag and then compare sizes only.
    """
    inner = etag.strip('"')
    if re.fullmatch("[0-9a-fA-F]{32}", inner):
        assert etag == md5_etag(plaintext), (
            f"ETag {etag} has the form of an MD5 but the plaintext MD5 is {md5_etag(plaintext)}"
        )


def assert_same_bytes(actual: bytes, expected: bytes, description: str) -> None:
    """Assert that ACTUAL equals EXPECTED, and name the first differing offset if not.

    pytest would otherwise try to print a diff of two large byte strings.
    """
    if actual == expected:
        return
    common = min(len(actual), len(expected))
    block = 65536
    offset = next(
        (start for start in range(0, common, block) if actual[start : start + block] != expected[start : start + block]),
        common,
    )
    while offset < common and actual[offset] == expected[offset]:
        offset += 1
    raise AssertionError(
        f"{description} has {len(actual)} bytes, expected {len(expected)}, and the first difference is at byte {offset}"
    )


def parse_s3_ls(stdout: str) -> dict[str, int]:
    """Map object key to size from `aws s3 ls` output lines `DATE TIME SIZE KEY`."""
    sizes = {}
    for line in stdout.splitlines():
        fields = line.split(maxsplit=3)
        if len(fields) == 4 and fields[2].isdigit():
            sizes[fields[3]] = int(fields[2])
    return sizes


def parse_rclone_ls(stdout: str) -> dict[str, int]:
    """Map path to size from `rclone ls` output lines `SIZE PATH`."""
    sizes = {}
    for line in stdout.splitlines():
        size, _, path = line.strip().partition(" ")
        sizes[path] = int(size)
    return sizes


def parse_s3cmd_ls(stdout: str) -> dict[str, int]:
    """Map URI to size from `s3cmd ls` output lines `DATE TIME SIZE URI`."""
    sizes = {}
    for line in stdout.splitlines():
        fields = line.split(maxsplit=3)
        if len(fields) == 4 and fields[2].isdigit():
            sizes[fields[3]] = int(fields[2])
    return sizes


@contextlib.contextmanager
def sent_headers(client, operation: str):
    """Collect the headers of each OPERATION request that the boto3 CLIENT sends, names in lower case."""
    captured: list[dict[str, str]] = []

    def record(request, **_):
        captured.append({name.lower(): header_text(value) for name, value in request.headers.items()})

    unique_id = f"record-{uuid.uuid4().hex}"
    event = f"before-send.s3.{operation}"
    client.meta.events.register(event, record, unique_id=unique_id)
    try:
        yield captured
    finally:
        client.meta.events.unregister(event, unique_id=unique_id)


def header_text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def sealed_size(plaintext_size: int) -> int:
    """Return the stored size of an encrypted object of PLAINTEXT_SIZE bytes."""
    segments = max(1, math.ceil(plaintext_size / SEGMENT_SIZE))
    return plaintext_size + TAG_SIZE * segments


def split_parts(size: int, part_size: int) -> list[int]:
    """Return the part sizes of a SIZE-byte upload cut into PART_SIZE-byte parts."""
    full, rest = divmod(size, part_size)
    return [part_size] * full + ([rest] if rest else [])


def multipart_sealed_size(part_sizes: list[int]) -> int:
    """Return the stored size of an encrypted multipart object with parts of PART_SIZES plaintext bytes."""
    return sum(PART_HEADER_SIZE + sealed_size(size) for size in part_sizes)


# ---------------------------------------------------------------------------
# moto


class MotoServer:
    """A moto_server process on 127.0.0.1, or one started by someone else."""

    def __init__(self, endpoint: str, process: subprocess.Popen | None, log_path: Path | None):
        self.endpoint = endpoint
        self.process = process
        self.log_path = log_path
        self.credentials: UpstreamCredentials | None = None

    @classmethod
    def start(cls, log_path: Path) -> "MotoServer":
        """Start moto_server on a free port and wait until it serves requests."""
        port = free_port()
        env = client_environment({"INITIAL_NO_AUTH_ACTION_COUNT": str(MOTO_UNAUTHENTICATED_REQUESTS)})
        log = open(log_path, "wb")
        # `python -m moto.server` is the moto_server entry point, run with the
        # interpreter that runs the tests so that no PATH lookup is involved.
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        finally:
            log.close()
        server = cls(f"http://127.0.0.1:{port}", process, log_path)
        server.wait_ready(timeout=60)
        return server

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"moto_server exited with status {self.process.returncode}; "
                    f"log:\n{tail(self.log_path)}"
                )
            try:
                # /moto-api/ requests do not count towards INITIAL_NO_AUTH_ACTION_COUNT.
                if requests.get(f"{self.endpoint}/moto-api/data.json", timeout=2).ok:
                    return
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"moto_server at {self.endpoint} not ready after {timeout} s")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass(frozen=True)
class UpstreamCredentials:
    access_key_id: str
    secret_access_key: str
    user_name: str


def create_upstream_credentials(endpoint: str) -> UpstreamCredentials:
    """Create an IAM user with an allow-all policy in moto and return its access key.

    Resets moto's unauthenticated-request budget first, so that the four IAM
    requests below are the last ones moto serves without a signature check.
    The user and policy names are unique, so this works on a moto that has
    served earlier sessions.
    """
    response = requests.post(
        f"{endpoint}/moto-api/reset-auth",
        data=str(MOTO_UNAUTHENTICATED_REQUESTS).encode(),
        timeout=10,
    )
    response.raise_for_status()

    iam = boto3.client(
        "iam",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="UNAUTHENTICATEDSETUP",
        aws_secret_access_key="unauthenticated-setup",
        config=Config(retries=NO_RETRY),
    )
    name = unique_name("s3seal-battery")
    iam.create_user(UserName=name)
    policy_arn = iam.create_policy(PolicyName=name, PolicyDocument=ADMIN_POLICY)["Policy"]["Arn"]
    iam.attach_user_policy(UserName=name, PolicyArn=policy_arn)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return UpstreamCredentials(key["AccessKeyId"], key["SecretAccessKey"], name)


def s3_client(endpoint: str, access_key_id: str, secret_access_key: str, **config) -> "boto3.client":
    """Return a path-style boto3 S3 client for ENDPOINT that never retries."""
    verify = config.pop("verify", None)
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        verify=verify,
        config=Config(s3={"addressing_style": "path"}, retries=NO_RETRY, **config),
    )


# ---------------------------------------------------------------------------
# s3seal


def generate_certificate(directory: Path) -> tuple[Path, Path]:
    """Write a self-signed P-256 certificate for 127.0.0.1 and localhost."""
    cert = directory / "cert.pem"
    key = directory / "key.pem"
    openssl = require_binary("openssl", "apt-get install openssl")
    result = run(
        [
            openssl, "req", "-x509", "-nodes", "-days", "2",
            "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-keyout", str(key), "-out", str(cert),
            "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        env=client_environment(),
        timeout=60,
    )
    assert result.returncode == 0, describe(result)
    key.chmod(0o600)
    return cert, key


def toml_string(value: str) -> str:
    """Quote VALUE as a TOML basic string (JSON escapes are valid TOML escapes)."""
    return json.dumps(value)


def write_config(
    path: Path,
    *,
    upstream_endpoint: str,
    keyring: Path,
    client_secret_file: Path,
    cert: Path,
    key: Path,
    ready_file: Path,
) -> None:
    path.write_text(
        f"""[server]
listen = "127.0.0.1:0"
tls_listen = "127.0.0.1:0"
tls_cert_file = {toml_string(str(cert))}
tls_key_file = {toml_string(str(key))}
region = "{REGION}"
ready_file = {toml_string(str(ready_file))}

[upstream]
endpoint = {toml_string(upstream_endpoint)}
region = "{REGION}"
addressing_style = "path"
access_key_id_env = "S3SEAL_UPSTREAM_ACCESS_KEY_ID"
secret_access_key_env = "S3SEAL_UPSTREAM_SECRET_ACCESS_KEY"

[keys]
keyring_file = {toml_string(str(keyring))}

# The default audit paths are relative to the working directory, where another
# s3seal process may hold the lock on the audit log.
[audit]
file = {toml_string(str(path.parent / "audit.log"))}
key_file = {toml_string(str(path.parent / "audit-key"))}

[[clients]]
access_key_id = "{CLIENT_ACCESS_KEY_ID}"
secret_file = {toml_string(str(client_secret_file))}

[[buckets]]
match = "plain-*"
mode = "passthrough"

[[buckets]]
match = "legacy-*"
mode = "encrypt"
key = "{KEK_NAME}"
allow_unencrypted_reads = true

[[buckets]]
match = "*"
mode = "encrypt"
key = "{KEK_NAME}"
"""
    )


def s3seal_binary() -> Path:
    """Return the debug s3seal binary, running `cargo build` first if it is missing.

    The target directory is `CARGO_TARGET_DIR` when it is set, with a
    relative path taken from the repository root, where this function runs
    cargo, and `target` otherwise.
    """
    target_dir = REPO_ROOT / os.environ.get("CARGO_TARGET_DIR", "target")
    binary = target_dir / "debug" / "s3seal"
    if not binary.exists():
        result = run(["cargo", "build"], env=dict(os.environ), timeout=1800, cwd=REPO_ROOT)
        assert result.returncode == 0, describe(result)
    return binary


class S3SealServer:
    """An `s3seal serve` process with a plain HTTP and a TLS listener."""

    def __init__(self, process: subprocess.Popen, log_path: Path, ready: dict):
        self.process = process
        self.log_path = log_path
        self.endpoint = f"http://{ready['listen']}"
        self.tls_endpoint = f"https://{ready['tls_listen']}"

    @classmethod
    def start(cls, binary: Path, config: Path, ready_file: Path, log_path: Path, env: dict) -> "S3SealServer":
        log = open(log_path, "wb")
        try:
            process = subprocess.Popen(
                [str(binary), "serve", "--config", str(config)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=config.parent,
            )
        finally:
            log.close()

        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"s3seal serve exited with status {process.returncode} before "
                    f"writing {ready_file}; log:\n{tail(log_path)}"
                )
            if ready_file.exists():
                try:
                    ready = json.loads(ready_file.read_text())
                except json.JSONDecodeError:
                    ready = None  # The file may be half-written.
                if ready and ready.get("listen") and ready.get("tls_listen"):
                    return cls(process, log_path, ready)
            if time.monotonic() > deadline:
                process.kill()
                process.wait()
                raise RuntimeError(f"s3seal serve did not write {ready_file} within 30 s; log:\n{tail(log_path)}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def tail(path: Path | None, lines: int = 60) -> str:
    if path is None or not path.exists():
        return "(no log)"
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


# ---------------------------------------------------------------------------
# Upstream checks


class Upstream:
    """Direct access to moto with the upstream credentials, bypassing s3seal."""

    def __init__(self, endpoint: str, credentials: UpstreamCredentials):
        self.client = s3_client(endpoint, credentials.access_key_id, credentials.secret_access_key)

    def read(self, bucket: str, key: str) -> tuple[bytes, dict[str, str]]:
        """Return the stored bytes and user metadata of an object."""
        response = self.client.get_object(Bucket=bucket, Key=key)
        return response["Body"].read(), response["Metadata"]

    def exists(self, bucket: str, key: str) -> bool:
        try:
            self.client.head_object(Bucket=bucket, Key=key)
        except botocore.exceptions.ClientError as error:
            if error.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
                return False
            raise
        return True

    def assert_encrypted(self, bucket: str, key: str, plaintext: bytes) -> None:
        """Assert that the object is stored as s3seal ciphertext of PLAINTEXT."""
        stored, metadata = self.read(bucket, key)
        where = f"upstream object {bucket}/{key!r}"

        assert stored != plaintext, f"{where} is stored as plaintext"
        if len(plaintext) >= 16:
            assert plaintext not in stored, f"{where} contains the plaintext"
        assert len(stored) == sealed_size(len(plaintext)), (
            f"{where} has {len(stored)} bytes, expected {sealed_size(len(plaintext))} "
            f"for {len(plaintext)} plaintext bytes"
        )
        missing = [name for name in SEAL_METADATA if name not in metadata]
        assert not missing, f"{where} lacks metadata {missing}; it has {sorted(metadata)}"
        assert metadata.get(LAYOUT_METADATA) != MULTIPART_LAYOUT, f"{where} is a multipart object, expected a single PUT"

    def assert_encrypted_multipart(self, bucket: str, key: str, plaintext: bytes, part_size: int) -> None:
        """Assert that the object is stored as s3seal multipart ciphertext of PLAINTEXT.

        The client is expected to have cut PLAINTEXT into parts of PART_SIZE
        bytes (the last one shorter). Each stored part must start with a part
        header that names its part number and plaintext length, and no part
        may contain its plaintext.
        """
        stored, metadata = self.read(bucket, key)
        where = f"upstream object {bucket}/{key!r}"
        part_sizes = split_parts(len(plaintext), part_size)

        assert len(stored) == multipart_sealed_size(part_sizes), (
            f"{where} has {len(stored)} bytes, expected {multipart_sealed_size(part_sizes)} "
            f"for {len(part_sizes)} parts of {part_size} bytes ({len(plaintext)} plaintext bytes)"
        )
        missing = [name for name in SEAL_METADATA if name not in metadata]
        assert not missing, f"{where} lacks metadata {missing}; it has {sorted(metadata)}"
        assert metadata.get(LAYOUT_METADATA) == MULTIPART_LAYOUT, (
            f"{where} has {LAYOUT_METADATA}={metadata.get(LAYOUT_METADATA)!r}, expected {MULTIPART_LAYOUT!r}"
        )

        stored_offset = 0
        plaintext_offset = 0
        for number, size in enumerate(part_sizes, start=1):
            header = stored[stored_offset : stored_offset + PART_HEADER_SIZE]
            assert header[:4] == PART_MAGIC, f"{where}: part {number} starts with {header[:4]!r}, not {PART_MAGIC!r}"
            assert int.from_bytes(header[4:8], "big") == number, f"{where}: part {number} header: {header.hex()}"
            assert int.from_bytes(header[8:16], "big") == size, f"{where}: part {number} header: {header.hex()}"

            body = stored[stored_offset + PART_HEADER_SIZE : stored_offset + PART_HEADER_SIZE + sealed_size(size)]
            part = plaintext[plaintext_offset : plaintext_offset + size]
            # The first segment would start right after the header if the part
            # were stored in plaintext, and a 64-byte sample of random data
            # cannot occur in ciphertext by chance.
            assert body[:size] != part, f"{where}: part {number} is stored as plaintext"
            for sample_offset in (0, size // 2, max(0, size - 64)):
                sample = part[sample_offset : sample_offset + 64]
                if len(sample) >= 16:
                    assert sample not in stored, (
                        f"{where} contains plaintext bytes {sample_offset}.. of part {number}"
                    )

            stored_offset += PART_HEADER_SIZE + sealed_size(size)
            plaintext_offset += size

    def assert_plain(self, bucket: str, key: str, plaintext: bytes) -> None:
        """Assert that the object is stored unchanged and without s3seal metadata."""
        stored, metadata = self.read(bucket, key)
        where = f"upstream object {bucket}/{key!r}"

        assert stored == plaintext, f"{where} differs from the plaintext ({len(stored)} vs {len(plaintext)} bytes)"
        sealed = [name for name in metadata if name.startswith("s3seal-")]
        assert not sealed, f"{where} has s3seal metadata {sealed}"


def signed_request(
    method: str,
    url: str,
    access_key_id: str,
    secret_access_key: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    verify: str | bool = True,
) -> requests.Response:
    """Send a header-signed SigV4 request for service s3 and return the response.

    URL must already be percent-encoded as it is to be sent.
    """
    request = AWSRequest(method=method, url=url, data=body, headers=headers or {})
    S3SigV4Auth(Credentials(access_key_id, secret_access_key), "s3", REGION).add_auth(request)
    prepared = request.prepare()
    return requests.request(
        method,
        prepared.url,
        headers=dict(prepared.headers),
        data=prepared.body,
        verify=verify,
        timeout=60,
    )
