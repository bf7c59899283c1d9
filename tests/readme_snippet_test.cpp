// Runs the README's engine snippet (extracted from README.md into readme_snippet.cpp by tests/CMakeLists.txt) on a
// layer with K not a multiple of the group, and checks its output against w4a8_linear bit for bit.
#include <rankq/rankq.hpp>

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "test_util.hpp"

void readme_snippet(const float* w, std::size_t N, std::size_t K, const float* x, std::size_t M, float* y);

TEST(ReadmeSnippet, RunsAndEqualsW4A8Linear) {
  const std::size_t N = 70, K = 300;
  const auto w = test::heavy_tailed(N * K, 1);
  for (std::size_t M : {1u, 9u}) {
    const auto x = test::activations(M, K, 2 + M);
    std::vector<float> y(M * N, -1.0f), want(M * N, -2.0f);
    readme_snippet(w.data(), N, K, x.data(), M, y.data());
    const rankq::UniformFormat fmt{4, 128, rankq::Symmetry::symmetric, rankq::ScaleType::f16};
    const auto packed = rankq::pack_w4(rankq::quantize_uniform(rankq::MatrixView<const float>(w.data(), N, K), fmt));
    rankq::QuantizedActivations scratch;
    rankq::w4a8_linear(rankq::MatrixView<const float>(x.data(), M, K), rankq::ActivationFormat{}, packed,
                       rankq::MatrixView<float>(want.data(), M, N), scratch);
    for (std::size_t i = 0; i < y.size(); ++i) ASSERT_EQ(0, std::memcmp(&y[i], &want[i], sizeof(float))) << "M=" << M << " i=" << i;
  }
}
