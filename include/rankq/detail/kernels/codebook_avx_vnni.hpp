// rankq/detail/kernels/codebook_avx_vnni.hpp — the avxvnni codebook path: vpshufb level lookup of the biased table
// Vq + 128 (u8), VEX ymm vpdpbusd straight into int32, minus 128·Σx per segment (the shared ymm driver).
#pragma once

#include "rankq/detail/abi.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "rankq/kernel_path.hpp"
#include "rankq/detail/x86_targets.hpp"
#include "rankq/detail/kernels/codebook_layout.hpp"
#include "rankq/detail/kernels/stream_prefetch.hpp"
#include "rankq/detail/kernels/x86_primitives_avx_vnni.hpp"

#if RANKQ_X86_PATHS
RANKQ_X86_CODE_BEGIN
RANKQ_NAMESPACE_BEGIN namespace detail::avx_vnni {

inline constexpr std::size_t kCodebookTokenBlock = 4;  ///< tokens per micro-kernel call

/// Σ x·(Vq + 128) with u8 x s8 vpdpbusd (wrapping int32), then − 128·Σx: exact modulo 2^32, hence exact.
struct CodebookDot {
  using Lut = __m256i;  ///< the rank's 16 levels + 128 as u8, in both 128-bit lanes
  struct Token {        ///< 8 activations, 4 per 32-bit lane (the K of the lo, then the hi nibbles)
    __m256i x0, x1;
  };
  template <std::size_t MR>
  static constexpr unsigned rank_block = MR == 1 ? 2 : 1;
  template <std::size_t Accumulators>  // (token, rank) pairs: split lo/hi chains while there are few of them
  static constexpr std::size_t chains = Accumulators <= 2 ? 2 : 1;

  static RANKQ_AVXVNNI_INLINE Lut lut(const std::int8_t* levels16) {
    const __m128i t = _mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(levels16)), _mm_set1_epi8(-128));
    return _mm256_broadcastsi128_si256(t);
  }
  static RANKQ_AVXVNNI_INLINE Token token(const std::int8_t* x) { return {broadcast4(x), broadcast4(x + 4)}; }
  static RANKQ_AVXVNNI_INLINE __m256i lookup(Lut lut, __m256i nibbles) { return _mm256_shuffle_epi8(lut, nibbles); }
  static RANKQ_AVXVNNI_INLINE void add(__m256i& acc_lo, __m256i& acc_hi, __m256i lo, __m256i hi, const Token& x) {
    acc_lo = _mm256_dpbusd_avx_epi32(acc_lo, lo, x.x0);
    acc_hi = _mm256_dpbusd_avx_epi32(acc_hi, hi, x.x1);
  }
  static RANKQ_AVXVNNI_INLINE __m256i finish(__m256i acc, std::int32_t segment_sum) {
    return _mm256_sub_epi32(acc, _mm256_set1_epi32(static_cast<std::int32_t>(static_cast<std::uint32_t>(segment_sum) << 7)));
  }
};

}  RANKQ_NAMESPACE_END  // namespace rankq::detail::avx_vnni
RANKQ_X86_CODE_END

#define RANKQ_CB_YMM_NAMESPACE avx_vnni
#define RANKQ_CB_YMM_INLINE RANKQ_AVXVNNI_INLINE
#define RANKQ_CB_YMM_KERNEL RANKQ_AVXVNNI_KERNEL
#include "rankq/detail/kernels/codebook_ymm_driver.inl"

RANKQ_NAMESPACE_BEGIN namespace detail {
template <>
inline void codebook_tiles<KernelPath::avx_vnni>(const CodebookArgs& a, std::size_t tile_begin, std::size_t tile_end) {
  avx_vnni::run_codebook_tiles(a, tile_begin, tile_end);
}
}  RANKQ_NAMESPACE_END  // namespace rankq::detail
#endif
