// examples/rankq_quantize/table_row.hpp — one row of rankq-quantize's result table.
#pragma once

#include <string>

namespace rankq::example {

struct TableRow {
  std::string method;
  double bits_per_weight = 0;  ///< storage cost including scales, offsets, codebooks, low-rank factors
  double weight_error = 0;     ///< ‖Ŵ − W‖_F / ‖W‖_F
  double output_error = 0;     ///< ‖X_q·Ŵᵀ − X·Wᵀ‖_F / ‖X·Wᵀ‖_F on evaluation activations
};

}  // namespace rankq::example
