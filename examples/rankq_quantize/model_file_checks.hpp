// examples/rankq_quantize/model_file_checks.hpp — the integrity checks of the quantized model file: a CRC-32C of
// every tensor's bytes in the metadata ("rankq.checksums"), the model config read field by field, and the config
// checked against the tensors the file holds. Every problem is a rankq::format_error naming the file. docs/io.md.
#pragma once

#include <rankq/io/detail/crc32c.hpp>
#include <rankq/io/llama_model.hpp>
#include <rankq/io/quantized_tensors.hpp>
#include <rankq/io/safetensors.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <string>

namespace rankq::example {

inline constexpr const char* kChecksumsKey = "rankq.checksums";

[[noreturn]] inline void bad_model_file(const std::string& source, const std::string& problem) {
  throw format_error("rankq quantized model '" + source + "': " + problem);
}

/// {"tensor name": CRC-32C of its bytes, ...} for every tensor, as JSON text.
inline std::string tensor_checksums(const io::TensorMap& tensors) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [name, t] : tensors) j[name] = io::detail::crc32c(t.bytes.data(), t.bytes.size());
  return j.dump();
}

/// Throws unless metadata["rankq.checksums"] lists exactly the file's tensors and every CRC-32C matches.
inline void verify_checksums(const io::SafetensorsFile& file, const std::string& source) {
  const auto it = file.metadata.find(kChecksumsKey);
  if (it == file.metadata.end()) bad_model_file(source, std::string("metadata has no '") + kChecksumsKey + "'");
  const nlohmann::json j = nlohmann::json::parse(it->second, nullptr, false);
  if (j.is_discarded() || !j.is_object()) bad_model_file(source, std::string("'") + kChecksumsKey + "' is not a JSON object");
  if (j.size() != file.tensors.size())
    bad_model_file(source, std::string("'") + kChecksumsKey + "' lists " + std::to_string(j.size()) + " tensors, the file has " +
                               std::to_string(file.tensors.size()));
  for (const auto& [name, t] : file.tensors) {
    const auto c = j.find(name);
    if (c == j.end() || !c->is_number_unsigned() || c->get<std::uint64_t>() > 0xFFFFFFFFull)
      bad_model_file(source, "tensor '" + name + "' has no valid checksum in '" + kChecksumsKey + "'");
    if (io::detail::crc32c(t.bytes.data(), t.bytes.size()) != c->get<std::uint64_t>())
      bad_model_file(source, "tensor '" + name + "' is corrupted: its CRC-32C does not match the one stored");
  }
}

/// The model config from metadata["rankq.config"], every field present with the right type and range.
inline io::LlamaConfig parse_model_config(const std::string& text, const std::string& source) {
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) bad_model_file(source, "'rankq.config' is not a JSON object");
  const auto integer = [&](const char* key) {
    const auto it = j.find(key);
    if (it == j.end() || !it->is_number_integer() || it->get<std::int64_t>() <= 0 ||
        it->get<std::int64_t>() > std::numeric_limits<int>::max())
      bad_model_file(source, std::string("'rankq.config' field '") + key + "' is missing or not a positive 32-bit integer");
    return static_cast<int>(it->get<std::int64_t>());
  };
  const auto real = [&](const char* key) {
    const auto it = j.find(key);
    if (it == j.end() || !it->is_number() || !std::isfinite(it->get<double>()) || !(it->get<double>() > 0) ||
        it->get<double>() > std::numeric_limits<float>::max())
      bad_model_file(source, std::string("'rankq.config' field '") + key + "' is missing or not a positive finite number");
    return static_cast<float>(it->get<double>());
  };
  io::LlamaConfig c{integer("dim"), integer("hidden_dim"), integer("n_layers"), integer("n_heads"),
                    integer("n_kv_heads"), integer("vocab_size"), integer("seq_len")};
  c.norm_eps = real("norm_eps");
  c.rope_theta = real("rope_theta");
  io::detail::check_llama_config(c, "rankq quantized model '" + source + "'");
  return c;
}

/// Throws unless `tensors` (float tensors and dequantized projections, by GGUF name) are exactly the model the
/// config describes: the count first (so an absurd n_layers costs nothing), then every name and shape;
/// output.weight is optional ([vocab][dim]).
inline void check_tensors_match_config(const io::LlamaConfig& c, const std::map<std::string, io::FloatTensor>& tensors,
                                       const std::string& source) {
  const auto output = tensors.find("output.weight");
  const std::uint64_t expected = 2 + 9 * static_cast<std::uint64_t>(c.n_layers) + (output != tensors.end() ? 1 : 0);
  if (tensors.size() != expected)
    bad_model_file(source, "the config (n_layers = " + std::to_string(c.n_layers) + ") implies " + std::to_string(expected) +
                               " weight tensors, the file holds " + std::to_string(tensors.size()));
  const auto shape_text = [](const std::vector<std::uint64_t>& s) {
    std::string t;
    for (auto d : s) t += (t.empty() ? "" : "x") + std::to_string(d);
    return "[" + t + "]";
  };
  auto shapes = io::detail::llama_tensor_shapes(c);
  if (output != tensors.end())
    shapes.push_back({"output.weight", {static_cast<std::uint64_t>(c.vocab_size), static_cast<std::uint64_t>(c.dim)}});
  for (const auto& [name, shape] : shapes) {
    const auto it = tensors.find(name);
    if (it == tensors.end()) bad_model_file(source, "the config implies a tensor '" + name + "' that the file does not hold");
    if (it->second.shape != shape)
      bad_model_file(source, "tensor '" + name + "' is " + shape_text(it->second.shape) + ", the config implies " + shape_text(shape));
  }
}

}  // namespace rankq::example
