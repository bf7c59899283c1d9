// rankq/io/gguf.hpp — reads GGUF files (versions 1, 2, 3), maps a "llama" GGUF to a LlamaModel, and reads its
// embedded vocabulary. Validation rules: docs/io.md.
#pragma once

#include "rankq/detail/abi.hpp"

#include <climits>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "rankq/error.hpp"
#include "rankq/io/detail/gguf_parser.hpp"
#include "rankq/io/file.hpp"
#include "rankq/io/gguf_file.hpp"
#include "rankq/io/llama_checkpoint.hpp"
#include "rankq/io/llama_model.hpp"

RANKQ_NAMESPACE_BEGIN namespace io {

/// Parses a GGUF file held in memory (the bytes are copied). Throws rankq::format_error naming the section and
/// field on any malformed input. Tensors of any ggml type parse; decoding data needs F32/F16/BF16 (see GgufFile).
inline GgufFile parse_gguf(const std::uint8_t* data, std::size_t size) {
  rankq::detail::require_non_null(data, size, "io::parse_gguf", "data");
  auto buffer = std::make_shared<const std::vector<std::uint8_t>>(data, data + size);
  const std::uint8_t* bytes = buffer->data();
  return detail::GgufParser(std::move(buffer), bytes, size, "GGUF").parse();
}

/// Maps (mmap) and parses a GGUF file; the returned GgufFile keeps the mapping and decodes tensors from it. Throws io_error if it cannot be read, rankq::format_error if malformed.
inline GgufFile read_gguf(const std::string& path) {
  auto file = std::make_shared<const MappedFile>(path);  // the GgufFile keeps the mapping; tensors decode from it
  const std::uint8_t* bytes = file->data();
  const std::size_t size = file->size();
  return detail::GgufParser(std::move(file), bytes, size, "GGUF '" + path + "'").parse();
}

namespace detail {

/// Metadata integer `key` as an int in [1, INT_MAX]; `fallback` (if >= 0) when the key is absent.
inline int gguf_positive_int(const GgufFile& g, const std::string& key, std::int64_t fallback = -1) {
  const GgufValue* v = g.find(key);
  if (v == nullptr && fallback >= 0) return static_cast<int>(fallback);
  const std::int64_t x = g.get_int(key);
  if (x <= 0 || x > INT_MAX)
    throw format_error(g.source() + ": metadata '" + key + "' = " + std::to_string(x) + ": must be in [1, 2^31)");
  return static_cast<int>(x);
}

inline std::string shape_string(const std::vector<std::uint64_t>& s) {
  std::string out;
  for (std::uint64_t d : s) out += "[" + std::to_string(d) + "]";
  return out.empty() ? "[] (scalar)" : out;
}

/// The tensor as a CheckpointTensor viewing g's bytes, after the checks tensor_floats does (type F32/F16/BF16).
inline CheckpointTensor gguf_float_tensor(const GgufFile& g, const std::string& name, const std::vector<std::uint64_t>& shape) {
  const GgufTensorInfo& t = g.tensor(name);
  if (t.shape() != shape)
    throw format_error(g.source() + ": tensor '" + name + "' has shape " + shape_string(t.shape()) + " (ne reversed), expected " +
                       shape_string(shape));
  if (t.type != 0 && t.type != 1 && t.type != 30)
    throw format_error(g.source() + ": tensor '" + name + "' has ggml type " + t.type_name() + " (" +
                       std::to_string(t.type) + "): only F32, F16 and BF16 convert to float");
  const DType d = t.type == 0 ? DType::f32 : t.type == 1 ? DType::f16 : DType::bf16;
  return CheckpointTensor{d, shape, g.tensor_data(name), static_cast<std::size_t>(t.n_elements), 0};
}

}  // namespace detail

/// Maps a GGUF with general.architecture = "llama" to a LlamaModel: llama.embedding_length -> dim,
/// feed_forward_length -> hidden_dim, block_count -> n_layers, attention.head_count -> n_heads,
/// attention.head_count_kv -> n_kv_heads (default n_heads), context_length -> seq_len,
/// attention.layer_norm_rms_epsilon -> norm_eps (default 1e-5), rope.freq_base -> rope_theta (default 10000);
/// vocab_size from token_embd.weight. Every tensor must have the shape the config implies (ne = [in, out] is
/// row-major [out][in]) and type F32/F16/BF16; output.weight defaults to a copy of token_embd.weight.
/// Q/K rows are taken as stored: llama.cpp's converters write Meta's interleaved-pair RoPE order, the one
/// llama2.c uses, so both loaders agree without a permutation. Throws rankq::format_error on any mismatch.
/// open_llama_gguf / load_llama_gguf check everything first; the checkpoint views (a copy of) `g`.
inline LlamaCheckpoint open_llama_gguf(const GgufFile& g, bool mapped = false) {
  const std::string& arch = g.get_string("general.architecture");
  if (arch != "llama")
    throw format_error(g.source() + ": metadata 'general.architecture' = " + detail::quote(arch) + ", expected 'llama'");
  LlamaCheckpoint m;
  m.source = g.source();
  m.mapped = mapped;
  m.owners.push_back(std::make_shared<const GgufFile>(g));  // shares the mapping or the parsed bytes
  LlamaConfig& c = m.config;
  c.dim = detail::gguf_positive_int(g, "llama.embedding_length");
  c.hidden_dim = detail::gguf_positive_int(g, "llama.feed_forward_length");
  c.n_layers = detail::gguf_positive_int(g, "llama.block_count");
  c.n_heads = detail::gguf_positive_int(g, "llama.attention.head_count");
  c.n_kv_heads = detail::gguf_positive_int(g, "llama.attention.head_count_kv", c.n_heads);
  c.seq_len = detail::gguf_positive_int(g, "llama.context_length");
  c.norm_eps = static_cast<float>(g.get_float("llama.attention.layer_norm_rms_epsilon", 1e-5));
  c.rope_theta = static_cast<float>(g.get_float("llama.rope.freq_base", 10000.0));
  if (!(std::isfinite(c.norm_eps) && c.norm_eps >= 0.f) || !(std::isfinite(c.rope_theta) && c.rope_theta > 0.f))
    throw format_error(g.source() + ": metadata: layer_norm_rms_epsilon or rope.freq_base is out of range");
  const GgufTensorInfo& embd = g.tensor("token_embd.weight");
  if (embd.ne.size() != 2 || embd.ne[1] == 0 || embd.ne[1] > INT_MAX)
    throw format_error(g.source() + ": tensor 'token_embd.weight' has ne " + detail::shape_string(embd.ne) +
                       ", expected [dim][vocab] with 0 < vocab < 2^31");
  c.vocab_size = static_cast<int>(embd.ne[1]);
  detail::check_llama_config(c, g.source());
  if (g.has("llama.rope.dimension_count") &&
      g.get_int("llama.rope.dimension_count") != static_cast<std::int64_t>(c.dim / c.n_heads))
    throw format_error(g.source() + ": metadata 'llama.rope.dimension_count' = " +
                       std::to_string(g.get_int("llama.rope.dimension_count")) + " differs from the head size " +
                       std::to_string(c.dim / c.n_heads) + ": partial RoPE is not supported");

  if (static_cast<std::uint64_t>(c.n_layers) * 9 + 2 > g.tensors().size())
    throw format_error(g.source() + ": metadata 'llama.block_count' = " + std::to_string(c.n_layers) + " needs " +
                       std::to_string(static_cast<std::uint64_t>(c.n_layers) * 9 + 2) + " tensors, the file has " +
                       std::to_string(g.tensors().size()));
  for (const auto& [name, shape] : detail::llama_tensor_shapes(c))
    m.tensors.emplace(name, detail::gguf_float_tensor(g, name, shape));
  if (g.find_tensor("output.weight"))
    m.tensors.emplace("output.weight", detail::gguf_float_tensor(g, "output.weight", m.tensors.at("token_embd.weight").shape));
  else
    m.tensors.emplace("output.weight", m.tensors.at("token_embd.weight"));
  return m;
}

/// Every tensor of open_llama_gguf(g) decoded to float.
inline LlamaModel load_llama_gguf(const GgufFile& g) { return open_llama_gguf(g).load_all(); }

/// read_gguf (mapped) + open_llama_gguf: tensors stay in the mapping until loaded; release() drops their pages.
inline LlamaCheckpoint open_llama_gguf(const std::string& path) { return open_llama_gguf(read_gguf(path), true); }

/// read_gguf + load_llama_gguf.
inline LlamaModel read_llama_gguf(const std::string& path) { return load_llama_gguf(read_gguf(path)); }

/// The vocabulary embedded in a GGUF file.
struct GgufVocab {
  std::vector<std::string> tokens;  ///< tokenizer.ggml.tokens (required)
  std::vector<float> scores;        ///< tokenizer.ggml.scores, same length; all 0 if the file has none
  int bos = -1, eos = -1;           ///< tokenizer.ggml.bos_token_id / eos_token_id; -1 if absent
};

/// Reads tokenizer.ggml.tokens/scores/bos_token_id/eos_token_id; throws rankq::format_error if the tokens are
/// missing, the scores have another length, or a special id is out of range.
inline GgufVocab gguf_vocab(const GgufFile& g) {
  GgufVocab v;
  v.tokens = g.get("tokenizer.ggml.tokens").as_string_array();
  if (v.tokens.empty()) throw format_error(g.source() + ": metadata 'tokenizer.ggml.tokens' is empty");
  if (g.has("tokenizer.ggml.scores")) {
    v.scores = g.get("tokenizer.ggml.scores").as_float_array();
    if (v.scores.size() != v.tokens.size())
      throw format_error(g.source() + ": metadata 'tokenizer.ggml.scores' has " + std::to_string(v.scores.size()) +
                         " entries but there are " + std::to_string(v.tokens.size()) + " tokens");
  } else {
    v.scores.assign(v.tokens.size(), 0.f);
  }
  const auto special = [&](const char* key) {
    const std::int64_t id = g.get_int(key, -1);
    if (g.has(key) && (id < 0 || static_cast<std::uint64_t>(id) >= v.tokens.size()))
      throw format_error(g.source() + ": metadata '" + key + "' = " + std::to_string(id) + " is not a token id (vocab has " +
                         std::to_string(v.tokens.size()) + " tokens)");
    return static_cast<int>(id);
  };
  v.bos = special("tokenizer.ggml.bos_token_id");
  v.eos = special("tokenizer.ggml.eos_token_id");
  return v;
}

}  RANKQ_NAMESPACE_END  // namespace rankq::io
