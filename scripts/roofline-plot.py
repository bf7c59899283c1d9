#!/usr/bin/env python3
"""Roofline chart of a kernel benchmark run: GOP/s against operations per weight byte.

usage: scripts/roofline-plot.py OUT.svg BENCH.json [BENCH.json ...] [--title TEXT]

Reads Google Benchmark JSON (rankq_bench_kernels / _codebook / _lowrank with --benchmark_out=...; aggregates or
plain runs: the median is used when present). The ceilings come from the same run's reference rows:
stream_read/threads:1 (GB/s: the memory roof, GOP/s = GB/s x ops/byte) and int8_dot_peak/<path> (GOP/s: one
compute roof per path). Every kernel row with both a GB/s and a GOP/s counter becomes a point at
x = GOP/s / GB/s (= 2·M·N·K / bytes of packed weights) and y = GOP/s, one marker per path. Writes an SVG with
gnuplot (Debian: gnuplot-nox) and prints each point's fraction of its roof min(peak, x·stream) as a Markdown
table. Only the Python standard library is used.
"""
import json
import os
import re
import subprocess
import sys
import tempfile


def rows_of(paths):
    """name -> {counter: value}, preferring the median aggregate of repeated runs."""
    rows = {}
    for path in paths:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        for b in data.get("benchmarks", []):
            agg = b.get("aggregate_name")
            if agg not in (None, "median"):
                continue
            name = b.get("run_name", b["name"])
            if agg is None and name in rows:
                continue  # a repetition: keep the first unless the median comes
            rows[name] = b
    return rows


def main():
    args = sys.argv[1:]
    title = "rankq kernels"
    if "--title" in args:
        i = args.index("--title")
        title = args[i + 1]
        del args[i:i + 2]
    if len(args) < 2:
        sys.exit(__doc__.strip().splitlines()[2])
    out, inputs = args[0], args[1:]
    if os.path.exists(out) and not os.path.isfile(out):
        sys.exit(f"roofline-plot: {out} exists and is not a regular file")
    rows = rows_of(inputs)
    stream = next((b["GB/s"] / 1e9 for n, b in rows.items() if n.startswith("stream_read/threads:1") and "GB/s" in b), None)
    if stream is None:
        sys.exit("roofline-plot: no stream_read/threads:1 row with a GB/s counter in the input")
    peaks = {n.split("/")[1]: b["GOP/s"] / 1e9 for n, b in rows.items() if n.startswith("int8_dot_peak/") and "GOP/s" in b}
    points = {}
    for name, b in rows.items():
        if "GB/s" not in b or "GOP/s" not in b or name.startswith(("stream_read", "int8_dot_peak", "eigen")):
            continue
        m = re.search(r"/(scalar|avx2|avxvnni|avx512vnni|neon|neondot)/", name)
        if not m:
            continue
        gops, gbs = b["GOP/s"] / 1e9, b["GB/s"] / 1e9
        points.setdefault(m.group(1), []).append((gops / gbs, gops, name.replace("/real_time", "")))
    if not points:
        sys.exit("roofline-plot: no kernel rows with GB/s and GOP/s counters")
    xs = [p[0] for pts in points.values() for p in pts]
    x0, x1 = min(xs) / 2, max(xs) * 2
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "points.dat")
        with open(data, "w", encoding="utf-8") as f:
            for path, pts in points.items():
                f.write(f"# {path}\n")
                for x, y, _ in pts:
                    f.write(f"{x} {y}\n")
                f.write("\n\n")
        plots = [f"'{data}' index {i} with points pt {i % 14 + 5} ps 1.3 title '{p}'" for i, p in enumerate(points)]
        plots.append(f"[{x0}:{x1}] {stream} * x with lines lw 2 lc rgb 'black' title 'stream\\_read/threads:1 ({stream:.1f} GB/s)'")
        for i, (p, peak) in enumerate(sorted(peaks.items())):
            plots.append(f"[{x0}:{x1}] {peak} with lines lw 1 dt {i + 2} title 'int8\\_dot\\_peak/{p} ({peak:.0f} GOP/s)'")
        script = "\n".join([
            "set terminal svg size 900,560 dynamic enhanced font 'sans,12' background rgb 'white'",
            f"set output '{out}.tmp'",
            f"set title '{title}'",
            "set xlabel 'operations per byte of packed weights (2·M·N·K / bytes)'",
            "set ylabel 'GOP/s'",
            "set logscale xy",
            "set grid",
            "set key outside right top",
            "plot " + ", ".join(plots),
            "unset output",
        ])
        subprocess.run(["gnuplot"], input=script, text=True, check=True)
        os.replace(out + ".tmp", out)  # never leave a partly written SVG
    print("| kernel | ops/byte | GOP/s | roof (GOP/s) | fraction of roof |")
    print("|---|---:|---:|---:|---:|")
    for path, pts in points.items():
        peak = peaks.get(path, peaks.get("avx2", float("inf")) if path == "scalar" else float("inf"))
        for x, y, name in sorted(pts, key=lambda p: p[2]):
            roof = min(peak, x * stream)
            print(f"| `{name}` | {x:.2f} | {y:.1f} | {roof:.1f} | {y / roof:.2f} |")


if __name__ == "__main__":
    main()
