#!/bin/bash
# Static throughput of the W4A8 driver's inner loops on CPUs this machine cannot run (docs/performance.md,
# "Static analysis"): compiles benchmarks/mca/mca_tu.cpp to assembly with GCC for x86-64 and (cross) AArch64,
# then scripts/mca_loops.py runs llvm-mca-16 on each path's innermost loop. Needs Debian's llvm-16 and
# g++-aarch64-linux-gnu (`apt-get install llvm-16 g++-aarch64-linux-gnu`); prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in llvm-mca-16 g++ aarch64-linux-gnu-g++ python3; do
  command -v "$tool" >/dev/null || { echo "mca-report: $tool not found (apt-get install llvm-16 g++-aarch64-linux-gnu)" >&2; exit 1; }
done
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
g++ -std=c++17 -O2 -DNDEBUG -Iinclude -S -o "$out/x86_64.s" benchmarks/mca/mca_tu.cpp
aarch64-linux-gnu-g++ -std=c++17 -O2 -DNDEBUG -march=armv8-a -Iinclude -S -o "$out/aarch64.s" benchmarks/mca/mca_tu.cpp
echo "GCC $(g++ -dumpfullversion), $(llvm-mca-16 --version | grep -o 'LLVM version [0-9.]*'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo
python3 scripts/mca_loops.py "$out/x86_64.s" "$out/aarch64.s"
