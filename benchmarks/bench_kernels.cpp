// W4A8 kernel benchmarks on every supported path (decode with cold weights, prefill) next to a memory-read roofline,
// Eigen fp32 GEMV/GEMM and the scalar path. Default run: a bounded headline subset; `--full`: the whole sweep.
// Method, results and the command that reproduces them: docs/performance.md.
#include <benchmark/benchmark.h>

#include <Eigen/Dense>
#include <rankq/kernels/w4a8.hpp>
#include <rankq/kernels/w8a8_kernel.hpp>

#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "rankq/detail/kernels/stream_prefetch.hpp"
#include "rankq/detail/x86_targets.hpp"

#include "bench_common.hpp"
#include "bench_w4a8.hpp"
#include "machine_limits.hpp"

using namespace rankq;

namespace {

using namespace rankq::bench;

constexpr std::size_t kMainGroup = 128;                     // 4-bit symmetric, f16 scales, group 128


// ---- workloads (one of each kind cached at a time, so the sweep never holds more than ~1.5 GB) -------------

/// Rotation sets (bench_common.hpp: cold_copies) of one packed 8-bit N x K matrix (int8 g128 symmetric f16 scales,
/// random codes and scales) and of one fp32 one; the 4-bit one is bench_w4a8.hpp's packed_w4_set.
const std::vector<PackedW8>& packed_w8_set(std::size_t N, std::size_t K) {
  return cold_copies(std::make_pair(N, K), [&] {
    return pack_w8(random_uniform_weights(UniformFormat{8, kMainGroup, Symmetry::symmetric, ScaleType::f16}, N, K,
                                          N * 37 + K, 0.0001f, 0.002f));
  });
}

using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

const std::vector<RowMajor>& dense_set(std::size_t N, std::size_t K) {
  return cold_copies(std::make_pair(N, K), [&] {
    return RowMajor(RowMajor::Random(static_cast<Eigen::Index>(N), static_cast<Eigen::Index>(K)) * 0.02f);
  });
}


// ---- benchmarks --------------------------------------------------------------------------------------------

/// w8a8_linear: like bm_w4a8 with 8-bit weights (int8 g128 symmetric, f16 scales).
void bm_w8a8(benchmark::State& st, KernelPath path, std::size_t M, Shape s, std::size_t threads) {
  if (!path_supported(path)) return st.SkipWithError("path not supported on this CPU");
  const std::vector<PackedW8>& w = packed_w8_set(s.N, s.K);
  const auto x = activations(M, s.K);
  std::vector<float> y(M * s.N);
  QuantizedActivations scratch;
  Workspace workspace;
  rotate_weights(st, w, path, M, s, threads, &workspace, y.data(), [&](const PackedW8& wi, const W4A8Options& o) {
    w8a8_linear(MatrixView<const float>(x.data(), M, s.K), ActivationFormat{}, wi, MatrixView<float>(y.data(), M, s.N),
                scratch, o);
  });
}

/// Activation quantization alone (per token int8), on a path.
void bm_quantize(benchmark::State& st, KernelPath path, std::size_t M, std::size_t K) {
  if (!path_supported(path)) return st.SkipWithError("path not supported on this CPU");
  const auto x = activations(M, K);
  QuantizedActivations q;
  for (auto _ : st) {
    quantize_activations(MatrixView<const float>(x.data(), M, K), ActivationFormat{}, q, 0, path);
    benchmark::DoNotOptimize(q.values.data());
    benchmark::ClobberMemory();
  }
  set_counters(st, double(M * K * sizeof(float)), 0.0);
}

/// Eigen fp32: y = W x (M = 1) or Y = X W^T; W rotates like the packed weights.
void bm_eigen(benchmark::State& st, std::size_t M, Shape s) {
  const std::vector<RowMajor>& w = dense_set(s.N, s.K);
  const auto xv = activations(M, s.K);
  const Eigen::Map<const RowMajor> x(xv.data(), static_cast<Eigen::Index>(M), static_cast<Eigen::Index>(s.K));
  RowMajor y(static_cast<Eigen::Index>(M), static_cast<Eigen::Index>(s.N));
  std::size_t i = 0;
  for (auto _ : st) {
    const RowMajor& wi = w[i++ % w.size()];
    if (M == 1)
      y.row(0).transpose().noalias() = wi * x.row(0).transpose();
    else
      y.noalias() = x * wi.transpose();
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  set_counters(st, double(s.N * s.K * sizeof(float)), 2.0 * double(M) * double(s.N) * double(s.K));
}

// kPageAhead: also touch the page 16 KiB ahead once per KiB, as the decode kernels do per group (stream_prefetch.hpp).
#if RANKQ_X86_PATHS
template <bool kPageAhead>
RANKQ_TARGET_AVX2 std::uint64_t sum_bytes(const std::uint8_t* p, std::size_t n) {  // n: multiple of 1024
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  for (std::size_t i = 0; i < n; i += 128) {
    if (kPageAhead && i % 1024 == 0) detail::prefetch_page_ahead(p + i);
    a0 = _mm256_add_epi64(a0, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i)));
    a1 = _mm256_add_epi64(a1, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
    a2 = _mm256_add_epi64(a2, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
    a3 = _mm256_add_epi64(a3, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
  }
  alignas(32) std::uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3)));
  return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}
#else
template <bool kPageAhead>
std::uint64_t sum_bytes(const std::uint8_t* p, std::size_t n) {
  std::uint64_t s = 0;
  for (std::size_t i = 0; i < n; i += 8) {
    if (kPageAhead && i % 1024 == 0) detail::prefetch_page_ahead(p + i);
    std::uint64_t v;
    std::memcpy(&v, p + i, 8);
    s += v;
  }
  return s;
}
#endif

/// The roofline for decode: a vectorized sum over 512 MiB (threads split it), GB/s of bytes read. kPageAhead: the
/// same sum with the kernels' page-ahead hint — what one stream reaches once the hardware prefetchers start every
/// 4 KiB page early (memory_read is the reference; this row shows the headroom above it).
template <bool kPageAhead>
void bm_memory_read(benchmark::State& st, std::size_t threads) {
  AlignedBuffer<std::uint8_t> buf(kColdBytes);
  for (std::size_t i = 0; i < buf.size(); i += 4096) buf[i] = static_cast<std::uint8_t>(i >> 12);
  ThreadPool pool(threads);
  const std::size_t chunks = 64, chunk = kColdBytes / chunks;
  std::vector<std::uint64_t> sums(chunks);
  for (auto _ : st) {
    pool.parallel_for(chunks, [&](std::size_t c0, std::size_t c1) {
      for (std::size_t c = c0; c < c1; ++c) sums[c] = sum_bytes<kPageAhead>(buf.data() + c * chunk, chunk);
    });
    benchmark::DoNotOptimize(sums.data());
  }
  set_counters(st, double(kColdBytes), 0.0);
}

// ---- registration ------------------------------------------------------------------------------------------

std::string shape_name(std::size_t M, Shape s) {
  return "M:" + std::to_string(M) + "/N:" + std::to_string(s.N) + "/K:" + std::to_string(s.K);
}

void add(const std::string& name, std::function<void(benchmark::State&)> fn) {
  benchmark::RegisterBenchmark(name.c_str(), [fn](benchmark::State& st) { fn(st); })
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);
}

void register_benchmarks(bool full) {
  std::vector<KernelPath> paths;
  for (KernelPath p : supported_paths())
    if (p != KernelPath::scalar) paths.push_back(p);
  const KernelPath best = best_supported_path();
  register_machine_limits();
  for (std::size_t threads : {1, 2}) {
    add("memory_read/threads:" + std::to_string(threads), [=](auto& st) { bm_memory_read<false>(st, threads); });
    add("memory_read_page_ahead/threads:" + std::to_string(threads), [=](auto& st) { bm_memory_read<true>(st, threads); });
  }

  const Shape headline{11008, 4096};
  // Grouped by weight set (format, shape) so each 512 MiB rotation set is built once.
  for (std::size_t group : {kMainGroup, std::size_t(32)})
    for (const Shape& s : kShapes) {
      if (!full && (s.N != headline.N || s.K != headline.K)) continue;
      for (std::size_t M : kTokenCounts) {
        if (!full && M != 1 && M != 128) continue;
        for (KernelPath p : paths)
          for (std::size_t threads : {1, 2}) {
            if (!full && threads == 2 && p != best) continue;
            const std::string name = std::string(group == kMainGroup ? "w4a8/" : "w4a8-g32/") + to_string(p) + "/" +
                                     shape_name(M, s) + "/threads:" + std::to_string(threads);
            add(name, [=](auto& st) { bm_w4a8(st, p, group, M, s, threads); });
          }
      }
    }
  // The page-ahead hint forced off and on (its default depends on the CPU: docs/kernels.md §3), decode only.
  for (KernelPath p : paths)
    for (int on : {0, 1})
      add("w4a8-page-ahead:" + std::string(on ? "on/" : "off/") + to_string(p) + "/" + shape_name(1, headline) +
              "/threads:1",
          [=](auto& st) { bm_w4a8(st, p, kMainGroup, 1, headline, 1, on); });
  // 8-bit weights (W8A8), the w4a8 rows' shapes and thread counts.
  for (const Shape& s : kShapes) {
    if (!full && (s.N != headline.N || s.K != headline.K)) continue;
    for (std::size_t M : kTokenCounts) {
      if (!full && M != 1 && M != 128) continue;
      for (KernelPath p : paths)
        for (std::size_t threads : {1, 2}) {
          if (!full && threads == 2 && p != best) continue;
          add("w8a8/" + std::string(to_string(p)) + "/" + shape_name(M, s) + "/threads:" + std::to_string(threads),
              [=](auto& st) { bm_w8a8(st, p, M, s, threads); });
        }
    }
  }
  for (const Shape& s : kShapes) {
    if (!full && (s.N != headline.N || s.K != headline.K)) continue;
    for (std::size_t M : kTokenCounts) {
      if (!full && M != 1 && M != 128) continue;
      add("eigen_f32/" + shape_name(M, s) + "/threads:1", [=](auto& st) { bm_eigen(st, M, s); });
    }
  }
  // The scalar path at small shapes only (it is ~100x slower).
  for (std::size_t M : {1, 8}) {
    if (!full && M != 1) continue;
    const Shape s{4096, 4096};
    add("w4a8/scalar/" + shape_name(M, s) + "/threads:1", [=](auto& st) { bm_w4a8(st, KernelPath::scalar, kMainGroup, M, s, 1); });
  }
  for (KernelPath p : supported_paths())
    for (std::size_t M : {1, 128})
      add("quantize/" + std::string(to_string(p)) + "/M:" + std::to_string(M) + "/K:4096",
          [=](auto& st) { bm_quantize(st, p, M, 4096); });
}

}  // namespace

int main(int argc, char** argv) {
  bool full = false;
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--full") == 0)
      full = true;
    else
      argv[kept++] = argv[i];
  }
  argc = kept;
  register_benchmarks(full);
  return rankq::bench::run_registered_benchmarks(argc, argv);
}
