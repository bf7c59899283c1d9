// rankq/io/detail/quantized_model_load.hpp — reading a quantized model file (/3, and /2 packed at load) behind
// rankq/io/quantized_model.hpp. Every check of docs/io.md runs before the model is returned.
#pragma once

#include "rankq/detail/abi.hpp"

#include <nlohmann/json.hpp>

#include <cmath>
#include <memory>
#include <string>

#include "rankq/io/detail/quantized_model_meta.hpp"
#include "rankq/io/detail/quantized_model_packed.hpp"
#include "rankq/io/quantized_extras.hpp"
#include "rankq/io/quantized_projection.hpp"

RANKQ_NAMESPACE_BEGIN namespace io {
namespace detail {

/// The codebook kernels exist on fewer paths than W4A8: the best one this CPU supports.
inline KernelPath best_codebook_path() {
  const auto paths = codebook_supported_paths();
  return paths.empty() ? KernelPath::scalar : paths.back();
}

/// A layer stored in its canonical form (kinds uniform, mxint, lqer, lcq: every /2 layer; in /3, 8-bit layers that a
/// writer passed as reference weights), packed here. 8-bit weights stay reference weights (reference_matmul), as
/// such files were evaluated; labels and bits per weight as rankq-quantize computes them.
inline QuantizedProjection load_canonical_layer(const SafetensorsFile& f, const std::string& name, const std::string& kind,
                                                const ActivationFormat& act) {
  QuantizedProjection p;
  p.activation = act;
  LinearOptions o;
  o.activation = act;
  if (kind == "lqer") {
    auto q = get_lqer(f, name);
    p.label = name + ":" + (q.mxint ? to_string(q.mxint->format) : to_string(q.lqer.weights.format)) + "+" + q.scaling + "-k" +
              std::to_string(q.lqer.correction.rank);
    p.bits_per_weight = bits_per_weight(q.lqer);
    p.layer = std::make_shared<const Linear>(Linear::from_lqer(q.lqer.weights, q.lqer.correction, o));
  } else if (kind == "lcq") {
    const auto q = get_codebook(f, name);
    p.label = name + ":" + to_string(q.format);
    p.bits_per_weight = codebook_storage(q).bits_per_weight;
    o.path = best_codebook_path();
    p.layer = std::make_shared<const Linear>(Linear::from_codebook(q, o));
  } else {
    UniformWeights u;
    if (kind == "mxint") {
      const auto q = get_mxint(f, name);
      p.label = name + ":" + to_string(q.format);
      p.bits_per_weight = bits_per_weight(q.format, q.cols);
      u = to_uniform(q);
    } else {
      u = get_uniform(f, name);
      p.label = name + ":" + to_string(u.format);
      p.bits_per_weight = bits_per_weight(u.format, u.cols);
    }
    if (u.format.bits <= 4) p.layer = std::make_shared<const Linear>(Linear::from_uniform(u, o));
    else p.reference = std::make_shared<const UniformWeights>(std::move(u));
  }
  return p;
}

/// The layer descriptor's recorded label and bits per weight, when present (/3 writes them for every layer).
inline void recorded_label(const std::string& descriptor, QuantizedProjection& p) {
  const nlohmann::json j = nlohmann::json::parse(descriptor, nullptr, false);
  if (j.is_object() && j.contains("label") && j["label"].is_string()) p.label = j["label"].get<std::string>();
  if (j.is_object() && j.contains("bits_per_weight") && j["bits_per_weight"].is_number() &&
      j["bits_per_weight"].get<double>() > 0 && j["bits_per_weight"].get<double>() <= 64)
    p.bits_per_weight = j["bits_per_weight"].get<double>();
}

/// `keep_alive` set: `data` is a mapping it keeps alive, and packed tensors are viewed in it; else all is copied.
inline QuantizedModel load_quantized_model(const std::uint8_t* data, std::size_t size, const std::string& source,
                                           KeepAlive keep_alive) {
  SafetensorsFile file;
  try {
    file = parse_safetensors_impl(data, size, "safetensors",
                                  keep_alive ? std::function<bool(const std::string&)>(is_packed_tensor) : nullptr);
  } catch (const format_error& e) {
    bad_model_file(source, e.what());
  }
  const auto meta = [&](const std::string& key) -> const std::string& {
    const auto it = file.metadata.find(key);
    if (it == file.metadata.end()) bad_model_file(source, "metadata has no '" + key + "'");
    return it->second;
  };
  QuantizedModel out;
  out.format = meta("rankq.format");
  const bool v3 = out.format == kQuantizedModelFormat;
  if (!v3 && out.format != kQuantizedModelFormatV2)
    bad_model_file(source, "format is '" + out.format + "', expected " + kQuantizedModelFormat + " (or " + kQuantizedModelFormatV2 + ")");
  const FileBytes fb{file, data, keep_alive};
  std::map<std::string, std::pair<const std::uint8_t*, std::size_t>> bytes;
  for (const auto& entry : file.tensors) bytes[entry.first] = fb.bytes(entry.first);
  const auto sums = file.metadata.find(kChecksumsKey);
  verify_checksums(sums == file.metadata.end() ? nullptr : &sums->second, bytes, source);
  out.method = meta("rankq.method");
  out.config = config_from_json(meta("rankq.config"), source);
  std::map<std::string, std::vector<std::uint64_t>> shapes;
  for (const auto& [name, value] : file.metadata) {
    if (name.find(':') != std::string::npos || name.rfind("rankq.", 0) == 0) continue;  // per-layer extras, file keys
    const std::string kind = quantized_kind(file, name);
    if (kind.empty()) bad_model_file(source, "metadata entry '" + name + "' is not a layer descriptor");
    if (file.tensors.count(name)) bad_model_file(source, "layer '" + name + "' is both a tensor and a quantized layer");
    const auto act_it = file.metadata.find(name + ":activation");
    if (act_it == file.metadata.end()) bad_model_file(source, "layer '" + name + "' has no activation format");
    const ActivationFormat act = activation_from_json(act_it->second, "rankq quantized model '" + source + "' layer '" + name + "'");
    QuantizedProjection p;
    try {
      if (v3 && kind.rfind("packed_", 0) == 0) {
        LinearOptions o;
        o.activation = act;
        if (kind == "packed_codebook") o.path = best_codebook_path();
        else if (kind != "packed_w4a8" && kind != "packed_lqer" && kind != "packed_w8a8") bad_model_file(source, "layer '" + name + "' has unsupported kind '" + kind + "'");
        p.activation = act;
        p.layer = std::make_shared<const Linear>(
            load_packed_layer(fb, name, nlohmann::json::parse(value), kind, o, p.label, p.bits_per_weight, source));
      } else if (kind == "uniform" || kind == "mxint" || kind == "lqer" || kind == "lcq") {
        p = load_canonical_layer(file, name, kind, act);
        if (v3) recorded_label(value, p);
      } else {
        bad_model_file(source, "layer '" + name + "' has unsupported kind '" + kind + "'");
      }
    } catch (const rankq::invalid_argument& e) {
      bad_model_file(source, "layer '" + name + "' cannot be built: " + e.what());
    } catch (const format_error& e) {
      const std::string what = e.what();
      if (what.rfind("rankq quantized model", 0) == 0) throw;
      bad_model_file(source, what);
    }
    shapes[name] = {p.out_features(), p.in_features()};
    out.projections.emplace(name, std::move(p));
  }
  for (const auto& [name, raw] : file.tensors) {
    // A tensor belongs to a quantized layer ("<layer>.codes", "<layer>:a_t.codes", "<layer>.packed_w4", ...) or is a
    // float weight.
    const auto weight = name.rfind(".weight");
    const auto cut = name.find_first_of(".:", weight == std::string::npos ? 0 : weight + 7);
    if (cut != std::string::npos && out.projections.count(name.substr(0, cut))) continue;
    if (!is_float_dtype(raw.dtype) || raw.bytes.empty() != (raw.element_count() == 0))
      bad_model_file(source, "tensor '" + name + "' belongs to no layer of the file");
    FloatTensor& t = out.tensors[name] = FloatTensor{raw.shape, to_float(raw)};
    for (std::size_t i = 0; i < t.data.size(); ++i)
      if (!std::isfinite(t.data[i])) bad_model_file(source, "tensor '" + name + "' has a non-finite value at index " + std::to_string(i));
    shapes[name] = raw.shape;
  }
  check_shapes_match_config(out.config, shapes, source);
  return out;
}

}  // namespace detail
}  RANKQ_NAMESPACE_END  // namespace rankq::io
