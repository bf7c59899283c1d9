// benchmarks/bench_common.hpp — what every kernel benchmark shares (docs/performance.md "Method"): the issue's
// shapes and token counts, the cold-weight rotation sets, the random weights and activations, and the GB/s and GOP/s
// counters.
#pragma once

#include <benchmark/benchmark.h>

#include <rankq/formats/uniform.hpp>
#include <rankq/kernels/kernel_path.hpp>
#include <rankq/kernels/threading.hpp>
#include <rankq/kernels/w4a8.hpp>
#include <rankq/kernels/workspace.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace rankq::bench {

constexpr std::size_t kColdBytes = std::size_t(512) << 20;  // rotation set: far beyond the ~32 MiB L3

struct Shape {
  std::size_t N, K;
};
inline const Shape kShapes[] = {{4096, 4096}, {11008, 4096}, {4096, 11008}};
inline const std::size_t kTokenCounts[] = {1, 8, 32, 128, 512};

/// How many copies of a `bytes`-sized weight set make a rotation of >= kColdBytes (at least 2).
inline std::size_t copies_for(std::size_t bytes) {
  return std::max<std::size_t>(2, (kColdBytes + bytes - 1) / bytes);
}

/// Bytes of one weight set: size_bytes() of the packed types, size() x element size of a dense matrix.
template <class W, class = void>
struct HasSizeBytes : std::false_type {};
template <class W>
struct HasSizeBytes<W, std::void_t<decltype(std::declval<const W&>().size_bytes())>> : std::true_type {};
template <class W>
std::size_t bytes_of(const W& w) {
  if constexpr (HasSizeBytes<W>::value) return w.size_bytes();
  else return static_cast<std::size_t>(w.size()) * sizeof(*w.data());
}

/// A rotation set: copies of one weight set (what make() returns) totalling >= kColdBytes, used round-robin
/// (set[i % set.size()]) so that every call reads its weights from DRAM, as a decode step does. One set per call
/// site (per `make` lambda) is cached at a time, under `key`: a sweep ordered by weight set builds each set once
/// and never holds two of one kind (a full sweep stays under ~1.5 GB).
template <class Key, class Make>
const auto& cold_copies(const Key& key, Make make) {
  using W = std::decay_t<decltype(make())>;
  static std::unique_ptr<std::pair<Key, std::vector<W>>> cache;
  if (cache && cache->first == key) return cache->second;
  cache.reset();
  auto set = std::make_unique<std::pair<Key, std::vector<W>>>(key, std::vector<W>{});
  const W w = make();
  const std::size_t n = copies_for(bytes_of(w));
  set->second.reserve(n);
  for (std::size_t i = 0; i < n; ++i) set->second.push_back(w);
  cache = std::move(set);
  return cache->second;
}

/// N x K uniform weights of format f with random codes and scales uniform in [scale_lo, scale_hi), from `seed`.
inline UniformWeights random_uniform_weights(const UniformFormat& f, std::size_t N, std::size_t K, std::uint64_t seed,
                                             float scale_lo, float scale_hi) {
  auto w = make_uniform_weights(f, N, K);
  std::mt19937_64 rng(seed);
  for (auto& b : w.codes) b = static_cast<std::uint8_t>(rng());
  std::uniform_real_distribution<float> scale(scale_lo, scale_hi);
  for (auto& s : w.scales) s = scale(rng);
  return w;
}

/// M x K activations: Gaussian with an outlier channel (x20) every 37.
inline std::vector<float> activations(std::size_t M, std::size_t K) {
  std::mt19937_64 rng(M * 7 + K);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> x(M * K);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = g(rng) * ((i % K) % 37 == 5 ? 20.0f : 1.0f);
  return x;
}

/// GB/s = `bytes` read per iteration, GOP/s = `ops` per iteration (each omitted when 0).
inline void set_counters(benchmark::State& st, double bytes, double ops) {
  using C = benchmark::Counter;
  if (bytes > 0) st.counters["GB/s"] = C(bytes, C::kIsIterationInvariantRate, C::OneK::kIs1000);
  if (ops > 0) st.counters["GOP/s"] = C(ops, C::kIsIterationInvariantRate, C::OneK::kIs1000);
}

/// The timed loop of every rotating-weights kernel row: `threads` workers (the pool's hook from 2 on), call(set[i %
/// size], options) once per iteration with `y` (the call's output) kept alive, then GB/s of one weight set and
/// GOP/s = 2·M·N·K. `workspace` goes into the options (null: each call takes a temporary one).
template <class W, class Call>
void rotate_weights(benchmark::State& st, const std::vector<W>& set, KernelPath path, std::size_t M, Shape s,
                    std::size_t threads, Workspace* workspace, const float* y, Call call) {
  ThreadPool pool(threads);
  const ParallelFor hook = pool.hook();
  const W4A8Options o{path, threads > 1 ? &hook : nullptr, nullptr, workspace};
  std::size_t i = 0;
  for (auto _ : st) {
    call(set[i++ % set.size()], o);
    benchmark::DoNotOptimize(y);
    benchmark::ClobberMemory();
  }
  set_counters(st, double(bytes_of(set[0])), 2.0 * double(M) * double(s.N) * double(s.K));
}

/// The end of every benchmark binary's main(), after its benchmarks are registered: Google Benchmark's own
/// argument handling (unknown flags are an error), the run, and shutdown. Returns main's exit code.
/// The CPU the numbers belong to, in every report's context (console header and JSON "context"): /proc/cpuinfo's
/// model name (VMs often say only "AMD EPYC"), CPUID family/model, the best kernel path and the page-ahead default.
inline void add_cpu_context() {
  std::ifstream in("/proc/cpuinfo");
  std::string line, model = "unknown";
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0 && line.find(':') != std::string::npos) {
      model = line.substr(line.find(':') + 2);
      break;
    }
  const auto& f = rankq::detail::cpu_features();
  char fm[64];
  std::snprintf(fm, sizeof fm, "family 0x%x model 0x%x", f.family, f.model);
  benchmark::AddCustomContext("cpu_model", model);
  benchmark::AddCustomContext("cpu_family_model", fm);
  benchmark::AddCustomContext("best_path", rankq::to_string(rankq::best_supported_path()));
  benchmark::AddCustomContext("page_ahead_default", rankq::page_ahead_hint() ? "on" : "off");
}

inline int run_registered_benchmarks(int argc, char** argv) {
  add_cpu_context();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace rankq::bench
