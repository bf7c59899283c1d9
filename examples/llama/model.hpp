// llama/model.hpp — the LLaMA forward pass (prefill and KV-cached decode) over pluggable Linear layers.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "linear.hpp"
#include "ops.hpp"
#include "rankq/error.hpp"
#include "rankq/io/llama_model.hpp"

namespace rankq::llama {

/// Called with the input activations of every linear layer, just before the layer runs: `layer_name` is the
/// GGUF tensor name, x is M x K row-major (M = tokens in the call, K = in_features). attn_q/k/v share one
/// input and so do ffn_gate/ffn_up; the observer is still called once per layer name. The pointer is valid
/// only during the call.
using ActivationObserver =
    std::function<void(const std::string& layer_name, const float* x, std::size_t M, std::size_t K)>;

/// The 7 projections of a block, in the order the forward pass runs them (GGUF suffixes).
inline const std::vector<std::string>& projection_suffixes() {
  static const std::vector<std::string> suffixes = {"attn_q",   "attn_k", "attn_v",  "attn_output",
                                                    "ffn_gate", "ffn_up", "ffn_down"};
  return suffixes;
}

/// "blk.<layer>.<suffix>.weight".
inline std::string block_tensor_name(std::size_t layer, const std::string& suffix) {
  return "blk." + std::to_string(layer) + "." + suffix + ".weight";
}

/// Keys and values of every layer for positions 0..capacity-1 ([layer][pos][kv_dim]).
class KvCache {
 public:
  KvCache(std::size_t n_layers, std::size_t capacity, std::size_t kv_dim)
      : capacity_(capacity), kv_dim_(kv_dim), keys_(n_layers * capacity * kv_dim), values_(keys_.size()) {}
  std::size_t capacity() const { return capacity_; }
  float* keys(std::size_t layer) { return keys_.data() + layer * capacity_ * kv_dim_; }
  float* values(std::size_t layer) { return values_.data() + layer * capacity_ * kv_dim_; }

 private:
  std::size_t capacity_, kv_dim_;
  std::vector<float> keys_, values_;
};

/// An immutable LLaMA model: fp32 embedding, norms and classifier; the 7 projections per block built by a
/// LinearFactory. All forward methods are const and thread-safe (scratch is per call, the KV cache is the
/// caller's), provided the Linear implementations honour their contract.
class Model {
 public:
  explicit Model(const rankq::io::LlamaModel& weights, const LinearFactory& make_linear = dense_linear_factory())
      : config_(weights.config) {
    validate_config();
    const auto& c = config_;
    const std::size_t dim = size(c.dim), vocab = size(c.vocab_size);
    embedding_ = vector_tensor(weights, "token_embd.weight", vocab * dim, {vocab, dim});
    const std::string classifier_name = weights.tensors.count("output.weight") ? "output.weight" : "token_embd.weight";
    const auto& classifier = find_tensor(weights, classifier_name);
    expect_shape(classifier, classifier_name, {vocab, dim});
    classifier_ = DenseLinear::from_tensor(classifier_name, classifier);
    final_norm_ = vector_tensor(weights, "output_norm.weight", dim, {dim});
    build_blocks(weights, make_linear, 0, size(c.n_layers));
  }

  /// A slice of a model: only blocks [first_block, first_block + block_count) of `weights.config` (their names
  /// keep the global block numbers; `weights` needs only their tensors), without embedding and classifier. It runs
  /// forward_blocks only: a pipeline that holds one block at a time (rankq-quantize's layer-by-layer
  /// calibration, docs/engine.md) chains slices over the residual stream and gets the whole model's activations bit
  /// for bit, since every block does exactly the arithmetic it does inside the whole model.
  Model(const rankq::io::LlamaModel& weights, const LinearFactory& make_linear, std::size_t first_block, std::size_t block_count)
      : config_(weights.config) {
    validate_config();
    if (block_count == 0 || first_block + block_count > size(config_.n_layers))
      rankq::throw_invalid_argument("llama::Model", "first_block",
                                    "+ block_count = " + std::to_string(first_block) + " + " + std::to_string(block_count) +
                                        " is not a non-empty range of the " + std::to_string(config_.n_layers) + " blocks");
    build_blocks(weights, make_linear, first_block, block_count);
  }

 private:
  void build_blocks(const rankq::io::LlamaModel& weights, const LinearFactory& make_linear, std::size_t first, std::size_t count) {
    const auto& c = config_;
    const std::size_t dim = size(c.dim), kv_dim = shape_.kv_dim(), hidden = size(c.hidden_dim);
    const std::map<std::string, std::pair<std::size_t, std::size_t>> shapes = {
        {"attn_q", {dim, dim}},      {"attn_k", {kv_dim, dim}}, {"attn_v", {kv_dim, dim}},  {"attn_output", {dim, dim}},
        {"ffn_gate", {hidden, dim}}, {"ffn_up", {hidden, dim}}, {"ffn_down", {dim, hidden}}};
    for (std::size_t l = first; l < first + count; ++l) {
      Block block;
      block.attn_norm = vector_tensor(weights, block_tensor_name(l, "attn_norm"), dim, {dim});
      block.ffn_norm = vector_tensor(weights, block_tensor_name(l, "ffn_norm"), dim, {dim});
      for (std::size_t p = 0; p < projection_suffixes().size(); ++p) {
        const std::string name = block_tensor_name(l, projection_suffixes()[p]);
        const auto [out, in] = shapes.at(projection_suffixes()[p]);
        const auto& tensor = find_tensor(weights, name);
        expect_shape(tensor, name, {out, in}, /*placeholder_ok=*/true);
        block.names[p] = name;
        block.layers[p] = make_linear(name, tensor);
        if (!block.layers[p])
          throw rankq::invalid_argument("rankq::llama::Model: the layer factory returned null for '" + name + "'");
        if (block.layers[p]->out_features() != out || block.layers[p]->in_features() != in)
          throw rankq::invalid_argument("rankq::llama::Model: the layer factory built '" + name + "' as " +
                                        std::to_string(block.layers[p]->out_features()) + "x" +
                                        std::to_string(block.layers[p]->in_features()) + ", expected " +
                                        std::to_string(out) + "x" + std::to_string(in));
      }
      blocks_.push_back(std::move(block));
    }
  }

 public:
  const rankq::io::LlamaConfig& config() const { return config_; }
  std::size_t vocab_size() const { return size(config_.vocab_size); }
  std::size_t max_positions() const { return size(config_.seq_len); }

  /// A KV cache for `positions` positions (0 = all seq_len positions; more than seq_len is capped at seq_len).
  KvCache make_cache(std::size_t positions = 0) const {
    const std::size_t capacity = positions == 0 ? max_positions() : std::min(positions, max_positions());
    return KvCache(blocks_.size(), capacity, shape_.kv_dim());
  }

  /// Prefill: runs tokens[0..n) at positions 0..n-1 with causal attention, every linear layer called once
  /// with M = n. Returns the logits of every position, n x vocab_size row-major (row i predicts token i+1).
  std::vector<float> forward_sequence(const std::vector<int>& tokens,
                                      const ActivationObserver& observer = nullptr) const {
    if (tokens.empty()) rankq::throw_invalid_argument("llama::Model::forward_sequence", "tokens", "is empty");
    KvCache cache(blocks_.size(), tokens.size(), shape_.kv_dim());
    std::vector<float> logits(tokens.size() * vocab_size());
    forward_chunk(tokens.data(), tokens.size(), 0, cache, logits.data(), observer);
    return logits;
  }

  /// The general step: runs tokens[0..n) at positions start_pos..start_pos+n-1, writing their keys/values to
  /// `cache` and attending to cache positions 0..start_pos+n-1 (which must already hold this sequence's
  /// earlier positions). logits: n x vocab_size.
  void forward_chunk(const int* tokens, std::size_t n, std::size_t start_pos, KvCache& cache, float* logits,
                     const ActivationObserver& observer = nullptr) const {
    const char* fn = "llama::Model::forward_chunk";
    rankq::require_positive(n, fn, "n");
    rankq::require_non_null(tokens, n, fn, "tokens");
    rankq::require_non_null(logits, n, fn, "logits");
    if (start_pos + n > std::min(max_positions(), cache.capacity()))
      rankq::throw_invalid_argument(fn, "start_pos",
                                    "+ n = " + std::to_string(start_pos + n) + " exceeds the context of " +
                                        std::to_string(std::min(max_positions(), cache.capacity())) + " positions");
    if (!classifier_) rankq::throw_invalid_argument(fn, "this", "is a slice of blocks (no embedding or classifier): use forward_blocks");
    const std::size_t dim = size(config_.dim);
    std::vector<float> x(n * dim), normed(n * dim);
    for (std::size_t i = 0; i < n; ++i) {
      if (tokens[i] < 0 || static_cast<std::size_t>(tokens[i]) >= vocab_size())
        rankq::throw_invalid_argument(fn, "tokens",
                                      "[" + std::to_string(i) + "] = " + std::to_string(tokens[i]) +
                                          " is outside the vocabulary of " + std::to_string(vocab_size()));
      std::copy_n(embedding_.data() + static_cast<std::size_t>(tokens[i]) * dim, dim, x.data() + i * dim);
    }
    forward_blocks(x.data(), n, start_pos, cache, observer);
    ops::rms_norm(x.data(), final_norm_.data(), n, dim, config_.norm_eps, normed.data());
    classifier_->forward(normed.data(), n, logits);
  }

  /// Runs this model's blocks, in order, on the residual stream x (n x dim, updated in place) at positions
  /// start_pos..start_pos+n-1, with cache layer i holding this model's i-th block (as forward_chunk does).
  void forward_blocks(float* x_stream, std::size_t n, std::size_t start_pos, KvCache& cache,
                      const ActivationObserver& observer = nullptr) const {
    const char* fn = "llama::Model::forward_blocks";
    rankq::require_positive(n, fn, "n");
    rankq::require_non_null(x_stream, n, fn, "x");
    if (start_pos + n > std::min(max_positions(), cache.capacity()))
      rankq::throw_invalid_argument(fn, "start_pos",
                                    "+ n = " + std::to_string(start_pos + n) + " exceeds the context of " +
                                        std::to_string(std::min(max_positions(), cache.capacity())) + " positions");
    const std::size_t dim = size(config_.dim), kv_dim = shape_.kv_dim(), hidden = size(config_.hidden_dim);
    float* x = x_stream;
    std::vector<float> normed(n * dim), q(n * dim), k(n * kv_dim), v(n * kv_dim), attended(n * dim), delta(n * dim),
        gate(n * hidden), up(n * hidden), scores(start_pos + n);
    const ops::RopeTable rope(start_pos, n, shape_.head_size, config_.rope_theta);  // this call's positions only
    auto run = [&](const Block& block, std::size_t p, const float* input, float* output) {
      if (observer) observer(block.names[p], input, n, block.layers[p]->in_features());
      block.layers[p]->forward(input, n, output);
    };
    for (std::size_t l = 0; l < blocks_.size(); ++l) {
      const Block& block = blocks_[l];
      ops::rms_norm(x, block.attn_norm.data(), n, dim, config_.norm_eps, normed.data());
      run(block, kQ, normed.data(), q.data());
      run(block, kK, normed.data(), k.data());
      run(block, kV, normed.data(), v.data());
      float* keys = cache.keys(l);
      float* values = cache.values(l);
      for (std::size_t i = 0; i < n; ++i) {
        rope.apply(q.data() + i * dim, dim, start_pos + i);
        rope.apply(k.data() + i * kv_dim, kv_dim, start_pos + i);
        std::copy_n(k.data() + i * kv_dim, kv_dim, keys + (start_pos + i) * kv_dim);
        std::copy_n(v.data() + i * kv_dim, kv_dim, values + (start_pos + i) * kv_dim);
      }
      for (std::size_t i = 0; i < n; ++i)
        ops::attend(q.data() + i * dim, start_pos + i, keys, values, shape_, scores.data(), attended.data() + i * dim);
      run(block, kO, attended.data(), delta.data());
      ops::add_in_place(x, delta.data(), n * dim);
      ops::rms_norm(x, block.ffn_norm.data(), n, dim, config_.norm_eps, normed.data());
      run(block, kGate, normed.data(), gate.data());
      run(block, kUp, normed.data(), up.data());
      ops::swiglu(gate.data(), up.data(), n * hidden);
      run(block, kDown, gate.data(), delta.data());
      ops::add_in_place(x, delta.data(), n * dim);
    }
  }

  /// The Linear built for a projection tensor ("blk.0.attn_q.weight"); throws if there is none.
  const Linear& projection(const std::string& tensor_name) const {
    for (const auto& block : blocks_)
      for (std::size_t p = 0; p < kProjections; ++p)
        if (block.names[p] == tensor_name) return *block.layers[p];
    rankq::throw_invalid_argument("llama::Model::projection", "tensor_name",
                                  "'" + tensor_name + "' is not a projection");
  }

  /// All projection tensor names, block by block in forward order.
  std::vector<std::string> projection_names() const {
    std::vector<std::string> names;
    for (const auto& block : blocks_) names.insert(names.end(), block.names.begin(), block.names.end());
    return names;
  }

  /// Bits per weight over all projections, weighted by their sizes (embedding and classifier excluded).
  double projection_bits_per_weight() const {
    double bits = 0.0, weights = 0.0;
    for (const auto& block : blocks_)
      for (const auto& layer : block.layers) {
        const double count = static_cast<double>(layer->in_features() * layer->out_features());
        bits += layer->bits_per_weight() * count;
        weights += count;
      }
    return bits / weights;
  }

 private:
  enum Projection : std::size_t { kQ, kK, kV, kO, kGate, kUp, kDown, kProjections };
  struct Block {
    std::vector<float> attn_norm, ffn_norm;
    std::array<std::string, kProjections> names;
    std::array<std::unique_ptr<Linear>, kProjections> layers;
  };

  static std::size_t size(int value) { return static_cast<std::size_t>(value); }

  void validate_config() {
    const auto& c = config_;
    const auto fail = [](const std::string& problem) {
      throw rankq::invalid_argument("rankq::llama::Model: argument 'weights.config' " + problem);
    };
    if (c.dim <= 0 || c.hidden_dim <= 0 || c.n_layers <= 0 || c.n_heads <= 0 || c.n_kv_heads <= 0 ||
        c.vocab_size <= 0 || c.seq_len <= 0)
      fail("has a non-positive size (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len)");
    if (c.dim % c.n_heads != 0 || (c.dim / c.n_heads) % 2 != 0)
      fail("has dim = " + std::to_string(c.dim) +
           " not an even head size times n_heads = " + std::to_string(c.n_heads));
    if (c.n_heads % c.n_kv_heads != 0)
      fail("has n_heads = " + std::to_string(c.n_heads) +
           " not a multiple of n_kv_heads = " + std::to_string(c.n_kv_heads));
    if (!(c.norm_eps > 0.0f) || !(c.rope_theta > 0.0f)) fail("has a non-positive norm_eps or rope_theta");
    shape_ = {size(c.n_heads), size(c.n_kv_heads), size(c.dim / c.n_heads)};
  }

  static const rankq::io::FloatTensor& find_tensor(const rankq::io::LlamaModel& weights, const std::string& name) {
    auto it = weights.tensors.find(name);
    if (it == weights.tensors.end())
      throw rankq::invalid_argument("rankq::llama::Model: argument 'weights' has no tensor '" + name + "'");
    return it->second;
  }

  /// placeholder_ok: a projection may have its shape and no values (its layer comes from elsewhere, e.g. a
  /// quantized model file; the factory then ignores the tensor's data).
  static void expect_shape(const rankq::io::FloatTensor& t, const std::string& name,
                           const std::vector<std::size_t>& shape, bool placeholder_ok = false) {
    bool ok = t.shape.size() == shape.size();
    for (std::size_t i = 0; ok && i < shape.size(); ++i) ok = t.shape[i] == shape[i];
    std::size_t count = 1;
    for (auto d : shape) count *= d;
    if (!ok || (t.data.size() != count && !(placeholder_ok && t.data.empty()))) {
      std::string got, want;
      for (auto d : t.shape) got += (got.empty() ? "" : "x") + std::to_string(d);
      for (auto d : shape) want += (want.empty() ? "" : "x") + std::to_string(d);
      throw rankq::invalid_argument("rankq::llama::Model: tensor '" + name + "' has shape [" + got + "] with " +
                                    std::to_string(t.data.size()) + " values, expected [" + want + "]");
    }
  }

  static std::vector<float> vector_tensor(const rankq::io::LlamaModel& weights, const std::string& name,
                                          std::size_t count, const std::vector<std::size_t>& shape) {
    const auto& t = find_tensor(weights, name);
    expect_shape(t, name, shape);
    for (std::size_t i = 0; i < count; ++i)
      if (!std::isfinite(t.data[i]))
        throw rankq::invalid_argument("rankq::llama::Model: tensor '" + name + "' has a non-finite value at index " +
                                      std::to_string(i));
    return t.data;
  }

  rankq::io::LlamaConfig config_;
  ops::AttentionShape shape_{};
  std::vector<float> embedding_, final_norm_;
  std::unique_ptr<DenseLinear> classifier_;
  std::vector<Block> blocks_;
};

/// Token-by-token decoding with a KV cache (what greedy generation uses). Not thread-safe: one session per
/// thread; many sessions may share one Model.
class DecodeSession {
 public:
  /// `positions`: how many positions the session may run (0 = the model's seq_len); the KV cache is sized by it.
  explicit DecodeSession(const Model& model, std::size_t positions = 0)
      : model_(&model), cache_(model.make_cache(positions)), logits_(model.vocab_size()) {}

  /// Runs `token` at position `pos` and returns the logits predicting position pos + 1 (valid until the next
  /// call). Positions 0..pos-1 must have been run before in this session; running an earlier position again
  /// discards everything after it.
  const std::vector<float>& forward_token(int token, std::size_t pos) {
    if (pos > positions_)
      rankq::throw_invalid_argument("llama::DecodeSession::forward_token", "pos",
                                    "= " + std::to_string(pos) + ": only positions 0.." + std::to_string(positions_) +
                                        " can be run next (earlier positions are not in the cache)");
    model_->forward_chunk(&token, 1, pos, cache_, logits_.data());
    positions_ = pos + 1;
    return logits_;
  }

  /// Number of positions currently in the cache.
  std::size_t positions() const { return positions_; }
  void reset() { positions_ = 0; }

 private:
  const Model* model_;
  KvCache cache_;
  std::vector<float> logits_;
  std::size_t positions_ = 0;
};

}  // namespace rankq::llama
