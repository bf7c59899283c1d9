// examples/rankq_quantize/methods.hpp — quantized llama::Linear layers that run on rankq's kernels, and the
// method names the rankq-quantize CLI accepts (fp32, rtn, mxint; lqer/l2qer/lcq are added in their headers).
#pragma once

#include <rankq/rankq.hpp>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "llama/linear.hpp"

namespace rankq::example {

/// Quantized weights + an int8 activation format, run through the packed W4A8 kernels (codes of 2–4 bits) or
/// the reference W·A8 matmul (8-bit codes). Thread-safe forward: scratch is per call.
class QuantizedLinear final : public llama::Linear {
 public:
  QuantizedLinear(UniformWeights q, double bits_per_weight, ActivationFormat act, std::string label,
                  KernelPath path = best_supported_path())
      : q_(std::move(q)), bpw_(bits_per_weight), act_(act), label_(std::move(label)), path_(path) {
    if (q_.format.bits <= 4) packed_ = pack_w4(q_);
  }
  std::size_t in_features() const override { return q_.cols; }
  std::size_t out_features() const override { return q_.rows; }
  double bits_per_weight() const override { return bpw_; }
  std::string name() const override { return label_; }
  const UniformWeights& weights() const { return q_; }
  const ActivationFormat& activation_format() const { return act_; }

  void forward(const float* x, std::size_t M, float* y) const override {
    QuantizedActivations xq;
    quantize_activations(MatrixView<const float>(x, M, q_.cols), act_, xq, q_.padded);
    MatrixView<float> out(y, M, q_.rows);
    if (q_.format.bits <= 4) {
      W4A8Options o;
      o.path = path_;
      w4a8_gemm(xq, packed_, out, o);
    } else {
      reference_matmul(xq, q_, out);
    }
  }

 private:
  UniformWeights q_;
  PackedW4 packed_;
  double bpw_;
  ActivationFormat act_;
  std::string label_;
  KernelPath path_;
};

/// What the CLI was asked to do for every projection.
struct MethodSpec {
  std::string method = "rtn";  ///< fp32, rtn, mxint, lqer, l2qer, lcq
  unsigned bits = 4;
  std::size_t rank = 0;        ///< lqer/l2qer: k of A_k B_k; lcq: codebook rank
  std::size_t group = 32;      ///< rtn/lcq group along K (0 = whole row); mxint uses blocks of 16
};

inline std::string describe(const MethodSpec& m) {
  if (m.method == "fp32") return "fp32";
  if (m.method == "mxint") return "MXINT W" + std::to_string(m.bits) + "A8";
  std::string s = m.method == "rtn" ? "RTN" : m.method == "lqer" ? "LQER" : m.method == "l2qer" ? "L2QER" : "LCQ";
  s += " W" + std::to_string(m.bits) + "A8";
  if (m.rank) s += " k=" + std::to_string(m.rank);
  if (m.method == "rtn" || m.method == "lcq") s += " g" + (m.group ? std::to_string(m.group) : std::string("row"));
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
    return std::make_unique<QuantizedLinear>(to_uniform(quantize_mxint(W, f)), bits_per_weight(f, cols),
                                             activation_format_for(m), name + ":" + to_string(f));
  }
  const UniformFormat f{m.bits, m.group, Symmetry::asymmetric, ScaleType::f16};
  return std::make_unique<QuantizedLinear>(quantize_uniform(W, f), bits_per_weight(f, cols), activation_format_for(m),
                                           name + ":" + to_string(f));
}

}  // namespace rankq::example
