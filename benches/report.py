#!/usr/bin/env python3
"""Summarize s3seal benchmark results: Markdown tables and an SVG plot.

bench.py calls this after a run. To render saved results again:
    python3 benches/report.py target/bench/results.json [--svg docs/benchmarks.svg]
"""

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

TARGETS = ["direct", "hop", "s3seal"]
# s3seal's passthrough bucket, measured with 1 KiB objects only: the cost of
# signature checks, re-signing and logging without keys or encryption.
PASSTHROUGH = "s3seal-passthrough"
LARGE_ROWS = [("put", 1), ("put", 8), ("get", 1), ("get", 8)]
COLORS = {"direct": "#8c8c8c", "hop": "#3b75af", "s3seal": "#ef8636", "rclone crypt": "#519e3e"}


def stats(values):
    """Median, minimum, maximum and count of the values that are not None."""
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values)}


def summarize(results):
    load = results["load"]
    summary = {"large": {}, "small": {}, "rclone": {}, "peak_rss_mib": {},
               "large_object_bytes": load["large_object_bytes"]}

    for op, streams in LARGE_ROWS:
        rows = [r for r in load["large"] if r["op"] == op and r["streams"] == streams]
        by_run = {}
        for r in rows:
            by_run.setdefault(r["run"], {})[r["target"]] = r
        entry = {}
        for target in TARGETS:
            entry[target] = {
                "gb_per_s": stats([r["gb_per_s"] for r in rows if r["target"] == target]),
                "cpu_s_per_gb": stats([r["cpu_seconds_per_gb"] for r in rows
                                       if r["target"] == target]),
            }
        runs = [run for run in by_run.values() if all(t in run for t in TARGETS)]
        entry["s3seal_vs_hop"] = stats([run["s3seal"]["gb_per_s"] / run["hop"]["gb_per_s"]
                                        for run in runs])
        entry["hop_vs_direct"] = stats([run["hop"]["gb_per_s"] / run["direct"]["gb_per_s"]
                                        for run in runs])
        entry["cpu_s3seal_vs_hop"] = stats([
            run["s3seal"]["cpu_seconds_per_gb"] / run["hop"]["cpu_seconds_per_gb"]
            for run in runs if run["hop"]["cpu_seconds_per_gb"]])
        summary["large"][f"{op}-{streams}"] = entry

    summary["concurrencies"], summary["small"] = summarize_small(load["small"])
    one_cpu = results.get("load_one_cpu")
    if one_cpu:
        summary["one_cpu"] = summarize_small(one_cpu["small"])[1]

    for op in ["upload", "download"]:
        mine = [r for r in results["rclone"]["runs"] if r["op"] == op]
        summary["rclone"][op] = {
            "gb_per_s": stats([r["gb_per_s"] for r in mine]),
            "seconds": stats([r["seconds"] for r in mine]),
            "cpu_s_per_gb": stats([r["cpu_seconds_per_gb"] for r in mine]),
        }
    for target, kib in load["peak_rss_kib"].items():
        summary["peak_rss_mib"][target] = kib / 1024
    summary["targets"] = evaluate(summary)
    return summary


def summarize_small(small_rows):
    """Summarize the 1 KiB rows per operation and concurrency. Returns the
    concurrencies and a dict keyed by `op-concurrency`."""
    concurrencies = sorted({r["concurrency"] for r in small_rows})
    entries = {}
    for op in ["put", "get"]:
        for concurrency in concurrencies:
            rows = [r for r in small_rows if r["op"] == op and r["concurrency"] == concurrency]
            by_run = {}
            for r in rows:
                by_run.setdefault(r["run"], {})[r["target"]] = r
            entry = {}
            for target in TARGETS:
                mine = [r for r in rows if r["target"] == target]
                entry[target] = {
                    "ops_per_s": stats([r["ops_per_s"] for r in mine]),
                    "p50_ms": stats([r["p50_ms"] for r in mine]),
                    "p99_ms": stats([r["p99_ms"] for r in mine]),
                    "cpu_us_per_op": stats([r["cpu_us_per_op"] for r in mine]),
                }
            runs = [run for run in by_run.values() if all(t in run for t in TARGETS)]
            hop_added = [run["hop"]["p50_ms"] - run["direct"]["p50_ms"] for run in runs]
            s3seal_added = [run["s3seal"]["p50_ms"] - run["direct"]["p50_ms"] for run in runs]
            entry["hop_added_p50_ms"] = stats(hop_added)
            entry["s3seal_added_p50_ms"] = stats(s3seal_added)
            entry["added_ratio"] = stats([s / h for s, h in zip(s3seal_added, hop_added) if h > 0])
            passthrough = [run for run in runs if PASSTHROUGH in run]
            if passthrough:
                mine = [run[PASSTHROUGH] for run in passthrough]
                added = [run[PASSTHROUGH]["p50_ms"] - run["direct"]["p50_ms"] for run in passthrough]
                hop = [run["hop"]["p50_ms"] - run["direct"]["p50_ms"] for run in passthrough]
                entry[PASSTHROUGH] = {
                    "p50_ms": stats([r["p50_ms"] for r in mine]),
                    "cpu_us_per_op": stats([r["cpu_us_per_op"] for r in mine]),
                    "added_p50_ms": stats(added),
                    "added_ratio": stats([a / h for a, h in zip(added, hop) if h > 0]),
                }
            entries[f"{op}-{concurrency}"] = entry
    return concurrencies, entries


def evaluate(summary):
    """Check the targets of docs/benchmarks.md and return (description, met, detail) rows."""
    checks = []
    for op, streams in LARGE_ROWS:
        entry = summary["large"][f"{op}-{streams}"]
        ratio = entry["s3seal_vs_hop"]
        cpu = entry["cpu_s3seal_vs_hop"]
        label = f"{op.upper()} {summary['large_object_bytes'] >> 20} MiB x{streams}"
        if ratio:
            checks.append((f"{label}: s3seal throughput >= 90 % of the hop's",
                           ratio["median"] >= 0.9, f"{ratio['median']:.0%}"))
        if cpu:
            checks.append((f"{label}: s3seal CPU/GB <= 1.1x the hop's",
                           cpu["median"] <= 1.1, f"{cpu['median']:.2f}x"))
    for op in ["put", "get"]:
        for concurrency in summary["concurrencies"]:
            entry = summary["small"][f"{op}-{concurrency}"]
            ratio = entry["added_ratio"]
            if ratio:
                checks.append((f"{op.upper()} 1 KiB c={concurrency}: s3seal added p50 <= 1.5x the hop's",
                               ratio["median"] <= 1.5, f"{ratio['median']:.2f}x"))
        entry = summary.get("one_cpu", {}).get(f"{op}-1")
        if entry and entry["added_ratio"]:
            ratio = entry["added_ratio"]
            checks.append((f"{op.upper()} 1 KiB c=1, all processes on one CPU: s3seal added p50 "
                           "<= 1.5x the hop's", ratio["median"] <= 1.5, f"{ratio['median']:.2f}x"))
    rss = summary["peak_rss_mib"].get("s3seal")
    if rss is not None:
        checks.append(("s3seal peak RSS <= 64 MiB", rss <= 64, f"{rss:.1f} MiB"))
    for op, rclone_op in [("put", "upload"), ("get", "download")]:
        mine = summary["large"][f"{op}-1"]["s3seal"]["gb_per_s"]
        theirs = summary["rclone"][rclone_op]["gb_per_s"]
        if mine and theirs:
            checks.append((f"s3seal {op.upper()} ahead of rclone crypt {rclone_op}",
                           mine["median"] > theirs["median"],
                           f"{mine['median']:.2f} vs {theirs['median']:.2f} GB/s"))
    return checks


def fmt(entry, digits=2, scale=1.0):
    if entry is None:
        return "–"
    median = entry["median"] * scale
    low = entry["min"] * scale
    high = entry["max"] * scale
    if entry["n"] == 1:
        return f"{median:.{digits}f}"
    return f"{median:.{digits}f} ({low:.{digits}f}–{high:.{digits}f})"


def markdown(results, summary):
    load = results["load"]
    machine = results["machine"]
    large_mib = load["large_object_bytes"] >> 20
    lines = []
    lines.append(f"Machine: {machine['nproc']} CPUs, {machine['cpu_model']}, "
                 f"{machine['memory_gib']} GiB memory, Linux {machine['kernel']}. "
                 f"Upstream: {results['store']}. s3seal {results['revision']}, audit log on "
                 f"{results['audit_dir']}. Command: `{results['command']}`. "
                 f"Run time {results['seconds']:.0f} s; 1-minute load average "
                 f"{results['load_average']['before']:.1f} before and "
                 f"{results['load_average']['after']:.1f} after.")
    lines.append("")
    lines.append("Each cell is the median with the minimum and maximum in brackets. "
                 "Ratios are computed within each run, then summarized.")
    lines.append("")

    lines.append(f"**{large_mib} MiB objects, throughput (GB/s) and proxy CPU (CPU s per GB)**")
    lines.append("")
    lines.append("| Operation | direct GB/s | hop GB/s | s3seal GB/s | s3seal / hop | "
                 "hop CPU s/GB | s3seal CPU s/GB | CPU s3seal / hop |")
    lines.append("|---|---|---|---|---|---|---|---|")
    for op, streams in LARGE_ROWS:
        entry = summary["large"][f"{op}-{streams}"]
        name = f"{op.upper()} x{streams}"
        lines.append(f"| {name} | {fmt(entry['direct']['gb_per_s'])} | "
                     f"{fmt(entry['hop']['gb_per_s'])} | {fmt(entry['s3seal']['gb_per_s'])} | "
                     f"{fmt(entry['s3seal_vs_hop'])} | {fmt(entry['hop']['cpu_s_per_gb'])} | "
                     f"{fmt(entry['s3seal']['cpu_s_per_gb'])} | {fmt(entry['cpu_s3seal_vs_hop'])} |")
    lines.append("")

    lines.append("**1 KiB objects, operations per second**")
    lines.append("")
    lines.append("| Operation | direct ops/s | hop ops/s | s3seal ops/s | "
                 "hop CPU µs/op | s3seal CPU µs/op |")
    lines.append("|---|---|---|---|---|---|")
    for op in ["put", "get"]:
        for concurrency in summary["concurrencies"]:
            entry = summary["small"][f"{op}-{concurrency}"]
            lines.append(f"| {op.upper()} c={concurrency} | {fmt(entry['direct']['ops_per_s'], 0)} | "
                         f"{fmt(entry['hop']['ops_per_s'], 0)} | {fmt(entry['s3seal']['ops_per_s'], 0)} | "
                         f"{fmt(entry['hop']['cpu_us_per_op'], 0)} | "
                         f"{fmt(entry['s3seal']['cpu_us_per_op'], 0)} |")
    lines.append("")

    lines.append("**1 KiB objects, latency in ms: p50 and p99, and what each proxy adds to "
                 "the direct p50**")
    lines.append("")
    lines.append("| Operation | direct p50 | hop p50 | s3seal p50 | direct p99 | hop p99 | "
                 "s3seal p99 | hop adds | s3seal adds | s3seal / hop added |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|")
    for op in ["put", "get"]:
        for concurrency in summary["concurrencies"]:
            entry = summary["small"][f"{op}-{concurrency}"]
            lines.append(
                f"| {op.upper()} c={concurrency} | {fmt(entry['direct']['p50_ms'], 3)} | "
                f"{fmt(entry['hop']['p50_ms'], 3)} | {fmt(entry['s3seal']['p50_ms'], 3)} | "
                f"{fmt(entry['direct']['p99_ms'], 3)} | {fmt(entry['hop']['p99_ms'], 3)} | "
                f"{fmt(entry['s3seal']['p99_ms'], 3)} | {fmt(entry['hop_added_p50_ms'], 3)} | "
                f"{fmt(entry['s3seal_added_p50_ms'], 3)} | {fmt(entry['added_ratio'])} |")
    lines.append("")

    if all(PASSTHROUGH in entry for entry in summary["small"].values()):
        lines.append("**1 KiB objects through s3seal to a passthrough bucket** (signature check, "
                     "re-signing and the log line, without keys, audit records or encryption)")
        lines.append("")
        lines.append("| Operation | p50 ms | adds to direct p50 | added / hop added | CPU µs/op |")
        lines.append("|---|---|---|---|---|")
        for op in ["put", "get"]:
            for concurrency in summary["concurrencies"]:
                entry = summary["small"][f"{op}-{concurrency}"][PASSTHROUGH]
                lines.append(
                    f"| {op.upper()} c={concurrency} | {fmt(entry['p50_ms'], 3)} | "
                    f"{fmt(entry['added_p50_ms'], 3)} | {fmt(entry['added_ratio'])} | "
                    f"{fmt(entry['cpu_us_per_op'], 0)} |")
        lines.append("")

    if "one_cpu" in summary:
        lines.append("**1 KiB objects at concurrency 1 with every process on one CPU.** There a "
                     "wake-up is a switch between processes, not a signal to another CPU. So what "
                     "a proxy adds is the CPU time it spends on a request.")
        lines.append("")
        lines.append("| Operation | direct p50 | hop p50 | s3seal p50 | hop adds | s3seal adds | "
                     "s3seal / hop added | hop CPU µs/op | s3seal CPU µs/op |")
        lines.append("|---|---|---|---|---|---|---|---|---|")
        for op in ["put", "get"]:
            entry = summary["one_cpu"].get(f"{op}-1")
            if entry is None:
                continue
            lines.append(
                f"| {op.upper()} c=1 | {fmt(entry['direct']['p50_ms'], 3)} | "
                f"{fmt(entry['hop']['p50_ms'], 3)} | {fmt(entry['s3seal']['p50_ms'], 3)} | "
                f"{fmt(entry['hop_added_p50_ms'], 3)} | {fmt(entry['s3seal_added_p50_ms'], 3)} | "
                f"{fmt(entry['added_ratio'])} | {fmt(entry['hop']['cpu_us_per_op'], 0)} | "
                f"{fmt(entry['s3seal']['cpu_us_per_op'], 0)} |")
        lines.append("")

    rclone = summary["rclone"]

    lines.append(f"**rclone crypt, one {large_mib} MiB file** ({results['rclone']['version']})")
    lines.append("")
    lines.append("| Operation | wall time s | GB/s | rclone CPU s/GB |")
    lines.append("|---|---|---|---|")
    for op in ["upload", "download"]:
        lines.append(f"| {op} | {fmt(rclone[op]['seconds'])} | {fmt(rclone[op]['gb_per_s'])} | "
                     f"{fmt(rclone[op]['cpu_s_per_gb'])} |")
    lines.append("")

    rss = ", ".join(f"{name} {mib:.1f} MiB" for name, mib in summary["peak_rss_mib"].items())
    lines.append(f"Peak resident memory (VmHWM) over the whole run: {rss}.")
    lines.append("")

    cipher = results["cipher"]
    parts = []
    for name, figures in cipher["implementations"].items():
        parts.append(f"{name} seal {figures['seal']['median']:.0f} MB/s, "
                     f"open {figures['open']['median']:.0f} MB/s")
    lines.append("Cipher, one thread, 64 KiB segments: " + "; ".join(parts) +
                 f". s3seal's bodies: encrypt {cipher['s3seal_encrypt_body']['median']:.0f} MB/s, "
                 f"decrypt {cipher['s3seal_decrypt_body']['median']:.0f} MB/s.")
    lines.append("")

    lines.append("**Targets**")
    lines.append("")
    lines.append("| Target | Met | Figure |")
    lines.append("|---|---|---|")
    for description, met, detail in summary["targets"]:
        lines.append(f"| {description} | {'yes' if met else 'no'} | {detail} |")
    return "\n".join(lines)


def svg_bar_panel(x0, y0, width, height, title, unit, groups, series, log_scale=False):
    """Grouped bars with min–max whiskers. `groups` is a list of
    (label, {series: stats}) and `series` the names in drawing order. With
    `log_scale` the axis spans whole decades."""
    parts = []
    values_present = [s for _, values in groups for s in values.values() if s]
    maximum = max((s["max"] for s in values_present), default=1.0)
    plot_x = x0 + 55
    plot_y = y0 + 30
    plot_w = width - 65
    plot_h = height - 75
    if log_scale:
        minimum = min((s["min"] for s in values_present if s["min"] > 0), default=maximum / 10)
        low = math.floor(math.log10(minimum))
        high = max(math.ceil(math.log10(maximum)), low + 1)
        ticks = [10.0 ** exponent for exponent in range(low, high + 1)]

        def height_of(value):
            value = max(value, 10.0 ** low)
            return plot_h * (math.log10(value) - low) / (high - low)
    else:
        top = nice_ceiling(maximum)
        ticks = [top * step / 4 for step in range(5)]

        def height_of(value):
            return plot_h * value / top
    parts.append(f'<text x="{x0 + width / 2}" y="{y0 + 16}" text-anchor="middle" '
                 f'font-weight="bold">{title}</text>')
    for value in ticks:
        y = plot_y + plot_h - height_of(value)
        parts.append(f'<line x1="{plot_x}" y1="{y:.1f}" x2="{plot_x + plot_w}" y2="{y:.1f}" '
                     f'stroke="#dddddd"/>')
        parts.append(f'<text x="{plot_x - 6}" y="{y + 4:.1f}" text-anchor="end">{value:g}</text>')
    parts.append(f'<text x="{x0 + 12}" y="{plot_y + plot_h / 2}" text-anchor="middle" '
                 f'transform="rotate(-90 {x0 + 12} {plot_y + plot_h / 2})">{unit}</text>')
    group_w = plot_w / len(groups)
    bar_w = group_w * 0.8 / len(series)
    for index, (label, values) in enumerate(groups):
        gx = plot_x + group_w * index + group_w * 0.1
        for position, name in enumerate(series):
            entry = values.get(name)
            if not entry:
                continue
            x = gx + bar_w * position
            bar_h = height_of(entry["median"])
            parts.append(f'<rect x="{x:.1f}" y="{plot_y + plot_h - bar_h:.1f}" width="{bar_w * 0.9:.1f}" '
                         f'height="{bar_h:.1f}" fill="{COLORS[name]}"><title>{name} {label}: '
                         f'{entry["median"]:.3g} {unit}</title></rect>')
            if entry["n"] > 1:
                cx = x + bar_w * 0.45
                y_low = plot_y + plot_h - height_of(entry["min"])
                y_high = plot_y + plot_h - height_of(entry["max"])
                parts.append(f'<line x1="{cx:.1f}" y1="{y_low:.1f}" x2="{cx:.1f}" y2="{y_high:.1f}" '
                             f'stroke="black"/>')
        parts.append(f'<text x="{gx + group_w * 0.4:.1f}" y="{plot_y + plot_h + 16}" '
                     f'text-anchor="middle">{label}</text>')
    parts.append(f'<line x1="{plot_x}" y1="{plot_y + plot_h}" x2="{plot_x + plot_w}" '
                 f'y2="{plot_y + plot_h}" stroke="black"/>')
    return parts


def nice_ceiling(value):
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for factor in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        candidate = factor * 10 ** exponent
        if candidate >= value:
            return candidate
    return 10 ** (exponent + 1)


def svg(summary):
    width, height = 1100, 420
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="12">',
             f'<rect width="{width}" height="{height}" fill="white"/>']

    large_groups = []
    for op, streams in LARGE_ROWS:
        entry = summary["large"][f"{op}-{streams}"]
        values = {target: entry[target]["gb_per_s"] for target in TARGETS}
        if streams == 1:
            rclone_op = "upload" if op == "put" else "download"
            values["rclone crypt"] = summary["rclone"][rclone_op]["gb_per_s"]
        large_groups.append((f"{op.upper()} x{streams}", values))

    large_mib = summary["large_object_bytes"] >> 20
    parts += svg_bar_panel(0, 0, 520, 380, f"{large_mib} MiB objects: throughput", "GB/s",
                           large_groups, TARGETS + ["rclone crypt"])

    small_groups = []
    for op in ["put", "get"]:
        for concurrency in summary["concurrencies"]:
            entry = summary["small"][f"{op}-{concurrency}"]
            small_groups.append((f"{op.upper()} c={concurrency}",
                                 {target: entry[target]["p50_ms"] for target in TARGETS}))
    parts += svg_bar_panel(540, 0, 560, 380, "1 KiB objects: p50 latency (log scale)", "ms",
                           small_groups, TARGETS, log_scale=True)

    legend_x = 80
    for name in TARGETS + ["rclone crypt"]:
        parts.append(f'<rect x="{legend_x}" y="{height - 28}" width="12" height="12" '
                     f'fill="{COLORS[name]}"/>')
        parts.append(f'<text x="{legend_x + 16}" y="{height - 18}">{name}</text>')
        legend_x += 120
    parts.append(f'<text x="{legend_x + 20}" y="{height - 18}">bars: median; whiskers: min–max</text>')

    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main():
    parser = argparse.ArgumentParser(description="Render saved s3seal benchmark results.")
    parser.add_argument("results", type=Path)
    parser.add_argument("--svg", type=Path, help="also write the plot here")
    args = parser.parse_args()
    results = json.loads(args.results.read_text())
    summary = summarize(results)
    print(markdown(results, summary))
    if args.svg:
        args.svg.write_text(svg(summary))


if __name__ == "__main__":
    sys.exit(main())
