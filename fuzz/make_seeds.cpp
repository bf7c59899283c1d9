// fuzz/make_seeds.cpp — writes small valid seed files for the fuzzers: make_seeds <dir> creates <dir>/gguf,
// <dir>/safetensors and <dir>/llama2c (tiny GGUF v1/v2/v3 files incl. a loadable llama model, safetensors with
// every dtype, llama2.c checkpoints with shared and separate classifiers) and <dir>/model_file (a tiny rankq
// quantized model file).
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "rankq/formats/half.hpp"
#include "rankq/io/safetensors.hpp"
#include "model_file_seed.hpp"

namespace {

using Bytes = std::vector<std::uint8_t>;

void put(Bytes& b, std::uint64_t v, int n) {
  for (int i = 0; i < n; ++i) b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

struct Gguf {
  std::uint32_t version;
  Bytes kv, infos, data;
  std::uint64_t n_kv = 0, n_tensors = 0;
  void len(Bytes& b, std::uint64_t n) const { put(b, n, version == 1 ? 4 : 8); }
  void str(Bytes& b, const std::string& s) const {
    len(b, s.size());
    b.insert(b.end(), s.begin(), s.end());
  }
  void key(const std::string& k, std::uint32_t type) {
    str(kv, k);
    put(kv, type, 4);
    ++n_kv;
  }
  void u32(const std::string& k, std::uint32_t v) {
    key(k, 4);
    put(kv, v, 4);
  }
  void f32(const std::string& k, float v) {
    key(k, 6);
    put(kv, rankq::float_bits(v), 4);
  }
  void string(const std::string& k, const std::string& v) {
    key(k, 8);
    str(kv, v);
  }
  void tensor(const std::string& name, const std::vector<std::uint64_t>& ne, std::uint32_t type, const Bytes& bytes) {
    str(infos, name);
    put(infos, ne.size(), 4);
    for (auto n : ne) put(infos, n, version == 1 ? 4 : 8);
    put(infos, type, 4);
    put(infos, data.size(), 8);
    data.insert(data.end(), bytes.begin(), bytes.end());
    data.resize((data.size() + 31) / 32 * 32, 0);
    ++n_tensors;
  }
  void f32_tensor(const std::string& name, std::uint64_t rows, std::uint64_t cols, float start) {
    Bytes b;
    for (std::uint64_t i = 0; i < rows * cols; ++i) put(b, rankq::float_bits(start + 0.01f * static_cast<float>(i)), 4);
    tensor(name, rows == 1 ? std::vector<std::uint64_t>{cols} : std::vector<std::uint64_t>{cols, rows}, 0, b);
  }
  Bytes build() const {
    Bytes b = {'G', 'G', 'U', 'F'};
    put(b, version, 4);
    len(b, n_tensors);
    len(b, n_kv);
    b.insert(b.end(), kv.begin(), kv.end());
    b.insert(b.end(), infos.begin(), infos.end());
    b.resize((b.size() + 31) / 32 * 32, 0);
    b.insert(b.end(), data.begin(), data.end());
    return b;
  }
};

Gguf value_zoo(std::uint32_t version) {
  Gguf g{version, {}, {}, {}};
  g.u32("general.alignment", 32);
  g.string("general.name", "zoo");
  g.f32("f", 0.5f);
  g.key("b", 7), put(g.kv, 1, 1);
  g.key("i64", 11), put(g.kv, 42, 8);
  g.key("f64", 12), put(g.kv, 0x3FF0000000000000ull, 8);
  g.key("strs", 9), put(g.kv, 8, 4), g.len(g.kv, 2), g.str(g.kv, "x"), g.str(g.kv, "yz");
  g.key("nested", 9), put(g.kv, 9, 4), g.len(g.kv, 1), put(g.kv, 1, 4), g.len(g.kv, 2), put(g.kv, 0xFFFF, 2);
  g.f32_tensor("a", 2, 3, 1.f);
  g.tensor("h", {2}, 1, {0x00, 0x3C, 0x00, 0xC0});
  g.tensor("bf", {2}, 30, {0x80, 0x3F, 0x40, 0x40});
  g.tensor("q", {32}, 2, Bytes(18, 7));
  g.tensor("i", {2}, 26, Bytes(8, 1));
  return g;
}

Gguf tiny_llama(std::uint32_t version) {
  Gguf g{version, {}, {}, {}};
  g.string("general.architecture", "llama");
  g.u32("llama.embedding_length", 4);
  g.u32("llama.feed_forward_length", 6);
  g.u32("llama.block_count", 1);
  g.u32("llama.attention.head_count", 2);
  g.u32("llama.attention.head_count_kv", 1);
  g.u32("llama.context_length", 8);
  g.u32("llama.rope.dimension_count", 2);
  g.f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  g.key("tokenizer.ggml.tokens", 9), put(g.kv, 8, 4), g.len(g.kv, 3);
  for (const char* t : {"<unk>", "<s>", "</s>"}) g.str(g.kv, t);
  g.key("tokenizer.ggml.scores", 9), put(g.kv, 6, 4), g.len(g.kv, 3);
  for (int i = 0; i < 3; ++i) put(g.kv, rankq::float_bits(-static_cast<float>(i)), 4);
  g.u32("tokenizer.ggml.bos_token_id", 1);
  g.u32("tokenizer.ggml.eos_token_id", 2);
  g.f32_tensor("token_embd.weight", 3, 4, 0.f);
  g.f32_tensor("blk.0.attn_norm.weight", 1, 4, 1.f);
  g.f32_tensor("blk.0.attn_q.weight", 4, 4, 2.f);
  g.f32_tensor("blk.0.attn_k.weight", 2, 4, 3.f);
  g.f32_tensor("blk.0.attn_v.weight", 2, 4, 4.f);
  g.f32_tensor("blk.0.attn_output.weight", 4, 4, 5.f);
  g.f32_tensor("blk.0.ffn_norm.weight", 1, 4, 6.f);
  g.f32_tensor("blk.0.ffn_gate.weight", 6, 4, 7.f);
  g.f32_tensor("blk.0.ffn_down.weight", 4, 6, 8.f);
  g.f32_tensor("blk.0.ffn_up.weight", 6, 4, 9.f);
  g.f32_tensor("output_norm.weight", 1, 4, 10.f);
  return g;
}

Bytes llama2c(bool shared) {
  Bytes b;
  const int dim = 4, hidden = 6, layers = 1, heads = 2, kv_heads = 1, vocab = 3, seq = 2;
  for (int v : {dim, hidden, layers, heads, kv_heads, shared ? vocab : -vocab, seq}) put(b, static_cast<std::uint32_t>(v), 4);
  const int floats = vocab * dim + layers * (2 * dim + 2 * dim * dim + 2 * 2 * dim + 3 * hidden * dim) + dim + seq * 2 +
                     (shared ? 0 : vocab * dim);
  for (int i = 0; i < floats; ++i) put(b, rankq::float_bits(0.125f * static_cast<float>(i)), 4);
  return b;
}

void write(const std::filesystem::path& p, const Bytes& b) {
  std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: make_seeds <dir>\n";
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  for (const char* sub : {"gguf", "safetensors", "llama2c", "model_file"}) std::filesystem::create_directories(dir / sub);
  for (std::uint32_t v : {1u, 2u, 3u}) {
    write(dir / "gguf" / ("zoo_v" + std::to_string(v) + ".gguf"), value_zoo(v).build());
    write(dir / "gguf" / ("llama_v" + std::to_string(v) + ".gguf"), tiny_llama(v).build());
  }
  using rankq::io::DType;
  using rankq::io::RawTensor;
  std::map<std::string, RawTensor> all;
  std::uint8_t seed = 0;
  for (DType t : rankq::io::kAllDTypes) {
    RawTensor r{t, {2, 1}, Bytes(2 * rankq::io::dtype_size(t), seed++)};
    all[rankq::io::dtype_name(t)] = r;
  }
  write(dir / "safetensors" / "all.safetensors", rankq::io::serialize_safetensors(all, {{"format", "pt"}}));
  write(dir / "safetensors" / "one.safetensors",
        rankq::io::serialize_safetensors({{"w", RawTensor{DType::f16, {2}, {0, 0x3C, 0, 0x40}}}}));
  write(dir / "safetensors" / "empty.safetensors", rankq::io::serialize_safetensors({}, {{"k", "v"}}));
  write(dir / "llama2c" / "shared.bin", llama2c(true));
  write(dir / "llama2c" / "separate.bin", llama2c(false));
  write(dir / "model_file" / "tiny.safetensors", seed::quantized_model_file());
  return 0;
}
