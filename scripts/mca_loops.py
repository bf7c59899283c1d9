#!/usr/bin/env python3
"""Static throughput of the W4A8 driver's inner loops (docs/performance.md "Static analysis").

Reads the assembly GCC emits for tools/mca_tu.cpp (scripts/mca-report.sh makes it), finds the innermost loop of
each instance below (the smallest backward branch whose body holds the path's dot instruction), runs llvm-mca on
it for the CPUs named, and compares with the resource bound of the loop's dot instructions alone on the same CPU model
(the bound that the dot products set: their count over their issue rate). Prints a Markdown table. Only Debian's llvm-16 and the Python standard library are used.
"""
import re
import subprocess
import sys

LOOPS = {  # name -> (ISA namespace, template arguments MR, NT, fold, dot mnemonic regex, weights per token and iteration)
    "avx2 decode (M = 1)": ("avx2", "1", "1", "0", r"vpmaddubsw"),
    "avx2 prefill (4 tokens)": ("avx2", "4", "1", "0", r"vpmaddubsw"),
    "avx_vnni decode (M = 1)": ("avx_vnni", "1", "1", "0", r"vpdpbusd"),
    "avx_vnni prefill (4 tokens)": ("avx_vnni", "4", "1", "0", r"vpdpbusd"),
    "avx512vnni decode (M = 1)": ("avx512", "1", "1", "0", r"vpdpbusd"),
    "neon decode (M = 1)": ("neon", "1", "1", "0", r"smlal2?\b"),
    "neon prefill (2 tokens)": ("neon", "2", "1", "0", r"smlal2?\b"),
    "neon_dotprod decode (M = 1)": ("neon_dotprod", "1", "1", "0", r"sdot"),
    "neon_dotprod prefill (4 tokens)": ("neon_dotprod", "4", "1", "0", r"sdot"),
}
# CPU models per path: ones whose cores take that path (llvm-mca-16 names). LLVM 16 has no scheduling model of its
# own for Neoverse N1 / Cortex-A76 (it uses Cortex-A57's), so the NEON rows use Neoverse N2 (a model of its own)
# and Cortex-A55 (in-order little core) as well.
CPUS = {
    "avx2": ["znver2", "znver3", "znver4", "skylake", "alderlake"],
    "avx_vnni": ["alderlake", "sapphirerapids"],
    "avx512": ["znver4", "icelake-server", "sapphirerapids"],
    "neon": ["cortex-a55", "neoverse-n1", "neoverse-n2"],
    "neon_dotprod": ["cortex-a55", "neoverse-n1", "neoverse-n2"],
}
BRANCH = re.compile(r"^\s*(j[a-z]+|b\.?[a-z]{2}|b|cbnz|cbz|tbnz|tbz)\s+(?:[^,]*,\s*)*(\.L[0-9A-Za-z_]+)\s*$")


def functions(asm):
    """symbol -> list of lines of its body."""
    out, name = {}, None
    for line in asm:
        m = re.match(r"^(_Z[0-9A-Za-z_]+):$", line)
        if m:
            name = m.group(1)
            out[name] = []
        elif name is not None:
            if line.startswith(".LFE") or line.startswith("\t.size"):
                name = None
            else:
                out[name].append(line)
    return out


def inner_loop(body, dot):
    labels = {l[:-1]: i for i, l in enumerate(body) if re.match(r"^\.L[0-9A-Za-z_]+:$", l)}
    best = None
    for i, line in enumerate(body):
        m = BRANCH.match(line)
        if not m or m.group(2) not in labels or labels[m.group(2)] > i:
            continue
        seg = body[labels[m.group(2)] + 1 : i + 1]
        if any(re.search(r"\b" + dot, s) for s in seg) and (best is None or len(seg) < len(best)):
            best = seg
    if best is None:
        return None
    return [s for s in best if s.strip() and not s.startswith(".L") and not s.lstrip().startswith((".", "#", "//"))]


def mca(lines, arch, cpu):
    """(cycles per iteration in steady state, the block's reciprocal throughput from resources alone)."""
    args = ["llvm-mca-16", f"-mcpu={cpu}", "-iterations=400"] + (["-march=aarch64"] if arch == "aarch64" else [])
    r = subprocess.run(args, input="\n".join(lines) + "\n", capture_output=True, text=True)
    total = re.search(r"Total Cycles:\s+(\d+)", r.stdout)
    rthr = re.search(r"Block RThroughput:\s+([0-9.]+)", r.stdout)
    if not total or not rthr:
        return float("nan"), float("nan")
    return int(total.group(1)) / 400.0, float(rthr.group(1))


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: mca_loops.py x86_64.s aarch64.s")
    asm = {"x86_64": functions(open(sys.argv[1]).read().split("\n")), "aarch64": functions(open(sys.argv[2]).read().split("\n"))}
    print("| loop (one iteration = one 16-K chunk of one 16-row tile) | dot instr. | CPU model | cycles / iteration | "
          "dot-only bound | ratio |")
    print("| --- | ---: | --- | ---: | ---: | ---: |")
    for name, (ns, mr, nt, fold, dot) in LOOPS.items():
        arch = "aarch64" if ns.startswith("neon") else "x86_64"
        sym = next((s for s in asm[arch] if re.search(rf"detail\d+{ns}10w4a8_blockILm{mr}ELm{nt}ELb{fold}E", s)), None)
        loop = inner_loop(asm[arch][sym], dot) if sym else None
        if not loop:
            print(f"| {name} | — | — | not found | — | — |")
            continue
        dots = [s for s in loop if re.search(r"\b" + dot, s)]
        for cpu in CPUS[ns]:
            full, _ = mca(loop, arch, cpu)
            _, bound = mca(dots, arch, cpu)
            print(f"| {name} | {len(dots)} | {cpu} | {full:.1f} | {bound:.1f} | {full / bound:.2f} |")


if __name__ == "__main__":
    main()
