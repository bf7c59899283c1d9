// Translation unit A of the two-TU packaging test: every public header, compiled with the build's flags.
#include "rankq_all_headers.hpp"

#include <vector>

std::vector<float> two_tu_a_roundtrip(const std::vector<float>& w, std::size_t n, std::size_t k) {
  rankq::UniformFormat fmt;
  return rankq::dequantize(rankq::quantize_uniform(rankq::MatrixView<const float>(w.data(), n, k), fmt));
}
