// benchmarks/machine_limits.hpp — the machine's own limits as reference rows, measured in the same binary as the
// kernels so that every kernel figure is a ratio that means the same on any CPU (docs/performance.md "Roofline"):
//
//   stream_read/threads:T   the best of several read loops over kColdBytes (vectorised sums with 4 or 8
//                           accumulators, with and without the page-ahead hint): GB/s, the decode ceiling;
//   int8_dot_peak/<path>    a register-only loop of the path's int8 dot-product sequence (avx2: vpmaddubsw +
//                           vpmaddwd + vpaddd; avxvnni / avx512vnni: vpdpbusd) on 12 independent chains:
//                           GOP/s (2 ops per multiply-add, the kernels' unit), the prefill ceiling.
#pragma once

#include <benchmark/benchmark.h>

#include <rankq/kernels/kernel_path.hpp>
#include <rankq/kernels/threading.hpp>
#include <rankq/kernels/w4a8.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "rankq/detail/kernels/stream_prefetch.hpp"
#include "rankq/detail/x86_targets.hpp"
#if RANKQ_X86_PATHS
#include "rankq/detail/kernels/x86_primitives_avx512.hpp"
#include "rankq/detail/kernels/x86_primitives_avx_vnni.hpp"
#endif

#include "bench_common.hpp"

namespace rankq::bench {

// ---- stream_read ------------------------------------------------------------------------------------------

/// Σ of n bytes (n: a multiple of 1024) as 64-bit lanes with A accumulators; kPageAhead: the kernels' hint once
/// per KiB (stream_prefetch.hpp).
template <int A, bool kPageAhead>
#if RANKQ_X86_PATHS
RANKQ_TARGET_AVX2 std::uint64_t read_sum(const std::uint8_t* p, std::size_t n) {
  __m256i acc[A];
  for (int a = 0; a < A; ++a) acc[a] = _mm256_setzero_si256();
  for (std::size_t i = 0; i < n; i += 32 * A) {
    if (kPageAhead && i % 1024 == 0) detail::prefetch_page_ahead(p + i);
    for (int a = 0; a < A; ++a)
      acc[a] = _mm256_add_epi64(acc[a], _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 32 * a)));
  }
  for (int a = 1; a < A; ++a) acc[0] = _mm256_add_epi64(acc[0], acc[a]);
  alignas(32) std::uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), acc[0]);
  return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}
#else
std::uint64_t read_sum(const std::uint8_t* p, std::size_t n) {
  std::uint64_t acc[A] = {};
  for (std::size_t i = 0; i < n; i += 8 * A) {
    if (kPageAhead && i % 1024 == 0) detail::prefetch_page_ahead(p + i);
    for (int a = 0; a < A; ++a) {
      std::uint64_t v;
      std::memcpy(&v, p + i + 8 * a, 8);
      acc[a] += v;
    }
  }
  std::uint64_t s = 0;
  for (int a = 0; a < A; ++a) s += acc[a];
  return s;
}
#endif

/// Per iteration: one pass over kColdBytes with each of the four read loops, split over `threads`; the iteration
/// time is the fastest pass (manual time), so the row is the best the machine streams.
inline void bm_stream_read(benchmark::State& st, std::size_t threads) {
  if (RANKQ_X86_PATHS && !path_supported(KernelPath::avx2)) return st.SkipWithError("the read loops need AVX2");
  AlignedBuffer<std::uint8_t> buf(kColdBytes);
  for (std::size_t i = 0; i < buf.size(); i += 4096) buf[i] = static_cast<std::uint8_t>(i >> 12);
  ThreadPool pool(threads);
  constexpr std::size_t kChunks = 64;
  const std::size_t chunk = kColdBytes / kChunks;
  std::vector<std::uint64_t> sums(kChunks);
  using Loop = std::uint64_t (*)(const std::uint8_t*, std::size_t);
  const Loop loops[] = {read_sum<4, false>, read_sum<8, false>, read_sum<4, true>, read_sum<8, true>};
  for (auto _ : st) {
    double best = 1e30;
    for (Loop loop : loops) {
      const auto t0 = std::chrono::steady_clock::now();
      pool.parallel_for(kChunks, [&](std::size_t c0, std::size_t c1) {
        for (std::size_t c = c0; c < c1; ++c) sums[c] = loop(buf.data() + c * chunk, chunk);
      });
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      benchmark::DoNotOptimize(sums.data());
    }
    st.SetIterationTime(best);
  }
  set_counters(st, double(kColdBytes), 0.0);
}

// ---- int8_dot_peak ----------------------------------------------------------------------------------------

constexpr int kPeakChains = 12;         ///< independent accumulators: beyond latency x throughput on every core
constexpr std::size_t kPeakSteps = 4096;  ///< steps of kPeakChains instructions per call

#if RANKQ_X86_PATHS
/// kPeakSteps x kPeakChains steps of vpmaddubsw + vpmaddwd + vpaddd (32 multiply-adds each). The u8 operand is
/// the chain's own accumulator, so nothing is loop-invariant (a constant product would be hoisted out).
RANKQ_TARGET_AVX2 inline std::int32_t dot_peak_avx2(std::int32_t seed) {
  const __m256i b = _mm256_set1_epi32(seed * 7 + 1), ones = _mm256_set1_epi16(1);
  __m256i acc[kPeakChains];
  for (int c = 0; c < kPeakChains; ++c) acc[c] = _mm256_set1_epi32(seed + c);
  for (std::size_t s = 0; s < kPeakSteps; ++s)
    for (int c = 0; c < kPeakChains; ++c)
      acc[c] = _mm256_add_epi32(acc[c], _mm256_madd_epi16(_mm256_maddubs_epi16(acc[c], b), ones));
  for (int c = 1; c < kPeakChains; ++c) acc[0] = _mm256_add_epi32(acc[0], acc[c]);
  return _mm256_extract_epi32(acc[0], 0);
}
/// kPeakSteps x kPeakChains VEX vpdpbusd (32 multiply-adds each).
RANKQ_TARGET_AVXVNNI inline std::int32_t dot_peak_avx_vnni(std::int32_t seed) {
  const __m256i a = _mm256_set1_epi32(seed), b = _mm256_set1_epi32(seed * 7 + 1);
  __m256i acc[kPeakChains];
  for (int c = 0; c < kPeakChains; ++c) acc[c] = _mm256_set1_epi32(c);
  for (std::size_t s = 0; s < kPeakSteps; ++s)
    for (int c = 0; c < kPeakChains; ++c) acc[c] = detail::avx_vnni::dpbusd(acc[c], a, b);
  for (int c = 1; c < kPeakChains; ++c) acc[0] = _mm256_add_epi32(acc[0], acc[c]);
  return _mm256_extract_epi32(acc[0], 0);
}
/// kPeakSteps x kPeakChains zmm vpdpbusd (64 multiply-adds each).
RANKQ_TARGET_AVX512 inline std::int32_t dot_peak_avx512(std::int32_t seed) {
  const __m512i a = _mm512_set1_epi32(seed), b = _mm512_set1_epi32(seed * 7 + 1);
  __m512i acc[kPeakChains];
  for (int c = 0; c < kPeakChains; ++c) acc[c] = _mm512_set1_epi32(c);
  for (std::size_t s = 0; s < kPeakSteps; ++s)
    for (int c = 0; c < kPeakChains; ++c) acc[c] = detail::avx512::dpbusd(acc[c], a, b);
  for (int c = 1; c < kPeakChains; ++c) acc[0] = _mm512_add_epi32(acc[0], acc[c]);
  return _mm_cvtsi128_si32(_mm512_castsi512_si128(acc[0]));
}
#endif

/// GOP/s of the path's int8 dot-product sequence from registers alone (one thread).
inline void bm_int8_dot_peak(benchmark::State& st, KernelPath path) {
  if (!path_supported(path)) return st.SkipWithError("path not supported on this CPU");
  std::int32_t (*fn)(std::int32_t) = nullptr;
  double macs_per_instruction = 0;
#if RANKQ_X86_PATHS
  if (path == KernelPath::avx2) fn = dot_peak_avx2, macs_per_instruction = 32;
  if (path == KernelPath::avx_vnni) fn = dot_peak_avx_vnni, macs_per_instruction = 32;
  if (path == KernelPath::avx512_vnni) fn = dot_peak_avx512, macs_per_instruction = 64;
#endif
  if (!fn) return st.SkipWithError("no peak loop for this path");
  std::int32_t seed = 3;
  for (auto _ : st) {
    seed = fn(seed) | 1;
    benchmark::DoNotOptimize(seed);
  }
  set_counters(st, 0.0, 2.0 * macs_per_instruction * double(kPeakSteps) * kPeakChains);
}

/// Registers stream_read/threads:{1,2} and int8_dot_peak/<path> for every supported SIMD path.
inline void register_machine_limits() {
  for (std::size_t threads : {1, 2})
    benchmark::RegisterBenchmark(("stream_read/threads:" + std::to_string(threads)).c_str(),
                                 [threads](benchmark::State& st) { bm_stream_read(st, threads); })
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
  for (KernelPath p : supported_paths())
    if (p == KernelPath::avx2 || p == KernelPath::avx_vnni || p == KernelPath::avx512_vnni)
      benchmark::RegisterBenchmark(("int8_dot_peak/" + std::string(to_string(p))).c_str(),
                                   [p](benchmark::State& st) { bm_int8_dot_peak(st, p); })
          ->UseRealTime()
          ->Unit(benchmark::kMicrosecond);
}

}  // namespace rankq::bench
