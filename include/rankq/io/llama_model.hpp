// rankq/io/llama_model.hpp — the in-memory LLaMA model (config + float tensors under GGUF names) that the
// llama2.c and GGUF loaders both return, and the list of tensors and shapes a config implies.
#pragma once

#include "rankq/detail/abi.hpp"

#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "rankq/error.hpp"
#include "rankq/io/detail/checked.hpp"

RANKQ_NAMESPACE_BEGIN namespace io {

struct LlamaConfig {
  int dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
  float norm_eps = 1e-5f;
  float rope_theta = 10000.f;
};

/// A float tensor, row-major; shape[0] = rows ([out][in] for a linear layer's weight).
struct FloatTensor {
  std::vector<std::uint64_t> shape;
  std::vector<float> data;
};

/// A LLaMA model. Tensor names (GGUF's), with shapes outermost first and kv_dim = dim * n_kv_heads / n_heads:
///   token_embd.weight [vocab][dim]          output_norm.weight [dim]        output.weight [vocab][dim]
///   blk.N.attn_norm.weight [dim]            blk.N.ffn_norm.weight [dim]
///   blk.N.attn_q.weight [dim][dim]          blk.N.attn_output.weight [dim][dim]
///   blk.N.attn_k.weight [kv_dim][dim]       blk.N.attn_v.weight [kv_dim][dim]
///   blk.N.ffn_gate.weight [hidden][dim] (w1)  blk.N.ffn_down.weight [dim][hidden] (w2)  blk.N.ffn_up.weight [hidden][dim] (w3)
/// output.weight is a copy of token_embd.weight when the file shares them. Q/K rows are in the interleaved-pair
/// RoPE order of Meta's checkpoints and llama2.c: rotation pairs are (2i, 2i+1) within each head.
struct LlamaModel {
  LlamaConfig config;
  std::map<std::string, FloatTensor> tensors;

  /// The named tensor; throws rankq::format_error naming it if the model has no such tensor.
  const FloatTensor& at(const std::string& name) const {
    const auto it = tensors.find(name);
    if (it == tensors.end()) throw format_error("rankq::io::LlamaModel: no tensor named '" + name + "'");
    return it->second;
  }
};

namespace detail {

/// Throws rankq::format_error (prefixed by `source`) unless the config describes a model these loaders can hold:
/// all sizes positive, dim divisible by n_heads, n_heads by n_kv_heads, an even head size, and every tensor's
/// element count representable (the whole model below 2^62 bytes).
inline void check_llama_config(const LlamaConfig& c, const std::string& source) {
  const auto bad = [&](const std::string& problem) { throw format_error(source + ": model config: " + problem); };
  const std::pair<const char*, int> fields[] = {{"dim", c.dim},         {"hidden_dim", c.hidden_dim},
                                                {"n_layers", c.n_layers}, {"n_heads", c.n_heads},
                                                {"n_kv_heads", c.n_kv_heads}, {"vocab_size", c.vocab_size},
                                                {"seq_len", c.seq_len}};
  for (const auto& [name, value] : fields)
    if (value <= 0) bad(std::string(name) + " = " + std::to_string(value) + ": must be positive");
  if (c.dim % c.n_heads != 0)
    bad("dim = " + std::to_string(c.dim) + " is not a multiple of n_heads = " + std::to_string(c.n_heads));
  if (c.n_heads % c.n_kv_heads != 0)
    bad("n_heads = " + std::to_string(c.n_heads) + " is not a multiple of n_kv_heads = " + std::to_string(c.n_kv_heads));
  if ((c.dim / c.n_heads) % 2 != 0) bad("head size dim / n_heads = " + std::to_string(c.dim / c.n_heads) + " is odd");
  // Every per-layer matrix has at most max(dim, hidden, vocab)^2 elements; bound the whole model by 2^60 floats.
  std::uint64_t total = 0, per_layer = 0, t = 0;
  const auto d = static_cast<std::uint64_t>(c.dim), h = static_cast<std::uint64_t>(c.hidden_dim);
  bool ok = mul_ok(d, d, t) && mul_ok(t, 4, per_layer) && mul_ok(d, h, t) && mul_ok(t, 3, t) && add_ok(per_layer, t, per_layer) &&
            add_ok(per_layer, 2 * d, per_layer) && mul_ok(per_layer, static_cast<std::uint64_t>(c.n_layers), total) &&
            mul_ok(d, static_cast<std::uint64_t>(c.vocab_size), t) && mul_ok(t, 2, t) && add_ok(total, t, total);
  if (!ok || total > (std::uint64_t{1} << 60)) bad("the model's size overflows (absurd dimensions)");
}

/// Number of floats in the tensors llama_tensor_shapes lists (not output.weight), for a config that passed
/// check_llama_config. Computed without building the list, so an absurd n_layers costs nothing.
inline std::uint64_t llama_weight_floats(const LlamaConfig& c) {
  const auto d = static_cast<std::uint64_t>(c.dim), h = static_cast<std::uint64_t>(c.hidden_dim);
  const auto kv = d * static_cast<std::uint64_t>(c.n_kv_heads) / static_cast<std::uint64_t>(c.n_heads);
  const std::uint64_t per_layer = 2 * d + 2 * d * d + 2 * kv * d + 3 * h * d;
  return static_cast<std::uint64_t>(c.vocab_size) * d + static_cast<std::uint64_t>(c.n_layers) * per_layer + d;
}

/// The tensors of a LLaMA model in llama2.c's file order (without output.weight), with their shapes.
inline std::vector<std::pair<std::string, std::vector<std::uint64_t>>> llama_tensor_shapes(const LlamaConfig& c) {
  const auto d = static_cast<std::uint64_t>(c.dim), h = static_cast<std::uint64_t>(c.hidden_dim);
  const auto kv = d * static_cast<std::uint64_t>(c.n_kv_heads) / static_cast<std::uint64_t>(c.n_heads);
  std::vector<std::pair<std::string, std::vector<std::uint64_t>>> out;
  out.push_back({"token_embd.weight", {static_cast<std::uint64_t>(c.vocab_size), d}});
  const std::pair<const char*, std::vector<std::uint64_t>> per_layer[] = {
      {"attn_norm", {d}},       {"attn_q", {d, d}},       {"attn_k", {kv, d}},     {"attn_v", {kv, d}},
      {"attn_output", {d, d}},  {"ffn_norm", {d}},        {"ffn_gate", {h, d}},    {"ffn_down", {d, h}},
      {"ffn_up", {h, d}}};
  for (const auto& [name, shape] : per_layer)  // llama2.c stores each kind for all layers before the next kind
    for (int l = 0; l < c.n_layers; ++l) out.push_back({"blk." + std::to_string(l) + "." + name + ".weight", shape});
  out.push_back({"output_norm.weight", {d}});
  return out;
}

}  // namespace detail
}  RANKQ_NAMESPACE_END  // namespace rankq::io
