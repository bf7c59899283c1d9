// examples/rankq_quantize/lcq_rows.hpp — rankq-quantize's LCQ rows: RTN vs LCQ rank k = 1..4 at 4, 3 and 2 bits,
// each also with 8-bit double-quantized S and B, plus the int8-V kernel form run with int8 activations.
#pragma once

#include <rankq/kernels/codebook_reference.hpp>
#include <rankq/algorithms/lcq.hpp>
#include <rankq/formats/uniform.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "rankq_quantize/table_row.hpp"

namespace rankq::example {

struct LcqRowsOptions {
  std::size_t group_size = 128;          ///< LCQ and RTN group along K
  std::vector<unsigned> bits = {4, 3, 2};
  unsigned max_rank = 4;                 ///< rows for k = 1..max_rank
  unsigned max_iterations = 20;          ///< LcqOptions::max_iterations
  std::size_t threads = 0;               ///< 0 = all cores
  unsigned kernel_rank = 2;              ///< rank of the "int8-V" kernel-form rows (0 = none)
  unsigned unweighted_rank = 2;          ///< "D=1" rows (no calibration) for k = 1..unweighted_rank (0 = none)
};

/// D = E[x²] per input channel over the calibration rows, floored at 1e-8·max so every entry is positive
/// (all ones when the activations are all zero). What LCQ's channel_weights expect.
inline std::vector<float> channel_mean_square(const std::vector<float>& X, std::size_t rows, std::size_t K) {
  std::vector<double> acc(K, 0.0);
  for (std::size_t m = 0; m < rows; ++m)
    for (std::size_t k = 0; k < K; ++k) acc[k] += static_cast<double>(X[m * K + k]) * X[m * K + k];
  double mx = 0;
  for (double v : acc) mx = std::max(mx, v);
  std::vector<float> d(K, 1.0f);
  if (mx <= 0 || rows == 0) return d;
  for (std::size_t k = 0; k < K; ++k) d[k] = static_cast<float>(std::max(acc[k], 1e-8 * mx) / static_cast<double>(rows));
  return d;
}

/// Rows (bits per weight, relative weight error ‖Ŵ − W‖/‖W‖, relative output error ‖XŴᵀ − XWᵀ‖/‖XWᵀ‖ on the
/// float evaluation activations) for, per bit width: RTN asymmetric (f32 scales, LCQ's k = 1 starting point),
/// LCQ k = 1..unweighted_rank fitted without calibration ("D=1"), LCQ k = 1..max_rank fitted with D from the
/// calibration activations, each k again with 8-bit double-quantized S and B ("-dq8"), and for rank kernel_rank
/// the int8-V kernel form ("int8-V": its weights ŵ_K with float activations; "int8-V / A8": run through
/// codebook_reference_matmul with int8 per-token activations, so its output error includes theirs).
inline std::vector<TableRow> lcq_rows(const std::vector<float>& W, std::size_t N, std::size_t K,
                                      const std::vector<float>& calib, std::size_t calib_rows,
                                      const std::vector<float>& eval, std::size_t eval_rows,
                                      const LcqRowsOptions& o = {}) {
  const MatrixView<const float> Wv(W.data(), N, K);
  const std::vector<float> D = channel_mean_square(calib, calib_rows, K);
  const std::vector<float> y_ref = float_output(eval, eval_rows, W, N, K);
  auto errors = [&](const std::string& method, double bpw, const std::vector<float>& deq) {
    return TableRow{method, bpw, relative_error(deq, W), relative_error(float_output(eval, eval_rows, deq, N, K), y_ref)};
  };
  std::vector<TableRow> rows;
  for (unsigned bits : o.bits) {
    const UniformFormat rtn{bits, o.group_size, Symmetry::asymmetric, ScaleType::f32};
    rows.push_back(errors("RTN " + to_string(rtn), bits_per_weight(rtn, K), dequantize(quantize_uniform(Wv, rtn))));
    LcqOptions lo;
    lo.bits = bits;
    lo.group_size = o.group_size;
    lo.rank = o.max_rank;
    lo.max_iterations = o.max_iterations;
    lo.threads = o.threads;
    if (o.unweighted_rank > 0) {  // the same fit without calibration (D = 1): separates D's effect from the fit's
      LcqOptions uo = lo;
      uo.rank = o.unweighted_rank;
      for (const CodebookWeights& q : fit_lcq_all_ranks(Wv, {}, uo))
        rows.push_back(errors("LCQ " + to_string(q.format) + " D=1", codebook_storage(q).bits_per_weight, dequantize(q)));
    }
    std::vector<CodebookWeights> fitted = fit_lcq_all_ranks(Wv, D, lo);
    for (CodebookWeights& q : fitted) {
      rows.push_back(errors("LCQ " + to_string(q.format), codebook_storage(q).bits_per_weight, dequantize(q)));
      if (o.kernel_rank == q.format.rank) {
        const CodebookKernelTables kt = make_codebook_kernel_tables(q);
        rows.push_back(errors("LCQ " + to_string(q.format) + " int8-V", codebook_storage(q).bits_per_weight,
                              dequantize_kernel_ready(q, kt)));
        const QuantizedActivations x = quantize_activations(MatrixView<const float>(eval.data(), eval_rows, K),
                                                            ActivationFormat{}, q.padded);
        std::vector<float> y(eval_rows * N);
        codebook_reference_matmul(x, q, kt, MatrixView<float>(y.data(), eval_rows, N));
        rows.push_back(TableRow{"LCQ " + to_string(q.format) + " int8-V / A8", codebook_storage(q).bits_per_weight,
                                relative_error(dequantize_kernel_ready(q, kt), W), relative_error(y, y_ref)});
      }
      double_quantize(q, Wv, D);
      rows.push_back(errors("LCQ " + to_string(q.format), codebook_storage(q).bits_per_weight, dequantize(q)));
    }
  }
  return rows;
}

}  // namespace rankq::example
