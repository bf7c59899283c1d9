// A consumer of the installed (or add_subdirectory'd) rankq: quantize a small matrix and check the round trip.
#include <rankq/rankq.hpp>

#include <cmath>
#include <cstdio>
#include <vector>

int main() {
  const std::size_t N = 8, K = 40;
  std::vector<float> w(N * K);
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = std::sin(0.37f * static_cast<float>(i));
  rankq::UniformFormat fmt;
  fmt.bits = 4;
  fmt.group_size = 16;
  auto q = rankq::quantize_uniform(rankq::MatrixView<const float>(w.data(), N, K), fmt);
  auto back = rankq::dequantize(q);
  double err = 0;
  for (std::size_t i = 0; i < w.size(); ++i) err = std::fmax(err, std::fabs(back[i] - w[i]));
  std::printf("rankq consumer: max |w - deq(q(w))| = %g\n", err);
  return err < 0.08 ? 0 : 1;
}
