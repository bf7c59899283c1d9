// Tests for rankq/io/quantized_model.hpp on a small synthetic LLaMA shape: every layer kind written as /3 reads back
// as a layer that views the mapped file (no owned packed bytes) and gives bit-identical forward results; the
// in-memory reader owns copies; a re-serialized (unaligned) file still loads; /2 files (canonical forms) load,
// packed at load; the writer refuses what it cannot store before creating anything.
#include <rankq/io/quantized_extras.hpp>
#include <rankq/io/quantized_model.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "test_util.hpp"

using namespace rankq;

namespace {

const io::LlamaConfig kConfig{32, 48, 1, 2, 2, 16, 8};

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("rankq_test_io_qm_" + std::to_string(::getpid()) + "_" + name)).string();
}

MatrixView<const float> view(const std::vector<float>& v, std::size_t rows, std::size_t cols) { return {v.data(), rows, cols}; }

/// The float tensors of kConfig and one projection of each kind (W4A8 of 4 and 2 bits, W8A8 from MXINT8, LQER, LCQ)
/// and an 8-bit reference layer.
struct Model {
  std::map<std::string, io::FloatTensor> floats;
  std::map<std::string, io::QuantizedProjection> projections;
};

Model make_model() {
  Model m;
  const std::uint64_t dim = 32, hidden = 48, vocab = 16;
  m.floats["token_embd.weight"] = {{vocab, dim}, test::heavy_tailed(vocab * dim, 1)};
  m.floats["output_norm.weight"] = {{dim}, std::vector<float>(dim, 1.0f)};
  m.floats["blk.0.attn_norm.weight"] = {{dim}, std::vector<float>(dim, 0.5f)};
  m.floats["blk.0.ffn_norm.weight"] = {{dim}, std::vector<float>(dim, 0.25f)};
  m.floats["blk.0.attn_output.weight"] = {{dim, dim}, test::heavy_tailed(dim * dim, 2)};  // kept in float
  const ActivationFormat act{ActivationQuant::per_token, 32, MxSemantics::lqer};
  LinearOptions o;
  o.activation = act;
  const auto w = [](std::size_t r, std::size_t c, std::uint64_t seed) { return test::heavy_tailed(r * c, seed); };
  const auto add = [&](const std::string& name, Linear l, double bpw) {
    m.projections[name] = {std::make_shared<const Linear>(std::move(l)), nullptr, act, name + ":test", bpw};
  };
  const auto wq = w(dim, dim, 3);
  add("blk.0.attn_q.weight", Linear::from_uniform(quantize_uniform(view(wq, dim, dim), UniformFormat{4, 16, Symmetry::asymmetric, ScaleType::f16}), o), 5.0);
  const auto wk = w(dim, dim, 4);
  add("blk.0.attn_k.weight", Linear::from_mxint(quantize_mxint(view(wk, dim, dim), MxFormat{8, 16, MxSemantics::lqer}), o), 8.5);
  const auto wv = w(dim, dim, 5), a = test::heavy_tailed(4 * dim, 6, 0.5f), b = test::heavy_tailed(dim * 4, 7, 0.5f);
  LowRankCorrection c;
  c.rank = 4, c.out_features = dim, c.in_features = dim;
  c.a_t = to_uniform(quantize_mxint(view(a, 4, dim), MxFormat{8, 16, MxSemantics::lqer}));
  c.b_t = to_uniform(quantize_mxint(view(b, dim, 4), MxFormat{8, 16, MxSemantics::lqer}));
  add("blk.0.attn_v.weight", Linear::from_lqer(quantize_uniform(view(wv, dim, dim), UniformFormat{4, 16, Symmetry::symmetric, ScaleType::f32}), c, o), 6.0);
  const auto wg = w(hidden, dim, 8);
  LcqOptions lo;
  lo.bits = 2, lo.group_size = 32, lo.rank = 2, lo.max_iterations = 2, lo.threads = 1;
  LinearOptions co = o;
  co.path = io::detail::best_codebook_path();
  add("blk.0.ffn_gate.weight", Linear::from_codebook(fit_lcq(view(wg, hidden, dim), lo), co), 2.8);
  const auto wu = w(hidden, dim, 9);
  add("blk.0.ffn_up.weight", Linear::from_uniform(quantize_uniform(view(wu, hidden, dim), UniformFormat{2, 0, Symmetry::asymmetric, ScaleType::f32}), o), 2.5);
  const auto wd = w(dim, hidden, 10);
  m.projections["blk.0.ffn_down.weight"] = {nullptr, std::make_shared<const UniformWeights>(quantize_uniform(
      view(wd, dim, hidden), UniformFormat{8, 16, Symmetry::symmetric, ScaleType::f16})), act, "ffn_down:w8", 9.0};
  return m;
}

void expect_same_forward(const Linear& a, const Linear& b, const std::string& what) {
  Context ctx;
  const auto xv = test::activations(3, a.in_features(), 11);
  std::vector<float> ya(3 * a.out_features(), -1.0f), yb(ya.size(), -2.0f);
  a.forward(view(xv, 3, a.in_features()), MatrixView<float>(ya.data(), 3, a.out_features()), ctx);
  b.forward(view(xv, 3, b.in_features()), MatrixView<float>(yb.data(), 3, b.out_features()), ctx);
  EXPECT_EQ(0, std::memcmp(ya.data(), yb.data(), ya.size() * sizeof(float))) << what;
}

void expect_same_model(const Model& want, const io::QuantizedModel& got, bool views) {
  EXPECT_EQ(got.tensors.size(), want.floats.size());
  for (const auto& [name, t] : want.floats) EXPECT_EQ(got.tensors.at(name).data, t.data) << name;
  ASSERT_EQ(got.projections.size(), want.projections.size());
  for (const auto& [name, p] : want.projections) {
    const auto& q = got.projections.at(name);
    EXPECT_EQ(q.label, p.label) << name;
    EXPECT_EQ(q.bits_per_weight, p.bits_per_weight) << name;
    if (!p.layer) {
      ASSERT_TRUE(q.reference) << name;
      ASSERT_EQ(q.reference->codes.size(), p.reference->codes.size());
      EXPECT_EQ(0, std::memcmp(q.reference->codes.data(), p.reference->codes.data(), p.reference->codes.size())) << name;
      continue;
    }
    ASSERT_TRUE(q.layer) << name;
    EXPECT_EQ(q.layer->kind(), p.layer->kind()) << name;
    EXPECT_EQ(q.layer->size_bytes(), p.layer->size_bytes()) << name;
    EXPECT_EQ(q.layer->owned_bytes(), views ? q.layer->packed_codebook().lut.size() : q.layer->size_bytes()) << name;
    expect_same_forward(*q.layer, *p.layer, name);
  }
}

}  // namespace

TEST(IoQuantizedModel, RoundTripViewsTheMappedFile) {
  const Model m = make_model();
  const std::string path = temp_path("rt.safetensors");
  io::write_quantized_model(path, kConfig, "test method", m.floats, m.projections);
  io::QuantizedModel got = io::read_quantized_model(path);
  EXPECT_EQ(got.format, "rankq-quantized-llama/3");
  EXPECT_EQ(got.method, "test method");
  EXPECT_EQ(got.config.hidden_dim, 48);
  EXPECT_EQ(got.projections.at("blk.0.attn_k.weight").layer->kind(), LinearKind::w8a8);
  expect_same_model(m, got, /*views=*/true);
  // A layer keeps the mapping alive on its own: the model and the file name may go.
  const std::shared_ptr<const Linear> q = got.projections.at("blk.0.attn_v.weight").layer;
  got = {};
  std::filesystem::remove(path);
  expect_same_forward(*q, *m.projections.at("blk.0.attn_v.weight").layer, "after the model was dropped");
}

TEST(IoQuantizedModel, InMemoryAndUnalignedFilesOwnCopies) {
  const Model m = make_model();
  const std::string path = temp_path("mem.safetensors");
  io::write_quantized_model(path, kConfig, "x", m.floats, m.projections);
  const auto bytes = io::read_file_bytes(path);
  expect_same_model(m, io::parse_quantized_model(bytes.data(), bytes.size(), "mem"), /*views=*/false);
  // Re-serialized by the plain safetensors writer (name order, 8-byte alignment): packed tensors may be unaligned
  // in the mapping, and are then copied; the file is otherwise the same (checksums cover the same bytes).
  const auto file = io::parse_safetensors(bytes.data(), bytes.size());
  io::write_safetensors(path, file.tensors, file.metadata);
  const auto got = io::read_quantized_model(path);
  std::filesystem::remove(path);
  for (const auto& [name, p] : m.projections)
    if (p.layer) expect_same_forward(*got.projections.at(name).layer, *p.layer, name + " (re-serialized)");
}

TEST(IoQuantizedModel, Version2FilesLoadPackedAtLoad) {
  const Model m = make_model();
  io::TensorMap t;
  io::MetadataMap meta{{"rankq.format", "rankq-quantized-llama/2"}, {"rankq.method", "v2"},
                       {"rankq.config", io::detail::config_to_json(kConfig)}};
  for (const auto& [name, f] : m.floats) {
    t[name] = {io::DType::f32, f.shape, std::vector<std::uint8_t>(f.data.size() * 4)};
    std::memcpy(t[name].bytes.data(), f.data.data(), f.data.size() * 4);
  }
  // /2 stored the canonical forms: rebuild them for two kinds (uniform from its packed twin is not possible, so
  // quantize again with the same inputs as make_model).
  const auto wq = test::heavy_tailed(32 * 32, 3);
  const auto uq = quantize_uniform(view(wq, 32, 32), UniformFormat{4, 16, Symmetry::asymmetric, ScaleType::f16});
  io::put_uniform(t, meta, "blk.0.attn_q.weight", uq);
  for (const char* name : {"blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.0.attn_v.weight", "blk.0.ffn_gate.weight",
                           "blk.0.ffn_up.weight", "blk.0.ffn_down.weight"}) {
    if (std::string(name) != "blk.0.attn_q.weight") {
      const auto& p = m.projections.at(name);
      const std::size_t rows = p.out_features(), cols = p.in_features();
      const auto wv = test::heavy_tailed(rows * cols, 20);
      io::put_uniform(t, meta, name, quantize_uniform(view(wv, rows, cols), UniformFormat{3, 32, Symmetry::symmetric, ScaleType::f16}));
    }
    meta[std::string(name) + ":activation"] = io::detail::activation_to_json(m.projections.at(name).activation);
  }
  nlohmann::json sums = nlohmann::json::object();
  for (const auto& [name, r] : t) sums[name] = io::detail::crc32c(r.bytes.data(), r.bytes.size());
  meta["rankq.checksums"] = sums.dump();
  const auto bytes = io::serialize_safetensors(t, meta);
  const auto got = io::parse_quantized_model(bytes.data(), bytes.size(), "v2");
  EXPECT_EQ(got.format, "rankq-quantized-llama/2");
  const auto& q = got.projections.at("blk.0.attn_q.weight");
  EXPECT_EQ(q.label, "blk.0.attn_q.weight:" + to_string(uq.format));
  expect_same_forward(*q.layer, *m.projections.at("blk.0.attn_q.weight").layer, "v2 uniform");
}

TEST(IoQuantizedModel, WriterRefusesBeforeCreatingAnything) {
  Model m = make_model();
  const std::string path = temp_path("refused.safetensors");
  auto bad_config = kConfig;
  bad_config.dim = 64;
  test::expect_invalid([&] { io::write_quantized_model(path, bad_config, "x", m.floats, m.projections); }, "config");
  m.floats["output_norm.weight"].data[3] = std::numeric_limits<float>::quiet_NaN();
  test::expect_invalid([&] { io::write_quantized_model(path, kConfig, "x", m.floats, m.projections); }, "non-finite");
  m = make_model();
  LinearOptions o;
  o.bias.assign(32, 0.5f);
  const auto wq = test::heavy_tailed(32 * 32, 3);
  m.projections["blk.0.attn_q.weight"].layer = std::make_shared<const Linear>(
      Linear::from_uniform(quantize_uniform(view(wq, 32, 32), UniformFormat{4, 16, Symmetry::symmetric, ScaleType::f16}), o));
  test::expect_invalid([&] { io::write_quantized_model(path, kConfig, "x", m.floats, m.projections); }, "bias");
  EXPECT_FALSE(std::filesystem::exists(path));
}
