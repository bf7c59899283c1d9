#!/usr/bin/env bash
# Quick start, step 2 (and what CI runs): the whole test suite.
#  1. x86-64 builds: scalar (SIMD off), native (GCC), native (Clang), asan-ubsan — configure, build, ctest
#     (warnings are errors)
#  2. x86-64 dispatch: the kernel tests built with no ISA flags (as an engine builds them) run natively, under
#     qemu-x86_64 -cpu Haswell-v4 (must dispatch avx2, no AVX-512 instruction may run) and -cpu Nehalem (scalar),
#     plus test_mixed_flags (baseline, -mavx2 and -march=native copies of the kernel tests in one program)
#  3. AArch64 cross builds (plain NEON and +dotprod) of the kernel tests, run under qemu-aarch64
#  4. bounded libFuzzer runs of every file reader
# The real data comes first (scripts/get-data.sh; see below).
# Ends with one line "test-all: N passed, N failed" (N = test programs across all configurations).
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --cross || { echo "test-all: 0 passed, 1 failed"; exit 1; }
log_dir=build/test-logs
mkdir -p "$log_dir"
passed=0; failed=0; failed_steps=()

# Real data (tests/test_data.hpp): fetched into data/ (or $RANKQ_DATA_DIR) first, every file's SHA-256 checked.
# When it is there, or CI is set, a data test that would skip fails instead (RANKQ_REQUIRE_DATA=1), so a green
# run means the data tests ran. Without it (no internet, no CI) they are skipped and this says so.
export RANKQ_DATA_DIR=${RANKQ_DATA_DIR:-$(pwd)/data}
if scripts/get-data.sh --dest "$RANKQ_DATA_DIR" >"$log_dir/get-data.log" 2>&1; then
  export RANKQ_REQUIRE_DATA=1
  echo "== data: $RANKQ_DATA_DIR (checked; data tests must run)"
elif [[ ${CI:-} == true || ${CI:-} == 1 ]]; then
  export RANKQ_REQUIRE_DATA=1
  echo "== data: MISSING and CI is set: the data tests will fail; last lines of $log_dir/get-data.log:"
  tail -n 10 "$log_dir/get-data.log" | sed 's/^/   | /'
else
  echo "== data: not available (see $log_dir/get-data.log): the tests that need it are SKIPPED;" \
    "run scripts/get-data.sh [--from DIR]"
fi

count_ctest() {  # $1 = log file; adds ctest's counts to the totals
  local line total nfail
  line=$(grep -E "tests passed, [0-9]+ tests? failed out of [0-9]+" "$1" | tail -n 1)
  if [[ -z "$line" ]]; then failed=$((failed + 1)); return; fi
  nfail=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
  total=$(sed -E 's/.* failed out of ([0-9]+).*/\1/' <<<"$line")
  passed=$((passed + total - nfail)); failed=$((failed + nfail))
}

run_step() {  # $1 = name, rest = command; output goes to a log and is shown on failure
  local name=$1; shift
  local log="$log_dir/$name.log"
  local t0=$SECONDS
  echo "== $name"
  if "$@" >"$log" 2>&1; then
    echo "   ok ($((SECONDS - t0)) s)"
  else
    echo "   FAILED ($((SECONDS - t0)) s); last lines of $log:"
    tail -n 60 "$log" | sed 's/^/   | /'
    failed_steps+=("$name")
  fi
  if grep -qE "tests passed, [0-9]+ tests? failed out of" "$log"; then count_ctest "$log";
  elif [[ " ${failed_steps[*]-} " == *" $name "* ]]; then failed=$((failed + 1)); else passed=$((passed + 1)); fi
}

for preset in ci-scalar ci-native ci-clang ci-asan-ubsan; do
  run_step "$preset" cmake --workflow --preset "$preset" --fresh
done
for extra in scripts/test-x86-dispatch.sh scripts/test-aarch64.sh scripts/test-fuzz.sh; do
  [[ -x "$extra" ]] && run_step "$(basename "$extra" .sh)" "$extra"
done

if ((${#failed_steps[@]})); then echo "failed steps: ${failed_steps[*]}"; fi
echo "test-all: $passed passed, $failed failed"
((failed == 0 && ${#failed_steps[@]} == 0))
