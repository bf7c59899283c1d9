// Tests for rankq/algorithms/calibration.hpp: per-batch max of mean |x|, E[x²], Gram matrix, merge = single pass,
// serialization round trip and validation, the L²QER scale, and clear errors for bad input.
#include <rankq/algorithms/calibration.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "test_util.hpp"

using namespace rankq;

namespace {

MatrixView<const float> view(const std::vector<float>& v, std::size_t rows, std::size_t cols) {
  return MatrixView<const float>(v.data(), rows, cols);
}

}  // namespace

TEST(Calibration, MaxOfPerBatchMeansAndMeanSquare) {
  // Batch 1 (2 tokens): channel 0 |x| = 1, 3 -> mean 2; channel 1: 0, 4 -> 2.
  // Batch 2 (1 token):  channel 0 |x| = 1 -> 1;         channel 1: 6 -> 6.
  const std::vector<float> b1 = {1, 0, -3, 4}, b2 = {-1, 6};
  ActivationStats s(2);
  s.add_batch(view(b1, 2, 2));
  s.add_batch(view(b2, 1, 2));
  EXPECT_EQ(s.batches(), 2u);
  EXPECT_EQ(s.tokens(), 3u);
  EXPECT_DOUBLE_EQ(s.max_mean_abs()[0], 2.0);
  EXPECT_DOUBLE_EQ(s.max_mean_abs()[1], 6.0);
  const auto ms = s.mean_square();
  EXPECT_DOUBLE_EQ(ms[0], (1.0 + 9.0 + 1.0) / 3.0);
  EXPECT_DOUBLE_EQ(ms[1], (0.0 + 16.0 + 36.0) / 3.0);
}

TEST(Calibration, BatchSizeMattersForTheMaxButNotForMeanSquare) {
  const std::size_t M = 64, K = 20;
  const auto x = test::activations(M, K, 3);
  ActivationStats one(K), many(K);
  one.add_batch(view(x, M, K));
  for (std::size_t m = 0; m < M; m += 8) many.add_batch(MatrixView<const float>(x.data() + m * K, 8, K));
  for (std::size_t k = 0; k < K; ++k) {
    EXPECT_GE(many.max_mean_abs()[k], one.max_mean_abs()[k] * (1 - 1e-12));  // max of means >= overall mean
    EXPECT_NEAR(many.mean_square()[k], one.mean_square()[k], 1e-12 * one.mean_square()[k]);
  }
}

TEST(Calibration, GramMatrixMatchesDirectSum) {
  const std::size_t M = 300, K = 12;  // M > one 256-token panel
  const auto x = test::activations(M, K, 4);
  ActivationStats s(K, true);
  s.add_batch(MatrixView<const float>(x.data(), 100, K));
  s.add_batch(MatrixView<const float>(x.data() + 100 * K, 200, K));
  const auto& g = s.gram();
  for (std::size_t i = 0; i < K; ++i)
    for (std::size_t j = 0; j < K; ++j) {
      double ref = 0;
      for (std::size_t m = 0; m < M; ++m) ref += double(x[m * K + i]) * double(x[m * K + j]);
      EXPECT_NEAR(g[i * K + j], ref, 1e-10 * std::fabs(ref) + 1e-9) << i << "," << j;
      EXPECT_EQ(g[i * K + j], g[j * K + i]);
    }
  for (std::size_t k = 0; k < K; ++k) EXPECT_NEAR(g[k * K + k], s.sum_squares()[k], 1e-10 * s.sum_squares()[k]);
}

TEST(Calibration, MergeEqualsSinglePass) {
  const std::size_t K = 24;
  ActivationStats single(K, true), left(K, true), right(K, true);
  for (std::uint64_t b = 0; b < 6; ++b) {
    const auto x = test::activations(10 + b, K, 100 + b);
    single.add_batch(view(x, 10 + b, K));
    (b < 2 ? left : right).add_batch(view(x, 10 + b, K));
  }
  left.merge(right);
  EXPECT_EQ(left.batches(), single.batches());
  EXPECT_EQ(left.tokens(), single.tokens());
  for (std::size_t k = 0; k < K; ++k) {
    EXPECT_EQ(left.max_mean_abs()[k], single.max_mean_abs()[k]);  // max is exact
    EXPECT_NEAR(left.sum_squares()[k], single.sum_squares()[k], 1e-12 * single.sum_squares()[k]);
  }
  for (std::size_t i = 0; i < K * K; ++i)
    EXPECT_NEAR(left.gram()[i], single.gram()[i], 1e-12 * std::fabs(single.gram()[i]) + 1e-12);
  ActivationStats empty(K, true);
  empty.merge(single);
  EXPECT_EQ(empty.max_mean_abs(), single.max_mean_abs());
}

TEST(Calibration, MergeRejectsMismatches) {
  ActivationStats a(4), b(5), c(4, true);
  test::expect_invalid([&] { a.merge(b); }, "'other'");
  test::expect_invalid([&] { a.merge(c); }, "Gram");
}

TEST(Calibration, SerializationRoundTrip) {
  for (bool gram : {false, true}) {
    const std::size_t K = 7;
    ActivationStats s(K, gram);
    const auto x = test::activations(9, K, 5);
    s.add_batch(view(x, 9, K));
    s.add_batch(view(x, 3, K));
    const auto bytes = s.serialize();
    const ActivationStats r = ActivationStats::deserialize(bytes);
    EXPECT_EQ(r.channels(), K);
    EXPECT_EQ(r.has_gram(), gram);
    EXPECT_EQ(r.batches(), 2u);
    EXPECT_EQ(r.tokens(), 12u);
    EXPECT_EQ(r.max_mean_abs(), s.max_mean_abs());
    EXPECT_EQ(r.sum_squares(), s.sum_squares());
    if (gram) {
      EXPECT_EQ(r.gram(), s.gram());
    }
    EXPECT_EQ(r.serialize(), bytes);
  }
  // Empty stats round-trip too (and stay empty).
  EXPECT_TRUE(ActivationStats::deserialize(ActivationStats(3).serialize()).empty());
}

TEST(Calibration, DeserializeRejectsMalformedBytes) {
  ActivationStats s(5, true);
  const auto x = test::activations(4, 5, 6);
  s.add_batch(view(x, 4, 5));
  const auto good = s.serialize();
  auto expect_format_error = [](std::vector<std::uint8_t> b, const char* what) {
    EXPECT_THROW(ActivationStats::deserialize(b), format_error) << what;
  };
  for (std::size_t n : {std::size_t(0), std::size_t(3), std::size_t(20), good.size() - 1})
    expect_format_error(std::vector<std::uint8_t>(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(n)), "truncated");
  auto extra = good;
  extra.push_back(0);
  expect_format_error(extra, "trailing byte");
  auto bad = good;
  bad[0] = 'X';
  expect_format_error(bad, "magic");
  bad = good;
  bad[4] = 2;
  expect_format_error(bad, "version");
  bad = good;
  bad[8] = 0;  // flags: no Gram, so the size no longer matches
  expect_format_error(bad, "flags/size");
  bad = good;
  bad[8] = 4;
  expect_format_error(bad, "unknown flag");
  bad = good;
  for (int i = 0; i < 8; ++i) bad[12 + i] = 0xFF;  // K = 2^64 - 1
  expect_format_error(bad, "huge K");
  bad = good;
  for (int i = 0; i < 8; ++i) bad[12 + i] = 0;  // K = 0
  expect_format_error(bad, "K = 0");
  bad = good;
  for (int i = 0; i < 8; ++i) bad[20 + i] = 0;  // 0 batches but 4 tokens
  expect_format_error(bad, "counts");
  bad = good;
  bad[36 + 7] = 0xFF;  // first max-mean-abs becomes NaN/negative
  bad[36 + 6] = 0xF8;
  expect_format_error(bad, "NaN statistic");
  EXPECT_THROW(ActivationStats::deserialize(nullptr, 10), format_error);
}

TEST(Calibration, L2qerScale) {
  // a = [2, 0.5, 0 (-> 1e-4 clamp), 8]; min·max = 1e-4·8; s = a / sqrt(8e-4).
  const std::vector<float> x = {2, -0.5f, 0, 8, -2, 0.5f, 0, -8};
  ActivationStats st(4);
  st.add_batch(view(x, 2, 4));
  const auto s = l2qer_scale(st);
  const double norm = std::sqrt(1e-4 * 8.0);
  ASSERT_EQ(s.size(), 4u);
  EXPECT_FLOAT_EQ(s[0], float(2.0 / norm));
  EXPECT_FLOAT_EQ(s[1], float(0.5 / norm));
  EXPECT_FLOAT_EQ(s[2], float(1e-4 / norm));
  EXPECT_FLOAT_EQ(s[3], float(8.0 / norm));
  EXPECT_NEAR(double(s[2]) * s[3], 1.0, 1e-6);  // min·max = 1 after normalization
  // Outlier channels of test::activations get the largest scales.
  const auto a = test::activations(128, 74, 9);
  ActivationStats st2(74);
  st2.add_batch(view(a, 128, 74));
  const auto s2 = l2qer_scale(st2);
  EXPECT_GT(s2[5], 5 * s2[6]);
  EXPECT_GT(s2[42], 5 * s2[41]);
}

TEST(Calibration, BadInputIsAClearError) {
  ActivationStats s(4);
  test::expect_invalid([&] { l2qer_scale(s); }, "'stats' is empty");
  test::expect_invalid([&] { s.mean_square(); }, "'stats' is empty");
  test::expect_invalid([&] { s.gram(); }, "Gram");
  test::expect_invalid([] { ActivationStats(0); }, "'channels'");
  std::vector<float> x(12, 1.0f);
  test::expect_invalid([&] { s.add_batch(view(x, 4, 3)); }, "expected K = 4");
  test::expect_invalid([&] { s.add_batch(MatrixView<const float>(x.data(), 0, 4)); }, "'x'");
  x[5] = std::numeric_limits<float>::quiet_NaN();
  test::expect_invalid([&] { s.add_batch(view(x, 3, 4)); }, "non-finite");
  x[5] = std::numeric_limits<float>::infinity();
  test::expect_invalid([&] { s.add_batch(view(x, 3, 4)); }, "non-finite");
  EXPECT_TRUE(s.empty());  // failed batches leave no trace
}
