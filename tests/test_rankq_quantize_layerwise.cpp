// Tests for the bounded-memory pipeline (examples/rankq_quantize/layerwise.hpp over rankq/io/llama_checkpoint.hpp and
// rankq/io/quantized_model_stream.hpp): the file it streams equals, byte for byte, what the whole-model path writes
// (calibrate the whole fp32 model, build every layer, save_quantized_model), for every kind of method, on a
// multi-layer synthetic checkpoint (GQA, no data needed) and on stories260K as llama2.c and as a sharded BF16 Hugging
// Face folder; and the stream writer's checks leave no file behind.
#include <gtest/gtest.h>

#include <rankq/io/llama2c.hpp>
#include <rankq/io/quantized_model_stream.hpp>
#include <rankq/io/safetensors.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "hf_writer.hpp"
#include "llama/model.hpp"
#include "llama/paragraphs.hpp"
#include "llama/tokenizer.hpp"
#include "rankq_quantize/layerwise.hpp"
#include "rankq_quantize/model_file.hpp"
#include "rankq_quantize/model_run.hpp"
#include "test_data.hpp"
#include "test_util.hpp"

using namespace rankq;
using namespace rankq::example;

namespace {

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    path = std::filesystem::temp_directory_path() / ("rankq_layerwise_" + std::to_string(::getpid()));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

std::vector<char> file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<char>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

/// A llama2.c v0 file (header, weights kind by kind, freq_cis, shared classifier) written independently of the reader.
void write_llama2c(const std::string& path, const io::LlamaModel& m) {
  std::ofstream out(path, std::ios::binary);
  const io::LlamaConfig& c = m.config;
  const std::int32_t header[7] = {c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.seq_len};
  out.write(reinterpret_cast<const char*>(header), sizeof header);
  for (const auto& [name, shape] : io::detail::llama_tensor_shapes(c)) {
    const auto& d = m.tensors.at(name).data;
    out.write(reinterpret_cast<const char*>(d.data()), static_cast<std::streamsize>(d.size() * 4));
  }
  const std::vector<float> freq(static_cast<std::size_t>(c.dim / c.n_heads / 2 * c.seq_len) * 2, 0.f);
  out.write(reinterpret_cast<const char*>(freq.data()), static_cast<std::streamsize>(freq.size() * 4));
}

/// 3 blocks, dim 64, GQA (4 heads, 2 KV heads), hidden 96, vocab 48; weights with a few outlier input channels.
io::LlamaModel synthetic_model() {
  io::LlamaModel m;
  m.config = {64, 96, 3, 4, 2, 48, 32};
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.f, 0.05f);
  for (const auto& [name, shape] : io::detail::llama_tensor_shapes(m.config)) {
    io::FloatTensor t{shape, std::vector<float>(static_cast<std::size_t>(shape[0] * (shape.size() > 1 ? shape[1] : 1)))};
    const std::size_t cols = shape.size() > 1 ? static_cast<std::size_t>(shape[1]) : t.data.size();
    for (std::size_t i = 0; i < t.data.size(); ++i)
      t.data[i] = shape.size() == 1 ? 1.f + normal(rng) : normal(rng) * (i % cols == 5 || i % cols == 17 ? 8.f : 1.f);
    m.tensors.emplace(name, std::move(t));
  }
  m.tensors.emplace("output.weight", m.tensors.at("token_embd.weight"));
  return m;
}

/// The whole-model path of rankq-quantize (run_model before the layer-by-layer pipeline).
void write_whole_model(const std::string& path, const io::LlamaModel& weights, const MethodSpec& m, const llama::Tokenizer* tok,
                       const std::vector<std::string>& paragraphs, llama::ParagraphRange range) {
  CalibrationStats calib;
  if (needs_calibration(m)) calib = calibrate(weights, *tok, paragraphs, range, nullptr, m.gptq.enabled);
  const llama::Model model(weights, default_factory(m, calib, 2));
  save_quantized_model(path, weights, model, describe(m));
}

/// `in_place`: RTN/MXINT from the checkpoint's own element type (as run_model_layerwise does), else every
/// projection decoded to float and built by the factory.
void write_layerwise(const std::string& path, const io::LlamaCheckpoint& ckpt, const MethodSpec& m, const llama::Tokenizer* tok,
                     const std::vector<std::string>& paragraphs, llama::ParagraphRange range, bool in_place = false) {
  LayerwiseMethod lm{describe(m), needs_calibration(m), m.gptq.enabled,
                     [m](const CalibrationStats& stats) { return default_factory(m, stats, 2); }};
  if (in_place) lm.in_place = [m](const io::LlamaCheckpoint& c, const std::string& name) { return quantize_in_place(m, c, name); };
  quantize_layerwise(ckpt, tok, paragraphs, range, lm, path);
}

/// The layer-by-layer file of a BF16/F16 checkpoint keeps its embedding, norms and classifier in `dtype`, where the
/// whole-model path (which gets the model decoded to float) writes F32: the same values. Everything else — metadata
/// but the checksums, every other tensor's bytes — is equal.
void expect_same_model_in_own_dtype(const std::string& whole_path, const std::string& layerwise_path, io::DType dtype,
                                    const std::string& what) {
  const io::SafetensorsFile whole = io::read_safetensors(whole_path), layerwise = io::read_safetensors(layerwise_path);
  ASSERT_EQ(whole.tensors.size(), layerwise.tensors.size()) << what;
  std::size_t own_dtype = 0;
  for (const auto& [name, t] : whole.tensors) {
    const io::RawTensor& u = layerwise.tensors.at(name);
    EXPECT_EQ(u.shape, t.shape) << what << " " << name;
    const bool from_checkpoint = name == "token_embd.weight" || name == "output.weight" || name.find("norm.weight") != std::string::npos;
    if (from_checkpoint && t.dtype == io::DType::f32) {
      EXPECT_EQ(u.dtype, dtype) << what << " " << name;
      EXPECT_EQ(io::to_float(u), io::to_float(t)) << what << " " << name;
      ++own_dtype;
    } else {
      EXPECT_TRUE(u.dtype == t.dtype && u.bytes == t.bytes) << what << " " << name;
    }
  }
  const auto blocks = static_cast<std::size_t>(std::count_if(whole.tensors.begin(), whole.tensors.end(), [](const auto& e) {
    return e.first.find(".attn_norm.weight") != std::string::npos;
  }));
  EXPECT_EQ(own_dtype, 3 + 2 * blocks) << what;  // embedding, classifier, final norm; two norms per block
  auto meta = [](std::map<std::string, std::string> m) {
    m.erase("rankq.checksums");
    return m;
  };
  EXPECT_EQ(meta(whole.metadata), meta(layerwise.metadata)) << what;
  EXPECT_LT(std::filesystem::file_size(layerwise_path), std::filesystem::file_size(whole_path)) << what;
}

MethodSpec gptq_rtn() {
  MethodSpec m{"rtn", 4, 0, 32};
  m.gptq.enabled = true;
  return m;
}

}  // namespace

TEST(Layerwise, UncalibratedMethodsGiveTheWholeModelFileBitForBit) {
  TempDir dir;
  const io::LlamaModel weights = synthetic_model();
  write_llama2c(dir / "model.bin", weights);
  const io::LlamaCheckpoint ckpt = io::open_llama2c(dir / "model.bin");
  ASSERT_TRUE(ckpt.mapped);
  for (const MethodSpec& m : {MethodSpec{"rtn", 4, 0, 32}, MethodSpec{"rtn", 8, 0, 0}, MethodSpec{"mxint", 4, 0, 0}, MethodSpec{"lqer", 4, 8, 16},
                              MethodSpec{"fp32", 32, 0, 0} /* projections stored as F32 */}) {
    write_whole_model(dir / "old.rq", weights, m, nullptr, {}, {});
    write_layerwise(dir / "new.rq", ckpt, m, nullptr, {}, {});
    const auto old_bytes = file_bytes(dir / "old.rq"), new_bytes = file_bytes(dir / "new.rq");
    ASSERT_GT(old_bytes.size(), 1000u);
    EXPECT_TRUE(old_bytes == new_bytes) << describe(m);
    if (quantizes_in_place(m)) {  // from the mapped F32 tensors, no float copy
      write_layerwise(dir / "new.rq", ckpt, m, nullptr, {}, {}, true);
      EXPECT_TRUE(old_bytes == file_bytes(dir / "new.rq")) << describe(m) << " in place";
    }
  }
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path), {}), 3);  // model.bin, old.rq, new.rq: no spool left
}

TEST(Layerwise, CalibratedMethodsGiveTheWholeModelFileBitForBit) {
  RANKQ_REQUIRE_DATA("stories260K.bin", "tok512.bin", "tinystories-valid-head.txt");
  TempDir dir;
  const std::string data = rankq_test::data_dir();
  const io::LlamaModel weights = io::read_llama2c(data + "/stories260K.bin");
  const auto tok = llama::Tokenizer::from_file(data + "/tok512.bin", static_cast<std::size_t>(weights.config.vocab_size));
  const auto paragraphs = llama::load_paragraphs(data + "/tinystories-valid-head.txt");
  const llama::ParagraphRange range{0, 6};
  const io::LlamaCheckpoint ckpt = io::open_llama2c(data + "/stories260K.bin");
  for (const MethodSpec& m : {MethodSpec{"l2qer", 4, 8, 16}, MethodSpec{"lcq", 4, 2, 32}, MethodSpec{"lcq", 3, 1, 0, true}, gptq_rtn(),
                              MethodSpec{"rtn", 4, 0, 32}}) {
    write_whole_model(dir / "old.rq", weights, m, &tok, paragraphs, range);
    write_layerwise(dir / "new.rq", ckpt, m, &tok, paragraphs, range);
    EXPECT_TRUE(file_bytes(dir / "old.rq") == file_bytes(dir / "new.rq")) << describe(m);
  }
}

TEST(Layerwise, ShardedBf16HuggingFaceFolderGivesTheWholeModelFile) {
  RANKQ_REQUIRE_DATA("stories260K.bin", "tok512.bin", "tinystories-valid-head.txt");
  TempDir dir;
  const std::string data = rankq_test::data_dir();
  const io::LlamaModel original = io::read_llama2c(data + "/stories260K.bin");
  const auto tok = llama::Tokenizer::from_file(data + "/tok512.bin", static_cast<std::size_t>(original.config.vocab_size));
  rankq_test::HfWriteOptions o;
  o.dtype = io::DType::bf16;
  o.shards = 2;
  rankq_test::write_hf_checkpoint(dir / "hf", original, o);
  const io::LlamaModel weights = io::read_hf_llama(dir / "hf");  // BF16 values, Q/K permutation undone
  const io::LlamaCheckpoint ckpt = io::open_hf_llama(dir / "hf");
  for (const auto& [name, t] : weights.tensors) EXPECT_EQ(ckpt.load(name).data, t.data) << name;
  const auto paragraphs = llama::load_paragraphs(data + "/tinystories-valid-head.txt");
  for (const MethodSpec& m : {MethodSpec{"l2qer", 4, 8, 16}, MethodSpec{"rtn", 4, 0, 32}}) {
    write_whole_model(dir / "old.rq", weights, m, &tok, paragraphs, {0, 4});
    write_layerwise(dir / "new.rq", ckpt, m, &tok, paragraphs, {0, 4});
    expect_same_model_in_own_dtype(dir / "old.rq", dir / "new.rq", io::DType::bf16, describe(m));
  }
}

TEST(Layerwise, InPlaceFromBf16AndF16FoldersGivesTheWholeModelFile) {
  // RTN and MXINT read the mapped BF16/F16 tensors (MatrixView<const bf16_t>), Q/K in HF's rotary order, and
  // put the quantized rows back in Meta's order: the file equals the one built from the decoded float model.
  TempDir dir;
  const io::LlamaModel original = synthetic_model();
  for (const io::DType dtype : {io::DType::bf16, io::DType::f16}) {
    rankq_test::HfWriteOptions o;
    o.dtype = dtype;
    o.shards = 2;
    const std::string folder = dir / (std::string("hf_") + io::dtype_name(dtype));
    rankq_test::write_hf_checkpoint(folder, original, o);
    const io::LlamaModel weights = io::read_hf_llama(folder);
    const io::LlamaCheckpoint ckpt = io::open_hf_llama(folder);
    ASSERT_GT(ckpt.entry("blk.0.attn_q.weight").permute_heads, 0);
    for (const MethodSpec& m : {MethodSpec{"rtn", 4, 0, 32}, MethodSpec{"rtn", 3, 0, 0}, MethodSpec{"rtn", 8, 0, 16},
                                MethodSpec{"mxint", 4, 0, 0}, MethodSpec{"mxint", 2, 0, 0}}) {
      write_whole_model(dir / "old.rq", weights, m, nullptr, {}, {});
      write_layerwise(dir / "new.rq", ckpt, m, nullptr, {}, {}, true);
      expect_same_model_in_own_dtype(dir / "old.rq", dir / "new.rq", dtype, describe(m) + " " + io::dtype_name(dtype));
    }
  }
}

TEST(Layerwise, MatrixViewsOfACheckpointAreItsOwnElementsInPlace) {
  TempDir dir;
  const io::LlamaModel original = synthetic_model();
  rankq_test::HfWriteOptions o;
  o.dtype = io::DType::bf16;
  rankq_test::write_hf_checkpoint(dir / "hf", original, o);
  const io::LlamaCheckpoint ckpt = io::open_hf_llama(dir / "hf");
  for (const char* name : {"blk.1.ffn_up.weight", "blk.0.attn_k.weight"}) {
    const io::CheckpointTensor& e = ckpt.entry(name);
    const io::FloatTensor loaded = ckpt.load(name);  // Meta's row order
    const bool viewed = ckpt.with_matrix_view(name, [&](auto view) {
      using E = std::remove_const_t<std::remove_pointer_t<decltype(view.data)>>;
      EXPECT_TRUE((std::is_same_v<E, bf16_t>)) << name;
      EXPECT_EQ(reinterpret_cast<const void*>(view.data), reinterpret_cast<const void*>(e.data)) << name;  // no copy
      EXPECT_EQ(view.rows, e.shape[0]);
      EXPECT_EQ(view.cols, e.shape[1]);
      std::vector<float> row(view.cols);
      for (std::size_t r = 0; r < view.rows; ++r) {
        const std::size_t file_row = e.permute_heads > 0 ? io::hf_rotary_file_row(r, view.rows, e.permute_heads) : r;
        row_as_float(view, file_row, row.data());
        EXPECT_TRUE(std::equal(row.begin(), row.end(), loaded.data.begin() + static_cast<std::ptrdiff_t>(r * view.cols))) << name << " row " << r;
      }
      return true;
    });
    EXPECT_TRUE(viewed);
  }
  EXPECT_THROW(ckpt.with_matrix_view("blk.0.attn_norm.weight", [](auto) { return 0; }), rankq::invalid_argument);  // 1-D
}

TEST(Layerwise, MisalignedTensorBytesAreViewedThroughAnAlignedCopyOfTheirOwnType) {
  // A BF16 and an F32 tensor at odd addresses (safetensors promises no alignment): the view is of an aligned copy
  // in the tensor's own element type, with the same values as load().
  std::vector<std::uint8_t> bytes(1 + 3 * 5 * 4);
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::uint8_t>(0x3C + (i * 7) % 5);
  io::LlamaCheckpoint ckpt;
  ckpt.source = "test";
  ckpt.tensors["a"] = io::CheckpointTensor{io::DType::bf16, {3, 5}, bytes.data() + 1, 15, 0};
  ckpt.tensors["b"] = io::CheckpointTensor{io::DType::f32, {3, 5}, bytes.data() + 1, 15, 0};
  for (const char* name : {"a", "b"}) {
    const io::FloatTensor loaded = ckpt.load(name);
    const std::vector<float> viewed = ckpt.with_matrix_view(name, [&](auto view) {
      EXPECT_NE(reinterpret_cast<const void*>(view.data), reinterpret_cast<const void*>(bytes.data() + 1)) << name;
      std::vector<float> out(view.rows * view.cols);
      for (std::size_t r = 0; r < view.rows; ++r) row_as_float(view, r, out.data() + r * view.cols);
      return out;
    });
    EXPECT_TRUE(test::same_bits(viewed.data(), loaded.data.data(), loaded.data.size())) << name;
  }
}

TEST(Layerwise, ReleasedTensorsLoadAgainUnchanged) {
  TempDir dir;
  const io::LlamaModel weights = synthetic_model();
  write_llama2c(dir / "model.bin", weights);
  const io::LlamaCheckpoint ckpt = io::open_llama2c(dir / "model.bin");
  for (const auto& [name, t] : weights.tensors) {
    EXPECT_EQ(ckpt.load(name).data, t.data) << name;
    ckpt.release(name);
    EXPECT_EQ(ckpt.load(name).data, t.data) << name;
  }
  EXPECT_THROW(ckpt.load("blk.9.attn_q.weight"), rankq::format_error);
}

TEST(QuantizedModelStream, RefusesBadInputAndLeavesNoFile) {
  TempDir dir;
  const io::LlamaModel weights = synthetic_model();
  const std::string path = dir / "out.rq";
  {
    io::QuantizedModelStream out(path, weights.config, "x");
    EXPECT_THROW(out.add_tensor("blk.7.attn_norm.weight", weights.at("blk.0.attn_norm.weight")), rankq::invalid_argument);
    EXPECT_THROW(out.add_tensor("blk.0.ffn_norm.weight", weights.at("blk.0.attn_q.weight")), rankq::invalid_argument);  // shape
    out.add_tensor("token_embd.weight", weights.at("token_embd.weight"));
    EXPECT_THROW(out.add_tensor("token_embd.weight", weights.at("token_embd.weight")), rankq::invalid_argument);  // twice
    io::FloatTensor bad = weights.at("output_norm.weight");
    bad.data[3] = std::nanf("");
    EXPECT_THROW(out.add_tensor("output_norm.weight", bad), rankq::invalid_argument);
    // In its own element type: a BF16 NaN at index 3, an integer dtype, null bytes; a refused tensor is not "added".
    const std::vector<std::uint64_t> norm_shape = bad.shape;
    std::vector<std::uint8_t> bf16(static_cast<std::size_t>(norm_shape[0]) * 2, 0x3f);  // 0x3f3f: 0.746...
    bf16[6] = 0xc0, bf16[7] = 0x7f;
    try {
      out.add_tensor("output_norm.weight", io::DType::bf16, norm_shape, bf16.data());
      ADD_FAILURE() << "a BF16 NaN was accepted";
    } catch (const rankq::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("index 3"), std::string::npos) << e.what();
    }
    EXPECT_THROW(out.add_tensor("output_norm.weight", io::DType::i8, norm_shape, bf16.data()), rankq::invalid_argument);
    EXPECT_THROW(out.add_tensor("output_norm.weight", io::DType::bf16, norm_shape, nullptr), rankq::invalid_argument);
    bf16[6] = bf16[7] = 0x3f;
    out.add_tensor("output_norm.weight", io::DType::bf16, norm_shape, bf16.data());
    EXPECT_THROW(out.add_tensor("output_norm.weight", io::DType::bf16, norm_shape, bf16.data()), rankq::invalid_argument);
    try {
      out.finish();  // most tensors missing
      ADD_FAILURE() << "finish() accepted a model without its blocks";
    } catch (const rankq::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("blk.0"), std::string::npos) << e.what();
    }
  }
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path), {}), 0);  // no spool or temporary file
  std::filesystem::create_directory(dir / "a_dir");
  EXPECT_THROW(io::QuantizedModelStream(dir / "a_dir", weights.config, "x"), io::io_error);
  io::LlamaConfig broken = weights.config;
  broken.n_kv_heads = 3;
  EXPECT_THROW(io::QuantizedModelStream(path, broken, "x"), rankq::invalid_argument);
}

TEST(Layerwise, Fp32PerplexityLayerByLayerEqualsTheWholeModel) {
  RANKQ_REQUIRE_DATA("stories260K.bin", "tok512.bin", "tinystories-valid-head.txt");
  const std::string data = rankq_test::data_dir();
  io::LlamaModel weights = io::read_llama2c(data + "/stories260K.bin");
  io::LlamaCheckpoint ckpt = io::open_llama2c(data + "/stories260K.bin");
  const auto tok = llama::Tokenizer::from_file(data + "/tok512.bin", static_cast<std::size_t>(weights.config.vocab_size));
  const auto paragraphs = llama::load_paragraphs(data + "/tinystories-valid-head.txt");
  for (int seq_len : {512, 24}) {  // 24: long paragraphs are scored in overlapping windows; classifier in 11 slices
    weights.config.seq_len = ckpt.config.seq_len = seq_len;
    const llama::Model model(weights);
    const auto whole = chunked_perplexity(model, tok, paragraphs, {300, 340}, 2, "fp32");
    const auto layerwise = fp32_perplexity_layerwise(ckpt, tok, paragraphs, {300, 340}, 2, seq_len == 24 ? 48 : kClassifierSlice);
    EXPECT_EQ(layerwise.tokens, whole.tokens);
    EXPECT_EQ(layerwise.mean_nll, whole.mean_nll) << seq_len;  // bit for bit
    EXPECT_EQ(layerwise.perplexity, whole.perplexity) << seq_len;
  }
}
