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

}  RANKQ_NAMESPACE_END  // namespace rankq::detail::avx512
RANKQ_X86_CODE_END
#endif
