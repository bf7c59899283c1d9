// examples/rankq_quantize/methods.hpp — quantized llama::Linear layers that run on rankq's kernels, and the
// method names the rankq-quantize CLI accepts (fp32, rtn, mxint; lqer/l2qer/lcq are added in their headers).
#pragma once

#include <rankq/rankq.hpp>

#include <rankq/io/quantized_tensors.hpp>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "llama/linear.hpp"

namespace rankq::example {

/// A Linear that can write what it stores into a quantized model file (docs/io.md, "Quantized model file").
struct StorableLinear : llama::Linear {
  virtual void save(io::TensorMap& tensors, io::MetadataMap& meta, const std::string& name) const = 0;
};

inline nlohmann::json to_json(const ActivationFormat& f) {
  return {{"kind", f.kind == ActivationQuant::per_token ? "per_token" : f.kind == ActivationQuant::per_block ? "per_block" : "mxint8"},
          {"block", f.block},
          {"semantics", f.semantics == MxSemantics::lqer ? "lqer" : "ocp"}};
}

/// Parses what to_json(ActivationFormat) wrote; throws rankq::format_error naming `where` on anything else.
inline ActivationFormat activation_from_json(const std::string& text, const std::string& where) {
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  auto fail = [&](const std::string& what) -> ActivationFormat { throw format_error(where + ": " + what); };
  if (j.is_discarded() || !j.is_object()) return fail("activation descriptor is not a JSON object");
  if (!j.contains("kind") || !j["kind"].is_string() || !j.contains("block") || !j["block"].is_number_unsigned() ||
      !j.contains("semantics") || !j["semantics"].is_string())
    return fail("activation descriptor needs kind, block and semantics");
  ActivationFormat f;
  const std::string kind = j["kind"], sem = j["semantics"];
  if (kind == "per_token") f.kind = ActivationQuant::per_token;
  else if (kind == "per_block") f.kind = ActivationQuant::per_block;
  else if (kind == "mxint8") f.kind = ActivationQuant::mxint8;
  else return fail("unknown activation kind '" + kind + "'");
  f.block = j["block"].get<std::size_t>();
  if (f.block != 16 && f.block != 32) return fail("activation block must be 16 or 32");
  if (sem != "lqer" && sem != "ocp") return fail("unknown semantics '" + sem + "'");
  f.semantics = sem == "lqer" ? MxSemantics::lqer : MxSemantics::ocp;
  return f;
}

/// Quantized weights + an int8 activation format, run through the packed W4A8 kernels (codes of 2–4 bits) or
/// the reference W·A8 matmul (8-bit codes). Thread-safe forward: scratch is per call.
class QuantizedLinear final : public StorableLinear {
 public:
  QuantizedLinear(UniformWeights q, double bits_per_weight, ActivationFormat act, std::string label,
                  KernelPath path = best_supported_path())
      : q_(std::move(q)), bpw_(bits_per_weight), act_(act), label_(std::move(label)), path_(path) {
    if (q_.format.bits <= 4) packed_ = pack_w4(q_);
  }
  /// MXINT weights: runs as their exact uniform form, stores the MXINT codes and exponents.
  QuantizedLinear(MxTensor mx, ActivationFormat act, std::string label, KernelPath path = best_supported_path())
      : QuantizedLinear(to_uniform(mx), rankq::bits_per_weight(mx.format, mx.cols), act, std::move(label), path) {
    mx_ = std::move(mx);
  }
  void save(io::TensorMap& tensors, io::MetadataMap& meta, const std::string& name) const override {
    if (mx_) io::put_mxint(tensors, meta, name, *mx_);
    else io::put_uniform(tensors, meta, name, q_);
    meta[name + ":activation"] = to_json(act_).dump();
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
  std::optional<MxTensor> mx_;
  PackedW4 packed_;
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
