// rankq/detail/kernels/neon_primitives.hpp — AArch64 NEON building blocks of the packed-nibble kernels (nibble
// unpack, K-quad broadcast, 4-row dot products with and without sdot, scale loads), shared by every NEON kernel.
#pragma once

#include "rankq/detail/abi.hpp"

#include "rankq/detail/platform.hpp"

#if RANKQ_NEON_PATHS

#include <arm_neon.h>

#include <cstddef>
#include <cstdint>

#include "rankq/uniform.hpp"

// Every helper is force-inlined: a TU built with +dotprod and one without may both emit these inline functions,
// and the linker keeps one copy (ODR). Force-inlining leaves no shared out-of-line copy to pick wrongly.
RANKQ_NAMESPACE_BEGIN namespace detail::neon {

/// One 16-byte quarter of a 64-byte code block holds rows 4j..4j+3 (j = quarter) as four 32-bit lanes; the low
/// nibbles of lane r are t[4j+r][k0..k0+3], the high nibbles t[4j+r][k0+4..k0+7] (docs/formats.md §5).
/// Codes are 0..15, so both halves are valid signed bytes.
RANKQ_ALWAYS_INLINE int8x16_t low_nibbles(uint8x16_t packed) { return vreinterpretq_s8_u8(vandq_u8(packed, vdupq_n_u8(0x0F))); }
RANKQ_ALWAYS_INLINE int8x16_t high_nibbles(uint8x16_t packed) { return vreinterpretq_s8_u8(vshrq_n_u8(packed, 4)); }

/// Quarter j (rows 4j..4j+3) of the code block at `block`, split into low (k0..k0+3) and high (k0+4..k0+7) K.
struct NibbleQuarter {
  int8x16_t lo, hi;
};
RANKQ_ALWAYS_INLINE NibbleQuarter load_quarter(const std::uint8_t* block, int j) {
  const uint8x16_t packed = vld1q_u8(block + 16 * j);
  return {low_nibbles(packed), high_nibbles(packed)};
}

/// The 4 int8 activations x[4q..4q+3] of a 16-byte load, repeated in all four 32-bit lanes (one copy per row).
template <int Q>
RANKQ_ALWAYS_INLINE int8x16_t broadcast_quad(int8x16_t x16) {
  return vreinterpretq_s8_s32(vdupq_laneq_s32(vreinterpretq_s32_s8(x16), Q));
}

/// Plain ARMv8 4-row x 4-K product, accumulated in int16: rows01 gets lanes (row 4j, k0..3), (row 4j+1, k0..3),
/// rows23 the same for rows 4j+2, 4j+3. |x·t| <= 128·15 = 1920, so up to 17 products fit one int16 lane.
RANKQ_ALWAYS_INLINE void mla_quarter_s16(int16x8_t& rows01, int16x8_t& rows23, int8x16_t codes, int8x16_t x_quad) {
  rows01 = vmlal_s8(rows01, vget_low_s8(codes), vget_low_s8(x_quad));
  rows23 = vmlal_high_s8(rows23, codes, x_quad);
}
RANKQ_ALWAYS_INLINE void mul_quarter_s16(int16x8_t& rows01, int16x8_t& rows23, int8x16_t codes, int8x16_t x_quad) {
  rows01 = vmull_s8(vget_low_s8(codes), vget_low_s8(x_quad));
  rows23 = vmull_high_s8(codes, x_quad);
}

/// Pairwise int32 partial sums (2 lanes per row, as vpadalq_s16 leaves them) -> one int32 lane per row.
RANKQ_ALWAYS_INLINE int32x4_t rows_from_pairs(int32x4_t rows01, int32x4_t rows23) { return vpaddq_s32(rows01, rows23); }

/// Scales (or offsets) of rows 4j..4j+3 from a packed array of 16, f16 or f32, any alignment.
RANKQ_ALWAYS_INLINE float32x4_t load_scales4(const std::uint8_t* values, int j, ScaleType type) {
  if (type == ScaleType::f16) return vcvt_f32_f16(vreinterpret_f16_u8(vld1_u8(values + 8 * j)));
  return vreinterpretq_f32_u8(vld1q_u8(values + 16 * j));
}

}  RANKQ_NAMESPACE_END  // namespace rankq::detail::neon

#endif  // RANKQ_NEON_PATHS

#if RANKQ_NEON_DOTPROD_PATH

RANKQ_NAMESPACE_BEGIN namespace detail::neon_dotprod {

#if !defined(__ARM_FEATURE_DOTPROD)
// The assembler's target for the sdot below: ARMv8.2-A + dotprod, plus the TU's own optional extensions so that
// the code the compiler emits after it still assembles (a `.arch` directive holds for the rest of the file).
// A TU built for ARMv8.4-A or later has dotprod and never gets here; one for ARMv8.3-A without dotprod should
// add +dotprod to its flags (docs/kernels.md §4).
#if defined(__ARM_FEATURE_SVE2)
#define RANKQ_A64_ASM_SVE "+sve2"
#elif defined(__ARM_FEATURE_SVE)
#define RANKQ_A64_ASM_SVE "+sve"
#else
#define RANKQ_A64_ASM_SVE ""
#endif
#if defined(__ARM_FEATURE_MATMUL_INT8)
#define RANKQ_A64_ASM_I8MM "+i8mm"
#else
#define RANKQ_A64_ASM_I8MM ""
#endif
#if defined(__ARM_FEATURE_BF16_VECTOR_ARITHMETIC)
#define RANKQ_A64_ASM_BF16 "+bf16"
#else
#define RANKQ_A64_ASM_BF16 ""
#endif
#if defined(__ARM_FEATURE_FP16_VECTOR_ARITHMETIC)
#define RANKQ_A64_ASM_FP16 "+fp16"
#else
#define RANKQ_A64_ASM_FP16 ""
#endif
#if defined(__ARM_FEATURE_AES) || defined(__ARM_FEATURE_SHA2) || defined(__ARM_FEATURE_CRYPTO)
#define RANKQ_A64_ASM_CRYPTO "+crypto"
#else
#define RANKQ_A64_ASM_CRYPTO ""
#endif
#define RANKQ_A64_ASM_ARCH \
  ".arch armv8.2-a+dotprod" RANKQ_A64_ASM_SVE RANKQ_A64_ASM_I8MM RANKQ_A64_ASM_BF16 RANKQ_A64_ASM_FP16 RANKQ_A64_ASM_CRYPTO "\n\t"
#endif

/// acc[r] += Σ_i codes[4r+i] · x[4Q+i] for the 4 rows of a quarter (sdot by element: one instruction).
/// Without +dotprod in the TU's flags the instruction is written as inline assembly (the intrinsic needs the
/// flag): this code only runs where HWCAP says the CPU has it (run-time dispatch, kernel_path.hpp). Both forms
/// emit the same instruction.
template <int Q>
RANKQ_ALWAYS_INLINE int32x4_t dot_quarter(int32x4_t acc, int8x16_t codes, int8x16_t x16) {
#if defined(__ARM_FEATURE_DOTPROD)
  return vdotq_laneq_s32(acc, codes, x16, Q);
#else
  __asm__(RANKQ_A64_ASM_ARCH "sdot %0.4s, %1.16b, %2.4b[%c3]" : "+w"(acc) : "w"(codes), "w"(x16), "i"(Q));
  return acc;
#endif
}

}  RANKQ_NAMESPACE_END  // namespace rankq::detail::neon_dotprod

#endif  // RANKQ_NEON_DOTPROD_PATH
