// rankq/detail/kernels/codebook_dispatch.hpp — includes every compiled codebook path and maps a KernelPath to it.
#pragma once

#include <cstddef>
#include <string>

#include "rankq/detail/platform.hpp"
#include "rankq/error.hpp"
#include "rankq/kernel_path.hpp"
#include "rankq/detail/kernels/codebook_layout.hpp"
#include "rankq/detail/kernels/codebook_scalar.hpp"
#if RANKQ_NEON_PATHS
#include "rankq/detail/kernels/codebook_neon.hpp"
#endif
#if RANKQ_X86_PATHS
#include "rankq/detail/kernels/codebook_avx2.hpp"
#include "rankq/detail/kernels/codebook_avx512.hpp"
#include "rankq/detail/kernels/codebook_avx_vnni.hpp"
#endif

namespace rankq::detail {

/// Does `p` have a codebook kernel in this build (a subset of path_compiled)?
constexpr bool codebook_path_available(KernelPath p) {
  switch (p) {
    case KernelPath::scalar: return true;
    case KernelPath::avx2:
    case KernelPath::avx_vnni:
    case KernelPath::avx512_vnni: return RANKQ_X86_PATHS != 0;
    case KernelPath::neon: return RANKQ_NEON_PATHS != 0;
    case KernelPath::neon_dotprod: return RANKQ_NEON_DOTPROD_PATH != 0;
  }
  return false;
}

inline void codebook_dispatch(KernelPath p, const CodebookArgs& a, std::size_t t0, std::size_t t1) {
  switch (p) {
    case KernelPath::scalar: return codebook_tiles<KernelPath::scalar>(a, t0, t1);
#if RANKQ_NEON_PATHS
    case KernelPath::neon: return codebook_tiles<KernelPath::neon>(a, t0, t1);
#endif
#if RANKQ_NEON_DOTPROD_PATH
    case KernelPath::neon_dotprod: return codebook_tiles<KernelPath::neon_dotprod>(a, t0, t1);
#endif
#if RANKQ_X86_PATHS
    case KernelPath::avx2: return codebook_tiles<KernelPath::avx2>(a, t0, t1);
    case KernelPath::avx_vnni: return codebook_tiles<KernelPath::avx_vnni>(a, t0, t1);
    case KernelPath::avx512_vnni: return codebook_tiles<KernelPath::avx512_vnni>(a, t0, t1);
#endif
    default: break;
  }
  throw_argument("codebook_gemm", "options.path", std::string("= ") + to_string(p) + ": no codebook kernel for this path yet");
}

}  // namespace rankq::detail
