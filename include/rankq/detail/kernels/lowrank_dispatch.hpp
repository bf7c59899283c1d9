// rankq/detail/kernels/lowrank_dispatch.hpp — includes every compiled low-rank path and maps a KernelPath to it.
#pragma once

#include <cstddef>
#include <string>

#include "rankq/detail/platform.hpp"
#include "rankq/error.hpp"
#include "rankq/kernel_path.hpp"
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

namespace rankq::detail {

inline void lowrank_dispatch(KernelPath p, const LowRankArgs& a, std::size_t t0, std::size_t t1) {
  switch (p) {
    case KernelPath::scalar: return lowrank_tiles<KernelPath::scalar>(a, t0, t1);
#if RANKQ_NEON_PATHS
    case KernelPath::neon: return lowrank_tiles<KernelPath::neon>(a, t0, t1);
#endif
#if RANKQ_NEON_DOTPROD_PATH
    case KernelPath::neon_dotprod: return lowrank_tiles<KernelPath::neon_dotprod>(a, t0, t1);
#endif
#if RANKQ_X86_PATHS
    case KernelPath::avx2: return lowrank_tiles<KernelPath::avx2>(a, t0, t1);
    case KernelPath::avx_vnni: return lowrank_tiles<KernelPath::avx_vnni>(a, t0, t1);
    case KernelPath::avx512_vnni: return lowrank_tiles<KernelPath::avx512_vnni>(a, t0, t1);
#endif
    default: break;
  }
  throw_argument("lqer_gemm", "options.path", std::string("= ") + to_string(p) + ": no low-rank kernel for this path");
}

}  // namespace rankq::detail
