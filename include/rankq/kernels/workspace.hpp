// rankq/kernels/workspace.hpp — reusable scratch memory for the kernels' calling thread, so that an engine's hot path
// performs no heap allocation once every shape has been seen (docs/kernels.md §5).
#pragma once

#include "rankq/detail/abi.hpp"

#include <cstddef>
#include <cstdint>

#include "rankq/formats/activation.hpp"
#include "rankq/formats/matrix.hpp"
#include "rankq/kernels/packed_activations.hpp"
#include "rankq/detail/grow_buffer.hpp"
#include "rankq/detail/kernels/activation_terms.hpp"

RANKQ_NAMESPACE_BEGIN

namespace detail {
/// The side terms and intermediates the kernels compute on the calling thread before they fan out.
struct KernelScratch {
  ActivationTermBuffers terms;             ///< the side terms of QuantizedActivations inputs (activation_terms.hpp)
  GrowBuffer<float> lowrank_t;             ///< low-rank: t = x·A (M x k)
  QuantizedActivations lowrank_tq;         ///< low-rank: Q(t)
  GrowBuffer<float> chunk_scales[2];       ///< low-rank: activation scale per 16-chunk, stage 1 and stage 3
  GrowBuffer<std::int32_t> chunk_sums[2];  ///< low-rank: Σ q per 16-chunk, stage 1 and stage 3

  std::size_t capacity_bytes() const {
    std::size_t b = terms.capacity_bytes() + lowrank_t.capacity_bytes() + lowrank_tq.values.size_bytes() +
                    lowrank_tq.scales.size_bytes();
    for (int i = 0; i < 2; ++i) b += chunk_scales[i].capacity_bytes() + chunk_sums[i].capacity_bytes();
    return b;
  }
};
}  // namespace detail

/// Scratch of one calling thread: pass it as W4A8Options::workspace (or through a Context) and reuse it across
/// calls. Its buffers grow to the largest shape seen and are never shrunk, so once each shape has run, kernel
/// calls allocate nothing. One call at a time per Workspace; threads of the ParallelFor need none (the avx512
/// prefill's per-thread code buffers are thread-local and grow the same way). Without a workspace the kernels
/// use a temporary one per call (allocating, as simple callers expect).
class Workspace {
 public:
  Workspace() = default;
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
  Workspace(Workspace&&) = default;
  Workspace& operator=(Workspace&&) = default;

  /// Bytes held (for an engine's memory accounting).
  std::size_t capacity_bytes() const { return scratch_.capacity_bytes() + activations_.capacity_bytes(); }

  /// For the kernels (rankq::detail): the calling thread's side terms.
  detail::KernelScratch& kernel_scratch() { return scratch_; }
  /// The packed activations of Linear::forward (pack_activations).
  PackedActivations& activations() { return activations_; }

 private:
  detail::KernelScratch scratch_;
  PackedActivations activations_;
};

RANKQ_NAMESPACE_END  // namespace rankq
