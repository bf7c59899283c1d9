#!/usr/bin/env bash
# Bounded libFuzzer runs of every file reader (GGUF, safetensors, llama2.c). Builds the targets in fuzz/ with
# clang++ (-fsanitize=fuzzer,address,undefined) into build/fuzz/, seeds each corpus with small valid files
# generated on the fly plus the real GGUF header from the shared data folder (copied at run time, never committed),
# runs each target for RANKQ_FUZZ_SECONDS (default 40) and exits non-zero if any target crashes.
set -euo pipefail
cd "$(dirname "$0")/.."
out=build/fuzz
seconds=${RANKQ_FUZZ_SECONDS:-40}
data_dir=${RANKQ_SHARED_DATA_DIR:-$(pwd)/../shared/data}
cxx=${RANKQ_FUZZ_CXX:-clang++}
flags=(-std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I include)
targets=(gguf safetensors llama2c)
mkdir -p "$out/artifacts"

t0=$SECONDS
echo "building fuzzers with $cxx ..."
pids=()
for t in "${targets[@]}"; do
  "$cxx" "${flags[@]}" "fuzz/fuzz_$t.cpp" -o "$out/fuzz_$t" &
  pids+=($!)
  if ((${#pids[@]} == 2)); then wait "${pids[0]}"; pids=("${pids[1]}"); fi  # at most 2 compilers at once
done
"$cxx" -std=c++17 -O1 -I include fuzz/make_seeds.cpp -o "$out/make_seeds"
for p in "${pids[@]}"; do wait "$p"; done
echo "built in $((SECONDS - t0)) s"

seeds=$out/seeds
rm -rf "$seeds"
"$out/make_seeds" "$seeds"
gguf=$data_dir/tinyllamas-stories-260k-f32.gguf
if [[ -r $gguf ]]; then
  head -c 11456 "$gguf" >"$seeds/gguf/real_header.gguf"  # metadata + tensor infos (512-token vocab), no data
else
  echo "note: $gguf not found; fuzzing with generated seeds only"
fi

status=0
for t in "${targets[@]}"; do
  corpus=$out/corpus/$t
  mkdir -p "$corpus"
  echo "== fuzz_$t (${seconds} s)"
  if "$out/fuzz_$t" -max_total_time="$seconds" -max_len=16384 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$out/artifacts/$t-" "$corpus" "$seeds/$t" >"$out/fuzz_$t.log" 2>&1; then
    grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb)|^#[0-9]+ +DONE" "$out/fuzz_$t.log" || true
  else
    status=1
    echo "fuzz_$t FAILED; last lines of $out/fuzz_$t.log:"
    tail -n 40 "$out/fuzz_$t.log"
  fi
done
echo "test-fuzz: $((SECONDS - t0)) s total"
exit $status
