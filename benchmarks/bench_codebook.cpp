// benchmarks/bench_codebook.cpp — LCQ fit time (RTN init + ranks 1..k of alternating least squares, single thread)
// for LLaMA-sized layers: lcq_fit/bits:{3,4}/rank:{2,4}/N:{4096,11008}/K:4096, group 128, D = 1.
// Counters: iterations run in total and the final objective relative to ‖W‖². docs/lcq.md "Measured".
#include <benchmark/benchmark.h>
#include <rankq/lcq.hpp>

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace {

/// Deterministic heavy-tailed (Student-t, ν = 4) weights with per-row scale variation, cached per shape.
const std::vector<float>& weights(std::size_t N, std::size_t K) {
  static std::map<std::pair<std::size_t, std::size_t>, std::vector<float>> cache;
  auto& w = cache[{N, K}];
  if (w.empty()) {
    std::mt19937_64 rng(N * 131 + K);
    std::student_t_distribution<float> t4(4.0f);
    std::normal_distribution<float> gauss(0.0f, 1.0f);
    w.resize(N * K);
    for (std::size_t n = 0; n < N; ++n) {
      const float row_scale = 0.02f * std::exp(0.3f * gauss(rng));
      for (std::size_t k = 0; k < K; ++k) w[n * K + k] = row_scale * t4(rng);
    }
  }
  return w;
}

void lcq_fit(benchmark::State& state, unsigned bits, unsigned rank, std::size_t N, std::size_t K) {
  const std::vector<float>& w = weights(N, K);
  rankq::LcqOptions o;
  o.bits = bits;
  o.rank = rank;
  o.group_size = 128;
  o.threads = 1;
  rankq::LcqReport report;
  for (auto _ : state) {
    rankq::CodebookWeights q = rankq::fit_lcq(rankq::MatrixView<const float>(w.data(), N, K), o, &report);
    benchmark::DoNotOptimize(q.S.data());
  }
  std::size_t iterations = 0;
  for (const auto& h : report.iteration_objectives) iterations += h.size() - 1;
  state.counters["alt_iterations"] = static_cast<double>(iterations);
  state.counters["rel_objective"] = report.final_objective / report.weighted_norm;
  state.counters["rtn_rel_objective"] = report.rtn_objective / report.weighted_norm;
  state.counters["weights_per_s"] = benchmark::Counter(static_cast<double>(N * K), benchmark::Counter::kIsRate);
}

const bool registered = [] {
  for (std::size_t N : {std::size_t(4096), std::size_t(11008)})
    for (unsigned bits : {4u, 3u})
      for (unsigned rank : {2u, 4u}) {
        const std::string name = "lcq_fit/bits:" + std::to_string(bits) + "/rank:" + std::to_string(rank) +
                                 "/N:" + std::to_string(N) + "/K:4096";
        benchmark::RegisterBenchmark(name.c_str(), lcq_fit, bits, rank, N, std::size_t(4096))
            ->Unit(benchmark::kSecond);
      }
  return true;
}();

}  // namespace

BENCHMARK_MAIN();
