// rankq/detail/kernels/path_dispatch.hpp — maps a run-time KernelPath to a compile-time one. Every kernel
// family (W4A8, codebook, low-rank) writes its paths as specialisations `family_tiles<KernelPath::X>` and
// dispatches through dispatch_path, so the list of compiled paths lives in one place.
#pragma once

#include "rankq/detail/abi.hpp"

#include <string>
#include <type_traits>
#include <utility>

#include "rankq/detail/platform.hpp"
#include "rankq/error.hpp"
#include "rankq/kernel_path.hpp"

RANKQ_NAMESPACE_BEGIN namespace detail {

template <KernelPath P>
using PathConstant = std::integral_constant<KernelPath, P>;

/// Calls `kernel(PathConstant<P>{})` for the compiled path P equal to `p`. A path this build does not compile
/// throws rankq::invalid_argument naming `fn`'s options.path and the kernel family `family`.
template <class Kernel>
inline void dispatch_path(KernelPath p, const char* fn, const char* family, Kernel&& kernel) {
  switch (p) {
    case KernelPath::scalar: return kernel(PathConstant<KernelPath::scalar>{});
#if RANKQ_NEON_PATHS
    case KernelPath::neon: return kernel(PathConstant<KernelPath::neon>{});
#endif
#if RANKQ_NEON_DOTPROD_PATH
    case KernelPath::neon_dotprod: return kernel(PathConstant<KernelPath::neon_dotprod>{});
#endif
#if RANKQ_X86_PATHS
    case KernelPath::avx2: return kernel(PathConstant<KernelPath::avx2>{});
    case KernelPath::avx_vnni: return kernel(PathConstant<KernelPath::avx_vnni>{});
    case KernelPath::avx512_vnni: return kernel(PathConstant<KernelPath::avx512_vnni>{});
#endif
    default: break;
  }
  throw_argument(fn, "options.path",
                 std::string("= ") + to_string(p) + ": no " + family + " kernel for this path in this build");
}

}  RANKQ_NAMESPACE_END  // namespace rankq::detail
