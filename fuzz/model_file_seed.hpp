// fuzz/model_file_seed.hpp — a tiny valid rankq quantized model file (docs/io.md, "Quantized model file") for the
// fuzz_model_file corpus: dim 16, 1 layer, uniform (RTN), MXINT and fp32 projections, per-tensor CRC-32C. Written
// with the library's put_uniform / put_mxint only (make_seeds is built without examples/ and Eigen).
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "rankq/io/detail/crc32c.hpp"
#include "rankq/io/quantized_tensors.hpp"
#include "rankq/io/safetensors.hpp"

namespace seed {

inline rankq::io::RawTensor f32(std::vector<std::uint64_t> shape, float start) {
  std::size_t n = 1;
  for (auto d : shape) n *= d;
  rankq::io::RawTensor t{rankq::io::DType::f32, shape, std::vector<std::uint8_t>(n * 4)};
  for (std::size_t i = 0; i < n; ++i) {
    const float v = start + 0.05f * std::sin(static_cast<float>(i));
    std::memcpy(t.bytes.data() + 4 * i, &v, 4);
  }
  return t;
}

inline std::vector<std::uint8_t> quantized_model_file() {
  using namespace rankq;
  io::TensorMap t;
  io::MetadataMap m;
  const std::uint64_t dim = 16, hidden = 32, kv = 8, vocab = 8;
  t["token_embd.weight"] = f32({vocab, dim}, 0.0f);
  t["output_norm.weight"] = f32({dim}, 1.0f);
  t["blk.0.attn_norm.weight"] = f32({dim}, 1.0f);
  t["blk.0.ffn_norm.weight"] = f32({dim}, 1.0f);
  const std::string per_token = R"({"kind":"per_token","block":16,"semantics":"lqer"})";
  const std::string mx8 = R"({"kind":"mxint8","block":16,"semantics":"lqer"})";
  const auto values = [](std::size_t rows, std::size_t cols) {
    std::vector<float> v(rows * cols);
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = 0.1f * std::cos(static_cast<float>(i) * 0.7f);
    return v;
  };
  auto uniform = [&](const std::string& name, std::size_t rows, std::size_t cols) {
    const auto v = values(rows, cols);
    io::put_uniform(t, m, name, quantize_uniform(MatrixView<const float>(v.data(), rows, cols),
                                                 UniformFormat{4, 16, Symmetry::asymmetric, ScaleType::f16}));
    m[name + ":activation"] = per_token;
  };
  auto mxint = [&](const std::string& name, std::size_t rows, std::size_t cols) {
    const auto v = values(rows, cols);
    io::put_mxint(t, m, name, quantize_mxint(MatrixView<const float>(v.data(), rows, cols), MxFormat{4, 16, MxSemantics::lqer}));
    m[name + ":activation"] = mx8;
  };
  uniform("blk.0.attn_q.weight", dim, dim);
  mxint("blk.0.attn_k.weight", kv, dim);
  t["blk.0.attn_v.weight"] = f32({kv, dim}, 0.0f);
  uniform("blk.0.attn_output.weight", dim, dim);
  mxint("blk.0.ffn_gate.weight", hidden, dim);
  uniform("blk.0.ffn_up.weight", hidden, dim);
  t["blk.0.ffn_down.weight"] = f32({dim, hidden}, 0.0f);
  m["rankq.format"] = "rankq-quantized-llama/2";
  m["rankq.version"] = "seed";
  m["rankq.method"] = "seed";
  m["rankq.config"] = R"({"dim":16,"hidden_dim":32,"n_layers":1,"n_heads":2,"n_kv_heads":1,"vocab_size":8,"seq_len":16,)"
                      R"("norm_eps":1e-5,"rope_theta":10000.0})";
  std::string sums = "{";
  for (const auto& [name, raw] : t)
    sums += (sums.size() > 1 ? "," : "") + ("\"" + name + "\":") + std::to_string(io::detail::crc32c(raw.bytes.data(), raw.bytes.size()));
  m["rankq.checksums"] = sums + "}";
  return io::serialize_safetensors(t, m);
}

}  // namespace seed
