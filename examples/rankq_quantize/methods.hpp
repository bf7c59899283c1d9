// examples/rankq_quantize/methods.hpp — quantized llama::Linear layers that run on rankq's kernels, and the
// method names the rankq-quantize CLI accepts (fp32, rtn, mxint; lqer/l2qer/lcq are added in their headers).
#pragma once

#include <rankq/rankq.hpp>

#include <rankq/io/quantized_projection.hpp>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "llama/linear.hpp"

namespace rankq::example {

/// A Linear that can be stored in a quantized model file (docs/io.md, "Quantized model file"): what it runs,
/// as the library's prepared layer (or 8-bit reference weights), with its label and bits per weight.
struct StorableLinear : llama::Linear {
  virtual io::QuantizedProjection stored() const = 0;
};

/// Quantized weights + an int8 activation format, run through the library's prepared layer (rankq::Linear: packed
/// W4A8 kernels for codes of 2–4 bits, W8A8 kernels for 8-bit codes; the reference W·A8 matmul only for 8-bit
/// weights wider than the W8A8 kernels take, K_pad > kW8MaxPaddedK). Thread-safe forward.
class QuantizedLinear final : public StorableLinear {
 public:
  QuantizedLinear(UniformWeights q, double bits_per_weight, ActivationFormat act, std::string label,
                  KernelPath path = best_supported_path())
      : q_(std::move(q)), bpw_(bits_per_weight), act_(act), label_(std::move(label)), path_(path) {
    if (q_.format.bits <= 4 || q_.padded <= kW8MaxPaddedK) {
      LinearOptions o;
      o.activation = act_;
      o.path = path_;
      layer_ = std::make_shared<const rankq::Linear>(rankq::Linear::from_uniform(q_, o));
    }
  }
  /// MXINT weights: run (and stored) as their exact uniform form.
  QuantizedLinear(MxTensor mx, ActivationFormat act, std::string label, KernelPath path = best_supported_path())
      : QuantizedLinear(to_uniform(mx), rankq::bits_per_weight(mx.format, mx.cols), act, std::move(label), path) {}
  io::QuantizedProjection stored() const override {
    io::QuantizedProjection p{layer_, nullptr, act_, label_, bpw_};
    if (!layer_) p.reference = std::make_shared<const UniformWeights>(q_);
    return p;
  }
  std::size_t in_features() const override { return q_.cols; }
  std::size_t out_features() const override { return q_.rows; }
  double bits_per_weight() const override { return bpw_; }
  std::string name() const override { return label_; }
  const UniformWeights& weights() const { return q_; }
  const ActivationFormat& activation_format() const { return act_; }

  void forward(const float* x, std::size_t M, float* y) const override {
    const MatrixView<const float> in(x, M, q_.cols);
    const MatrixView<float> out(y, M, q_.rows);
    if (layer_) {
      thread_local Context context;  // per thread: forward stays thread-safe and allocation-free once warm
      layer_->forward(in, out, context);
    } else {
      reference_matmul(quantize_activations(in, act_, q_.padded), q_, out);
    }
  }

 private:
  UniformWeights q_;
  std::shared_ptr<const rankq::Linear> layer_;  // null only for 8-bit codes with K_pad > kW8MaxPaddedK
  double bpw_;
  ActivationFormat act_;
  std::string label_;
  KernelPath path_;
};

/// GPTQ in front of a method (--method gptq, or --gptq with rtn/mxint/lqer/l2qer/lcq): docs/gptq.md.
struct GptqChoice {
  bool enabled = false;
  double damp = 0.01;        ///< --damp
  bool act_order = false;    ///< --act-order
  std::size_t block = 128;   ///< --gptq-block
  unsigned clip_steps = 20;  ///< --gptq-clip: clipping search of uniform group ranges (0 = min/max), docs/gptq.md §3.8
};

/// What the CLI was asked to do for every projection.
struct MethodSpec {
  std::string method = "rtn";  ///< fp32, rtn, mxint, lqer, l2qer, lcq
  unsigned bits = 4;
  std::size_t rank = 0;        ///< lqer/l2qer: k of A_k B_k; lcq: codebook rank
  std::size_t group = 32;      ///< rtn/lcq group along K (0 = whole row); mxint uses blocks of 16
  bool double_quantize = false;  ///< lcq: 8-bit S and B (LcqOptions::double_quantize)
  GptqChoice gptq{};             ///< error-compensating quantization with H from calibration
};

inline std::string describe(const MethodSpec& m) {
  if (m.method == "fp32") return "fp32";
  if (m.method == "mxint") return std::string(m.gptq.enabled ? "GPTQ+" : "") + "MXINT W" + std::to_string(m.bits) + "A8";
  std::string s = m.method == "rtn" ? "RTN" : m.method == "lqer" ? "LQER" : m.method == "l2qer" ? "L2QER" : "LCQ";
  if (m.gptq.enabled) s = m.method == "rtn" ? "GPTQ" : "GPTQ+" + s;
  s += " W" + std::to_string(m.bits) + "A8";
  if (m.rank) s += " k=" + std::to_string(m.rank);
  if (m.method == "rtn" || m.method == "lcq") s += " g" + (m.group ? std::to_string(m.group) : std::string("row"));
  if (m.method == "lcq" && m.double_quantize) s += " dq8";
  if (m.method == "rtn" && m.gptq.enabled && m.gptq.clip_steps == 0) s += " minmax";
  return s;
}

/// The activation format each method runs with: per-token int8 for the INT methods, MXINT8 blocks of 16 for
/// the MX ones (the L²QER paper's W4A8 configuration).
inline ActivationFormat activation_format_for(const MethodSpec& m) {
  if (m.method == "mxint" || m.method == "lqer" || m.method == "l2qer")
    return ActivationFormat{ActivationQuant::mxint8, 16, MxSemantics::lqer};
  return ActivationFormat{};
}

/// Uniform RTN (asymmetric, f16 scales) or MXINT (lqer semantics, blocks of 16) layer for an [out][in] tensor.
inline std::unique_ptr<llama::Linear> make_uniform_linear(const MethodSpec& m, const std::string& name,
                                                          const io::FloatTensor& w) {
  const auto rows = static_cast<std::size_t>(w.shape.at(0)), cols = static_cast<std::size_t>(w.shape.at(1));
  const MatrixView<const float> W(w.data.data(), rows, cols);
  if (m.method == "mxint") {
    const MxFormat f{m.bits, 16, MxSemantics::lqer};
    return std::make_unique<QuantizedLinear>(quantize_mxint(W, f), activation_format_for(m), name + ":" + to_string(f));
  }
  const UniformFormat f{m.bits, m.group, Symmetry::asymmetric, ScaleType::f16};
  return std::make_unique<QuantizedLinear>(quantize_uniform(W, f), bits_per_weight(f, cols), activation_format_for(m),
                                           name + ":" + to_string(f));
}

}  // namespace rankq::example
