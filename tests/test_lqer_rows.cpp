// tests/test_lqer_rows.cpp — rankq-quantize's LQER table rows (examples/rankq_quantize/lqer_rows.hpp) on a small
// synthetic layer with outlier activation channels: the expected rows, exact storage, and the paper's ordering
// (output error L²QER < LQER < plain MXINT, non-increasing in k).
#include "rankq_quantize/lqer_rows.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>

#include "rankq_quantize/synthetic.hpp"

namespace {

TEST(LqerRows, PlainVsLqerVsL2qerOnOutlierActivations) {
  const auto L = rankq::example::make_synthetic_layer(64, 256, 64, 16, 7);
  rankq::example::LqerRowsOptions o;
  o.ranks = {4, 8, 16};
  o.calib_batch = 16;
  const auto rows = rankq::example::lqer_rows(L.W, L.N, L.K, L.calib, L.calib_rows, L.eval, L.eval_rows, o);
  ASSERT_EQ(rows.size(), 2u * (1 + 2 * 3));
  std::map<std::string, rankq::example::TableRow> by;
  for (const auto& r : rows) {
    EXPECT_TRUE(std::isfinite(r.bits_per_weight) && std::isfinite(r.weight_error) && std::isfinite(r.output_error)) << r.method;
    by[r.method] = r;
  }
  ASSERT_EQ(by.size(), rows.size()) << "method names must be unique";
  for (unsigned bits : {4u, 3u}) {
    const std::string w = "MXINT" + std::to_string(bits);
    const auto& plain = by.at(w + " / MXINT8");
    EXPECT_DOUBLE_EQ(plain.bits_per_weight, bits + 0.5);  // 8-bit exponent per 16 weights
    double prev_lqer = plain.output_error, prev_l2 = plain.output_error;
    for (std::size_t k : {4u, 8u, 16u}) {
      const auto& lq = by.at("LQER " + w + " k=" + std::to_string(k) + " / MXINT8");
      const auto& l2 = by.at("L2QER " + w + " k=" + std::to_string(k) + " / MXINT8");
      // MXINT8 factors: Aᵀ k x 256 (16 blocks per row), Bᵀ 64 x k (k padded to 16): 8.5 bits per stored element.
      const double factor_bits = 8.5 * (static_cast<double>(k) * 256 + 64.0 * 16) / (64.0 * 256);
      EXPECT_NEAR(lq.bits_per_weight, bits + 0.5 + factor_bits, 1e-12) << lq.method;
      EXPECT_DOUBLE_EQ(l2.bits_per_weight, lq.bits_per_weight);
      EXPECT_LT(lq.weight_error, plain.weight_error) << lq.method;  // plain LQER minimises ‖E − AB‖ itself
      EXPECT_LT(l2.output_error, lq.output_error) << l2.method;
      EXPECT_LT(lq.output_error, plain.output_error) << lq.method;
      EXPECT_LE(lq.output_error, prev_lqer) << lq.method;
      EXPECT_LE(l2.output_error, prev_l2) << l2.method;
      prev_lqer = lq.output_error;
      prev_l2 = l2.output_error;
    }
  }
}

TEST(LqerRows, CalibrationBatchesGiveMaxOfMeans) {
  const std::size_t K = 2;
  const std::vector<float> x = {1, 0, 1, 0, 3, 0, 5, 2};  // rows (1,0) (1,0) (3,0) (5,2)
  const auto s = rankq::example::lqer_calibration(x, 4, K, 2);
  EXPECT_EQ(s.batches(), 2u);
  EXPECT_DOUBLE_EQ(s.max_mean_abs()[0], 4.0);
  EXPECT_DOUBLE_EQ(s.max_mean_abs()[1], 1.0);
}

}  // namespace
