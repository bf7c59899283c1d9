// Tests for rankq/formats/activation.hpp: per-token / per-block int8 and MXINT8 activation quantization.
#include <rankq/formats/activation.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "test_util.hpp"

using namespace rankq;

namespace {
std::vector<ActivationFormat> all_formats() {
  std::vector<ActivationFormat> v{{ActivationQuant::per_token, 32, MxSemantics::lqer}};
  for (std::size_t b : {16u, 32u}) {
    v.push_back({ActivationQuant::per_block, b, MxSemantics::lqer});
    v.push_back({ActivationQuant::mxint8, b, MxSemantics::lqer});
    v.push_back({ActivationQuant::mxint8, b, MxSemantics::ocp});
  }
  return v;
}
}  // namespace

TEST(Activation, RoundTripWithinHalfStepAndPaddingIsZero) {
  for (const auto& f : all_formats())
    for (std::size_t K : {1, 15, 16, 33, 172, 257}) {
      const std::size_t M = 4;
      auto x = test::activations(M, K, K);
      auto q = quantize_activations(MatrixView<const float>(x.data(), M, K), f);
      ASSERT_EQ(q.padded, (K + 15) / 16 * 16);
      for (std::size_t m = 0; m < M; ++m) {
        for (std::size_t k = 0; k < K; ++k) {
          const float s = q.scale(m, k / q.block);
          ASSERT_GE(q.values[m * q.padded + k], -127);
          EXPECT_LE(std::fabs(q.value(m, k) - x[m * K + k]), 0.5f * s * 1.0001f + 1e-7f) << to_string(f);
        }
        for (std::size_t k = K; k < q.padded; ++k) EXPECT_EQ(q.values[m * q.padded + k], 0);
      }
    }
}

TEST(Activation, PerTokenScaleIsRowMaxOver127) {
  std::vector<float> x = {0.5f, -2.54f, 1.27f, 0.0f};
  auto q = quantize_activations(MatrixView<const float>(x.data(), 1, 4), ActivationFormat{});
  EXPECT_EQ(q.blocks, 1u);
  EXPECT_FLOAT_EQ(q.scale(0, 0), 2.54f / 127.0f);
  EXPECT_EQ(q.values[1], -127);
  EXPECT_EQ(q.values[2], 64);  // 63.5 after float rounding of 1.27 * (127 / 2.54) ties to even or rounds up
}

TEST(Activation, Mxint8ScalesArePowersOfTwo) {
  auto x = test::activations(3, 64, 9);
  for (MxSemantics s : {MxSemantics::lqer, MxSemantics::ocp}) {
    auto q = quantize_activations(MatrixView<const float>(x.data(), 3, 64), ActivationFormat{ActivationQuant::mxint8, 16, s});
    for (std::size_t i = 0; i < q.scales.size(); ++i) {
      int e = 0;
      EXPECT_EQ(std::frexp(q.scales[i], &e), 0.5f);
    }
  }
}

TEST(Activation, ZeroRowsAndExplicitPadding) {
  std::vector<float> x(2 * 20, 0.0f);
  x[25] = 3.0f;
  auto q = quantize_activations(MatrixView<const float>(x.data(), 2, 20), ActivationFormat{}, 64);
  EXPECT_EQ(q.padded, 64u);
  EXPECT_EQ(q.scale(0, 0), 0.0f);
  EXPECT_EQ(q.values[64 + 5], 127);
}

TEST(Activation, BuffersAreReused) {
  auto x = test::activations(2, 40, 1);
  QuantizedActivations q;
  quantize_activations(MatrixView<const float>(x.data(), 2, 40), ActivationFormat{}, q);
  const auto* p = q.values.data();
  quantize_activations(MatrixView<const float>(x.data(), 2, 40), ActivationFormat{}, q);
  EXPECT_EQ(p, q.values.data());
}

TEST(Activation, InvalidArguments) {
  std::vector<float> x(2 * 20, 1.0f);
  MatrixView<const float> v(x.data(), 2, 20);
  test::expect_invalid([&] { quantize_activations(v, ActivationFormat{ActivationQuant::per_block, 8, MxSemantics::lqer}); }, "format.block");
  test::expect_invalid([&] { quantize_activations(v, ActivationFormat{}, 24); }, "padded_cols");
  test::expect_invalid([&] { quantize_activations(v, ActivationFormat{}, 16); }, "padded_cols");
  x[21] = std::nanf("");
  test::expect_invalid([&] { quantize_activations(v, ActivationFormat{}); }, "row 1");
}
