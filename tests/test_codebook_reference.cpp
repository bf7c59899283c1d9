// tests/test_codebook_reference.cpp — the kernel-ready int8 form of LCQ weights and the scalar reference codebook
// matmul: int8 tables in range, exact integer sums, float part equal to float64 math on the same operands.
#include <rankq/kernels/codebook_reference.hpp>
#include <rankq/algorithms/lcq.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "test_util.hpp"

namespace {

using rankq::CodebookKernelTables;
using rankq::CodebookWeights;
using rankq::MatrixView;

CodebookWeights fit(const std::vector<float>& w, std::size_t N, std::size_t K, unsigned bits, std::size_t group,
                    unsigned rank, bool dq = false) {
  rankq::LcqOptions o;
  o.bits = bits;
  o.group_size = group;
  o.rank = rank;
  o.max_iterations = 4;
  o.threads = 1;
  o.double_quantize = dq;
  return rankq::fit_lcq(MatrixView<const float>(w.data(), N, K), o);
}

TEST(CodebookKernelTables, LevelsAreSymmetricInt8AndScaleFolded) {
  const std::size_t N = 8, K = 256;
  const auto w = test::heavy_tailed(N * K, 3);
  for (unsigned bits : {2u, 3u, 4u})
    for (unsigned rank : {1u, 2u, 4u}) {
      const CodebookWeights q = fit(w, N, K, bits, 64, rank);
      const CodebookKernelTables kt = rankq::make_codebook_kernel_tables(q);
      for (unsigned r = 0; r < rank; ++r) {
        int amax = 0;
        for (unsigned t = 0; t < q.codewords(); ++t) {
          const int l = kt.level(r, t);
          ASSERT_GE(l, -127);
          ASSERT_LE(l, 127);
          amax = std::max(amax, std::abs(l));
          // level = round((V − center) / v_scale): within half a step of V
          EXPECT_LE(std::fabs(l * static_cast<double>(kt.v_scale[r]) + kt.v_center[r] - q.V[r * q.codewords() + t]),
                    0.5 * kt.v_scale[r] * (1 + 1e-6) + 1e-6 * std::fabs(kt.v_center[r]));
        }
        if (kt.v_scale[r] > 0) {
          EXPECT_EQ(amax, 127);
        }
      }
      for (std::size_t i = 0; i < q.S.size(); ++i)
        EXPECT_EQ(kt.group_scales[i], q.S[i] * kt.v_scale[i % rank]);
      for (std::size_t i = 0; i < q.B.size(); ++i) {
        double offset = q.B[i];
        for (unsigned r = 0; r < rank; ++r) offset -= static_cast<double>(q.S[i * rank + r]) * kt.v_center[r];
        EXPECT_EQ(kt.group_offsets[i], static_cast<float>(offset));
      }
    }
}

TEST(CodebookKernelTables, AddedErrorIsBoundedByHalfAStepPerRank) {
  const std::size_t N = 16, K = 172;
  const auto w = test::heavy_tailed(N * K, 5);
  for (unsigned bits : {2u, 3u, 4u}) {
    const CodebookWeights q = fit(w, N, K, bits, 32, 3);
    const CodebookKernelTables kt = rankq::make_codebook_kernel_tables(q);
    double err2 = 0, ref2 = 0;
    for (std::size_t n = 0; n < N; ++n)
      for (std::size_t c = 0; c < K; ++c) {
        const std::size_t i = n * q.groups + c / q.group;
        double bound = 1e-6 * (std::fabs(q.value(n, c)) + std::fabs(kt.group_offsets[i]));
        for (unsigned r = 0; r < 3; ++r) bound += std::fabs(q.S[i * 3 + r]) * kt.v_scale[r] * (0.5 + 1e-6);
        const double diff = rankq::kernel_ready_value(q, kt, n, c) - q.value(n, c);
        ASSERT_LE(std::fabs(diff), bound + 1e-12);
        err2 += diff * diff;
        ref2 += static_cast<double>(w[n * K + c]) * w[n * K + c];
      }
    // the int8 tables add far less error than the b-bit quantization itself
    EXPECT_LT(std::sqrt(err2 / ref2), 0.02) << "bits " << bits;
  }
}

/// Σ_c x̂_c·ŵ_K(n, c) in double from the operands (q_x, activation scales, group_scales, Vq, B), and the same
/// sum of absolute values (for the float-rounding bound).
void float64_matmul(const rankq::QuantizedActivations& x, const CodebookWeights& q, const CodebookKernelTables& kt,
                    std::size_t m, std::size_t n, double& value, double& magnitude) {
  value = magnitude = 0;
  for (std::size_t c = 0; c < q.padded; ++c) {
    const double xv = static_cast<double>(x.row(m)[c]) * x.scale(m, c / x.block);
    const double wv = rankq::kernel_ready_value(q, kt, n, c);
    value += xv * wv;
    double wmag = std::fabs(static_cast<double>(kt.group_offsets[n * q.groups + c / q.group]));
    for (unsigned r = 0; r < kt.rank; ++r)
      wmag += std::fabs(static_cast<double>(kt.group_scales[(n * q.groups + c / q.group) * kt.rank + r]) *
                        kt.level(r, q.index(n, c)));
    magnitude += std::fabs(xv) * wmag;
  }
}

TEST(CodebookReferenceMatmul, EqualsFloat64MathOnItsOperands) {
  const std::size_t M = 3, N = 10, K = 172;
  const auto w = test::heavy_tailed(N * K, 7);
  const auto xf = test::activations(M, K, 8);
  const rankq::ActivationFormat formats[] = {{rankq::ActivationQuant::per_token, 32, rankq::MxSemantics::lqer},
                                             {rankq::ActivationQuant::per_block, 16, rankq::MxSemantics::lqer},
                                             {rankq::ActivationQuant::per_block, 32, rankq::MxSemantics::lqer},
                                             {rankq::ActivationQuant::mxint8, 32, rankq::MxSemantics::ocp}};
  for (unsigned bits : {2u, 3u, 4u})
    for (std::size_t group : {std::size_t(32), std::size_t(64), std::size_t(128), rankq::kWholeRow})
      for (unsigned rank : {1u, 2u, 3u})
        for (const auto& af : formats) {
          SCOPED_TRACE("b=" + std::to_string(bits) + " g=" + std::to_string(group) + " k=" + std::to_string(rank) +
                       " act=" + rankq::to_string(af));
          const CodebookWeights q = fit(w, N, K, bits, group, rank, rank == 2);
          const CodebookKernelTables kt = rankq::make_codebook_kernel_tables(q);
          const auto x = rankq::quantize_activations(MatrixView<const float>(xf.data(), M, K), af, q.padded);
          std::vector<float> y(M * N), bias(N);
          for (std::size_t n = 0; n < N; ++n) bias[n] = 0.25f * static_cast<float>(n);
          rankq::codebook_reference_matmul(x, q, kt, MatrixView<float>(y.data(), M, N), bias.data());
          for (std::size_t m = 0; m < M; ++m)
            for (std::size_t n = 0; n < N; ++n) {
              double ref, mag;
              float64_matmul(x, q, kt, m, n, ref, mag);
              ASSERT_NEAR(y[m * N + n], ref + bias[n], 1e-5 * (mag + std::fabs(bias[n])) + 1e-30) << m << "," << n;
            }
        }
}

TEST(CodebookReferenceMatmul, IntegerSumsAreExactAtExtremes) {
  // Every activation ±127 and every level ±127: the largest int32 sums a group of 128 can produce.
  const std::size_t N = 4, K = 256;
  const auto w = test::heavy_tailed(N * K, 9);
  const CodebookWeights q = fit(w, N, K, 4, 128, 2);
  CodebookKernelTables kt = rankq::make_codebook_kernel_tables(q);
  for (auto& l : kt.vq) l = static_cast<std::int8_t>(l >= 0 ? 127 : -127);
  std::mt19937 rng(1);
  for (int sign_mode = 0; sign_mode < 3; ++sign_mode) {
    std::vector<std::int8_t> xq(K);
    for (auto& v : xq) v = static_cast<std::int8_t>(sign_mode == 0 ? 127 : sign_mode == 1 ? -127 : (rng() & 1 ? 127 : -127));
    for (std::size_t n = 0; n < N; ++n)
      for (std::size_t g = 0; g < q.groups; ++g) {
        std::int32_t dot[rankq::kMaxCodebookRank], sum;
        rankq::detail::codebook_segment_sums(xq.data(), q, kt, n, g * 128, (g + 1) * 128, dot, sum);
        for (unsigned r = 0; r < 2; ++r) {
          std::int64_t ref = 0;
          for (std::size_t c = g * 128; c < (g + 1) * 128; ++c) ref += std::int64_t(xq[c]) * kt.level(r, q.index(n, c));
          ASSERT_EQ(dot[r], ref);
        }
        std::int64_t ref_sum = 0;
        for (std::size_t c = g * 128; c < (g + 1) * 128; ++c) ref_sum += xq[c];
        ASSERT_EQ(sum, ref_sum);
      }
  }
}

TEST(CodebookReferenceMatmul, RejectsMismatchedOperands) {
  const std::size_t N = 4, K = 64;
  const auto w = test::heavy_tailed(N * K, 11);
  const CodebookWeights q = fit(w, N, K, 4, 32, 2);
  const CodebookWeights other = fit(w, N, K, 4, 32, 3);
  const auto xf = test::activations(2, K, 12);
  const auto x = rankq::quantize_activations(MatrixView<const float>(xf.data(), 2, K), rankq::ActivationFormat{}, q.padded);
  std::vector<float> y(2 * N);
  const MatrixView<float> Y(y.data(), 2, N);
  test::expect_invalid([&] { rankq::codebook_reference_matmul(x, q, rankq::make_codebook_kernel_tables(other), Y); }, "'kt'");
  const auto x_short = rankq::quantize_activations(MatrixView<const float>(xf.data(), 2, K - 16), rankq::ActivationFormat{});
  test::expect_invalid([&] { rankq::codebook_reference_matmul(x_short, q, rankq::make_codebook_kernel_tables(q), Y); }, "'x'");
  test::expect_invalid(
      [&] { rankq::codebook_reference_matmul(x, q, rankq::make_codebook_kernel_tables(q), MatrixView<float>(y.data(), 2, N - 1)); },
      "'y'");
}

}  // namespace
