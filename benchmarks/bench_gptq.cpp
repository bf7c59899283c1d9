// GPTQ benchmarks: gptq_quantize_uniform at 4 bits, groups of 128 (symmetric, f16 scales: the W4A8 kernels'
// format) on 4096 x 4096 and 11008 x 4096, 1 and 2 threads through ThreadPool::hook(), and the preparation of H
// alone (dead channels, dampening, Cholesky of the reversed H, triangular inverse). Results: docs/gptq.md §6.
#include <benchmark/benchmark.h>

#include <rankq/algorithms/calibration.hpp>
#include <rankq/algorithms/gptq.hpp>
#include <rankq/kernels/threading.hpp>

#include <cstddef>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench_common.hpp"

using namespace rankq;

namespace {

/// H of 1024 calibration tokens: Gaussian channels with every 37th x20 (bench::activations) mixed by a random
/// sparse correlation so that H is far from diagonal; rank 1024 < K, made definite by the default dampening.
const GptqHessian& hessian(std::size_t K) {
  static std::map<std::size_t, std::unique_ptr<GptqHessian>> cache;
  auto& h = cache[K];
  if (h) return *h;
  std::vector<float> x = bench::activations(1024, K);
  std::mt19937_64 rng(K);
  std::uniform_int_distribution<std::size_t> pick(0, K - 1);
  for (std::size_t t = 0; t < 1024; ++t)
    for (std::size_t c = 0; c < K; ++c) x[t * K + c] += 0.5f * x[t * K + pick(rng) % K];
  ActivationStats st(K, true);
  st.add_batch(MatrixView<const float>(x.data(), 1024, K));
  h = std::make_unique<GptqHessian>(gptq_hessian(st));
  return *h;
}

const std::vector<float>& weights(std::size_t N, std::size_t K) {
  static std::map<std::pair<std::size_t, std::size_t>, std::vector<float>> cache;
  auto& w = cache[{N, K}];
  if (!w.empty()) return w;
  std::mt19937_64 rng(N * 131 + K);
  std::student_t_distribution<float> t(4.0f);
  w.resize(N * K);
  for (auto& v : w) v = 0.02f * t(rng);
  return w;
}

void bm_gptq(benchmark::State& st, std::size_t N, std::size_t K, std::size_t threads) {
  const GptqHessian& h = hessian(K);
  const std::vector<float>& w = weights(N, K);
  ThreadPool pool(threads);
  GptqOptions o;
  if (threads > 1) o.parallel_for = pool.hook();
  const UniformFormat f{4, 128, Symmetry::symmetric, ScaleType::f16};
  for (auto _ : st) {
    UniformWeights q = gptq_quantize_uniform(MatrixView<const float>(w.data(), N, K), h, f, o);
    benchmark::DoNotOptimize(q.codes.data());
  }
}

void bm_prepare(benchmark::State& st, std::size_t K) {
  const GptqHessian& h = hessian(K);
  for (auto _ : st) {
    detail::GptqFactor f = detail::gptq_factor(h, GptqOptions{}, "bench");
    benchmark::DoNotOptimize(f.U.data());
  }
}

void register_benchmarks() {
  benchmark::RegisterBenchmark("gptq/prepare-H/K:4096", [](benchmark::State& st) { bm_prepare(st, 4096); })
      ->UseRealTime()->Unit(benchmark::kMillisecond)->Iterations(3);
  for (std::size_t N : {4096, 11008})
    for (std::size_t threads : {1, 2}) {
      const std::string name = "gptq/int4-sym-g128/N:" + std::to_string(N) + "/K:4096/threads:" + std::to_string(threads);
      benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& st) { bm_gptq(st, N, 4096, threads); })
          ->UseRealTime()->Unit(benchmark::kMillisecond)->Iterations(3);
    }
}

}  // namespace

int main(int argc, char** argv) {
  register_benchmarks();
  return rankq::bench::run_registered_benchmarks(argc, argv);
}
