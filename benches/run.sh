#!/usr/bin/env bash
# Build s3seal and the benchmark tools in release mode, then run the
# benchmark (benches/bench.py) on 127.0.0.1 only. Options are passed to
# bench.py: --quick for a short run, --store s3s-fs for s3s-fs as the
# upstream. See docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release --features bench-tools --bin s3seal --bin s3seal-bench
export S3SEAL_BENCH_COMMAND="benches/run.sh $*"
exec python3 benches/bench.py --bin-dir "$CARGO_TARGET_DIR/release" "$@"
