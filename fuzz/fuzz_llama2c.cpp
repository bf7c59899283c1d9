// fuzz/fuzz_llama2c.cpp — libFuzzer target: rankq::io::parse_llama2c. rankq::format_error is the only allowed
// failure; a model that loads must have every tensor sized as its shape says.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "rankq/io/llama2c.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const rankq::io::LlamaModel m = rankq::io::parse_llama2c(data, size);
    for (const auto& entry : m.tensors) {
      std::uint64_t n = 1;
      for (std::uint64_t d : entry.second.shape) n *= d;
      if (n != entry.second.data.size()) std::abort();
    }
    (void)m.at("output.weight");
  } catch (const rankq::format_error&) {
  }
  return 0;
}
