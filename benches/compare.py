#!/usr/bin/env python3
"""Compare two s3seal builds on 1 KiB PutObject and GetObject latency.

Starts the in-memory upstream, the reference hop and both builds on
127.0.0.1 and drives them in one run, so the machine's drift hits all of
them alike. Prints the median p50 and CPU per request of each target. Also
prints what each proxy adds to the direct p50, as a multiple of what the
hop adds.

    cargo build --release --features bench-tools --bin s3seal --bin s3seal-bench
    python3 benches/compare.py --bin-dir target/release OLD_S3SEAL NEW_S3SEAL
"""

import argparse
import collections
import json
import os
import secrets
import statistics
import subprocess
import tempfile
from pathlib import Path

import bench


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin-dir", required=True, type=Path,
                        help="directory with the release s3seal-bench binary")
    parser.add_argument("--runs", type=int, default=5, help="runs of 1 s per target and operation")
    parser.add_argument("--concurrency", default="1", help="comma-separated concurrency levels")
    parser.add_argument("a", type=Path, help="first s3seal binary")
    parser.add_argument("b", type=Path, help="second s3seal binary")
    return parser.parse_args()


def main():
    args = parse_args()
    bench_bin = args.bin_dir / "s3seal-bench"
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    upstream_secret = secrets.token_hex(20)
    env["S3SEAL_BENCH_UPSTREAM_SECRET"] = upstream_secret
    client_secret = secrets.token_hex(20)
    workdir = Path(tempfile.mkdtemp(prefix="s3seal-compare-", dir="/dev/shm"))
    processes = bench.Processes()
    try:
        upstream = processes.start(
            "upstream",
            [str(bench_bin), "upstream", "--ready-file", str(workdir / "upstream.json"),
             "--store", "memory", "--max-seconds", "900"],
            workdir / "upstream.log", env)
        upstream_endpoint = bench.wait_for_ready_file(workdir / "upstream.json", upstream,
                                                      "upstream")["endpoint"]
        hop = processes.start(
            "hop",
            [str(bench_bin), "hop", "--upstream", upstream_endpoint,
             "--ready-file", str(workdir / "hop.json"), "--max-seconds", "900"],
            workdir / "hop.log", env)
        hop_endpoint = bench.wait_for_ready_file(workdir / "hop.json", hop, "hop")["endpoint"]
        targets = [
            {"name": "direct", "endpoint": upstream_endpoint, "bucket": "bench-direct",
             "access_key_id": bench.UPSTREAM_ACCESS_KEY, "secret_access_key": upstream_secret},
            {"name": "hop", "endpoint": hop_endpoint, "bucket": "bench-hop",
             "access_key_id": bench.UPSTREAM_ACCESS_KEY, "secret_access_key": upstream_secret,
             "pid": hop.pid},
        ]
        for name, binary in (("A", args.a), ("B", args.b)):
            proxy_dir = workdir / name
            proxy_dir.mkdir()
            bench.write_private(proxy_dir / "upstream-credentials",
                                f"{bench.UPSTREAM_ACCESS_KEY}\n{upstream_secret}\n")
            bench.write_private(proxy_dir / "client-secret", client_secret + "\n")
            (proxy_dir / "s3seal.toml").write_text(
                bench.s3seal_config(proxy_dir, upstream_endpoint, proxy_dir))
            proxy = processes.start(name, [str(binary), "serve", "--config",
                                           str(proxy_dir / "s3seal.toml")],
                                    proxy_dir / "s3seal.log", env)
            listen = bench.wait_for_ready_file(proxy_dir / "s3seal-ready.json", proxy, name)["listen"]
            targets.append({"name": name, "endpoint": f"http://{listen}",
                            "bucket": f"bench-{name.lower()}",
                            "access_key_id": bench.CLIENT_ACCESS_KEY,
                            "secret_access_key": client_secret, "pid": proxy.pid})
        (workdir / "targets.json").write_text(json.dumps(targets))
        subprocess.run(
            [str(bench_bin), "load", "--targets", str(workdir / "targets.json"),
             "--out", str(workdir / "load.json"), "--large-mib", "1", "--large-runs", "0",
             "--small-runs", str(args.runs), "--small-seconds", "1",
             "--small-concurrency", args.concurrency],
            check=True, env=env, timeout=1800, stdout=subprocess.DEVNULL)
        load = json.loads((workdir / "load.json").read_text())
    finally:
        processes.stop_all()
        subprocess.run(["rm", "-rf", str(workdir)], check=False)

    runs = collections.defaultdict(list)
    for row in load["small"]:
        runs[(row["target"], row["op"], row["concurrency"])].append(row)

    def p50_us(target, op, concurrency):
        return statistics.median(r["p50_ms"] for r in runs[(target, op, concurrency)]) * 1000

    print(f"{'target':8} {'op':4} {'c':>3} {'p50 µs':>8} {'CPU µs/op':>10}")
    for (target, op, concurrency), rows in sorted(runs.items()):
        cpu = [r["cpu_us_per_op"] for r in rows if r["cpu_us_per_op"]]
        cpu_text = f"{statistics.median(cpu):10.1f}" if cpu else f"{'':>10}"
        print(f"{target:8} {op:4} {concurrency:3} {p50_us(target, op, concurrency):8.1f} {cpu_text}")
    for op in ("put", "get"):
        for concurrency in sorted({key[2] for key in runs}):
            direct = p50_us("direct", op, concurrency)
            hop_added = p50_us("hop", op, concurrency) - direct
            line = f"{op} c={concurrency}: hop adds {hop_added:.1f} µs"
            for name in ("A", "B"):
                added = p50_us(name, op, concurrency) - direct
                line += f", {name} adds {added:.1f} µs ({added / hop_added:.2f} x the hop)"
            print(line)


if __name__ == "__main__":
    main()
