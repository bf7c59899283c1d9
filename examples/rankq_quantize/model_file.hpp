// examples/rankq_quantize/model_file.hpp — the quantized model file: one safetensors file holding the fp32
// embedding/norms/classifier, every projection as rankq stores it (codes, scales, offsets, MXINT exponents,
// low-rank factors, codebooks), the model config, each layer's activation format and a CRC-32C of every tensor in
// the metadata. Written atomically (temporary file renamed into place). Described in docs/io.md.
#pragma once

#include <rankq/io/quantized_extras.hpp>
#include <rankq/io/quantized_tensors.hpp>
#include <rankq/io/safetensors.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "llama/model.hpp"
#include "rankq_quantize/lcq_linear.hpp"
#include "rankq_quantize/lqer_linear.hpp"
#include "rankq_quantize/methods.hpp"
#include "rankq_quantize/model_file_checks.hpp"

namespace rankq::example {

inline constexpr const char* kModelFileFormat = "rankq-quantized-llama/2";

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
  meta[kChecksumsKey] = tensor_checksums(tensors);
  io::write_safetensors(path, tensors, meta);
}

/// A model file read back: the tensors the engine needs (projections dequantized, for shape checks and
/// analysis) and a factory that rebuilds every projection exactly as stored.
struct LoadedQuantizedModel {
  io::LlamaModel weights;
  llama::LinearFactory factory;
  std::string method;
};

/// Rebuilds one projection exactly as stored (fp32 projections as DenseLinear).
inline std::unique_ptr<llama::Linear> build_stored_layer(const io::SafetensorsFile& f, const std::map<std::string, std::string>& kinds,
                                                       const std::string& path, const std::string& name, const io::FloatTensor& w) {
  const auto it = kinds.find(name);
  if (it == kinds.end()) return llama::DenseLinear::from_tensor(name, w);
  const auto act_it = f.metadata.find(name + ":activation");
  if (act_it == f.metadata.end()) throw format_error("rankq quantized model '" + path + "': layer '" + name + "' has no activation format");
  const ActivationFormat act = activation_from_json(act_it->second, "rankq quantized model '" + path + "' layer '" + name + "'");
  if (it->second == "lqer") {
    auto q = io::get_lqer(f, name);
    const std::string label = name + ":" + (q.mxint ? to_string(q.mxint->format) : to_string(q.lqer.weights.format)) + "+" +
                              q.scaling + "-k" + std::to_string(q.lqer.correction.rank);
    return std::make_unique<LqerLinear>(std::move(q.lqer), std::move(q.mxint), act, q.scaling, label);
  }
  if (it->second == "lcq") {
    auto q = io::get_codebook(f, name);
    const std::string label = name + ":" + to_string(q.format);
    return std::make_unique<LcqLinear>(std::move(q), act, label);
  }
  if (it->second == "mxint") {
    auto q = io::get_mxint(f, name);
    const std::string label = name + ":" + to_string(q.format);
    return std::make_unique<QuantizedLinear>(std::move(q), act, label);
  }
  auto q = io::get_uniform(f, name);
  const double bpw = rankq::bits_per_weight(q.format, q.cols);
  const std::string label = name + ":" + to_string(q.format);
  return std::make_unique<QuantizedLinear>(std::move(q), bpw, act, label);
}

/// Reads a quantized model file from memory (`source` names it in messages). Everything is validated before the
/// model is returned — checksums, config, every layer's tensors and activation format, the config against the
/// tensors — and every problem is a rankq::format_error (also those the layer factory meets later).
inline LoadedQuantizedModel parse_quantized_model(const std::uint8_t* data, std::size_t size, const std::string& source) {
  std::shared_ptr<io::SafetensorsFile> file;
  try {
    file = std::make_shared<io::SafetensorsFile>(io::parse_safetensors(data, size));
  } catch (const format_error& e) {
    bad_model_file(source, e.what());
  }
  const std::string path = source;
  auto meta = [&](const std::string& key) -> const std::string& {
    const auto it = file->metadata.find(key);
    if (it == file->metadata.end()) bad_model_file(source, "metadata has no '" + key + "'");
    return it->second;
  };
  if (meta("rankq.format") != kModelFileFormat)
    bad_model_file(source, "format is '" + meta("rankq.format") + "', expected " + kModelFileFormat);
  verify_checksums(*file, source);
  LoadedQuantizedModel out;
  out.method = meta("rankq.method");
  out.weights.config = parse_model_config(meta("rankq.config"), source);
  std::map<std::string, std::string> kinds;
  for (const auto& [name, value] : file->metadata) {
    (void)value;
    if (name.find(':') != std::string::npos || name.rfind("rankq.", 0) == 0) continue;  // per-layer extras, file keys
    const std::string kind = io::quantized_kind(*file, name);
    if (kind.empty()) bad_model_file(source, "metadata entry '" + name + "' is not a layer descriptor");
    kinds[name] = kind;
    const auto act = file->metadata.find(name + ":activation");
    if (act == file->metadata.end()) bad_model_file(source, "layer '" + name + "' has no activation format");
    (void)activation_from_json(act->second, "rankq quantized model '" + path + "' layer '" + name + "'");
    std::vector<float> deq;
    std::size_t rows = 0, cols = 0;
    try {
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
        bad_model_file(source, "layer '" + name + "' has unsupported kind '" + kind + "'");
      }
    } catch (const format_error& e) {
      bad_model_file(source, e.what());
    }
    if (file->tensors.count(name)) bad_model_file(source, "layer '" + name + "' is both a tensor and a quantized layer");
    out.weights.tensors[name] = io::FloatTensor{{rows, cols}, std::move(deq)};
  }
  for (const auto& [name, raw] : file->tensors) {
    // A tensor belongs to a quantized layer ("<layer>.codes", "<layer>:a_t.codes", ...) or is a float weight.
    const auto weight = name.rfind(".weight");
    const auto cut = name.find_first_of(".:", weight == std::string::npos ? 0 : weight + 7);
    if (cut != std::string::npos && kinds.count(name.substr(0, cut))) continue;
    if (!io::is_float_dtype(raw.dtype)) bad_model_file(source, "tensor '" + name + "' belongs to no layer of the file");
    io::FloatTensor& t = out.weights.tensors[name] = io::FloatTensor{raw.shape, io::to_float(raw)};
    for (std::size_t i = 0; i < t.data.size(); ++i)
      if (!std::isfinite(t.data[i])) bad_model_file(source, "tensor '" + name + "' has a non-finite value at index " + std::to_string(i));
  }
  check_tensors_match_config(out.weights.config, out.weights.tensors, source);
  out.factory = [file, kinds, path](const std::string& name, const io::FloatTensor& w) -> std::unique_ptr<llama::Linear> {
    try {
      return build_stored_layer(*file, kinds, path, name, w);
    } catch (const rankq::invalid_argument& e) {
      bad_model_file(path, "layer '" + name + "' cannot be built: " + e.what());
    }
  };
  return out;
}

inline LoadedQuantizedModel load_quantized_model(const std::string& path) {
  const std::vector<std::uint8_t> bytes = io::read_file_bytes(path);
  return parse_quantized_model(bytes.data(), bytes.size(), path);
}

}  // namespace rankq::example

