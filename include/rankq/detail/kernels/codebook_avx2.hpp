// rankq/detail/kernels/codebook_avx2.hpp — the avx2 codebook path: nibble -> int8 level lookup with vpshufb, then the
// sign trick (|x| as u8 times the level carrying x's sign) through vpmaddubsw, widened at once by vpmaddwd.
#pragma once

#include "rankq/detail/abi.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "rankq/kernel_path.hpp"
#include "rankq/detail/x86_targets.hpp"
#include "rankq/detail/kernels/codebook_layout.hpp"
#include "rankq/detail/kernels/stream_prefetch.hpp"
#include "rankq/detail/kernels/x86_primitives_avx2.hpp"

#if RANKQ_X86_PATHS
RANKQ_X86_CODE_BEGIN
RANKQ_NAMESPACE_BEGIN namespace detail::avx2 {

inline constexpr std::size_t kCodebookTokenBlock = 4;  ///< tokens per micro-kernel call

/// Exact s8 x s8 dot products of looked-up levels (in [-127, 127], never -128) with activations (any int8):
/// vpmaddubsw(|x|, sign(level, x)) gives int16 pair sums with |x0·l0 + x1·l1| <= 2·128·127 = 32512 < 2^15 (no
/// saturation; |−128| = 128 is a valid u8), and vpmaddwd(·, 1) widens each pair to int32 before anything is added.
struct CodebookDot {
  using Lut = __m256i;  ///< the rank's 16 signed levels in both 128-bit lanes
  struct Token {        ///< 8 activations (4 per 32-bit lane, lo then hi nibbles' K) and their magnitudes
    __m256i x0, x1, a0, a1;
  };
  template <std::size_t MR>
  static constexpr unsigned rank_block = MR == 1 ? 2 : 1;
  template <std::size_t Accumulators>
  static constexpr std::size_t chains = 1;  // vpaddd has latency 1

  static RANKQ_AVX2_INLINE Lut lut(const std::int8_t* levels16) {
    return _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(levels16)));
  }
  static RANKQ_AVX2_INLINE Token token(const std::int8_t* x) {
    const __m256i x0 = broadcast4(x), x1 = broadcast4(x + 4);
    return {x0, x1, _mm256_abs_epi8(x0), _mm256_abs_epi8(x1)};
  }
  static RANKQ_AVX2_INLINE __m256i lookup(Lut lut, __m256i nibbles) { return _mm256_shuffle_epi8(lut, nibbles); }
  static RANKQ_AVX2_INLINE void add(__m256i& acc_lo, __m256i& acc_hi, __m256i lo, __m256i hi, const Token& x) {
    const __m256i ones = _mm256_set1_epi16(1);
    const __m256i p0 = _mm256_maddubs_epi16(x.a0, _mm256_sign_epi8(lo, x.x0));
    const __m256i p1 = _mm256_maddubs_epi16(x.a1, _mm256_sign_epi8(hi, x.x1));
    acc_lo = _mm256_add_epi32(acc_lo, _mm256_madd_epi16(p0, ones));
    acc_hi = _mm256_add_epi32(acc_hi, _mm256_madd_epi16(p1, ones));
  }
  static RANKQ_AVX2_INLINE __m256i finish(__m256i acc, std::int32_t /*segment_sum*/) { return acc; }
};

}  RANKQ_NAMESPACE_END  // namespace rankq::detail::avx2
RANKQ_X86_CODE_END

#define RANKQ_CB_YMM_NAMESPACE avx2
#define RANKQ_CB_YMM_INLINE RANKQ_AVX2_INLINE
#define RANKQ_CB_YMM_KERNEL RANKQ_AVX2_KERNEL
#include "rankq/detail/kernels/codebook_ymm_driver.inl"

RANKQ_NAMESPACE_BEGIN namespace detail {
template <>
inline void codebook_tiles<KernelPath::avx2>(const CodebookArgs& a, std::size_t tile_begin, std::size_t tile_end) {
  avx2::run_codebook_tiles(a, tile_begin, tile_end);
}
}  RANKQ_NAMESPACE_END  // namespace rankq::detail
#endif
