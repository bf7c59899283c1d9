// Tests for rankq/kernels/reference.hpp: the oracle equals float64 math on the dequantized operands over a size
// ladder, its integer part is exact on extreme values, MXINT weights convert exactly, errors are clear.
#include <rankq/kernels/reference.hpp>

#include <gtest/gtest.h>

#include <limits>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "test_util.hpp"

using namespace rankq;

namespace {

// Float64 product of the dequantized operands, and the magnitude sum that bounds float rounding.
void float64_matmul(const QuantizedActivations& x, const UniformWeights& w, std::vector<double>& y, std::vector<double>& mag) {
  y.assign(x.rows * w.rows, 0.0);
  mag.assign(x.rows * w.rows, 0.0);
  for (std::size_t m = 0; m < x.rows; ++m)
    for (std::size_t n = 0; n < w.rows; ++n)
      for (std::size_t k = 0; k < w.cols; ++k) {
        const double xv = x.value(m, k);
        const std::size_t g = k / w.group;
        y[m * w.rows + n] += xv * static_cast<double>(w.value(n, k));
        mag[m * w.rows + n] += std::fabs(xv) * (w.scale(n, g) * double(w.code(n, k)) + std::fabs(w.offset(n, g)));
      }
}

void check_against_float64(std::size_t M, std::size_t N, std::size_t K, const UniformFormat& wf, const ActivationFormat& af,
                           std::uint64_t seed) {
  auto wv = test::heavy_tailed(N * K, seed);
  auto xv = test::activations(M, K, seed + 1);
  auto w = quantize_uniform(MatrixView<const float>(wv.data(), N, K), wf);
  auto x = quantize_activations(MatrixView<const float>(xv.data(), M, K), af, w.padded);
  std::vector<float> y(M * N);
  reference_matmul(x, w, MatrixView<float>(y.data(), M, N));
  std::vector<double> y64, mag;
  float64_matmul(x, w, y64, mag);
  for (std::size_t i = 0; i < y.size(); ++i)
    ASSERT_NEAR(y[i], y64[i], 2e-6 * mag[i] + 1e-30) << "M=" << M << " N=" << N << " K=" << K << " " << to_string(wf)
                                                     << " " << to_string(af) << " i=" << i;
}

const std::vector<std::size_t> kLadder = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 31, 33, 64, 172, 257};

}  // namespace

TEST(Reference, MatchesFloat64OverSizeLadder) {
  const UniformFormat wf{4, 32, Symmetry::asymmetric, ScaleType::f16};
  const ActivationFormat af{};
  for (std::size_t a : kLadder) {
    check_against_float64(a, 7, 33, wf, af, a);
    check_against_float64(3, a, 64, wf, af, 100 + a);
    check_against_float64(2, 5, a, wf, af, 200 + a);
  }
  check_against_float64(31, 33, 257, wf, af, 7);
  check_against_float64(64, 96, 1024, wf, af, 8);
}

TEST(Reference, MatchesFloat64ForEveryFormatCombination) {
  for (unsigned bits : {2u, 3u, 4u, 8u})
    for (std::size_t g : {std::size_t(16), std::size_t(32), std::size_t(128), kWholeRow})
      for (Symmetry s : {Symmetry::symmetric, Symmetry::asymmetric})
        for (ActivationFormat af : {ActivationFormat{ActivationQuant::per_token, 32, MxSemantics::lqer},
                                    ActivationFormat{ActivationQuant::per_block, 16, MxSemantics::lqer},
                                    ActivationFormat{ActivationQuant::per_block, 32, MxSemantics::lqer},
                                    ActivationFormat{ActivationQuant::mxint8, 16, MxSemantics::lqer}})
          check_against_float64(3, 5, 172, UniformFormat{bits, g, s, ScaleType::f32}, af, bits * 7 + g);
}

TEST(Reference, IntegerPartIsExactOnExtremes) {
  // Unit scales and zero offsets: every output is the exact integer Σ q_x · t (float is exact below 2^24).
  for (std::size_t K : {16u, 172u, 4096u}) {
    for (int xval : {-128, 127, -127}) {
      for (unsigned t : {0u, 15u}) {
        auto w = make_uniform_weights(UniformFormat{4, 64, Symmetry::asymmetric, ScaleType::f32}, 3, K);
        for (std::size_t n = 0; n < 3; ++n)
          for (std::size_t k = 0; k < K; ++k) detail::put_bits(w.codes.data() + n * w.row_bytes, k, 4, t);
        for (auto& s : w.scales) s = 1.0f;
        QuantizedActivations x;
        std::vector<float> ones(K, 1.0f);
        quantize_activations(MatrixView<const float>(ones.data(), 1, K), ActivationFormat{}, x, w.padded);
        for (std::size_t k = 0; k < K; ++k) x.values[k] = static_cast<std::int8_t>(xval);
        x.scales[0] = 1.0f;
        std::vector<float> y(3);
        reference_matmul(x, w, MatrixView<float>(y.data(), 1, 3));
        const double expected = static_cast<double>(K) * xval * static_cast<double>(t);
        for (float v : y) EXPECT_EQ(static_cast<double>(v), expected) << "K=" << K;
      }
    }
  }
}

TEST(Reference, SymmetricZeroPointUsesGroupSumOfActivations) {
  // symmetric 4-bit, codes all 0 (level -8), unit scale: y = Σ x * (0 - 8) = -8 Σ x.
  auto w = make_uniform_weights(UniformFormat{4, 32, Symmetry::symmetric, ScaleType::f32}, 1, 64);
  for (auto& s : w.scales) s = 1.0f;
  std::vector<float> xs(64);
  for (std::size_t k = 0; k < 64; ++k) xs[k] = static_cast<float>(static_cast<int>(k % 7) - 3);
  auto x = quantize_activations(MatrixView<const float>(xs.data(), 1, 64), ActivationFormat{ActivationQuant::per_block, 16, MxSemantics::lqer});
  float y = 0;
  reference_matmul(x, w, MatrixView<float>(&y, 1, 1));
  double expected = 0;
  for (std::size_t k = 0; k < 64; ++k) expected += -8.0 * x.value(0, k);
  EXPECT_NEAR(y, expected, 1e-4);
}

TEST(Reference, BiasIsAdded) {
  auto wv = test::heavy_tailed(4 * 32, 1);
  auto xv = test::activations(2, 32, 2);
  auto w = quantize_uniform(MatrixView<const float>(wv.data(), 4, 32), UniformFormat{});
  auto x = quantize_activations(MatrixView<const float>(xv.data(), 2, 32), ActivationFormat{});
  std::vector<float> y0(8), y1(8), bias = {1, 2, 3, 4};
  reference_matmul(x, w, MatrixView<float>(y0.data(), 2, 4));
  reference_matmul(x, w, MatrixView<float>(y1.data(), 2, 4), bias.data());
  for (std::size_t i = 0; i < 8; ++i) EXPECT_FLOAT_EQ(y1[i], y0[i] + bias[i % 4]);
}

TEST(Reference, MxintWeightsConvertExactlyToUniform) {
  auto wv = test::heavy_tailed(5 * 40, 3);
  for (unsigned bits : {2u, 4u, 8u})
    for (MxSemantics s : {MxSemantics::lqer, MxSemantics::ocp}) {
      auto mx = quantize_mxint(MatrixView<const float>(wv.data(), 5, 40), MxFormat{bits, 16, s});
      auto u = to_uniform(mx);
      for (std::size_t n = 0; n < 5; ++n)
        for (std::size_t k = 0; k < 40; ++k) ASSERT_EQ(u.value(n, k), mx.value(n, k));
    }
}

// Block maxima in [2^127, FLT_MAX]: the uniform form's implicit offset s·2^(w−1) is 2^128 (not a float) there, yet
// every value must come out finite and equal to the MXINT value (docs/math.md §2.2).
TEST(Reference, MxintToUniformIsFiniteAtTheTopOfTheFloatRange) {
  const float top[] = {std::ldexp(1.0f, 127), std::nextafter(std::ldexp(1.0f, 127), 0.0f), 2.5e38f,
                       std::numeric_limits<float>::max()};
  for (float bmax : top) {
    std::vector<float> x(2 * 40);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = bmax / 8.0f * static_cast<float>(static_cast<int>(i % 17) - 8);
    x[5] = -bmax;
    x[41] = 1.0f;  // a block of small values next to huge ones
    for (unsigned bits : {2u, 3u, 4u, 8u})
      for (MxSemantics sem : {MxSemantics::lqer, MxSemantics::ocp}) {
        const MxFormat f{bits, 16, sem};
        const MatrixView<const float> view(x.data(), 2, 40);
        const MxTensor mx = quantize_mxint(view, f);
        for (const UniformWeights& u : {to_uniform(mx), detail::quantize_mxint_uniform(view, f)}) {
          const std::vector<float> d = dequantize(u);
          for (std::size_t n = 0; n < 2; ++n)
            for (std::size_t k = 0; k < 40; ++k) {
              ASSERT_TRUE(std::isfinite(d[n * 40 + k])) << to_string(f) << " bmax " << bmax << " at " << n << "," << k;
              ASSERT_EQ(d[n * 40 + k], mx.value(n, k)) << to_string(f) << " bmax " << bmax;
            }
        }
        // The largest level is representable: |x̂| reaches (2^m − 1)·2^σ, not 0.
        EXPECT_GT(std::fabs(mx.value(0, 5)), bmax / 4) << to_string(f);
      }
  }
}

// quantize_lqer quantizes MXINT weights straight into the uniform form; it must equal to_uniform(quantize_mxint)
// byte for byte: codes (with padding), scales, every width with a uniform form, both semantics and block sizes,
// short last blocks, all-zero blocks (borrowed exponent) and tiny blocks (the double-precision quantizer).
TEST(Reference, DirectMxintToUniformEqualsTheTwoStepConversion) {
  std::mt19937_64 rng(5);
  std::normal_distribution<float> g(0.0f, 1.0f);
  for (int trial = 0; trial < 40; ++trial) {
    const std::size_t R = 1 + rng() % 4, C = 1 + rng() % 90;
    std::vector<float> x(R * C);
    for (float& v : x) {
      const unsigned kind = static_cast<unsigned>(rng() % 6);
      v = kind == 0 ? 0.0f : kind == 1 ? g(rng) * 1e-39f : g(rng) * static_cast<float>(trial % 3 ? 0.05 : 3e3);
    }
    if (trial % 5 == 0) std::fill(x.begin(), x.begin() + std::min<std::size_t>(C, 20), 0.0f);
    const MatrixView<const float> view(x.data(), R, C);
    for (unsigned bits : {2u, 3u, 4u, 8u})
      for (std::size_t block : {std::size_t(16), std::size_t(32)})
        for (MxSemantics sem : {MxSemantics::lqer, MxSemantics::ocp}) {
          const MxFormat f{bits, block, sem};
          const UniformWeights two_step = to_uniform(quantize_mxint(view, f));
          const UniformWeights direct = detail::quantize_mxint_uniform(view, f);
          ASSERT_EQ(direct.codes.size(), two_step.codes.size());
          ASSERT_EQ(direct.scales.size(), two_step.scales.size());
          for (std::size_t i = 0; i < direct.codes.size(); ++i)
            ASSERT_EQ(direct.codes[i], two_step.codes[i]) << to_string(f) << " trial " << trial << " byte " << i;
          for (std::size_t i = 0; i < direct.scales.size(); ++i)
            ASSERT_EQ(direct.scales[i], two_step.scales[i]) << to_string(f) << " trial " << trial << " scale " << i;
        }
  }
  test::expect_invalid([] {
    std::vector<float> x(16, 1.0f);
    detail::quantize_mxint_uniform(MatrixView<const float>(x.data(), 1, 16), MxFormat{5, 16, MxSemantics::lqer});
  }, "format.bits");
}

TEST(Reference, InvalidArguments) {
  auto wv = test::heavy_tailed(4 * 40, 1);
  auto w = quantize_uniform(MatrixView<const float>(wv.data(), 4, 40), UniformFormat{4, 32, Symmetry::symmetric, ScaleType::f16});
  auto xv = test::activations(2, 40, 2);
  auto x_ok = quantize_activations(MatrixView<const float>(xv.data(), 2, 40), ActivationFormat{}, w.padded);
  auto x_badpad = quantize_activations(MatrixView<const float>(xv.data(), 2, 40), ActivationFormat{});
  auto x_badk = quantize_activations(MatrixView<const float>(xv.data(), 2, 39, 40), ActivationFormat{}, w.padded);
  std::vector<float> y(8);
  test::expect_invalid([&] { reference_matmul(x_badpad, w, MatrixView<float>(y.data(), 2, 4)); }, "padded");
  test::expect_invalid([&] { reference_matmul(x_badk, w, MatrixView<float>(y.data(), 2, 4)); }, "K = 39");
  test::expect_invalid([&] { reference_matmul(x_ok, w, MatrixView<float>(y.data(), 2, 3)); }, "'y'");
  test::expect_invalid([&] { reference_matmul(x_ok, w, MatrixView<float>(nullptr, 2, 4)); }, "null");
}
