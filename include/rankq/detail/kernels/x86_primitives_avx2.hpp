// rankq/detail/kernels/x86_primitives_avx2.hpp — AVX2 building blocks for kernels on the packed 4-bit layout: nibble
// unpack of a code-block half (8 rows), exact u8 x s8 dot products via vpmaddubsw, per-row scales, row I/O.
#pragma once

#include "rankq/detail/abi.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "rankq/detail/x86_targets.hpp"
#include "rankq/detail/kernels/w4a8_layout.hpp"

#if RANKQ_X86_PATHS
RANKQ_X86_CODE_BEGIN
RANKQ_NAMESPACE_BEGIN namespace detail::avx2 {

/// Half h of a 64-byte code block (rows 8h..8h+7, bytes 32h..32h+31) as two u8 operands: lane r of `lo` holds
/// t[8h+r][k0..k0+3], lane r of `hi` holds t[8h+r][k0+4..k0+7] (docs/formats.md §5).
struct Nibbles {
  __m256i lo, hi;
};

RANKQ_AVX2_INLINE Nibbles unpack_code_half(const std::uint8_t* half) {
  const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(half));
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  return {_mm256_and_si256(v, low4), _mm256_and_si256(_mm256_srli_epi16(v, 4), low4)};
}

/// The 4 int8 activations at x, repeated in every 32-bit lane (one vpbroadcastd from memory).
RANKQ_AVX2_INLINE __m256i broadcast4(const std::int8_t* x) {
  std::int32_t v;
  std::memcpy(&v, x, 4);
  return _mm256_set1_epi32(v);
}

/// Exact u8 x s8 dot products without VNNI. vpmaddubsw gives int16 pair sums c0·x0 + c1·x1 with codes c <= 15,
/// so |pair| <= 2·15·128 = 3840 and it never saturates; up to 8 pair sums (4 code blocks: lo + hi each) are
/// added in int16 (|sum| <= 30720 < 32768), then widened once with vpmaddwd(ones) into int32.
struct DotMaddubs {
  static constexpr std::size_t kMaxBlocks = 4;  ///< code blocks per int16 partial
  using Partial = __m256i;
  static RANKQ_AVX2_INLINE Partial begin() { return _mm256_setzero_si256(); }
  static RANKQ_AVX2_INLINE Partial add(Partial p, const Nibbles& c, const std::int8_t* x) {
    const __m256i lo = _mm256_maddubs_epi16(c.lo, broadcast4(x));
    const __m256i hi = _mm256_maddubs_epi16(c.hi, broadcast4(x + 4));
    return _mm256_add_epi16(p, _mm256_add_epi16(lo, hi));
  }
  static RANKQ_AVX2_INLINE __m256i finish(__m256i acc, Partial p) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
  }
};

/// 8 per-row values (scales or offsets) of half h of a tile, stored as f16 or f32.
RANKQ_AVX2_INLINE __m256 load_row_values(const std::uint8_t* p, std::size_t h, ScaleType t) {
  if (t == ScaleType::f16) return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * h)));
  return _mm256_loadu_ps(reinterpret_cast<const float*>(p + 32 * h));
}

/// The 16 values of a tile's rows at p; rows past `rows` (1..16) are zero and never read.
RANKQ_AVX2_INLINE void load_rows(const float* p, std::size_t rows, __m256 v[2]) {
  if (rows >= kTileRows) {
    v[0] = _mm256_loadu_ps(p);
    v[1] = _mm256_loadu_ps(p + 8);
    return;
  }
  alignas(32) float tmp[kTileRows] = {};
  std::memcpy(tmp, p, rows * sizeof(float));
  v[0] = _mm256_load_ps(tmp);
  v[1] = _mm256_load_ps(tmp + 8);
}

/// Stores the first `rows` (1..16) of a tile's 16 outputs; nothing past them is written.
RANKQ_AVX2_INLINE void store_rows(float* p, std::size_t rows, __m256 v0, __m256 v1) {
  if (rows >= kTileRows) {
    _mm256_storeu_ps(p, v0);
    _mm256_storeu_ps(p + 8, v1);
    return;
  }
  alignas(32) float tmp[kTileRows];
  _mm256_store_ps(tmp, v0);
  _mm256_store_ps(tmp + 8, v1);
  std::memcpy(p, tmp, rows * sizeof(float));
}

}  RANKQ_NAMESPACE_END  // namespace rankq::detail::avx2
RANKQ_X86_CODE_END
#endif
