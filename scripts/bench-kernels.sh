#!/usr/bin/env bash
# scripts/bench-kernels.sh — builds the `bench` preset (Release, -march=native, benchmarks on) and runs
# rankq_bench_kernels with repetitions, printing medians only, with `uptime` before and after (the load matters:
# see docs/performance.md). Method and results: docs/performance.md.
#
#   scripts/bench-kernels.sh            headline set: memory_read (+ _page_ahead), M = 1 and 128 at N=11008 K=4096 on every path,
#                                       Eigen fp32, the scalar path, activation quantization
#   scripts/bench-kernels.sh --full     every shape (4096x4096, 11008x4096, 4096x11008) x M (1, 8, 32, 128, 512) x
#                                       threads (1, 2) x path, plus the group-32 variants
#   Extra arguments go to Google Benchmark (e.g. --benchmark_filter='^w4a8/avx512vnni/M:1/').
#   Environment: BUILD_DIR (default build/bench), REPS (default 5), OUT (JSON results file, default
#   $BUILD_DIR/bench_kernels.json).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build/bench}
REPS=${REPS:-5}
OUT=${OUT:-$BUILD_DIR/bench_kernels.json}
if [ "$BUILD_DIR" = build/bench ]; then
  cmake --preset bench >/dev/null
else
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release "-DCMAKE_CXX_FLAGS_RELEASE=-O3 -DNDEBUG" \
    -DRANKQ_ISA=native -DRANKQ_BUILD_BENCHMARKS=ON >/dev/null
fi
cmake --build "$BUILD_DIR" --target rankq_bench_kernels -j2
echo "uptime before: $(uptime)"
"$BUILD_DIR/benchmarks/rankq_bench_kernels" "$@" --benchmark_repetitions="$REPS" \
  --benchmark_report_aggregates_only=true --benchmark_out="$OUT" --benchmark_out_format=json |
  grep -v -E '_(mean|stddev|cv) '
echo "uptime after: $(uptime)"
echo "JSON (every aggregate): $OUT"
