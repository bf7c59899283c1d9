// Tests for rankq/algorithms/lqer.hpp: Eckart–Young in the scaled norm, s = 1 is plain LQER, full rank reconstructs,
// L²QER beats LQER on outlier activations and both improve with k, factor storage, bits, errors.
#include <rankq/algorithms/calibration.hpp>
#include <rankq/algorithms/lqer.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "test_util.hpp"

using namespace rankq;

namespace {

constexpr std::size_t kN = 96, kK = 160;  // N x K weights (PyTorch layout); the paper's m x n = 160 x 96

struct Layer {
  std::vector<float> w, x_calib, x_eval;
  std::vector<float> scale;  // L²QER s from x_calib
};

Layer make_layer(std::uint64_t seed, std::size_t N = kN, std::size_t K = kK) {
  Layer l;
  l.w = test::heavy_tailed(N * K, seed);
  l.x_calib = test::activations(256, K, seed + 1);
  l.x_eval = test::activations(128, K, seed + 2);
  ActivationStats st(K);
  for (std::size_t b = 0; b < 4; ++b) st.add_batch(MatrixView<const float>(l.x_calib.data() + b * 64 * K, 64, K));
  l.scale = l2qer_scale(st);
  return l;
}

MatrixView<const float> view(const std::vector<float>& v, std::size_t rows, std::size_t cols) {
  return MatrixView<const float>(v.data(), rows, cols);
}

LqerOptions exact_options(std::size_t k, LowRankStorage st = LowRankStorage::mxint8) {
  LqerOptions o;
  o.rank = k;
  o.storage = st;
  o.svd.method = SvdMethod::exact;
  return o;
}

// Singular values (double) of diag(s)·E in the paper's orientation (K x N); E given N x K row-major.
Eigen::VectorXd scaled_singular_values(const std::vector<float>& e, const std::vector<float>& s, std::size_t N, std::size_t K) {
  Eigen::MatrixXd es(K, N);
  for (std::size_t n = 0; n < N; ++n)
    for (std::size_t k = 0; k < K; ++k) es(Eigen::Index(k), Eigen::Index(n)) = double(e[n * K + k]) * (s.empty() ? 1.0 : s[k]);
  return Eigen::JacobiSVD<Eigen::MatrixXd>(es).singularValues();
}

std::vector<float> quant_error(const std::vector<float>& w, const UniformWeights& q) {
  const auto d = dequantize(q);
  std::vector<float> e(w.size());
  for (std::size_t i = 0; i < w.size(); ++i) e[i] = w[i] - d[i];
  return e;
}

// ‖X·Rᵀ‖_F for a residual R (N x K) in double.
double output_norm(const std::vector<float>& x, std::size_t M, const std::vector<float>& r, std::size_t N, std::size_t K) {
  double sum = 0;
  for (std::size_t m = 0; m < M; ++m)
    for (std::size_t n = 0; n < N; ++n) {
      double acc = 0;
      for (std::size_t k = 0; k < K; ++k) acc += double(x[m * K + k]) * r[n * K + k];
      sum += acc * acc;
    }
  return std::sqrt(sum);
}

std::vector<float> minus(const std::vector<float>& a, const std::vector<float>& b) {
  std::vector<float> r(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) r[i] = a[i] - b[i];
  return r;
}

}  // namespace

TEST(Lqer, EckartYoungInTheScaledNorm) {
  const Layer l = make_layer(1);
  const UniformFormat f{3, 32, Symmetry::asymmetric, ScaleType::f16};
  for (bool scaled : {false, true}) {
    const std::vector<float> s = scaled ? l.scale : std::vector<float>{};
    for (std::size_t k : {1u, 8u, 32u, 95u}) {
      const LqerWeights r = quantize_lqer(view(l.w, kN, kK), f, s, exact_options(k));
      const auto e = quant_error(l.w, r.weights);
      const Eigen::VectorXd sv = scaled_singular_values(e, s, kN, kK);
      const double discarded = sv.tail(sv.size() - Eigen::Index(k)).squaredNorm();
      const auto c = dequantize_float(r.correction);
      double resid = 0;
      for (std::size_t n = 0; n < kN; ++n)
        for (std::size_t i = 0; i < kK; ++i) {
          const double d = (double(e[n * kK + i]) - c[n * kK + i]) * (s.empty() ? 1.0 : s[i]);
          resid += d * d;
        }
      EXPECT_NEAR(resid, discarded, 1e-5 * discarded) << "scaled=" << scaled << " k=" << k;
      EXPECT_NEAR(r.correction.scaled_error_norm_squared, sv.squaredNorm(), 1e-6 * sv.squaredNorm());
      for (std::size_t i = 0; i < k; ++i) EXPECT_NEAR(r.correction.singular_values[i], sv(Eigen::Index(i)), 1e-5 * sv(0));
    }
  }
}

TEST(Lqer, UnitScaleIsExactlyPlainLqer) {
  const Layer l = make_layer(2);
  const MxFormat f{4, 16, MxSemantics::lqer};
  const LqerWeights plain = quantize_lqer(view(l.w, kN, kK), f, {}, exact_options(8));
  const LqerWeights ones = quantize_lqer(view(l.w, kN, kK), f, std::vector<float>(kK, 1.0f), exact_options(8));
  EXPECT_EQ(plain.correction.a_t_float, ones.correction.a_t_float);
  EXPECT_EQ(plain.correction.b_t_float, ones.correction.b_t_float);
  EXPECT_EQ(dequantize(plain.correction), dequantize(ones.correction));
  // Plain LQER's A is U_k itself: orthonormal rows of Aᵀ.
  const auto& at = plain.correction.a_t_float;
  for (std::size_t r = 0; r < 8; ++r)
    for (std::size_t q = 0; q < 8; ++q) {
      double dot = 0;
      for (std::size_t i = 0; i < kK; ++i) dot += double(at[r * kK + i]) * at[q * kK + i];
      EXPECT_NEAR(dot, r == q ? 1.0 : 0.0, 1e-5);
    }
}

TEST(Lqer, FullRankReconstructsTheError) {
  const Layer l = make_layer(3);
  // A rank-5 "error" is reconstructed at k = 5; any error at k = min(N, K).
  std::vector<float> low(kN * kK, 0.0f);
  const auto p = test::heavy_tailed(kN * 5, 11), q = test::heavy_tailed(5 * kK, 12);
  for (std::size_t n = 0; n < kN; ++n)
    for (std::size_t r = 0; r < 5; ++r)
      for (std::size_t k = 0; k < kK; ++k) low[n * kK + k] += p[n * 5 + r] * q[r * kK + k];
  const std::vector<float> full = test::heavy_tailed(kN * kK, 13);
  for (const auto& s : {std::vector<float>{}, l.scale}) {
    using Case = std::pair<const std::vector<float>*, std::size_t>;
    for (auto [e, k] : {Case{&low, 5}, Case{&full, kN}}) {
      const LowRankCorrection c = fit_low_rank_correction(view(*e, kN, kK), s, exact_options(k));
      const auto rec = dequantize_float(c);
      double max_e = 0, max_d = 0;
      for (std::size_t i = 0; i < e->size(); ++i) {
        max_e = std::max(max_e, double(std::fabs((*e)[i])));
        max_d = std::max(max_d, double(std::fabs(rec[i] - (*e)[i])));
      }
      EXPECT_LT(max_d, 2e-4 * max_e) << "k=" << k << " scaled=" << !s.empty();
    }
  }
}

TEST(Lqer, L2qerBeatsLqerOnOutlierActivationsAndBothImproveWithK) {
  const Layer l = make_layer(4);
  const MxFormat f{3, 16, MxSemantics::lqer};
  const std::size_t M = 128;
  double prev_plain = std::numeric_limits<double>::infinity(), prev_l2 = prev_plain;
  double base = 0;
  for (std::size_t k : {1u, 2u, 4u, 8u, 16u, 32u, 64u}) {
    const LqerWeights plain = quantize_lqer(view(l.w, kN, kK), f, {}, exact_options(k));
    const LqerWeights l2 = quantize_lqer(view(l.w, kN, kK), f, l.scale, exact_options(k));
    const auto e = quant_error(l.w, plain.weights);
    if (base == 0) base = output_norm(l.x_eval, M, e, kN, kK);
    // Float factors: the residual's output norm is Σ_{i>k} σ_i²‖X·diag(s)⁻¹u_i‖², monotone in k.
    const double out_plain = output_norm(l.x_eval, M, minus(e, dequantize_float(plain.correction)), kN, kK);
    const double out_l2 = output_norm(l.x_eval, M, minus(e, dequantize_float(l2.correction)), kN, kK);
    EXPECT_LT(out_l2, out_plain) << "k=" << k;
    EXPECT_LT(out_plain, base) << "k=" << k;
    EXPECT_LE(out_plain, prev_plain * (1 + 1e-6)) << "k=" << k;
    EXPECT_LE(out_l2, prev_l2 * (1 + 1e-6)) << "k=" << k;
    prev_plain = out_plain;
    prev_l2 = out_l2;
    // Quantized (8-bit) factors keep the ordering.
    const double q_plain = output_norm(l.x_eval, M, minus(e, dequantize(plain.correction)), kN, kK);
    const double q_l2 = output_norm(l.x_eval, M, minus(e, dequantize(l2.correction)), kN, kK);
    EXPECT_LT(q_l2, q_plain) << "k=" << k;
    EXPECT_NEAR(q_l2, out_l2, 0.05 * out_l2) << "k=" << k;
  }
  EXPECT_LT(prev_l2, 0.5 * base);  // k = 64 of 96 removes most of the output error
}

TEST(Lqer, FactorStorageFormats) {
  const Layer l = make_layer(5);
  const UniformFormat f{4, 32, Symmetry::symmetric, ScaleType::f16};
  for (LowRankStorage st : {LowRankStorage::mxint8, LowRankStorage::int8_group16, LowRankStorage::int8_row}) {
    const std::size_t k = 16;
    const LqerWeights r = quantize_lqer(view(l.w, kN, kK), f, l.scale, exact_options(k, st));
    const LowRankCorrection& c = r.correction;
    EXPECT_EQ(c.a_t.rows, k);
    EXPECT_EQ(c.a_t.cols, kK);
    EXPECT_EQ(c.b_t.rows, kN);
    EXPECT_EQ(c.b_t.cols, k);
    EXPECT_EQ(c.a_t.format.bits, 8u);
    EXPECT_EQ(c.a_t.format.symmetry, Symmetry::symmetric);
    const std::size_t expect_group = st == LowRankStorage::int8_row ? c.a_t.padded : 16;
    EXPECT_EQ(c.a_t.group, expect_group) << to_string(st);
    // 8-bit factors are close to the float ones.
    const auto a = dequantize(c.a_t), b = dequantize(c.b_t);
    auto rel = [](const std::vector<float>& x, const std::vector<float>& y) {
      double num = 0, den = 0;
      for (std::size_t i = 0; i < x.size(); ++i) num += double(x[i] - y[i]) * (x[i] - y[i]), den += double(y[i]) * y[i];
      return std::sqrt(num / den);
    };
    EXPECT_LT(rel(a, c.a_t_float), st == LowRankStorage::int8_row ? 0.05 : 0.02) << to_string(st);
    EXPECT_LT(rel(b, c.b_t_float), 0.02) << to_string(st);
  }
}

TEST(Lqer, BitsPerWeight) {
  const Layer l = make_layer(6);
  const MxFormat f{4, 16, MxSemantics::lqer};
  const LqerWeights r = quantize_lqer(view(l.w, kN, kK), f, l.scale, exact_options(32));
  EXPECT_DOUBLE_EQ(r.weight_bits, 4.5);
  const double m = kK, n = kN;
  EXPECT_NEAR(bits_per_weight(r), 4.5 + 8.5 * 32 * (m + n) / (m * n), 1e-12);  // the paper's formula
  // k = 8: Bᵀ rows are padded to a 16-value block, which the count includes.
  const LqerWeights r8 = quantize_lqer(view(l.w, kN, kK), f, l.scale, exact_options(8));
  EXPECT_NEAR(bits_per_weight(r8.correction), (8.0 * kK * 8.5 + n * (16 * 8 + 8)) / (m * n), 1e-12);
  const LqerWeights ri = quantize_lqer(view(l.w, kN, kK), f, l.scale, exact_options(32, LowRankStorage::int8_group16));
  EXPECT_NEAR(bits_per_weight(ri.correction), 9.0 * 32 * (m + n) / (m * n), 1e-12);
}

TEST(Lqer, MxintWeightsAreKeptExactlyInUniformForm) {
  const Layer l = make_layer(7);
  const MxFormat f{4, 16, MxSemantics::lqer};
  const LqerWeights r = quantize_lqer(view(l.w, kN, kK), f, {}, exact_options(4));
  EXPECT_EQ(dequantize(r.weights), dequantize(quantize_mxint(view(l.w, kN, kK), f)));
}

TEST(Lqer, RandomizedSvdIsCloseToExact) {
  const Layer l = make_layer(8);
  const MxFormat f{3, 16, MxSemantics::lqer};
  LqerOptions o;
  o.rank = 8;
  o.svd.method = SvdMethod::randomized;
  const LqerWeights rnd = quantize_lqer(view(l.w, kN, kK), f, l.scale, o);
  const LqerWeights ex = quantize_lqer(view(l.w, kN, kK), f, l.scale, exact_options(8));
  EXPECT_EQ(rnd.correction.svd_method, SvdMethod::randomized);
  const double total = ex.correction.scaled_error_norm_squared;
  double kept_r = 0, kept_e = 0;
  for (std::size_t i = 0; i < 8; ++i)
    kept_r += rnd.correction.singular_values[i] * rnd.correction.singular_values[i],
        kept_e += ex.correction.singular_values[i] * ex.correction.singular_values[i];
  EXPECT_LE(std::sqrt(total - kept_r), 1.01 * std::sqrt(total - kept_e));
}

TEST(Lqer, BadInputIsAClearError) {
  const Layer l = make_layer(9);
  const UniformFormat f{4, 32, Symmetry::symmetric, ScaleType::f16};
  const auto w = view(l.w, kN, kK);
  test::expect_invalid([&] { quantize_lqer(w, f, {}, exact_options(97)); }, "'options.rank' = 97");
  test::expect_invalid([&] { quantize_lqer(w, f, {}, exact_options(0)); }, "'options.rank' = 0");
  test::expect_invalid([&] { quantize_lqer(w, f, std::vector<float>(kK - 1, 1.0f), exact_options(4)); }, "'scale'");
  std::vector<float> bad_scale(kK, 1.0f);
  bad_scale[3] = 0.0f;
  test::expect_invalid([&] { quantize_lqer(w, f, bad_scale, exact_options(4)); }, "entry 3");
  LqerOptions o = exact_options(4);
  o.storage = static_cast<LowRankStorage>(7);
  test::expect_invalid([&] { quantize_lqer(w, f, {}, o); }, "options.storage");
  std::vector<float> nan_w = l.w;
  nan_w[17] = std::numeric_limits<float>::quiet_NaN();
  test::expect_invalid([&] { quantize_lqer(view(nan_w, kN, kK), f, {}, exact_options(4)); }, "non-finite");
  test::expect_invalid([&] { fit_low_rank_correction(view(nan_w, kN, kK), {}, exact_options(4)); }, "'error'");
  test::expect_invalid([&] { fit_low_rank_correction(MatrixView<const float>(), {}, exact_options(4)); }, "'error'");
}

namespace {
void expect_same_uniform_bits(const UniformWeights& a, const UniformWeights& b, const std::string& what) {
  ASSERT_EQ(a.codes.size(), b.codes.size()) << what;
  EXPECT_TRUE(std::equal(a.codes.begin(), a.codes.end(), b.codes.begin())) << what;
  EXPECT_TRUE(a.scales.size() == b.scales.size() && test::same_bits(a.scales.data(), b.scales.data(), a.scales.size())) << what;
  EXPECT_TRUE(a.offsets.size() == b.offsets.size() && test::same_bits(a.offsets.data(), b.offsets.data(), a.offsets.size())) << what;
}

void expect_same_lqer(const LqerWeights& a, const LqerWeights& b, const std::string& what) {
  expect_same_uniform_bits(a.weights, b.weights, what + " weights");
  expect_same_uniform_bits(a.correction.a_t, b.correction.a_t, what + " a_t");
  expect_same_uniform_bits(a.correction.b_t, b.correction.b_t, what + " b_t");
  EXPECT_EQ(a.correction.a_t_float, b.correction.a_t_float) << what;
  EXPECT_EQ(a.correction.b_t_float, b.correction.b_t_float) << what;
  EXPECT_EQ(a.correction.singular_values, b.correction.singular_values) << what;
  EXPECT_EQ(a.correction.scaled_error_norm_squared, b.correction.scaled_error_norm_squared) << what;
  EXPECT_EQ(a.weight_bits, b.weight_bits) << what;
}

template <typename E>
void expect_lqer_element_view_equals_float_path(const char* type) {
  const auto m = test::element_matrix<E>(40, 100, 41, 104);  // K = 100: no group or block divides it; strided
  std::vector<float> scale(100);
  for (std::size_t k = 0; k < scale.size(); ++k) scale[k] = 0.5f + static_cast<float>(k % 7);
  LqerOptions o;
  o.rank = 8;
  for (const std::vector<float>& s : {std::vector<float>{}, scale}) {
    for (const UniformFormat& f : {UniformFormat{4, 32, Symmetry::asymmetric, ScaleType::f16},
                                   UniformFormat{3, kWholeRow, Symmetry::symmetric, ScaleType::f32}})
      expect_same_lqer(quantize_lqer(m.view(), f, s, o), quantize_lqer(m.float_view(), f, s, o),
                       std::string(type) + " " + to_string(f));
    for (const MxFormat& f : {MxFormat{4, 16, MxSemantics::lqer}, MxFormat{3, 32, MxSemantics::ocp}})
      expect_same_lqer(quantize_lqer(m.view(), f, s, o), quantize_lqer(m.float_view(), f, s, o),
                       std::string(type) + " " + to_string(f));
  }
  // The same errors as the float path, in the same order.
  test::expect_invalid([&] { quantize_lqer(m.view(), MxFormat{5, 16, MxSemantics::lqer}, {}, o); }, "only 2, 3, 4 and 8-bit");
  test::expect_invalid([&] { quantize_lqer(m.view(), MxFormat{4, 24, MxSemantics::lqer}, {}, o); }, "format.block");
}
}  // namespace

TEST(Lqer, Bf16AndF16ViewsGiveTheFloatResultBitForBit) {
  expect_lqer_element_view_equals_float_path<bf16_t>("bf16");
  expect_lqer_element_view_equals_float_path<f16_t>("f16");
}
