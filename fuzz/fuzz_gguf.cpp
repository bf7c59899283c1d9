// fuzz/fuzz_gguf.cpp — libFuzzer target: rankq::io::parse_gguf and everything built on a parsed file (typed
// accessors, tensor decoding, the llama mapping, the vocabulary). rankq::format_error is the only allowed failure.
#include <cstddef>
#include <cstdint>

#include "rankq/io/gguf.hpp"

namespace {

template <typename F>
void allow_format_error(F&& f) {
  try {
    f();
  } catch (const rankq::format_error&) {
  }
}

void touch(const rankq::io::GgufValue& v) {
  allow_format_error([&] { (void)v.as_int(); });
  allow_format_error([&] { (void)v.as_uint(); });
  allow_format_error([&] { (void)v.as_float(); });
  allow_format_error([&] { (void)v.as_bool(); });
  allow_format_error([&] { (void)v.as_string(); });
  allow_format_error([&] { (void)v.as_int_array(); });
  allow_format_error([&] { (void)v.as_bool_array(); });
  allow_format_error([&] { (void)v.as_float_array(); });
  allow_format_error([&] { (void)v.as_string_array(); });
  allow_format_error([&] {
    for (const auto& sub : v.as_array_array()) touch(sub);
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  allow_format_error([&] {
    const rankq::io::GgufFile g = rankq::io::parse_gguf(data, size);
    for (const auto& v : g.metadata()) touch(v);
    for (const auto& t : g.tensors()) {
      allow_format_error([&] { (void)g.tensor_raw(t.name); });
      allow_format_error([&] { (void)g.tensor_floats(t.name); });
    }
    allow_format_error([&] { (void)rankq::io::load_llama_gguf(g); });
    allow_format_error([&] { (void)rankq::io::gguf_vocab(g); });
  });
  return 0;
}
