// rankq/io/llama2c.hpp — reads llama2.c checkpoints (Karpathy's legacy "v0" layout) into a LlamaModel.
//
// Layout (little-endian): 7 int32 {dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len}, then
// float32 arrays, matrices [out][in] row-major, each kind for all layers before the next kind:
//   token_embedding[vocab][dim], rms_att[L][dim], wq[L][dim][dim], wk[L][kv_dim][dim], wv[L][kv_dim][dim],
//   wo[L][dim][dim], rms_ffn[L][dim], w1[L][hidden][dim], w2[L][dim][hidden], w3[L][hidden][dim], rms_final[dim],
//   freq_cis_real[seq_len][head_size/2], freq_cis_imag[seq_len][head_size/2] (unused, skipped),
//   and, only when vocab_size in the header is negative, wcls[vocab][dim] (a separate classifier).
// The file size must match the header exactly. Versioned exports (magic "ak42") are rejected.
#pragma once

#include "rankq/detail/abi.hpp"

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "rankq/io/detail/checked.hpp"
#include "rankq/io/file.hpp"
#include "rankq/io/llama_checkpoint.hpp"
#include "rankq/io/llama_model.hpp"
#include "rankq/io/tensor.hpp"

RANKQ_NAMESPACE_BEGIN namespace io {
namespace detail {

/// Checks the header and the file size and locates every tensor (views into `data`; nothing decoded).
inline LlamaCheckpoint llama2c_checkpoint(const std::uint8_t* data, std::size_t size, const std::string& source) {
  ByteReader in(data, size, source);
  if (size >= 4 && in.data()[0] == 0x32 && in.data()[1] == 0x34 && in.data()[2] == 0x6B && in.data()[3] == 0x61)
    in.fail("header", "starts with magic 'ak42' (a versioned llama2.c export): only the legacy v0 layout is supported");
  LlamaCheckpoint m;
  m.source = source;
  LlamaConfig& c = m.config;
  c.dim = in.i32("header dim");
  c.hidden_dim = in.i32("header hidden_dim");
  c.n_layers = in.i32("header n_layers");
  c.n_heads = in.i32("header n_heads");
  c.n_kv_heads = in.i32("header n_kv_heads");
  const std::int32_t vocab_field = in.i32("header vocab_size");
  c.seq_len = in.i32("header seq_len");
  if (vocab_field == std::numeric_limits<std::int32_t>::min()) in.fail("header vocab_size", "is INT32_MIN");
  const bool shared = vocab_field > 0;
  c.vocab_size = shared ? vocab_field : -vocab_field;
  check_llama_config(c, source);

  // Expected float count, overflow-checked (check_llama_config bounds the weights below 2^60, not seq_len).
  std::uint64_t floats = llama_weight_floats(c), n = 0;
  bool ok = true;
  const auto half_head = static_cast<std::uint64_t>(c.dim / c.n_heads / 2);
  const std::uint64_t freq = half_head * static_cast<std::uint64_t>(c.seq_len);  // < 2^62: both factors < 2^31
  ok = ok && add_ok(floats, 2 * freq, floats);
  const std::uint64_t wcls = static_cast<std::uint64_t>(c.vocab_size) * static_cast<std::uint64_t>(c.dim);
  if (!shared) ok = ok && add_ok(floats, wcls, floats);
  std::uint64_t bytes = 0;
  ok = ok && mul_ok(floats, 4, bytes) && add_ok(bytes, 28, bytes);
  const std::string cfg = "dim=" + std::to_string(c.dim) + " hidden_dim=" + std::to_string(c.hidden_dim) +
                          " n_layers=" + std::to_string(c.n_layers) + " n_heads=" + std::to_string(c.n_heads) +
                          " n_kv_heads=" + std::to_string(c.n_kv_heads) + " vocab_size=" + std::to_string(vocab_field) +
                          " seq_len=" + std::to_string(c.seq_len);
  if (!ok) in.fail("header", "sizes overflow (" + cfg + ")");
  if (bytes != size)
    in.fail("file size", (bytes > size ? "truncated: the header (" : "trailing data: the header (") + cfg + ") implies " +
                             std::to_string(bytes) + " bytes, the file has " + std::to_string(size));

  for (const auto& [name, shape] : llama_tensor_shapes(c)) {  // n_layers is now bounded by the file size
    product_ok(shape, ~std::uint64_t{0}, n);
    m.tensors.emplace(name, CheckpointTensor{DType::f32, shape, in.take(n * 4, name), static_cast<std::size_t>(n), 0});
  }
  in.skip(2 * freq * 4, "freq_cis_real/freq_cis_imag");
  if (shared) {
    m.tensors["output.weight"] = m.tensors.at("token_embd.weight");
  } else {
    const std::vector<std::uint64_t> shape{static_cast<std::uint64_t>(c.vocab_size), static_cast<std::uint64_t>(c.dim)};
    m.tensors.emplace("output.weight",
                      CheckpointTensor{DType::f32, shape, in.take(wcls * 4, "wcls (classifier)"), static_cast<std::size_t>(wcls), 0});
  }
  return m;
}

}  // namespace detail

/// Parses a llama2.c legacy checkpoint held in memory. Throws rankq::format_error naming the field on any
/// inconsistency (bad config, size not matching the header, versioned export).
inline LlamaModel parse_llama2c(const std::uint8_t* data, std::size_t size) {
  rankq::detail::require_non_null(data, size, "io::parse_llama2c", "data");
  return detail::llama2c_checkpoint(data, size, "llama2.c checkpoint").load_all();
}

/// Reads a llama2.c legacy checkpoint file. Throws io_error if it cannot be read, rankq::format_error if malformed.
inline LlamaModel read_llama2c(const std::string& path) {
  const MappedFile file(path);
  return detail::llama2c_checkpoint(file.data(), file.size(), "llama2.c checkpoint '" + path + "'").load_all();
}

/// Maps a llama2.c legacy checkpoint and checks it like read_llama2c; tensors are decoded only when loaded.
inline LlamaCheckpoint open_llama2c(const std::string& path) {
  auto file = std::make_shared<const MappedFile>(path);
  LlamaCheckpoint m = detail::llama2c_checkpoint(file->data(), file->size(), "llama2.c checkpoint '" + path + "'");
  m.owners.push_back(std::move(file));
  m.mapped = true;
  return m;
}

}  RANKQ_NAMESPACE_END  // namespace rankq::io
