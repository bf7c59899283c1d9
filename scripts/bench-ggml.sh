#!/usr/bin/env bash
# scripts/bench-ggml.sh — rankq's W4A8 kernel next to ggml's Q4_0 / Q4_K matmul (rankq_bench_ggml), against a ggml
# source tree the user already has (nothing is downloaded, nothing of ggml enters this repository). Configures a
# separate build dir with -DRANKQ_GGML_SOURCE_DIR=DIR (Release -O3, rankq built with -march=native; ggml with its own
# flags), builds rankq_bench_ggml, runs it, prints the medians and the ggml/rankq time ratios.
# Method and results: docs/performance.md "Side by side with ggml".
#
#   scripts/bench-ggml.sh DIR                 quick check: decode rows (M = 1), 1 thread, 1 repetition
#   scripts/bench-ggml.sh DIR --all           every row (M = 1 and 128, 1 and 2 threads), REPS repetitions
#   scripts/bench-ggml.sh DIR --ggml-isa avx2 ggml built for AVX2 (GGML_NATIVE=OFF, AVX2/FMA/F16C/BMI2, no AVX-512)
#                                             instead of ggml's default -march=native; build dir ...-avx2
#   Extra arguments go to Google Benchmark (e.g. --benchmark_filter='M:128/').
#   Environment: BUILD_DIR (default build/bench-ggml-<isa>), REPS (default 5 with --all, else 1), OUT (JSON file,
#   default $BUILD_DIR/bench_ggml.json).
set -euo pipefail
usage() { echo "usage: $0 GGML_SOURCE_DIR [--all] [--ggml-isa native|avx2] [Google Benchmark flags...]" >&2; exit 2; }
[ $# -ge 1 ] || usage
GGML_DIR=$1
shift
if [ ! -f "$GGML_DIR/CMakeLists.txt" ] || [ ! -f "$GGML_DIR/include/ggml-cpu.h" ]; then
  echo "$0: GGML_SOURCE_DIR '$GGML_DIR' is not a ggml source tree (no CMakeLists.txt and include/ggml-cpu.h)" >&2
  exit 2
fi
GGML_DIR=$(cd "$GGML_DIR" && pwd)
ALL=0
ISA=native
ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --all) ALL=1 ;;
    --ggml-isa) [ $# -ge 2 ] || usage; ISA=$2; shift ;;
    --ggml-isa=*) ISA=${1#--ggml-isa=} ;;
    *) ARGS+=("$1") ;;
  esac
  shift
done
case "$ISA" in
  native) GGML_FLAGS=(-DGGML_NATIVE=ON) ;;
  avx2) GGML_FLAGS=(-DGGML_NATIVE=OFF -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
                    -DGGML_BMI2=ON -DGGML_AVX_VNNI=OFF -DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF
                    -DGGML_AVX512_BF16=OFF) ;;
  *) echo "$0: --ggml-isa '$ISA': must be native or avx2" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build/bench-ggml-$ISA}
if [ "$ALL" = 1 ]; then REPS=${REPS:-5}; else REPS=${REPS:-1}; ARGS=(--benchmark_filter='/M:1/.*/threads:1/' "${ARGS[@]}"); fi
OUT=${OUT:-$BUILD_DIR/bench_ggml.json}
LAUNCHER=()
if command -v ccache >/dev/null; then LAUNCHER=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release "-DCMAKE_CXX_FLAGS_RELEASE=-O3 -DNDEBUG" \
  -DRANKQ_ISA=native -DRANKQ_BUILD_BENCHMARKS=ON -DRANKQ_BUILD_TESTS=OFF -DRANKQ_BUILD_EXAMPLES=OFF -DRANKQ_INSTALL=OFF \
  "-DRANKQ_GGML_SOURCE_DIR=$GGML_DIR" "${GGML_FLAGS[@]}" "${LAUNCHER[@]}" >/dev/null
cmake --build "$BUILD_DIR" --target rankq_bench_ggml -j2
echo "ggml: $GGML_DIR ($(git -C "$GGML_DIR" rev-parse --short HEAD 2>/dev/null || echo 'not a git checkout'))"
echo "uptime before: $(uptime)"
"$BUILD_DIR/benchmarks/rankq_bench_ggml" "${ARGS[@]}" --benchmark_repetitions="$REPS" \
  --benchmark_report_aggregates_only=true --benchmark_out="$OUT" --benchmark_out_format=json |
  grep -v -E '_(mean|stddev|cv) '
echo "uptime after: $(uptime)"
echo "JSON (every aggregate): $OUT"
# Ratios from the same run: ggml's time / rankq's time (> 1: rankq faster). Issue #12's targets: >= 1.5 at M = 1,
# >= 2 at M = 128, against ggml Q4_0.
python3 - "$OUT" <<'EOF'
import json, re, sys
rows = {}
for b in json.load(open(sys.argv[1]))["benchmarks"]:
    if b.get("aggregate_name") in (None, "median") and not b.get("error_occurred"):
        rows[b["run_name"].replace("/real_time", "")] = b["real_time"]
print("\n| shape | rankq row | ggml-q4_0 / rankq (time) | ggml-q4_K / rankq (time) | issue #12 target vs Q4_0 |")
print("| --- | --- | ---: | ---: | --- |")
for name, t in sorted(rows.items()):
    m = re.match(r"(rankq-[^/]+/[^/]+)/(M:(\d+)/.*)", name)
    if not m:
        continue
    shape = m.group(2)
    q40, q4k = rows.get("ggml-q4_0/" + shape), rows.get("ggml-q4_K/" + shape)
    target = 1.5 if m.group(3) == "1" else 2.0
    fmt = lambda g: "%.2f" % (g / t) if g else "-"
    verdict = "-" if not q40 else ("met" if q40 / t >= target else "not met")
    print("| %s | %s | %s | %s | >= %.1f: %s |" % (shape, m.group(1), fmt(q40), fmt(q4k), target, verdict))
EOF
