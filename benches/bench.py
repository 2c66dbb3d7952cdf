#!/usr/bin/env python3
"""Run the s3seal benchmark and report it.

Starts the upstream S3 server, the reference hop and s3seal on 127.0.0.1,
runs the load driver against the three, times rclone crypt against the same
upstream, then prints the tables in Markdown and writes a plot (SVG).
benches/run.sh builds the programs and calls this script; docs/benchmarks.md
describes the setup and the results.
"""

import argparse
import json
import os
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import report  # benches/report.py, found because Python puts this script's folder on sys.path

CLIENT_ACCESS_KEY = "BENCHCLIENT"
UPSTREAM_ACCESS_KEY = "BENCHUPSTREAM"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin-dir", required=True, type=Path,
                        help="directory with the release s3seal and s3seal-bench binaries")
    parser.add_argument("--quick", action="store_true",
                        help="one run of the 1 GiB figures and two short runs of the 1 KiB figures")
    parser.add_argument("--store", choices=["memory", "s3s-fs"], default="memory",
                        help="upstream: the in-memory store or s3s-fs on tmpfs (default: memory)")
    parser.add_argument("--large-mib", type=int, default=1024,
                        help="size of the large objects and of the rclone file, in MiB")
    parser.add_argument("--rclone-runs", type=int, default=None,
                        help="runs of the rclone upload and download (default 3, 1 with --quick)")
    target = Path(os.environ.get("CARGO_TARGET_DIR", "target"))
    parser.add_argument("--svg", type=Path, default=None,
                        help="where to write the plot (default: docs/benchmarks.svg, or "
                             "bench/benchmarks.svg in the cargo target directory with --quick, "
                             "so that a quick run leaves the recorded plot alone)")
    parser.add_argument("--results", type=Path, default=target / "bench" / "results.json",
                        help="where to write the raw results as JSON (default: bench/results.json "
                             "in the cargo target directory)")
    parser.add_argument("--workdir-parent", type=Path, default=Path("/dev/shm"),
                        help="parent of the temporary directory for stores and files (tmpfs)")
    parser.add_argument("--audit-dir", type=Path, default=None,
                        help="directory for s3seal's audit log, which is flushed after every "
                             "key operation (default: the temporary directory on tmpfs)")
    args = parser.parse_args()
    if args.svg is None:
        args.svg = target / "bench" / "benchmarks.svg" if args.quick else Path("docs/benchmarks.svg")
    return args


class Processes:
    """Servers started by this script, stopped by process id at exit."""

    def __init__(self):
        self.started = []

    def start(self, name, argv, log_path, env):
        log = open(log_path, "wb")
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        self.started.append((name, process, log))
        return process

    def stop_all(self):
        for name, process, log in reversed(self.started):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    print(f"{name} (pid {process.pid}) ignored SIGTERM; killing it", file=sys.stderr)
                    process.kill()
                    process.wait(timeout=15)
            log.close()


def wait_for_ready_file(path, process, name, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{name} exited with status {process.returncode} before it was ready")
        if path.exists():
            return json.loads(path.read_text())
        time.sleep(0.05)
    raise SystemExit(f"{name} did not write {path} within {timeout:.0f} s")


def write_private(path, text):
    path.write_text(text)
    path.chmod(0o600)


def s3seal_config(workdir, upstream_endpoint, audit_dir):
    return f"""[server]
listen = "127.0.0.1:0"
region = "us-east-1"
ready_file = "{workdir}/s3seal-ready.json"

[upstream]
endpoint = "{upstream_endpoint}"
region = "us-east-1"
credentials_file = "{workdir}/upstream-credentials"

[keys]
keyring_file = "{workdir}/keyring.json"
create_missing = true

[audit]
file = "{audit_dir}/audit.log"
key_file = "{workdir}/audit-key"

[[clients]]
access_key_id = "{CLIENT_ACCESS_KEY}"
secret_file = "{workdir}/client-secret"

[[buckets]]
match = "bench-*"
mode = "encrypt"
key = "bench"

[[buckets]]
match = "passthrough-*"
mode = "passthrough"
"""


def run_rclone(args, workdir, upstream_endpoint, upstream_secret, env):
    """Time rclone crypt uploading and downloading one file to the upstream."""
    runs = args.rclone_runs
    if runs is None:
        runs = 1 if args.quick else 3
    size = args.large_mib << 20
    source = workdir / "rclone-source.bin"
    with open(source, "wb") as file:
        for _ in range(args.large_mib):
            file.write(os.urandom(1 << 20))

    obscured = subprocess.run(["rclone", "obscure", secrets.token_hex(16)], check=True,
                              capture_output=True, text=True, env=env).stdout.strip()
    config = workdir / "rclone.conf"
    write_private(config, f"""[store]
type = s3
provider = Other
endpoint = {upstream_endpoint}
access_key_id = {UPSTREAM_ACCESS_KEY}
secret_access_key = {upstream_secret}
region = us-east-1
force_path_style = true
no_check_bucket = true

[sealed]
type = crypt
remote = store:bench-rclone/crypt
password = {obscured}
""")
    base = ["rclone", "--config", str(config), "--retries", "1", "--low-level-retries", "1",
            "--contimeout", "10s", "--timeout", "120s"]
    subprocess.run(base + ["mkdir", "store:bench-rclone"], check=True, env=env, timeout=60)

    version = subprocess.run(["rclone", "version"], capture_output=True, text=True,
                             env=env).stdout.splitlines()[0]
    results = []
    download = workdir / "rclone-download.bin"
    for run in range(runs):
        for op, argv in [("upload", ["copyto", str(source), "sealed:big.bin"]),
                         ("download", ["copyto", "sealed:big.bin", str(download)])]:
            # rclone skips a copy whose target already matches, so every
            # run starts without one.
            if op == "upload":
                subprocess.run(base + ["deletefile", "sealed:big.bin"], env=env, timeout=60,
                               stderr=subprocess.DEVNULL)
            elif download.exists():
                download.unlink()
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.monotonic()
            subprocess.run(base + argv, check=True, env=env, timeout=600)
            seconds = time.monotonic() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            record = {"run": run, "op": op, "bytes": size, "seconds": seconds,
                      "gb_per_s": size / 1e9 / seconds, "cpu_seconds_per_gb": cpu / (size / 1e9)}
            print(json.dumps(record), file=sys.stderr)
            results.append(record)
        if run == 0:
            if download.stat().st_size != size or not same_file(source, download):
                raise SystemExit("rclone crypt downloaded a file that differs from the upload")
    return {"version": version, "runs": results}


def same_file(a, b):
    with open(a, "rb") as first, open(b, "rb") as second:
        while True:
            block_a = first.read(1 << 22)
            block_b = second.read(1 << 22)
            if block_a != block_b:
                return False
            if not block_a:
                return True


def set_process_affinity(pid, cpus):
    """Sets the CPUs of every thread of process `pid`."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            os.sched_setaffinity(int(task.name), cpus)
        except ProcessLookupError:
            pass


def run_on_one_cpu(args, bench, workdir, processes, env, clk_tck):
    """Drive the 1 KiB load at concurrency 1 again with the upstream, both
    proxies and the load driver on one CPU.

    With the processes spread over CPUs, each request waits for wake-ups
    across CPUs. Their cost depends on where the scheduler put each process
    and on whether the other CPU was idle, and it changes the added latency
    from run to run by more than a proxy's own work. On one CPU a wake-up
    is a switch between processes, so the added latency is the CPU time
    that each proxy spends on the request."""
    if args.quick:
        return None
    allowed = os.sched_getaffinity(0)
    one_cpu = {min(allowed)}
    for _, process, _ in processes.started:
        set_process_affinity(process.pid, one_cpu)
    try:
        out = workdir / "load-one-cpu.json"
        argv = [str(bench), "load", "--targets", str(workdir / "targets.json"), "--out", str(out),
                "--clk-tck", str(clk_tck), "--large-mib", "1", "--large-runs", "0",
                "--small-concurrency", "1"]
        subprocess.run(argv, check=True, env=env, timeout=900,
                       preexec_fn=lambda: os.sched_setaffinity(0, one_cpu))
        return json.loads(out.read_text())
    finally:
        for _, process, _ in processes.started:
            set_process_affinity(process.pid, allowed)


def git_revision():
    """The checked-out commit, with "+changes" when the work tree differs, or
    the value of S3SEAL_BENCH_REVISION for binaries built elsewhere."""
    if os.environ.get("S3SEAL_BENCH_REVISION"):
        return os.environ["S3SEAL_BENCH_REVISION"]
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+changes" if dirty else "")


def machine_info():
    model = "unknown"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as meminfo:
        total_kib = int(meminfo.readline().split()[1])
    return {"nproc": os.cpu_count(), "cpu_model": model,
            "memory_gib": round(total_kib / (1 << 20), 1),
            "kernel": os.uname().release}


def main():
    args = parse_args()
    bench = args.bin_dir / "s3seal-bench"
    s3seal = args.bin_dir / "s3seal"
    for binary in (bench, s3seal):
        if not binary.is_file():
            raise SystemExit(f"{binary} is missing; build it first (benches/run.sh does)")
    if shutil.which("rclone") is None:
        raise SystemExit("rclone is not installed; the rclone crypt figures need it (apt-get install rclone)")

    # Like tests/clients/harness.py: no AWS_* variable (a profile, endpoint
    # or CA bundle) and no proxy reaches the programs started here.
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("AWS_")
           and name.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    upstream_secret = secrets.token_hex(20)
    env["S3SEAL_BENCH_UPSTREAM_SECRET"] = upstream_secret
    client_secret = secrets.token_hex(20)
    clk_tck = os.sysconf("SC_CLK_TCK")

    workdir = Path(tempfile.mkdtemp(prefix="s3seal-bench-", dir=args.workdir_parent))
    processes = Processes()
    audit_dir = None
    load_before = os.getloadavg()
    started = time.monotonic()
    try:
        upstream_argv = [str(bench), "upstream", "--ready-file", str(workdir / "upstream-ready.json"),
                         "--store", args.store, "--max-seconds", "1800"]
        if args.store == "s3s-fs":
            upstream_argv += ["--data-dir", str(workdir / "store")]
        upstream = processes.start("upstream", upstream_argv, workdir / "upstream.log", env)
        upstream_endpoint = wait_for_ready_file(workdir / "upstream-ready.json", upstream,
                                                "upstream")["endpoint"]

        hop = processes.start("hop", [str(bench), "hop", "--upstream", upstream_endpoint,
                                      "--ready-file", str(workdir / "hop-ready.json"),
                                      "--max-seconds", "1800"],
                              workdir / "hop.log", env)
        hop_endpoint = wait_for_ready_file(workdir / "hop-ready.json", hop, "hop")["endpoint"]

        write_private(workdir / "upstream-credentials", f"{UPSTREAM_ACCESS_KEY}\n{upstream_secret}\n")
        write_private(workdir / "client-secret", client_secret + "\n")
        audit_dir = Path(tempfile.mkdtemp(prefix="s3seal-bench-audit-", dir=args.audit_dir or workdir))
        (workdir / "s3seal.toml").write_text(s3seal_config(workdir, upstream_endpoint, audit_dir))
        proxy = processes.start("s3seal", [str(s3seal), "serve", "--config", str(workdir / "s3seal.toml")],
                                workdir / "s3seal.log", env)
        s3seal_endpoint = "http://" + wait_for_ready_file(workdir / "s3seal-ready.json", proxy,
                                                          "s3seal")["listen"]

        targets = [
            {"name": "direct", "endpoint": upstream_endpoint, "bucket": "bench-direct",
             "access_key_id": UPSTREAM_ACCESS_KEY, "secret_access_key": upstream_secret},
            {"name": "hop", "endpoint": hop_endpoint, "bucket": "bench-hop",
             "access_key_id": UPSTREAM_ACCESS_KEY, "secret_access_key": upstream_secret,
             "pid": hop.pid},
            {"name": "s3seal", "endpoint": s3seal_endpoint, "bucket": "bench-s3seal",
             "access_key_id": CLIENT_ACCESS_KEY, "secret_access_key": client_secret,
             "pid": proxy.pid},
            {"name": "s3seal-passthrough", "endpoint": s3seal_endpoint,
             "bucket": "passthrough-bench", "access_key_id": CLIENT_ACCESS_KEY,
             "secret_access_key": client_secret, "pid": proxy.pid, "small_only": True},
        ]
        (workdir / "targets.json").write_text(json.dumps(targets))

        cipher = subprocess.run([str(bench), "cipher", "--rounds", "3"], check=True,
                                capture_output=True, text=True, timeout=300)
        cipher_result = json.loads(cipher.stdout.strip().splitlines()[-1])

        load_argv = [str(bench), "load", "--targets", str(workdir / "targets.json"),
                     "--out", str(workdir / "load.json"), "--clk-tck", str(clk_tck),
                     "--large-mib", str(args.large_mib)]
        if args.quick:
            load_argv += ["--large-runs", "1", "--small-runs", "2", "--small-seconds", "0.75"]
        if args.store == "s3s-fs":
            load_argv += ["--delete-after-put"]
        subprocess.run(load_argv, check=True, env=env, timeout=1500)
        load = json.loads((workdir / "load.json").read_text())
        load_one_cpu = run_on_one_cpu(args, bench, workdir, processes, env, clk_tck)

        rclone = run_rclone(args, workdir, upstream_endpoint, upstream_secret, env)
    finally:
        processes.stop_all()
        if args.audit_dir is not None and audit_dir is not None:
            shutil.rmtree(audit_dir, ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)

    results = {
        "machine": machine_info(),
        "command": os.environ.get("S3SEAL_BENCH_COMMAND", " ".join(sys.argv)),
        "revision": git_revision(),
        "load_average": {"before": load_before[0], "after": os.getloadavg()[0]},
        "store": args.store,
        "audit_dir": str(args.audit_dir) if args.audit_dir else "tmpfs",
        "quick": args.quick,
        "cipher": cipher_result,
        "load": load,
        "load_one_cpu": load_one_cpu,
        "rclone": rclone,
        "seconds": time.monotonic() - started,
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=2))

    summary = report.summarize(results)
    print(report.markdown(results, summary))
    args.svg.parent.mkdir(parents=True, exist_ok=True)
    args.svg.write_text(report.svg(summary))
    print(f"raw results: {args.results}; plot: {args.svg}; "
          f"total {results['seconds']:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
