// rankq/detail/kernels/lowrank_avx2.hpp — the avx2 low-rank path: levels l = u ^ 0x80, then the sign trick
// vpmaddubsw(|x|, sign(l, x)) (|x| <= 128 as u8, |l| <= 127 so sign() never wraps, pair sums <= 32512: no
// saturation), widened by vpmaddwd each step. docs/lqer.md §6.
#pragma once

#include "rankq/detail/abi.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "rankq/kernel_path.hpp"
#include "rankq/detail/x86_targets.hpp"
#include "rankq/detail/kernels/lowrank_layout.hpp"
#include "rankq/detail/kernels/stream_prefetch.hpp"
#include "rankq/detail/kernels/x86_primitives_avx2.hpp"

#if RANKQ_X86_PATHS
RANKQ_X86_CODE_BEGIN
RANKQ_NAMESPACE_BEGIN namespace detail {

template <KernelPath P>
void lowrank_tiles(const LowRankArgs& a, std::size_t tile_begin, std::size_t tile_end);

namespace avx2 {
/// x·l per 32-bit lane (4 products), exact: |x| (u8) times sign(l, x) (s8), pairs widened to int32 at once.
struct LowRankDot {
  static RANKQ_AVX2_INLINE __m256i prepare(__m256i u) { return _mm256_xor_si256(u, _mm256_set1_epi8(-128)); }
  static RANKQ_AVX2_INLINE __m256i add(__m256i acc, __m256i levels, __m256i xb) {
    const __m256i p = _mm256_maddubs_epi16(_mm256_abs_epi8(xb), _mm256_sign_epi8(levels, xb));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
  }
  static RANKQ_AVX2_INLINE __m256i finish(__m256i acc, std::int32_t) { return acc; }
};
}  // namespace avx2

}  RANKQ_NAMESPACE_END  // namespace rankq::detail
RANKQ_X86_CODE_END

#define RANKQ_LR_NAMESPACE avx2
#define RANKQ_LR_INLINE RANKQ_AVX2_INLINE
#define RANKQ_LR_KERNEL RANKQ_AVX2_KERNEL
#include "rankq/detail/kernels/lowrank_ymm_driver.inl"

RANKQ_NAMESPACE_BEGIN namespace detail {
template <>
inline void lowrank_tiles<KernelPath::avx2>(const LowRankArgs& a, std::size_t tile_begin, std::size_t tile_end) {
  avx2::run_lowrank_tiles(a, tile_begin, tile_end);
}
}  RANKQ_NAMESPACE_END  // namespace rankq::detail
#endif
