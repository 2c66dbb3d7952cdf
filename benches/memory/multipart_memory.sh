#!/usr/bin/env bash
# Measures s3seal's peak resident memory for a 1 GiB multipart upload and
# download with 8 requests in flight, and the bytes s3seal reads from its
# upstream for a 1 MiB range from the middle of that object.
#
# Two release s3seal processes run on 127.0.0.1: B is the upstream (its
# embedded store, passthrough), A is the encrypting proxy under test. The
# bytes that A reads from its upstream are the bytes B sends to its
# clients, which B's metrics endpoint counts.
#
# Usage: bash benches/memory/multipart_memory.sh   (after cargo build --release)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
bin="$PWD/target/release/s3seal"
[ -x "$bin" ] || { echo "build first: cargo build --release" >&2; exit 1; }

work="$(mktemp -d /tmp/s3seal-memory.XXXXXX)"
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
port_b=18601
port_a=18602
port_metrics=18603

mkdir -p "$work/b" "$work/a"
cat >"$work/b/config.toml" <<TOML
[server]
listen = "127.0.0.1:$port_b"
[upstream]
kind = "embedded"
[embedded]
data_dir = "$work/b/store"
credentials_file = "$work/b/embedded-credentials"
[keys]
keyring_file = "$work/b/keyring.json"
create_missing = true
[audit]
file = "$work/b/audit.log"
key_file = "$work/b/audit-key"
[metrics]
listen = "127.0.0.1:$port_metrics"
[[clients]]
access_key_id = "UPSTREAMCLIENT"
secret_file = "$work/b/client-secret"
generate_secret = true
[[buckets]]
match = "*"
mode = "passthrough"
TOML
RUST_LOG=warn "$bin" serve --config "$work/b/config.toml" >"$work/b/log" 2>&1 &
for _ in $(seq 50); do [ -f "$work/b/client-secret" ] && break; sleep 0.1; done
sleep 0.5
printf 'UPSTREAMCLIENT\n%s\n' "$(cat "$work/b/client-secret")" >"$work/a/upstream-credentials"

cat >"$work/a/config.toml" <<TOML
[server]
listen = "127.0.0.1:$port_a"
[upstream]
endpoint = "http://127.0.0.1:$port_b"
credentials_file = "$work/a/upstream-credentials"
[keys]
keyring_file = "$work/a/keyring.json"
create_missing = true
[audit]
file = "$work/a/audit.log"
key_file = "$work/a/audit-key"
fsync = "never"
[[clients]]
access_key_id = "PROXYCLIENT"
secret_file = "$work/a/client-secret"
generate_secret = true
[[buckets]]
match = "*"
mode = "encrypt"
key = "bench"
TOML
RUST_LOG=warn "$bin" serve --config "$work/a/config.toml" >"$work/a/log" 2>&1 &
pid_a=$!
for _ in $(seq 50); do [ -f "$work/a/client-secret" ] && break; sleep 0.1; done
sleep 0.5

head -c 1073741824 /dev/urandom >"$work/big.bin"
AWS_EC2_METADATA_DISABLED=true python3 - "$pid_a" "$port_a" "$work" "$port_metrics" <<'PY'
import boto3, hashlib, sys, time, urllib.request
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

pid, port, work, metrics_port = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
MIB = 1024 * 1024

def status(field):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) // 1024
    return -1

def upstream_sent():
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    for line in text.splitlines():
        if line.startswith("s3seal_client_sent_bytes_total"):
            return float(line.split()[-1])
    raise SystemExit("s3seal_client_sent_bytes_total missing from the upstream's metrics")

secret = open(f"{work}/a/client-secret").read().strip()
s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", aws_access_key_id="PROXYCLIENT",
                  aws_secret_access_key=secret, region_name="us-east-1",
                  config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
s3.create_bucket(Bucket="memory")
transfer = TransferConfig(multipart_threshold=8 * MIB, multipart_chunksize=8 * MIB, max_concurrency=8)

start = time.monotonic()
s3.upload_file(f"{work}/big.bin", "memory", "big", Config=transfer)
print(f"upload 1 GiB, 8 MiB parts, 8 in flight: {time.monotonic() - start:.1f} s, peak RSS {status('VmHWM')} MiB")

start = time.monotonic()
s3.download_file("memory", "big", f"{work}/big.out", Config=transfer)
print(f"download 1 GiB, 8 ranged reads in flight: {time.monotonic() - start:.1f} s, peak RSS {status('VmHWM')} MiB")

same = hashlib.sha256(open(f"{work}/big.bin", "rb").read()).digest() == hashlib.sha256(open(f"{work}/big.out", "rb").read()).digest()
print(f"downloaded bytes equal the source: {same}")

head = s3.head_object(Bucket="memory", Key="big")
print(f"HEAD size {head['ContentLength']} (expected {1024 * MIB}), ETag {head['ETag']}")

before = upstream_sent()
first = 512 * MIB + 12345
body = s3.get_object(Bucket="memory", Key="big", Range=f"bytes={first}-{first + MIB - 1}")["Body"].read()
after = upstream_sent()
with open(f"{work}/big.bin", "rb") as f:
    f.seek(first)
    expected = f.read(MIB)
print(f"1 MiB range from the middle: {len(body)} bytes, correct {body == expected}, "
      f"the upstream sent {(after - before) / MIB:.3f} MiB to s3seal for it")
PY
