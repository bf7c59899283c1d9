// benchmarks/bench_common.hpp — what every kernel benchmark shares (docs/performance.md "Method"): the issue's
// shapes and token counts, the cold-weight rotation size, the activations, and the GB/s and GOP/s counters.
#pragma once

#include <benchmark/benchmark.h>

#include <rankq/kernels/kernel_path.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
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
