// rankq/io/detail/quantized_model_meta.hpp — the metadata of the quantized model file behind
// rankq/io/quantized_model.hpp: activation-format and config JSON, per-tensor CRC-32C, and the config checked
// against the tensors the file holds. Every problem is a rankq::format_error naming the file (docs/io.md).
#pragma once

#include "rankq/detail/abi.hpp"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "rankq/formats/activation.hpp"
#include "rankq/error.hpp"
#include "rankq/io/detail/crc32c.hpp"
#include "rankq/io/llama_model.hpp"

RANKQ_NAMESPACE_BEGIN namespace io {
namespace detail {

inline constexpr const char* kChecksumsKey = "rankq.checksums";

[[noreturn]] inline void bad_model_file(const std::string& source, const std::string& problem) {
  throw format_error("rankq quantized model '" + source + "': " + problem);
}

inline std::string activation_to_json(const ActivationFormat& f) {
  return nlohmann::json{{"kind", f.kind == ActivationQuant::per_token   ? "per_token"
                                 : f.kind == ActivationQuant::per_block ? "per_block"
                                                                        : "mxint8"},
                        {"block", f.block},
                        {"semantics", f.semantics == MxSemantics::lqer ? "lqer" : "ocp"}}
      .dump();
}

/// Parses what activation_to_json wrote; throws rankq::format_error naming `where` on anything else.
inline ActivationFormat activation_from_json(const std::string& text, const std::string& where) {
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  const auto fail = [&](const std::string& what) { throw format_error(where + ": " + what); };
  if (j.is_discarded() || !j.is_object()) fail("activation descriptor is not a JSON object");
  if (!j.contains("kind") || !j["kind"].is_string() || !j.contains("block") || !j["block"].is_number_unsigned() ||
      !j.contains("semantics") || !j["semantics"].is_string())
    fail("activation descriptor needs kind, block and semantics");
  ActivationFormat f;
  const std::string kind = j["kind"], sem = j["semantics"];
  if (kind == "per_token") f.kind = ActivationQuant::per_token;
  else if (kind == "per_block") f.kind = ActivationQuant::per_block;
  else if (kind == "mxint8") f.kind = ActivationQuant::mxint8;
  else fail("unknown activation kind '" + kind + "'");
  f.block = j["block"].get<std::size_t>();
  if (f.block != 16 && f.block != 32) fail("activation block must be 16 or 32");
  if (sem != "lqer" && sem != "ocp") fail("unknown semantics '" + sem + "'");
  f.semantics = sem == "lqer" ? MxSemantics::lqer : MxSemantics::ocp;
  return f;
}

inline std::string config_to_json(const LlamaConfig& c) {
  return nlohmann::json{{"dim", c.dim}, {"hidden_dim", c.hidden_dim}, {"n_layers", c.n_layers}, {"n_heads", c.n_heads},
                        {"n_kv_heads", c.n_kv_heads}, {"vocab_size", c.vocab_size}, {"seq_len", c.seq_len},
                        {"norm_eps", c.norm_eps}, {"rope_theta", c.rope_theta}}
      .dump();
}

/// The model config from metadata["rankq.config"], every field present with the right type and range.
inline LlamaConfig config_from_json(const std::string& text, const std::string& source) {
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
  LlamaConfig c{integer("dim"), integer("hidden_dim"), integer("n_layers"), integer("n_heads"),
                integer("n_kv_heads"), integer("vocab_size"), integer("seq_len")};
  c.norm_eps = real("norm_eps");
  c.rope_theta = real("rope_theta");
  check_llama_config(c, "rankq quantized model '" + source + "'");
  return c;
}

/// Throws unless `checksums` (the JSON of metadata["rankq.checksums"]) lists exactly the tensors of `bytes`
/// (name → {data, size}) and every CRC-32C matches.
inline void verify_checksums(const std::string* checksums, const std::map<std::string, std::pair<const std::uint8_t*, std::size_t>>& bytes,
                             const std::string& source) {
  const std::string key = kChecksumsKey;
  if (checksums == nullptr) bad_model_file(source, "metadata has no '" + key + "'");
  const nlohmann::json j = nlohmann::json::parse(*checksums, nullptr, false);
  if (j.is_discarded() || !j.is_object()) bad_model_file(source, "'" + key + "' is not a JSON object");
  if (j.size() != bytes.size())
    bad_model_file(source, "'" + key + "' lists " + std::to_string(j.size()) + " tensors, the file has " + std::to_string(bytes.size()));
  for (const auto& [name, b] : bytes) {
    const auto c = j.find(name);
    if (c == j.end() || !c->is_number_unsigned() || c->get<std::uint64_t>() > 0xFFFFFFFFull)
      bad_model_file(source, "tensor '" + name + "' has no valid checksum in '" + key + "'");
    if (crc32c(b.first, b.second) != c->get<std::uint64_t>())
      bad_model_file(source, "tensor '" + name + "' is corrupted: its CRC-32C does not match the one stored");
  }
}

/// Throws unless `shapes` (float tensors and projections, by GGUF name) are exactly the model the config
/// describes: the count first (so an absurd n_layers costs nothing), then every name and shape;
/// output.weight is optional ([vocab][dim]).
inline void check_shapes_match_config(const LlamaConfig& c, const std::map<std::string, std::vector<std::uint64_t>>& shapes,
                                      const std::string& source) {
  const auto output = shapes.find("output.weight");
  const std::uint64_t expected = 2 + 9 * static_cast<std::uint64_t>(c.n_layers) + (output != shapes.end() ? 1 : 0);
  if (shapes.size() != expected)
    bad_model_file(source, "the config (n_layers = " + std::to_string(c.n_layers) + ") implies " + std::to_string(expected) +
                               " weight tensors, the file holds " + std::to_string(shapes.size()));
  const auto text = [](const std::vector<std::uint64_t>& s) {
    std::string t;
    for (auto d : s) t += (t.empty() ? "" : "x") + std::to_string(d);
    return "[" + t + "]";
  };
  auto want = llama_tensor_shapes(c);
  if (output != shapes.end())
    want.push_back({"output.weight", {static_cast<std::uint64_t>(c.vocab_size), static_cast<std::uint64_t>(c.dim)}});
  for (const auto& [name, shape] : want) {
    const auto it = shapes.find(name);
    if (it == shapes.end()) bad_model_file(source, "the config implies a tensor '" + name + "' that the file does not hold");
    if (it->second != shape)
      bad_model_file(source, "tensor '" + name + "' is " + text(it->second) + ", the config implies " + text(shape));
  }
}

}  // namespace detail
}  RANKQ_NAMESPACE_END  // namespace rankq::io
