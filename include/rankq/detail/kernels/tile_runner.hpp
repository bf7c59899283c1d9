// rankq/detail/kernels/tile_runner.hpp — how every kernel family runs its 16-row tiles: on the caller's
// ParallelFor hook (any partition of [0, tiles)) or inline, and, for W4A8, with the low-rank correction as a
// declared fused epilogue (docs/kernels.md §8): after each block of W4A8 tiles the same tiles of Bᵀ add
// (+ u) + bias to the rows just written, while they are still in L2.
#pragma once

#include "rankq/detail/abi.hpp"

#include <algorithm>
#include <cstddef>

#include "rankq/kernels/kernel_path.hpp"
#include "rankq/kernels/threading.hpp"
#include "rankq/detail/kernels/lowrank_dispatch.hpp"
#include "rankq/detail/kernels/lowrank_layout.hpp"
#include "rankq/detail/kernels/w4a8_dispatch.hpp"
#include "rankq/detail/kernels/w4a8_layout.hpp"

RANKQ_NAMESPACE_BEGIN namespace detail {

/// body(t0, t1) over a partition of [0, tiles): on `parallel` when it is set and there is more than one tile,
/// else inline. The body should capture at most a pointer and a path, so the hook's std::function stores it
/// without allocating.
template <class Body>
inline void run_tiles(std::size_t tiles, const ParallelFor* parallel, const Body& body) {
  if (parallel && *parallel && tiles > 1)
    (*parallel)(tiles, body);
  else
    body(0, tiles);
}

/// The fused low-rank epilogue of a W4A8 call: `args` (accumulate = true) covers the same 16-row tiles as the
/// W4A8 weights and runs after every `block_tiles` of them.
struct LowRankEpilogue {
  const LowRankArgs* args = nullptr;
  std::size_t block_tiles = 1;
};
static_assert(kLowRankRows == kTileRows, "W4A8 and low-rank tiles cover the same 16 rows");

/// Runs the W4A8 kernel on `path` over all tiles, then (if `epilogue` is set) the low-rank tiles block by block.
inline void run_w4a8(const W4A8Args& a, std::size_t tiles, KernelPath path, const ParallelFor* parallel,
                     const LowRankEpilogue* epilogue = nullptr) {
  struct Call {
    const W4A8Args* a;
    const LowRankEpilogue* epilogue;
    KernelPath path;
  } call{&a, epilogue, path};
  const Call* c = &call;
  run_tiles(tiles, parallel, [c](std::size_t t0, std::size_t t1) {
    if (!c->epilogue) return w4a8_dispatch(c->path, *c->a, t0, t1);
    for (std::size_t tile = t0; tile < t1; tile += c->epilogue->block_tiles) {
      const std::size_t end = std::min(t1, tile + c->epilogue->block_tiles);
      w4a8_dispatch(c->path, *c->a, tile, end);
      lowrank_dispatch(c->path, *c->epilogue->args, tile, end);
    }
  });
}

}  RANKQ_NAMESPACE_END  // namespace rankq::detail
