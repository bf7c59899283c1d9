// L²QER benchmarks: the whole fitting pipeline (MXINT4 quantize, error, scale, truncated SVD, 8-bit A/B) with exact
// vs randomized SVD, and the fused decode overhead of a rank-k correction over plain W4A8 with cold weights.
// Method, results and the commands that reproduce them: docs/lqer.md §8.
#include <benchmark/benchmark.h>

#include <Eigen/Dense>
#include <rankq/algorithms/calibration.hpp>
#include <rankq/kernels/lowrank_kernel.hpp>
#include <rankq/algorithms/lqer.hpp>
#include <rankq/kernels/w4a8.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "bench_common.hpp"

using namespace rankq;

namespace {

// ---- the fitting pipeline ----------------------------------------------------------------------------------------

/// A synthetic layer: heavy-tailed weights (Student-t, 4 dof) and the L²QER scale of activations with outlier
/// channels (every 37th channel x20), 4 calibration batches of 64 tokens.
struct Layer {
  std::size_t N = 0, K = 0;
  std::vector<float> w, scale;
};

const Layer& layer(std::size_t N, std::size_t K) {
  static std::unique_ptr<Layer> cache;
  if (cache && cache->N == N && cache->K == K) return *cache;
  cache = std::make_unique<Layer>();
  cache->N = N, cache->K = K;
  std::mt19937_64 rng(N * 131 + K);
  std::student_t_distribution<float> t(4.0f);
  cache->w.resize(N * K);
  for (auto& v : cache->w) v = 0.02f * t(rng);
  std::normal_distribution<float> g(0.0f, 1.0f);
  ActivationStats st(K);
  std::vector<float> x(64 * K);
  for (int b = 0; b < 4; ++b) {
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = g(rng) * ((i % K) % 37 == 5 ? 20.0f : 1.0f);
    st.add_batch(MatrixView<const float>(x.data(), 64, K));
  }
  cache->scale = l2qer_scale(st);
  return *cache;
}

const MxFormat kWeightFormat{4, 16, MxSemantics::lqer};  // the paper's W4: MXINT4, blocks of 16 along K

/// ‖E_s‖_F² − Σ_{i<=k} σ_i² of the exact SVD, for every k at once, from the eigenvalues of the (double) Gram
/// matrix E_s·E_sᵀ (K x K): the exact truncation's residual without a full SVD of an 11008 x 4096 matrix.
const std::vector<double>& exact_residuals(std::size_t N, std::size_t K) {
  static std::map<std::pair<std::size_t, std::size_t>, std::vector<double>> cache;
  auto it = cache.find({N, K});
  if (it != cache.end()) return it->second;
  const Layer& l = layer(N, K);
  const UniformWeights q = to_uniform(quantize_mxint(MatrixView<const float>(l.w.data(), N, K), kWeightFormat));
  const std::vector<float> deq = dequantize(q);
  Eigen::MatrixXd es(static_cast<Eigen::Index>(K), static_cast<Eigen::Index>(N));  // paper orientation, K x N
  for (std::size_t n = 0; n < N; ++n)
    for (std::size_t k = 0; k < K; ++k)
      es(Eigen::Index(k), Eigen::Index(n)) = (double(l.w[n * K + k]) - deq[n * K + k]) * l.scale[k];
  const Eigen::MatrixXd gram = es * es.transpose();
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(gram, Eigen::EigenvaluesOnly);
  const Eigen::VectorXd ev = eig.eigenvalues().reverse();  // descending σ²
  std::vector<double> residual(K + 1);
  double total = es.squaredNorm();
  residual[0] = total;
  for (std::size_t k = 1; k <= K; ++k) residual[k] = std::max(0.0, residual[k - 1] - ev(Eigen::Index(k - 1)));
  return cache[{N, K}] = residual;
}

/// quantize_lqer (MXINT4 weights, L²QER scale, MXINT8 factors) single-threaded. Counter `error_vs_exact`: the
/// scaled residual ‖diag(s)(E − A_k B_k)‖_F of this SVD divided by that of the exact truncation (1 = optimal).
void bm_pipeline(benchmark::State& st, SvdOptions svd, std::size_t N, std::size_t K, std::size_t k) {
  const Layer& l = layer(N, K);
  LqerOptions o;
  o.rank = k;
  o.svd = svd;
  double residual = 0;
  for (auto _ : st) {
    LqerWeights r = quantize_lqer(MatrixView<const float>(l.w.data(), N, K), kWeightFormat, l.scale, o);
    double kept = 0;
    for (double s : r.correction.singular_values) kept += s * s;
    residual = std::max(0.0, r.correction.scaled_error_norm_squared - kept);
    benchmark::DoNotOptimize(r.correction.a_t.codes.data());
  }
  const double exact = exact_residuals(N, K)[k];  // after the timed loop
  st.counters["error_vs_exact"] = std::sqrt(residual / exact);
}

// ---- fused decode overhead --------------------------------------------------------------------------------------

/// Copies (>= 512 MiB in all) of one packed N x K W4A8 matrix and of one packed rank-k correction, used
/// round-robin so that every call reads its weights from memory (cold), as bench_kernels.cpp does.
struct DecodeSet {
  std::size_t N = 0, K = 0, rank = 0, group = 0;
  std::vector<PackedW4> w;
  std::vector<PackedLowRank> lr;
};

const DecodeSet& decode_set(std::size_t N, std::size_t K, std::size_t rank, std::size_t group) {
  static std::unique_ptr<DecodeSet> cache;
  if (cache && cache->N == N && cache->K == K && cache->rank == rank && cache->group == group) return *cache;
  cache.reset();
  std::mt19937_64 rng(N * 31 + K + rank);
  auto w = make_uniform_weights(UniformFormat{4, group, Symmetry::symmetric, ScaleType::f16}, N, K);
  for (auto& b : w.codes) b = static_cast<std::uint8_t>(rng());
  std::uniform_real_distribution<float> scale(0.001f, 0.02f);
  for (auto& s : w.scales) s = scale(rng);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> a(rank * K), b(N * rank);
  for (auto& v : a) v = g(rng);
  for (auto& v : b) v = 0.01f * g(rng);
  const MxFormat f8{8, 16, MxSemantics::lqer};
  const PackedLowRank lr = pack_lowrank(to_uniform(quantize_mxint(MatrixView<const float>(a.data(), rank, K), f8)),
                                        to_uniform(quantize_mxint(MatrixView<const float>(b.data(), N, rank), f8)));
  auto set = std::make_unique<DecodeSet>();
  set->N = N, set->K = K, set->rank = rank, set->group = group;
  const PackedW4 pw = pack_w4(w);
  const std::size_t copies = bench::copies_for(pw.size_bytes());
  for (std::size_t i = 0; i < copies; ++i) set->w.push_back(pw), set->lr.push_back(lr);
  cache = std::move(set);
  return *cache;
}

/// M = 1 decode: w4a8_linear (rank 0) or lqer_linear (rank k) with per-token int8 activations, cold weights.
void bm_decode(benchmark::State& st, KernelPath path, std::size_t N, std::size_t K, std::size_t rank,
               std::size_t group, std::size_t threads) {
  if (!path_supported(path)) return st.SkipWithError("path not supported on this CPU");
  const DecodeSet& s = decode_set(N, K, rank == 0 ? 32 : rank, group);
  std::vector<float> x(K), y(N);
  std::mt19937_64 rng(K);
  std::normal_distribution<float> g(0.0f, 1.0f);
  for (std::size_t i = 0; i < K; ++i) x[i] = g(rng) * (i % 37 == 5 ? 20.0f : 1.0f);
  QuantizedActivations scratch;
  ThreadPool pool(threads);
  const ParallelFor hook = pool.hook();
  const W4A8Options o{path, threads > 1 ? &hook : nullptr, nullptr};
  std::size_t i = 0;
  for (auto _ : st) {
    const std::size_t c = i++ % s.w.size();
    if (rank == 0)
      w4a8_linear(MatrixView<const float>(x.data(), 1, K), ActivationFormat{}, s.w[c], MatrixView<float>(y.data(), 1, N), scratch, o);
    else
      lqer_linear(MatrixView<const float>(x.data(), 1, K), ActivationFormat{}, s.w[c], s.lr[c],
                  MatrixView<float>(y.data(), 1, N), scratch, o);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  const double bytes = double(s.w[0].size_bytes()) + (rank ? double(s.lr[0].size_bytes()) : 0.0);
  const double ops = 2.0 * double(N) * double(K) + (rank ? 2.0 * double(rank) * double(N + K) : 0.0);
  bench::set_counters(st, bytes, ops);
}

/// The same two calls back to back in every iteration (w4a8_linear on copy c, lqer_linear on copy c + 1, both
/// cold), each timed with steady_clock: the median of the per-pair ratios is robust to the load of a shared
/// machine drifting between separate benchmarks. Counters: plain_us, lqer_us (medians), overhead_% (median ratio).
void bm_decode_paired(benchmark::State& st, KernelPath path, std::size_t group) {
  if (!path_supported(path)) return st.SkipWithError("path not supported on this CPU");
  const std::size_t N = 4096, K = 4096;
  const DecodeSet& s = decode_set(N, K, 32, group);
  std::vector<float> x(K), y(N);
  std::mt19937_64 rng(K);
  std::normal_distribution<float> g(0.0f, 1.0f);
  for (std::size_t i = 0; i < K; ++i) x[i] = g(rng) * (i % 37 == 5 ? 20.0f : 1.0f);
  QuantizedActivations scratch;
  const W4A8Options o{path, nullptr, nullptr};
  std::vector<double> plain, lqer, ratio;
  std::size_t i = 0;
  using clock = std::chrono::steady_clock;
  for (auto _ : st) {
    const std::size_t c = (2 * i++) % s.w.size();
    const auto t0 = clock::now();
    w4a8_linear(MatrixView<const float>(x.data(), 1, K), ActivationFormat{}, s.w[c], MatrixView<float>(y.data(), 1, N), scratch, o);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
    const auto t1 = clock::now();
    const std::size_t d = (c + 1) % s.w.size();
    lqer_linear(MatrixView<const float>(x.data(), 1, K), ActivationFormat{}, s.w[d], s.lr[d], MatrixView<float>(y.data(), 1, N), scratch, o);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
    const auto t2 = clock::now();
    plain.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
    lqer.push_back(std::chrono::duration<double, std::micro>(t2 - t1).count());
    ratio.push_back(lqer.back() / plain.back());
  }
  auto median = [](std::vector<double> v) {
    std::nth_element(v.begin(), v.begin() + std::ptrdiff_t(v.size() / 2), v.end());
    return v[v.size() / 2];
  };
  if (plain.empty()) return;
  st.counters["plain_us"] = median(plain);
  st.counters["lqer_us"] = median(lqer);
  st.counters["overhead_%"] = 100.0 * (median(ratio) - 1.0);
}

/// iterations > 0: exactly that many; min_time > 0: at least that many seconds of iterations (the randomized
/// pipeline takes ~1 s, so the default 0.5 s would time a single call, which includes first-use costs of fresh
/// memory — page faults of the 180 MB error buffer's huge pages; see docs/lqer.md §8.2).
void add(const std::string& name, std::function<void(benchmark::State&)> fn, int iterations = 0, double min_time = 0) {
  auto* b = benchmark::RegisterBenchmark(name.c_str(), [fn](benchmark::State& st) { fn(st); })->UseRealTime()->Unit(benchmark::kMillisecond);
  if (iterations > 0) b->Iterations(iterations);
  if (min_time > 0) b->MinTime(min_time);
}

void register_benchmarks() {
  // Pipeline with the default SvdOptions (block Krylov, q = 2, blocks of k + 10). The exact SVD is a full
  // BDCSVD in double (minutes for 11008 x 4096): one iteration each.
  for (std::size_t N : {4096, 11008})
    for (SvdMethod m : {SvdMethod::randomized, SvdMethod::exact})
      for (std::size_t k : {16, 32, 64}) {
        const std::string name = std::string("l2qer/svd:") + to_string(m) + "/N:" + std::to_string(N) + "/K:4096/rank:" + std::to_string(k);
        SvdOptions svd;
        svd.method = m;
        add(name, [=](benchmark::State& st) { bm_pipeline(st, svd, N, 4096, k); }, m == SvdMethod::exact ? 1 : 0,
            m == SvdMethod::exact ? 0.0 : 3.0);
      }
  // Accuracy/time trade-off of the randomized SVD on the headline shape: fewer / more Krylov blocks, wider blocks.
  for (auto [q, p] : {std::pair<std::size_t, std::size_t>{1, 10}, {3, 10}, {2, 22}}) {
    SvdOptions svd;
    svd.method = SvdMethod::randomized;
    svd.power_iterations = q;
    svd.oversampling = p;
    add("l2qer/svd:randomized/N:11008/K:4096/rank:32/q:" + std::to_string(q) + "/p:" + std::to_string(p),
        [=](benchmark::State& st) { bm_pipeline(st, svd, 11008, 4096, 32); }, 0, 3.0);
  }
  // Decode overhead: plain W4A8 vs W4A8 + rank-32 correction, per supported SIMD path, 1 and 2 threads.
  for (std::size_t group : {128, 32})
    for (KernelPath p : supported_paths()) {
      if (p == KernelPath::scalar) continue;
      for (std::size_t threads : {1, 2})
        for (std::size_t rank : {0, 32}) {
          const std::string name = std::string(rank ? "decode/lqer-rank:32/" : "decode/w4a8/") + "g" + std::to_string(group) + "/" +
                                   to_string(p) + "/M:1/N:4096/K:4096/threads:" + std::to_string(threads);
          auto* b = benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& st) { bm_decode(st, p, 4096, 4096, rank, group, threads); });
          b->UseRealTime()->Unit(benchmark::kMicrosecond);
        }
      const std::string paired = "decode/paired/g" + std::to_string(group) + "/" + to_string(p) + "/M:1/N:4096/K:4096/rank:32/threads:1";
      benchmark::RegisterBenchmark(paired.c_str(), [=](benchmark::State& st) { bm_decode_paired(st, p, group); })
          ->UseRealTime()->Unit(benchmark::kMicrosecond)->Iterations(400);
    }
}

}  // namespace

int main(int argc, char** argv) {
  register_benchmarks();
  return rankq::bench::run_registered_benchmarks(argc, argv);
}
