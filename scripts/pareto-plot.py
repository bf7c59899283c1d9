#!/usr/bin/env python3
"""Pareto plot of rankq-quantize --model ... --json results: bits/weight vs Δ perplexity over fp32.

usage: scripts/pareto-plot.py OUT.svg RESULTS.json [RESULTS.json ...]

Reads the JSON arrays rankq-quantize writes with --model (rows with method, bits_per_weight, delta_vs_fp32),
draws one marker per method family (the method label up to " W", e.g. "RTN", "GPTQ", "GPTQ+L2QER", "LCQ") on a
log Δ-perplexity axis, joins the Pareto front (no other row has fewer or equal bits and a smaller Δ), and writes
an SVG with gnuplot (Debian: apt-get install gnuplot-nox). Also prints the Pareto front as a Markdown table.
Only the Python standard library is used. Rows named fp32 are skipped; a method seen in several files keeps its
first occurrence.
"""
import json
import os
import subprocess
import sys
import tempfile


def family(method):
    return method.split(" W")[0] if " W" in method else method


def load(paths):
    rows, seen = [], set()
    for path in paths:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        if not isinstance(data, list):
            sys.exit(f"pareto-plot: {path}: expected the JSON array of rankq-quantize --model --json")
        for r in data:
            for key in ("method", "bits_per_weight", "delta_vs_fp32"):
                if key not in r:
                    sys.exit(f"pareto-plot: {path}: a row has no '{key}'")
            if r["method"] == "fp32" or r["method"] in seen:
                continue
            seen.add(r["method"])
            rows.append(r)
    if not rows:
        sys.exit("pareto-plot: no quantized rows in the input")
    return rows


def pareto_front(rows):
    front, best = [], float("inf")
    for r in sorted(rows, key=lambda r: (r["bits_per_weight"], r["delta_vs_fp32"])):
        if r["delta_vs_fp32"] < best:
            front.append(r)
            best = r["delta_vs_fp32"]
    return front


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__.strip().splitlines()[2])
    out, inputs = sys.argv[1], sys.argv[2:]
    if os.path.exists(out) and not os.path.isfile(out):
        sys.exit(f"pareto-plot: {out} exists and is not a regular file")
    rows = load(inputs)
    families = []
    for r in rows:
        if family(r["method"]) not in families:
            families.append(family(r["method"]))
    front = pareto_front(rows)
    floor = 1e-3  # a log axis: Δ ≤ 0 is drawn at this floor
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "points.dat")
        with open(data, "w", encoding="utf-8") as f:
            for fam in families:
                f.write(f"# {fam}\n")
                for r in rows:
                    if family(r["method"]) == fam:
                        f.write(f"{r['bits_per_weight']} {max(r['delta_vs_fp32'], floor)}\n")
                f.write("\n\n")
            f.write("# pareto\n")
            for r in front:
                f.write(f"{r['bits_per_weight']} {max(r['delta_vs_fp32'], floor)}\n")
        plots = [f"'{data}' index {i} with points pt {i % 14 + 1} ps 1.2 title '{fam}'" for i, fam in enumerate(families)]
        plots.append(f"'{data}' index {len(families)} with lines lw 1 dt 2 lc rgb 'black' title 'Pareto front'")
        script = "\n".join([
            "set terminal svg size 900,560 dynamic enhanced font 'sans,12' background rgb 'white'",
            f"set output '{out}.tmp'",
            "set xlabel 'bits per weight (projections; codes, scales, exponents, factors, codebooks)'",
            "set ylabel 'perplexity - fp32 perplexity (log scale)'",
            "set logscale y",
            "set grid",
            "set key outside right top",
            "plot " + ", ".join(plots),
            "unset output",
        ])
        subprocess.run(["gnuplot"], input=script, text=True, check=True)
        os.replace(out + ".tmp", out)  # never leave a partly written SVG
    print("| bits/w | method | Δ perplexity |")
    print("|---:|---|---:|")
    for r in front:
        print(f"| {r['bits_per_weight']:.3f} | {r['method']} | {r['delta_vs_fp32']:+.4f} |")


if __name__ == "__main__":
    main()
