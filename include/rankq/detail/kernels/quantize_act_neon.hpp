// rankq/detail/kernels/quantize_act_neon.hpp — activation quantization (per token, per block, MXINT8) with AArch64
// NEON (the primitives of activation_driver.inl), bit-identical to detail::quantize_act_block (FCVTNS rounds ties
// to even whatever FPCR says); and the exact int8 segment sums. Used by both NEON paths.
#pragma once

#include "rankq/detail/abi.hpp"

#include "rankq/detail/platform.hpp"

#if RANKQ_NEON_PATHS

#include <arm_neon.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "rankq/formats/activation.hpp"
#include "rankq/formats/mxint.hpp"

RANKQ_NAMESPACE_BEGIN namespace detail::neon {

/// The first min(n, 4) floats of x, zeros after (never reads x[n] or beyond).
RANKQ_ALWAYS_INLINE float32x4_t load_first4(const float* x, std::size_t n) {
  if (n >= 4) return vld1q_f32(x);
  float tmp[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  std::memcpy(tmp, x, n * sizeof(float));
  return vld1q_f32(tmp);
}

/// max |x[i]| over n floats, through the bit patterns (non-negative floats order like unsigned integers);
/// `finite` = no NaN/Inf among them.
RANKQ_ALWAYS_INLINE float abs_max(const float* x, std::size_t n, bool& finite) {
  const uint32x4_t abs_bits = vdupq_n_u32(0x7FFFFFFFu), max_finite = vdupq_n_u32(0x7F7FFFFFu);
  uint32x4_t m0 = vdupq_n_u32(0), m1 = m0, bad = m0;
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const uint32x4_t a0 = vandq_u32(vreinterpretq_u32_f32(vld1q_f32(x + i)), abs_bits);
    const uint32x4_t a1 = vandq_u32(vreinterpretq_u32_f32(vld1q_f32(x + i + 4)), abs_bits);
    bad = vorrq_u32(bad, vorrq_u32(vcgtq_u32(a0, max_finite), vcgtq_u32(a1, max_finite)));
    m0 = vmaxq_u32(m0, a0);
    m1 = vmaxq_u32(m1, a1);
  }
  for (; i < n; i += 4) {
    const uint32x4_t a = vandq_u32(vreinterpretq_u32_f32(load_first4(x + i, n - i)), abs_bits);
    bad = vorrq_u32(bad, vcgtq_u32(a, max_finite));
    m0 = vmaxq_u32(m0, a);
  }
  finite = vmaxvq_u32(bad) == 0;
  const std::uint32_t bits = vmaxvq_u32(vmaxq_u32(m0, m1));
  float amax;
  std::memcpy(&amax, &bits, sizeof amax);
  return amax;
}

/// Stores the first min(n, 16) of 16 int32 values (already in [-127, 127]) as int8.
RANKQ_ALWAYS_INLINE void store_first16(std::int8_t* q, std::size_t n, const int32x4_t (&r)[4]) {
  const int16x8_t lo = vcombine_s16(vqmovn_s32(r[0]), vqmovn_s32(r[1]));
  const int16x8_t hi = vcombine_s16(vqmovn_s32(r[2]), vqmovn_s32(r[3]));
  const int8x16_t b = vcombine_s8(vqmovn_s16(lo), vqmovn_s16(hi));
  if (n >= 16) {
    vst1q_s8(q, b);
  } else {
    std::int8_t tmp[16];
    vst1q_s8(tmp, b);
    std::memcpy(q, tmp, n);
  }
}

/// q = clamp(round_half_even(x · factor), ±127) for n values, 16 at a time (int8 rule).
RANKQ_ALWAYS_INLINE void quantize_scaled(const float* x, std::size_t n, float factor, std::int8_t* q) {
  const float32x4_t vf = vdupq_n_f32(factor);
  const int32x4_t hi = vdupq_n_s32(127), lo = vdupq_n_s32(-127);
  for (std::size_t i = 0; i < n; i += 16) {
    int32x4_t r[4];
    for (int j = 0; j < 4; ++j) {
      const std::size_t at = i + 4 * static_cast<std::size_t>(j);
      const float32x4_t v = at < n ? load_first4(x + at, n - at) : vdupq_n_f32(0.0f);
      r[j] = vminq_s32(vmaxq_s32(vcvtnq_s32_f32(vmulq_f32(v, vf)), lo), hi);
    }
    store_first16(q + i, n - i, r);
  }
}

/// q = sign(x) · min(round_half_even(|x| · 2^-step), 127) for n values (MXINT8 rule; |x| · 2^-step is exact
/// unless it is subnormal, and then it rounds to 0 either way).
RANKQ_ALWAYS_INLINE void quantize_pow2(const float* x, std::size_t n, float factor, std::int8_t* q) {
  const float32x4_t vf = vdupq_n_f32(factor);
  const int32x4_t hi = vdupq_n_s32(127);
  for (std::size_t i = 0; i < n; i += 16) {
    int32x4_t r[4];
    for (int j = 0; j < 4; ++j) {
      const std::size_t at = i + 4 * static_cast<std::size_t>(j);
      const float32x4_t v = at < n ? load_first4(x + at, n - at) : vdupq_n_f32(0.0f);
      const int32x4_t mag = vminq_s32(vcvtnq_s32_f32(vmulq_f32(vabsq_f32(v), vf)), hi);
      r[j] = vbslq_s32(vcltzq_f32(v), vnegq_s32(mag), mag);
    }
    store_first16(q + i, n - i, r);
  }
}

/// Σ q[0 .. len) exactly, len a multiple of 16.
RANKQ_ALWAYS_INLINE std::int32_t segment_sum(const std::int8_t* q, std::size_t len) {
  int32x4_t acc = vdupq_n_s32(0);
  for (std::size_t k = 0; k < len; k += 16) acc = vpadalq_s16(acc, vpaddlq_s8(vld1q_s8(q + k)));
  return vaddvq_s32(acc);
}

}  RANKQ_NAMESPACE_END  // namespace rankq::detail::neon

#endif  // RANKQ_NEON_PATHS
