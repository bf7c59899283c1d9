// tests/test_gptq.cpp — GPTQ: the objective against RTN, RTN equality for a diagonal H, the Cholesky path against a
// direct-inverse reference, activation order, codes on the grid, LCQ k = 1 fixed grid = uniform asymmetric GPTQ,
// GPTQ + L²QER, threads, dead channels and argument checks.
#include <rankq/algorithms/gptq.hpp>
#include <rankq/kernels/threading.hpp>

#include <gtest/gtest.h>

#include <Eigen/Dense>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "test_util.hpp"

namespace {

using rankq::GptqHessian;
using rankq::GptqOptions;
using rankq::MatrixView;
using rankq::MxFormat;
using rankq::Symmetry;
using rankq::UniformFormat;

MatrixView<const float> view(const std::vector<float>& w, std::size_t N, std::size_t K) { return {w.data(), N, K}; }

/// Correlated calibration inputs: X = Z·M (M random mixing) with a few outlier channels, so H is far from diagonal.
std::vector<float> correlated_inputs(std::size_t tokens, std::size_t K, std::uint64_t seed) {
  const auto z = test::activations(tokens, K, seed, 6.0f);
  std::mt19937_64 rng(seed + 1000);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> m(K * K);
  for (std::size_t i = 0; i < K; ++i)
    for (std::size_t j = 0; j < K; ++j) m[i * K + j] = (i == j ? 1.0f : 0.0f) + 0.3f * g(rng) / std::sqrt(float(K));
  std::vector<float> x(tokens * K, 0.0f);
  for (std::size_t t = 0; t < tokens; ++t)
    for (std::size_t i = 0; i < K; ++i) {
      const float zi = z[t * K + i];
      for (std::size_t j = 0; j < K; ++j) x[t * K + j] += zi * m[i * K + j];
    }
  return x;
}

GptqHessian hessian_of(const std::vector<float>& x, std::size_t tokens, std::size_t K) {
  rankq::ActivationStats stats(K, true);
  stats.add_batch(view(x, tokens, K));
  return rankq::gptq_hessian(stats);
}

GptqHessian diagonal_hessian(std::size_t K, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::lognormal_distribution<double> ln(0.0, 1.0);
  GptqHessian h{K, std::vector<double>(K * K, 0.0)};
  for (std::size_t i = 0; i < K; ++i) h.values[i * K + i] = ln(rng);
  return h;
}

double objective(const std::vector<float>& w, std::size_t N, std::size_t K, const std::vector<float>& w_hat,
                 const GptqHessian& h) {
  return rankq::gptq_objective(view(w, N, K), w_hat, h);
}

void expect_same_uniform(const rankq::UniformWeights& a, const rankq::UniformWeights& b) {
  ASSERT_EQ(a.codes.size(), b.codes.size());
  ASSERT_EQ(a.scales.size(), b.scales.size());
  for (std::size_t i = 0; i < a.codes.size(); ++i) ASSERT_EQ(a.codes[i], b.codes[i]) << "code byte " << i;
  for (std::size_t i = 0; i < a.scales.size(); ++i) ASSERT_EQ(a.scales[i], b.scales[i]) << "scale " << i;
  ASSERT_EQ(a.offsets.size(), b.offsets.size());
  for (std::size_t i = 0; i < a.offsets.size(); ++i) ASSERT_EQ(a.offsets[i], b.offsets[i]) << "offset " << i;
}

const std::vector<UniformFormat> kUniformFormats = {
    {4, 32, Symmetry::symmetric, rankq::ScaleType::f16},  {4, 128, Symmetry::asymmetric, rankq::ScaleType::f16},
    {3, 32, Symmetry::asymmetric, rankq::ScaleType::f16}, {3, 64, Symmetry::symmetric, rankq::ScaleType::f32},
    {2, 16, Symmetry::asymmetric, rankq::ScaleType::f16}, {2, 64, Symmetry::asymmetric, rankq::ScaleType::f32},
    {8, rankq::kWholeRow, Symmetry::symmetric, rankq::ScaleType::f16}};
const std::vector<MxFormat> kMxFormats = {{4, 16, rankq::MxSemantics::lqer}, {3, 32, rankq::MxSemantics::lqer},
                                          {4, 32, rankq::MxSemantics::ocp}, {2, 16, rankq::MxSemantics::lqer}};

TEST(GptqHessian, IsTheGramMatrixOverTokensAndMergesAcrossBatches) {
  const std::size_t K = 24;
  const auto x = correlated_inputs(300, K, 3);
  rankq::ActivationStats all(K, true), first(K, true), second(K, true);
  all.add_batch(view(x, 300, K));
  first.add_batch(MatrixView<const float>(x.data(), 100, K));
  second.add_batch(MatrixView<const float>(x.data() + 100 * K, 200, K));
  first.merge(second);
  const GptqHessian h = rankq::gptq_hessian(all), hm = rankq::gptq_hessian(first);
  ASSERT_EQ(h.channels, K);
  for (std::size_t i = 0; i < K; ++i)
    for (std::size_t j = 0; j < K; ++j) {
      double direct = 0;
      for (std::size_t t = 0; t < 300; ++t) direct += double(x[t * K + i]) * x[t * K + j];
      EXPECT_NEAR(h.values[i * K + j], direct / 300, 1e-9 * (1 + std::fabs(direct / 300)));
      EXPECT_NEAR(hm.values[i * K + j], h.values[i * K + j], 1e-9 * (1 + std::fabs(h.values[i * K + j])));
    }
}

TEST(Gptq, ObjectiveNeverWorseThanRtn) {
  const std::size_t N = 24, K = 128, tokens = 1024;
  for (std::uint64_t seed : {1u, 2u, 3u, 4u}) {
    const auto w = test::heavy_tailed(N * K, 100 + seed);
    const GptqHessian h = hessian_of(correlated_inputs(tokens, K, seed), tokens, K);
    for (bool act_order : {false, true}) {
      GptqOptions o;
      o.act_order = act_order;
      o.block = 32;
      for (const UniformFormat& f : kUniformFormats) {
        SCOPED_TRACE("seed " + std::to_string(seed) + " " + rankq::to_string(f) + (act_order ? " act-order" : ""));
        const double rtn = objective(w, N, K, rankq::dequantize(rankq::quantize_uniform(view(w, N, K), f)), h);
        const double gptq = objective(w, N, K, rankq::dequantize(rankq::gptq_quantize_uniform(view(w, N, K), h, f, o)), h);
        EXPECT_LE(gptq, rtn);
        if (f.bits <= 4) {
          EXPECT_LT(gptq, 0.9 * rtn);  // a real improvement, not just equality
        }
      }
      for (const MxFormat& f : kMxFormats) {
        SCOPED_TRACE("seed " + std::to_string(seed) + " " + rankq::to_string(f) + (act_order ? " act-order" : ""));
        const double rtn = objective(w, N, K, rankq::mxint_round_trip(view(w, N, K), f), h);
        const double gptq = objective(w, N, K, rankq::dequantize(rankq::gptq_quantize_mxint(view(w, N, K), h, f, o)), h);
        EXPECT_LE(gptq, rtn);
      }
    }
  }
}

TEST(Gptq, DiagonalHessianIsRtnExactly) {
  for (const std::size_t K : {96u, 100u, 257u}) {
    const std::size_t N = 7;
    const auto w = test::heavy_tailed(N * K, K);
    const GptqHessian h = diagonal_hessian(K, K + 1);
    for (bool act_order : {false, true})
      for (std::size_t block : {std::size_t{5}, std::size_t{128}}) {
        GptqOptions o;
        o.act_order = act_order;
        o.block = block;
        for (const UniformFormat& f : kUniformFormats) {
          SCOPED_TRACE("K " + std::to_string(K) + " " + rankq::to_string(f));
          expect_same_uniform(rankq::gptq_quantize_uniform(view(w, N, K), h, f, o), rankq::quantize_uniform(view(w, N, K), f));
        }
        for (const MxFormat& f : kMxFormats) {
          SCOPED_TRACE("K " + std::to_string(K) + " " + rankq::to_string(f));
          const rankq::MxTensor a = rankq::gptq_quantize_mxint(view(w, N, K), h, f, o), b = rankq::quantize_mxint(view(w, N, K), f);
          ASSERT_EQ(a.codes.size(), b.codes.size());
          for (std::size_t i = 0; i < a.codes.size(); ++i) ASSERT_EQ(a.codes[i], b.codes[i]);
          for (std::size_t i = 0; i < a.exponents.size(); ++i) ASSERT_EQ(a.exponents[i], b.exponents[i]);
        }
      }
  }
}

/// Σ_k d_k (w_k − ŵ_k)² over columns [c0, c0 + len) of row n, ŵ from the group parameters (s, z) by uniform's rounding.
double weighted_group_error(const std::vector<float>& w, std::size_t K, std::size_t n, std::size_t c0, std::size_t len,
                            const std::vector<double>& d, const UniformFormat& f, float s, float z) {
  const double tmax = double((1u << f.bits) - 1u), half = double(1u << (f.bits - 1));
  double e = 0;
  for (std::size_t k = c0; k < c0 + len; ++k) {
    const double x = w[n * K + k];
    double t = s == 0.0f ? (f.symmetry == Symmetry::symmetric ? half : 0.0)
                         : std::nearbyint(f.symmetry == Symmetry::symmetric ? x / s + half : (x + z) / s);
    t = std::min(std::max(t, 0.0), tmax);
    const double v = f.symmetry == Symmetry::symmetric ? double(s) * (t - half) : double(s) * t - z;
    e += d[k] * (x - v) * (x - v);
  }
  return e;
}

TEST(Gptq, ClipSearchWithDiagonalHessianFindsTheBestShrinkFactor) {
  // A diagonal H has no feedback: every group is quantized at its original values with the parameters the search
  // chose, and its cost per column is 1/U_kk² = diag(H_d). The chosen parameters must reach the least weighted error
  // over the brute-forced candidates (RTN's parameters of the range shrunk by p_i, rounded to the scale type), and
  // codes must be the rounding of the weights with those parameters.
  const std::size_t N = 6, K = 160, dead = 37;
  const auto w = test::heavy_tailed(N * K, 77);
  GptqHessian h = diagonal_hessian(K, 78);
  h.values[dead * (K + 1)] = 0.0;  // a dead channel: its column is zeroed and its error costs nothing
  GptqOptions o;
  o.clip_steps = 16;
  o.clip_min = 0.4;
  o.act_order = true;
  rankq::GptqReport report;
  double mean_diag = 0;  // after the dead-channel fix (diag 0 -> 1), as the damping is computed
  for (std::size_t k = 0; k < K; ++k) mean_diag += (k == dead ? 1.0 : h.values[k * (K + 1)]) / double(K);
  std::vector<double> d(K);
  for (std::size_t k = 0; k < K; ++k) d[k] = k == dead ? 0.0 : h.values[k * (K + 1)] + o.damp * mean_diag;
  std::vector<float> wz = w;  // what the pass quantizes: the dead column zeroed
  for (std::size_t n = 0; n < N; ++n) wz[n * K + dead] = 0.0f;
  for (const UniformFormat& f : kUniformFormats) {
    SCOPED_TRACE(rankq::to_string(f));
    const rankq::UniformWeights q = rankq::gptq_quantize_uniform(view(w, N, K), h, f, o, &report);
    const rankq::UniformWeights rtn = rankq::quantize_uniform(view(wz, N, K), f);
    const UniformFormat whole{f.bits, rankq::kWholeRow, f.symmetry, f.scale_type};
    bool some_group_clipped = false;
    for (std::size_t n = 0; n < N; ++n)
      for (std::size_t g = 0; g < q.groups; ++g) {
        const std::size_t c0 = g * q.group, len = std::min(K, c0 + q.group) - c0;
        float lo = wz[n * K + c0], hi = lo;
        for (std::size_t k = c0; k < c0 + len; ++k) lo = std::min(lo, wz[n * K + k]), hi = std::max(hi, wz[n * K + k]);
        double best = std::numeric_limits<double>::infinity();
        for (unsigned i = 0; i <= o.clip_steps; ++i) {
          const double p = 1.0 - (1.0 - o.clip_min) * i / o.clip_steps;
          const std::vector<float> range{float(p * lo), float(p * hi)};
          const rankq::UniformWeights c = rankq::quantize_uniform(view(range, 1, 2), whole);
          const float cz = f.symmetry == Symmetry::asymmetric ? c.offsets[0] : 0.0f;
          best = std::min(best, weighted_group_error(wz, K, n, c0, len, d, f, c.scales[0], cz));
        }
        const float s = q.scales[n * q.groups + g], z = f.symmetry == Symmetry::asymmetric ? q.offsets[n * q.groups + g] : 0.0f;
        const float rz = f.symmetry == Symmetry::asymmetric ? rtn.offsets[n * q.groups + g] : 0.0f;
        const double chosen = weighted_group_error(wz, K, n, c0, len, d, f, s, z);
        EXPECT_LE(chosen, best * (1 + 1e-5) + 1e-30) << "row " << n << " group " << g;
        EXPECT_LE(chosen, weighted_group_error(wz, K, n, c0, len, d, f, rtn.scales[n * q.groups + g], rz) * (1 + 1e-6));
        EXPECT_EQ(s, rankq::detail::to_storage(s, f.scale_type));  // scales stay representable in the scale type
        some_group_clipped |= s != rtn.scales[n * q.groups + g];
        for (std::size_t k = c0; k < c0 + len; ++k)  // codes are the plain rounding with the chosen parameters
          ASSERT_EQ(q.code(n, k), rankq::detail::uniform_code(wz[n * K + k], s, z, f)) << "row " << n << " column " << k;
      }
    if (f.bits <= 4) {
      EXPECT_TRUE(some_group_clipped);  // heavy-tailed weights: clipping pays somewhere at <= 4 bits
    }
    EXPECT_EQ(report.dead_channels, 1u);
  }
}

TEST(Gptq, ClipSearchLowersTheObjectiveAtThreeAndTwoBits) {
  const std::size_t N = 32, K = 128, tokens = 1024;
  for (std::uint64_t seed : {5u, 6u}) {
    const auto w = test::heavy_tailed(N * K, 200 + seed);
    const GptqHessian h = hessian_of(correlated_inputs(tokens, K, seed), tokens, K);
    for (const UniformFormat& f : {UniformFormat{3, 32, Symmetry::asymmetric, rankq::ScaleType::f16},
                                   UniformFormat{2, 32, Symmetry::asymmetric, rankq::ScaleType::f16},
                                   UniformFormat{3, 64, Symmetry::symmetric, rankq::ScaleType::f32}})
      for (bool act_order : {false, true}) {
        SCOPED_TRACE("seed " + std::to_string(seed) + " " + rankq::to_string(f) + (act_order ? " act-order" : ""));
        GptqOptions o;
        o.act_order = act_order;
        const double minmax = objective(w, N, K, rankq::dequantize(rankq::gptq_quantize_uniform(view(w, N, K), h, f, o)), h);
        o.clip_steps = 20;
        const double clipped = objective(w, N, K, rankq::dequantize(rankq::gptq_quantize_uniform(view(w, N, K), h, f, o)), h);
        EXPECT_LT(clipped, minmax);
        o.clip_steps = 0;
        o.clip_min = 0.2;  // clip_min alone changes nothing
        EXPECT_EQ(objective(w, N, K, rankq::dequantize(rankq::gptq_quantize_uniform(view(w, N, K), h, f, o)), h), minmax);
      }
  }
}

/// GPTQ written the textbook way (Frantar et al. 2022, Alg. 1 without lazy blocks or Cholesky), in double: the
/// explicit inverse of the dampened H, the OBS update of the remaining columns, and H⁻¹ reduced by eliminating
/// the processed column. Group parameters come from the group's current values when its first column comes up.
struct ReferenceResult {
  std::vector<unsigned> codes;  ///< N x K
  std::vector<float> values;    ///< N x K dequantized
};
ReferenceResult reference_gptq(const std::vector<float>& w, std::size_t N, std::size_t K, const GptqHessian& h,
                                  const UniformFormat& f, double damp, bool act_order) {
  Eigen::MatrixXd H(K, K);
  for (std::size_t i = 0; i < K; ++i)
    for (std::size_t j = 0; j < K; ++j) H(i, j) = h.values[i * K + j];
  std::vector<std::size_t> order(K);
  std::iota(order.begin(), order.end(), 0);
  if (act_order)
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return H(a, a) > H(b, b); });
  H.diagonal().array() += damp * H.diagonal().mean();
  Eigen::MatrixXd Hp(K, K);
  for (std::size_t i = 0; i < K; ++i)
    for (std::size_t j = 0; j < K; ++j) Hp(i, j) = H(order[i], order[j]);
  const std::size_t group = f.group_size == rankq::kWholeRow ? K : f.group_size;
  ReferenceResult out{std::vector<unsigned>(N * K), std::vector<float>(N * K)};
  for (std::size_t n = 0; n < N; ++n) {
    Eigen::MatrixXd Hinv = Hp.inverse();
    std::vector<double> cur(K);  // current values by original column
    for (std::size_t c = 0; c < K; ++c) cur[c] = w[n * K + c];
    std::vector<char> started(K, 0);
    std::vector<float> s(K, 0.0f), z(K, 0.0f);
    for (std::size_t i = 0; i < K; ++i) {
      const std::size_t c = order[i], g = c / group;
      if (!started[g]) {
        started[g] = 1;
        std::vector<float> vals;
        for (std::size_t cc = g * group; cc < std::min(K, (g + 1) * group); ++cc) vals.push_back(static_cast<float>(cur[cc]));
        rankq::detail::uniform_group_params(vals.data(), vals.size(), f, s[g], z[g]);
      }
      const float x = static_cast<float>(cur[c]);
      const unsigned t = rankq::detail::uniform_code(x, s[g], z[g], f);
      const float zz = f.symmetry == Symmetry::asymmetric ? z[g] : s[g] * float(1u << (f.bits - 1));
      const float q = s[g] * static_cast<float>(t) - zz;
      out.codes[n * K + c] = t;
      out.values[n * K + c] = q;
      const double e = (cur[c] - q) / Hinv(i, i);
      for (std::size_t j = i + 1; j < K; ++j) cur[order[j]] -= e * Hinv(i, j);
      const Eigen::VectorXd col = Hinv.col(i);
      Hinv -= col * Hinv.row(i) / Hinv(i, i);
    }
  }
  return out;
}

TEST(Gptq, CholeskyPathEqualsDirectInverseReference) {
  const std::size_t N = 6, K = 64, tokens = 512;
  for (std::uint64_t seed : {7u, 8u}) {
    const auto w = test::heavy_tailed(N * K, seed);
    const GptqHessian h = hessian_of(correlated_inputs(tokens, K, seed), tokens, K);
    for (bool act_order : {false, true})
      for (std::size_t block : {std::size_t{8}, std::size_t{128}})
        for (const UniformFormat& f : {UniformFormat{4, 32, Symmetry::symmetric, rankq::ScaleType::f32},
                                      UniformFormat{3, 16, Symmetry::asymmetric, rankq::ScaleType::f32},
                                      UniformFormat{2, rankq::kWholeRow, Symmetry::asymmetric, rankq::ScaleType::f32}}) {
          SCOPED_TRACE("seed " + std::to_string(seed) + " " + rankq::to_string(f) + " block " + std::to_string(block) +
                       (act_order ? " act-order" : ""));
          GptqOptions o;
          o.act_order = act_order;
          o.block = block;
          o.damp = 0.05;
          const auto q = rankq::gptq_quantize_uniform(view(w, N, K), h, f, o);
          const auto ours = rankq::dequantize(q);
          const auto ref = reference_gptq(w, N, K, h, f, o.damp, act_order);
          // Same codes; values equal up to the float (ours) vs double (reference) rounding of the current values
          // that the group scales are computed from.
          std::size_t differ = 0;
          double worst = 0;
          for (std::size_t n = 0; n < N; ++n)
            for (std::size_t k = 0; k < K; ++k) {
              differ += q.code(n, k) != ref.codes[n * K + k];
              worst = std::max(worst, std::fabs(double(ours[n * K + k]) - ref.values[n * K + k]) / q.scale(n, k / q.group));
            }
          EXPECT_EQ(differ, 0u);
          EXPECT_LT(worst, 1e-4);
        }
  }
}

TEST(Gptq, ActOrderFollowsDiagonalAndRoundTripsThePermutation) {
  const std::size_t N = 9, K = 80, tokens = 600;
  const auto w = test::heavy_tailed(N * K, 21);
  const GptqHessian h = hessian_of(correlated_inputs(tokens, K, 22), tokens, K);
  GptqOptions o;
  o.act_order = true;
  o.block = 16;
  const UniformFormat f{4, rankq::kWholeRow, Symmetry::asymmetric, rankq::ScaleType::f32};
  rankq::GptqReport report;
  const auto q = rankq::gptq_quantize_uniform(view(w, N, K), h, f, o, &report);
  ASSERT_EQ(report.order.size(), K);
  std::vector<std::size_t> sorted(report.order);
  std::sort(sorted.begin(), sorted.end());
  for (std::size_t i = 0; i < K; ++i) ASSERT_EQ(sorted[i], i);  // a permutation
  for (std::size_t i = 1; i < K; ++i)
    EXPECT_GE(h.values[report.order[i - 1] * (K + 1)], h.values[report.order[i] * (K + 1)]);
  // Permute the input columns by P; act-order must process the same original columns in the same order, and the
  // result, read back through P, must be the same matrix (a whole-row group does not depend on the column order).
  std::vector<std::size_t> perm(K);
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), std::mt19937_64(5));
  std::vector<float> wp(N * K);
  GptqHessian hp{K, std::vector<double>(K * K)};
  for (std::size_t n = 0; n < N; ++n)
    for (std::size_t j = 0; j < K; ++j) wp[n * K + j] = w[n * K + perm[j]];
  for (std::size_t i = 0; i < K; ++i)
    for (std::size_t j = 0; j < K; ++j) hp.values[i * K + j] = h.values[perm[i] * K + perm[j]];
  const auto a = rankq::dequantize(q);
  const auto b = rankq::dequantize(rankq::gptq_quantize_uniform(view(wp, N, K), hp, f, o));
  for (std::size_t n = 0; n < N; ++n)
    for (std::size_t j = 0; j < K; ++j) ASSERT_EQ(b[n * K + j], a[n * K + perm[j]]) << n << "," << j;
  // And act-order changes the result (it is not silently ignored).
  GptqOptions plain = o;
  plain.act_order = false;
  EXPECT_NE(rankq::dequantize(rankq::gptq_quantize_uniform(view(w, N, K), h, f, plain)), a);
}

TEST(Gptq, CodesLieOnTheGrid) {
  const std::size_t N = 10, K = 100, tokens = 400;  // K not a multiple of the groups: padding
  const auto w = test::heavy_tailed(N * K, 31);
  const GptqHessian h = hessian_of(correlated_inputs(tokens, K, 32), tokens, K);
  GptqOptions o;
  o.act_order = true;
  for (const UniformFormat& f : kUniformFormats) {
    const auto q = rankq::gptq_quantize_uniform(view(w, N, K), h, f, o);
    for (std::size_t n = 0; n < N; ++n) {
      for (std::size_t k = K; k < q.padded; ++k) ASSERT_EQ(q.code(n, k), 0u);
      for (std::size_t k = 0; k < K; ++k) {
        const float s = q.scale(n, k / q.group), z = q.offset(n, k / q.group);
        ASSERT_TRUE(std::isfinite(s) && std::isfinite(z));
        ASSERT_EQ(rankq::detail::to_storage(s, f.scale_type), s);  // representable in the storage type
        ASSERT_LT(q.code(n, k), 1u << f.bits);
      }
    }
  }
  for (const MxFormat& f : kMxFormats) {
    const auto t = rankq::gptq_quantize_mxint(view(w, N, K), h, f, o);
    const int qmax = (1 << (f.bits - 1)) - 1;
    for (std::size_t n = 0; n < N; ++n) {
      for (std::size_t k = K; k < t.padded; ++k) ASSERT_EQ(rankq::detail::get_bits(t.codes.data() + n * t.row_bytes, k, f.bits), 0u);
      for (std::size_t k = 0; k < K; ++k) {
        const unsigned code = rankq::detail::get_bits(t.codes.data() + n * t.row_bytes, k, f.bits);
        ASSERT_NE(code, 1u << (f.bits - 1)) << "negative zero";
        ASSERT_LE(std::abs(t.level(n, k)), qmax);
      }
    }
  }
  rankq::LcqOptions lo;
  lo.bits = 3;
  lo.group_size = 32;
  lo.rank = 2;
  lo.max_iterations = 4;
  lo.threads = 1;
  const auto c = rankq::gptq_fit_lcq(view(w, N, K), h, lo, o);
  for (std::size_t n = 0; n < N; ++n)
    for (std::size_t k = 0; k < K; ++k) {
      const float v = c.value(n, k);
      bool on_book = false;
      for (unsigned t = 0; t < c.codewords(); ++t) on_book = on_book || c.codeword(n, k / c.group, t) == v;
      ASSERT_TRUE(on_book);
    }
}

TEST(GptqLcq, Rank1FixedGridEqualsUniformAsymmetricGptqExactly) {
  const std::size_t N = 12, K = 160, tokens = 700;
  const auto w = test::heavy_tailed(N * K, 41);
  const GptqHessian h = hessian_of(correlated_inputs(tokens, K, 42), tokens, K);
  for (unsigned bits : {2u, 3u, 4u})
    for (std::size_t group : {std::size_t{32}, std::size_t{64}, rankq::kWholeRow})
      for (bool act_order : {false, true}) {
        SCOPED_TRACE("bits " + std::to_string(bits) + " group " + std::to_string(group) + (act_order ? " act-order" : ""));
        GptqOptions o;
        o.act_order = act_order;
        o.block = 48;
        o.static_groups = true;
        o.lcq_refits = 0;
        rankq::LcqOptions lo;
        lo.bits = bits;
        lo.group_size = group;
        lo.rank = 1;
        lo.max_iterations = 0;
        lo.threads = 1;
        const auto c = rankq::gptq_fit_lcq(view(w, N, K), h, lo, o);
        const auto u = rankq::gptq_quantize_uniform(view(w, N, K), h, UniformFormat{bits, group, Symmetry::asymmetric, rankq::ScaleType::f32}, o);
        ASSERT_EQ(c.row_bytes, u.row_bytes);
        for (std::size_t i = 0; i < c.indices.size(); ++i) ASSERT_EQ(c.indices[i], u.codes[i]) << "byte " << i;
        for (std::size_t i = 0; i < u.scales.size(); ++i) {
          ASSERT_EQ(c.S[i], u.scales[i]);
          ASSERT_EQ(c.B[i], u.offsets[i]);
        }
        EXPECT_EQ(rankq::dequantize(u), [&] {
          std::vector<float> v(N * K);
          for (std::size_t n = 0; n < N; ++n)
            for (std::size_t k = 0; k < K; ++k) v[n * K + k] = c.value(n, k);
          return v;
        }());
      }
}

TEST(GptqLcq, BeatsPlainLcqOnTheObjectiveAndRefitsNeverLoseTheBestPass) {
  const std::size_t N = 16, K = 128, tokens = 800;
  const auto w = test::heavy_tailed(N * K, 51);
  const GptqHessian h = hessian_of(correlated_inputs(tokens, K, 52), tokens, K);
  for (unsigned rank : {1u, 2u}) {
    rankq::LcqOptions lo;
    lo.bits = 3;
    lo.group_size = 32;
    lo.rank = rank;
    lo.max_iterations = 6;
    lo.threads = 1;
    std::vector<float> d(K);
    for (std::size_t k = 0; k < K; ++k) d[k] = static_cast<float>(h.values[k * (K + 1)]);
    const auto plain = rankq::fit_lcq(view(w, N, K), d, lo);
    GptqOptions o;
    o.lcq_refits = 2;
    rankq::GptqReport report;
    const auto g = rankq::gptq_fit_lcq(view(w, N, K), h, lo, o, &report);
    auto values = [&](const rankq::CodebookWeights& q) {
      std::vector<float> v(N * K);
      for (std::size_t n = 0; n < N; ++n)
        for (std::size_t k = 0; k < K; ++k) v[n * K + k] = q.value(n, k);
      return v;
    };
    EXPECT_LT(objective(w, N, K, values(g), h), 0.9 * objective(w, N, K, values(plain), h)) << "rank " << rank;
    ASSERT_EQ(report.pass_objectives.size(), 3u);
    EXPECT_EQ(report.objective, *std::min_element(report.pass_objectives.begin(), report.pass_objectives.end()));
  }
}

TEST(Gptq, ReportedObjectiveIsTheDampenedHessianObjective) {
  const std::size_t N = 5, K = 48, tokens = 300;
  const auto w = test::heavy_tailed(N * K, 61);
  GptqHessian h = hessian_of(correlated_inputs(tokens, K, 62), tokens, K);
  GptqOptions o;
  o.damp = 0.1;
  rankq::GptqReport report;
  const auto q = rankq::gptq_quantize_uniform(view(w, N, K), h, UniformFormat{3, 16, Symmetry::asymmetric, rankq::ScaleType::f16}, o, &report);
  GptqHessian hd = h;
  for (std::size_t i = 0; i < K; ++i) hd.values[i * (K + 1)] += report.damping;
  EXPECT_NEAR(report.objective, objective(w, N, K, rankq::dequantize(q), hd), 1e-4 * report.objective);
}

TEST(Gptq, ThreadsGiveIdenticalResults) {
  const std::size_t N = 150, K = 96, tokens = 400;  // several row chunks
  const auto w = test::heavy_tailed(N * K, 71);
  const GptqHessian h = hessian_of(correlated_inputs(tokens, K, 72), tokens, K);
  const UniformFormat f{4, 32, Symmetry::asymmetric, rankq::ScaleType::f16};
  GptqOptions o;
  o.act_order = true;
  const auto serial = rankq::gptq_quantize_uniform(view(w, N, K), h, f, o);
  rankq::ThreadPool pool(3);
  o.parallel_for = pool.hook();
  expect_same_uniform(rankq::gptq_quantize_uniform(view(w, N, K), h, f, o), serial);
}

TEST(Gptq, DeadChannelsAreZeroedAndReported) {
  const std::size_t N = 4, K = 64, tokens = 300;
  auto x = correlated_inputs(tokens, K, 81);
  for (std::size_t t = 0; t < tokens; ++t) x[t * K + 10] = 0.0f;  // channel 10 never fires
  const GptqHessian h = hessian_of(x, tokens, K);
  const auto w = test::heavy_tailed(N * K, 82);
  rankq::GptqReport report;
  const auto q = rankq::gptq_quantize_uniform(view(w, N, K), h, UniformFormat{4, 32, Symmetry::symmetric, rankq::ScaleType::f16}, {}, &report);
  EXPECT_EQ(report.dead_channels, 1u);
  for (std::size_t n = 0; n < N; ++n) EXPECT_EQ(q.value(n, 10), 0.0f);
}

TEST(GptqLqer, CorrectionIsFittedToTheScaledGptqResidual) {
  const std::size_t N = 32, K = 64, tokens = 500;
  const auto w = test::heavy_tailed(N * K, 91);
  const auto x = correlated_inputs(tokens, K, 92);
  rankq::ActivationStats stats(K, true);
  stats.add_batch(view(x, tokens, K));
  const GptqHessian h = rankq::gptq_hessian(stats);
  const std::vector<float> scale = rankq::l2qer_scale(stats);
  rankq::LqerOptions lo;
  lo.rank = 8;
  const UniformFormat f{3, 32, Symmetry::asymmetric, rankq::ScaleType::f16};
  const auto r = rankq::gptq_quantize_lqer(view(w, N, K), h, f, scale, lo);
  const auto q = rankq::gptq_quantize_uniform(view(w, N, K), h, f);
  expect_same_uniform(r.weights, q);
  const auto wq = rankq::dequantize(q);
  std::vector<float> e(N * K);
  for (std::size_t i = 0; i < e.size(); ++i) e[i] = w[i] - wq[i];
  const auto c = rankq::fit_low_rank_correction(view(e, N, K), scale, lo);
  ASSERT_EQ(c.singular_values.size(), r.correction.singular_values.size());
  for (std::size_t i = 0; i < c.singular_values.size(); ++i)
    EXPECT_NEAR(c.singular_values[i], r.correction.singular_values[i], 1e-5 * c.singular_values[0]);
  EXPECT_DOUBLE_EQ(rankq::bits_per_weight(r), rankq::bits_per_weight(f, K) + rankq::bits_per_weight(r.correction));
  // MXINT weights in their uniform form.
  const MxFormat mf{4, 16, rankq::MxSemantics::lqer};
  const auto rm = rankq::gptq_quantize_lqer(view(w, N, K), h, mf, scale, lo);
  expect_same_uniform(rm.weights, rankq::to_uniform(rankq::gptq_quantize_mxint(view(w, N, K), h, mf)));
}

TEST(GptqErrors, BadInputsGiveClearErrors) {
  const std::size_t N = 4, K = 32;
  const auto w = test::heavy_tailed(N * K, 101);
  const UniformFormat f{4, 32, Symmetry::symmetric, rankq::ScaleType::f16};
  const GptqHessian good = hessian_of(correlated_inputs(200, K, 102), 200, K);
  // Rank-deficient H (fewer tokens than channels) without dampening is not positive definite.
  const GptqHessian low_rank = hessian_of(correlated_inputs(8, K, 103), 8, K);
  GptqOptions no_damp;
  no_damp.damp = 0.0;
  test::expect_invalid([&] { rankq::gptq_quantize_uniform(view(w, N, K), low_rank, f, no_damp); }, "not positive definite");
  EXPECT_NO_THROW(rankq::gptq_quantize_uniform(view(w, N, K), low_rank, f));  // the default dampening fixes it
  GptqHessian nan = good;
  nan.values[5 * K + 7] = std::numeric_limits<double>::quiet_NaN();
  test::expect_invalid([&] { rankq::gptq_quantize_uniform(view(w, N, K), nan, f); }, "non-finite");
  GptqHessian asym = good;
  asym.values[1] += 1.0;
  test::expect_invalid([&] { rankq::gptq_quantize_uniform(view(w, N, K), asym, f); }, "not symmetric");
  GptqHessian neg = good;
  neg.values[0] = -1.0;
  test::expect_invalid([&] { rankq::gptq_quantize_uniform(view(w, N, K), neg, f); }, "negative diagonal");
  const GptqHessian wrong = hessian_of(correlated_inputs(200, 16, 104), 200, 16);
  test::expect_invalid([&] { rankq::gptq_quantize_uniform(view(w, N, K), wrong, f); }, "expected K = 32");
  GptqHessian short_values = good;
  short_values.values.pop_back();
  test::expect_invalid([&] { rankq::gptq_quantize_mxint(view(w, N, K), short_values, MxFormat{}); }, "hessian.values");
  GptqOptions bad;
  bad.damp = -0.1;
  test::expect_invalid([&] { rankq::gptq_quantize_uniform(view(w, N, K), good, f, bad); }, "options.damp");
  bad.damp = std::numeric_limits<double>::quiet_NaN();
  test::expect_invalid([&] { rankq::gptq_quantize_uniform(view(w, N, K), good, f, bad); }, "options.damp");
  bad = GptqOptions{};
  bad.block = 0;
  test::expect_invalid([&] { rankq::gptq_quantize_uniform(view(w, N, K), good, f, bad); }, "options.block");
  for (double clip_min : {0.0, -0.5, 1.5, std::numeric_limits<double>::quiet_NaN()}) {
    bad = GptqOptions{};
    bad.clip_steps = 10;
    bad.clip_min = clip_min;
    test::expect_invalid([&] { rankq::gptq_quantize_uniform(view(w, N, K), good, f, bad); }, "options.clip_min");
  }
  bad = GptqOptions{};
  bad.clip_steps = 1001;
  test::expect_invalid([&] { rankq::gptq_quantize_uniform(view(w, N, K), good, f, bad); }, "options.clip_steps");
  test::expect_invalid([&] { rankq::gptq_quantize_uniform(view(w, N, K), good, UniformFormat{5, 32}); }, "format.bits");
  auto wnan = w;
  wnan[3] = std::numeric_limits<float>::infinity();
  test::expect_invalid([&] { rankq::gptq_quantize_uniform(view(wnan, N, K), good, f); }, "weights");
  rankq::LcqOptions lo;
  lo.double_quantize = true;
  test::expect_invalid([&] { rankq::gptq_fit_lcq(view(w, N, K), good, lo); }, "lcq.double_quantize");
  lo = rankq::LcqOptions{};
  lo.rank = 9;
  test::expect_invalid([&] { rankq::gptq_fit_lcq(view(w, N, K), good, lo); }, "lcq.rank");
  rankq::ActivationStats no_gram(K);
  no_gram.add_batch(view(correlated_inputs(10, K, 5), 10, K));
  test::expect_invalid([&] { rankq::gptq_hessian(no_gram); }, "keep_gram");
  test::expect_invalid([&] { rankq::gptq_hessian(rankq::ActivationStats(K, true)); }, "empty");
}

}  // namespace

namespace {
template <typename E>
void expect_gptq_element_view_equals_float_path() {
  const std::size_t N = 70, K = 100;  // 70 rows: two chunks of the pass; K = 100: short last groups and blocks
  const auto m = test::element_matrix<E>(N, K, 51, 104);
  const auto x = correlated_inputs(300, K, 52);
  const GptqHessian h = hessian_of(x, 300, K);
  std::vector<float> scale(K, 1.0f);
  for (std::size_t k = 0; k < K; k += 9) scale[k] = 3.0f;
  for (bool static_groups : {false, true}) {
    GptqOptions o;
    o.block = 32;
    o.act_order = true;
    o.static_groups = static_groups;
    o.clip_steps = 4;
    for (const UniformFormat& f : kUniformFormats) {
      rankq::GptqReport ra, rb;
      expect_same_uniform(rankq::gptq_quantize_uniform(m.view(), h, f, o, &ra), rankq::gptq_quantize_uniform(m.float_view(), h, f, o, &rb));
      EXPECT_EQ(ra.objective, rb.objective);
    }
    o.clip_steps = 0;
    for (const MxFormat& f : {MxFormat{4, 16, rankq::MxSemantics::lqer}, MxFormat{3, 32, rankq::MxSemantics::ocp}}) {
      const rankq::MxTensor a = rankq::gptq_quantize_mxint(m.view(), h, f, o), b = rankq::gptq_quantize_mxint(m.float_view(), h, f, o);
      EXPECT_TRUE(std::equal(a.codes.begin(), a.codes.end(), b.codes.begin(), b.codes.end()));
      EXPECT_TRUE(std::equal(a.exponents.begin(), a.exponents.end(), b.exponents.begin(), b.exponents.end()));
      rankq::LqerOptions lo;
      lo.rank = 8;
      const auto la = rankq::gptq_quantize_lqer(m.view(), h, f, scale, lo, o), lb = rankq::gptq_quantize_lqer(m.float_view(), h, f, scale, lo, o);
      expect_same_uniform(la.weights, lb.weights);
      expect_same_uniform(la.correction.a_t, lb.correction.a_t);
      expect_same_uniform(la.correction.b_t, lb.correction.b_t);
      EXPECT_EQ(la.correction.singular_values, lb.correction.singular_values);
    }
    rankq::LqerOptions lo;
    lo.rank = 4;
    const auto la = rankq::gptq_quantize_lqer(m.view(), h, kUniformFormats[1], {}, lo, o);
    const auto lb = rankq::gptq_quantize_lqer(m.float_view(), h, kUniformFormats[1], {}, lo, o);
    expect_same_uniform(la.weights, lb.weights);
    expect_same_uniform(la.correction.a_t, lb.correction.a_t);
    EXPECT_EQ(la.correction.b_t_float, lb.correction.b_t_float);
  }
  rankq::LcqOptions lcq;
  lcq.bits = 3;
  lcq.group_size = 32;
  lcq.rank = 2;
  lcq.max_iterations = 3;
  lcq.threads = 1;
  GptqOptions o;
  o.lcq_refits = 1;
  const rankq::CodebookWeights a = rankq::gptq_fit_lcq(m.view(), h, lcq, o), b = rankq::gptq_fit_lcq(m.float_view(), h, lcq, o);
  EXPECT_TRUE(std::equal(a.indices.begin(), a.indices.end(), b.indices.begin(), b.indices.end()));
  EXPECT_EQ(a.S, b.S);
  EXPECT_EQ(a.B, b.B);
  EXPECT_EQ(a.V, b.V);
  const std::vector<float> w_hat = rankq::dequantize(a);
  EXPECT_EQ(rankq::gptq_objective(m.view(), w_hat, h), rankq::gptq_objective(m.float_view(), w_hat, h));
}
}  // namespace

TEST(Gptq, Bf16AndF16ViewsGiveTheFloatResultBitForBit) {
  expect_gptq_element_view_equals_float_path<rankq::bf16_t>();
  expect_gptq_element_view_equals_float_path<rankq::f16_t>();
}
