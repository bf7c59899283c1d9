// Runs the same operations through two translation units compiled with different ISA flags; results must agree.
#include <cmath>
#include <cstdio>
#include <vector>

std::vector<float> two_tu_a_roundtrip(const std::vector<float>& w, std::size_t n, std::size_t k);
std::vector<float> two_tu_b_roundtrip(const std::vector<float>& w, std::size_t n, std::size_t k);

int main() {
  const std::size_t n = 17, k = 172;
  std::vector<float> w(n * k);
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = std::cos(0.11f * static_cast<float>(i * i % 97));
  if (two_tu_a_roundtrip(w, n, k) != two_tu_b_roundtrip(w, n, k)) {
    std::puts("two-TU results differ");
    return 1;
  }
  std::puts("two-TU results agree");
  return 0;
}
