// examples/rankq_quantize/model_file.hpp — the quantized model file: one safetensors file holding the fp32
// embedding/norms/classifier, every projection as rankq stores it (codes, scales, offsets, MXINT exponents,
// low-rank factors, codebooks), the model config and each layer's activation format in the metadata.
// Written atomically (temporary file renamed into place). Described in docs/io.md.
#pragma once

#include <rankq/io/quantized_extras.hpp>
#include <rankq/io/quantized_tensors.hpp>
#include <rankq/io/safetensors.hpp>

#include <nlohmann/json.hpp>

#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "llama/model.hpp"
#include "rankq_quantize/lcq_linear.hpp"
#include "rankq_quantize/lqer_linear.hpp"
#include "rankq_quantize/methods.hpp"

namespace rankq::example {

inline constexpr const char* kModelFileFormat = "rankq-quantized-llama/1";

inline io::RawTensor raw_f32(const io::FloatTensor& t) {
  io::RawTensor r{io::DType::f32, t.shape, std::vector<std::uint8_t>(t.data.size() * 4)};
  if (!t.data.empty()) std::memcpy(r.bytes.data(), t.data.data(), r.bytes.size());
  return r;
}

/// Writes `model` (built from `weights` with any factory) to `path`. Projections that are StorableLinear are
/// stored quantized; others (fp32) as F32 tensors.
inline void save_quantized_model(const std::string& path, const io::LlamaModel& weights, const llama::Model& model,
                                 const std::string& method) {
  io::TensorMap tensors;
  io::MetadataMap meta;
  const auto projections = model.projection_names();
  for (const auto& [name, tensor] : weights.tensors) {
    const bool is_projection = std::find(projections.begin(), projections.end(), name) != projections.end();
    if (!is_projection) {
      tensors[name] = raw_f32(tensor);
      continue;
    }
    const auto* storable = dynamic_cast<const StorableLinear*>(&model.projection(name));
    if (storable) storable->save(tensors, meta, name);
    else tensors[name] = raw_f32(tensor);
  }
  const auto& c = weights.config;
  meta["rankq.format"] = kModelFileFormat;
  meta["rankq.version"] = kVersion;
  meta["rankq.method"] = method;
  meta["rankq.config"] = nlohmann::json{{"dim", c.dim}, {"hidden_dim", c.hidden_dim}, {"n_layers", c.n_layers},
                                        {"n_heads", c.n_heads}, {"n_kv_heads", c.n_kv_heads}, {"vocab_size", c.vocab_size},
                                        {"seq_len", c.seq_len}, {"norm_eps", c.norm_eps}, {"rope_theta", c.rope_theta}}
                             .dump();
  io::write_safetensors(path, tensors, meta);
}

/// A model file read back: the tensors the engine needs (projections dequantized, for shape checks and
/// analysis) and a factory that rebuilds every projection exactly as stored.
struct LoadedQuantizedModel {
  io::LlamaModel weights;
  llama::LinearFactory factory;
  std::string method;
};

inline LoadedQuantizedModel load_quantized_model(const std::string& path) {
  auto file = std::make_shared<io::SafetensorsFile>(io::read_safetensors(path));
  auto meta = [&](const std::string& key) -> const std::string& {
    const auto it = file->metadata.find(key);
    if (it == file->metadata.end()) throw format_error("rankq quantized model '" + path + "': metadata has no '" + key + "'");
    return it->second;
  };
  if (meta("rankq.format") != kModelFileFormat)
    throw format_error("rankq quantized model '" + path + "': format is '" + meta("rankq.format") + "', expected " + kModelFileFormat);
  const nlohmann::json cj = nlohmann::json::parse(meta("rankq.config"), nullptr, false);
  LoadedQuantizedModel out;
  out.method = meta("rankq.method");
  try {
    auto& c = out.weights.config;
    c.dim = cj.at("dim");
    c.hidden_dim = cj.at("hidden_dim");
    c.n_layers = cj.at("n_layers");
    c.n_heads = cj.at("n_heads");
    c.n_kv_heads = cj.at("n_kv_heads");
    c.vocab_size = cj.at("vocab_size");
    c.seq_len = cj.at("seq_len");
    c.norm_eps = cj.at("norm_eps");
    c.rope_theta = cj.at("rope_theta");
  } catch (const std::exception& e) {
    throw format_error("rankq quantized model '" + path + "': bad rankq.config: " + e.what());
  }
  std::map<std::string, std::string> kinds;
  for (const auto& [name, value] : file->metadata) {
    (void)value;
    if (name.find(':') != std::string::npos || name.rfind("rankq.", 0) == 0) continue;  // per-layer extras, file keys
    const std::string kind = io::quantized_kind(*file, name);
    if (kind.empty()) continue;
    kinds[name] = kind;
    std::vector<float> deq;
    std::size_t rows = 0, cols = 0;
    if (kind == "uniform") {
      const auto q = io::get_uniform(*file, name);
      deq = dequantize(q), rows = q.rows, cols = q.cols;
    } else if (kind == "mxint") {
      const auto q = io::get_mxint(*file, name);
      deq = dequantize(q), rows = q.rows, cols = q.cols;
    } else if (kind == "lqer") {  // effective weight: Q(W) + (A·B)ᵀ from the quantized factors
      const auto q = io::get_lqer(*file, name);
      deq = dequantize(q.lqer.weights), rows = q.lqer.weights.rows, cols = q.lqer.weights.cols;
      const auto corr = dequantize(q.lqer.correction);
      for (std::size_t i = 0; i < deq.size(); ++i) deq[i] += corr[i];
    } else if (kind == "lcq") {
      const auto q = io::get_codebook(*file, name);
      deq = dequantize(q), rows = q.rows, cols = q.cols;
    } else {
      throw format_error("rankq quantized model '" + path + "': layer '" + name + "' has unsupported kind '" + kind + "'");
    }
    out.weights.tensors[name] = io::FloatTensor{{rows, cols}, std::move(deq)};
  }
  for (const auto& [name, raw] : file->tensors)
    if (io::is_float_dtype(raw.dtype)) out.weights.tensors[name] = io::FloatTensor{raw.shape, io::to_float(raw)};
  out.factory = [file, kinds, path](const std::string& name, const io::FloatTensor& w) -> std::unique_ptr<llama::Linear> {
    const auto it = kinds.find(name);
    if (it == kinds.end()) return llama::DenseLinear::from_tensor(name, w);
    const auto act_it = file->metadata.find(name + ":activation");
    if (act_it == file->metadata.end()) throw format_error("rankq quantized model '" + path + "': layer '" + name + "' has no activation format");
    const ActivationFormat act = activation_from_json(act_it->second, "rankq quantized model '" + path + "' layer '" + name + "'");
    if (it->second == "lqer") {
      auto q = io::get_lqer(*file, name);
      const std::string label = name + ":" + (q.mxint ? to_string(q.mxint->format) : to_string(q.lqer.weights.format)) + "+" +
                                q.scaling + "-k" + std::to_string(q.lqer.correction.rank);
      return std::make_unique<LqerLinear>(std::move(q.lqer), std::move(q.mxint), act, q.scaling, label);
    }
    if (it->second == "lcq") {
      auto q = io::get_codebook(*file, name);
      const std::string label = name + ":" + to_string(q.format);
      return std::make_unique<LcqLinear>(std::move(q), act, label);
    }
    if (it->second == "mxint") {
      auto q = io::get_mxint(*file, name);
      const std::string label = name + ":" + to_string(q.format);
      return std::make_unique<QuantizedLinear>(std::move(q), act, label);
    }
    auto q = io::get_uniform(*file, name);
    const double bpw = rankq::bits_per_weight(q.format, q.cols);
    const std::string label = name + ":" + to_string(q.format);
    return std::make_unique<QuantizedLinear>(std::move(q), bpw, act, label);
  };
  return out;
}

}  // namespace rankq::example
