"""Fixtures for the client battery: moto as the upstream, s3seal in front of it.

Set S3SEAL_TEST_MOTO_ENDPOINT to use a moto_server that is already running,
as .ci/run does. Without it, the session starts its own moto_server on a free
port and stops it at the end. Either way the session creates fresh upstream
credentials in moto through IAM and turns on moto's signature check, as
described in harness.py.

All traffic goes to 127.0.0.1. Every client is given an explicit endpoint and
credentials, and AWS_EC2_METADATA_DISABLED is set, so no client looks for
another endpoint or for instance credentials.
"""

from __future__ import annotations

import importlib.util
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

import botocore.exceptions
import pytest

import harness

os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
# boto3 clients in this process must not read the developer's ~/.aws files.
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
for _name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN", "AWS_CA_BUNDLE"):
    os.environ.pop(_name, None)
# requests and urllib must connect to 127.0.0.1 directly, not through a proxy.
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"

ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
_LOG_OFFSETS = pytest.StashKey[dict]()
_LOGS: dict[str, Path] = {}

# Size of the file that the multipart tests upload and download with each
# client: 13 parts for aws cli and boto3 (8 MiB), 20 for rclone (5 MiB).
LARGE_FILE_SIZE = 100 * 1024**2


@dataclass(frozen=True)
class Stack:
    """The running moto and s3seal, with the credentials clients use."""

    endpoint: str
    tls_endpoint: str
    cert: Path
    access_key_id: str
    secret_access_key: str
    moto_endpoint: str
    upstream_credentials: harness.UpstreamCredentials
    workdir: Path


@pytest.fixture(scope="session")
def moto(tmp_path_factory):
    """moto_server with signature checks on, and its upstream_credentials set."""
    endpoint = os.environ.get("S3SEAL_TEST_MOTO_ENDPOINT")
    if endpoint:
        server = harness.MotoServer(endpoint.rstrip("/"), None, None)
    else:
        if importlib.util.find_spec("moto") is None:
            pytest.fail("moto is not installed: run `pip install -r tests/clients/requirements.txt`")
        log_path = tmp_path_factory.mktemp("moto") / "moto.log"
        _LOGS["moto log"] = log_path
        server = harness.MotoServer.start(log_path)

    server.credentials = harness.create_upstream_credentials(server.endpoint)

    # Check that moto now rejects unknown keys, so that s3seal's re-signing
    # of upstream requests is verified for the rest of the session.
    stranger = harness.s3_client(server.endpoint, "AKIDNOTINMOTO0000000", "not-a-secret")
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        stranger.list_buckets()
    assert raised.value.response["Error"]["Code"] == "InvalidAccessKeyId", (
        f"moto at {server.endpoint} does not check signatures: {raised.value.response['Error']}"
    )

    yield server
    server.stop()


@pytest.fixture(scope="session")
def upstream_credentials(moto) -> harness.UpstreamCredentials:
    return moto.credentials


@pytest.fixture(scope="session")
def upstream(moto, upstream_credentials) -> harness.Upstream:
    """boto3 access to moto with s3seal's upstream credentials."""
    return harness.Upstream(moto.endpoint, upstream_credentials)


@pytest.fixture(scope="session")
def stack(tmp_path_factory, moto, upstream_credentials) -> Stack:
    workdir = tmp_path_factory.mktemp("s3seal")
    binary = harness.s3seal_binary()

    cert, key = harness.generate_certificate(workdir)

    secret = secrets.token_urlsafe(30)
    secret_file = workdir / "client-secret"
    secret_file.write_text(secret)
    secret_file.chmod(0o600)

    config = workdir / "s3seal.toml"
    ready_file = workdir / "ready.json"
    harness.write_config(
        config,
        upstream_endpoint=moto.endpoint,
        keyring=workdir / "keyring.json",
        client_secret_file=secret_file,
        cert=cert,
        key=key,
        ready_file=ready_file,
    )

    # s3seal reads S3SEAL_* variables as configuration overrides, so none are
    # inherited from the calling shell (S3SEAL_TEST_MOTO_ENDPOINT among them).
    env = {name: value for name, value in harness.client_environment().items() if not name.startswith("S3SEAL_")}
    env.update(
        {
            "RUST_LOG": "info",
            # tracing-subscriber writes no ANSI colour codes when NO_COLOR is set.
            "NO_COLOR": "1",
            "S3SEAL_UPSTREAM_ACCESS_KEY_ID": upstream_credentials.access_key_id,
            "S3SEAL_UPSTREAM_SECRET_ACCESS_KEY": upstream_credentials.secret_access_key,
        }
    )
    created = harness.run(
        [str(binary), "keys", "create", harness.KEK_NAME, "--config", str(config)],
        env=env,
        timeout=60,
        cwd=workdir,
    )
    assert created.returncode == 0, harness.describe(created)

    log_path = workdir / "s3seal.log"
    server = harness.S3SealServer.start(binary, config, ready_file, log_path, env)
    _LOGS["s3seal log"] = log_path
    yield Stack(
        endpoint=server.endpoint,
        tls_endpoint=server.tls_endpoint,
        cert=cert,
        access_key_id=harness.CLIENT_ACCESS_KEY_ID,
        secret_access_key=secret,
        moto_endpoint=moto.endpoint,
        upstream_credentials=upstream_credentials,
        workdir=workdir,
    )
    server.stop()


@pytest.fixture(scope="session")
def s3_tls(stack):
    """boto3 with default checksum settings over TLS.

    botocore 1.43 then sends PutObject bodies aws-chunked with a trailing
    CRC checksum (x-amz-content-sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER).
    """
    return harness.s3_client(
        stack.tls_endpoint, stack.access_key_id, stack.secret_access_key, verify=str(stack.cert)
    )


@pytest.fixture(scope="session")
def s3_http(stack):
    """boto3 over plain HTTP that sends and checks checksums only where S3 requires them."""
    return harness.s3_client(
        stack.endpoint,
        stack.access_key_id,
        stack.secret_access_key,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )


@pytest.fixture
def presigner(stack):
    # boto3 1.43 presigns S3 URLs with SigV2 query parameters unless the
    # client is configured for s3v4. s3seal verifies SigV4 only.
    return harness.s3_client(
        stack.endpoint, stack.access_key_id, stack.secret_access_key, signature_version="s3v4"
    )


@pytest.fixture
def make_bucket(s3_http):
    """Return a function that creates a bucket with a unique name through s3seal."""

    def create(prefix: str = "enc") -> str:
        name = harness.unique_name(prefix)
        s3_http.create_bucket(Bucket=name)
        return name

    return create


@pytest.fixture
def enc_bucket(make_bucket) -> str:
    """A new bucket that s3seal encrypts."""
    return make_bucket("enc")


@pytest.fixture
def plain_bucket(make_bucket) -> str:
    """A new bucket that matches the passthrough rule `plain-*`."""
    return make_bucket("plain")


@dataclass(frozen=True)
class LargeFile:
    path: Path
    data: bytes


@pytest.fixture(scope="session")
def large_file(tmp_path_factory) -> LargeFile:
    """A file of LARGE_FILE_SIZE random bytes, written once per session, and its content."""
    data = os.urandom(LARGE_FILE_SIZE)
    path = tmp_path_factory.mktemp("large") / "large.bin"
    path.write_bytes(data)
    return LargeFile(path, data)


@pytest.fixture(scope="session")
def aws_env(stack):
    """Environment for the aws cli (v1) with a config file in the session directory.

    The config keeps the default transfer settings: files of 8 MiB and more
    go up in 8 MiB parts and come down in parallel 8 MiB ranged GETs.
    """
    harness.require_binary("aws", "pip install awscli")
    config = stack.workdir / "aws-config"
    config.write_text(
        "[default]\n"
        f"region = {harness.REGION}\n"
        "s3 =\n"
        "    addressing_style = path\n"
    )
    return harness.client_environment(
        {
            "AWS_ACCESS_KEY_ID": stack.access_key_id,
            "AWS_SECRET_ACCESS_KEY": stack.secret_access_key,
            "AWS_DEFAULT_REGION": harness.REGION,
            "AWS_CONFIG_FILE": str(config),
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_MAX_ATTEMPTS": "1",
            "AWS_RETRY_MODE": "standard",
        }
    )


@pytest.fixture(scope="session")
def aws(stack, aws_env):
    """Return a function that runs `aws --endpoint-url S3SEAL ARGS...`."""

    def run_aws(*args: str, timeout: float = 120):
        return harness.run(["aws", "--endpoint-url", stack.endpoint, *args], env=aws_env, timeout=timeout)

    return run_aws


@pytest.fixture(scope="session")
def rclone_config(stack) -> Path:
    harness.require_binary("rclone", "apt-get install rclone")
    config = stack.workdir / "rclone.conf"
    config.write_text(
        "[s3seal]\n"
        "type = s3\n"
        "provider = Other\n"
        f"endpoint = {stack.endpoint}\n"
        f"access_key_id = {stack.access_key_id}\n"
        f"secret_access_key = {stack.secret_access_key}\n"
        f"region = {harness.REGION}\n"
        "force_path_style = true\n"
    )
    return config


@pytest.fixture(scope="session")
def rclone(rclone_config):
    """Return a function that runs rclone with the [s3seal] remote, default transfer settings and no retries.

    rclone 1.60 uploads files from 200 MiB (--s3-upload-cutoff) in 5 MiB parts
    (--s3-chunk-size) and downloads files from 250 MiB (--multi-thread-cutoff)
    in 4 parallel ranged streams.
    """

    def run_rclone(*args: str, timeout: float = 120):
        return harness.run(
            [
                "rclone", "--config", str(rclone_config),
                "--retries", "1", "--low-level-retries", "1",
                *args,
            ],
            env=harness.client_environment(),
            timeout=timeout,
        )

    return run_rclone


@pytest.fixture(scope="session")
def s3cmd(stack):
    """Return a function that runs s3cmd with a config for s3seal's plain HTTP listener.

    The config keeps s3cmd's default multipart settings: files above 15 MiB
    go up in 15 MiB parts.
    """
    harness.require_binary("s3cmd", "apt-get install s3cmd")
    host = stack.endpoint.removeprefix("http://")
    config = stack.workdir / "s3cmd.cfg"
    config.write_text(
        "[default]\n"
        f"access_key = {stack.access_key_id}\n"
        f"secret_key = {stack.secret_access_key}\n"
        f"host_base = {host}\n"
        f"host_bucket = {host}\n"
        f"bucket_location = {harness.REGION}\n"
        "use_https = False\n"
        "signature_v2 = False\n"
        "progress_meter = False\n"
    )
    env = harness.client_environment({"HOME": str(stack.workdir)})

    def run_s3cmd(*args: str, timeout: float = 120):
        # NOTE: s3cmd 2.3.0 retries 5xx responses up to 5 times with growing
        # waits (3 s to 15 s) and has no option to turn that off, so a failing
        # request can take about 45 s before the command exits.
        return harness.run(["s3cmd", "--config", str(config), *args], env=env, timeout=timeout)

    return run_s3cmd


# ---------------------------------------------------------------------------
# On failure, attach the s3seal and moto log lines written during the test.


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    item.stash[_LOG_OFFSETS] = {
        title: path.stat().st_size if path.exists() else 0 for title, path in _LOGS.items()
    }


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed and call.when in ("setup", "call"):
        offsets = item.stash.get(_LOG_OFFSETS, {})
        for title, path in _LOGS.items():
            if not path.exists():
                continue
            with open(path, "rb") as log:
                log.seek(offsets.get(title, 0))
                text = ANSI_ESCAPE.sub("", log.read().decode(errors="replace"))
            lines = text.splitlines()
            # The first lines usually contain the error (a panic message comes
            # before its backtrace), the last ones the most recent requests.
            if len(lines) > 100:
                lines = lines[:40] + [f"... {len(lines) - 100} lines left out ..."] + lines[-60:]
            report.sections.append((f"{title} during the test", "\n".join(lines)))
    return report
