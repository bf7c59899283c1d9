// rankq/detail/kernels/w4a8_dispatch.hpp — every compiled W4A8 path: the one driver (w4a8_driver.inl) compiled per
// instruction set, the avx512vnni prefill specialisation, and the map from a run-time KernelPath to them.
#pragma once

#include "rankq/detail/abi.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "rankq/detail/platform.hpp"
#include "rankq/kernels/kernel_path.hpp"
#include "rankq/detail/kernels/path_dispatch.hpp"
#include "rankq/detail/kernels/stream_prefetch.hpp"
#include "rankq/detail/kernels/w4a8_layout.hpp"
#if RANKQ_X86_PATHS
#include "rankq/detail/kernels/w4a8_avx512_prefill.hpp"
#endif

#define RANKQ_DRIVER_FILE "rankq/detail/kernels/w4a8_driver.inl"
#include "rankq/detail/kernels/foreach_isa.inl"

RANKQ_NAMESPACE_BEGIN namespace detail {

inline void w4a8_dispatch(KernelPath p, const W4A8Args& a, std::size_t t0, std::size_t t1) {
  dispatch_isa(p, "w4a8_gemm", "W4A8", [&](auto isa) {
    if constexpr (decltype(isa)::kPrefill)
      if (a.M > decltype(isa)::kTokenBlock) return run_w4a8_prefill(isa, a, t0, t1);
    run_w4a8_tiles(isa, a, t0, t1);
  });
}

}  RANKQ_NAMESPACE_END  // namespace rankq::detail
