// benchmarks/bench_codebook.cpp — LCQ fit time and the codebook W4A8 kernel next to the uniform W4A8 kernel.
//  lcq_fit/bits:{3,4}/rank:{2,4}/N:{4096,11008}/K:4096: RTN init + ranks 1..k of alternating least squares, group 128,
//    D = 1, one thread. Counters: alternating iterations in total, final and RTN objective relative to ‖W‖².
//  codebook/<path>/bits:4/rank:{1,2,4}/M/N/K/threads and w4a8/<path>/M/N/K/threads: float activations in (quantized
//    per token per call, as w4a8_linear), float outputs; the shapes, token counts, counters (GB/s = packed weight
//    bytes read per second, GOP/s = 2·M·N·K per second) and cold-weight rotation (copies totalling >= 512 MiB used
//    round-robin) of bench_kernels.cpp. w4a8 is bench_kernels' headline format (int4 symmetric g128, f16 scales).
//    The kernels do not depend on the values, so the codebook weights are random (indices, S, B, V).
//    2- and 3-bit indices run in the same 4-bit container, so bits:4 stands for all of them.
// Default run: every fit, kernels at M ∈ {1, 8, 32, 128, 512} on every supported non-scalar path (rank 1 and 4 at
// M = 1 only, threads:2 on the best path only). Results and commands: docs/lcq.md §7.
#include <benchmark/benchmark.h>
#include <rankq/kernels/codebook_kernel.hpp>
#include <rankq/algorithms/lcq.hpp>
#include <rankq/kernels/w4a8.hpp>

#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "bench_common.hpp"
#include "bench_w4a8.hpp"

using namespace rankq;

namespace {

using namespace rankq::bench;

// ---- fit time ----------------------------------------------------------------------------------------------

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
  LcqOptions o;
  o.bits = bits;
  o.rank = rank;
  o.group_size = 128;
  o.threads = 1;
  LcqReport report;
  for (auto _ : state) {
    CodebookWeights q = fit_lcq(MatrixView<const float>(w.data(), N, K), o, &report);
    benchmark::DoNotOptimize(q.S.data());
  }
  std::size_t iterations = 0;
  for (const auto& h : report.iteration_objectives) iterations += h.size() - 1;
  state.counters["alt_iterations"] = static_cast<double>(iterations);
  state.counters["rel_objective"] = report.final_objective / report.weighted_norm;
  state.counters["rtn_rel_objective"] = report.rtn_objective / report.weighted_norm;
  state.counters["weights_per_s"] = benchmark::Counter(static_cast<double>(N * K), benchmark::Counter::kIsRate);
}

// ---- kernels (bench_kernels.cpp's method) ------------------------------------------------------------------

/// The rotation set (bench_common.hpp: cold_copies) of one packed N x K rank-k codebook matrix (random indices,
/// S, B, V; 4-bit, g128).
const std::vector<PackedCodebook>& codebook_set(std::size_t N, std::size_t K, unsigned rank) {
  return cold_copies(std::make_tuple(N, K, rank), [&] {
    CodebookWeights w = make_codebook_weights(CodebookFormat{4, 128, rank, false}, N, K);
    std::mt19937_64 rng(N * 31 + K + rank);
    for (auto& b : w.indices) b = static_cast<std::uint8_t>(rng());
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (auto& v : w.V) v = u(rng);
    for (auto& s : w.S) s = 0.01f * u(rng);
    for (auto& b : w.B) b = 0.01f * u(rng);
    return pack_codebook(w);
  });
}

/// Quantize activations on `path` (per token int8) + codebook_gemm; weights rotate.
void bm_codebook(benchmark::State& st, KernelPath path, unsigned rank, std::size_t M, Shape s, std::size_t threads) {
  if (!path_supported(path)) return st.SkipWithError("path not supported on this CPU");
  const std::vector<PackedCodebook>& w = codebook_set(s.N, s.K, rank);
  const auto x = activations(M, s.K);
  std::vector<float> y(M * s.N);
  QuantizedActivations scratch;
  rotate_weights(st, w, path, M, s, threads, nullptr, y.data(), [&](const PackedCodebook& p, const W4A8Options& o) {
    quantize_activations(MatrixView<const float>(x.data(), M, s.K), ActivationFormat{}, scratch, p.padded, path);
    codebook_gemm(scratch, p, MatrixView<float>(y.data(), M, s.N), o);
  });
}

// ---- registration ------------------------------------------------------------------------------------------

void add(const std::string& name, std::function<void(benchmark::State&)> fn, benchmark::TimeUnit unit) {
  benchmark::RegisterBenchmark(name.c_str(), [fn](benchmark::State& st) { fn(st); })->UseRealTime()->Unit(unit);
}

std::string shape_name(std::size_t M, Shape s) {
  return "M:" + std::to_string(M) + "/N:" + std::to_string(s.N) + "/K:" + std::to_string(s.K);
}

void register_benchmarks() {
  for (std::size_t N : {std::size_t(4096), std::size_t(11008)})
    for (unsigned bits : {4u, 3u})
      for (unsigned rank : {2u, 4u}) {
        const std::string name = "lcq_fit/bits:" + std::to_string(bits) + "/rank:" + std::to_string(rank) +
                                 "/N:" + std::to_string(N) + "/K:4096";
        benchmark::RegisterBenchmark(name.c_str(), lcq_fit, bits, rank, N, std::size_t(4096))->Unit(benchmark::kSecond);
      }

  std::vector<KernelPath> paths;
  for (KernelPath p : codebook_supported_paths())
    if (p != KernelPath::scalar) paths.push_back(p);
  if (paths.empty()) paths.push_back(KernelPath::scalar);
  const KernelPath best = paths.back();
  // Grouped by weight set (shape, rank) so each 512 MiB rotation set is built once; w4a8 keeps its own set.
  for (const Shape& s : kShapes)
    for (unsigned rank : {2u, 1u, 4u})
      for (std::size_t M : kTokenCounts) {
        if (rank != 2 && M != 1) continue;
        for (KernelPath p : paths)
          for (std::size_t threads : {1, 2}) {
            if (threads == 2 && p != best) continue;
            const std::string tail = shape_name(M, s) + "/threads:" + std::to_string(threads);
            add(std::string("codebook/") + to_string(p) + "/bits:4/rank:" + std::to_string(rank) + "/" + tail,
                [=](auto& st) { bm_codebook(st, p, rank, M, s, threads); }, benchmark::kMicrosecond);
            if (rank == 2)
              add(std::string("w4a8/") + to_string(p) + "/" + tail, [=](auto& st) { bm_w4a8(st, p, 128, M, s, threads); },
                  benchmark::kMicrosecond);
          }
      }
}

}  // namespace

int main(int argc, char** argv) {
  register_benchmarks();
  return rankq::bench::run_registered_benchmarks(argc, argv);
}
