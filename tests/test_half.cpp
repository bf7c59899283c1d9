// Tests for rankq/formats/half.hpp: binary16 and bfloat16 conversions against the hardware (F16C on x86) and edge cases.
#include <rankq/formats/half.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>

#include "rankq/detail/cpu_features.hpp"

#if RANKQ_ARCH_X86_64 && RANKQ_GNU_COMPATIBLE
#include <immintrin.h>
// The vector forms: Clang's scalar _cvtss_sh/_cvtsh_ss macros use C99 compound literals (-Wpedantic).
__attribute__((target("f16c"))) static std::uint16_t hw_float_to_half(float f) {
  const __m128i h = _mm_cvtps_ph(_mm_set_ss(f), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  return static_cast<std::uint16_t>(_mm_extract_epi16(h, 0));
}
__attribute__((target("f16c"))) static float hw_half_to_float(std::uint16_t h) {
  return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h)));
}
#endif

using namespace rankq;

TEST(Half, EdgeCases) {
  EXPECT_EQ(float_to_half(0.0f), 0x0000);
  EXPECT_EQ(float_to_half(-0.0f), 0x8000);
  EXPECT_EQ(float_to_half(1.0f), 0x3C00);
  EXPECT_EQ(float_to_half(65504.0f), 0x7BFF);
  EXPECT_EQ(float_to_half(65520.0f), 0x7C00);  // rounds to Inf
  EXPECT_EQ(float_to_half(std::numeric_limits<float>::infinity()), 0x7C00);
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -25)), 0x0000);  // tie to even -> 0
  EXPECT_EQ(float_to_half(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_TRUE(std::isnan(half_to_float(float_to_half(std::nanf("")))));
  EXPECT_EQ(half_to_float(0x3555), 0.333251953125f);
  EXPECT_EQ(bf16_to_float(float_to_bf16(1.0f)), 1.0f);
  EXPECT_EQ(float_to_bf16(1.00390625f), 0x3F80);  // tie to even
  EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(std::nanf("")))));
}

TEST(Half, EveryHalfRoundTrips) {
  for (std::uint32_t h = 0; h < 65536; ++h) {
    const float f = half_to_float(static_cast<std::uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(float_to_half(f), h) << std::hex << h;
  }
}

#if RANKQ_ARCH_X86_64 && RANKQ_GNU_COMPATIBLE
TEST(Half, MatchesF16CBitForBit) {
  if (!detail::cpu_features().avx2) GTEST_SKIP() << "no F16C on this CPU";
  for (std::uint32_t h = 0; h < 65536; ++h) {
    const float a = half_to_float(static_cast<std::uint16_t>(h)), b = hw_half_to_float(static_cast<std::uint16_t>(h));
    if (std::isnan(a)) {
      ASSERT_TRUE(std::isnan(b));
      continue;
    }
    ASSERT_EQ(float_bits(a), float_bits(b)) << std::hex << h;
  }
  std::mt19937 rng(7);
  for (int i = 0; i < 2000000; ++i) {
    std::uint32_t bits = rng();
    if (i % 2) bits = (bits & 0x807FFFFFu) | ((100u + rng() % 50u) << 23);  // concentrate near the f16 range
    const float f = bits_float(bits);
    if (std::isnan(f)) continue;
    ASSERT_EQ(float_to_half(f), hw_float_to_half(f)) << std::hex << bits;
  }
}
#endif
