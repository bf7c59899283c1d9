// rankq/detail/kernels/path_dispatch.hpp — maps a run-time KernelPath to the compiled instruction-set traits `Isa`
// of that path. Every kernel family (W4A8, codebook, low-rank) compiles its one driver per Isa (the driver .inl
// files) and dispatches through dispatch_isa, so the list of compiled paths lives in one place.
#pragma once

#include "rankq/detail/abi.hpp"

#include <string>
#include <utility>

#include "rankq/detail/platform.hpp"
#include "rankq/error.hpp"
#include "rankq/kernels/kernel_path.hpp"
#include "rankq/detail/kernels/scalar_primitives.hpp"
#if RANKQ_NEON_PATHS
#include "rankq/detail/kernels/neon_primitives.hpp"
#endif
#if RANKQ_X86_PATHS
#include "rankq/detail/kernels/x86_primitives_avx2.hpp"
#include "rankq/detail/kernels/x86_primitives_avx512.hpp"
#include "rankq/detail/kernels/x86_primitives_avx_vnni.hpp"
#endif

RANKQ_NAMESPACE_BEGIN namespace detail {

/// Calls `kernel(Isa{})` with the traits of the compiled path equal to `p`; the kernel reaches the path's driver
/// by argument-dependent lookup (e.g. run_w4a8_tiles(isa, ...) finds avx2::run_w4a8_tiles). A path this build
/// does not compile throws rankq::invalid_argument naming `fn`'s options.path and the kernel family `family`.
template <class Kernel>
inline void dispatch_isa(KernelPath p, const char* fn, const char* family, Kernel&& kernel) {
  switch (p) {
    case KernelPath::scalar: return kernel(scalar::Isa{});
#if RANKQ_NEON_PATHS
    case KernelPath::neon: return kernel(neon::Isa{});
#endif
#if RANKQ_NEON_DOTPROD_PATH
    case KernelPath::neon_dotprod: return kernel(neon_dotprod::Isa{});
#endif
#if RANKQ_X86_PATHS
    case KernelPath::avx2: return kernel(avx2::Isa{});
    case KernelPath::avx_vnni: return kernel(avx_vnni::Isa{});
    case KernelPath::avx512_vnni: return kernel(avx512::Isa{});
#endif
    default: break;
  }
  throw_argument(fn, "options.path",
                 std::string("= ") + to_string(p) + ": no " + family + " kernel for this path in this build");
}

}  RANKQ_NAMESPACE_END  // namespace rankq::detail
