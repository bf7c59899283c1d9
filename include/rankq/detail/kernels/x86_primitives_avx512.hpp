// rankq/detail/kernels/x86_primitives_avx512.hpp — AVX-512 building blocks for kernels on the packed 4-bit layout
// (nibble unpack, u8 x s8 dot product, per-row scales, masked row I/O); reusable by other packed-code kernels.
#pragma once

#include "rankq/detail/abi.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "rankq/detail/x86_targets.hpp"
#include "rankq/detail/kernels/w4a8_layout.hpp"

#if RANKQ_X86_PATHS
RANKQ_X86_CODE_BEGIN
RANKQ_NAMESPACE_BEGIN namespace detail::avx512 {

/// One 64-byte code block (16 rows x 8 K) as two u8 operands: lane r of `lo` holds t[r][k0..k0+3],
/// lane r of `hi` holds t[r][k0+4..k0+7] (docs/formats.md §5).
struct Nibbles {
  __m512i lo, hi;
};

RANKQ_AVX512_INLINE Nibbles unpack_code_block(const std::uint8_t* block) {
  const __m512i v = _mm512_loadu_si512(block);
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  return {_mm512_and_si512(v, low4), _mm512_and_si512(_mm512_srli_epi16(v, 4), low4)};
}

/// The 4 int8 activations at x, repeated in every 32-bit lane (folds into vpdpbusd's {1to16} broadcast).
RANKQ_AVX512_INLINE __m512i broadcast4(const std::int8_t* x) {
  std::int32_t v;
  std::memcpy(&v, x, 4);
  return _mm512_set1_epi32(v);
}

/// acc[r] += Σ_i codes[4r+i] · x[i] (u8 x s8, exact in int32). GCC 12 wraps _mm512_dpbusd_epi32 in two register
/// copies per call (it does not tie the accumulator), so for GCC the instruction is written out, with the
/// activation word as an embedded {1to16} broadcast; Clang gets the intrinsic.
RANKQ_AVX512_INLINE __m512i dot4(__m512i acc, __m512i codes, const std::int8_t* x) {
#if defined(__GNUC__) && !defined(__clang__)
  typedef std::int32_t bytes4 __attribute__((may_alias, aligned(1)));
  __asm__("{vpdpbusd %2%{1to16%}, %1, %0|vpdpbusd %0, %1, %2%{1to16%}}"
          : "+v"(acc)
          : "v"(codes), "m"(*reinterpret_cast<const bytes4*>(x)));
  return acc;
#else
  return _mm512_dpbusd_epi32(acc, codes, broadcast4(x));
#endif
}


/// acc[r] += Σ_i codes[4r+i] · xb[r][i] with the activation word already broadcast in a register (kernels that
/// feed one broadcast to several code blocks). Written out for GCC 12 like dot4.
RANKQ_AVX512_INLINE __m512i dpbusd(__m512i acc, __m512i codes, __m512i xb) {
#if defined(__GNUC__) && !defined(__clang__)
  __asm__("{vpdpbusd %2, %1, %0|vpdpbusd %0, %1, %2}" : "+v"(acc) : "v"(codes), "v"(xb));
  return acc;
#else
  return _mm512_dpbusd_epi32(acc, codes, xb);
#endif
}

/// 16 per-row values (scales or offsets) stored as f16 or f32.
RANKQ_AVX512_INLINE __m512 load_row_values(const std::uint8_t* p, ScaleType t) {
  if (t == ScaleType::f16)
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  return _mm512_loadu_ps(p);
}

/// Lanes of the rows that exist in a tile with `rows` (1..16) real rows.
RANKQ_AVX512_INLINE __mmask16 row_mask(std::size_t rows) {
  return static_cast<__mmask16>(rows >= 16 ? 0xFFFFu : (1u << rows) - 1u);
}

/// Masked load/store of a tile's output rows: lanes outside the mask are neither read nor written.
RANKQ_AVX512_INLINE __m512 load_rows(const float* p, __mmask16 rows) { return _mm512_maskz_loadu_ps(rows, p); }
RANKQ_AVX512_INLINE void store_rows(float* p, __mmask16 rows, __m512 v) { _mm512_mask_storeu_ps(p, rows, v); }


/// Instruction-set traits of the avx512vnni path's direct (non-unpacked) kernels: a 16-row tile is one zmm.
/// 1-2 (token, tile) pairs get 4 int32 chains each (lo / hi nibbles x even / odd block), more get 2, so >= 8
/// independent vpdpbusd chains are in flight (latency 4, 2 per cycle on Zen 5).
struct Isa {
  static constexpr std::size_t kVecs = 1;
  static constexpr std::size_t kTokenBlock = 3;  ///< tokens per micro-kernel call
  static constexpr std::size_t kTileBlock = 2;   ///< from 2 tokens on: 3 tokens x 32 rows of outputs
  static constexpr std::size_t kMaxChunks = std::size_t(1) << 40;
  static constexpr bool kPageAhead = true;
  static constexpr bool kPrefill = true;  ///< has a W4A8 prefill specialisation (run_w4a8_prefill)
  template <std::size_t N>
  static constexpr std::size_t chains() { return N <= 2 ? 4 : 2; }
  using F = __m512;
  using I = __m512i;
  using Partial = __m512i;
  using Codes = Nibbles;
  using X = const std::int8_t*;

  static RANKQ_AVX512_INLINE F fzero() { return _mm512_setzero_ps(); }
  static RANKQ_AVX512_INLINE F set1(float v) { return _mm512_set1_ps(v); }
  static RANKQ_AVX512_INLINE F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static RANKQ_AVX512_INLINE F add(F a, F b) { return _mm512_add_ps(a, b); }
  static RANKQ_AVX512_INLINE F fma(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  static RANKQ_AVX512_INLINE F fnma(F a, F b, F c) { return _mm512_fnmadd_ps(a, b, c); }
  static RANKQ_AVX512_INLINE F cvt(I v) { return _mm512_cvtepi32_ps(v); }
  static RANKQ_AVX512_INLINE I izero() { return _mm512_setzero_si512(); }
  static RANKQ_AVX512_INLINE I iadd(I a, I b) { return _mm512_add_epi32(a, b); }
  static RANKQ_AVX512_INLINE I iset1(std::int32_t v) { return _mm512_set1_epi32(v); }
  static RANKQ_AVX512_INLINE Partial pzero() { return _mm512_setzero_si512(); }
  static RANKQ_AVX512_INLINE Codes unpack(const std::uint8_t* block, std::size_t) { return unpack_code_block(block); }
  static RANKQ_AVX512_INLINE X load_x(const std::int8_t* x) { return x; }
  /// One tile: the activation words as vpdpbusd's {1to16} memory operand; several tiles: one broadcast register
  /// per word feeds every tile (the compiler shares it between the NT calls).
  template <std::size_t NT, std::size_t J, std::size_t C>
  static RANKQ_AVX512_INLINE void dot(Partial (&p)[C], const Codes& c, X x) {
    constexpr std::size_t lo = (2 * J) % C, hi = (2 * J + 1) % C;
    if constexpr (NT == 1) {
      p[lo] = dot4(p[lo], c.lo, x + 8 * J);
      p[hi] = dot4(p[hi], c.hi, x + 8 * J + 4);
    } else {
      p[lo] = dpbusd(p[lo], c.lo, broadcast4(x + 8 * J));
      p[hi] = dpbusd(p[hi], c.hi, broadcast4(x + 8 * J + 4));
    }
  }
  template <std::size_t C>
  static RANKQ_AVX512_INLINE I finish(I acc, const Partial (&p)[C]) {
    __m512i d = _mm512_add_epi32(p[0], p[1]);
    if constexpr (C == 4) d = _mm512_add_epi32(d, _mm512_add_epi32(p[2], p[3]));
    return _mm512_add_epi32(acc, d);
  }
  // Low-rank factors (lowrank_driver.inl): one zmm per quad (all 16 rows), vpdpbusd on the offset-binary codes
  // with the activation word as a {1to16} broadcast, D = Σu·x − 128·Σx.
  static constexpr std::size_t kLowRankTokens = 4;
  using LrCodes = __m512i;
  static RANKQ_AVX512_INLINE LrCodes lr_load(const std::uint8_t* quad, std::size_t) { return _mm512_load_si512(quad); }
  template <std::size_t Q>
  static RANKQ_AVX512_INLINE I lr_dot(I acc, LrCodes u, X x) { return dot4(acc, u, x + 4 * Q); }
  static RANKQ_AVX512_INLINE I lr_finish(I acc, std::int32_t x_sum) { return _mm512_sub_epi32(acc, _mm512_set1_epi32(128 * x_sum)); }
  /// W8A8 (w8a8_driver.inl): vpdpbusd takes every code u in [0, 255] exactly, so lr_dot serves as is.
  template <std::size_t Q>
  static RANKQ_AVX512_INLINE I w8_dot(I acc, LrCodes u, X x) { return lr_dot<Q>(acc, u, x); }
  // Codebooks (codebook_driver.inl): vpshufb lookup of the biased table Vq + 128 (u8, every 128-bit lane),
  // vpdpbusd with {1to16} activation words, − 128·Σx per segment (exact modulo 2^32, hence exact). Ranks in
  // blocks of 4 up to 4 tokens, so MR x ranks x chains int32 accumulators stay <= 16 zmm.
  static constexpr std::size_t kCodebookTokens = 8;
  template <std::size_t MR>
  static constexpr bool cb_block_steps() { return MR > 1; }
  template <std::size_t MR>
  static constexpr unsigned cb_rank_block() { return MR <= 4 ? 4 : 1; }
  template <std::size_t N>
  static constexpr std::size_t cb_chains() { return N <= 4 ? 4 : N <= 8 ? 2 : 1; }
  using CbLut = __m512i;
  struct CbLevels {
    __m512i lo, hi;
  };
  static RANKQ_AVX512_INLINE CbLut cb_lut(const std::int8_t* levels16) {
    const __m128i t = _mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(levels16)), _mm_set1_epi8(-128));
    return _mm512_broadcast_i32x4(t);
  }
  static RANKQ_AVX512_INLINE CbLevels cb_lookup(CbLut lut, const Codes& c) {
    return {_mm512_shuffle_epi8(lut, c.lo), _mm512_shuffle_epi8(lut, c.hi)};
  }
  template <std::size_t J, std::size_t C>
  static RANKQ_AVX512_INLINE void cb_dot(I (&acc)[C], const CbLevels& w, X x) {
    acc[(2 * J) % C] = dot4(acc[(2 * J) % C], w.lo, x + 8 * J);
    acc[(2 * J + 1) % C] = dot4(acc[(2 * J + 1) % C], w.hi, x + 8 * J + 4);
  }
  static RANKQ_AVX512_INLINE I cb_finish(I acc, std::int32_t segment_sum) {
    return _mm512_sub_epi32(acc, _mm512_set1_epi32(static_cast<std::int32_t>(static_cast<std::uint32_t>(segment_sum) << 7)));
  }
  static RANKQ_AVX512_INLINE F load_row_values(const std::uint8_t* p, std::size_t, ScaleType t) {
    return avx512::load_row_values(p, t);
  }
  static RANKQ_AVX512_INLINE void load_rows(const float* p, std::size_t rows, F (&v)[1]) {
    v[0] = avx512::load_rows(p, row_mask(rows));
  }
  static RANKQ_AVX512_INLINE void store_rows(float* p, std::size_t rows, const F (&v)[1]) {
    avx512::store_rows(p, row_mask(rows), v[0]);
  }
};

}  RANKQ_NAMESPACE_END  // namespace rankq::detail::avx512
RANKQ_X86_CODE_END
#endif
