#!/usr/bin/env bash
# Measures s3seal's peak resident memory for a 1 GiB multipart upload and
# download with 8 requests in flight, and the bytes s3seal reads from its
# upstream for a 1 MiB range from the middle of that object.
#
# The release s3seal under test encrypts on its way to the benchmark's
# in-memory upstream (`s3seal-bench upstream`), whose count of GetObject
# body bytes served gives the bytes that s3seal reads for the range.
#
# Usage: bash benches/memory/multipart_memory.sh   (S3SEAL_BIN names another s3seal binary)
#   (after cargo build --release --features bench-tools)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
bin="${S3SEAL_BIN:-$PWD/target/release/s3seal}"
bench="$PWD/target/release/s3seal-bench"
for program in "$bin" "$bench"; do
    [ -x "$program" ] || { echo "build first: cargo build --release --features bench-tools" >&2; exit 1; }
done

work="$(mktemp -d /tmp/s3seal-memory.XXXXXX)"
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
port_a=18602

mkdir -p "$work/a"
S3SEAL_BENCH_UPSTREAM_SECRET="$(openssl rand -hex 20)"
export S3SEAL_BENCH_UPSTREAM_SECRET
"$bench" upstream --ready-file "$work/upstream.json" --store memory --max-seconds 900 \
    >"$work/upstream.log" 2>&1 &
for _ in $(seq 100); do [ -s "$work/upstream.json" ] && break; sleep 0.1; done
upstream=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["endpoint"])' "$work/upstream.json")
printf 'BENCHUPSTREAM\n%s\n' "$S3SEAL_BENCH_UPSTREAM_SECRET" >"$work/a/upstream-credentials"
chmod 600 "$work/a/upstream-credentials"

cat >"$work/a/config.toml" <<TOML
[server]
listen = "127.0.0.1:$port_a"
[upstream]
endpoint = "$upstream"
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
AWS_EC2_METADATA_DISABLED=true python3 - "$pid_a" "$port_a" "$work" "$upstream" <<'PY'
import boto3, hashlib, sys, time, urllib.request
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

pid, port, work, upstream = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
MIB = 1024 * 1024

def status(field):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) // 1024
    return -1

def upstream_sent():
    return int(urllib.request.urlopen(f"{upstream}/_bench/body-bytes-sent", timeout=5).read())

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
