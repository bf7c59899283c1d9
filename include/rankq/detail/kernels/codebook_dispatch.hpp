// rankq/detail/kernels/codebook_dispatch.hpp — every compiled codebook path: the one driver (codebook_driver.inl)
// compiled per instruction set, and the map from a run-time KernelPath to it.
#pragma once

#include "rankq/detail/abi.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "rankq/detail/platform.hpp"
#include "rankq/kernels/kernel_path.hpp"
#include "rankq/detail/kernels/codebook_layout.hpp"
#include "rankq/detail/kernels/path_dispatch.hpp"
#include "rankq/detail/kernels/stream_prefetch.hpp"

#define RANKQ_DRIVER_FILE "rankq/detail/kernels/codebook_driver.inl"
#include "rankq/detail/kernels/foreach_isa.inl"

RANKQ_NAMESPACE_BEGIN namespace detail {

inline void codebook_dispatch(KernelPath p, const CodebookArgs& a, std::size_t t0, std::size_t t1) {
  dispatch_isa(p, "codebook_gemm", "codebook", [&](auto isa) { run_codebook_tiles(isa, a, t0, t1); });
}

}  RANKQ_NAMESPACE_END  // namespace rankq::detail
