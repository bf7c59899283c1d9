// fuzz/fuzz_safetensors.cpp — libFuzzer target: rankq::io::parse_safetensors, float decoding, and the property
// that anything the reader accepts re-serializes to a file that parses back to the same content.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "rankq/io/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  rankq::io::SafetensorsFile f;
  try {
    f = rankq::io::parse_safetensors(data, size);
  } catch (const rankq::format_error&) {
    return 0;
  }
  for (const auto& entry : f.tensors)
    if (rankq::io::is_float_dtype(entry.second.dtype)) (void)f.floats(entry.first);
  const std::vector<std::uint8_t> again = rankq::io::serialize_safetensors(f.tensors, f.metadata);
  const rankq::io::SafetensorsFile g = rankq::io::parse_safetensors(again.data(), again.size());
  if (g.metadata != f.metadata || g.tensors.size() != f.tensors.size()) std::abort();
  for (const auto& entry : f.tensors) {
    const rankq::io::RawTensor& t = g.at(entry.first);
    if (t.dtype != entry.second.dtype || t.shape != entry.second.shape || t.bytes != entry.second.bytes) std::abort();
  }
  return 0;
}
