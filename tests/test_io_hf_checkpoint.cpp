// Tests for rankq/io/hf_checkpoint.hpp: synthetic GQA models written as HF folders by our converter
// (tests/hf_writer.hpp: single file or two shards, F32 or BF16, tied or untied, Q/K permuted as HF's converter
// does) read back exactly; stories260K as an HF folder gives the engine the .bin's logits bit for bit (F32) or the
// BF16-rounded model's (BF16); every unsupported or malformed input is refused with a message naming it.
#include "rankq/io/hf_checkpoint.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "hf_writer.hpp"
#include "llama/model.hpp"
#include "llama/paragraphs.hpp"
#include "llama/tokenizer.hpp"
#include "rankq/io/llama2c.hpp"
#include "test_data.hpp"
#include "test_util.hpp"

namespace {

namespace fs = std::filesystem;
using rankq::io::DType;
using rankq::io::LlamaModel;
using rankq_test::HfWriteOptions;

using test::expect_format_error;

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("rankq_test_io_hf_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

/// A random LLaMA with GQA (4 heads, 2 KV heads, head size 4) and its embedding as classifier.
LlamaModel tiny_model(std::uint32_t seed = 7) {
  LlamaModel m;
  m.config = {16, 24, 3, 4, 2, 300, 32};
  m.config.norm_eps = 1e-6f;
  m.config.rope_theta = 500000.f;
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.f, 0.5f);
  for (const auto& [name, shape] : rankq::io::detail::llama_tensor_shapes(m.config)) {
    rankq::io::FloatTensor t{shape, {}};
    std::uint64_t n = 1;
    for (auto d : shape) n *= d;
    for (std::uint64_t i = 0; i < n; ++i) t.data.push_back(normal(rng));
    m.tensors.emplace(name, std::move(t));
  }
  m.tensors.emplace("output.weight", m.tensors.at("token_embd.weight"));
  return m;
}

LlamaModel rounded_to_bf16(LlamaModel m) {
  for (auto& [name, t] : m.tensors)
    for (float& v : t.data) v = rankq::bf16_to_float(rankq::float_to_bf16(v));
  return m;
}

LlamaModel rounded_to_f16(LlamaModel m) {
  for (auto& [name, t] : m.tensors)
    for (float& v : t.data) v = rankq::half_to_float(rankq::float_to_half(v));
  return m;
}

void expect_same_model(const LlamaModel& got, const LlamaModel& want) {
  EXPECT_EQ(got.config.dim, want.config.dim);
  EXPECT_EQ(got.config.hidden_dim, want.config.hidden_dim);
  EXPECT_EQ(got.config.n_layers, want.config.n_layers);
  EXPECT_EQ(got.config.n_heads, want.config.n_heads);
  EXPECT_EQ(got.config.n_kv_heads, want.config.n_kv_heads);
  EXPECT_EQ(got.config.vocab_size, want.config.vocab_size);
  EXPECT_EQ(got.config.seq_len, want.config.seq_len);
  EXPECT_EQ(got.config.norm_eps, want.config.norm_eps);
  EXPECT_EQ(got.config.rope_theta, want.config.rope_theta);
  ASSERT_EQ(got.tensors.size(), want.tensors.size());
  for (const auto& [name, t] : want.tensors) {
    ASSERT_EQ(got.tensors.count(name), 1u) << name;
    EXPECT_EQ(got.at(name).shape, t.shape) << name;
    EXPECT_EQ(got.at(name).data, t.data) << name;
  }
}

TEST(IoHfCheckpoint, SingleFileF32TiedRoundTripsExactly) {
  TempDir dir;
  const LlamaModel m = tiny_model();
  rankq_test::write_hf_checkpoint(dir.path.string(), m);
  ASSERT_TRUE(fs::exists(dir / "model.safetensors"));
  expect_same_model(rankq::io::read_hf_llama(dir.path.string()), m);
}

TEST(IoHfCheckpoint, ShardedF32Bf16F16UntiedRoundTrip) {
  LlamaModel m = tiny_model(11);
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.f, 1.f);
  for (float& v : m.tensors.at("output.weight").data) v = normal(rng);  // untied classifier
  for (DType dtype : {DType::f32, DType::bf16, DType::f16}) {
    TempDir dir;
    HfWriteOptions o;
    o.dtype = dtype;
    o.shards = 2;
    o.write_lm_head = true;
    rankq_test::write_hf_checkpoint(dir.path.string(), m, o);
    ASSERT_TRUE(fs::exists(dir / "model-00002-of-00002.safetensors"));
    ASSERT_TRUE(fs::exists(dir / "model.safetensors.index.json"));
    expect_same_model(rankq::io::read_hf_llama(dir.path.string()),
                      dtype == DType::f32 ? m : dtype == DType::bf16 ? rounded_to_bf16(m) : rounded_to_f16(m));
  }
}

TEST(IoHfCheckpoint, UnpermutesQkRowsAsDerivedInDocs) {
  // One head of size 4 (pairs (0,1), (2,3)): HF stores Meta's rows in the order 0, 2, 1, 3 (docs/io.md).
  rankq::io::FloatTensor t{{4, 2}, {0, 0.5f, 2, 2.5f, 1, 1.5f, 3, 3.5f}};
  rankq::io::detail::hf_unpermute_rows(t, 1, "q");
  EXPECT_EQ(t.data, (std::vector<float>{0, 0.5f, 1, 1.5f, 2, 2.5f, 3, 3.5f}));
  // Two heads of size 6: within each head HF row j*3 + i holds Meta row 2i + j.
  rankq::io::FloatTensor u{{12, 1}, {0, 2, 4, 1, 3, 5, 6, 8, 10, 7, 9, 11}};
  rankq::io::detail::hf_unpermute_rows(u, 2, "k");
  EXPECT_EQ(u.data, (std::vector<float>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}));
  // The test converter's permutation (HF's view/transpose formula) is what the reader undoes.
  EXPECT_EQ(rankq_test::hf_permute({0, 0.5f, 1, 1.5f, 2, 2.5f, 3, 3.5f}, 1, 4, 2),
            (std::vector<float>{0, 0.5f, 2, 2.5f, 1, 1.5f, 3, 3.5f}));
}

TEST(IoHfCheckpoint, MistralConfigAndDefaults) {
  nlohmann::json j = {{"architectures", {"MistralForCausalLM"}}, {"hidden_size", 64}, {"intermediate_size", 172},
                      {"num_hidden_layers", 5}, {"num_attention_heads", 8}, {"num_key_value_heads", 4},
                      {"vocab_size", 512}, {"max_position_embeddings", 32768}, {"sliding_window", 4096},
                      {"rope_theta", 1e6}, {"rms_norm_eps", 1e-5}, {"tie_word_embeddings", false}};
  auto hf = rankq::io::parse_hf_llama_config(j, "config");
  EXPECT_EQ(hf.architecture, "MistralForCausalLM");
  EXPECT_EQ(hf.config.seq_len, 4096);  // full attention is sliding-window attention up to the window
  EXPECT_EQ(hf.config.n_kv_heads, 4);
  EXPECT_EQ(hf.config.rope_theta, 1e6f);
  EXPECT_EQ(hf.config.norm_eps, 1e-5f);
  EXPECT_FALSE(hf.tie_word_embeddings);
  j["sliding_window"] = nullptr;
  j.erase("num_key_value_heads");
  j.erase("rope_theta");
  j.erase("rms_norm_eps");
  j.erase("max_position_embeddings");
  j["architectures"] = {"LlamaForCausalLM"};
  hf = rankq::io::parse_hf_llama_config(j, "config");
  EXPECT_EQ(hf.config.seq_len, 2048);
  EXPECT_EQ(hf.config.n_kv_heads, 8);
  EXPECT_EQ(hf.config.rope_theta, 10000.f);
  EXPECT_EQ(hf.config.norm_eps, 1e-6f);
}

TEST(IoHfCheckpoint, UnsupportedConfigsAreRefusedByName) {
  const nlohmann::json base = {{"architectures", {"LlamaForCausalLM"}}, {"hidden_size", 16}, {"intermediate_size", 24},
                               {"num_hidden_layers", 3}, {"num_attention_heads", 4}, {"vocab_size", 300}};
  const auto refused = [&](const std::function<void(nlohmann::json&)>& edit, const std::string& needle) {
    nlohmann::json j = base;
    edit(j);
    expect_format_error([&] { (void)rankq::io::parse_hf_llama_config(j, "config"); }, needle);
  };
  refused([](auto& j) { j["architectures"] = {"GPT2LMHeadModel"}; }, "architecture 'GPT2LMHeadModel' is not supported");
  refused([](auto& j) { j["architectures"] = {"Qwen2ForCausalLM"}; }, "only LlamaForCausalLM and MistralForCausalLM");
  refused([](auto& j) { j.erase("architectures"); }, "'architectures' must list exactly one");
  refused([](auto& j) { j["quantization_config"] = {{"quant_method", "gptq"}, {"bits", 4}}; }, "a quantized checkpoint");
  refused([](auto& j) { j["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}}; }, "RoPE scaling is not supported");
  refused([](auto& j) { j["attention_bias"] = true; }, "bias in the attention projections");
  refused([](auto& j) { j["hidden_act"] = "gelu"; }, "activation other than silu");
  refused([](auto& j) { j["head_dim"] = 8; }, "'head_dim' = 8");
  refused([](auto& j) { j.erase("hidden_size"); }, "'hidden_size' is missing");
  refused([](auto& j) { j["num_attention_heads"] = 3; }, "not a multiple of n_heads");
  refused([](auto& j) { j["num_key_value_heads"] = 3; }, "not a multiple of n_kv_heads");
  refused([](auto& j) { j["vocab_size"] = -1; }, "'vocab_size' = -1");
  refused([](auto& j) { j["rms_norm_eps"] = "small"; }, "'rms_norm_eps'");
  refused([](auto& j) { j["rope_theta"] = -1; }, "'rope_theta'");
  refused([](auto& j) { j["tie_word_embeddings"] = 1; }, "'tie_word_embeddings' = 1");
}

TEST(IoHfCheckpoint, BadFoldersAreRefusedByName) {
  const LlamaModel m = tiny_model();
  const auto write = [&](const TempDir& dir, const HfWriteOptions& o) { rankq_test::write_hf_checkpoint(dir.path.string(), m, o); };
  HfWriteOptions sharded;
  sharded.shards = 2;
  {
    TempDir dir;
    EXPECT_THROW((void)rankq::io::read_hf_llama(dir / "missing"), rankq::io::io_error);
    EXPECT_THROW((void)rankq::io::read_hf_llama(dir.path.string()), rankq::io::io_error);  // no config.json
    write(dir, {});
    fs::remove(dir / "model.safetensors");
    expect_format_error([&] { (void)rankq::io::read_hf_llama(dir.path.string()); }, "no model.safetensors");
    rankq_test::write_text(dir / "pytorch_model.bin", "x");
    expect_format_error([&] { (void)rankq::io::read_hf_llama(dir.path.string()); }, "PyTorch .bin checkpoints are not supported");
  }
  {  // a shard the index names is missing; a shard name with a path; an index listing a tensor elsewhere
    TempDir dir;
    write(dir, sharded);
    fs::remove(dir / "model-00002-of-00002.safetensors");
    EXPECT_THROW((void)rankq::io::read_hf_llama(dir.path.string()), rankq::io::io_error);
    auto index = rankq::io::detail::read_json_file(dir / "model.safetensors.index.json");
    index["weight_map"]["model.norm.weight"] = "../model-00001-of-00002.safetensors";
    rankq_test::write_text(dir / "model.safetensors.index.json", index.dump());
    expect_format_error([&] { (void)rankq::io::read_hf_llama(dir.path.string()); }, "is not a file name in the folder");
    index["weight_map"] = nlohmann::json::object();
    rankq_test::write_text(dir / "model.safetensors.index.json", index.dump());
    expect_format_error([&] { (void)rankq::io::read_hf_llama(dir.path.string()); }, "'weight_map' is missing, empty");
    rankq_test::write_text(dir / "model.safetensors.index.json", "{not json");
    expect_format_error([&] { (void)rankq::io::read_hf_llama(dir.path.string()); }, "is not valid JSON");
  }
  {
    TempDir dir;
    write(dir, sharded);
    auto index = rankq::io::detail::read_json_file(dir / "model.safetensors.index.json");
    index["weight_map"]["model.norm.weight"] = "model-00001-of-00002.safetensors";  // it is in shard 2
    rankq_test::write_text(dir / "model.safetensors.index.json", index.dump());
    expect_format_error([&] { (void)rankq::io::read_hf_llama(dir.path.string()); }, "'model.norm.weight'");
  }
  // Tensors: a bias (unexpected), a quantized dtype, a wrong shape, a missing one, a missing untied lm_head.
  const auto with_tensors = [&](const std::function<void(std::map<std::string, rankq::io::RawTensor>&)>& edit,
                                const std::string& needle) {
    TempDir dir;
    write(dir, {});
    auto st = rankq::io::read_safetensors(dir / "model.safetensors");
    edit(st.tensors);
    rankq::io::write_safetensors(dir / "model.safetensors", st.tensors);
    expect_format_error([&] { (void)rankq::io::read_hf_llama(dir.path.string()); }, needle);
  };
  with_tensors([](auto& t) { t["model.layers.0.self_attn.q_proj.bias"] = rankq::io::RawTensor{DType::f32, {16}, std::vector<std::uint8_t>(64)}; },
               "unexpected tensor 'model.layers.0.self_attn.q_proj.bias'");
  with_tensors([](auto& t) { t["model.layers.1.mlp.up_proj.qweight"] = rankq::io::RawTensor{DType::i32, {3, 16}, std::vector<std::uint8_t>(192)}; },
               "quantized weights are not supported");
  with_tensors([](auto& t) {
    auto& w = t.at("model.layers.2.mlp.down_proj.weight");
    w = rankq::io::RawTensor{DType::i8, w.shape, std::vector<std::uint8_t>(16 * 24)};
  }, "has dtype I8: only F32, F16 and BF16");
  with_tensors([](auto& t) { t.at("model.norm.weight").shape = {4, 4}; }, "has shape [4][4], config.json implies [16]");
  with_tensors([](auto& t) { t.erase("model.layers.2.self_attn.k_proj.weight"); }, "'model.layers.2.self_attn.k_proj.weight' is missing");
  with_tensors([](auto& t) { t["model.layers.0.self_attn.rotary_emb.inv_freq"] = rankq::io::RawTensor{DType::f32, {2}, std::vector<std::uint8_t>(8)};
                             t.erase("model.embed_tokens.weight"); },
               "'model.embed_tokens.weight' is missing");  // inv_freq is ignored; the embedding is not optional
  {
    TempDir dir;
    write(dir, {});
    auto config = rankq::io::detail::read_json_file(dir / "config.json");
    config["tie_word_embeddings"] = false;
    rankq_test::write_text(dir / "config.json", config.dump());
    expect_format_error([&] { (void)rankq::io::read_hf_llama(dir.path.string()); }, "'lm_head.weight' is missing");
  }
}

// Real data: stories260K converted to HF folders gives the engine the .bin's logits.
const LlamaModel& stories260k() {
  static const LlamaModel m = rankq::io::read_llama2c(rankq_test::data_path("stories260K.bin"));
  return m;
}

std::vector<std::vector<int>> sample_token_sequences() {
  const auto tok = rankq::llama::Tokenizer::from_file(rankq_test::data_path("tok512.bin"), 512);
  const auto paragraphs = rankq::llama::load_paragraphs(rankq_test::data_path("tinystories-valid-head.txt"));
  std::vector<std::vector<int>> out;
  for (std::size_t p = 0; p < 3; ++p) out.push_back(tok.encode(paragraphs[p]));
  return out;
}

TEST(IoHfCheckpoint, Stories260KF32ShardedGivesBinLogitsBitForBit) {
  RANKQ_REQUIRE_DATA("stories260K.bin", "tok512.bin", "tinystories-valid-head.txt");
  TempDir dir;
  HfWriteOptions o;
  o.shards = 2;
  rankq_test::write_hf_checkpoint(dir.path.string(), stories260k(), o);
  const LlamaModel hf = rankq::io::read_hf_llama(dir.path.string());
  expect_same_model(hf, stories260k());
  const rankq::llama::Model from_bin(stories260k()), from_hf(hf);
  for (const auto& tokens : sample_token_sequences()) EXPECT_EQ(from_hf.forward_sequence(tokens), from_bin.forward_sequence(tokens));
}

TEST(IoHfCheckpoint, Stories260KBf16ShardedGivesRoundedModelsLogits) {
  RANKQ_REQUIRE_DATA("stories260K.bin", "tok512.bin", "tinystories-valid-head.txt");
  TempDir dir;
  HfWriteOptions o;
  o.shards = 2;
  o.dtype = DType::bf16;
  rankq_test::write_hf_checkpoint(dir.path.string(), stories260k(), o);
  const LlamaModel hf = rankq::io::read_hf_llama(dir.path.string());
  const LlamaModel rounded = rounded_to_bf16(stories260k());
  expect_same_model(hf, rounded);
  const rankq::llama::Model from_bin(stories260k()), from_rounded(rounded), from_hf(hf);
  for (const auto& tokens : sample_token_sequences()) {
    const std::vector<float> got = from_hf.forward_sequence(tokens), exact = from_bin.forward_sequence(tokens);
    EXPECT_EQ(got, from_rounded.forward_sequence(tokens));  // exactly the BF16-rounded weights' logits
    // and close to the F32 model: BF16 has 8 significant bits (relative rounding error <= 2^-9 per weight).
    double worst = 0, mean_abs = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
      worst = std::max(worst, std::abs(double(got[i]) - exact[i]));
      mean_abs += std::abs(double(exact[i])) / double(got.size());
    }
    EXPECT_LT(worst, 0.05 * mean_abs + 0.05) << "max |logit difference| " << worst << ", mean |logit| " << mean_abs;
    EXPECT_GT(worst, 0.0);  // the rounding did happen
  }
}

}  // namespace
