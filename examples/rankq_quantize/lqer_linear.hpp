// examples/rankq_quantize/lqer_linear.hpp — LQER / L²QER projections: MXINT weights run through the packed W4A8
// kernels (main term) plus the low-rank term Q(Q(x_q·A)·B) with lqer_reference_matmul's exact semantics
// (rankq/lowrank.hpp), so forward() equals lqer_reference_matmul bit for bit. Activations: MXINT8, blocks of 16.
#pragma once

#include <rankq/calibration.hpp>
#include <rankq/io/quantized_extras.hpp>
#include <rankq/lowrank.hpp>
#include <rankq/lqer.hpp>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "rankq_quantize/methods.hpp"

namespace rankq::example {

/// y += Q(Q(x_q·A)·B): steps 2–5 of lqer_reference_matmul (docs/lqer.md §5), the same calls in the same order.
inline void add_lowrank_term(const QuantizedActivations& x, const LowRankCorrection& c, MatrixView<float> y) {
  const std::size_t M = x.rows, N = c.out_features, k = c.rank;
  std::vector<float> t(M * k), u(M * N);
  if (x.padded == c.a_t.padded)
    reference_matmul(x, c.a_t, MatrixView<float>(t.data(), M, k));
  else
    reference_matmul(detail::repad_activations(x, c.a_t.padded), c.a_t, MatrixView<float>(t.data(), M, k));
  const QuantizedActivations t_q = quantize_activations(MatrixView<const float>(t.data(), M, k), x.format, c.b_t.padded);
  reference_matmul(t_q, c.b_t, MatrixView<float>(u.data(), M, N));
  const QuantizedActivations u_q = quantize_activations(MatrixView<const float>(u.data(), M, N), x.format);
  for (std::size_t m = 0; m < M; ++m)
    for (std::size_t n = 0; n < N; ++n) y(m, n) = y(m, n) + u_q.value(m, n);
}

/// Weights (uniform form of MXINT, or uniform) + rank-k correction; thread-safe forward (scratch per call).
class LqerLinear final : public StorableLinear {
 public:
  /// `mxint`: the weights' MXINT form (stored in the model file instead of the uniform form), or none.
  /// `scaling`: "lqer" or "l2qer" (recorded in the file and the label).
  LqerLinear(LqerWeights lw, std::optional<MxTensor> mxint, ActivationFormat act, std::string scaling, std::string label,
             KernelPath path = best_supported_path())
      : lw_(std::move(lw)), mx_(std::move(mxint)), act_(act), scaling_(std::move(scaling)), label_(std::move(label)),
        path_(path) {
    if (lw_.weights.format.bits <= 4) packed_ = pack_w4(lw_.weights);
  }
  void save(io::TensorMap& tensors, io::MetadataMap& meta, const std::string& name) const override {
    io::put_lqer(tensors, meta, name, lw_, mx_ ? &*mx_ : nullptr, scaling_);
    meta[name + ":activation"] = to_json(act_).dump();
  }
  std::size_t in_features() const override { return lw_.weights.cols; }
  std::size_t out_features() const override { return lw_.weights.rows; }
  double bits_per_weight() const override { return rankq::bits_per_weight(lw_); }
  std::string name() const override { return label_; }
  const LqerWeights& weights() const { return lw_; }
  const ActivationFormat& activation_format() const { return act_; }

  void forward(const float* x, std::size_t M, float* y) const override {
    QuantizedActivations xq;
    quantize_activations(MatrixView<const float>(x, M, lw_.weights.cols), act_, xq, lw_.weights.padded);
    MatrixView<float> out(y, M, lw_.weights.rows);
    if (lw_.weights.format.bits <= 4) {
      W4A8Options o;
      o.path = path_;
      w4a8_gemm(xq, packed_, out, o);  // bit-exact with reference_matmul on every path
    } else {
      reference_matmul(xq, lw_.weights, out);
    }
    add_lowrank_term(xq, lw_.correction, out);
  }

 private:
  LqerWeights lw_;
  std::optional<MxTensor> mx_;
  PackedW4 packed_;
  ActivationFormat act_;
  std::string scaling_, label_;
  KernelPath path_;
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
  std::optional<MxTensor> mx = io::detail::mxint_from_uniform(lw.weights, f);
  const std::string label = name + ":" + to_string(f) + "+" + (l2 ? "l2qer" : "lqer") + "-k" + std::to_string(m.rank);
  return std::make_unique<LqerLinear>(std::move(lw), std::move(mx), activation_format_for(m), l2 ? "l2qer" : "lqer", label);
}

}  // namespace rankq::example
