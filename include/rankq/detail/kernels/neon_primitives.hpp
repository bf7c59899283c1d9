// rankq/detail/kernels/neon_primitives.hpp — AArch64 NEON building blocks of the packed-nibble kernels (nibble
// unpack, K-quad broadcast, 4-row dot products with and without sdot, scale loads), shared by every NEON kernel.
#pragma once

#include "rankq/detail/abi.hpp"

#include "rankq/detail/platform.hpp"

#if RANKQ_NEON_PATHS

#include <arm_neon.h>

#include <cstddef>
#include <cstdint>

#include "rankq/formats/uniform.hpp"

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


/// Instruction-set traits of the plain ARMv8 path (contract: docs/kernels.md §2.1): a 16-row tile is four q
/// registers of 4 rows. Per 8-K block, vmlal_s8 products go into int16 (<= 4 per lane per 16-K chunk, |sum| <=
/// 7680), widened once per chunk by vpadalq_s16 into int32 pairs (2 lanes per row); cvt adds the pairs.
struct Isa {
  static constexpr std::size_t kVecs = 4;
  static constexpr std::size_t kTokenBlock = 2;
  static constexpr std::size_t kTileBlock = 1;
  static constexpr std::size_t kMaxChunks = 1;
  static constexpr bool kPageAhead = false;
  static constexpr bool kPrefill = false;  ///< has a W4A8 prefill specialisation (run_w4a8_prefill)
  template <std::size_t N>
  static constexpr std::size_t chains() { return 1; }
  using F = float32x4_t;
  struct I {
    int32x4_t rows01, rows23;  ///< pair sums: lanes (2r, 2r+1) of rows01 belong to row r (r = 0, 1), same for 2, 3
  };
  struct Partial {
    int16x8_t rows01, rows23;
  };
  using Codes = NibbleQuarter;
  struct X {
    int8x16_t quad[4];  ///< x[4q .. 4q+3] repeated in every 32-bit lane
  };

  static RANKQ_ALWAYS_INLINE F fzero() { return vdupq_n_f32(0.0f); }
  static RANKQ_ALWAYS_INLINE F set1(float v) { return vdupq_n_f32(v); }
  static RANKQ_ALWAYS_INLINE F mul(F a, F b) { return vmulq_f32(a, b); }
  static RANKQ_ALWAYS_INLINE F add(F a, F b) { return vaddq_f32(a, b); }
  static RANKQ_ALWAYS_INLINE F fma(F a, F b, F c) { return vfmaq_f32(c, a, b); }
  static RANKQ_ALWAYS_INLINE F fnma(F a, F b, F c) { return vfmsq_f32(c, a, b); }
  static RANKQ_ALWAYS_INLINE F cvt(I v) { return vcvtq_f32_s32(rows_from_pairs(v.rows01, v.rows23)); }
  static RANKQ_ALWAYS_INLINE I izero() { return {vdupq_n_s32(0), vdupq_n_s32(0)}; }
  static RANKQ_ALWAYS_INLINE I iadd(I a, I b) { return {vaddq_s32(a.rows01, b.rows01), vaddq_s32(a.rows23, b.rows23)}; }
  static RANKQ_ALWAYS_INLINE I iset1(std::int32_t v) {  // v in one lane of each row's pair
    const int32x4_t one = vreinterpretq_s32_s64(vdupq_n_s64(static_cast<std::uint32_t>(v)));
    return {one, one};
  }
  static RANKQ_ALWAYS_INLINE Partial pzero() { return {vdupq_n_s16(0), vdupq_n_s16(0)}; }
  static RANKQ_ALWAYS_INLINE Codes unpack(const std::uint8_t* block, std::size_t v) { return load_quarter(block, static_cast<int>(v)); }
  static RANKQ_ALWAYS_INLINE X load_x(const std::int8_t* x) {
    const int8x16_t x16 = vld1q_s8(x);
    return {{broadcast_quad<0>(x16), broadcast_quad<1>(x16), broadcast_quad<2>(x16), broadcast_quad<3>(x16)}};
  }
  template <std::size_t NT, std::size_t J, std::size_t C>
  static RANKQ_ALWAYS_INLINE void dot(Partial (&p)[C], const Codes& c, const X& x) {
    mla_quarter_s16(p[0].rows01, p[0].rows23, c.lo, x.quad[2 * J]);
    mla_quarter_s16(p[0].rows01, p[0].rows23, c.hi, x.quad[2 * J + 1]);
  }
  template <std::size_t C>
  static RANKQ_ALWAYS_INLINE I finish(I acc, const Partial (&p)[C]) {
    return {vpadalq_s16(acc.rows01, p[0].rows01), vpadalq_s16(acc.rows23, p[0].rows23)};
  }
  // Low-rank factors (lowrank_driver.inl): levels l = u ^ 0x80 (s8) of quarter v, vmull_s8 + vpadalq_s16 pair
  // sums (|l·x| <= 127·128: one product pair per int16 lane, no overflow).
  static constexpr std::size_t kLowRankTokens = 2;
  using LrCodes = int8x16_t;
  static RANKQ_ALWAYS_INLINE LrCodes lr_load(const std::uint8_t* quad, std::size_t v) {
    return vreinterpretq_s8_u8(veorq_u8(vld1q_u8(quad + 16 * v), vdupq_n_u8(0x80)));
  }
  template <std::size_t Q>
  static RANKQ_ALWAYS_INLINE I lr_dot(I acc, LrCodes l, const X& x) {
    int16x8_t rows01, rows23;
    mul_quarter_s16(rows01, rows23, l, x.quad[Q]);
    return {vpadalq_s16(acc.rows01, rows01), vpadalq_s16(acc.rows23, rows23)};
  }
  static RANKQ_ALWAYS_INLINE I lr_finish(I acc, std::int32_t) { return acc; }
  /// W8A8 (w8a8_driver.inl): |l·x| <= 128·128 = 16384 fits int16 for every level, so lr_dot serves as is.
  template <std::size_t Q>
  static RANKQ_ALWAYS_INLINE I w8_dot(I acc, LrCodes l, const X& x) { return lr_dot<Q>(acc, l, x); }
  // Codebooks (codebook_driver.inl): nibble -> int8 level with vqtbl1q_s8; |l| <= 127 times |x| <= 128 needs
  // int16 for at most two products (32512), so each vmull/vmlal pair goes straight into int32 pairs.
  static constexpr std::size_t kCodebookTokens = 2;
  template <std::size_t MR>
  static constexpr bool cb_block_steps() { return false; }
  template <std::size_t MR>
  static constexpr unsigned cb_rank_block() { return 1; }
  template <std::size_t N>
  static constexpr std::size_t cb_chains() { return 1; }
  using CbLut = int8x16_t;
  struct CbLevels {
    int8x16_t lo, hi;
  };
  static RANKQ_ALWAYS_INLINE CbLut cb_lut(const std::int8_t* levels16) { return vld1q_s8(levels16); }
  static RANKQ_ALWAYS_INLINE CbLevels cb_lookup(CbLut lut, const Codes& c) {
    return {vqtbl1q_s8(lut, vreinterpretq_u8_s8(c.lo)), vqtbl1q_s8(lut, vreinterpretq_u8_s8(c.hi))};
  }
  template <std::size_t J, std::size_t C>
  static RANKQ_ALWAYS_INLINE void cb_dot(I (&acc)[C], const CbLevels& w, const X& x) {
    int16x8_t rows01, rows23;
    mul_quarter_s16(rows01, rows23, w.lo, x.quad[2 * J]);
    mla_quarter_s16(rows01, rows23, w.hi, x.quad[2 * J + 1]);
    acc[0] = {vpadalq_s16(acc[0].rows01, rows01), vpadalq_s16(acc[0].rows23, rows23)};
  }
  static RANKQ_ALWAYS_INLINE I cb_finish(I acc, std::int32_t) { return acc; }
  static RANKQ_ALWAYS_INLINE F load_row_values(const std::uint8_t* p, std::size_t v, ScaleType t) {
    return load_scales4(p, static_cast<int>(v), t);
  }
  static RANKQ_ALWAYS_INLINE void load_rows(const float* p, std::size_t rows, F (&v)[4]) {
    float full[16] = {};
    for (std::size_t r = 0; r < rows && r < 16; ++r) full[r] = p[r];
    for (int j = 0; j < 4; ++j) v[j] = vld1q_f32(full + 4 * j);
  }
  static RANKQ_ALWAYS_INLINE void store_rows(float* p, std::size_t rows, const F (&v)[4]) {
    if (rows >= 16) {
      for (int j = 0; j < 4; ++j) vst1q_f32(p + 4 * j, v[j]);
      return;
    }
    float full[16];
    for (int j = 0; j < 4; ++j) vst1q_f32(full + 4 * j, v[j]);
    for (std::size_t r = 0; r < rows; ++r) p[r] = full[r];
  }
};

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


/// Instruction-set traits of the dotprod path: the plain ARMv8 ones with sdot by element straight into int32;
/// with 1-2 tokens the high-nibble products go to a second partial (more independent sdot chains).
struct Isa : neon::Isa {
  static constexpr std::size_t kTokenBlock = 4;
  static constexpr std::size_t kMaxChunks = std::size_t(1) << 40;
  template <std::size_t N>
  static constexpr std::size_t chains() { return N <= 2 ? 2 : 1; }
  using I = int32x4_t;
  using Partial = int32x4_t;
  using X = int8x16_t;
  static RANKQ_ALWAYS_INLINE F cvt(I v) { return vcvtq_f32_s32(v); }
  static RANKQ_ALWAYS_INLINE I izero() { return vdupq_n_s32(0); }
  static RANKQ_ALWAYS_INLINE I iadd(I a, I b) { return vaddq_s32(a, b); }
  static RANKQ_ALWAYS_INLINE I iset1(std::int32_t v) { return vdupq_n_s32(v); }
  static RANKQ_ALWAYS_INLINE Partial pzero() { return vdupq_n_s32(0); }
  static RANKQ_ALWAYS_INLINE X load_x(const std::int8_t* x) { return vld1q_s8(x); }
  template <std::size_t NT, std::size_t J, std::size_t C>
  static RANKQ_ALWAYS_INLINE void dot(Partial (&p)[C], const Codes& c, X x) {
    p[0] = dot_quarter<2 * J>(p[0], c.lo, x);
    p[C - 1] = dot_quarter<2 * J + 1>(p[C - 1], c.hi, x);
  }
  static constexpr std::size_t kCodebookTokens = 4;
  template <std::size_t MR>
  static constexpr bool cb_block_steps() { return false; }
  static RANKQ_ALWAYS_INLINE I cb_finish(I acc, std::int32_t) { return acc; }
  template <std::size_t J, std::size_t C>
  static RANKQ_ALWAYS_INLINE void cb_dot(I (&acc)[C], const CbLevels& w, X x) {
    acc[0] = dot_quarter<2 * J>(acc[0], w.lo, x);
    acc[C - 1] = dot_quarter<2 * J + 1>(acc[C - 1], w.hi, x);
  }
  template <std::size_t Q>
  static RANKQ_ALWAYS_INLINE I lr_dot(I acc, LrCodes l, X x) { return dot_quarter<Q>(acc, l, x); }
  template <std::size_t Q>
  static RANKQ_ALWAYS_INLINE I w8_dot(I acc, LrCodes l, X x) { return dot_quarter<Q>(acc, l, x); }  // sdot: exact
  static RANKQ_ALWAYS_INLINE I lr_finish(I acc, std::int32_t) { return acc; }
  template <std::size_t C>
  static RANKQ_ALWAYS_INLINE I finish(I acc, const Partial (&p)[C]) {
    for (std::size_t i = 0; i < C; ++i) acc = vaddq_s32(acc, p[i]);
    return acc;
  }
};

}  RANKQ_NAMESPACE_END  // namespace rankq::detail::neon_dotprod

#endif  // RANKQ_NEON_DOTPROD_PATH
