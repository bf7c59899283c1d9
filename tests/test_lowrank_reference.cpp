// Tests for rankq/kernels/lowrank_reference.hpp: the LQER inference reference equals its definition step by step, re-padding
// is exact, the correction lowers the W·A8 output error, and shape mismatches are clear errors.
#include <rankq/algorithms/calibration.hpp>
#include <rankq/kernels/lowrank_reference.hpp>
#include <rankq/algorithms/lqer.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "test_util.hpp"

using namespace rankq;

namespace {

MatrixView<const float> view(const std::vector<float>& v, std::size_t rows, std::size_t cols) {
  return MatrixView<const float>(v.data(), rows, cols);
}

std::vector<ActivationFormat> activation_formats() {
  return {ActivationFormat{ActivationQuant::per_token, 32, MxSemantics::lqer},
          ActivationFormat{ActivationQuant::per_block, 16, MxSemantics::lqer},
          ActivationFormat{ActivationQuant::mxint8, 16, MxSemantics::lqer}};
}

double relative(const std::vector<float>& a, const std::vector<double>& ref) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size(); ++i) num += (a[i] - ref[i]) * (a[i] - ref[i]), den += ref[i] * ref[i];
  return std::sqrt(num / den);
}

}  // namespace

TEST(LowRank, RepadEqualsQuantizingWithThatPadding) {
  const std::size_t M = 5, K = 40;
  const auto x = test::activations(M, K, 1);
  for (const auto& f : activation_formats()) {
    const auto a = quantize_activations(view(x, M, K), f, 64);
    const auto b = detail::repad_activations(a, 48);
    const auto ref = quantize_activations(view(x, M, K), f, 48);
    ASSERT_EQ(b.padded, ref.padded);
    ASSERT_EQ(b.block, ref.block);
    ASSERT_EQ(b.blocks, ref.blocks);
    for (std::size_t i = 0; i < M * 48; ++i) ASSERT_EQ(b.values[i], ref.values[i]) << to_string(f);
    for (std::size_t i = 0; i < M * ref.blocks; ++i) ASSERT_EQ(b.scales[i], ref.scales[i]) << to_string(f);
    const auto c = detail::repad_activations(ref, 64);  // and back up
    for (std::size_t i = 0; i < M * 64; ++i) ASSERT_EQ(c.values[i], a.values[i]);
    for (std::size_t i = 0; i < M * a.blocks; ++i) ASSERT_EQ(c.scales[i], a.scales[i]);
  }
}

TEST(LowRank, ReferenceFollowsItsDefinition) {
  // K = 168: the int4-g32 weights pad to 192, the MXINT8 factor Aᵀ to 176 (x is read up to column 176 only).
  const std::size_t M = 7, N = 40, K = 168, k = 8;
  const auto w = test::heavy_tailed(N * K, 2);
  const auto x = test::activations(M, K, 3);
  std::vector<float> bias(N);
  for (std::size_t n = 0; n < N; ++n) bias[n] = 0.01f * float(n);
  LqerOptions o;
  o.rank = k;
  const LqerWeights lw = quantize_lqer(view(w, N, K), UniformFormat{4, 32, Symmetry::asymmetric, ScaleType::f16}, {}, o);
  ASSERT_NE(lw.weights.padded, lw.correction.a_t.padded);
  const auto& c = lw.correction;
  for (const auto& f : activation_formats())
    for (bool requant : {true, false}) {
      std::vector<float> y(M * N);
      LowRankMatmulOptions mo;
      mo.bias = bias.data();
      mo.requantize_output = requant;
      lqer_reference_linear(view(x, M, K), f, lw, MatrixView<float>(y.data(), M, N), mo);
      // Step by step, as documented (docs/lqer.md §5), written out here with plain loops.
      const auto xq = quantize_activations(view(x, M, K), f, lw.weights.padded);
      std::vector<float> main(M * N), t(M * k), u(M * N);
      reference_matmul(xq, lw.weights, MatrixView<float>(main.data(), M, N));
      auto product = [](const QuantizedActivations& a, const UniformWeights& fac, std::vector<float>& out) {
        for (std::size_t m = 0; m < a.rows; ++m)
          for (std::size_t r = 0; r < fac.rows; ++r) {
            float acc = 0.0f;
            for (std::size_t ch = 0; ch * 16 < fac.cols; ++ch) {
              std::int32_t d = 0;
              for (std::size_t j = ch * 16; j < std::min(fac.cols, ch * 16 + 16); ++j)
                d += int(a.row(m)[j]) * (int(fac.code(r, j)) - 128);
              acc = std::fma(a.scale(m, ch * 16 / a.block) * fac.scale(r, ch * 16 / fac.group), float(d), acc);
            }
            out[m * fac.rows + r] = acc;
          }
      };
      product(xq, c.a_t, t);
      const auto tq = quantize_activations(view(t, M, k), f, 16);
      product(tq, c.b_t, u);
      const auto uq = quantize_activations(view(u, M, N), f);
      for (std::size_t m = 0; m < M; ++m)
        for (std::size_t n = 0; n < N; ++n) {
          const float corr = requant ? uq.value(m, n) : u[m * N + n];
          ASSERT_EQ(y[m * N + n], (main[m * N + n] + corr) + bias[n]) << to_string(f) << " m=" << m << " n=" << n;
        }
      // The chunked int8 product equals the generic reference_matmul of the same operands up to float rounding.
      std::vector<float> t_generic(M * k);
      reference_matmul(quantize_activations(view(x, M, K), f, c.a_t.padded), c.a_t, MatrixView<float>(t_generic.data(), M, k));
      for (std::size_t i = 0; i < t.size(); ++i) ASSERT_NEAR(t[i], t_generic[i], 1e-4f * (1.0f + std::fabs(t[i])));
    }
}

TEST(LowRank, CorrectionLowersTheW4A8OutputError) {
  const std::size_t M = 64, N = 96, K = 160;
  const auto w = test::heavy_tailed(N * K, 4);
  const auto xc = test::activations(256, K, 5), xe = test::activations(M, K, 6);
  ActivationStats st(K);
  st.add_batch(view(xc, 256, K));
  const auto s = l2qer_scale(st);
  std::vector<double> ref(M * N, 0.0);
  for (std::size_t m = 0; m < M; ++m)
    for (std::size_t n = 0; n < N; ++n)
      for (std::size_t i = 0; i < K; ++i) ref[m * N + n] += double(xe[m * K + i]) * w[n * K + i];
  const ActivationFormat af{ActivationQuant::mxint8, 16, MxSemantics::lqer};
  const MxFormat wf{3, 16, MxSemantics::lqer};
  auto error_of = [&](const std::vector<float>& scale, std::size_t k) {
    LqerOptions o;
    o.rank = k;
    const LqerWeights lw = quantize_lqer(view(w, N, K), wf, scale, o);
    std::vector<float> y(M * N);
    lqer_reference_linear(view(xe, M, K), af, lw, MatrixView<float>(y.data(), M, N));
    return relative(y, ref);
  };
  const auto wq = to_uniform(quantize_mxint(view(w, N, K), wf));
  std::vector<float> y0(M * N);
  reference_matmul(quantize_activations(view(xe, M, K), af, wq.padded), wq, MatrixView<float>(y0.data(), M, N));
  const double plain = relative(y0, ref);
  const double lqer = error_of({}, 16), l2qer = error_of(s, 16);
  EXPECT_LT(lqer, plain);
  EXPECT_LT(l2qer, lqer);
  EXPECT_LT(error_of(s, 32), l2qer);
}

TEST(LowRank, ShapeMismatchIsAClearError) {
  const std::size_t N = 32, K = 64;
  const auto w = test::heavy_tailed(N * K, 7), w2 = test::heavy_tailed(N * 2 * K, 8);
  LqerOptions o;
  o.rank = 4;
  const UniformFormat f{4, 32, Symmetry::symmetric, ScaleType::f16};
  const LqerWeights a = quantize_lqer(view(w, N, K), f, {}, o);
  const LqerWeights b = quantize_lqer(view(w2, 2 * N, K), f, {}, o);
  const auto x = quantize_activations(view(test::activations(3, K, 9), 3, K), ActivationFormat{}, a.weights.padded);
  std::vector<float> y(3 * N);
  test::expect_invalid([&] { lqer_reference_matmul(x, a.weights, b.correction, MatrixView<float>(y.data(), 3, N)); },
                       "'c' is a correction for 64x64");
  test::expect_invalid([&] { lqer_reference_matmul(x, a.weights, a.correction, MatrixView<float>(y.data(), 3, N - 1)); },
                       "'y'");
}
