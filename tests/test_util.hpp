// tests/test_util.hpp — deterministic data generators and assertion helpers shared by the tests.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "rankq/error.hpp"
#include "rankq/formats/half.hpp"
#include "rankq/formats/matrix.hpp"

namespace test {

/// Student-t-like heavy-tailed values (what LLM weights look like), deterministic for a seed.
inline std::vector<float> heavy_tailed(std::size_t n, std::uint64_t seed, float scale = 0.02f) {
  std::mt19937_64 rng(seed);
  std::student_t_distribution<float> t(4.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = scale * t(rng);
  return v;
}

/// Gaussian values with a few outlier channels (columns) scaled up, like LLM activations.
inline std::vector<float> activations(std::size_t rows, std::size_t cols, std::uint64_t seed, float outlier = 20.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> v(rows * cols);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = 0; c < cols; ++c) v[r * cols + c] = g(rng) * ((c % 37 == 5) ? outlier : 1.0f);
  return v;
}

/// Expects fn() to throw rankq::invalid_argument whose message contains `needle`.
inline void expect_invalid(const std::function<void()>& fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "expected rankq::invalid_argument mentioning '" << needle << "'";
  } catch (const rankq::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << "message was: " << e.what();
  }
}

/// Expects fn() to throw rankq::format_error whose message contains `needle`.
inline void expect_format_error(const std::function<void()>& fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "expected rankq::format_error mentioning '" << needle << "'";
  } catch (const rankq::format_error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << "message was: " << e.what();
  }
}

/// A rows x cols matrix (row stride ld >= cols) held as 16-bit elements E (rankq::bf16_t or rankq::f16_t), and
/// the same values in float (exactly: each float is the element converted), as a dense rows x cols matrix: what
/// the float path of a quantizer gets when a BF16/F16 view must give its result bit for bit.
template <typename E>
struct ElementMatrix {
  std::size_t rows = 0, cols = 0, ld = 0;
  std::vector<E> elements;   ///< rows * ld (the columns past cols are filler, never read)
  std::vector<float> floats;  ///< rows * cols
  rankq::MatrixView<const E> view() const { return {elements.data(), rows, cols, ld}; }
  rankq::MatrixView<const float> float_view() const { return {floats.data(), rows, cols}; }
};

/// Heavy-tailed values (scale `scale`) rounded to E, with row stride ld (0: cols).
template <typename E>
ElementMatrix<E> element_matrix(std::size_t rows, std::size_t cols, std::uint64_t seed, std::size_t ld = 0,
                                float scale = 0.02f) {
  ElementMatrix<E> m;
  m.rows = rows;
  m.cols = cols;
  m.ld = ld == 0 ? cols : ld;
  const std::vector<float> v = heavy_tailed(rows * m.ld, seed, scale);
  m.elements.resize(rows * m.ld);
  m.floats.resize(rows * cols);
  for (std::size_t i = 0; i < v.size(); ++i) m.elements[i] = E::from_float(v[i]);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = 0; c < cols; ++c) m.floats[r * cols + c] = m.elements[r * m.ld + c].to_float();
  return m;
}

/// Bitwise equality of two float arrays (so that -0 vs 0 or two NaNs are told apart / matched exactly).
inline bool same_bits(const float* a, const float* b, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    if (rankq::float_bits(a[i]) != rankq::float_bits(b[i])) return false;
  return true;
}

}  // namespace test
