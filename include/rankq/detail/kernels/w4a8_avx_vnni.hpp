// rankq/detail/kernels/w4a8_avx_vnni.hpp — the avxvnni W4A8 path: VEX ymm vpdpbusd straight into int32, 4 tokens x
// 16 rows per micro-kernel (the shared ymm driver, compiled with the AVX-VNNI target). docs/kernels.md §2.
#pragma once

#include "rankq/detail/abi.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "rankq/kernel_path.hpp"
#include "rankq/detail/x86_targets.hpp"
#include "rankq/detail/kernels/stream_prefetch.hpp"
#include "rankq/detail/kernels/w4a8_layout.hpp"
#include "rankq/detail/kernels/x86_primitives_avx_vnni.hpp"

#if RANKQ_X86_PATHS
RANKQ_NAMESPACE_BEGIN namespace detail {

template <KernelPath P>
void w4a8_tiles(const W4A8Args& a, std::size_t tile_begin, std::size_t tile_end);

namespace avx_vnni {
using Dot = DotVnni;
inline constexpr std::size_t kTokenBlock = 4;  ///< tokens per micro-kernel call (4 x 16 rows of outputs)
}  // namespace avx_vnni

}  RANKQ_NAMESPACE_END  // namespace rankq::detail

#define RANKQ_YMM_NAMESPACE avx_vnni
#define RANKQ_YMM_INLINE RANKQ_AVXVNNI_INLINE
#define RANKQ_YMM_KERNEL RANKQ_AVXVNNI_KERNEL
#include "rankq/detail/kernels/w4a8_ymm_driver.inl"

RANKQ_NAMESPACE_BEGIN namespace detail {
template <>
inline void w4a8_tiles<KernelPath::avx_vnni>(const W4A8Args& a, std::size_t tile_begin, std::size_t tile_end) {
  avx_vnni::run_w4a8_tiles(a, tile_begin, tile_end);
}
}  RANKQ_NAMESPACE_END  // namespace rankq::detail
#endif
