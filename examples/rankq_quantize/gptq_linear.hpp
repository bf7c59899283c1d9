// examples/rankq_quantize/gptq_linear.hpp — rankq-quantize's GPTQ projections (docs/gptq.md): the same layers as
// rtn/mxint/lqer/l2qer/lcq (same formats, kernels and file layout), with the weights chosen by GPTQ from
// H = XᵀX/n of the projection's fp32 calibration inputs.
#pragma once

#include <rankq/algorithms/calibration.hpp>
#include <rankq/algorithms/gptq.hpp>
#include <rankq/io/quantized_extras.hpp>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "rankq_quantize/lcq_linear.hpp"
#include "rankq_quantize/lqer_linear.hpp"
#include "rankq_quantize/methods.hpp"

namespace rankq::example {

inline GptqOptions gptq_options(const GptqChoice& c, ParallelFor parallel_for) {
  GptqOptions o;
  o.damp = c.damp;
  o.act_order = c.act_order;
  o.block = c.block;
  o.clip_steps = c.clip_steps;
  o.parallel_for = std::move(parallel_for);
  return o;
}

/// Throws before any work for GPTQ settings the library would reject (rankq-quantize validates options first).
inline void check_gptq_choice(const MethodSpec& m) {
  if (!m.gptq.enabled) return;
  if (!(m.gptq.damp >= 0.0) || !std::isfinite(m.gptq.damp))
    throw rankq::invalid_argument("rankq-quantize: --damp must be finite and >= 0, got " + std::to_string(m.gptq.damp));
  if (m.gptq.block == 0) throw rankq::invalid_argument("rankq-quantize: --gptq-block must be >= 1");
  if (m.gptq.clip_steps > kGptqMaxClipSteps)
    throw rankq::invalid_argument("rankq-quantize: --gptq-clip must be <= " + std::to_string(kGptqMaxClipSteps));
  if (m.method == "lcq" && m.double_quantize)
    throw rankq::invalid_argument("rankq-quantize: --lcq-double-quant cannot be combined with --gptq (docs/gptq.md §4.3)");
}

/// The GPTQ variant of make_uniform_linear / make_lqer_linear / make_lcq_linear. `stats` must keep a Gram matrix.
inline std::unique_ptr<llama::Linear> make_gptq_linear(const MethodSpec& m, const std::string& name, const io::FloatTensor& w,
                                                       const ActivationStats* stats, std::size_t threads) {
  if (stats == nullptr || !stats->has_gram())
    throw rankq::invalid_argument("rankq-quantize: GPTQ needs calibration statistics with XᵀX for '" + name + "'");
  const auto rows = static_cast<std::size_t>(w.shape.at(0)), cols = static_cast<std::size_t>(w.shape.at(1));
  const MatrixView<const float> W(w.data.data(), rows, cols);
  const GptqHessian h = gptq_hessian(*stats);
  ThreadPool pool(threads);
  const GptqOptions o = gptq_options(m.gptq, threads > 1 ? pool.hook() : ParallelFor{});
  const std::string tag = std::string(m.gptq.act_order ? "gptq-act" : "gptq") + ":";
  if (m.method == "rtn") {
    const UniformFormat f{m.bits, m.group, Symmetry::asymmetric, ScaleType::f16};
    return std::make_unique<QuantizedLinear>(gptq_quantize_uniform(W, h, f, o), bits_per_weight(f, cols),
                                             activation_format_for(m), name + ":" + tag + to_string(f));
  }
  if (m.method == "mxint") {
    const MxFormat f{m.bits, 16, MxSemantics::lqer};
    return std::make_unique<QuantizedLinear>(gptq_quantize_mxint(W, h, f, o), activation_format_for(m), name + ":" + tag + to_string(f));
  }
  if (m.method == "lqer" || m.method == "l2qer") {
    const bool l2 = m.method == "l2qer";
    LqerOptions lo;
    lo.rank = m.rank;
    lo.storage = LowRankStorage::mxint8;
    const MxFormat f{m.bits, 16, MxSemantics::lqer};
    LqerWeights lw = gptq_quantize_lqer(W, h, f, l2 ? l2qer_scale(*stats) : std::vector<float>{}, lo, o);
    std::optional<MxTensor> mx = io::mxint_from_uniform(lw.weights, f);
    const std::string label = name + ":" + tag + to_string(f) + "+" + (l2 ? "l2qer" : "lqer") + "-k" + std::to_string(m.rank);
    return std::make_unique<LqerLinear>(std::move(lw), std::move(mx), activation_format_for(m), l2 ? "l2qer" : "lqer", label);
  }
  if (m.method == "lcq") {
    LcqOptions lo;
    lo.bits = m.bits;
    lo.group_size = m.group;
    lo.rank = static_cast<unsigned>(m.rank);
    lo.threads = threads;
    CodebookWeights q = gptq_fit_lcq(W, h, lo, o);
    const std::string label = name + ":" + tag + to_string(q.format);
    return std::make_unique<LcqLinear>(std::move(q), activation_format_for(m), label);
  }
  throw rankq::invalid_argument("rankq-quantize: --gptq does not apply to method '" + m.method + "'");
}

}  // namespace rankq::example
