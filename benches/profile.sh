#!/usr/bin/env bash
# Profile one proxy under 1 KiB PutObject and GetObject at concurrency 1,
# on 127.0.0.1 only. See docs/benchmarks.md.
#
#   benches/profile.sh callgrind|perf [s3seal|passthrough|hop] [OPS] [OUTDIR]
#
# callgrind counts the proxy's instructions with valgrind (OPS defaults to
# 1000 of each operation) and writes the counts to callgrind.out.1. perf
# samples it at 3 kHz with DWARF call stacks (OPS defaults to 20000). The
# load driver opens its connection with up to 1000 GetObject requests
# before the OPS PutObject and OPS GetObject requests, and all of them are
# profiled. s3seal and passthrough profile the s3seal
# binary on an encrypting or a passthrough bucket, hop the reference hop.
# The release binaries must exist: run benches/run.sh once, or
# `cargo build --release --features bench-tools --bin s3seal --bin s3seal-bench`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

tool=${1:?usage: benches/profile.sh callgrind|perf [s3seal|passthrough|hop] [OPS] [OUTDIR]}
target=${2:-s3seal}
case $tool in
    callgrind) ops=${3:-1000} ;;
    perf) ops=${3:-20000} ;;
    *) echo "invalid tool $tool: expected callgrind or perf" >&2; exit 2 ;;
esac
case $target in
    s3seal | passthrough | hop) ;;
    *) echo "invalid target $target: expected s3seal, passthrough or hop" >&2; exit 2 ;;
esac
out=$(realpath -m "${4:-target/profile/$tool-$target}")
bin=${CARGO_TARGET_DIR:-$PWD/target}/release
mkdir -p "$out"

work=$(mktemp -d /dev/shm/s3seal-profile-XXXX)
pids=()
cleanup() {
    kill "${pids[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

export AWS_EC2_METADATA_DISABLED=true NO_PROXY=127.0.0.1
upstream_secret=$(openssl rand -hex 20)
client_secret=$(openssl rand -hex 20)
export S3SEAL_BENCH_UPSTREAM_SECRET=$upstream_secret

wait_for() {
    while [ ! -s "$1" ]; do sleep 0.1; done
}

json_field() {
    python3 -c "import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"
}

"$bin/s3seal-bench" upstream --ready-file "$work/upstream.json" --store memory \
    --max-seconds 900 >"$work/upstream.log" 2>&1 &
pids+=($!)
wait_for "$work/upstream.json"
upstream=$(json_field "$work/upstream.json" endpoint)

python3 - "$work" "$upstream" <<'PY'
import sys
from pathlib import Path
sys.path.insert(0, "benches")
import bench
work = Path(sys.argv[1])
(work / "s3seal.toml").write_text(bench.s3seal_config(work, sys.argv[2], work))
(work / "keys").write_text(f"{bench.UPSTREAM_ACCESS_KEY} {bench.CLIENT_ACCESS_KEY}\n")
PY
read -r upstream_key client_key <"$work/keys"
printf '%s\n%s\n' "$upstream_key" "$upstream_secret" >"$work/upstream-credentials"
printf '%s\n' "$client_secret" >"$work/client-secret"
chmod 600 "$work/upstream-credentials" "$work/client-secret"

prefix=()
if [ "$tool" = callgrind ]; then
    prefix=(valgrind --tool=callgrind --instr-atstart=no "--callgrind-out-file=$out/callgrind.out")
fi
if [ "$target" = hop ]; then
    "${prefix[@]}" "$bin/s3seal-bench" hop --upstream "$upstream" \
        --ready-file "$work/hop.json" --max-seconds 900 >"$work/proxy.log" 2>&1 &
    proxy=$!
    wait_for "$work/hop.json"
    endpoint=$(json_field "$work/hop.json" endpoint)
    bucket=bench-hop access_key=$upstream_key secret=$upstream_secret
else
    "${prefix[@]}" "$bin/s3seal" serve --config "$work/s3seal.toml" >"$work/proxy.log" 2>&1 &
    proxy=$!
    wait_for "$work/s3seal-ready.json"
    endpoint=http://$(json_field "$work/s3seal-ready.json" listen)
    bucket=bench-s3seal access_key=$client_key secret=$client_secret
    [ "$target" = passthrough ] && bucket=passthrough-bench
fi
pids+=("$proxy")

python3 - "$work/targets.json" "$endpoint" "$bucket" "$access_key" "$secret" <<'PY'
import json, sys
path, endpoint, bucket, key, secret = sys.argv[1:]
target = {"name": "profiled", "endpoint": endpoint, "bucket": bucket,
          "access_key_id": key, "secret_access_key": secret}
with open(path, "w") as file:
    json.dump([target], file)
PY

load() {
    "$bin/s3seal-bench" load --targets "$work/targets.json" --out "$1" --large-mib 1 \
        --large-runs 0 --small-runs 1 --small-seconds 600 --small-max-ops "$2" \
        --small-concurrency 1 >/dev/null
}

# The warm-up opens the connections and is not profiled.
load "$work/warm-up.json" 50
if [ "$tool" = callgrind ]; then
    callgrind_control -i on "$proxy" >/dev/null 2>&1
    load "$out/load.json" "$ops"
    callgrind_control -i off "$proxy" >/dev/null 2>&1
    callgrind_control -d "$proxy" >/dev/null 2>&1
    sleep 1
else
    perf record -F 2999 --call-graph dwarf,16384 -o "$out/perf.data" -p "$proxy" 2>/dev/null &
    recorder=$!
    sleep 0.5
    load "$out/load.json" "$ops"
    kill -INT "$recorder"
    wait "$recorder" || true
fi
cp "$work/proxy.log" "$out/proxy.log"
echo "profile of $target written to $out"
