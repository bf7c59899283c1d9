// Tests for rankq/formats/uniform.hpp: formats, round trip, padding, constant groups, bit packing, errors.
#include <rankq/formats/uniform.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <random>
#include <vector>

#include "test_util.hpp"

using namespace rankq;

namespace {

std::vector<UniformFormat> all_formats() {
  std::vector<UniformFormat> out;
  for (unsigned b : {2u, 3u, 4u, 8u})
    for (std::size_t g : {std::size_t(16), std::size_t(32), std::size_t(64), std::size_t(128), kWholeRow})
      for (Symmetry s : {Symmetry::symmetric, Symmetry::asymmetric})
        for (ScaleType t : {ScaleType::f32, ScaleType::f16}) out.push_back({b, g, s, t});
  return out;
}

}  // namespace

TEST(Uniform, RoundTripWithinHalfStepForEveryFormatAndShape) {
  for (const auto& f : all_formats()) {
    for (std::size_t K : {1, 7, 16, 33, 172, 257}) {
      const std::size_t N = 5;
      auto w = test::heavy_tailed(N * K, 1234 + K);
      auto q = quantize_uniform(MatrixView<const float>(w.data(), N, K), f);
      ASSERT_EQ(q.padded % 16, 0u);
      ASSERT_GE(q.padded, K);
      ASSERT_EQ(q.groups * q.group, q.padded);
      for (std::size_t n = 0; n < N; ++n) {
        for (std::size_t k = 0; k < q.padded; ++k) {
          unsigned t = q.code(n, k);
          ASSERT_LT(t, 1u << f.bits);
          if (k >= K) {
            ASSERT_EQ(t, 0u) << "padding codes must be 0";
          }
        }
        for (std::size_t k = 0; k < K; ++k) {
          const std::size_t g = k / q.group;
          const double step = q.scale(n, g);
          const double err = std::fabs(static_cast<double>(q.value(n, k)) - w[n * K + k]);
          // half a step, plus the rounding of s*t - z in float (and of a constant group's f16 offset)
          // f16 scales below 2^-14 are subnormal: their rounding is absolute (2^-25), times up to 2^b levels.
          const bool f16 = f.scale_type == ScaleType::f16;
          const double rel = f16 ? std::ldexp(1.0, -11) : 1e-6;
          const double abs_err = f16 ? std::ldexp(1.0, static_cast<int>(f.bits) - 25) : 0.0;
          ASSERT_LE(err, 0.5 * step * (1 + 1e-3) + rel * std::fabs(w[n * K + k]) + abs_err + 1e-7)
              << to_string(f) << " K=" << K << " n=" << n << " k=" << k;
        }
      }
    }
  }
}

TEST(Uniform, SymmetricScaleIsMaxOverLevels) {
  std::vector<float> w = {1.0f, -0.5f, 0.25f, 0.0f, 0.7f, -0.7f, 0.1f, 0.2f,
                          0.3f, 0.4f, -0.1f, -0.2f, -0.3f, -0.4f, 0.05f, 0.6f};
  UniformFormat f{4, 16, Symmetry::symmetric, ScaleType::f32};
  auto q = quantize_uniform(MatrixView<const float>(w.data(), 1, 16), f);
  EXPECT_FLOAT_EQ(q.scale(0, 0), 1.0f / 7.0f);
  EXPECT_EQ(q.code(0, 0), 15u);  // +7
  EXPECT_EQ(q.code(0, 3), 8u);   // 0
  EXPECT_FLOAT_EQ(q.value(0, 0), 1.0f);
  EXPECT_FLOAT_EQ(q.value(0, 3), 0.0f);
}

TEST(Uniform, AsymmetricEndpointsAreExact) {
  std::vector<float> w(32);
  for (std::size_t i = 0; i < 32; ++i) w[i] = -1.0f + 3.0f * static_cast<float>(i) / 31.0f;
  UniformFormat f{4, 32, Symmetry::asymmetric, ScaleType::f32};
  auto q = quantize_uniform(MatrixView<const float>(w.data(), 1, 32), f);
  EXPECT_EQ(q.code(0, 0), 0u);
  EXPECT_EQ(q.code(0, 31), 15u);
  EXPECT_FLOAT_EQ(q.value(0, 0), -1.0f);
  EXPECT_NEAR(q.value(0, 31), 2.0f, 1e-6);
  EXPECT_FLOAT_EQ(q.offset(0, 0), 1.0f);
}

TEST(Uniform, HalfScalesAreRepresentableInF16) {
  auto w = test::heavy_tailed(8 * 100, 7);
  UniformFormat f{4, 32, Symmetry::asymmetric, ScaleType::f16};
  auto q = quantize_uniform(MatrixView<const float>(w.data(), 8, 100), f);
  for (std::size_t i = 0; i < q.scales.size(); ++i) {
    EXPECT_EQ(half_to_float(float_to_half(q.scales[i])), q.scales[i]);
    EXPECT_EQ(half_to_float(float_to_half(q.offsets[i])), q.offsets[i]);
  }
}

TEST(Uniform, ZeroAndConstantRowsQuantizeExactly) {
  for (Symmetry s : {Symmetry::symmetric, Symmetry::asymmetric}) {
    std::vector<float> w(2 * 40, 0.0f);
    for (std::size_t k = 0; k < 40; ++k) w[40 + k] = -0.375f;
    auto q = quantize_uniform(MatrixView<const float>(w.data(), 2, 40), UniformFormat{4, 16, s, ScaleType::f16});
    for (std::size_t k = 0; k < 40; ++k) {
      EXPECT_EQ(q.value(0, k), 0.0f);  // zero rows are exact in both
      if (s == Symmetry::asymmetric) {
        EXPECT_EQ(q.value(1, k), -0.375f);  // a constant group is its offset (s = 0)
      } else {
        EXPECT_NEAR(q.value(1, k), -0.375f, 0.375 * std::ldexp(1.0, -10));  // -7 * s with s rounded to f16
      }
    }
  }
}

TEST(Uniform, BitStreamLayoutIsLsbFirst) {
  // 4-bit: element 2j is the low nibble of byte j.
  std::vector<float> w(16);
  for (std::size_t i = 0; i < 16; ++i) w[i] = static_cast<float>(i);
  auto q = quantize_uniform(MatrixView<const float>(w.data(), 1, 16), UniformFormat{4, 16, Symmetry::asymmetric, ScaleType::f32});
  for (std::size_t j = 0; j < 8; ++j) {
    EXPECT_EQ(q.codes[j] & 0xF, 2 * j);
    EXPECT_EQ(q.codes[j] >> 4, 2 * j + 1);
  }
  // 3-bit: element j at bits [3j, 3j+3).
  auto q3 = quantize_uniform(MatrixView<const float>(w.data(), 1, 16), UniformFormat{3, 16, Symmetry::asymmetric, ScaleType::f32});
  ASSERT_EQ(q3.row_bytes, 6u);
  std::uint64_t stream = 0;
  for (std::size_t i = 0; i < 6; ++i) stream |= static_cast<std::uint64_t>(q3.codes[i]) << (8 * i);
  for (std::size_t j = 0; j < 16; ++j) EXPECT_EQ((stream >> (3 * j)) & 7u, q3.code(0, j));
}

TEST(Uniform, StridedViewsAreHonoured) {
  auto w = test::heavy_tailed(6 * 50, 3);
  std::vector<float> dense(6 * 40);
  for (std::size_t n = 0; n < 6; ++n)
    for (std::size_t k = 0; k < 40; ++k) dense[n * 40 + k] = w[n * 50 + k];
  UniformFormat f;
  auto a = quantize_uniform(MatrixView<const float>(w.data(), 6, 40, 50), f);
  auto b = quantize_uniform(MatrixView<const float>(dense.data(), 6, 40), f);
  EXPECT_EQ(dequantize(a), dequantize(b));
}

template <typename E>
void expect_element_view_equals_float_path() {
  // K = 100 and 47: no group size divides them (the last group is short); ld > K: strided rows.
  for (const auto& [rows, cols, ld] : {std::array<std::size_t, 3>{5, 100, 100}, {3, 47, 61}, {1, 16, 16}}) {
    const auto m = test::element_matrix<E>(rows, cols, 11 + cols, ld);
    for (const UniformFormat& f : all_formats()) {
      const UniformWeights a = quantize_uniform(m.view(), f), b = quantize_uniform(m.float_view(), f);
      ASSERT_EQ(a.codes.size(), b.codes.size());
      EXPECT_TRUE(std::equal(a.codes.begin(), a.codes.end(), b.codes.begin())) << to_string(f) << " K=" << cols;
      EXPECT_TRUE(test::same_bits(a.scales.data(), b.scales.data(), b.scales.size())) << to_string(f);
      ASSERT_EQ(a.offsets.size(), b.offsets.size());
      EXPECT_TRUE(test::same_bits(a.offsets.data(), b.offsets.data(), b.offsets.size())) << to_string(f);
    }
  }
}

TEST(Uniform, Bf16AndF16ViewsGiveTheFloatResultBitForBit) {
  expect_element_view_equals_float_path<bf16_t>();
  expect_element_view_equals_float_path<f16_t>();
  // A non-const view of 16-bit elements is accepted as well.
  auto m = test::element_matrix<bf16_t>(2, 40, 5);
  const UniformWeights a = quantize_uniform(MatrixView<bf16_t>(m.elements.data(), 2, 40), UniformFormat{});
  EXPECT_EQ(dequantize(a), dequantize(quantize_uniform(m.float_view(), UniformFormat{})));
}

TEST(Uniform, NonFiniteBf16WeightsAreNamedAsInFloat) {
  auto m = test::element_matrix<bf16_t>(3, 20, 9);
  m.elements[1 * 20 + 7] = bf16_t{0x7FC0};  // NaN
  test::expect_invalid([&] { quantize_uniform(m.view(), UniformFormat{}); }, "row 1, column 7");
  auto h = test::element_matrix<f16_t>(3, 20, 9);
  h.elements[2 * 20 + 3] = f16_t{0x7C00};  // +Inf
  test::expect_invalid([&] { quantize_uniform(h.view(), UniformFormat{}); }, "row 2, column 3");
}

TEST(Uniform, BitsPerWeightAccounting) {
  EXPECT_DOUBLE_EQ(bits_per_weight(UniformFormat{4, 32, Symmetry::symmetric, ScaleType::f16}, 4096), 4.5);
  EXPECT_DOUBLE_EQ(bits_per_weight(UniformFormat{4, 128, Symmetry::asymmetric, ScaleType::f16}, 4096), 4.25);
  // K = 172 pads to 176 with group 16
  EXPECT_DOUBLE_EQ(bits_per_weight(UniformFormat{4, 16, Symmetry::symmetric, ScaleType::f32}, 172), (176 * 4 + 11 * 32) / 172.0);
}

TEST(Uniform, InvalidArgumentsNameTheArgument) {
  std::vector<float> w(4 * 16, 1.0f);
  MatrixView<const float> v(w.data(), 4, 16);
  test::expect_invalid([&] { quantize_uniform(v, UniformFormat{5, 16, Symmetry::symmetric, ScaleType::f16}); }, "format.bits");
  test::expect_invalid([&] { quantize_uniform(v, UniformFormat{4, 48, Symmetry::symmetric, ScaleType::f16}); }, "format.group_size");
  test::expect_invalid([&] { quantize_uniform(MatrixView<const float>(w.data(), 0, 16), UniformFormat{}); }, "weights");
  test::expect_invalid([&] { quantize_uniform(MatrixView<const float>(nullptr, 4, 16), UniformFormat{}); }, "null");
  test::expect_invalid([&] { quantize_uniform(MatrixView<const float>(w.data(), 4, 16, 8), UniformFormat{}); }, "stride");
  w[17] = std::nanf("");
  test::expect_invalid([&] { quantize_uniform(v, UniformFormat{}); }, "row 1, column 1");
  w[17] = INFINITY;
  test::expect_invalid([&] { quantize_uniform(v, UniformFormat{}); }, "non-finite");
  std::vector<float> big(16, 1e6f);
  test::expect_invalid([&] { quantize_uniform(MatrixView<const float>(big.data(), 1, 16), UniformFormat{4, 16, Symmetry::asymmetric, ScaleType::f16}); }, "overflows");
}
