// Tests for rankq/formats/mxint.hpp: the papers' golden vectors (both semantics), ties, power-of-two maxima, layout, errors.
#include <rankq/formats/mxint.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
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

// quantize_mxint runs most blocks through the vectorizable float form (detail/mxint_quantize.hpp); this compares
// it with the definition (mx_quantize_block, double arithmetic) on every exponent range: subnormals, values whose
// step falls outside the float form's range, ties, mixed magnitudes in one block, all-zero blocks, -0, near FLT_MAX.
TEST(Mxint, FastFormEqualsDefinitionOnEveryExponentRange) {
  std::mt19937_64 rng(11);
  std::uniform_int_distribution<int> exponent(-150, 127);
  std::uniform_real_distribution<double> unit(-1.0, 1.0);
  for (int trial = 0; trial < 160; ++trial) {
    const std::size_t R = 1 + rng() % 5, C = 1 + rng() % 70;
    std::vector<float> x(R * C);
    const int kind = trial % 8;
    for (float& v : x) {
      switch (kind) {
        case 0: v = std::ldexp(static_cast<float>(static_cast<int>(rng() % 2001) - 1000) / 8.0f, exponent(rng) / 8); break;
        case 1: v = static_cast<float>(std::ldexp(unit(rng), exponent(rng))); break;
        case 2: v = rng() % 3 == 0 ? 0.0f : static_cast<float>(unit(rng) * 1e-40); break;  // subnormal blocks
        case 3: v = rng() % 4 ? 0.0f : static_cast<float>(unit(rng)); break;            // all-zero blocks
        case 4: v = std::ldexp(rng() % 2 ? -1.0f : 1.0f, exponent(rng)); break;          // powers of two
        case 5: v = rng() % 2 ? -0.0f : 0.0f; break;
        case 6: v = static_cast<float>(unit(rng) * 3.4e38); break;
        default: v = static_cast<float>(unit(rng) * 0.05 * static_cast<double>(1 + rng() % 5)); break;
      }
    }
    for (unsigned bits : {2u, 3u, 4u, 5u, 8u})
      for (std::size_t block : {std::size_t(16), std::size_t(32)})
        for (MxSemantics sem : {MxSemantics::lqer, MxSemantics::ocp}) {
          const MxFormat f{bits, block, sem};
          const MxTensor t = quantize_mxint(MatrixView<const float>(x.data(), R, C), f);
          const std::size_t blocks = (C + block - 1) / block;
          float fallback = std::numeric_limits<float>::infinity();
          for (std::size_t r = 0; r < R; ++r)
            for (std::size_t b = 0; b < blocks; ++b) {  // the smallest nonzero block max, borrowed by zero blocks
              float m = 0.0f;
              for (std::size_t c = b * block; c < std::min(C, (b + 1) * block); ++c) m = std::max(m, std::fabs(x[r * C + c]));
              if (m > 0.0f) fallback = std::min(fallback, m);
            }
          if (!std::isfinite(fallback)) fallback = 0.0f;
          std::vector<int> levels(block);
          for (std::size_t r = 0; r < R; ++r)
            for (std::size_t b = 0; b < blocks; ++b) {
              const std::size_t n = std::min(C, (b + 1) * block) - b * block;
              const int e = detail::mx_quantize_block(x.data() + r * C + b * block, n, f, fallback, levels.data());
              ASSERT_EQ(t.shared_exponent(r, b), e) << to_string(f) << " trial " << trial << " row " << r << " block " << b;
              for (std::size_t j = 0; j < n; ++j)
                ASSERT_EQ(t.level(r, b * block + j), levels[j])
                    << to_string(f) << " trial " << trial << " x = " << x[r * C + b * block + j];
            }
        }
  }
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

template <typename E>
void expect_mxint_element_view_equals_float_path() {
  // K = 100 and 47: short last blocks; ld > K: strided rows; scale 0 rows: all-zero blocks borrow the fallback.
  for (const auto& [rows, cols, ld] : {std::array<std::size_t, 3>{5, 100, 100}, {3, 47, 61}}) {
    auto m = test::element_matrix<E>(rows, cols, 21 + cols, ld);
    for (std::size_t c = 0; c < 20 && c < cols; ++c) {  // one all-zero block (the fallback exponent)
      m.elements[c] = E::from_float(0.0f);
      m.floats[c] = 0.0f;
    }
    for (unsigned bits : {2u, 3u, 4u, 8u})
      for (std::size_t block : {std::size_t(16), std::size_t(32)})
        for (MxSemantics sem : {MxSemantics::lqer, MxSemantics::ocp}) {
          const MxFormat f{bits, block, sem};
          const MxTensor a = quantize_mxint(m.view(), f), b = quantize_mxint(m.float_view(), f);
          EXPECT_TRUE(std::equal(a.codes.begin(), a.codes.end(), b.codes.begin(), b.codes.end())) << to_string(f);
          EXPECT_TRUE(std::equal(a.exponents.begin(), a.exponents.end(), b.exponents.begin(), b.exponents.end())) << to_string(f);
          EXPECT_EQ(mxint_round_trip(m.view(), f), mxint_round_trip(m.float_view(), f));
        }
  }
}

TEST(Mxint, Bf16AndF16ViewsGiveTheFloatResultBitForBit) {
  expect_mxint_element_view_equals_float_path<bf16_t>();
  expect_mxint_element_view_equals_float_path<f16_t>();
  auto m = test::element_matrix<f16_t>(2, 33, 4);
  m.elements[40] = f16_t{0x7E00};  // NaN at row 1, column 7
  test::expect_invalid([&] { quantize_mxint(m.view(), MxFormat{}); }, "row 1, column 7");
}
