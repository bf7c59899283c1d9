// fuzz/fuzz_model_file.cpp — libFuzzer target: the rankq quantized model file reader (rankq::io::parse_quantized_model
// of rankq/io/quantized_model.hpp, formats /3 and /2, through examples/rankq_quantize/model_file.hpp). Anything malformed must be a rankq::format_error; a file it accepts must
// build into a model (every projection through the stored-layer factory) that runs one short forward pass (which may
// refuse activations that overflow to non-finite values with rankq::invalid_argument, and nothing else).
// Mutations almost always break a tensor's CRC-32C, so each input is also tried with its checksums recomputed:
// that reaches the config, descriptor and layer checks behind the checksum test.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include <nlohmann/json.hpp>
#include <rankq/io/detail/crc32c.hpp>

#include "llama/model.hpp"
#include "rankq_quantize/model_file.hpp"

namespace {
void load_and_run(const std::uint8_t* data, std::size_t size) {
  try {
    const auto loaded = rankq::example::parse_quantized_model(data, size, "fuzz");
    const rankq::llama::Model model(loaded.weights, loaded.factory);
    const std::vector<int> tokens = {0, static_cast<int>(model.vocab_size() - 1)};
    if (model.max_positions() < 2 || model.vocab_size() > 4096 || model.config().dim > 256) return;
    try {
      (void)model.forward_sequence(tokens);
    } catch (const rankq::invalid_argument&) {
      // A well-formed file may hold weights whose activations overflow (e.g. norms of 1e38): the forward pass
      // refuses non-finite activations. That is the model's arithmetic, not a malformed file.
    }
  } catch (const rankq::format_error&) {
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  load_and_run(data, size);
  rankq::io::SafetensorsFile f;
  try {
    f = rankq::io::parse_safetensors(data, size);
  } catch (const rankq::format_error&) {
    return 0;
  }
  nlohmann::json sums = nlohmann::json::object();
  for (const auto& [name, t] : f.tensors) sums[name] = rankq::io::detail::crc32c(t.bytes.data(), t.bytes.size());
  f.metadata["rankq.checksums"] = sums.dump();
  const std::vector<std::uint8_t> fixed = rankq::io::serialize_safetensors(f.tensors, f.metadata);
  load_and_run(fixed.data(), fixed.size());
  return 0;
}
