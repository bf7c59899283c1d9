// llama/prepared_linear.hpp — the engine's side of a rankq quantized model file (rankq/io/quantized_model.hpp):
// each stored projection runs as a llama::Linear over the library's prepared layer (rankq::Linear), which views
// the mapped file, so loading copies no packed weight. 8-bit reference weights (older files,
// io/quantized_projection.hpp) run reference_matmul, as they were evaluated.
#pragma once

#include <rankq/io/quantized_model.hpp>
#include <rankq/kernels/reference.hpp>

#include <memory>
#include <string>
#include <utility>

#include "llama/linear.hpp"

namespace rankq::llama {

/// A stored projection as a llama::Linear. forward is thread-safe: each calling thread reuses its own
/// rankq::Context (so the layers allocate nothing once a shape has run on that thread).
class PreparedLinear final : public Linear {
 public:
  explicit PreparedLinear(rankq::io::QuantizedProjection p) : p_(std::move(p)) {
    if (!p_.layer && !p_.reference)
      throw rankq::invalid_argument("llama::PreparedLinear: argument 'p' has neither a layer nor reference weights");
  }
  std::size_t in_features() const override { return p_.in_features(); }
  std::size_t out_features() const override { return p_.out_features(); }
  double bits_per_weight() const override { return p_.bits_per_weight; }
  std::string name() const override { return p_.label; }
  const rankq::io::QuantizedProjection& stored() const { return p_; }

  void forward(const float* x, std::size_t M, float* y) const override {
    const rankq::MatrixView<const float> xv(x, M, in_features());
    const rankq::MatrixView<float> yv(y, M, out_features());
    if (p_.layer) {
      thread_local rankq::Context context;
      p_.layer->forward(xv, yv, context);
      return;
    }
    const auto xq = rankq::quantize_activations(xv, p_.activation, p_.reference->padded);
    rankq::reference_matmul(xq, *p_.reference, yv);
  }

 private:
  rankq::io::QuantizedProjection p_;
};

/// A quantized model ready for llama::Model: `weights` holds the float tensors and, for every stored projection,
/// a placeholder (its shape, no values); `factory` builds the PreparedLinear of a stored projection and a
/// DenseLinear for the others.
struct QuantizedLlama {
  rankq::io::LlamaModel weights;
  LinearFactory factory;
  std::string method;
};

/// Takes the model apart without copying its float tensors (moved) or packed weights (shared).
inline QuantizedLlama quantized_llama(rankq::io::QuantizedModel m) {
  QuantizedLlama out;
  out.method = std::move(m.method);
  out.weights.config = m.config;
  out.weights.tensors = std::move(m.tensors);
  for (const auto& [name, p] : m.projections)
    out.weights.tensors[name] = rankq::io::FloatTensor{{p.out_features(), p.in_features()}, {}};
  auto projections = std::make_shared<const std::map<std::string, rankq::io::QuantizedProjection>>(std::move(m.projections));
  out.factory = [projections](const std::string& name, const rankq::io::FloatTensor& w) -> std::unique_ptr<Linear> {
    const auto it = projections->find(name);
    if (it == projections->end()) return DenseLinear::from_tensor(name, w);
    return std::make_unique<PreparedLinear>(it->second);
  };
  return out;
}

}  // namespace rankq::llama
