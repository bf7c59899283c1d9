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

}  // namespace test
