// rankq/detail/kernels/lowrank_dispatch.hpp — includes every compiled low-rank path and maps a KernelPath to it.
#pragma once

#include "rankq/detail/abi.hpp"

#include <cstddef>

#include "rankq/detail/platform.hpp"
#include "rankq/error.hpp"
#include "rankq/kernel_path.hpp"
#include "rankq/detail/kernels/path_dispatch.hpp"
#include "rankq/detail/kernels/lowrank_layout.hpp"
#include "rankq/detail/kernels/lowrank_scalar.hpp"
#if RANKQ_NEON_PATHS
#include "rankq/detail/kernels/lowrank_neon.hpp"
#endif
#if RANKQ_X86_PATHS
#include "rankq/detail/kernels/lowrank_avx2.hpp"
#include "rankq/detail/kernels/lowrank_avx512.hpp"
#include "rankq/detail/kernels/lowrank_avx_vnni.hpp"
#endif

RANKQ_NAMESPACE_BEGIN namespace detail {

inline void lowrank_dispatch(KernelPath p, const LowRankArgs& a, std::size_t t0, std::size_t t1) {
  dispatch_path(p, "lqer_gemm", "low-rank", [&](auto path) { lowrank_tiles<decltype(path)::value>(a, t0, t1); });
}

}  RANKQ_NAMESPACE_END  // namespace rankq::detail
