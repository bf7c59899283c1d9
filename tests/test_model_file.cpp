// Tests for the quantized model file (examples/rankq_quantize/model_file.hpp) on the real stories260K
// checkpoint: a reloaded model gives identical logits; bad files are clear errors; writes are atomic.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <rankq/io/llama2c.hpp>

#include "llama/model.hpp"
#include "rankq_quantize/methods.hpp"
#include "rankq_quantize/model_file.hpp"

using namespace rankq;
using namespace rankq::example;

namespace {
const std::string kModel = std::string(RANKQ_SHARED_DATA_DIR) + "/stories260K.bin";

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("rankq_test_" + std::to_string(::getpid()) + "_" + name)).string();
}

io::LlamaModel load_or_fail() {
  if (!std::filesystem::exists(kModel)) throw std::runtime_error("missing real data: " + kModel + " (see shared/data/README.md)");
  return io::read_llama2c(kModel);
}
}  // namespace

TEST(ModelFile, ReloadedModelGivesIdenticalLogits) {
  const auto weights = load_or_fail();
  const std::vector<int> tokens = {1, 403, 407, 261, 378, 283, 1000 % 512, 15, 42};
  for (const MethodSpec& m : {MethodSpec{"rtn", 4, 0, 32}, MethodSpec{"rtn", 3, 0, 16}, MethodSpec{"mxint", 4, 0, 0}}) {
    const llama::Model model(weights, [&](const std::string& name, const io::FloatTensor& w) { return make_uniform_linear(m, name, w); });
    const std::string path = temp_path("model.safetensors");
    save_quantized_model(path, weights, model, describe(m));
    const auto loaded = load_quantized_model(path);
    std::filesystem::remove(path);
    EXPECT_EQ(loaded.method, describe(m));
    const llama::Model reloaded(loaded.weights, loaded.factory);
    EXPECT_EQ(reloaded.projection_bits_per_weight(), model.projection_bits_per_weight());
    EXPECT_EQ(reloaded.forward_sequence(tokens), model.forward_sequence(tokens)) << describe(m);
  }
}

TEST(ModelFile, BadFilesAreFormatErrors) {
  const auto weights = load_or_fail();
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
  rewrite([](io::SafetensorsFile& f) { f.tensors.erase("blk.2.ffn_down.weight.scales"); });
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

TEST(ModelFile, FailedWriteLeavesNoFile) {
  const auto weights = load_or_fail();
  const llama::Model model(weights);
  const std::string path = temp_path("no_such_dir") + "/model.safetensors";
  EXPECT_ANY_THROW(save_quantized_model(path, weights, model, "fp32"));
  EXPECT_FALSE(std::filesystem::exists(path));
}
