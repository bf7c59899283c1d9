// rankq/detail/kernels/w4a8_dispatch.hpp — includes every compiled W4A8 path and maps a KernelPath to it.
#pragma once

#include "rankq/detail/abi.hpp"

#include <cstddef>

#include "rankq/detail/platform.hpp"
#include "rankq/error.hpp"
#include "rankq/kernel_path.hpp"
#include "rankq/detail/kernels/path_dispatch.hpp"
#include "rankq/detail/kernels/w4a8_layout.hpp"
#include "rankq/detail/kernels/w4a8_scalar.hpp"
#if RANKQ_NEON_PATHS
#include "rankq/detail/kernels/w4a8_neon.hpp"
#endif
#if RANKQ_X86_PATHS
#include "rankq/detail/kernels/w4a8_avx2.hpp"
#include "rankq/detail/kernels/w4a8_avx512.hpp"
#include "rankq/detail/kernels/w4a8_avx_vnni.hpp"
#endif

RANKQ_NAMESPACE_BEGIN namespace detail {

inline void w4a8_dispatch(KernelPath p, const W4A8Args& a, std::size_t t0, std::size_t t1) {
  dispatch_path(p, "w4a8_gemm", "W4A8", [&](auto path) { w4a8_tiles<decltype(path)::value>(a, t0, t1); });
}

}  RANKQ_NAMESPACE_END  // namespace rankq::detail
