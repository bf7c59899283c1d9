// rankq/algorithms/detail/gptq_types.hpp — the data types of rankq/algorithms/gptq.hpp (GptqHessian, GptqOptions, GptqReport).
// Include rankq/algorithms/gptq.hpp, not this. Math: docs/gptq.md.
#pragma once

#include "rankq/detail/abi.hpp"

#include <cstddef>
#include <vector>

#include "rankq/kernels/threading.hpp"

RANKQ_NAMESPACE_BEGIN

/// The layer's input second moment H = XᵀX / n (K x K, row-major, symmetric), n = calibration tokens. Built by
/// gptq_hessian() from ActivationStats (which merges across batches and threads), or filled by the caller.
struct GptqHessian {
  std::size_t channels = 0;    ///< K
  std::vector<double> values;  ///< K·K entries, H[i·K + j]
};

inline constexpr unsigned kGptqMaxClipSteps = 1000;  ///< GptqOptions::clip_steps at most: more only cost time

struct GptqOptions {
  double damp = 0.01;          ///< λ: H + λ·mean(diag H)·I before the Cholesky (finite, >= 0)
  bool act_order = false;      ///< process columns by decreasing diag(H) (groups stay on the original order)
  std::size_t block = 128;     ///< lazy-batch width B: columns updated eagerly inside a block, by GEMM after it (>= 1)
  bool static_groups = false;  ///< uniform/MXINT: choose every group's scale from the original W before the pass
                               ///< instead of when the group starts (LCQ codebooks are always fixed during a pass)
  unsigned clip_steps = 0;     ///< uniform grids: shrink factors tried per group besides min/max (0 = RTN's
                               ///< min/max rule); the group keeps the one with the least H-weighted error (§3.8)
  double clip_min = 0.5;       ///< smallest shrink factor tried, in (0, 1]: p = 1 − (1 − clip_min)·i/clip_steps
  unsigned lcq_refits = 1;     ///< gptq_fit_lcq: codebook refits alternating with GPTQ passes (0: one pass)
  ParallelFor parallel_for;    ///< thread hook (e.g. ThreadPool::hook()); empty = the calling thread only.
                               ///< Results do not depend on it.
};

/// What a GPTQ run reports.
struct GptqReport {
  /// Σ_n (w_n − ŵ_n)·H_d·(w_n − ŵ_n)ᵀ over the rows, H_d = the dampened H (dead channels' diagonal set to 1),
  /// with w_n the row after dead-channel zeroing: Σ of the squared scaled errors of the pass (docs/gptq.md §3.3).
  double objective = 0.0;
  std::size_t dead_channels = 0;   ///< input channels with diag(H) = 0 (their weight column was zeroed)
  double damping = 0.0;            ///< the value λ·mean(diag H) added to the diagonal
  std::vector<std::size_t> order;  ///< processing order: order[i] = the original column processed i-th
  std::vector<double> pass_objectives;  ///< gptq_fit_lcq: objective of each pass (the best one is returned)
};

RANKQ_NAMESPACE_END  // namespace rankq
