// examples/rankq_quantize/lcq_linear.hpp — LCQ projections: rank-k codebook weights fitted with D = E[x²] from
// calibration, run through codebook_gemm (packed indices + int8 codebook tables, int8 per-token activations);
// forward() equals codebook_reference_matmul bit for bit (the kernel-ready weights of docs/lcq.md §6).
#pragma once

#include <rankq/algorithms/calibration.hpp>
#include <rankq/kernels/codebook_kernel.hpp>
#include <rankq/io/quantized_extras.hpp>
#include <rankq/algorithms/lcq.hpp>

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "rankq_quantize/methods.hpp"

namespace rankq::example {

/// The best path this CPU supports that has a codebook kernel.
inline KernelPath best_codebook_path() {
  const auto paths = codebook_supported_paths();
  if (paths.empty()) throw rankq::invalid_argument("rankq-quantize: no codebook kernel path is available");
  return paths.back();
}

/// Codebook weights packed for the kernels; thread-safe forward (scratch per call).
class LcqLinear final : public StorableLinear {
 public:
  LcqLinear(CodebookWeights q, ActivationFormat act, std::string label, KernelPath path = best_codebook_path())
      : q_(std::move(q)), act_(act), label_(std::move(label)) {
    LinearOptions o;
    o.activation = act_;
    o.path = path;
    layer_ = std::make_shared<const rankq::Linear>(rankq::Linear::from_codebook(q_, o));
  }
  io::QuantizedProjection stored() const override { return {layer_, nullptr, act_, label_, bits_per_weight()}; }
  std::size_t in_features() const override { return q_.cols; }
  std::size_t out_features() const override { return q_.rows; }
  double bits_per_weight() const override { return codebook_storage(q_).bits_per_weight; }
  std::string name() const override { return label_; }
  const CodebookWeights& weights() const { return q_; }
  const ActivationFormat& activation_format() const { return act_; }

  void forward(const float* x, std::size_t M, float* y) const override {
    thread_local Context context;
    layer_->forward(MatrixView<const float>(x, M, q_.cols), MatrixView<float>(y, M, q_.rows), context);
  }

 private:
  CodebookWeights q_;
  std::shared_ptr<const rankq::Linear> layer_;
  ActivationFormat act_;
  std::string label_;
};

/// LCQ's channel weights D = E[x²] from calibration statistics, floored at 1e-8·max so every entry is positive
/// (all ones if every channel is zero) — the rule of lcq_rows.hpp's channel_mean_square.
inline std::vector<float> lcq_channel_weights(const ActivationStats& stats) {
  const std::vector<double> ms = stats.mean_square();
  const double mx = *std::max_element(ms.begin(), ms.end());
  std::vector<float> d(ms.size(), 1.0f);
  if (!(mx > 0)) return d;
  for (std::size_t k = 0; k < ms.size(); ++k) d[k] = static_cast<float>(std::max(ms[k], 1e-8 * mx));
  return d;
}

/// LCQ with `m.bits`-bit indices, rank `m.rank`, groups of `m.group` (0 = whole row), fitted with D from `stats`
/// (or D = 1 without), float S and B (8-bit with m.double_quantize); runs with int8 per-token activations (activation_format_for).
inline std::unique_ptr<llama::Linear> make_lcq_linear(const MethodSpec& m, const std::string& name,
                                                      const io::FloatTensor& w, const ActivationStats* stats,
                                                      std::size_t threads) {
  const auto rows = static_cast<std::size_t>(w.shape.at(0)), cols = static_cast<std::size_t>(w.shape.at(1));
  LcqOptions o;
  o.bits = m.bits;
  o.group_size = m.group;
  o.rank = static_cast<unsigned>(m.rank);
  o.threads = threads;
  o.double_quantize = m.double_quantize;
  const std::vector<float> d = stats && !stats->empty() ? lcq_channel_weights(*stats) : std::vector<float>{};
  CodebookWeights q = fit_lcq(MatrixView<const float>(w.data.data(), rows, cols), d, o);
  const std::string label = name + ":" + to_string(q.format);
  return std::make_unique<LcqLinear>(std::move(q), activation_format_for(m), label);
}

}  // namespace rankq::example
