// Tests for rankq/layers/linear.hpp: every layer kind equals its kernel function bit for bit on every path, forward
// allocates nothing once a shape has run (counted by interposing malloc in this binary), invariants checked once.
#include <rankq/kernels/codebook_kernel.hpp>
#include <rankq/algorithms/lcq.hpp>
#include <rankq/layers/linear.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "kernel_paths.hpp"
#include "test_util.hpp"

// ---- Allocation counting: every malloc-family call of the process (operator new, aligned_alloc, ...). ----
// ASan and other sanitizers interpose malloc themselves; there the counting test is skipped.
#if defined(__SANITIZE_ADDRESS__)
#define RANKQ_TEST_COUNT_ALLOCATIONS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer) || __has_feature(thread_sanitizer)
#define RANKQ_TEST_COUNT_ALLOCATIONS 0
#endif
#endif
#if !defined(RANKQ_TEST_COUNT_ALLOCATIONS) && defined(__GLIBC__)
#define RANKQ_TEST_COUNT_ALLOCATIONS 1
#endif
#if !defined(RANKQ_TEST_COUNT_ALLOCATIONS)
#define RANKQ_TEST_COUNT_ALLOCATIONS 0
#endif

namespace {
std::atomic<long> g_allocations{0};
}  // namespace

#if RANKQ_TEST_COUNT_ALLOCATIONS
extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);
void* malloc(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_malloc(n);
}
void* calloc(std::size_t a, std::size_t b) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_calloc(a, b);
}
void* realloc(void* p, std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_realloc(p, n);
}
void* aligned_alloc(std::size_t alignment, std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_memalign(alignment, n);
}
void* memalign(std::size_t alignment, std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_memalign(alignment, n);
}
int posix_memalign(void** out, std::size_t alignment, std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  *out = __libc_memalign(alignment, n);
  return *out ? 0 : 12;  // ENOMEM
}
}
#endif

using namespace rankq;

namespace {

std::set<KernelPath> g_covered;
[[maybe_unused]] const bool g_coverage_registered = test::register_best_path_coverage("linear", &g_covered);

constexpr std::size_t N = 45, K = 200;  // K: not a multiple of any group; N: a partial last tile

UniformWeights uniform(unsigned bits, std::size_t group, Symmetry sym, ScaleType st, std::uint64_t seed) {
  const auto w = test::heavy_tailed(N * K, seed);
  return quantize_uniform(MatrixView<const float>(w.data(), N, K), UniformFormat{bits, group, sym, st});
}

LowRankCorrection correction(std::size_t rank, std::uint64_t seed) {
  const auto a = test::heavy_tailed(rank * K, seed, 0.5f), b = test::heavy_tailed(N * rank, seed + 1, 0.5f);
  LowRankCorrection c;
  c.rank = rank;
  c.out_features = N;
  c.in_features = K;
  c.a_t = to_uniform(quantize_mxint(MatrixView<const float>(a.data(), rank, K), MxFormat{8, 16, MxSemantics::lqer}));
  c.b_t = to_uniform(quantize_mxint(MatrixView<const float>(b.data(), N, rank), MxFormat{8, 16, MxSemantics::lqer}));
  return c;
}

CodebookWeights codebook(unsigned bits, unsigned rank, std::uint64_t seed) {
  const auto w = test::heavy_tailed(N * K, seed);
  LcqOptions o;
  o.bits = bits;
  o.group_size = 32;
  o.rank = rank;
  o.max_iterations = 2;
  o.threads = 1;
  return fit_lcq(MatrixView<const float>(w.data(), N, K), o);
}

std::vector<float> bias_values() {
  std::vector<float> b(N);
  for (std::size_t i = 0; i < N; ++i) b[i] = 0.01f * static_cast<float>(i) - 0.2f;
  return b;
}

void expect_same_bits(const std::vector<float>& got, const std::vector<float>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (std::size_t i = 0; i < got.size(); ++i)
    ASSERT_EQ(0, std::memcmp(&got[i], &want[i], sizeof(float))) << what << " at " << i << ": " << got[i] << " vs " << want[i];
}

/// One layer of each kind, with the kernel call it must equal.
struct Built {
  std::string name;
  Linear layer;
  std::function<void(MatrixView<const float>, MatrixView<float>, const W4A8Options&)> expected;
};

std::vector<Built> build_all(KernelPath p, const ActivationFormat& af, bool with_bias) {
  std::vector<Built> out;
  LinearOptions o;
  o.activation = af;
  o.path = p;
  if (with_bias) o.bias = bias_values();
  auto shared = std::make_shared<std::vector<std::shared_ptr<void>>>();  // keeps the packed references alive
  auto w4a8_case = [&](const std::string& name, const UniformWeights& q, Linear layer) {
    auto packed = std::make_shared<PackedW4>(pack_w4(q));
    out.push_back({name, std::move(layer), [packed, af](MatrixView<const float> x, MatrixView<float> y, const W4A8Options& ko) {
                     QuantizedActivations s;
                     w4a8_linear(x, af, *packed, y, s, ko);
                   }});
  };
  const auto q4 = uniform(4, 128, Symmetry::symmetric, ScaleType::f16, 1);
  w4a8_case("uniform-w4-g128-sym-f16", q4, Linear::from_uniform(q4, o));
  const auto q3 = uniform(3, 32, Symmetry::asymmetric, ScaleType::f32, 2);
  w4a8_case("uniform-w3-g32-asym-f32", q3, Linear::from_uniform(q3, o));
  const auto q2 = uniform(2, 16, Symmetry::asymmetric, ScaleType::f16, 3);
  w4a8_case("uniform-w2-g16-asym-f16", q2, Linear::from_uniform(q2, o));
  const auto wv = test::heavy_tailed(N * K, 4);
  const MxTensor mx = quantize_mxint(MatrixView<const float>(wv.data(), N, K), MxFormat{4, 16, MxSemantics::lqer});
  w4a8_case("mxint4-b16", to_uniform(mx), Linear::from_mxint(mx, o));
  {
    const auto c = correction(8, 5);
    auto packed = std::make_shared<PackedW4>(pack_w4(q4));
    auto lr = std::make_shared<PackedLowRank>(pack_lowrank(c));
    out.push_back({"lqer-w4-rank8", Linear::from_lqer(q4, c, o),
                   [packed, lr, af](MatrixView<const float> x, MatrixView<float> y, const W4A8Options& ko) {
                     QuantizedActivations s;
                     lqer_linear(x, af, *packed, *lr, y, s, ko);
                   }});
  }
  auto w8a8_case = [&](const std::string& name, const UniformWeights& q, Linear layer) {
    auto packed = std::make_shared<PackedW8>(pack_w8(q));
    out.push_back({name, std::move(layer), [packed, af](MatrixView<const float> x, MatrixView<float> y, const W4A8Options& ko) {
                     QuantizedActivations s;
                     w8a8_linear(x, af, *packed, y, s, ko);
                   }});
  };
  const auto q8 = uniform(8, 128, Symmetry::symmetric, ScaleType::f16, 14);
  w8a8_case("uniform-w8-g128-sym-f16", q8, Linear::from_uniform(q8, o));
  const auto q8a = uniform(8, 32, Symmetry::asymmetric, ScaleType::f32, 15);
  w8a8_case("uniform-w8-g32-asym-f32", q8a, Linear::from_uniform(q8a, o));
  const MxTensor mx8 = quantize_mxint(MatrixView<const float>(wv.data(), N, K), MxFormat{8, 32, MxSemantics::lqer});
  w8a8_case("mxint8-b32", to_uniform(mx8), Linear::from_mxint(mx8, o));
  for (unsigned rank : {1u, 2u}) {
    const auto cb = codebook(4, rank, 6 + rank);
    auto packed = std::make_shared<PackedCodebook>(pack_codebook(cb));
    out.push_back({"codebook-w4-rank" + std::to_string(rank), Linear::from_codebook(cb, o),
                   [packed, af](MatrixView<const float> x, MatrixView<float> y, const W4A8Options& ko) {
                     QuantizedActivations s;
                     quantize_activations(x, af, s, packed->padded, ko.path);
                     codebook_gemm(s, *packed, y, ko);
                   }});
  }
  return out;
}

}  // namespace

TEST(Linear, ForwardEqualsTheKernelFunctionsOnEveryPath) {
  ThreadPool pool(3);
  const ParallelFor hook = pool.hook();
  const ActivationFormat formats[] = {{ActivationQuant::per_token, 32, MxSemantics::lqer},
                                      {ActivationQuant::per_block, 16, MxSemantics::lqer},
                                      {ActivationQuant::mxint8, 32, MxSemantics::ocp}};
  for (KernelPath p : test::paths_under_test())
    for (const auto& af : formats)
      for (bool with_bias : {false, true}) {
        auto layers = build_all(p, af, with_bias);
        for (const ParallelFor* parallel : {static_cast<const ParallelFor*>(nullptr), &hook}) {
          Context ctx(parallel);
          for (std::size_t M : {1u, 3u, 19u, 40u}) {
            const auto xv = test::activations(M, K, 100 + M);
            const MatrixView<const float> x(xv.data(), M, K);
            for (auto& b : layers) {
              std::vector<float> got(M * N, -1.0f), want(M * N, -2.0f);
              b.layer.forward(x, MatrixView<float>(got.data(), M, N), ctx);
              W4A8Options ko;
              ko.path = p;
              ko.parallel = parallel;
              ko.bias = with_bias ? nullptr : nullptr;
              const auto bias = bias_values();
              if (with_bias) ko.bias = bias.data();
              b.expected(x, MatrixView<float>(want.data(), M, N), ko);
              expect_same_bits(got, want, b.name + " on " + to_string(p) + " " + to_string(af) + " M=" + std::to_string(M) +
                                              (with_bias ? " bias" : "") + (parallel ? " pool" : ""));
              EXPECT_EQ(b.layer.path(), p);
            }
          }
        }
        g_covered.insert(p);
      }
}

TEST(Linear, DefaultPathIsTheBestSupported) {
  const auto q = uniform(4, 32, Symmetry::symmetric, ScaleType::f16, 9);
  EXPECT_EQ(Linear::from_uniform(q).path(), best_supported_path());
  EXPECT_EQ(W4A8Options{}.path, best_supported_path());
  EXPECT_EQ(Linear::from_uniform(q).kind(), LinearKind::w4a8);
  EXPECT_EQ(Linear::from_uniform(q).in_features(), K);
  EXPECT_EQ(Linear::from_uniform(q).out_features(), N);
}

TEST(Linear, NoHeapAllocationOnceAShapeHasRun) {
#if !RANKQ_TEST_COUNT_ALLOCATIONS
  GTEST_SKIP() << "allocation counting needs glibc without a sanitizer interposing malloc";
#else
  ThreadPool pool(2);
  const ParallelFor hook = pool.hook();
  for (KernelPath p : test::paths_under_test()) {
    auto layers = build_all(p, ActivationFormat{}, true);
    Context ctx(&hook);
    // Decode (M = 1), a small batch, and prefill past every path's token block (M = 40), each run twice per
    // layer: the second call of a shape on the same Context must not allocate, on the caller or the pool.
    for (std::size_t M : {1u, 5u, 40u}) {
      const auto xv = test::activations(M, K, 7 + M);
      const MatrixView<const float> x(xv.data(), M, K);
      std::vector<float> y(M * N);
      for (auto& b : layers) {
        b.layer.forward(x, MatrixView<float>(y.data(), M, N), ctx);
        const long before = g_allocations.load();
        b.layer.forward(x, MatrixView<float>(y.data(), M, N), ctx);
        b.layer.forward(x, MatrixView<float>(y.data(), M, N), ctx);
        EXPECT_EQ(g_allocations.load() - before, 0) << b.name << " on " << to_string(p) << " M=" << M;
      }
    }
    // The counter itself works (through a volatile pointer: compilers may elide a visible new/delete pair).
    void* (*volatile allocate)(std::size_t) = std::malloc;
    const long before = g_allocations.load();
    void* probe = allocate(1000);
    EXPECT_GT(g_allocations.load() - before, 0);
    std::free(probe);
  }
#endif
}

TEST(Linear, InvariantsAreCheckedAtConstruction) {
  const auto q8 = uniform(8, 32, Symmetry::symmetric, ScaleType::f16, 11);
  EXPECT_EQ(Linear::from_uniform(q8).kind(), LinearKind::w8a8);
  EXPECT_EQ(Linear::from_uniform(q8).size_bytes(), pack_w8(q8).size_bytes());
  test::expect_invalid([&] { Linear::from_lqer(q8, correction(4, 10)); }, "8-bit");
  const auto q4 = uniform(4, 32, Symmetry::symmetric, ScaleType::f16, 12);
  LinearOptions bad_bias;
  bad_bias.bias.assign(N + 1, 0.0f);
  test::expect_invalid([&] { Linear::from_uniform(q4, bad_bias); }, "o.bias");
  LinearOptions nan_bias;
  nan_bias.bias.assign(N, 0.0f);
  nan_bias.bias[3] = std::nanf("");
  test::expect_invalid([&] { Linear::from_uniform(q4, nan_bias); }, "non-finite");
  LinearOptions bad_act;
  bad_act.activation.kind = ActivationQuant::per_block;
  bad_act.activation.block = 24;
  test::expect_invalid([&] { Linear::from_uniform(q4, bad_act); }, "format.block");
  auto c = correction(4, 13);
  c.in_features = K + 1;
  test::expect_invalid([&] { Linear::from_lqer(q4, c); }, "'c'");
  for (KernelPath p : {KernelPath::scalar, KernelPath::avx2, KernelPath::avx_vnni, KernelPath::avx512_vnni,
                       KernelPath::neon, KernelPath::neon_dotprod})
    if (!path_supported(p)) {
      LinearOptions o;
      o.path = p;
      test::expect_invalid([&] { Linear::from_uniform(q4, o); }, "o.path");
      test::expect_invalid([&] { Linear::from_uniform(q8, o); }, "o.path");
    }
}

TEST(Linear, ForwardRejectsMismatchedShapes) {
  const Linear layer = Linear::from_uniform(uniform(4, 32, Symmetry::symmetric, ScaleType::f16, 14));
  Context ctx;
  std::vector<float> x(2 * (K + 1)), y(2 * N);
  test::expect_invalid([&] { layer.forward(MatrixView<const float>(x.data(), 2, K + 1), MatrixView<float>(y.data(), 2, N), ctx); }, "'x'");
  test::expect_invalid([&] { layer.forward(MatrixView<const float>(x.data(), 2, K), MatrixView<float>(y.data(), 1, N), ctx); }, "'y'");
  test::expect_invalid([&] { layer.forward(MatrixView<const float>(x.data(), 0, K), MatrixView<float>(y.data(), 0, N), ctx); }, "'x'");
  x[5] = std::nanf("");
  test::expect_invalid([&] { layer.forward(MatrixView<const float>(x.data(), 2, K), MatrixView<float>(y.data(), 2, N), ctx); }, "non-finite");
}
