// examples/rankq_quantize/lqer_linear.hpp — LQER / L²QER projections: MXINT weights + the rank-k correction run
// as the library's prepared layer (rankq::Linear::from_lqer, i.e. the fused kernel lqer_gemm: W4A8 main term +
// int8 low-rank term x_q·A → Q → ·B in one pass over tiles), which computes lqer_reference_matmul with
// requantize_output = false (docs/lqer.md §5). Activations: MXINT8, blocks of 16.
#pragma once

#include <rankq/algorithms/calibration.hpp>
#include <rankq/io/quantized_extras.hpp>
#include <rankq/kernels/lowrank_reference.hpp>
#include <rankq/kernels/lowrank_kernel.hpp>
#include <rankq/layers/linear.hpp>
#include <rankq/algorithms/lqer.hpp>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "rankq_quantize/methods.hpp"

namespace rankq::example {

/// Weights (uniform form of MXINT, or uniform) + rank-k correction; thread-safe forward (scratch per call).
class LqerLinear final : public StorableLinear {
 public:
  /// `mxint`: the weights' MXINT form (stored in the model file instead of the uniform form), or none.
  /// `scaling`: "lqer" or "l2qer" (recorded in the file and the label).
  /// (The model file stores the packed layer, so the MXINT form is no longer needed; the parameter stays for callers.)
  LqerLinear(LqerWeights lw, std::optional<MxTensor> mxint, ActivationFormat act, std::string scaling, std::string label,
             KernelPath path = best_supported_path())
      : lw_(std::move(lw)), act_(act), scaling_(std::move(scaling)), label_(std::move(label)) {
    (void)mxint;
    if (lw_.weights.format.bits > 4)
      throw rankq::invalid_argument("rankq-quantize: LQER weights must have 2-4 bit codes for lqer_gemm, got " +
                                    std::to_string(lw_.weights.format.bits));
    LinearOptions o;
    o.activation = act_;
    o.path = path;
    layer_ = std::make_shared<const rankq::Linear>(rankq::Linear::from_lqer(lw_.weights, lw_.correction, o));
  }
  io::QuantizedProjection stored() const override { return {layer_, nullptr, act_, label_, bits_per_weight()}; }
  std::size_t in_features() const override { return lw_.weights.cols; }
  std::size_t out_features() const override { return lw_.weights.rows; }
  double bits_per_weight() const override { return rankq::bits_per_weight(lw_); }
  std::string name() const override { return label_; }
  const LqerWeights& weights() const { return lw_; }
  const ActivationFormat& activation_format() const { return act_; }

  void forward(const float* x, std::size_t M, float* y) const override {
    thread_local Context context;
    layer_->forward(MatrixView<const float>(x, M, lw_.weights.cols), MatrixView<float>(y, M, lw_.weights.rows), context);
  }

 private:
  LqerWeights lw_;
  std::shared_ptr<const rankq::Linear> layer_;
  ActivationFormat act_;
  std::string scaling_, label_;
};

/// LQER (s = 1) or L²QER (s = l2qer_scale(stats)) with the paper's configuration: MXINT`bits` weights in blocks
/// of 16, rank-`m.rank` factors in MXINT8 (blocks of 16), MXINT8 activations. `stats` is needed for l2qer only.
inline std::unique_ptr<llama::Linear> make_lqer_linear(const MethodSpec& m, const std::string& name,
                                                       const io::FloatTensor& w, const ActivationStats* stats) {
  const auto rows = static_cast<std::size_t>(w.shape.at(0)), cols = static_cast<std::size_t>(w.shape.at(1));
  const MatrixView<const float> W(w.data.data(), rows, cols);
  const bool l2 = m.method == "l2qer";
  if (l2 && (stats == nullptr || stats->empty()))
    throw rankq::invalid_argument("rankq-quantize: l2qer needs calibration statistics for '" + name + "'");
  const std::vector<float> scale = l2 ? l2qer_scale(*stats) : std::vector<float>{};
  LqerOptions o;
  o.rank = m.rank;
  o.storage = LowRankStorage::mxint8;
  const MxFormat f{m.bits, 16, MxSemantics::lqer};
  LqerWeights lw = quantize_lqer(W, f, scale, o);
  const std::string label = name + ":" + to_string(f) + "+" + (l2 ? "l2qer" : "lqer") + "-k" + std::to_string(m.rank);
  return std::make_unique<LqerLinear>(std::move(lw), std::nullopt, activation_format_for(m), l2 ? "l2qer" : "lqer", label);
}

}  // namespace rankq::example
