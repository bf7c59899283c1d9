// Tests for rankq/mxint.hpp: the papers' golden vectors (both semantics), ties, power-of-two maxima, layout, errors.
#include <rankq/mxint.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "test_util.hpp"

using namespace rankq;

namespace {
const std::vector<float> kGoldenX = {1.0f, 0.5f, -0.25f, 0.75f, 0.1f, -1.0f, 0.3f, 0.0f,
                                     0.9f, -0.6f, 0.2f,  0.05f, 0.4f, -0.8f, 0.66f, 0.125f};
std::vector<float> round_trip(const std::vector<float>& x, MxFormat f) {
  return mxint_round_trip(MatrixView<const float>(x.data(), 1, x.size()), f);
}
}  // namespace

TEST(Mxint, GoldenVectorLqerSemantics) {
  const std::vector<float> expected = {0.875f, 0.5f, -0.25f, 0.75f, 0.125f, -0.875f, 0.25f, 0.0f,
                                       0.875f, -0.625f, 0.25f, 0.0f, 0.375f, -0.75f, 0.625f, 0.125f};
  EXPECT_EQ(round_trip(kGoldenX, MxFormat{4, 16, MxSemantics::lqer}), expected);
}

TEST(Mxint, GoldenVectorOcpSemantics) {
  const std::vector<float> expected = {1.0f, 0.5f, -0.25f, 0.75f, 0.0f, -1.0f, 0.25f, 0.0f,
                                       1.0f, -0.5f, 0.25f, 0.0f, 0.5f, -0.75f, 0.75f, 0.0f};
  EXPECT_EQ(round_trip(kGoldenX, MxFormat{4, 16, MxSemantics::ocp}), expected);
}

TEST(Mxint, SemanticsAgreeWhenBlockMaxIsNotAPowerOfTwo) {
  auto x = kGoldenX;
  x[0] = 0.9f;
  x[5] = -0.9f;
  EXPECT_EQ(round_trip(x, MxFormat{4, 16, MxSemantics::lqer}), round_trip(x, MxFormat{4, 16, MxSemantics::ocp}));
}

TEST(Mxint, TiesRoundHalfToEven) {
  // lqer, 4 bits, bmax 1 -> step 1/8: 0.0625 = 0.5 step -> 0; 0.1875 = 1.5 steps -> 2; 0.3125 = 2.5 -> 2
  std::vector<float> x(16, 0.0f);
  x[0] = 0.5f;  // bmax 0.5 -> e = -1, step 1/16
  x[1] = 0.03125f;   // 0.5 step -> 0
  x[2] = 0.09375f;   // 1.5 steps -> 2
  x[3] = -0.15625f;  // 2.5 steps -> 2
  auto y = round_trip(x, MxFormat{4, 16, MxSemantics::lqer});
  EXPECT_EQ(y[1], 0.0f);
  EXPECT_EQ(y[2], 0.125f);
  EXPECT_EQ(y[3], -0.125f);
  EXPECT_EQ(y[0], 0.4375f);  // clipped to 7/8 * 2^-1
}

TEST(Mxint, PowerOfTwoMaximaAndExponentStorage) {
  for (int p : {-20, -1, 0, 3, 30}) {
    std::vector<float> x(32, 0.0f);
    x[7] = std::ldexp(1.0f, p);
    auto lq = quantize_mxint(MatrixView<const float>(x.data(), 1, 32), MxFormat{8, 32, MxSemantics::lqer});
    auto oc = quantize_mxint(MatrixView<const float>(x.data(), 1, 32), MxFormat{8, 32, MxSemantics::ocp});
    EXPECT_EQ(lq.shared_exponent(0, 0), p);
    EXPECT_EQ(oc.shared_exponent(0, 0), p);
    EXPECT_EQ(lq.value(0, 7), std::ldexp(127.0f / 128.0f, p));  // lqer clips a power-of-two max
    EXPECT_EQ(oc.value(0, 7), std::ldexp(1.0f, p));              // ocp represents it exactly
    EXPECT_EQ(lq.exponents[0], p + 127);
  }
}

TEST(Mxint, SignMagnitudeCodesAndBitStream) {
  std::vector<float> x = {-0.875f, 0.875f, -0.125f, 0.0f};
  x.resize(16, 0.0f);
  auto t = quantize_mxint(MatrixView<const float>(x.data(), 1, 16), MxFormat{4, 16, MxSemantics::lqer});
  ASSERT_EQ(t.row_bytes, 8u);
  EXPECT_EQ(t.codes[0], (7u << 4) | (8u | 7u));  // element 0 low nibble: sign|7, element 1 high nibble: 7
  EXPECT_EQ(t.codes[1] & 0xF, 8u | 1u);
  EXPECT_EQ(t.level(0, 0), -7);
  EXPECT_EQ(t.level(0, 2), -1);
}

TEST(Mxint, RoundTripErrorBoundAndTails) {
  for (unsigned bits = 2; bits <= 8; ++bits)
    for (std::size_t block : {16u, 32u})
      for (MxSemantics s : {MxSemantics::lqer, MxSemantics::ocp}) {
        const std::size_t R = 3, C = 45;
        auto x = test::heavy_tailed(R * C, bits * 100 + block);
        MxFormat f{bits, block, s};
        auto t = quantize_mxint(MatrixView<const float>(x.data(), R, C), f);
        EXPECT_EQ(t.padded, (C + block - 1) / block * block);
        for (std::size_t r = 0; r < R; ++r)
          for (std::size_t c = 0; c < C; ++c) {
            const int e = t.shared_exponent(r, c / block);
            const int m = static_cast<int>(bits) - 1;
            const double step = std::ldexp(1.0, s == MxSemantics::lqer ? e - m : e - m + 1);
            const double qmax = ((1 << m) - 1) * step;
            const double v = x[r * C + c];
            const double clipped = std::min(std::fabs(v), qmax);
            EXPECT_LE(std::fabs(std::fabs(static_cast<double>(t.value(r, c))) - clipped), 0.5 * step + 1e-12)
                << to_string(f);
            EXPECT_LE(std::abs(t.level(r, c)), (1 << m) - 1);
          }
        for (std::size_t c = C; c < t.padded; ++c) EXPECT_EQ(t.level(0, c), 0);
      }
}

TEST(Mxint, AllZeroBlockBorrowsSmallestBlockMax) {
  std::vector<float> x(32, 0.0f);
  x[20] = 0.25f;  // block 1 max 0.25 -> e = -2; block 0 is all zero
  auto t = quantize_mxint(MatrixView<const float>(x.data(), 1, 32), MxFormat{4, 16, MxSemantics::lqer});
  EXPECT_EQ(t.shared_exponent(0, 0), -2);
  EXPECT_EQ(t.value(0, 0), 0.0f);
}

TEST(Mxint, BitsPerWeight) {
  EXPECT_DOUBLE_EQ(bits_per_weight(MxFormat{4, 16, MxSemantics::lqer}, 4096), 4.5);
  EXPECT_DOUBLE_EQ(bits_per_weight(MxFormat{8, 16, MxSemantics::lqer}, 4096), 8.5);
}

TEST(Mxint, InvalidArguments) {
  std::vector<float> x(16, 1.0f);
  MatrixView<const float> v(x.data(), 1, 16);
  test::expect_invalid([&] { quantize_mxint(v, MxFormat{9, 16, MxSemantics::lqer}); }, "format.bits");
  test::expect_invalid([&] { quantize_mxint(v, MxFormat{4, 24, MxSemantics::lqer}); }, "format.block");
  x[3] = std::nanf("");
  test::expect_invalid([&] { quantize_mxint(v, MxFormat{4, 16, MxSemantics::lqer}); }, "non-finite");
}
