// tests/test_codebook_rows.cpp — rankq-quantize's LCQ table rows (examples/rankq_quantize/lcq_rows.hpp) on a small
// layer: the expected rows, finite numbers, storage from codebook_storage, guarantees that hold by construction.
#include "rankq_quantize/lcq_rows.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace {

TEST(LcqRows, RtnVsLcqRowsForEveryBitWidthAndRank) {
  const std::size_t N = 16, K = 128, calib_rows = 32, eval_rows = 8;
  const auto W = test::heavy_tailed(N * K, 1);
  const auto calib = test::activations(calib_rows, K, 2);
  const auto eval = test::activations(eval_rows, K, 3);
  rankq::example::LcqRowsOptions o;
  o.group_size = 32;
  o.bits = {4, 2};
  o.max_rank = 3;
  o.max_iterations = 4;
  o.threads = 2;
  const auto rows = rankq::example::lcq_rows(W, N, K, calib, calib_rows, eval, eval_rows, o);
  // per bit width: RTN, 2 unweighted, 3 ranks x (plain, dq8), 2 kernel-form rows
  ASSERT_EQ(rows.size(), 2u * (1 + 2 + 6 + 2));
  std::map<std::string, rankq::example::TableRow> by_name;
  for (const auto& r : rows) {
    EXPECT_TRUE(std::isfinite(r.bits_per_weight) && std::isfinite(r.weight_error) && std::isfinite(r.output_error))
        << r.method;
    EXPECT_GT(r.weight_error, 0.0) << r.method;
    by_name[r.method] = r;
  }
  ASSERT_EQ(by_name.size(), rows.size()) << "method names must be unique";
  for (unsigned bits : {4u, 2u}) {
    const std::string b = std::to_string(bits);
    const auto& rtn = by_name.at("RTN int" + b + "-asym-g32-f32");
    // The unweighted fit starts at RTN and never increases ‖W − Ŵ‖², so it cannot be worse than RTN.
    EXPECT_LE(by_name.at("LCQ lcq" + b + "-k1-g32 D=1").weight_error, rtn.weight_error);
    EXPECT_LE(by_name.at("LCQ lcq" + b + "-k2-g32 D=1").weight_error, by_name.at("LCQ lcq" + b + "-k1-g32 D=1").weight_error);
    for (unsigned k = 1; k <= 3; ++k) {
      const std::string name = "LCQ lcq" + b + "-k" + std::to_string(k) + "-g32";
      const auto& plain = by_name.at(name);
      const auto& dq = by_name.at(name + "-dq8");
      EXPECT_DOUBLE_EQ(plain.bits_per_weight,
                       rankq::codebook_storage(rankq::CodebookFormat{bits, 32, k, false}, N, K).bits_per_weight);
      EXPECT_LT(dq.bits_per_weight, plain.bits_per_weight);
    }
    EXPECT_EQ(by_name.count("LCQ lcq" + b + "-k2-g32 int8-V"), 1u);
    EXPECT_EQ(by_name.count("LCQ lcq" + b + "-k2-g32 int8-V / A8"), 1u);
  }
}

TEST(LcqRows, ChannelMeanSquareIsPositive) {
  const std::size_t rows = 4, K = 8;
  std::vector<float> X(rows * K, 0.0f);
  for (std::size_t m = 0; m < rows; ++m) X[m * K + 1] = 2.0f;  // channel 1: E[x²] = 4, others 0
  const auto d = rankq::example::channel_mean_square(X, rows, K);
  EXPECT_FLOAT_EQ(d[1], 4.0f);
  for (std::size_t k = 0; k < K; ++k) EXPECT_GT(d[k], 0.0f);
  const auto ones = rankq::example::channel_mean_square(std::vector<float>(rows * K, 0.0f), rows, K);
  for (float v : ones) EXPECT_EQ(v, 1.0f);
}

}  // namespace
