// examples/rankq_quantize/table_row.hpp — one row of rankq-quantize's result table and the two errors it reports.
#pragma once

#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

namespace rankq::example {

struct TableRow {
  std::string method;
  double bits_per_weight = 0;  ///< storage cost including scales, offsets, codebooks, low-rank factors
  double weight_error = 0;     ///< ‖Ŵ − W‖_F / ‖W‖_F
  double output_error = 0;     ///< ‖X_q·Ŵᵀ − X·Wᵀ‖_F / ‖X·Wᵀ‖_F on evaluation activations
};

/// ‖a − b‖ / ‖b‖ in double.
inline double relative_error(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double d = static_cast<double>(a[i]) - b[i];
    num += d * d;
    den += static_cast<double>(b[i]) * b[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

/// X (rows x K) · Wᵀ (W: N x K) in double accumulation, stored as float: the fp32 reference output.
inline std::vector<float> float_output(const std::vector<float>& X, std::size_t rows, const std::vector<float>& W,
                                       std::size_t N, std::size_t K) {
  std::vector<float> Y(rows * N);
  for (std::size_t m = 0; m < rows; ++m)
    for (std::size_t n = 0; n < N; ++n) {
      double s = 0;
      for (std::size_t k = 0; k < K; ++k) s += static_cast<double>(X[m * K + k]) * W[n * K + k];
      Y[m * N + n] = static_cast<float>(s);
    }
  return Y;
}

}  // namespace rankq::example
