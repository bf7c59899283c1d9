// Translation unit B of the two-TU packaging test: every public header again, compiled with -march=native on
// x86 so that an inline function compiled differently in A and B would expose an ODR mistake.
#include "rankq_all_headers.hpp"

#include <vector>

std::vector<float> two_tu_b_roundtrip(const std::vector<float>& w, std::size_t n, std::size_t k) {
  rankq::UniformFormat fmt;
  return rankq::dequantize(rankq::quantize_uniform(rankq::MatrixView<const float>(w.data(), n, k), fmt));
}
