// rankq/detail/kernels/codebook_dispatch.hpp — includes every compiled codebook path and maps a KernelPath to it.
#pragma once

#include "rankq/detail/abi.hpp"

#include <cstddef>

#include "rankq/detail/platform.hpp"
#include "rankq/error.hpp"
#include "rankq/kernel_path.hpp"
#include "rankq/detail/kernels/path_dispatch.hpp"
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

RANKQ_NAMESPACE_BEGIN namespace detail {

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
  dispatch_path(p, "codebook_gemm", "codebook", [&](auto path) { codebook_tiles<decltype(path)::value>(a, t0, t1); });
}

}  RANKQ_NAMESPACE_END  // namespace rankq::detail
