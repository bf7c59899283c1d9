// rankq's W4A8 kernel next to ggml's 4-bit CPU matmul (Q4_0 and Q4_K weights, float activations quantized inside the
// call), same shapes, same thread counts, weights rotated over >= 512 MiB for both, in one binary so the ratios come
// from one run (issue #12 item 4). Built only when the user passes a ggml source tree:
//   cmake -DRANKQ_GGML_SOURCE_DIR=/path/to/ggml ...   (benchmarks/CMakeLists.txt; scripts/bench-ggml.sh)
// Before any benchmark runs, a correctness guard multiplies the same float weights and activations through every
// measured call on a small shape and stops the program if a result is not within 4-bit quantization error of fp32.
// Rows, method and results: docs/performance.md "Side by side with ggml".
#include <benchmark/benchmark.h>

#include <ggml-alloc.h>
#include <ggml-backend.h>
#include <ggml-cpu.h>
#include <ggml.h>

#include <rankq/kernels/w4a8.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "bench_common.hpp"

using namespace rankq;

namespace {

using namespace rankq::bench;

[[noreturn]] void fail(const std::string& what) { throw std::runtime_error("rankq_bench_ggml: " + what); }

/// N x K float weights, Gaussian (sigma 0.02): the matrix both libraries quantize, each to its own format.
std::vector<float> float_weights(std::size_t N, std::size_t K) {
  std::mt19937_64 rng(N * 131 + K);
  std::normal_distribution<float> g(0.0f, 0.02f);
  std::vector<float> w(N * K);
  for (float& v : w) v = g(rng);
  return w;
}

// ---- ggml ---------------------------------------------------------------------------------------------------

/// The CPU backend's repacking buffer type ("CPU_REPACK": Q4_0 / Q4_K weights rearranged at load time into the
/// interleaved layouts of its gemv/gemm kernels), found through ggml's public registry; nullptr if this ggml has none.
ggml_backend_buffer_type_t ggml_repack_buffer_type() {
  ggml_backend_dev_t dev = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
  if (dev == nullptr) fail("ggml has no CPU device");
  void* proc = ggml_backend_reg_get_proc_address(ggml_backend_dev_backend_reg(dev), "ggml_backend_dev_get_extra_bufts");
  if (proc == nullptr) return nullptr;
  ggml_backend_dev_get_extra_bufts_t get_extra_bufts;
  std::memcpy(&get_extra_bufts, &proc, sizeof proc);
  for (ggml_backend_buffer_type_t* b = get_extra_bufts(dev); b != nullptr && *b != nullptr; ++b)
    if (std::strcmp(ggml_backend_buft_name(*b), "CPU_REPACK") == 0) return *b;
  return nullptr;
}

/// The CPU features ggml's CPU backend was compiled with ("AVX2 FMA AVX512 ... REPACK"), for the report's context.
std::string ggml_cpu_features() {
  ggml_backend_dev_t dev = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
  ggml_backend_reg_t reg = ggml_backend_dev_backend_reg(dev);
  void* proc = ggml_backend_reg_get_proc_address(reg, "ggml_backend_get_features");
  if (proc == nullptr) return "unknown";
  ggml_backend_get_features_t get_features;
  std::memcpy(&get_features, &proc, sizeof proc);
  std::string out;
  for (ggml_backend_feature* f = get_features(reg); f != nullptr && f->name != nullptr; ++f)
    if (std::strcmp(f->value, "1") == 0) out += (out.empty() ? "" : " ") + std::string(f->name);
  return out;
}

/// ggml's log, filtered: its debug lines are dropped except the one naming the layout a weight tensor is repacked to
/// ("repack tensor ... with q4_0_8x8"), kept in g_repack_layout; everything else goes to stderr as ggml would print it.
std::string g_repack_layout;
void ggml_log(ggml_log_level level, const char* text, void*) {
  if (level == GGML_LOG_LEVEL_DEBUG) {
    if (const char* r = std::strstr(text, "repack tensor"))
      if (const char* with = std::strstr(r, " with ")) {
        g_repack_layout = with + 6;
        while (!g_repack_layout.empty() && (g_repack_layout.back() == '\n' || g_repack_layout.back() == ' '))
          g_repack_layout.pop_back();
      }
    return;
  }
  std::fputs(text, stderr);
}

/// `copies` ggml tensors holding one N x K float matrix quantized to `type` (ggml_quantize_chunk), in the repacking
/// buffer when ggml has a layout for this type and shape on this CPU, else in the plain CPU buffer.
struct GgmlWeights {
  ggml_type type = GGML_TYPE_Q4_0;
  std::size_t N = 0, K = 0;
  ggml_context* ctx = nullptr;
  ggml_backend_buffer_t buffer = nullptr;
  std::vector<ggml_tensor*> copies;
  std::string buffer_name;  ///< "CPU_REPACK" or "CPU"
  std::string layout;       ///< what the CPU backend runs: "CPU_REPACK q4_0_8x8" (repacked gemv/gemm) or "CPU q4_0"

  GgmlWeights(ggml_type t, const float* w, std::size_t n, std::size_t k, std::size_t count) : type(t), N(n), K(k) {
    std::vector<std::uint8_t> q(ggml_row_size(type, static_cast<std::int64_t>(K)) * N);
    ggml_quantize_chunk(type, w, q.data(), 0, static_cast<std::int64_t>(N), static_cast<std::int64_t>(K), nullptr);
    const ggml_init_params params{ggml_tensor_overhead() * count + 1024, nullptr, true};
    ctx = ggml_init(params);
    if (ctx == nullptr) fail("ggml_init failed for the weight tensors");
    for (std::size_t i = 0; i < count; ++i)
      copies.push_back(ggml_new_tensor_2d(ctx, type, static_cast<std::int64_t>(K), static_cast<std::int64_t>(N)));
    if (ggml_backend_buffer_type_t repack = ggml_repack_buffer_type()) {
      buffer = ggml_backend_alloc_ctx_tensors_from_buft(ctx, repack);
      if (buffer != nullptr && copies[0]->extra == nullptr) {  // no repacked layout for this type/shape/CPU
        ggml_backend_buffer_free(buffer);
        buffer = nullptr;
        for (ggml_tensor* c : copies) c->buffer = nullptr, c->data = nullptr;
      }
    }
    if (buffer == nullptr) buffer = ggml_backend_alloc_ctx_tensors_from_buft(ctx, ggml_backend_cpu_buffer_type());
    if (buffer == nullptr) fail("cannot allocate " + std::to_string(count) + " ggml weight tensors");
    buffer_name = ggml_backend_buft_name(ggml_backend_buffer_get_type(buffer));
    g_repack_layout.clear();
    for (ggml_tensor* c : copies) ggml_backend_tensor_set(c, q.data(), 0, q.size());  // repacks in CPU_REPACK
    if (buffer_name != "CPU_REPACK")
      layout = buffer_name + " " + ggml_type_name(type);
    else
      layout = buffer_name + " " + (g_repack_layout.empty() ? std::string("(layout not logged)") : g_repack_layout);
  }
  ~GgmlWeights() {
    ggml_backend_buffer_free(buffer);
    ggml_free(ctx);
  }
  GgmlWeights(const GgmlWeights&) = delete;
  GgmlWeights& operator=(const GgmlWeights&) = delete;
  std::size_t bytes() const { return ggml_nbytes(copies[0]); }
};

/// One single-op graph y = W_i x per weight copy over a shared M x K float input and M x N float output, computed
/// by a CPU backend with `threads` threads (ggml_backend_cpu_set_n_threads, its own thread pool): ggml_mul_mat quantizes x to the weight
/// type's activation type (Q8_0 for Q4_0, Q8_K for Q4_K) inside every call, then runs the repacked gemv (M < 4) /
/// gemm kernels, or the plain vec_dot path when the weights are not repacked.
class GgmlMatmul {
 public:
  GgmlMatmul(const GgmlWeights& w, std::size_t M, std::size_t threads) : M_(M), N_(w.N), K_(w.K) {
    const std::size_t n = w.copies.size();
    const ggml_init_params params{ggml_tensor_overhead() * (n + 1) + ggml_graph_overhead_custom(4, false) * n + 4096,
                                  nullptr, true};
    ctx_ = ggml_init(params);
    if (ctx_ == nullptr) fail("ggml_init failed for the graphs");
    x_ = ggml_new_tensor_2d(ctx_, GGML_TYPE_F32, static_cast<std::int64_t>(K_), static_cast<std::int64_t>(M_));
    for (ggml_tensor* wi : w.copies) {
      ggml_tensor* y = ggml_mul_mat(ctx_, wi, x_);
      ggml_cgraph* g = ggml_new_graph_custom(ctx_, 4, false);
      ggml_build_forward_expand(g, y);
      ys_.push_back(y);
      graphs_.push_back(g);
    }
    ggml_backend_buffer_type_t cpu = ggml_backend_cpu_buffer_type();
    const std::size_t align = ggml_backend_buft_get_alignment(cpu);
    const std::size_t x_bytes = (ggml_nbytes(x_) + align - 1) / align * align;
    io_ = ggml_backend_buft_alloc_buffer(cpu, x_bytes + ggml_nbytes(ys_[0]));
    if (io_ == nullptr) fail("cannot allocate the ggml input/output buffer");
    char* base = static_cast<char*>(ggml_backend_buffer_get_base(io_));
    bool ok = ggml_backend_tensor_alloc(io_, x_, base) == GGML_STATUS_SUCCESS;
    for (ggml_tensor* y : ys_) ok = ok && ggml_backend_tensor_alloc(io_, y, base + x_bytes) == GGML_STATUS_SUCCESS;
    if (!ok) fail("ggml_backend_tensor_alloc failed");
    backend_ = ggml_backend_cpu_init();
    if (backend_ == nullptr) fail("ggml_backend_cpu_init failed");
    ggml_backend_cpu_set_n_threads(backend_, static_cast<int>(threads));
    // A persistent thread pool, as an engine keeps one: without OpenMP, ggml would otherwise start and join its
    // threads in every call (with OpenMP the pool only holds per-thread state; OpenMP's team persists anyway).
    ggml_threadpool_params tp = ggml_threadpool_params_default(static_cast<int>(threads));
    threadpool_ = ggml_threadpool_new(&tp);
    if (threadpool_ == nullptr) fail("ggml_threadpool_new failed for " + std::to_string(threads) + " threads");
    ggml_backend_cpu_set_threadpool(backend_, threadpool_);
  }
  ~GgmlMatmul() {
    ggml_backend_free(backend_);
    ggml_threadpool_free(threadpool_);
    ggml_backend_buffer_free(io_);
    ggml_free(ctx_);
  }
  GgmlMatmul(const GgmlMatmul&) = delete;
  GgmlMatmul& operator=(const GgmlMatmul&) = delete;

  void set_input(const float* x) { ggml_backend_tensor_set(x_, x, 0, M_ * K_ * sizeof(float)); }
  void run(std::size_t copy) {
    if (ggml_backend_graph_compute(backend_, graphs_[copy % graphs_.size()]) != GGML_STATUS_SUCCESS)
      fail("ggml_backend_graph_compute failed");
  }
  void get_output(float* y) const { ggml_backend_tensor_get(ys_[0], y, 0, M_ * N_ * sizeof(float)); }
  std::size_t copies() const { return graphs_.size(); }

 private:
  std::size_t M_, N_, K_;
  ggml_context* ctx_ = nullptr;
  ggml_backend_buffer_t io_ = nullptr;
  ggml_backend_t backend_ = nullptr;
  ggml_threadpool* threadpool_ = nullptr;
  ggml_tensor* x_ = nullptr;
  std::vector<ggml_tensor*> ys_;
  std::vector<ggml_cgraph*> graphs_;
};

// ---- rankq --------------------------------------------------------------------------------------------------

/// The same float matrix in rankq's format: int4 symmetric, f16 scales, `group` (128: rankq's main format, 4.125
/// bits per weight; 32: Q4_0's group and bytes, 4.5 bits), packed for the W4A8 kernels.
PackedW4 rankq_weights(const float* w, std::size_t N, std::size_t K, std::size_t group) {
  return pack_w4(quantize_uniform(MatrixView<const float>(w, N, K),
                                  UniformFormat{4, group, Symmetry::symmetric, ScaleType::f16}));
}

/// rankq's call: w4a8_linear (float activations quantized per token to int8 inside the call, float outputs).
struct RankqMatmul {
  KernelPath path;
  ThreadPool pool;
  ParallelFor hook;
  QuantizedActivations scratch;
  RankqMatmul(KernelPath p, std::size_t threads) : path(p), pool(threads), hook(pool.hook()) {}
  void run(const float* x, std::size_t M, const PackedW4& w, float* y) {
    const W4A8Options o{path, pool.size() > 1 ? &hook : nullptr, nullptr};
    w4a8_linear(MatrixView<const float>(x, M, w.cols), ActivationFormat{}, w, MatrixView<float>(y, M, w.rows), scratch,
                o);
  }
};

// ---- rotation sets (>= 512 MiB each, built on first use, kept for the run) -----------------------------------

const std::vector<float>& float_weights_cached(Shape s) {
  static std::map<std::pair<std::size_t, std::size_t>, std::vector<float>> cache;
  auto& w = cache[{s.N, s.K}];
  if (w.empty()) w = float_weights(s.N, s.K);
  return w;
}

const GgmlWeights& ggml_set(ggml_type type, Shape s) {
  static std::map<std::tuple<int, std::size_t, std::size_t>, std::unique_ptr<GgmlWeights>> cache;
  auto& set = cache[{static_cast<int>(type), s.N, s.K}];
  if (!set) {
    const std::size_t count = copies_for(ggml_row_size(type, static_cast<std::int64_t>(s.K)) * s.N);
    set = std::make_unique<GgmlWeights>(type, float_weights_cached(s).data(), s.N, s.K, count);
  }
  return *set;
}

const std::vector<PackedW4>& rankq_set(std::size_t group, Shape s) {
  static std::map<std::tuple<std::size_t, std::size_t, std::size_t>, std::vector<PackedW4>> cache;
  auto& set = cache[{group, s.N, s.K}];
  if (set.empty()) {
    PackedW4 p = rankq_weights(float_weights_cached(s).data(), s.N, s.K, group);
    set.assign(copies_for(p.size_bytes()), p);
  }
  return set;
}

// ---- benchmarks ---------------------------------------------------------------------------------------------

void bm_ggml(benchmark::State& st, ggml_type type, std::size_t M, Shape s, std::size_t threads) {
  const GgmlWeights& w = ggml_set(type, s);
  GgmlMatmul mm(w, M, threads);
  mm.set_input(activations(M, s.K).data());
  std::size_t i = 0;
  for (auto _ : st) {
    mm.run(i++);
    benchmark::ClobberMemory();
  }
  st.SetLabel(w.layout);
  set_counters(st, double(w.bytes()), 2.0 * double(M) * double(s.N) * double(s.K));
}

void bm_rankq(benchmark::State& st, KernelPath path, std::size_t group, std::size_t M, Shape s, std::size_t threads) {
  if (!path_supported(path)) return st.SkipWithError("path not supported on this CPU");
  const std::vector<PackedW4>& w = rankq_set(group, s);
  const auto x = activations(M, s.K);
  std::vector<float> y(M * s.N);
  RankqMatmul mm(path, threads);
  std::size_t i = 0;
  for (auto _ : st) {
    mm.run(x.data(), M, w[i++ % w.size()], y.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  set_counters(st, double(w[0].size_bytes()), 2.0 * double(M) * double(s.N) * double(s.K));
}

// ---- correctness guard --------------------------------------------------------------------------------------

/// ||y - ref|| / ||ref|| (Frobenius), infinity if y has a non-finite value.
double relative_error(const std::vector<float>& y, const std::vector<double>& ref) {
  double num = 0.0, den = 0.0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    if (!std::isfinite(y[i])) return INFINITY;
    num += (y[i] - ref[i]) * (y[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  return std::sqrt(num / den);
}

/// Runs every measured call (ggml Q4_0 / Q4_K through the same weight buffers and graphs as the benchmarks; rankq
/// g128 / g32 on avx2 and the best path) on N = 64, K = 512 float weights and M = 1 (gemv) and M = 9 (gemm + gemv
/// tail) activations, 1 and 2 threads, against the fp32 product. 4-bit weights with 8-bit activations land at
/// 7-13 % relative error on these Gaussian weights; a broken call (wrong layout, zeros, stale output) lands near
/// 100 %. Throws, naming the call, above kMaxError; records each error in the report's context.
void check_agreement(const std::vector<KernelPath>& paths) {
  constexpr double kMaxError = 0.25;
  const Shape s{64, 512};
  const std::vector<float> w = float_weights(s.N, s.K);
  for (std::size_t M : {1, 9}) {
    const std::vector<float> x = activations(M, s.K);
    std::vector<double> ref(M * s.N, 0.0);
    for (std::size_t m = 0; m < M; ++m)
      for (std::size_t n = 0; n < s.N; ++n)
        for (std::size_t k = 0; k < s.K; ++k) ref[m * s.N + n] += double(x[m * s.K + k]) * double(w[n * s.K + k]);
    double worst = 0.0;
    std::string worst_name;
    auto check = [&](const std::string& name, const std::vector<float>& y) {
      const double e = relative_error(y, ref);
      if (!(e <= kMaxError)) {
        char text[200];
        std::snprintf(text, sizeof text, " differs from the fp32 product by %.1f %% (relative Frobenius error; 4-bit "
                      "quantization gives ~10 %%, the limit is %.0f %%)", 100 * e, 100 * kMaxError);
        fail("correctness guard: " + name + text + ": this call is broken, its timings would mean nothing");
      }
      if (e > worst) worst = e, worst_name = name;
    };
    for (std::size_t threads : {1, 2}) {
      const std::string suffix = "/M:" + std::to_string(M) + "/threads:" + std::to_string(threads);
      for (ggml_type type : {GGML_TYPE_Q4_0, GGML_TYPE_Q4_K}) {
        GgmlWeights gw(type, w.data(), s.N, s.K, 1);
        GgmlMatmul mm(gw, M, threads);
        mm.set_input(x.data());
        mm.run(0);
        std::vector<float> y(M * s.N);
        mm.get_output(y.data());
        check(std::string("ggml-") + ggml_type_name(type) + " (" + gw.layout + ")" + suffix, y);
        if (M == 1 && threads == 1)
          benchmark::AddCustomContext(std::string("ggml_") + ggml_type_name(type) + "_layout", gw.layout);
      }
      for (std::size_t group : {128, 32})
        for (KernelPath p : paths) {
          RankqMatmul mm(p, threads);
          std::vector<float> y(M * s.N);
          mm.run(x.data(), M, rankq_weights(w.data(), s.N, s.K, group), y.data());
          check(std::string("rankq-w4a8") + (group == 32 ? "-g32/" : "/") + to_string(p) + suffix, y);
        }
    }
    char text[160];
    std::snprintf(text, sizeof text, "all calls within %.1f %% of fp32 (worst %s), limit %.0f %%", 100 * worst,
                  worst_name.c_str(), 100 * kMaxError);
    benchmark::AddCustomContext("correctness_guard_M" + std::to_string(M), text);
  }
}

// ---- registration -------------------------------------------------------------------------------------------

std::string shape_name(std::size_t M, Shape s, std::size_t threads) {
  return "M:" + std::to_string(M) + "/N:" + std::to_string(s.N) + "/K:" + std::to_string(s.K) +
         "/threads:" + std::to_string(threads);
}

void add(const std::string& name, std::function<void(benchmark::State&)> fn) {
  benchmark::RegisterBenchmark(name.c_str(), [fn](benchmark::State& st) { fn(st); })
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);
}

/// Rows of one (M, threads) pair next to each other, so ggml and rankq run minutes apart at most on a shared machine.
void register_benchmarks(const std::vector<KernelPath>& paths) {
  const Shape s{11008, 4096};
  for (std::size_t M : {1, 128})
    for (std::size_t threads : {1, 2}) {
      add("ggml-q4_0/" + shape_name(M, s, threads), [=](auto& st) { bm_ggml(st, GGML_TYPE_Q4_0, M, s, threads); });
      add("ggml-q4_K/" + shape_name(M, s, threads), [=](auto& st) { bm_ggml(st, GGML_TYPE_Q4_K, M, s, threads); });
      for (std::size_t group : {128, 32})
        for (KernelPath p : paths)
          add(std::string("rankq-w4a8") + (group == 32 ? "-g32/" : "/") + to_string(p) + "/" + shape_name(M, s, threads),
              [=](auto& st) { bm_rankq(st, p, group, M, s, threads); });
    }
}

}  // namespace

int main(int argc, char** argv) {
  // rankq's paths: avx2 (the path most x86 CPUs take, the comparison) and the best one here.
  std::vector<KernelPath> paths;
  if (path_supported(KernelPath::avx2)) paths.push_back(KernelPath::avx2);
  if (best_supported_path() != KernelPath::avx2) paths.push_back(best_supported_path());
  ggml_log_set(ggml_log, nullptr);
  try {
    benchmark::AddCustomContext("ggml_cpu_features", ggml_cpu_features());
    check_agreement(paths);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  register_benchmarks(paths);
  return rankq::bench::run_registered_benchmarks(argc, argv);
}
