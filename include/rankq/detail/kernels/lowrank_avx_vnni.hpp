// rankq/detail/kernels/lowrank_avx_vnni.hpp — the avx_vnni low-rank path: VEX vpdpbusd on the offset-binary codes
// u = l + 128 (u8) and the activations (s8), then D = Σu·x − 128·Σx per chunk (exact in int32). docs/lqer.md §6.
#pragma once

#include "rankq/detail/abi.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "rankq/kernel_path.hpp"
#include "rankq/detail/x86_targets.hpp"
#include "rankq/detail/kernels/lowrank_layout.hpp"
#include "rankq/detail/kernels/stream_prefetch.hpp"
#include "rankq/detail/kernels/x86_primitives_avx_vnni.hpp"

#if RANKQ_X86_PATHS
RANKQ_X86_CODE_BEGIN
RANKQ_NAMESPACE_BEGIN namespace detail {

template <KernelPath P>
void lowrank_tiles(const LowRankArgs& a, std::size_t tile_begin, std::size_t tile_end);

namespace avx_vnni {
struct LowRankDot {
  static RANKQ_AVXVNNI_INLINE __m256i prepare(__m256i u) { return u; }
  static RANKQ_AVXVNNI_INLINE __m256i add(__m256i acc, __m256i u, __m256i xb) { return dpbusd(acc, u, xb); }
  static RANKQ_AVXVNNI_INLINE __m256i finish(__m256i acc, std::int32_t x_sum) {
    return _mm256_sub_epi32(acc, _mm256_set1_epi32(128 * x_sum));
  }
};
}  // namespace avx_vnni

}  RANKQ_NAMESPACE_END  // namespace rankq::detail
RANKQ_X86_CODE_END

#define RANKQ_LR_NAMESPACE avx_vnni
#define RANKQ_LR_INLINE RANKQ_AVXVNNI_INLINE
#define RANKQ_LR_KERNEL RANKQ_AVXVNNI_KERNEL
#include "rankq/detail/kernels/lowrank_ymm_driver.inl"

RANKQ_NAMESPACE_BEGIN namespace detail {
template <>
inline void lowrank_tiles<KernelPath::avx_vnni>(const LowRankArgs& a, std::size_t tile_begin, std::size_t tile_end) {
  avx_vnni::run_lowrank_tiles(a, tile_begin, tile_end);
}
}  RANKQ_NAMESPACE_END  // namespace rankq::detail
#endif
