// Tests for rankq/kernels/lowrank_kernel.hpp: the packed factor layout byte by byte, and on every kernel path the fused
// low-rank products bit for bit against the defined arithmetic (detail/lqer_reference.hpp) — size ladder with
// tails, ranks 1..64, every factor storage and activation format, extreme values, threads — plus lqer_gemm =
// (w4a8_gemm + u) + bias bit for bit, = (reference_matmul + u) + bias within float rounding, and clear errors.
#include <rankq/kernels/lowrank_kernel.hpp>
#include <rankq/kernels/reference.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <set>
#include <vector>

#include "kernel_paths.hpp"
#include "test_util.hpp"

using namespace rankq;

namespace {

std::set<KernelPath> g_covered;
[[maybe_unused]] const bool g_coverage_registered = test::register_best_path_coverage("lowrank kernels", &g_covered);

enum class Storage { mxint8, int8_g16, int8_row };
const Storage kStorages[] = {Storage::mxint8, Storage::int8_g16, Storage::int8_row};

const char* name(Storage s) { return s == Storage::mxint8 ? "mxint8" : s == Storage::int8_g16 ? "int8-g16" : "int8-row"; }

// An 8-bit factor as quantize_lqer stores it (rows x cols, blocks along cols), from random heavy-tailed values.
UniformWeights make_factor(std::size_t rows, std::size_t cols, Storage s, std::uint64_t seed) {
  const auto v = test::heavy_tailed(rows * cols, seed, 0.5f);
  const MatrixView<const float> view(v.data(), rows, cols);
  switch (s) {
    case Storage::mxint8: return to_uniform(quantize_mxint(view, MxFormat{8, 16, MxSemantics::lqer}));
    case Storage::int8_g16: return quantize_uniform(view, UniformFormat{8, 16, Symmetry::symmetric, ScaleType::f16});
    default: return quantize_uniform(view, UniformFormat{8, kWholeRow, Symmetry::symmetric, ScaleType::f16});
  }
}

const std::vector<ActivationFormat> kActFormats = {{ActivationQuant::per_token, 32, MxSemantics::lqer},
                                                   {ActivationQuant::per_block, 16, MxSemantics::lqer},
                                                   {ActivationQuant::per_block, 32, MxSemantics::lqer},
                                                   {ActivationQuant::mxint8, 16, MxSemantics::lqer},
                                                   {ActivationQuant::mxint8, 32, MxSemantics::ocp}};

void expect_same_terms(const detail::LowRankTerms& got, const detail::LowRankTerms& ref, const std::string& what) {
  ASSERT_EQ(got.t.size(), ref.t.size()) << what;
  for (std::size_t i = 0; i < ref.t.size(); ++i) ASSERT_EQ(got.t[i], ref.t[i]) << what << " t[" << i << "]";
  ASSERT_EQ(got.t_q.padded, ref.t_q.padded) << what;
  for (std::size_t i = 0; i < ref.t_q.values.size(); ++i) ASSERT_EQ(got.t_q.values[i], ref.t_q.values[i]) << what;
  for (std::size_t i = 0; i < ref.t_q.scales.size(); ++i) ASSERT_EQ(got.t_q.scales[i], ref.t_q.scales[i]) << what;
  ASSERT_EQ(got.u.size(), ref.u.size()) << what;
  for (std::size_t i = 0; i < ref.u.size(); ++i) ASSERT_EQ(got.u[i], ref.u[i]) << what << " u[" << i << "]";
}

// The correction alone, every path, bit for bit; x quantized with padding `padded` (0: round_up(K, 16)).
void run_correction(std::size_t M, std::size_t N, std::size_t K, std::size_t k, Storage s, const ActivationFormat& af,
                    std::uint64_t seed, std::size_t padded = 0) {
  const UniformWeights a_t = make_factor(k, K, s, seed), b_t = make_factor(N, k, s, seed + 1);
  const auto xv = test::activations(M, K, seed + 2);
  const auto x = quantize_activations(MatrixView<const float>(xv.data(), M, K), af, padded);
  detail::LowRankTerms ref;
  detail::lowrank_correction_reference(x, a_t, b_t, ref);
  const PackedLowRank lr = pack_lowrank(a_t, b_t);
  for (KernelPath p : test::paths_under_test()) {
    detail::LowRankTerms got;
    detail::lowrank_correction_kernel(x, lr, p, nullptr, got);
    g_covered.insert(p);
    expect_same_terms(got, ref, std::string(to_string(p)) + " M=" + std::to_string(M) + " N=" + std::to_string(N) +
                                    " K=" + std::to_string(K) + " k=" + std::to_string(k) + " " + name(s) + " " +
                                    to_string(af));
  }
}

const std::vector<std::size_t> kLadder = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 31, 33, 64, 172, 257};
const std::vector<std::size_t> kRanks = {1, 2, 3, 4, 5, 7, 8, 13, 16, 17, 24, 31, 32, 33, 48, 63, 64};

}  // namespace

TEST(LowRankKernel, PackedLayoutByteByByte) {
  for (Storage s : kStorages) {
    const std::size_t R = 37, C = 45;
    const UniformWeights f = make_factor(R, C, s, 3);
    const PackedLowRank lr = pack_lowrank(f, make_factor(5, R, s, 4));
    const PackedLowRankFactor& p = lr.a_t;
    ASSERT_EQ(p.tiles, 3u);
    ASSERT_EQ(p.chunks, 3u);
    ASSERT_EQ(p.size_bytes(), 3u * 3u * 320u);
    ASSERT_EQ(reinterpret_cast<std::uintptr_t>(p.data.data()) % 64, 0u);
    for (std::size_t n = 0; n < 48; ++n)
      for (std::size_t c = 0; c < 3; ++c) {
        const std::uint8_t* chunk = p.data.data() + ((n / 16) * 3 + c) * 320;
        for (std::size_t j = 0; j < 16; ++j) {
          const std::size_t k = 16 * c + j;
          const std::uint8_t expect = n < R && k < C ? f.codes[n * f.row_bytes + k] : 128;
          ASSERT_EQ(chunk[64 * (j / 4) + 4 * (n % 16) + j % 4], expect) << name(s) << " n=" << n << " k=" << k;
        }
        float scale;
        std::memcpy(&scale, chunk + 256 + 4 * (n % 16), 4);
        ASSERT_EQ(scale, n < R ? f.scale(n, 16 * c / f.group) : 0.0f) << name(s);
      }
  }
}

TEST(LowRankKernel, CorrectionMatchesReferenceOverSizeLadder) {
  std::size_t i = 0;
  for (std::size_t a : kLadder) {
    auto next = [&] { return i++; };
    std::size_t j = next();
    run_correction(a, 19, 172, kRanks[j % kRanks.size()], kStorages[j % 3], kActFormats[j % kActFormats.size()], 10 + j);
    j = next();
    run_correction(3, a, 64, kRanks[j % kRanks.size()], kStorages[j % 3], kActFormats[j % kActFormats.size()], 10 + j);
    j = next();
    run_correction(2, 33, a, kRanks[j % kRanks.size()], kStorages[j % 3], kActFormats[j % kActFormats.size()], 10 + j);
  }
}

TEST(LowRankKernel, CorrectionMatchesReferenceForEveryRankStorageAndFormat) {
  std::size_t i = 0;
  for (std::size_t k = 1; k <= 64; ++k)
    for (Storage s : kStorages) {
      const auto& af = kActFormats[i % kActFormats.size()];
      run_correction(5, 35, 257, k, s, af, 100 + i++);
    }
  // x padded beyond round_up(K, 16), as for weights with groups of 128.
  for (const auto& af : kActFormats) run_correction(4, 40, 100, 32, Storage::mxint8, af, 900 + i++, 128);
  run_correction(9, 1024, 4096, 32, Storage::mxint8, kActFormats[3], 7);
}

TEST(LowRankKernel, IntegerProductsAreExactOnExtremes) {
  // Unit power-of-two scales: every t and u is an exact integer (below 2^24); extremes x = -128 / 127 with levels
  // ±127 exercise the sign trick (|−128| = 128 as u8) and the offset-binary correction.
  std::mt19937 rng(7);
  for (std::size_t K : {16u, 40u, 172u, 1024u})
    for (int mode = 0; mode < 4; ++mode) {
      const std::size_t M = 5, N = 21, k = 19;
      auto fill = [&](UniformWeights& f) {
        for (std::size_t n = 0; n < f.rows; ++n)
          for (std::size_t c = 0; c < f.cols; ++c) {
            int l = mode == 0 ? -127 : mode == 1 ? 127 : mode == 2 ? ((n + c) % 2 ? 127 : -127) : int(rng() % 255) - 127;
            f.codes[n * f.row_bytes + c] = static_cast<std::uint8_t>(l + 128);
          }
        for (auto& sc : f.scales) sc = 1.0f;
      };
      UniformWeights a_t = make_uniform_weights(UniformFormat{8, 16, Symmetry::symmetric, ScaleType::f32}, k, K);
      UniformWeights b_t = make_uniform_weights(UniformFormat{8, 16, Symmetry::symmetric, ScaleType::f32}, N, k);
      fill(a_t);
      fill(b_t);
      std::vector<float> zeros(M * K, 0.0f);
      auto x = quantize_activations(MatrixView<const float>(zeros.data(), M, K), ActivationFormat{}, 0);
      for (std::size_t m = 0; m < M; ++m) {
        x.scales[m] = 1.0f;
        for (std::size_t c = 0; c < K; ++c) {
          int v = mode == 0 ? -128 : mode == 1 ? (m % 2 ? 127 : -128) : mode == 2 ? -128 : int(rng() % 256) - 128;
          x.values[m * x.padded + c] = static_cast<std::int8_t>(v);
        }
      }
      detail::LowRankTerms ref;
      detail::lowrank_correction_reference(x, a_t, b_t, ref);
      // The reference's t is the exact integer Σ x·l.
      for (std::size_t m = 0; m < M; ++m)
        for (std::size_t r = 0; r < k; ++r) {
          std::int64_t d = 0;
          for (std::size_t c = 0; c < K; ++c) d += std::int64_t(x.values[m * x.padded + c]) * (int(a_t.codes[r * a_t.row_bytes + c]) - 128);
          ASSERT_EQ(ref.t[m * k + r], float(d)) << "mode " << mode << " K=" << K;
        }
      const PackedLowRank lr = pack_lowrank(a_t, b_t);
      for (KernelPath p : test::paths_under_test()) {
        detail::LowRankTerms got;
        detail::lowrank_correction_kernel(x, lr, p, nullptr, got);
        g_covered.insert(p);
        expect_same_terms(got, ref, std::string(to_string(p)) + " extremes mode " + std::to_string(mode) + " K=" + std::to_string(K));
      }
    }
}

TEST(LowRankKernel, FusedGemmIsW4A8PlusCorrectionBitForBit) {
  std::size_t i = 0;
  const UniformFormat wfs[] = {{4, 32, Symmetry::symmetric, ScaleType::f16},
                               {4, 128, Symmetry::asymmetric, ScaleType::f16},
                               {3, 16, Symmetry::symmetric, ScaleType::f32}};
  struct Shape { std::size_t M, N, K, k; };
  for (Shape sh : {Shape{1, 19, 172, 8}, Shape{1, 257, 64, 32}, Shape{4, 33, 257, 16}, Shape{7, 64, 128, 64},
                   Shape{13, 31, 33, 3}, Shape{33, 48, 200, 17}, Shape{2, 13, 40, 5}})
    for (const UniformFormat& wf : wfs) {
      const ActivationFormat& af = kActFormats[i % kActFormats.size()];
      const Storage s = kStorages[i % 3];
      const std::uint64_t seed = 500 + 10 * i++;
      const auto wv = test::heavy_tailed(sh.N * sh.K, seed);
      const auto xv = test::activations(sh.M, sh.K, seed + 1);
      const UniformWeights w = quantize_uniform(MatrixView<const float>(wv.data(), sh.N, sh.K), wf);
      LowRankCorrection c;
      c.rank = sh.k;
      c.out_features = sh.N;
      c.in_features = sh.K;
      c.a_t = make_factor(sh.k, sh.K, s, seed + 2);
      c.b_t = make_factor(sh.N, sh.k, s, seed + 3);
      const PackedW4 pw = pack_w4(w);
      const PackedLowRank lr = pack_lowrank(c);
      const auto x = quantize_activations(MatrixView<const float>(xv.data(), sh.M, sh.K), af, w.padded);
      std::vector<float> bias(sh.N);
      for (std::size_t n = 0; n < sh.N; ++n) bias[n] = 0.03f * float(n % 7) - 0.1f;
      detail::LowRankTerms terms;
      detail::lowrank_correction_reference(x, c.a_t, c.b_t, terms);
      // lqer_reference_matmul(requantize_output = false, bias) = (reference_matmul + u) + bias (test_lowrank.cpp).
      std::vector<float> ref(sh.M * sh.N);
      reference_matmul(x, w, MatrixView<float>(ref.data(), sh.M, sh.N));
      for (std::size_t j = 0; j < ref.size(); ++j) ref[j] = (ref[j] + terms.u[j]) + bias[j % sh.N];
      ThreadPool pool(3);
      const ParallelFor pf = [&](std::size_t n, const std::function<void(std::size_t, std::size_t)>& body) { pool.parallel_for(n, body); };
      for (KernelPath p : test::paths_under_test())
        for (bool with_bias : {false, true}) {
          W4A8Options o;
          o.path = p;
          std::vector<float> main(sh.M * sh.N), y(sh.M * sh.N, -7.0f), y_mt(sh.M * sh.N, -9.0f);
          w4a8_gemm(x, pw, MatrixView<float>(main.data(), sh.M, sh.N), o);
          o.bias = with_bias ? bias.data() : nullptr;
          lqer_gemm(x, pw, lr, MatrixView<float>(y.data(), sh.M, sh.N), o);
          o.parallel = &pf;
          lqer_gemm(x, pw, lr, MatrixView<float>(y_mt.data(), sh.M, sh.N), o);
          g_covered.insert(p);
          for (std::size_t j = 0; j < y.size(); ++j) {
            const float sum = main[j] + terms.u[j];
            const float expect = with_bias ? sum + bias[j % sh.N] : sum;
            ASSERT_EQ(y[j], expect) << to_string(p) << " M=" << sh.M << " N=" << sh.N << " K=" << sh.K << " j=" << j;
            ASSERT_EQ(std::memcmp(&y[j], &y_mt[j], sizeof(float)), 0) << to_string(p) << " threaded differs at " << j;
            if (with_bias) {
              ASSERT_NEAR(y[j], ref[j], 1e-5f * (1.0f + std::fabs(ref[j]))) << to_string(p) << " j=" << j;
            }
          }
        }
    }
}

TEST(LowRankKernel, LinearQuantizesThenRunsGemm) {
  const std::size_t M = 3, N = 40, K = 96, k = 8;
  const auto wv = test::heavy_tailed(N * K, 1);
  const auto xv = test::activations(M, K, 2);
  const UniformWeights w = quantize_uniform(MatrixView<const float>(wv.data(), N, K), UniformFormat{});
  const PackedW4 pw = pack_w4(w);
  const PackedLowRank lr = pack_lowrank(make_factor(k, K, Storage::mxint8, 3), make_factor(N, k, Storage::mxint8, 4));
  const ActivationFormat af{ActivationQuant::mxint8, 16, MxSemantics::lqer};
  for (KernelPath p : test::paths_under_test()) {
    W4A8Options o;
    o.path = p;
    std::vector<float> y1(M * N), y2(M * N);
    QuantizedActivations scratch;
    lqer_linear(MatrixView<const float>(xv.data(), M, K), af, pw, lr, MatrixView<float>(y1.data(), M, N), scratch, o);
    lqer_gemm(quantize_activations(MatrixView<const float>(xv.data(), M, K), af, w.padded), pw, lr,
              MatrixView<float>(y2.data(), M, N), o);
    EXPECT_EQ(y1, y2) << to_string(p);
  }
}

TEST(LowRankKernel, BadInputIsAClearError) {
  const std::size_t M = 2, N = 32, K = 64, k = 4;
  const auto wv = test::heavy_tailed(N * K, 1);
  const UniformWeights w = quantize_uniform(MatrixView<const float>(wv.data(), N, K), UniformFormat{});
  const PackedW4 pw = pack_w4(w);
  const UniformWeights a_t = make_factor(k, K, Storage::mxint8, 2), b_t = make_factor(N, k, Storage::mxint8, 3);
  const PackedLowRank lr = pack_lowrank(a_t, b_t);
  const auto xv = test::activations(M, K, 4);
  const auto x = quantize_activations(MatrixView<const float>(xv.data(), M, K), ActivationFormat{}, w.padded);
  std::vector<float> y(M * N);
  // Shapes.
  test::expect_invalid([&] { pack_lowrank(a_t, make_factor(N, k + 1, Storage::mxint8, 5)); }, "'b_t'");
  const PackedLowRank other = pack_lowrank(make_factor(k, K, Storage::mxint8, 6), make_factor(N + 16, k, Storage::mxint8, 7));
  test::expect_invalid([&] { lqer_gemm(x, pw, other, MatrixView<float>(y.data(), M, N)); }, "'lr' is a correction for 48x64");
  test::expect_invalid([&] { lqer_gemm(x, pw, lr, MatrixView<float>(y.data(), M, N - 1)); }, "'y'");
  test::expect_invalid([&] { lqer_gemm(x, pw, PackedLowRank{}, MatrixView<float>(y.data(), M, N)); }, "'lr'");
  // Factor formats: 4-bit, asymmetric, a level of -128.
  const auto fv = test::heavy_tailed(k * K, 8);
  test::expect_invalid([&] { pack_lowrank(quantize_uniform(MatrixView<const float>(fv.data(), k, K), UniformFormat{}), b_t); },
                       "symmetric 8-bit");
  UniformWeights bad = a_t;
  bad.codes[3] = 0;
  test::expect_invalid([&] { pack_lowrank(bad, b_t); }, "level -128");
  // NaN activations are refused where they are quantized.
  std::vector<float> nan_x = xv;
  nan_x[5] = std::nanf("");
  QuantizedActivations scratch;
  test::expect_invalid([&] {
    lqer_linear(MatrixView<const float>(nan_x.data(), M, K), ActivationFormat{}, pw, lr, MatrixView<float>(y.data(), M, N), scratch);
  }, "non-finite");
#if RANKQ_ARCH_X86_64
  const KernelPath foreign = KernelPath::neon;
#else
  const KernelPath foreign = KernelPath::avx2;
#endif
  W4A8Options o;
  o.path = foreign;
  test::expect_invalid([&] { lqer_gemm(x, pw, lr, MatrixView<float>(y.data(), M, N), o); }, "options.path");
}
