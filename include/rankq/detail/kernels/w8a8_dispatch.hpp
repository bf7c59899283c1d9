// rankq/detail/kernels/w8a8_dispatch.hpp — every compiled W8A8 path: the one driver (w8a8_driver.inl) compiled per
// instruction set, and the map from a run-time KernelPath to it.
#pragma once

#include "rankq/detail/abi.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "rankq/detail/platform.hpp"
#include "rankq/kernels/kernel_path.hpp"
#include "rankq/kernels/threading.hpp"
#include "rankq/detail/kernels/path_dispatch.hpp"
#include "rankq/detail/kernels/stream_prefetch.hpp"
#include "rankq/detail/kernels/tile_runner.hpp"
#include "rankq/detail/kernels/w8a8_layout.hpp"

#define RANKQ_DRIVER_FILE "rankq/detail/kernels/w8a8_driver.inl"
#include "rankq/detail/kernels/foreach_isa.inl"

RANKQ_NAMESPACE_BEGIN namespace detail {

inline void w8a8_dispatch(KernelPath p, const W8A8Args& a, std::size_t t0, std::size_t t1) {
  dispatch_isa(p, "w8a8_gemm", "W8A8", [&](auto isa) { run_w8a8_tiles(isa, a, t0, t1); });
}

/// All tiles on `path`, through the caller's ParallelFor (run_tiles: any partition gives the same y).
/// The closure holds a pointer and a path: libstdc++'s std::function stores it without allocating.
inline void run_w8a8(const W8A8Args& a, std::size_t tiles, KernelPath path, const ParallelFor* parallel) {
  const W8A8Args* args = &a;
  run_tiles(tiles, parallel, [args, path](std::size_t t0, std::size_t t1) { w8a8_dispatch(path, *args, t0, t1); });
}

}  RANKQ_NAMESPACE_END  // namespace rankq::detail
