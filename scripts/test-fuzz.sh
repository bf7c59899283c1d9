#!/usr/bin/env bash
# Bounded libFuzzer runs of every file reader (GGUF, safetensors, llama2.c, the rankq quantized model file). Builds the targets in fuzz/ with
# clang++ (-fsanitize=fuzzer,address,undefined) into build/fuzz/ (skipped when up to date), seeds each corpus with
# small valid files generated on the fly plus the real GGUF header from the data folder ($RANKQ_DATA_DIR, default data/, filled by
# scripts/get-data.sh; copied at run time, never committed), runs each target for RANKQ_FUZZ_SECONDS (default 40), at most two at a time, and exits non-zero
# if any build fails or any target crashes. Crash inputs: build/fuzz/artifacts/.
set -uo pipefail
cd "$(dirname "$0")/.."
out=build/fuzz
seconds=${RANKQ_FUZZ_SECONDS:-40}
data_dir=${RANKQ_DATA_DIR:-$(pwd)/data}
cxx=${RANKQ_FUZZ_CXX:-clang++}
flags=(-std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I include)
targets=(gguf safetensors llama2c model_file)
mkdir -p "$out/artifacts"
t0=$SECONDS
status=0

up_to_date() {  # $1 = binary: exists and is newer than every source it could depend on
  [[ -x $1 ]] && [[ -z $(find include examples fuzz scripts/test-fuzz.sh -newer "$1" -print -quit) ]]
}

build() {  # $1 = target name; compiles fuzz/<name>.cpp into build/fuzz/<name>
  local name=$1 extra=()
  [[ $name == fuzz_* ]] && extra=("${flags[@]}") || extra=(-std=c++17 -O0 -I include)
  # The model file reader lives in examples/ and pulls in the quantization methods (Eigen).
  [[ $name == fuzz_model_file ]] && extra+=(-I examples -isystem /usr/include/eigen3)
  up_to_date "$out/$name" && return 0
  "$cxx" "${extra[@]}" "fuzz/$name.cpp" -o "$out/$name.tmp" >"$out/$name.build.log" 2>&1 &&
    mv "$out/$name.tmp" "$out/$name"
}

run() {  # $1 = target: fuzz it for $seconds
  local t=$1
  mkdir -p "$out/corpus/$t"
  "$out/fuzz_$t" -max_total_time="$seconds" -max_len=16384 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$out/artifacts/$t-" "$out/corpus/$t" "$out/seeds/$t" >"$out/fuzz_$t.log" 2>&1
}

# Runs "$1 <arg>" for every remaining argument, two at a time; records failures.
in_pairs() {
  local fn=$1; shift
  local args=("$@") i
  for ((i = 0; i < ${#args[@]}; i += 2)); do
    local pids=() names=()
    for a in "${args[@]:i:2}"; do "$fn" "$a" & pids+=($!); names+=("$a"); done
    for k in "${!pids[@]}"; do
      if ! wait "${pids[$k]}"; then
        status=1
        failed+=("$fn ${names[$k]}")
      fi
    done
  done
}

failed=()
echo "building with $cxx ..."
in_pairs build fuzz_gguf fuzz_safetensors fuzz_llama2c fuzz_model_file make_seeds
if ((${#failed[@]})); then
  for f in "${failed[@]}"; do echo "FAILED: $f"; tail -n 30 "$out/${f#build }.build.log"; done
  exit 1
fi
echo "built in $((SECONDS - t0)) s"

rm -rf "$out/seeds"
"$out/make_seeds" "$out/seeds" || { echo "make_seeds failed"; exit 1; }
gguf=$data_dir/tinyllamas-stories-260k-f32.gguf
if [[ -r $gguf ]]; then
  head -c 11456 "$gguf" >"$out/seeds/gguf/real_header.gguf"  # metadata + tensor infos (512-token vocab), no data
else
  echo "note: $gguf not found (run scripts/get-data.sh); fuzzing with generated seeds only"
fi

echo "fuzzing ${targets[*]} for $seconds s each ..."
in_pairs run "${targets[@]}"
for t in "${targets[@]}"; do
  if [[ " ${failed[*]-} " == *" run $t "* ]]; then
    echo "== fuzz_$t FAILED; last lines of $out/fuzz_$t.log:"
    tail -n 40 "$out/fuzz_$t.log"
  else
    echo "== fuzz_$t ok: $(grep -E '^stat::number_of_executed_units' "$out/fuzz_$t.log" | awk '{print $2}') runs," \
      "peak RSS $(grep -E '^stat::peak_rss_mb' "$out/fuzz_$t.log" | awk '{print $2}') MB"
  fi
done
echo "test-fuzz: $((SECONDS - t0)) s total"
exit $status
