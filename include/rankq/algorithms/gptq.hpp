// rankq/algorithms/gptq.hpp — GPTQ (Frantar et al. 2022): error-compensating quantization of a weight matrix with the
// layer's input second moment H = XᵀX/n, for every rankq grid: uniform (any bits/group/symmetry), MXINT, LCQ
// codebooks, and GPTQ + LQER/L²QER. Results are the library's usual quantized types, so packing and kernels are
// unchanged. Weights may be float, bf16_t or f16_t views (the same results as their float values, bit for bit): the
// pass converts them one chunk of 64 rows at a time (it keeps that chunk in float anyway); gptq_fit_lcq converts the
// whole matrix, as its LCQ fits need it in float (docs/formats.md §8). Math: docs/gptq.md.
#pragma once

#include "rankq/detail/abi.hpp"

#include <cmath>
#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "rankq/algorithms/calibration.hpp"
#include "rankq/error.hpp"
#include "rankq/algorithms/lcq.hpp"
#include "rankq/algorithms/lqer.hpp"
#include "rankq/formats/matrix.hpp"
#include "rankq/formats/mxint.hpp"
#include "rankq/kernels/reference.hpp"
#include "rankq/formats/uniform.hpp"
#include "rankq/algorithms/detail/gptq_factor.hpp"
#include "rankq/algorithms/detail/gptq_grids.hpp"
#include "rankq/algorithms/detail/gptq_solver.hpp"
#include "rankq/algorithms/detail/gptq_types.hpp"

RANKQ_NAMESPACE_BEGIN

/// H = XᵀX / n from calibration statistics kept with a Gram matrix (merge partial ActivationStats of several
/// batches or threads first: the Gram matrices add). Throws for stats without a Gram matrix, without a batch, or
/// with a non-finite Gram entry (e.g. an overflow of the sums).
inline GptqHessian gptq_hessian(const ActivationStats& stats) {
  constexpr const char* fn = "gptq_hessian";
  if (!stats.has_gram()) detail::throw_argument(fn, "stats", "keeps no Gram matrix: construct ActivationStats with keep_gram = true");
  if (stats.empty()) detail::throw_argument(fn, "stats", "is empty: no calibration batch was added");
  const std::vector<double>& g = stats.gram();
  GptqHessian h;
  h.channels = stats.channels();
  h.values.resize(g.size());
  const double inv_n = 1.0 / static_cast<double>(stats.tokens());
  for (std::size_t i = 0; i < g.size(); ++i) {
    if (!std::isfinite(g[i]))
      detail::throw_argument(fn, "stats", "has a non-finite Gram matrix entry at (" + std::to_string(i / h.channels) +
                                              ", " + std::to_string(i % h.channels) + ")");
    h.values[i] = g[i] * inv_n;
  }
  return h;
}

/// The GPTQ objective Σ_n (w_n − ŵ_n)·H·(w_n − ŵ_n)ᵀ = ‖(W − Ŵ)X‖²/n for H = XᵀX/n (no dampening; dead channels
/// count with their true zero). `w_hat` is the dequantized N x K matrix, row-major. W: float, bf16_t or f16_t.
template <typename T>
double gptq_objective(MatrixView<T> W, const std::vector<float>& w_hat, const GptqHessian& h) {
  static_assert(is_weight_element_v<T>, "gptq_objective: weights must be float, bf16_t or f16_t");
  constexpr const char* fn = "gptq_objective";
  detail::check_view(W, fn, "weights");
  detail::check_gptq_hessian(h, W.cols, fn);
  if (w_hat.size() != W.rows * W.cols)
    detail::throw_argument(fn, "w_hat", "has " + std::to_string(w_hat.size()) + " values, expected N·K = " +
                                            std::to_string(W.rows * W.cols));
  const std::size_t K = W.cols;
  double total = 0.0;
  std::vector<double> e(K);
  for (std::size_t n = 0; n < W.rows; ++n) {
    for (std::size_t k = 0; k < K; ++k) e[k] = static_cast<double>(static_cast<float>(W(n, k))) - w_hat[n * K + k];
    for (std::size_t i = 0; i < K; ++i) {
      double hi = 0.0;
      for (std::size_t j = 0; j < K; ++j) hi += h.values[i * K + j] * e[j];
      total += e[i] * hi;
    }
  }
  return total;
}

namespace detail {
template <typename T>
GptqFactor gptq_prepare(MatrixView<const T> W, const GptqHessian& h, const GptqOptions& o, const char* fn) {
  check_gptq_options(o, fn);
  check_view(W, fn, "weights");
  require_finite(W.data, W.rows, W.cols, W.ld, fn, "weights");
  check_gptq_hessian(h, W.cols, fn);
  return gptq_factor(h, o, fn);
}

inline void fill_report(GptqReport* report, const GptqFactor& f, double objective) {
  if (!report) return;
  report->objective = objective;
  report->dead_channels = f.dead_count;
  report->damping = f.damping;
  report->order = f.order;
}

template <typename T>
UniformWeights gptq_uniform(MatrixView<const T> W, const GptqFactor& f, const UniformFormat& format,
                                   const GptqOptions& o, GptqReport* report, const char* fn) {
  UniformWeights q = make_uniform_weights(format, W.rows, W.cols);
  const std::vector<float> cost = o.clip_steps > 0 ? gptq_column_costs(f) : std::vector<float>{};
  GptqUniformGrid grid{q, fn, o.clip_steps, o.clip_min, cost.data()};
  if (o.static_groups) gptq_static_groups(W, f, grid, q.group);
  fill_report(report, f, gptq_pass(W, f, grid, q.group, o.static_groups, o, nullptr));
  return q;
}

template <typename T>
MxTensor gptq_mxint(MatrixView<const T> W, const GptqFactor& f, const MxFormat& format, const GptqOptions& o,
                           GptqReport* report) {
  MxTensor t;
  t.format = format;
  t.rows = W.rows;
  t.cols = W.cols;
  t.padded = round_up(W.cols, format.block);
  t.blocks = t.padded / format.block;
  t.row_bytes = t.padded * format.bits / 8;
  t.codes.resize(t.rows * t.row_bytes);
  t.exponents.resize(t.rows * t.blocks);
  GptqMxGrid grid(t, mx_fallback_block_max(W, f.dead, format.block));
  if (o.static_groups) gptq_static_groups(W, f, grid, format.block);
  fill_report(report, f, gptq_pass(W, f, grid, format.block, o.static_groups, o, nullptr));
  return t;
}
}  // namespace detail

/// GPTQ onto a uniform grid (any bits, group size and symmetry of UniformFormat). Group scale/offset are chosen
/// when the group's first column is processed, from the group's current (error-fed) values, by RTN's rule —
/// or from the original weights with options.static_groups; with options.clip_steps > 0 the group's range is
/// shrunk to the factor with the least H-weighted rounding error (docs/gptq.md §3.8). With a diagonal H and
/// clip_steps = 0 the result equals quantize_uniform(W, format) exactly. Throws rankq::invalid_argument for bad options/format, NaN/Inf weights,
/// a hessian of the wrong shape or with non-finite entries, or one not positive definite after dampening.
template <typename T>
UniformWeights gptq_quantize_uniform(MatrixView<T> Wv, const GptqHessian& h, const UniformFormat& format,
                                     const GptqOptions& options = {}, GptqReport* report = nullptr) {
  static_assert(is_weight_element_v<T>, "gptq_quantize_uniform: weights must be float, bf16_t or f16_t");
  const MatrixView<const std::remove_const_t<T>> W = Wv;
  constexpr const char* fn = "gptq_quantize_uniform";
  detail::check_format(format, fn);
  const detail::GptqFactor f = detail::gptq_prepare(W, h, options, fn);
  return detail::gptq_uniform(W, f, format, options, report, fn);
}

/// GPTQ onto MXINT: each block's shared exponent is chosen when the block's first column is processed (or from the
/// original weights with static_groups). With a diagonal H the result equals quantize_mxint(W, format).
template <typename T>
MxTensor gptq_quantize_mxint(MatrixView<T> Wv, const GptqHessian& h, const MxFormat& format,
                             const GptqOptions& options = {}, GptqReport* report = nullptr) {
  static_assert(is_weight_element_v<T>, "gptq_quantize_mxint: weights must be float, bf16_t or f16_t");
  const MatrixView<const std::remove_const_t<T>> W = Wv;
  constexpr const char* fn = "gptq_quantize_mxint";
  detail::check_format(format, fn);
  const detail::GptqFactor f = detail::gptq_prepare(W, h, options, fn);
  return detail::gptq_mxint(W, f, format, options, report);
}

/// GPTQ with LCQ codebooks (docs/gptq.md §4.3): the codebooks are fitted by fit_lcq to W with D = diag(H_d), then
/// GPTQ passes (nearest codeword with error feedback, codebooks fixed) alternate options.lcq_refits times with a
/// refit of S, B, V (lcq's alternating least squares) to the values each weight had when it was quantized; the pass
/// with the smallest objective is returned. lcq.max_iterations = 0, rank 1, lcq_refits = 0 keeps the RTN grid
/// fixed: the result then equals gptq_quantize_uniform with an asymmetric f32 format and static_groups exactly.
/// lcq.double_quantize is not supported here (its re-assignment would undo the error feedback).
template <typename T>
CodebookWeights gptq_fit_lcq(MatrixView<T> Wv, const GptqHessian& h, const LcqOptions& lcq,
                             const GptqOptions& options = {}, GptqReport* report = nullptr) {
  static_assert(is_weight_element_v<T>, "gptq_fit_lcq: weights must be float, bf16_t or f16_t");
  const MatrixView<const std::remove_const_t<T>> W = Wv;
  constexpr const char* fn = "gptq_fit_lcq";
  if (lcq.double_quantize)
    detail::throw_argument(fn, "lcq.double_quantize", "is not supported with GPTQ: its index re-assignment would undo "
                                                      "the error feedback; double-quantize is only for plain fit_lcq");
  detail::check_codebook_format(CodebookFormat{lcq.bits, lcq.group_size, lcq.rank, false}, fn, "lcq");
  if (!(lcq.tolerance >= 0.0) || !std::isfinite(lcq.tolerance))
    detail::throw_argument(fn, "lcq.tolerance", "= " + std::to_string(lcq.tolerance) + ": must be finite and >= 0");
  const detail::GptqFactor f = detail::gptq_prepare(W, h, options, fn);
  const std::size_t N = W.rows, K = W.cols;
  std::vector<float> wz(N * K), targets(N * K);  // W with dead columns zeroed; values at quantization time
  for (std::size_t n = 0; n < N; ++n)
    for (std::size_t c = 0; c < K; ++c) wz[n * K + c] = detail::gptq_start_value(W, f, n, c);
  std::vector<float> d(f.diagonal.begin(), f.diagonal.end());
  const MatrixView<const float> Wz(wz.data(), N, K);
  const detail::LcqProblem p = detail::make_lcq_problem(Wz, d, lcq, fn);
  LcqReport fit_report;
  detail::LcqState st;
  detail::fit_lcq_chain(p, lcq, fit_report, [&](const detail::LcqState& s) {
    if (s.rank == lcq.rank) st = s;
  });
  detail::LcqState best;
  double best_objective = 0.0;
  std::vector<double> objectives;
  for (unsigned round = 0;; ++round) {
    std::vector<std::uint8_t> codes;
    detail::GptqCodebookGrid grid(st, p, codes);
    const double objective = detail::gptq_pass(W, f, grid, p.group, true, options, targets.data());
    objectives.push_back(objective);
    st.codes = std::move(codes);
    if (round == 0 || objective < best_objective) {
      best_objective = objective;
      best = st;
    }
    if (round == options.lcq_refits) break;
    // Refit the codebooks (indices, S, B, V) to the targets, starting from this pass's indices.
    const detail::LcqProblem refit = detail::make_lcq_problem(MatrixView<const float>(targets.data(), N, K), d, lcq, fn);
    std::vector<double> history{detail::evaluate_state(refit, st)};
    detail::lcq_iterate(refit, st, std::max(1u, lcq.max_iterations), lcq.tolerance, history);
  }
  detail::fill_report(report, f, best_objective);
  if (report) report->pass_objectives = objectives;
  return detail::to_codebook_weights(p, best, lcq.group_size);
}

/// GPTQ + LQER/L²QER with uniform weights: Ŵ = gptq_quantize_uniform(W, h, format), then the rank-k correction of
/// the (scaled) residual W − Ŵ exactly as quantize_lqer fits it (empty scale: plain LQER).
template <typename T>
LqerWeights gptq_quantize_lqer(MatrixView<T> Wv, const GptqHessian& h, const UniformFormat& format,
                               const std::vector<float>& scale, const LqerOptions& lqer = {},
                               const GptqOptions& options = {}, GptqReport* report = nullptr) {
  static_assert(is_weight_element_v<T>, "gptq_quantize_lqer: weights must be float, bf16_t or f16_t");
  const MatrixView<const std::remove_const_t<T>> W = Wv;
  constexpr const char* fn = "gptq_quantize_lqer";
  detail::check_format(format, fn);
  detail::check_view(W, fn, "weights");
  detail::check_scale(scale, W.cols, fn);
  detail::check_lqer_options(lqer, W.rows, W.cols, fn);
  const detail::GptqFactor f = detail::gptq_prepare(W, h, options, fn);
  return detail::quantize_lqer_uniform(W, detail::gptq_uniform(W, f, format, options, report, fn),
                                       bits_per_weight(format, W.cols), scale, lqer, fn);
}

/// GPTQ + LQER/L²QER with MXINT weights (kept in their exact uniform form, as quantize_lqer does).
template <typename T>
LqerWeights gptq_quantize_lqer(MatrixView<T> Wv, const GptqHessian& h, const MxFormat& format,
                               const std::vector<float>& scale, const LqerOptions& lqer = {},
                               const GptqOptions& options = {}, GptqReport* report = nullptr) {
  static_assert(is_weight_element_v<T>, "gptq_quantize_lqer: weights must be float, bf16_t or f16_t");
  const MatrixView<const std::remove_const_t<T>> W = Wv;
  constexpr const char* fn = "gptq_quantize_lqer";
  detail::check_format(format, fn);
  detail::check_uniform_mx_bits(format.bits, fn, "format.bits");
  detail::check_view(W, fn, "weights");
  detail::check_scale(scale, W.cols, fn);
  detail::check_lqer_options(lqer, W.rows, W.cols, fn);
  const detail::GptqFactor f = detail::gptq_prepare(W, h, options, fn);
  return detail::quantize_lqer_uniform(W, to_uniform(detail::gptq_mxint(W, f, format, options, report)),
                                       bits_per_weight(format, W.cols), scale, lqer, fn);
}

RANKQ_NAMESPACE_END  // namespace rankq
