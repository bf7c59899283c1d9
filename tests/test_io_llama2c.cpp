// Tests for rankq/io/llama2c.hpp (and LlamaModel in rankq/io/llama_model.hpp): the real stories260K checkpoint,
// identical tensors from the GGUF conversion, synthetic shared/separate-classifier files, and corrupted inputs.
#include "rankq/io/llama2c.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "rankq/io/gguf.hpp"
#include "test_data.hpp"
#include "test_util.hpp"

namespace {

using rankq::io::LlamaModel;
using rankq_test::data_path;

using test::expect_format_error;


float f32_at(const std::vector<std::uint8_t>& b, std::size_t offset) {
  float f;
  std::memcpy(&f, b.data() + offset, 4);
  return f;
}

TEST(IoLlama2c, Stories260KConfigAndTensors) {
  RANKQ_REQUIRE_DATA("stories260K.bin");
  const LlamaModel m = rankq::io::read_llama2c(data_path("stories260K.bin"));
  const auto& c = m.config;
  EXPECT_EQ(c.dim, 64);
  EXPECT_EQ(c.hidden_dim, 172);
  EXPECT_EQ(c.n_layers, 5);
  EXPECT_EQ(c.n_heads, 8);
  EXPECT_EQ(c.n_kv_heads, 4);
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_EQ(c.seq_len, 512);
  EXPECT_EQ(c.norm_eps, 1e-5f);
  EXPECT_EQ(c.rope_theta, 10000.f);
  EXPECT_EQ(m.tensors.size(), 5u * 9u + 3u);
  using Shape = std::vector<std::uint64_t>;
  EXPECT_EQ(m.at("token_embd.weight").shape, (Shape{512, 64}));
  EXPECT_EQ(m.at("blk.4.attn_q.weight").shape, (Shape{64, 64}));
  EXPECT_EQ(m.at("blk.0.attn_k.weight").shape, (Shape{32, 64}));
  EXPECT_EQ(m.at("blk.2.attn_v.weight").shape, (Shape{32, 64}));
  EXPECT_EQ(m.at("blk.1.ffn_gate.weight").shape, (Shape{172, 64}));
  EXPECT_EQ(m.at("blk.1.ffn_down.weight").shape, (Shape{64, 172}));
  EXPECT_EQ(m.at("blk.3.ffn_up.weight").shape, (Shape{172, 64}));
  EXPECT_EQ(m.at("blk.3.ffn_norm.weight").shape, (Shape{64}));
  EXPECT_EQ(m.at("output_norm.weight").shape, (Shape{64}));
  for (const auto& [name, t] : m.tensors) {
    std::uint64_t n = 1;
    for (auto d : t.shape) n *= d;
    EXPECT_EQ(t.data.size(), n) << name;
  }
  EXPECT_EQ(m.at("output.weight").data, m.at("token_embd.weight").data);  // shared classifier
  expect_format_error([&] { m.at("blk.5.attn_q.weight"); }, "blk.5.attn_q.weight");

  // Spot checks against the raw bytes, offsets worked out from the README's layout.
  const auto raw = rankq::io::read_file_bytes(data_path("stories260K.bin"));
  const std::size_t emb = 512 * 64, rms = 5 * 64, wq = 5 * 64 * 64, kv = 5 * 32 * 64;
  EXPECT_EQ(m.at("token_embd.weight").data[0], f32_at(raw, 28));
  EXPECT_EQ(m.at("token_embd.weight").data[511 * 64 + 63], f32_at(raw, 28 + 4 * (emb - 1)));
  EXPECT_EQ(m.at("blk.0.attn_norm.weight").data[5], f32_at(raw, 28 + 4 * (emb + 5)));
  EXPECT_EQ(m.at("blk.2.attn_q.weight").data[3 * 64 + 7], f32_at(raw, 28 + 4 * (emb + rms + 2 * 64 * 64 + 3 * 64 + 7)));
  EXPECT_EQ(m.at("blk.1.attn_v.weight").data[31 * 64], f32_at(raw, 28 + 4 * (emb + rms + wq + kv + 32 * 64 + 31 * 64)));
  const std::size_t rms_final = 260032 - 64;  // 260,032 weight floats, then freq_cis
  EXPECT_EQ(m.at("output_norm.weight").data[63], f32_at(raw, 28 + 4 * (rms_final + 63)));
  EXPECT_EQ(m.at("blk.4.ffn_up.weight").data.back(), f32_at(raw, 28 + 4 * (rms_final - 1)));
}

TEST(IoLlama2c, IdenticalToGgufConversionBitForBit) {
  RANKQ_REQUIRE_DATA("stories260K.bin", "tinyllamas-stories-260k-f32.gguf");
  const LlamaModel a = rankq::io::read_llama2c(data_path("stories260K.bin"));
  const LlamaModel b = rankq::io::load_llama_gguf(rankq::io::read_gguf(data_path("tinyllamas-stories-260k-f32.gguf")));
  EXPECT_EQ(a.config.dim, b.config.dim);
  EXPECT_EQ(a.config.hidden_dim, b.config.hidden_dim);
  EXPECT_EQ(a.config.n_layers, b.config.n_layers);
  EXPECT_EQ(a.config.n_heads, b.config.n_heads);
  EXPECT_EQ(a.config.n_kv_heads, b.config.n_kv_heads);
  EXPECT_EQ(a.config.vocab_size, b.config.vocab_size);
  EXPECT_EQ(a.config.seq_len, b.config.seq_len);
  EXPECT_EQ(a.config.norm_eps, b.config.norm_eps);
  EXPECT_EQ(a.config.rope_theta, b.config.rope_theta);
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (const auto& [name, t] : a.tensors) {
    const auto& u = b.at(name);
    ASSERT_EQ(t.shape, u.shape) << name;
    ASSERT_EQ(t.data.size(), u.data.size()) << name;
    EXPECT_EQ(std::memcmp(t.data.data(), u.data.data(), 4 * t.data.size()), 0) << name << " differs";
  }
}

/// A synthetic checkpoint: value i of the float section is 0.25 * i - 3 (distinct, exact in float).
struct Tiny {
  int dim = 8, hidden = 12, layers = 2, heads = 2, kv_heads = 1, vocab = 5, seq = 3;
  bool shared = true;
  std::vector<std::uint8_t> bytes() const {
    std::vector<std::uint8_t> b;
    const auto put32 = [&](std::uint32_t u) {
      for (int i = 0; i < 4; ++i) b.push_back(static_cast<std::uint8_t>(u >> (8 * i)));
    };
    for (int v : {dim, hidden, layers, heads, kv_heads, shared ? vocab : -vocab, seq}) put32(static_cast<std::uint32_t>(v));
    for (std::size_t i = 0; i < floats(); ++i) put32(rankq::float_bits(value(i)));
    return b;
  }
  static float value(std::size_t i) { return 0.25f * static_cast<float>(i) - 3.f; }
  std::size_t kv() const { return static_cast<std::size_t>(dim * kv_heads / heads); }
  std::size_t floats() const {
    const std::size_t d = dim, h = hidden, L = layers;
    return vocab * d + L * (2 * d + 2 * d * d + 2 * kv() * d + 3 * h * d) + d + seq * (d / heads) + (shared ? 0 : vocab * d);
  }
};

TEST(IoLlama2c, SyntheticLayoutSharedAndSeparateClassifier) {
  for (bool shared : {true, false}) {
    Tiny t;
    t.shared = shared;
    const auto b = t.bytes();
    const LlamaModel m = rankq::io::parse_llama2c(b.data(), b.size());
    EXPECT_EQ(m.config.vocab_size, 5);
    EXPECT_EQ(m.config.n_kv_heads, 1);
    // Walk the file order independently of the loader and check every value.
    const std::size_t d = 8, h = 12, kv = t.kv();
    std::size_t i = 0;
    const auto expect_run = [&](const std::string& name, std::size_t count) {
      const auto& data = m.at(name).data;
      ASSERT_EQ(data.size(), count) << name;
      for (std::size_t k = 0; k < count; ++k, ++i) ASSERT_EQ(data[k], Tiny::value(i)) << name << "[" << k << "]";
    };
    expect_run("token_embd.weight", 5 * d);
    const std::pair<const char*, std::size_t> kinds[] = {{"attn_norm", d}, {"attn_q", d * d}, {"attn_k", kv * d},
                                                         {"attn_v", kv * d}, {"attn_output", d * d}, {"ffn_norm", d},
                                                         {"ffn_gate", h * d}, {"ffn_down", d * h}, {"ffn_up", h * d}};
    for (const auto& [kind, count] : kinds)
      for (int l = 0; l < 2; ++l) expect_run("blk." + std::to_string(l) + "." + kind + ".weight", count);
    expect_run("output_norm.weight", d);
    i += 2 * 3 * (d / 2 / 2);  // freq_cis_real/imag [seq][head_size / 2], skipped
    if (shared) {
      EXPECT_EQ(m.at("output.weight").data, m.at("token_embd.weight").data);
    } else {
      expect_run("output.weight", 5 * d);
      EXPECT_NE(m.at("output.weight").data, m.at("token_embd.weight").data);
    }
    EXPECT_EQ(i, t.floats());
    EXPECT_EQ(m.at("output.weight").shape, (std::vector<std::uint64_t>{5, d}));
  }
}

TEST(IoLlama2c, EveryTruncationAndExtensionOfASmallFileFails) {
  for (bool shared : {true, false}) {
    Tiny t;  // smaller than the default, two layers still
    t.dim = 4, t.hidden = 6, t.vocab = 3, t.seq = 2;
    t.shared = shared;
    auto b = t.bytes();
    for (std::size_t n = 0; n < b.size(); ++n)
      EXPECT_THROW(rankq::io::parse_llama2c(b.data(), n), rankq::format_error) << "prefix of " << n << " bytes";
    b.push_back(0);
    expect_format_error([&] { rankq::io::parse_llama2c(b.data(), b.size()); }, "trailing data");
  }
}

TEST(IoLlama2c, RealFileTruncatedAtEverySectionBoundary) {
  RANKQ_REQUIRE_DATA("stories260K.bin");
  const auto raw = rankq::io::read_file_bytes(data_path("stories260K.bin"));
  ASSERT_EQ(raw.size(), 1056540u);
  std::vector<std::size_t> cuts;
  for (std::size_t n = 0; n <= 32; ++n) cuts.push_back(n);
  const std::size_t sections[] = {512 * 64, 5 * 64, 5 * 64 * 64, 5 * 32 * 64, 5 * 32 * 64, 5 * 64 * 64, 5 * 64,
                                  5 * 172 * 64, 5 * 64 * 172, 5 * 172 * 64, 64, 512 * 4, 512 * 4};
  std::size_t off = 28;
  for (std::size_t s : sections) {
    off += 4 * s;
    for (std::size_t delta : {0, 1, 3, 4}) cuts.push_back(off - delta);
  }
  ASSERT_EQ(off, raw.size());
  for (std::size_t n : cuts)
    if (n < raw.size()) {
      expect_format_error([&] { rankq::io::parse_llama2c(raw.data(), n); }, n < 28 ? "header" : "truncated");
    }
  EXPECT_NO_THROW(rankq::io::parse_llama2c(raw.data(), raw.size()));
}

TEST(IoLlama2c, BadHeadersAreRejected) {
  const auto with_header = [](std::vector<std::int32_t> h) {
    Tiny t;
    auto b = t.bytes();
    for (std::size_t i = 0; i < h.size(); ++i) std::memcpy(b.data() + 4 * i, &h[i], 4);
    return b;
  };
  const auto parse = [](const std::vector<std::uint8_t>& b) { rankq::io::parse_llama2c(b.data(), b.size()); };
  expect_format_error([&] { parse(with_header({0})); }, "dim = 0: must be positive");
  expect_format_error([&] { parse(with_header({8, -12})); }, "hidden_dim = -12");
  expect_format_error([&] { parse(with_header({8, 12, 2, 3})); }, "not a multiple of n_heads");
  expect_format_error([&] { parse(with_header({8, 12, 2, 2, 3})); }, "not a multiple of n_kv_heads");
  expect_format_error([&] { parse(with_header({6, 12, 2, 2, 1})); }, "head size dim / n_heads = 3 is odd");
  expect_format_error([&] { parse(with_header({8, 12, 2, 2, 1, 0})); }, "vocab_size = 0");
  expect_format_error([&] { parse(with_header({8, 12, 2, 2, 1, INT32_MIN})); }, "INT32_MIN");
  expect_format_error([&] { parse(with_header({8, 12, 2, 2, 1, 5, -1})); }, "seq_len = -1");
  expect_format_error([&] { parse(with_header({1 << 30, 1 << 30, 1 << 30, 2, 2})); }, "overflows");
  expect_format_error([&] { parse(with_header({8, 12, 2, 2, 1, 5, 1 << 30})); }, "implies");  // size mismatch
  expect_format_error([&] { parse(with_header({8, 12, 2, 2, 1, 5000})); }, "truncated");
  std::vector<std::uint8_t> ak42 = {0x32, 0x34, 0x6B, 0x61, 1, 0, 0, 0};
  ak42.resize(256);
  expect_format_error([&] { parse(ak42); }, "ak42");
  EXPECT_THROW(rankq::io::read_llama2c("/nonexistent/no-such-file.bin"), rankq::io::io_error);
  test::expect_invalid([] { rankq::io::parse_llama2c(nullptr, 10); }, "data");
}

}  // namespace

TEST(IoLlama2c, MappedFilesOnDiskKeepTheChecks) {  // read_llama2c maps the file: same results, same errors
  Tiny t;
  t.dim = 4, t.hidden = 6, t.vocab = 3, t.seq = 2;
  const auto b = t.bytes();
  const std::string path = (std::filesystem::temp_directory_path() / ("rankq_test_llama2c_" + std::to_string(::getpid()) + ".bin")).string();
  rankq::io::write_file_atomic(path, b);
  const LlamaModel from_disk = rankq::io::read_llama2c(path), from_memory = rankq::io::parse_llama2c(b.data(), b.size());
  for (const auto& [name, tensor] : from_memory.tensors) EXPECT_EQ(from_disk.at(name).data, tensor.data) << name;
  for (std::size_t n : {std::size_t{0}, std::size_t{3}, std::size_t{28}, b.size() - 1}) {
    rankq::io::write_file_atomic(path, b.data(), n);
    EXPECT_THROW(rankq::io::read_llama2c(path), rankq::format_error) << "prefix of " << n << " bytes";
  }
  std::filesystem::remove(path);
  EXPECT_THROW(rankq::io::read_llama2c(path), rankq::io::io_error);
}
