// rankq/algorithms/detail/gptq_solver.hpp — the GPTQ pass over one weight matrix for any grid: columns in processing order,
// lazy blocks of B columns (eager updates inside a block, one GEMM for the columns after it), error feedback
// through U, group parameters chosen when a group's first column is reached. Rows are independent: chunks of
// rows run through the ParallelFor hook. Include rankq/algorithms/gptq.hpp instead. Math: docs/gptq.md §3–4.
#pragma once

#include "rankq/detail/abi.hpp"

#include <algorithm>
#include <cstddef>
#include <functional>
#include <vector>

#include <Eigen/Core>

#include "rankq/formats/matrix.hpp"
#include "rankq/algorithms/detail/gptq_factor.hpp"
#include "rankq/detail/rounding.hpp"

RANKQ_NAMESPACE_BEGIN namespace detail {

inline constexpr std::size_t kGptqRowsPerChunk = 64;  ///< work unit of the thread hook (depends on nothing else)

/// Value of weight column `c` of row n as the pass starts: 0 for a dead channel, W(n, c) otherwise (converted to
/// float exactly for bf16_t/f16_t weights: the pass reads W only here, one chunk of rows at a time).
template <typename T>
float gptq_start_value(MatrixView<const T> W, const GptqFactor& f, std::size_t n, std::size_t c) {
  return f.dead[c] ? 0.0f : static_cast<float>(W(n, c));
}

/// Calls grid.start_group(n, g, values, len) for every row and group with the starting values (static groups).
template <typename T, typename Grid>
void gptq_static_groups(MatrixView<const T> W, const GptqFactor& f, Grid& grid, std::size_t group) {
  std::vector<float> values(std::min(group, f.K));
  for (std::size_t n = 0; n < W.rows; ++n)
    for (std::size_t g = 0; g * group < f.K; ++g) {
      const std::size_t c0 = g * group, len = std::min(f.K, c0 + group) - c0;
      for (std::size_t j = 0; j < len; ++j) values[j] = gptq_start_value(W, f, n, c0 + j);
      grid.start_group(n, g, values.data(), len);
    }
}

/// One GPTQ pass. Grid: start_group(n, g, values, len) receives the current values of group g's columns (original
/// order) when the group's first column in processing order is reached (skipped when `static_groups`);
/// quantize(n, c, w) stores the code of column c of row n for the current value w and returns its dequantized
/// value. `targets` (optional, N x K original order) receives each w at the moment it was quantized. Returns the
/// objective Σ e², e = (w − q)/U_ii (docs/gptq.md §3.3), summed per row then in row order.
template <typename T, typename Grid>
double gptq_pass(MatrixView<const T> W, const GptqFactor& f, Grid& grid, std::size_t group, bool static_groups,
                 const GptqOptions& o, float* targets) {
  const std::size_t N = W.rows, K = f.K, B = std::min(o.block, K);
  // first_position[g]: the processing position of group g's first column.
  const std::size_t group_count = ceil_div(K, group);
  std::vector<std::size_t> first_position(group_count, K);
  for (std::size_t c = 0; c < K; ++c) first_position[c / group] = std::min(first_position[c / group], f.position[c]);
  std::vector<char> starts(K, 0);
  if (!static_groups)
    for (std::size_t g = 0; g < group_count; ++g) starts[first_position[g]] = 1;
  std::vector<double> row_objective(N, 0.0);
  const std::size_t chunks = ceil_div(N, kGptqRowsPerChunk);

  auto run_chunk = [&](std::size_t chunk) {
    const std::size_t n0 = chunk * kGptqRowsPerChunk, rows = std::min(N, n0 + kGptqRowsPerChunk) - n0;
    GptqRowMajorF Wp(static_cast<Eigen::Index>(rows), static_cast<Eigen::Index>(K));
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t i = 0; i < K; ++i) Wp(static_cast<Eigen::Index>(r), static_cast<Eigen::Index>(i)) =
          gptq_start_value(W, f, n0 + r, f.order[i]);
    GptqRowMajorF err(static_cast<Eigen::Index>(rows), static_cast<Eigen::Index>(B));
    std::vector<float> values(std::min(group, K));
    for (std::size_t i1 = 0; i1 < K; i1 += B) {
      const std::size_t i2 = std::min(K, i1 + B);
      for (std::size_t r = 0; r < rows; ++r) {
        const std::size_t n = n0 + r;
        float* w = Wp.data() + r * K;
        float* e = err.data() + r * B;
        double objective = 0.0;
        for (std::size_t i = i1; i < i2; ++i) {
          const std::size_t c = f.order[i];
          if (starts[i]) {  // current values of the group: columns >= i2 still lack this block's feedback
            const std::size_t g = c / group, c0 = g * group, len = std::min(K, c0 + group) - c0;
            for (std::size_t j = 0; j < len; ++j) {
              const std::size_t p = f.position[c0 + j];
              float v = w[p];
              if (p >= i2)
                for (std::size_t q = i1; q < i; ++q) v -= e[q - i1] * f.U(static_cast<Eigen::Index>(q), static_cast<Eigen::Index>(p));
              values[j] = v;
            }
            grid.start_group(n, g, values.data(), len);
          }
          const float x = w[i];
          if (targets) targets[n * K + c] = x;
          const float q = grid.quantize(n, c, x);
          const float ei = (x - q) / f.U(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(i));
          e[i - i1] = ei;
          objective += static_cast<double>(ei) * ei;
          const float* u = f.U.data() + i * K;
          for (std::size_t j = i + 1; j < i2; ++j) w[j] -= ei * u[j];
        }
        row_objective[n] += objective;
      }
      if (i2 < K) {
        const Eigen::Index nb = static_cast<Eigen::Index>(i2 - i1), rest = static_cast<Eigen::Index>(K - i2);
        Wp.rightCols(rest).noalias() -= err.leftCols(nb) * f.U.block(static_cast<Eigen::Index>(i1), static_cast<Eigen::Index>(i2), nb, rest);
      }
    }
  };
  const std::function<void(std::size_t, std::size_t)> body = [&](std::size_t begin, std::size_t end) {
    for (std::size_t c = begin; c < end; ++c) run_chunk(c);
  };
  if (o.parallel_for)
    o.parallel_for(chunks, body);
  else
    body(0, chunks);
  double total = 0.0;
  for (double v : row_objective) total += v;
  return total;
}

}  RANKQ_NAMESPACE_END  // namespace rankq::detail
