// Tests for the quantized model file (rankq/io/quantized_model.hpp as rankq-quantize uses it through
// examples/rankq_quantize/model_file.hpp) on the real stories260K checkpoint: a reloaded model gives identical
// logits (format /3, and files of the previous format /2); bad files are clear errors; writes are atomic.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <rankq/io/detail/crc32c.hpp>
#include <rankq/io/llama2c.hpp>
#include <rankq/io/quantized_extras.hpp>

#include <algorithm>
#include <cstring>
#include <limits>

#include "llama/model.hpp"
#include "llama/paragraphs.hpp"
#include "llama/tokenizer.hpp"
#include "rankq_quantize/methods.hpp"
#include "rankq_quantize/lcq_linear.hpp"
#include "rankq_quantize/lqer_linear.hpp"
#include "rankq_quantize/model_file.hpp"
#include "rankq_quantize/model_run.hpp"
#include "hf_writer.hpp"
#include "test_data.hpp"

using namespace rankq;
using namespace rankq::example;

namespace {

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("rankq_test_" + std::to_string(::getpid()) + "_" + name)).string();
}

io::LlamaModel stories260k() { return io::read_llama2c(rankq_test::data_path("stories260K.bin")); }

const std::string kChecksumsKey = "rankq.checksums";

/// {"tensor name": CRC-32C of its bytes, ...} for every tensor, as JSON text (what the writer stores).
std::string tensor_checksums(const io::TensorMap& tensors) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [name, t] : tensors) j[name] = io::detail::crc32c(t.bytes.data(), t.bytes.size());
  return j.dump();
}
}  // namespace

TEST(ModelFile, ReloadedModelGivesIdenticalLogits) {
  RANKQ_REQUIRE_DATA("stories260K.bin");
  const auto weights = stories260k();
  const std::vector<int> tokens = {1, 403, 407, 261, 378, 283, 1000 % 512, 15, 42};
  for (const MethodSpec& m : {MethodSpec{"rtn", 4, 0, 32}, MethodSpec{"rtn", 3, 0, 16}, MethodSpec{"mxint", 4, 0, 0},
                              MethodSpec{"rtn", 8, 0, 32}, MethodSpec{"mxint", 8, 0, 0}}) {
    const llama::Model model(weights, [&](const std::string& name, const io::FloatTensor& w) { return make_uniform_linear(m, name, w); });
    const std::string path = temp_path("model.safetensors");
    save_quantized_model(path, weights, model, describe(m));
    // 8-bit layers are stored packed for the W8A8 kernels, like the 2-4-bit ones for W4A8.
    EXPECT_EQ(io::quantized_kind(io::read_safetensors(path), "blk.0.attn_q.weight"), m.bits == 8 ? "packed_w8a8" : "packed_w4a8");
    const auto loaded = load_quantized_model(path);
    std::filesystem::remove(path);
    EXPECT_EQ(loaded.method, describe(m));
    const llama::Model reloaded(loaded.weights, loaded.factory);
    EXPECT_EQ(reloaded.projection_bits_per_weight(), model.projection_bits_per_weight());
    EXPECT_EQ(reloaded.forward_sequence(tokens), model.forward_sequence(tokens)) << describe(m);
  }
}

TEST(ModelFile, LqerL2qerLcqReloadGivesIdenticalLogits) {
  RANKQ_REQUIRE_DATA("stories260K.bin", "tok512.bin", "tinystories-valid-head.txt");
  const auto weights = stories260k();
  const std::string dir = rankq_test::data_dir();
  const auto tok = llama::Tokenizer::from_file(dir + "/tok512.bin", static_cast<std::size_t>(weights.config.vocab_size));
  const auto paragraphs = llama::load_paragraphs(dir + "/tinystories-valid-head.txt");
  const CalibrationStats calib = calibrate(weights, tok, paragraphs, llama::ParagraphRange{0, 4});
  ASSERT_EQ(calib.size(), 5u * 7u);
  const std::vector<int> tokens = {1, 403, 407, 261, 378, 283, 488, 15, 42};
  for (const MethodSpec& m : {MethodSpec{"lqer", 4, 8, 16}, MethodSpec{"l2qer", 3, 4, 16}, MethodSpec{"l2qer", 4, 16, 16},
                              MethodSpec{"lcq", 2, 2, 32}, MethodSpec{"lcq", 4, 1, 0}}) {
    const llama::Model model(weights, default_factory(m, calib, 2));
    const std::string path = temp_path("lowrank.safetensors");
    save_quantized_model(path, weights, model, describe(m));
    const auto file = io::read_safetensors(path);
    const auto loaded = load_quantized_model(path);
    std::filesystem::remove(path);
    const std::string q = "blk.1.attn_q.weight";
    EXPECT_EQ(file.metadata.at("rankq.format"), "rankq-quantized-llama/3");
    if (m.method == "lcq") {
      EXPECT_EQ(io::quantized_kind(file, q), "packed_codebook");
      EXPECT_EQ(file.tensors.count(q + ".packed_codebook"), 1u);
      EXPECT_EQ(file.tensors.at(q + ".lut").shape, (std::vector<std::uint64_t>{m.rank * 16}));
    } else {
      EXPECT_EQ(io::quantized_kind(file, q), "packed_lqer");
      // Aᵀ (k x 64): one tile of 16 ranks, 4 chunks of 16 columns, 320 bytes each; Bᵀ (64 x k): 4 tiles, 1 chunk.
      EXPECT_EQ(file.tensors.at(q + ".packed_a_t").shape, (std::vector<std::uint64_t>{4 * 320}));
      EXPECT_EQ(file.tensors.at(q + ".packed_b_t").shape, (std::vector<std::uint64_t>{4 * 320}));
    }
    for (const auto& [name, offset] : file.data_offsets) {  // every packed tensor starts on a 64-byte boundary
      if (name.find(".packed_") != std::string::npos) {
        EXPECT_EQ(offset % 64, 0u) << name;
      }
    }
    const llama::Model reloaded(loaded.weights, loaded.factory);
    EXPECT_EQ(reloaded.projection_bits_per_weight(), model.projection_bits_per_weight()) << describe(m);
    EXPECT_EQ(reloaded.projection(q).name(), model.projection(q).name());
    EXPECT_EQ(reloaded.forward_sequence(tokens), model.forward_sequence(tokens)) << describe(m);
  }
}

// Files of the previous format (/2: every layer in its canonical form, written by io::put_*) still load, packed at
// load time, into a model with the same logits and bits per weight.
TEST(ModelFile, Version2FilesStillLoad) {
  RANKQ_REQUIRE_DATA("stories260K.bin", "tok512.bin", "tinystories-valid-head.txt");
  const auto weights = stories260k();
  const std::string dir = rankq_test::data_dir();
  const auto tok = llama::Tokenizer::from_file(dir + "/tok512.bin", static_cast<std::size_t>(weights.config.vocab_size));
  const CalibrationStats calib = calibrate(weights, tok, llama::load_paragraphs(dir + "/tinystories-valid-head.txt"),
                                           llama::ParagraphRange{0, 2});
  const std::vector<int> tokens = {1, 403, 407, 261, 378};
  for (const MethodSpec& m : {MethodSpec{"l2qer", 4, 8, 16}, MethodSpec{"lcq", 3, 2, 32}, MethodSpec{"rtn", 4, 0, 32}}) {
    const llama::Model model(weights, default_factory(m, calib, 2));
    io::TensorMap t;
    io::MetadataMap meta{{"rankq.format", "rankq-quantized-llama/2"}, {"rankq.method", describe(m)}, {"rankq.version", "old"}};
    const auto& c = weights.config;
    meta["rankq.config"] = nlohmann::json{{"dim", c.dim}, {"hidden_dim", c.hidden_dim}, {"n_layers", c.n_layers},
                                          {"n_heads", c.n_heads}, {"n_kv_heads", c.n_kv_heads}, {"vocab_size", c.vocab_size},
                                          {"seq_len", c.seq_len}, {"norm_eps", c.norm_eps}, {"rope_theta", c.rope_theta}}.dump();
    const auto projections = model.projection_names();
    for (const auto& [name, w] : weights.tensors) {
      if (std::find(projections.begin(), projections.end(), name) != projections.end()) continue;
      t[name] = {io::DType::f32, w.shape, std::vector<std::uint8_t>(w.data.size() * 4)};
      std::memcpy(t[name].bytes.data(), w.data.data(), t[name].bytes.size());
    }
    for (const std::string& name : projections) {
      const llama::Linear& l = model.projection(name);
      if (const auto* q = dynamic_cast<const LqerLinear*>(&l)) {
        io::put_lqer(t, meta, name, q->weights(), nullptr, m.method);
        meta[name + ":activation"] = nlohmann::json{{"kind", "mxint8"}, {"block", 16}, {"semantics", "lqer"}}.dump();
      } else if (const auto* cb = dynamic_cast<const LcqLinear*>(&l)) {
        io::put_codebook(t, meta, name, cb->weights());
        meta[name + ":activation"] = nlohmann::json{{"kind", "per_token"}, {"block", 32}, {"semantics", "lqer"}}.dump();
      } else {
        io::put_uniform(t, meta, name, dynamic_cast<const QuantizedLinear&>(l).weights());
        meta[name + ":activation"] = nlohmann::json{{"kind", "per_token"}, {"block", 32}, {"semantics", "lqer"}}.dump();
      }
    }
    meta[kChecksumsKey] = tensor_checksums(t);
    const std::string path = temp_path("v2.safetensors");
    io::write_safetensors(path, t, meta);
    const auto loaded = load_quantized_model(path);
    std::filesystem::remove(path);
    const llama::Model reloaded(loaded.weights, loaded.factory);
    EXPECT_EQ(reloaded.projection_bits_per_weight(), model.projection_bits_per_weight()) << describe(m);
    EXPECT_EQ(reloaded.forward_sequence(tokens), model.forward_sequence(tokens)) << describe(m);
  }
}

TEST(ModelFile, DoubleQuantizedLcqRoundTrip) {
  RANKQ_REQUIRE_DATA("stories260K.bin");
  const auto weights = stories260k();
  const auto& w = weights.tensors.at("blk.0.ffn_down.weight");  // 64 x 172: padded groups
  const rankq::MatrixView<const float> W(w.data.data(), 64, 172);
  rankq::LcqOptions o;
  o.bits = 3;
  o.group_size = 64;
  o.rank = 2;
  o.max_iterations = 3;
  o.double_quantize = true;
  const auto q = rankq::fit_lcq(W, o);
  io::TensorMap t;
  io::MetadataMap meta;
  io::put_codebook(t, meta, "x", q);
  EXPECT_EQ(t.count("x.S_q"), 1u);
  EXPECT_EQ(t.count("x.S"), 0u);
  const auto bytes = io::serialize_safetensors(t, meta);
  const auto file = io::parse_safetensors(bytes.data(), bytes.size());
  const auto back = io::get_codebook(file, "x");
  EXPECT_EQ(rankq::serialize(back), rankq::serialize(q));
  // Corruptions are format errors naming the layer.
  auto bad = file;
  bad.tensors.at("x.S_q").bytes[0] = 0x80;  // int8 -128
  EXPECT_THROW(io::get_codebook(bad, "x"), format_error);
  bad = file;
  bad.tensors.at("x.V").shape = {2, 4};
  EXPECT_THROW(io::get_codebook(bad, "x"), format_error);
  bad = file;
  bad.metadata["x"] = "{\"kind\":\"lcq\",\"bits\":5}";
  EXPECT_THROW(io::get_codebook(bad, "x"), format_error);
}

TEST(ModelFile, BadLqerFilesAreFormatErrors) {
  RANKQ_REQUIRE_DATA("stories260K.bin");
  const auto weights = stories260k();
  const llama::Model model(weights, default_factory(MethodSpec{"lqer", 4, 4, 16}, {}, 1));
  const std::string q = "blk.0.attn_k.weight";
  io::SafetensorsFile file;  // the /2 form of one layer (io::put_lqer), which /2 files hold
  io::put_lqer(file.tensors, file.metadata, q, dynamic_cast<const LqerLinear&>(model.projection(q)).weights(), nullptr, "lqer");
  EXPECT_NO_THROW(io::get_lqer(file, q));
  auto expect_bad = [&](auto mutate) {
    auto f = file;
    mutate(f);
    EXPECT_THROW(io::get_lqer(f, q), format_error);
  };
  expect_bad([&](io::SafetensorsFile& f) { f.tensors.erase(q + ":b_t.codes"); });
  expect_bad([&](io::SafetensorsFile& f) { f.metadata.erase(q + ":a_t"); });
  expect_bad([&](io::SafetensorsFile& f) { f.metadata[q] = "{\"kind\":\"lqer\"}"; });
  expect_bad([&](io::SafetensorsFile& f) {
    auto j = nlohmann::json::parse(f.metadata[q]);
    j["rank"] = 5;  // the factors are rank 4
    f.metadata[q] = j.dump();
  });
  expect_bad([&](io::SafetensorsFile& f) {
    auto j = nlohmann::json::parse(f.metadata[q]);
    j["factors"] = "int8-sym-g16";  // stored as MXINT8
    f.metadata[q] = j.dump();
  });
}

TEST(ModelFile, BadFilesAreFormatErrors) {
  RANKQ_REQUIRE_DATA("stories260K.bin");
  const auto weights = stories260k();
  const MethodSpec m{"rtn", 4, 0, 32};
  const llama::Model model(weights, [&](const std::string& name, const io::FloatTensor& w) { return make_uniform_linear(m, name, w); });
  const std::string path = temp_path("bad.safetensors");
  save_quantized_model(path, weights, model, "x");
  auto file = io::read_safetensors(path);
  auto rewrite = [&](auto mutate) {
    auto f = file;
    mutate(f);
    io::write_safetensors(path, f.tensors, f.metadata);
  };
  rewrite([](io::SafetensorsFile& f) { f.metadata["rankq.format"] = "something-else"; });
  EXPECT_THROW(load_quantized_model(path), format_error);
  rewrite([](io::SafetensorsFile& f) { f.metadata.erase("blk.0.attn_q.weight:activation"); });
  EXPECT_THROW(llama::Model(load_quantized_model(path).weights, load_quantized_model(path).factory), format_error);
  rewrite([](io::SafetensorsFile& f) { f.tensors.erase("blk.2.ffn_down.weight.packed_w4"); });
  EXPECT_THROW(load_quantized_model(path), format_error);
  rewrite([](io::SafetensorsFile& f) { f.metadata["rankq.config"] = "{\"dim\": 64}"; });
  EXPECT_THROW(load_quantized_model(path), format_error);
  // Truncated file.
  {
    std::ifstream in(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
  }
  EXPECT_THROW(load_quantized_model(path), format_error);
  std::filesystem::remove(path);
}

namespace {
/// load_quantized_model's error message for `path`, or "" if it loaded.
std::string load_error(const std::string& path) {
  try {
    const auto loaded = load_quantized_model(path);
    const llama::Model model(loaded.weights, loaded.factory);
  } catch (const format_error& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("not a format_error: ") + e.what();
  }
  return "";
}

/// Writes `file`, changed by mutate(SafetensorsFile&), to `path`, with the checksums recomputed (fix_checksums) or
/// left as they were.
template <class Mutate>
void write_mutated(const io::SafetensorsFile& file, const std::string& path, Mutate mutate, bool fix_checksums) {
  auto f = file;
  mutate(f);
  if (fix_checksums) f.metadata[kChecksumsKey] = tensor_checksums(f.tensors);
  io::write_safetensors(path, f.tensors, f.metadata);
}

/// Loading `path` fails with a message that names the file, contains `what` and is not a raw JSON exception.
void expect_load_error(const std::string& path, const std::string& what) {
  const std::string e = load_error(path);
  EXPECT_NE(e.find(path), std::string::npos) << e;
  EXPECT_NE(e.find(what), std::string::npos) << "expected '" << what << "' in: " << e;
  EXPECT_EQ(e.find("json.exception"), std::string::npos) << e;
}
}  // namespace

TEST(ModelFile, ChecksumsConfigAndLayersAreVerified) {
  RANKQ_REQUIRE_DATA("stories260K.bin");
  const auto weights = stories260k();
  const MethodSpec m{"mxint", 4, 0, 0};
  const llama::Model model(weights, [&](const std::string& name, const io::FloatTensor& w) { return make_uniform_linear(m, name, w); });
  const std::string path = temp_path("checked.safetensors");
  save_quantized_model(path, weights, model, "x");
  const auto file = io::read_safetensors(path);
  ASSERT_EQ(load_error(path), "");
  auto rewrite = [&](auto mutate, bool fix_checksums) { write_mutated(file, path, mutate, fix_checksums); };
  auto expect_error = [&](const std::string& what) { expect_load_error(path, what); };
  // One flipped bit in a tensor's bytes (codes, exponents, a norm) is caught by its CRC-32C.
  for (const std::string t : {"blk.3.ffn_up.weight.packed_w4", "blk.1.attn_v.weight.packed_w4", "output_norm.weight"}) {
    rewrite([&](io::SafetensorsFile& f) { f.tensors.at(t).bytes[5] ^= 0x10; }, false);
    expect_error("tensor '" + t + "' is corrupted");
  }
  rewrite([](io::SafetensorsFile& f) { f.metadata.erase(kChecksumsKey); }, false);
  expect_error("rankq.checksums");
  // The config must describe exactly the tensors of the file.
  auto config = [&](const std::string& key, nlohmann::json value) {
    rewrite([&](io::SafetensorsFile& f) {
      auto j = nlohmann::json::parse(f.metadata["rankq.config"]);
      j[key] = value;
      f.metadata["rankq.config"] = j.dump();
    }, true);
  };
  config("n_layers", 4);  // the file has 5 layers
  expect_error("n_layers = 4");
  config("n_layers", 2147483647);
  expect_error("n_layers");
  config("dim", 32);
  expect_error("config implies");
  config("dim", "64");
  expect_error("'dim' is missing or not a positive 32-bit integer");
  config("seq_len", -1);
  expect_error("'seq_len'");
  config("norm_eps", nullptr);
  expect_error("'norm_eps'");
  rewrite([](io::SafetensorsFile& f) { f.metadata["rankq.config"] = "[1, 2]"; }, true);
  expect_error("'rankq.config' is not a JSON object");
  // A layer whose descriptor is missing leaves tensors that belong to no layer.
  rewrite([](io::SafetensorsFile& f) { f.metadata.erase("blk.0.attn_q.weight"); }, true);
  expect_error("belongs to no layer");
  rewrite([](io::SafetensorsFile& f) { f.metadata.erase("blk.4.ffn_down.weight:activation"); }, true);
  expect_error("has no activation format");
  rewrite([](io::SafetensorsFile& f) { f.metadata["blk.0.attn_q.weight:activation"] = "{\"kind\":\"mxint8\",\"block\":7,\"semantics\":\"lqer\"}"; }, true);
  expect_error("activation block must be 16 or 32");
  rewrite([](io::SafetensorsFile& f) { f.tensors.erase("blk.2.attn_k.weight.packed_w4"); }, true);
  expect_error("needs a tensor 'blk.2.attn_k.weight.packed_w4' of dtype U8");
  const auto& geo = dynamic_cast<const QuantizedLinear&>(model.projection("blk.0.ffn_up.weight")).stored().layer->packed_w4().geo;
  rewrite([&](io::SafetensorsFile& f) {  // an infinite first scale in the packed layout: refused by the layer's checks
    auto& b = f.tensors.at("blk.0.ffn_up.weight.packed_w4").bytes;
    const float inf32 = std::numeric_limits<float>::infinity();
    const std::uint16_t inf16 = 0x7C00;
    if (geo.scale_bytes == 4) std::memcpy(&b[geo.code_bytes()], &inf32, 4);
    else std::memcpy(&b[geo.code_bytes()], &inf16, 2);
  }, true);
  expect_error("layer 'blk.0.ffn_up.weight' cannot be built");
  std::filesystem::remove(path);
}

TEST(ModelFile, BadW8a8LayersAreFormatErrors) {
  RANKQ_REQUIRE_DATA("stories260K.bin");
  const auto weights = stories260k();
  const MethodSpec m{"rtn", 8, 0, 32};
  const llama::Model model(weights, [&](const std::string& name, const io::FloatTensor& w) { return make_uniform_linear(m, name, w); });
  const std::string path = temp_path("w8.safetensors");
  save_quantized_model(path, weights, model, "x");
  const auto file = io::read_safetensors(path);
  ASSERT_EQ(load_error(path), "");
  const std::string q = "blk.1.attn_q.weight", t = q + ".packed_w8";
  auto expect_error = [&](auto mutate, const std::string& what) {
    write_mutated(file, path, mutate, /*fix_checksums=*/true);
    expect_load_error(path, what);
  };
  const auto descriptor = [&](const char* key, nlohmann::json value) {
    return [=](io::SafetensorsFile& f) {
      auto d = nlohmann::json::parse(f.metadata.at(q));
      d[key] = value;
      f.metadata[q] = d.dump();
    };
  };
  expect_error([&](io::SafetensorsFile& f) { f.tensors.erase(t); }, "needs a tensor '" + t + "' of dtype U8");
  expect_error([&](io::SafetensorsFile& f) { f.tensors.at(t).bytes.resize(64), f.tensors.at(t).shape = {64}; },
               "needs a tensor '" + t + "' of dtype U8");
  expect_error(descriptor("symmetry", "skewed"), "unknown symmetry or scale_type");
  expect_error(descriptor("scale_type", "f32"), "needs a tensor '" + t + "'");  // f16 tiles are shorter
  expect_error(descriptor("padded", 1u << 18), "inconsistent cols, padded, group and groups");
  expect_error([&](io::SafetensorsFile& f) {  // consistent, but wider than the int32 dot products allow
    auto d = nlohmann::json::parse(f.metadata.at(q));
    d["cols"] = d["padded"] = d["group"] = 1u << 17;
    d["groups"] = 1;
    f.metadata[q] = d.dump();
  }, "the W8A8 limit");
  expect_error([&](io::SafetensorsFile& f) {  // an infinite first scale (f16 0x7C00): refused by the layer's checks
    const std::uint16_t inf16 = 0x7C00;
    std::memcpy(f.tensors.at(t).bytes.data(), &inf16, 2);
  }, "layer '" + q + "' cannot be built");
  std::filesystem::remove(path);
}

TEST(ModelFile, FailedWriteLeavesNoFile) {
  RANKQ_REQUIRE_DATA("stories260K.bin");
  const auto weights = stories260k();
  const llama::Model model(weights);
  const std::string path = temp_path("no_such_dir") + "/model.safetensors";
  EXPECT_ANY_THROW(save_quantized_model(path, weights, model, "fp32"));
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(ModelFile, HuggingFaceFolderLoadsLikeTheBin) {  // rankq-quantize --model DIR (model_run.hpp)
  RANKQ_REQUIRE_DATA("stories260K.bin", "tok512.bin", "tinystories-valid-head.txt");
  const auto weights = stories260k();
  const auto tok512 = llama::Tokenizer::from_file(rankq_test::data_path("tok512.bin"), 512);
  const std::string dir = temp_path("hf_folder");
  rankq_test::HfWriteOptions o;
  o.shards = 2;
  rankq_test::write_hf_checkpoint(dir, weights, o);
  rankq_test::write_text(dir + "/tokenizer.json", rankq_test::hf_tokenizer_json(tok512).dump());
  const io::LlamaModel hf = rankq::example::load_model(dir);
  ModelRunOptions run;
  run.model_path = dir;
  const llama::Tokenizer tok = load_tokenizer(run, 512);  // the folder's tokenizer.json
  run.tokenizer_path = dir + "/tokenizer.json";
  const llama::Tokenizer explicit_json = load_tokenizer(run, 512);
  std::filesystem::remove_all(dir);
  for (const auto& [name, t] : weights.tensors) EXPECT_EQ(hf.at(name).data, t.data) << name;
  const auto paragraphs = llama::load_paragraphs(rankq_test::data_path("tinystories-valid-head.txt"));
  for (std::size_t p = 0; p < 20; ++p) {
    EXPECT_EQ(tok.encode(paragraphs[p]), tok512.encode(paragraphs[p]));
    EXPECT_EQ(explicit_json.encode(paragraphs[p]), tok512.encode(paragraphs[p]));
  }
}

// The fuzz corpus's seed (fuzz/model_file_seed.hpp, written with the library's put_* only) must stay a valid file,
// or the fuzzer would only ever explore the rejection paths.
#include "../fuzz/model_file_seed.hpp"

TEST(ModelFile, FuzzSeedIsAValidModelFile) {
  const std::vector<std::uint8_t> bytes = seed::quantized_model_file();
  const auto loaded = parse_quantized_model(bytes.data(), bytes.size(), "seed");
  const llama::Model model(loaded.weights, loaded.factory);
  const auto logits = model.forward_sequence({0, 7, 3});
  EXPECT_EQ(logits.size(), 3u * 8u);
  for (float v : logits) EXPECT_TRUE(std::isfinite(v));
  auto flipped = bytes;
  flipped[flipped.size() - 3] ^= 1;  // a bit of the last tensor's data
  EXPECT_THROW(parse_quantized_model(flipped.data(), flipped.size(), "seed"), format_error);
}
