// rankq/algorithms/lcq.hpp — LCQ: rank-k codebook quantization of a weight matrix (Cai & Li 2024, rankq's formulation):
// the format, its byte serialization, the D-weighted alternating least-squares fit and 8-bit double
// quantization. The int8 kernel form and its scalar reference matmul: rankq/kernels/codebook_reference.hpp.
// Weights may be float, bf16_t or f16_t views: the alternating fit re-reads every weight in each iteration, so a
// 16-bit matrix is converted to one float copy of that matrix for the fit (N·K floats while it runs; the result
// equals the float path's bit for bit; docs/formats.md §8). Math, byte layout and measured numbers: docs/lcq.md.
#pragma once

#include "rankq/detail/abi.hpp"

#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "rankq/algorithms/detail/lcq_double_quant.hpp"
#include "rankq/algorithms/detail/lcq_fit.hpp"
#include "rankq/formats/codebook.hpp"
#include "rankq/algorithms/detail/lcq_serialize.hpp"
#include "rankq/algorithms/detail/lcq_solve.hpp"
#include "rankq/error.hpp"
#include "rankq/formats/matrix.hpp"

RANKQ_NAMESPACE_BEGIN

struct LcqOptions {
  unsigned bits = 4;              ///< 2, 3 or 4
  std::size_t group_size = 128;   ///< 32, 64, 128 or kWholeRow
  unsigned rank = 2;              ///< 1..kMaxCodebookRank; ranks 1..rank are fitted in turn
  unsigned max_iterations = 20;   ///< alternating iterations per rank (0: rank 1 is exactly RTN)
  double tolerance = 1e-4;        ///< a rank stops when (f_prev − f) <= tolerance·f_prev
  bool double_quantize = false;   ///< finish with 8-bit S and B (apply_double_quantization)
  std::size_t threads = 0;        ///< worker threads, 0 = hardware concurrency; results do not depend on it
};

/// Objectives f = Σ_n Σ_c D[c]·(W[n,c] − Ŵ[n,c])² recorded during a fit.
struct LcqReport {
  double weighted_norm = 0.0;  ///< Σ D[c]·W[n,c]², for relative errors
  double rtn_objective = 0.0;  ///< the RTN initialization (rank 1, V = [0 … 2^b − 1])
  std::vector<double> rank_objectives;                    ///< final objective of rank 1, 2, …, k (before DQ)
  std::vector<std::vector<double>> iteration_objectives;  ///< per rank: starting objective, then after each iteration
  double final_objective = 0.0;  ///< of the returned weights (after double quantization if requested)
};

namespace detail {

inline LcqProblem make_lcq_problem(MatrixView<const float> W, const std::vector<float>& channel_weights,
                                   const LcqOptions& o, const char* fn) {
  check_codebook_format(CodebookFormat{o.bits, o.group_size, o.rank, false}, fn, "options");
  if (!(o.tolerance >= 0.0) || !std::isfinite(o.tolerance))
    throw_argument(fn, "options.tolerance", "= " + std::to_string(o.tolerance) + ": must be finite and >= 0");
  check_view(W, fn, "weights");
  require_finite(W.data, W.rows, W.cols, W.ld, fn, "weights");
  LcqProblem p;
  p.W = W;
  p.N = W.rows;
  p.K = W.cols;
  p.bits = o.bits;
  p.T = std::size_t(1) << o.bits;
  const std::size_t Kp = padded_cols(CodebookFormat{o.bits, o.group_size, o.rank, false}, W.cols);
  p.group = o.group_size == kWholeRow ? Kp : o.group_size;
  p.groups = Kp / p.group;
  if (channel_weights.empty()) {
    p.d.assign(p.K, 1.0);
  } else {
    if (channel_weights.size() != p.K)
      throw_argument(fn, "channel_weights", "has " + std::to_string(channel_weights.size()) +
                                                " entries: must be empty (all ones) or K = " + std::to_string(p.K));
    p.d.resize(p.K);
    for (std::size_t c = 0; c < p.K; ++c) {
      const float v = channel_weights[c];
      if (!(v > 0.0f) || !std::isfinite(v))
        throw_argument(fn, "channel_weights", "[" + std::to_string(c) + "] = " + std::to_string(v) +
                                                  ": every entry must be finite and > 0");
      p.d[c] = v;
    }
  }
  p.threads = resolve_threads(o.threads);
  // Work unit: ~32K weights, but at least 64 units when the matrix allows (depends on the shape only).
  p.chunk_groups = std::max<std::size_t>(1, std::min(32768 / p.group, ceil_div(p.group_count(), 64)));
  p.chunks = ceil_div(p.group_count(), p.chunk_groups);
  return p;
}

/// W as a float matrix: W itself for float elements; for bf16_t/f16_t, converted row by row into `storage`
/// (N·K floats). An invalid view is passed on as such (data null) so that the float checks name it the same way.
template <typename T>
MatrixView<const float> lcq_float_weights(MatrixView<T> W, std::vector<float>& storage) {
  static_assert(is_weight_element_v<T>, "LCQ: weights must be float, bf16_t or f16_t");
  if constexpr (std::is_same_v<std::remove_const_t<T>, float>) {
    return W;
  } else {
    if (W.empty() || W.data == nullptr || W.ld < W.cols) return MatrixView<const float>(nullptr, W.rows, W.cols, W.ld);
    storage.resize(W.rows * W.cols);
    for (std::size_t r = 0; r < W.rows; ++r) row_as_float(W, r, storage.data() + r * W.cols);
    return MatrixView<const float>(storage.data(), W.rows, W.cols);
  }
}

inline double weighted_norm(const LcqProblem& p) {
  double s = 0.0;
  for (std::size_t n = 0; n < p.N; ++n)
    for (std::size_t c = 0; c < p.K; ++c) s += p.d[c] * static_cast<double>(p.W(n, c)) * p.W(n, c);
  return s;
}

/// The rank chain: RTN -> rank 1 iterations -> extend -> rank 2 iterations … ; on_rank(state) after each rank.
template <typename OnRank>
void fit_lcq_chain(const LcqProblem& p, const LcqOptions& o, LcqReport& report, OnRank&& on_rank) {
  LcqState st;
  init_from_rtn(p, o.group_size, st);
  report.weighted_norm = weighted_norm(p);
  report.rtn_objective = evaluate_state(p, st);
  for (unsigned k = 1; k <= o.rank; ++k) {
    if (k > 1) extend_rank(p, st);
    std::vector<double> history{k == 1 ? report.rtn_objective : evaluate_state(p, st)};
    lcq_iterate(p, st, o.max_iterations, o.tolerance, history);
    report.rank_objectives.push_back(history.back());
    report.iteration_objectives.push_back(std::move(history));
    on_rank(st);
  }
}

}  // namespace detail

/// Σ_n Σ_c D[c]·(W[n,c] − Ŵ[n,c])² in double (D = channel_weights, or all ones when empty). W: float, bf16_t or
/// f16_t (read in place).
template <typename T>
double lcq_objective(const CodebookWeights& q, MatrixView<T> W, const std::vector<float>& channel_weights = {}) {
  static_assert(is_weight_element_v<T>, "lcq_objective: weights must be float, bf16_t or f16_t");
  constexpr const char* fn = "lcq_objective";
  detail::check_view(W, fn, "weights");
  if (W.rows != q.rows || W.cols != q.cols) detail::throw_argument(fn, "weights", "has a different shape than q");
  if (!channel_weights.empty() && channel_weights.size() != q.cols)
    detail::throw_argument(fn, "channel_weights", "must be empty or have K entries");
  double s = 0.0;
  for (std::size_t n = 0; n < q.rows; ++n)
    for (std::size_t c = 0; c < q.cols; ++c) {
      const double e = static_cast<double>(static_cast<float>(W(n, c))) - q.value(n, c);
      s += (channel_weights.empty() ? 1.0 : channel_weights[c]) * e * e;
    }
  return s;
}

/// Fits ranks 1..options.rank and returns all of them (element k−1 has rank k; each initializes the next).
/// channel_weights: D = E[x²] per input channel (K positive values, e.g. calibration's mean of x²), or empty.
/// Throws rankq::invalid_argument for bad options, empty/NaN weights or bad channel weights. W: float, bf16_t or
/// f16_t (a 16-bit W is converted to one float copy for the fit).
template <typename T>
std::vector<CodebookWeights> fit_lcq_all_ranks(MatrixView<T> Wv, const std::vector<float>& channel_weights,
                                               const LcqOptions& options, LcqReport* report = nullptr) {
  std::vector<float> storage;
  const MatrixView<const float> W = detail::lcq_float_weights(Wv, storage);
  const detail::LcqProblem p = detail::make_lcq_problem(W, channel_weights, options, "fit_lcq_all_ranks");
  LcqReport local;
  std::vector<CodebookWeights> out;
  detail::fit_lcq_chain(p, options, local, [&](const detail::LcqState& st) {
    out.push_back(detail::to_codebook_weights(p, st, options.group_size));
    if (options.double_quantize) detail::apply_double_quantization(out.back(), W, p.d.data());
  });
  local.final_objective = lcq_objective(out.back(), W, channel_weights);
  if (report) *report = std::move(local);
  return out;
}

/// Fits rank-options.rank LCQ weights (the rank chain 1..k runs internally). See fit_lcq_all_ranks.
template <typename T>
CodebookWeights fit_lcq(MatrixView<T> Wv, const std::vector<float>& channel_weights, const LcqOptions& options,
                        LcqReport* report = nullptr) {
  std::vector<float> storage;
  const MatrixView<const float> W = detail::lcq_float_weights(Wv, storage);
  const detail::LcqProblem p = detail::make_lcq_problem(W, channel_weights, options, "fit_lcq");
  LcqReport local;
  CodebookWeights out;
  detail::fit_lcq_chain(p, options, local, [&](const detail::LcqState& st) {
    if (st.rank == options.rank) out = detail::to_codebook_weights(p, st, options.group_size);
  });
  if (options.double_quantize) detail::apply_double_quantization(out, W, p.d.data());
  local.final_objective = options.double_quantize ? lcq_objective(out, W, channel_weights) : local.rank_objectives.back();
  if (report) *report = std::move(local);
  return out;
}

/// fit_lcq with D = all ones.
template <typename T>
CodebookWeights fit_lcq(MatrixView<T> W, const LcqOptions& options, LcqReport* report = nullptr) {
  return fit_lcq(W, std::vector<float>{}, options, report);
}

/// Converts fitted float S and B to 8-bit (see detail::apply_double_quantization); W and channel_weights are the
/// ones the weights were fitted to (used to re-fit B and re-assign indices). No-op if already double-quantized.
template <typename T>
void double_quantize(CodebookWeights& q, MatrixView<T> Wv, const std::vector<float>& channel_weights = {}) {
  constexpr const char* fn = "double_quantize";
  detail::check_view(Wv, fn, "weights");
  if (Wv.rows != q.rows || Wv.cols != q.cols) detail::throw_argument(fn, "weights", "has a different shape than q");
  if (q.format.double_quantized) return;
  std::vector<float> storage;
  const MatrixView<const float> W = detail::lcq_float_weights(Wv, storage);
  LcqOptions o;
  o.bits = q.format.bits;
  o.group_size = q.format.group_size;
  o.rank = q.format.rank;
  const detail::LcqProblem p = detail::make_lcq_problem(W, channel_weights, o, fn);
  detail::apply_double_quantization(q, W, p.d.data());
}

RANKQ_NAMESPACE_END  // namespace rankq
