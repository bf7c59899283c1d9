// rankq/detail/kernels/w4a8_avx2.hpp — the avx2 W4A8 path: vpmaddubsw pair sums accumulated in int16 over 4 code
// blocks, widened by vpmaddwd; 4 tokens x 16 rows per micro-kernel (the shared ymm driver). docs/kernels.md §2.
#pragma once

#include "rankq/detail/abi.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "rankq/kernel_path.hpp"
#include "rankq/detail/x86_targets.hpp"
#include "rankq/detail/kernels/stream_prefetch.hpp"
#include "rankq/detail/kernels/w4a8_layout.hpp"
#include "rankq/detail/kernels/x86_primitives_avx2.hpp"

#if RANKQ_X86_PATHS
RANKQ_NAMESPACE_BEGIN namespace detail {

template <KernelPath P>
void w4a8_tiles(const W4A8Args& a, std::size_t tile_begin, std::size_t tile_end);

namespace avx2 {
using Dot = DotMaddubs;
inline constexpr std::size_t kTokenBlock = 4;  ///< tokens per micro-kernel call (4 x 16 rows of outputs)
}  // namespace avx2

}  RANKQ_NAMESPACE_END  // namespace rankq::detail

#define RANKQ_YMM_NAMESPACE avx2
#define RANKQ_YMM_INLINE RANKQ_AVX2_INLINE
#define RANKQ_YMM_KERNEL RANKQ_AVX2_KERNEL
#include "rankq/detail/kernels/w4a8_ymm_driver.inl"

RANKQ_NAMESPACE_BEGIN namespace detail {
template <>
inline void w4a8_tiles<KernelPath::avx2>(const W4A8Args& a, std::size_t tile_begin, std::size_t tile_end) {
  avx2::run_w4a8_tiles(a, tile_begin, tile_end);
}
}  RANKQ_NAMESPACE_END  // namespace rankq::detail
#endif
