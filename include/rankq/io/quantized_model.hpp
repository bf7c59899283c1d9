// rankq/io/quantized_model.hpp — the quantized model file (docs/io.md, "Quantized model file"): one safetensors
// file holding the model config, the float tensors (embedding, norms, classifier) and every projection as a
// prepared rankq::Linear in the kernels' layout, with a CRC-32C of every tensor. read_quantized_model maps the
// file and builds layers that view it (no copy of the packed weights); files of the previous format (/2, the
// canonical quantized forms) still load, packed at load time.
//
//   rankq::io::QuantizedModel m = rankq::io::read_quantized_model("model.rq.safetensors");
//   const rankq::Linear& q = *m.projections.at("blk.0.attn_q.weight").layer;   // views the mapping
#pragma once

#include "rankq/detail/abi.hpp"

#include <map>
#include <memory>
#include <string>

#include "rankq/io/detail/quantized_model_load.hpp"
#include "rankq/io/detail/quantized_model_packed.hpp"
#include "rankq/io/file.hpp"
#include "rankq/io/llama_model.hpp"
#include "rankq/io/quantized_projection.hpp"
#include "rankq/version.hpp"

RANKQ_NAMESPACE_BEGIN namespace io {

/// Writes a quantized model to `path` atomically (write_file_atomic) as rankq-quantized-llama/3: `tensors` are
/// the float tensors (F32: embedding, norms, classifier and any projection kept in float; a tensor that has the
/// name of one of `projections` is skipped, so a whole LlamaModel can be passed), `projections` the quantized ones (packed layers stored in their kernel layout, 64-byte aligned; 8-bit reference layers in their
/// canonical form). Everything is checked before the file is created: the config (check_llama_config), every
/// name and shape against it, finite float values, one of layer/reference per projection, no bias
/// (rankq::invalid_argument naming the tensor). The packed bytes are written from the layers, not copied.
inline void write_quantized_model(const std::string& path, const LlamaConfig& config, const std::string& method,
                                  const std::map<std::string, FloatTensor>& tensors,
                                  const std::map<std::string, QuantizedProjection>& projections) {
  constexpr const char* fn = "io::write_quantized_model";
  std::map<std::string, std::vector<std::uint64_t>> shapes;
  std::map<std::string, detail::OutTensor> out;
  TensorMap canonical;  // 8-bit reference layers, serialized here and borrowed by `out`
  std::map<std::string, std::string> meta{{"rankq.format", kQuantizedModelFormat}, {"rankq.version", kVersion},
                                          {"rankq.method", method}, {"rankq.config", detail::config_to_json(config)}};
  for (const auto& [name, t] : tensors) {
    if (projections.count(name)) continue;
    std::uint64_t count = 0;
    rankq::detail::require(detail::product_ok(t.shape, ~std::uint64_t{0}, count) && count == t.data.size(), fn, "tensors",
                           "'" + name + "' has a shape that does not match its values");
    for (float v : t.data) rankq::detail::require(std::isfinite(v), fn, "tensors", "'" + name + "' has a non-finite value");
    shapes[name] = t.shape;
    out[name] = {DType::f32, t.shape, reinterpret_cast<const std::uint8_t*>(t.data.data()), t.data.size() * 4, 0};
  }
  for (const auto& [name, p] : projections) {
    rankq::detail::require(!p.layer != !p.reference, fn, "projections", "'" + name + "' needs exactly one of layer, reference");
    shapes[name] = {p.out_features(), p.in_features()};
    if (p.layer) {
      rankq::detail::require(p.layer->bias().empty(), fn, "projections", "'" + name + "' has a bias, which this format does not store");
      detail::put_packed_layer(out, meta, name, *p.layer, p.label, p.bits_per_weight);
    } else {
      put_uniform(canonical, meta, name, *p.reference);
      nlohmann::json d = nlohmann::json::parse(meta[name]);
      d.update({{"label", p.label}, {"bits_per_weight", p.bits_per_weight}});
      meta[name] = d.dump();
      meta[name + ":activation"] = detail::activation_to_json(p.activation);
    }
  }
  try {
    detail::check_llama_config(config, fn);
    detail::check_shapes_match_config(config, shapes, path);
  } catch (const format_error& e) {
    rankq::detail::throw_argument(fn, "config", std::string("does not describe the tensors: ") + e.what());
  }
  for (const auto& [name, t] : canonical) out[name] = {t.dtype, t.shape, t.bytes.data(), t.bytes.size(), 0};
  detail::write_aligned_safetensors(path, out, std::move(meta));
}

/// Reads a quantized model file from memory (`source` names it in messages). The model owns copies of
/// everything (the caller's buffer may go away). Every problem is a rankq::format_error starting with
/// "rankq quantized model '<source>'" (docs/io.md lists the checks); no other exception escapes on bad bytes.
inline QuantizedModel parse_quantized_model(const std::uint8_t* data, std::size_t size, const std::string& source) {
  rankq::detail::require_non_null(data, size, "io::parse_quantized_model", "data");
  return detail::load_quantized_model(data, size, source, {});
}

/// Maps `path` read-only and reads it: the packed weights of every layer are viewed in the mapping (zero copy;
/// the layers keep it alive through their KeepAlive handle, so it is unmapped when the last layer goes). The
/// file must not be modified or truncated while mapped (SIGBUS). Throws io_error if it cannot be mapped.
inline QuantizedModel read_quantized_model(const std::string& path) {
  auto file = std::make_shared<const MappedFile>(path);
  return detail::load_quantized_model(file->data(), file->size(), path, file);
}

}  RANKQ_NAMESPACE_END  // namespace rankq::io
