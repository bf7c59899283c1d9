// Uses rankq through rankq::kernels only (no Eigen, no nlohmann-json): a prepared layer on its default path.
#include <rankq/rankq.hpp>

#include <cstdio>
#include <vector>

int main() {
  const std::size_t N = 20, K = 70;
  std::vector<float> w(N * K), x(2 * K), y(2 * N);
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = 0.01f * static_cast<float>(static_cast<int>(i % 17) - 8);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = 0.1f * static_cast<float>(static_cast<int>(i % 13) - 6);
  const auto layer = rankq::Linear::from_uniform(
      rankq::quantize_uniform(rankq::MatrixView<const float>(w.data(), N, K), rankq::UniformFormat{}));
  rankq::Context ctx;
  layer.forward(rankq::MatrixView<const float>(x.data(), 2, K), rankq::MatrixView<float>(y.data(), 2, N), ctx);
  std::printf("kernels-only consumer: path %s, y[0] = %g\n", rankq::to_string(layer.path()), static_cast<double>(y[0]));
  return 0;
}
