// rankq/io/hf_checkpoint.hpp — reads a Hugging Face LLaMA checkpoint folder (config.json + model.safetensors, or
// sharded model-0000N-of-0000M.safetensors + model.safetensors.index.json) into a LlamaModel: HF tensor names
// mapped to GGUF's, BF16/F16/F32 decoded, and HF's Q/K row permutation undone. Rules and derivation: docs/io.md.
#pragma once

#include "rankq/detail/abi.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "rankq/error.hpp"
#include "rankq/io/file.hpp"
#include "rankq/io/llama_checkpoint.hpp"
#include "rankq/io/llama_model.hpp"
#include "rankq/io/safetensors.hpp"

RANKQ_NAMESPACE_BEGIN namespace io {

/// What config.json says, mapped to the engine's config.
struct HfLlamaConfig {
  LlamaConfig config;
  std::string architecture;          ///< "LlamaForCausalLM" or "MistralForCausalLM"
  bool tie_word_embeddings = false;  ///< lm_head.weight is the embedding (and may be absent)
};

namespace detail {

/// Parses a JSON file; throws io_error if it cannot be read, rankq::format_error naming it if it is not JSON.
inline nlohmann::json read_json_file(const std::string& path) {
  const std::vector<std::uint8_t> bytes = read_file_bytes(path);
  try {
    return nlohmann::json::parse(bytes.begin(), bytes.end());
  } catch (const nlohmann::json::exception& e) {
    throw format_error("'" + path + "' is not valid JSON: " + e.what());
  }
}

inline std::string hf_shape(const std::vector<std::uint64_t>& shape) {
  std::string out;
  for (std::uint64_t d : shape) out += "[" + std::to_string(d) + "]";
  return out.empty() ? "[] (scalar)" : out;
}

/// config[key] as an int in [1, 2^31); `fallback` (if > 0) when the key is absent or null.
inline int hf_positive_int(const nlohmann::json& config, const char* key, const std::string& source, int fallback = 0) {
  const auto it = config.find(key);
  if (it == config.end() || it->is_null()) {
    if (fallback > 0) return fallback;
    throw format_error(source + ": '" + key + "' is missing");
  }
  if (!it->is_number_integer() || it->get<std::int64_t>() <= 0 || it->get<std::int64_t>() > INT_MAX)
    throw format_error(source + ": '" + key + "' = " + it->dump() + " is not an integer in [1, 2^31)");
  return static_cast<int>(it->get<std::int64_t>());
}

inline double hf_number(const nlohmann::json& config, const char* key, const std::string& source, double fallback) {
  const auto it = config.find(key);
  if (it == config.end() || it->is_null()) return fallback;
  if (!it->is_number()) throw format_error(source + ": '" + key + "' = " + it->dump() + " is not a number");
  return it->get<double>();
}

/// Throws unless config[key] is absent, null, false or equal to `allowed`.
inline void hf_require_absent(const nlohmann::json& config, const char* key, const std::string& source,
                              const std::string& what, const nlohmann::json& allowed = nullptr) {
  const auto it = config.find(key);
  if (it == config.end() || it->is_null() || *it == false || (!allowed.is_null() && *it == allowed)) return;
  throw format_error(source + ": '" + key + "' = " + it->dump() + ": " + what + " is not supported");
}

}  // namespace detail

/// Maps a parsed config.json (LlamaForCausalLM or MistralForCausalLM) to the engine's config:
/// hidden_size -> dim, intermediate_size -> hidden_dim, num_hidden_layers -> n_layers, num_attention_heads ->
/// n_heads, num_key_value_heads -> n_kv_heads (default n_heads), vocab_size, max_position_embeddings -> seq_len
/// (default 2048; capped at Mistral's sliding_window, below which sliding-window attention is full attention),
/// rms_norm_eps -> norm_eps (default 1e-6, HF's), rope_theta (default 10000), tie_word_embeddings (default false).
/// Refused with rankq::format_error naming what is unsupported: another architecture, quantization_config,
/// rope_scaling, attention or MLP biases, an activation other than silu, a head_dim other than dim / n_heads.
inline HfLlamaConfig parse_hf_llama_config(const nlohmann::json& j, const std::string& source) try {
  if (!j.is_object()) throw format_error(source + ": is not a JSON object");
  HfLlamaConfig out;
  const auto arch = j.find("architectures");
  if (arch == j.end() || !arch->is_array() || arch->size() != 1 || !(*arch)[0].is_string())
    throw format_error(source + ": 'architectures' must list exactly one architecture (found " +
                       (arch == j.end() ? std::string("none") : arch->dump()) + ")");
  out.architecture = (*arch)[0].get<std::string>();
  if (out.architecture != "LlamaForCausalLM" && out.architecture != "MistralForCausalLM")
    throw format_error(source + ": architecture '" + out.architecture +
                       "' is not supported (only LlamaForCausalLM and MistralForCausalLM)");
  if (j.contains("quantization_config"))
    throw format_error(source + ": a quantized checkpoint ('quantization_config' = " + j["quantization_config"].dump() +
                       ") is not supported: give the unquantized F32/F16/BF16 model");
  detail::hf_require_absent(j, "rope_scaling", source, "RoPE scaling");
  detail::hf_require_absent(j, "attention_bias", source, "a bias in the attention projections");
  detail::hf_require_absent(j, "mlp_bias", source, "a bias in the MLP projections");
  detail::hf_require_absent(j, "hidden_act", source, "an activation other than silu", "silu");
  LlamaConfig& c = out.config;
  c.dim = detail::hf_positive_int(j, "hidden_size", source);
  c.hidden_dim = detail::hf_positive_int(j, "intermediate_size", source);
  c.n_layers = detail::hf_positive_int(j, "num_hidden_layers", source);
  c.n_heads = detail::hf_positive_int(j, "num_attention_heads", source);
  c.n_kv_heads = detail::hf_positive_int(j, "num_key_value_heads", source, c.n_heads);
  c.vocab_size = detail::hf_positive_int(j, "vocab_size", source);
  c.seq_len = detail::hf_positive_int(j, "max_position_embeddings", source, 2048);
  if (j.contains("sliding_window") && !j["sliding_window"].is_null())
    c.seq_len = std::min(c.seq_len, detail::hf_positive_int(j, "sliding_window", source));
  if (j.contains("head_dim") && !j["head_dim"].is_null() && c.dim % c.n_heads == 0 &&
      detail::hf_positive_int(j, "head_dim", source) != c.dim / c.n_heads)
    throw format_error(source + ": 'head_dim' = " + j["head_dim"].dump() + " differs from hidden_size / num_attention_heads = " +
                       std::to_string(c.dim / c.n_heads) + ": not supported");
  const double eps = detail::hf_number(j, "rms_norm_eps", source, 1e-6);
  const double theta = detail::hf_number(j, "rope_theta", source, 10000.0);
  if (!(std::isfinite(eps) && eps >= 0 && eps < 1))
    throw format_error(source + ": 'rms_norm_eps' = " + std::to_string(eps) + " is not in [0, 1)");
  if (!(std::isfinite(theta) && theta > 0 && theta < 1e30))
    throw format_error(source + ": 'rope_theta' = " + std::to_string(theta) + " is not a positive finite number");
  c.norm_eps = static_cast<float>(eps);
  c.rope_theta = static_cast<float>(theta);
  if (j.contains("tie_word_embeddings")) {
    if (!j["tie_word_embeddings"].is_boolean())
      throw format_error(source + ": 'tie_word_embeddings' = " + j["tie_word_embeddings"].dump() + " is not true or false");
    out.tie_word_embeddings = j["tie_word_embeddings"].get<bool>();
  }
  detail::check_llama_config(c, source);
  return out;
} catch (const nlohmann::json::exception& e) {  // a field of the wrong JSON type
  throw format_error(source + ": unexpected JSON structure: " + e.what());
}

/// Reads `<dir>/config.json`.
inline HfLlamaConfig read_hf_llama_config(const std::string& dir) {
  const std::string path = dir + "/config.json";
  return parse_hf_llama_config(detail::read_json_file(path), "Hugging Face config '" + path + "'");
}

/// The safetensors files of the checkpoint in `dir` and, per file, the tensor names the index assigns to it
/// (empty for a single model.safetensors, whose tensors are all taken). Throws rankq::format_error when there is
/// no model.safetensors.index.json nor model.safetensors (naming PyTorch .bin checkpoints as unsupported), or the
/// index is malformed (weight_map missing, a file name with a path in it).
inline std::map<std::string, std::set<std::string>> hf_safetensors_files(const std::string& dir) {
  namespace fs = std::filesystem;
  std::map<std::string, std::set<std::string>> files;
  const std::string index_path = dir + "/model.safetensors.index.json";
  if (fs::exists(index_path)) {
    const std::string source = "Hugging Face index '" + index_path + "'";
    const nlohmann::json index = detail::read_json_file(index_path);
    const auto map = index.is_object() ? index.find("weight_map") : index.end();
    if (map == index.end() || !map->is_object() || map->empty())
      throw format_error(source + ": 'weight_map' is missing, empty or not an object");
    for (auto it = map->begin(); it != map->end(); ++it) {
      if (!it.value().is_string()) throw format_error(source + ": weight_map['" + it.key() + "'] is not a file name");
      const std::string& file = it.value().get_ref<const std::string&>();
      if (file.empty() || file.find('/') != std::string::npos || file == "." || file == "..")
        throw format_error(source + ": weight_map['" + it.key() + "'] = '" + file + "' is not a file name in the folder");
      files[file].insert(it.key());
    }
    return files;
  }
  if (fs::exists(dir + "/model.safetensors")) {
    files["model.safetensors"];
    return files;
  }
  const bool torch = fs::exists(dir + "/pytorch_model.bin") || fs::exists(dir + "/pytorch_model.bin.index.json");
  throw format_error("Hugging Face checkpoint '" + dir + "': no model.safetensors or model.safetensors.index.json" +
                     (torch ? " (PyTorch .bin checkpoints are not supported: convert them to safetensors)" : ""));
}

/// Reads the Hugging Face LLaMA/Mistral checkpoint in folder `dir` (see parse_hf_llama_config for config.json).
/// Tensors (F32, F16 or BF16, any mix) are mapped to GGUF names: model.embed_tokens -> token_embd,
/// model.layers.N.{input_layernorm, self_attn.{q,k,v,o}_proj, post_attention_layernorm, mlp.{gate,up,down}_proj}
/// -> blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm, ffn_gate, ffn_up, ffn_down},
/// model.norm -> output_norm, lm_head -> output (a copy of the embedding when absent and tied). Q/K rows are
/// returned in Meta's interleaved-pair RoPE order (HF's permutation undone). Every tensor the config implies must
/// be present exactly once with its shape; rotary_emb.inv_freq buffers are ignored; any other tensor (biases,
/// quantized weights such as qweight/scales) and any non-float dtype are refused with rankq::format_error naming
/// the tensor, the file and what is unsupported. io_error if a file cannot be read.
/// open_hf_llama does every check and maps the files; read_hf_llama then decodes every tensor.
inline LlamaCheckpoint open_hf_llama(const std::string& dir) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(dir)) throw io_error("rankq::io: Hugging Face checkpoint '" + dir + "' is not a directory");
  const HfLlamaConfig hf = read_hf_llama_config(dir);
  LlamaCheckpoint m;
  m.config = hf.config;
  m.source = "Hugging Face checkpoint '" + dir + "'";
  m.mapped = true;
  const LlamaConfig& c = m.config;
  // HF name -> (GGUF name, shape, heads to unpermute by or 0).
  struct Target {
    std::string name;
    std::vector<std::uint64_t> shape;
    int permute_heads;
  };
  std::map<std::string, Target> targets;
  for (const auto& [gguf, shape] : detail::llama_tensor_shapes(c)) {
    std::string hf_name;
    int heads = 0;
    if (gguf == "token_embd.weight") hf_name = "model.embed_tokens.weight";
    else if (gguf == "output_norm.weight") hf_name = "model.norm.weight";
    else {
      const std::size_t dot = gguf.find('.', 4);
      const std::string layer = gguf.substr(4, dot - 4), kind = gguf.substr(dot + 1, gguf.size() - dot - 8);
      static const std::map<std::string, std::string> kKinds = {
          {"attn_norm", "input_layernorm"},  {"attn_q", "self_attn.q_proj"},     {"attn_k", "self_attn.k_proj"},
          {"attn_v", "self_attn.v_proj"},     {"attn_output", "self_attn.o_proj"}, {"ffn_norm", "post_attention_layernorm"},
          {"ffn_gate", "mlp.gate_proj"},      {"ffn_up", "mlp.up_proj"},           {"ffn_down", "mlp.down_proj"}};
      hf_name = "model.layers." + layer + "." + kKinds.at(kind) + ".weight";
      heads = kind == "attn_q" ? c.n_heads : kind == "attn_k" ? c.n_kv_heads : 0;
    }
    targets.emplace(hf_name, Target{gguf, shape, heads});
  }
  targets.emplace("lm_head.weight", Target{"output.weight", {static_cast<std::uint64_t>(c.vocab_size),
                                                              static_cast<std::uint64_t>(c.dim)}, 0});

  for (const auto& [file, listed] : hf_safetensors_files(dir)) {
    const std::string path = dir + "/" + file;
    auto file_map = std::make_shared<const MappedFile>(path);  // tensors are viewed in the mapping, not copied
    const SafetensorsFile st = detail::parse_safetensors_impl(file_map->data(), file_map->size(), "safetensors '" + path + "'",
                                                              [](const std::string&) { return true; });
    m.owners.push_back(file_map);
    for (const std::string& name : listed)
      if (st.tensors.count(name) == 0)
        throw format_error("Hugging Face checkpoint '" + dir + "': the index puts tensor '" + name + "' in '" + file +
                           "', which does not hold it");
    for (const auto& [name, raw] : st.tensors) {
      const std::string where = "tensor '" + name + "' in '" + path + "'";
      if (!listed.empty() && listed.count(name) == 0)
        throw format_error("Hugging Face checkpoint '" + dir + "': " + where + " is not in the index's weight_map for that file");
      const auto target = targets.find(name);
      if (target == targets.end()) {
        if (name.find(".rotary_emb.inv_freq") != std::string::npos) continue;  // a buffer older exports carry
        throw format_error("Hugging Face checkpoint '" + dir + "': unexpected " + where + " (not a " + hf.architecture +
                           " weight of this config: biases, other architectures and quantized weights are not supported)");
      }
      if (!is_float_dtype(raw.dtype))
        throw format_error("Hugging Face checkpoint '" + dir + "': " + where + " has dtype " + dtype_name(raw.dtype) +
                           ": only F32, F16 and BF16 are supported (quantized checkpoints are not)");
      if (raw.shape != target->second.shape)
        throw format_error("Hugging Face checkpoint '" + dir + "': " + where + " has shape " + detail::hf_shape(raw.shape) +
                           ", config.json implies " + detail::hf_shape(target->second.shape));
      if (m.tensors.count(target->second.name) != 0)
        throw format_error("Hugging Face checkpoint '" + dir + "': " + where + " appears twice");
      std::uint64_t count = 0;
      detail::product_ok(raw.shape, ~std::uint64_t{0}, count);  // the parser checked shape x dtype against the offsets
      m.tensors.emplace(target->second.name, CheckpointTensor{raw.dtype, raw.shape, file_map->data() + st.data_offsets.at(name),
                                                              static_cast<std::size_t>(count), target->second.permute_heads});
    }
  }
  for (const auto& [hf_name, target] : targets) {
    if (m.tensors.count(target.name) != 0 || hf_name == "lm_head.weight") continue;
    throw format_error("Hugging Face checkpoint '" + dir + "': tensor '" + hf_name + "' is missing");
  }
  if (m.tensors.count("output.weight") == 0) {
    if (!hf.tie_word_embeddings)
      throw format_error("Hugging Face checkpoint '" + dir +
                         "': tensor 'lm_head.weight' is missing and config.json does not tie it to the embedding");
    m.tensors.emplace("output.weight", m.tensors.at("token_embd.weight"));
  }
  return m;
}

/// open_hf_llama(dir).load_all(): every tensor decoded to float.
inline LlamaModel read_hf_llama(const std::string& dir) { return open_hf_llama(dir).load_all(); }

}  RANKQ_NAMESPACE_END  // namespace rankq::io
