#!/usr/bin/env bash
# AArch64 CI under qemu-user: cross-builds the kernel tests twice (plain ARMv8 NEON, and armv8.2-a+dotprod),
# runs them with ctest through the toolchain's emulator, and checks which kernel paths actually ran:
#   build/aarch64          -march=armv8-a (as an engine builds them), run on an emulated Cortex-A53 (ARMv8.0: any
#                          newer instruction faults) -> best path must be neon; then the same binaries on qemu's
#                          default CPU (has dotprod) -> run-time dispatch must pick neondot
#   build/aarch64-dotprod  -march=armv8.2-a+dotprod, run on qemu's default CPU (has dotprod, HWCAP_ASIMDDP)
#                          -> best path must be neondot, and run-time detection must say neon on a Cortex-A53
# Ends with one ctest-style line over both builds: "N% tests passed, F tests failed out of T".
# Needs: g++-aarch64-linux-gnu, qemu-user, googletest sources (scripts/install-deps.sh --cross). Jobs: RANKQ_JOBS (2).
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p build
jobs=${RANKQ_JOBS:-2}
export RANKQ_TEST_EMULATOR=qemu-user  # tests that cannot hold under emulation skip themselves (test_threading)
toolchain=cmake/toolchains/aarch64-linux-gnu.cmake
sysroot=/usr/aarch64-linux-gnu

for tool in aarch64-linux-gnu-g++ qemu-aarch64 cmake ninja; do
  command -v "$tool" >/dev/null || { echo "test-aarch64: '$tool' not found; run scripts/install-deps.sh --cross"; exit 1; }
done
[[ -f /usr/src/googletest/CMakeLists.txt ]] || { echo "test-aarch64: /usr/src/googletest missing (package googletest)"; exit 1; }

total=0; total_failed=0; problems=()

run_build() {  # $1 = RANKQ_ISA, $2 = QEMU_CPU for the test run ("" = qemu's default), $3 = expected best path
  local isa=$1 cpu=$2 expect=$3 dir=build/$1 t0=$SECONDS log cpu_env=(env -u QEMU_CPU)
  [[ -n "$cpu" ]] && cpu_env=(env QEMU_CPU="$cpu")
  echo "== $isa (qemu cpu: ${cpu:-default}, expected best path: $expect)"
  if ! cmake -S . -B "$dir" -G Ninja -DCMAKE_TOOLCHAIN_FILE="$toolchain" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" \
      -DRANKQ_ISA="$isa" -DRANKQ_WERROR=ON -DRANKQ_BUILD_BENCHMARKS=OFF -DRANKQ_BUILD_EXAMPLES=OFF \
      -DRANKQ_INSTALL=OFF -DRANKQ_KERNEL_TESTS_ONLY=ON >"$dir.configure.log" 2>&1; then
    tail -n 30 "$dir.configure.log"; problems+=("$isa: configure failed"); return
  fi
  if ! cmake --build "$dir" -j "$jobs" >"$dir.build.log" 2>&1; then
    grep -E "error|warning" "$dir.build.log" | head -n 40; problems+=("$isa: build failed"); return
  fi
  echo "   built in $((SECONDS - t0)) s"
  log=$dir.ctest.log
  (cd "$dir" && "${cpu_env[@]}" ctest -j "$jobs" --timeout 600 --output-on-failure) >"$log" 2>&1
  sed -n '/tests passed/,$p' "$log" | sed 's/^/   /'
  grep -q "tests passed" "$log" || tail -n 40 "$log"
  local line n f
  line=$(grep -E "tests passed, [0-9]+ tests? failed out of [0-9]+" "$log" | tail -n 1)
  if [[ -z "$line" ]]; then problems+=("$isa: ctest gave no summary"); return; fi
  f=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
  n=$(sed -E 's/.* failed out of ([0-9]+).*/\1/' <<<"$line")
  total=$((total + n)); total_failed=$((total_failed + f))
  # Which W4A8 paths ran (the harness fails by itself if the best supported one did not).
  local covered
  covered=$(grep -h "\[ paths    \] w4a8 covered" "$dir/Testing/Temporary/LastTest.log" | head -n 1)
  echo "   ${covered:-"(no w4a8 path line)"}"
  [[ " ${covered#*covered: } " == *" $expect "* ]] || problems+=("$isa: w4a8 did not run '$expect'")
  local best
  best=$("${cpu_env[@]}" qemu-aarch64 -L "$sysroot" "$dir/tests/test_kernel_path" 2>/dev/null | grep -o "best supported path: [a-z0-9]*")
  echo "   $best"
  [[ "$best" == "best supported path: $expect" ]] || problems+=("$isa: best path is not $expect")
  echo "   $isa done in $((SECONDS - t0)) s"
}

run_build aarch64 cortex-a53 neon
run_build aarch64 "" neondot   # same build (nothing to rebuild): the dotprod path chosen at run time
run_build aarch64-dotprod "" neondot

# Run-time detection (HWCAP_ASIMDDP) must also say "no dotprod" on a CPU without it. This binary promises
# dotprod at compile time, so the test itself is expected to fail there; only the detected path is checked.
if [[ -x build/aarch64-dotprod/tests/test_kernel_path ]]; then
  a53=$(QEMU_CPU=cortex-a53 qemu-aarch64 -L "$sysroot" build/aarch64-dotprod/tests/test_kernel_path --gtest_filter='*SupportedPathsAreConsistent' 2>/dev/null |
        grep -o "best supported path: [a-z0-9]*")
  echo "== HWCAP detection, dotprod build on an emulated Cortex-A53: ${a53:-"(no output)"}"
  [[ "$a53" == "best supported path: neon" ]] || problems+=("HWCAP detection: expected neon on Cortex-A53")
fi

for p in "${problems[@]}"; do echo "PROBLEM: $p"; done
total_failed=$((total_failed + ${#problems[@]}))
total=$((total + ${#problems[@]}))
pct=100; ((total > 0)) && pct=$(((total - total_failed) * 100 / total))
echo "aarch64 (both builds): $pct% tests passed, $total_failed tests failed out of $total"
((total_failed == 0))
