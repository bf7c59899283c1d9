// examples/rankq_quantize/lqer_rows.hpp — rankq-quantize's LQER rows on the synthetic layer: plain MXINT weights vs
// LQER vs L²QER (rank k correction, MXINT8 factors) at W4A8 and W3A8, all run with MXINT8 activations (blocks of 16)
// through lqer_reference_linear — the paper's ablation (plain > LQER > L²QER in output error) on one layer.
#pragma once

#include <rankq/algorithms/calibration.hpp>
#include <rankq/kernels/lowrank_reference.hpp>
#include <rankq/algorithms/lqer.hpp>
#include <rankq/formats/mxint.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "rankq_quantize/table_row.hpp"

namespace rankq::example {

struct LqerRowsOptions {
  std::vector<unsigned> bits = {4, 3};          ///< MXINT weight bits
  std::vector<std::size_t> ranks = {4, 8, 16, 32};
  std::size_t calib_batch = 32;                 ///< calibration rows per ActivationStats batch (L²QER's max of batch means)
};

/// L²QER's calibration statistics of `calib` (rows x K), one batch per `batch` rows.
inline ActivationStats lqer_calibration(const std::vector<float>& calib, std::size_t rows, std::size_t K, std::size_t batch) {
  ActivationStats stats(K);
  for (std::size_t r = 0; r < rows; r += batch)
    stats.add_batch(MatrixView<const float>(calib.data() + r * K, std::min(batch, rows - r), K));
  return stats;
}

/// Per weight bit width b: "MXINTb / MXINT8" (no correction), then "LQER MXINTb k=… / MXINT8" and
/// "L2QER MXINTb k=… / MXINT8" for every rank. bits/weight includes the MXINT8 factors; weight error is
/// ‖Q(W) + (AB)ᵀ − W‖/‖W‖ with the quantized factors; output error is lqer_reference_linear's (MXINT8 activations,
/// re-quantized intermediate x_q·A, correction added unrounded: lqer_gemm's semantics) against the float X·Wᵀ.
inline std::vector<TableRow> lqer_rows(const std::vector<float>& W, std::size_t N, std::size_t K,
                                       const std::vector<float>& calib, std::size_t calib_rows,
                                       const std::vector<float>& eval, std::size_t eval_rows,
                                       const LqerRowsOptions& o = {}) {
  const MatrixView<const float> Wv(W.data(), N, K);
  const MatrixView<const float> X(eval.data(), eval_rows, K);
  const ActivationFormat act{ActivationQuant::mxint8, 16, MxSemantics::lqer};
  const std::vector<float> y_ref = float_output(eval, eval_rows, W, N, K);
  const std::vector<float> scale = l2qer_scale(lqer_calibration(calib, calib_rows, K, o.calib_batch));
  std::vector<TableRow> rows;
  for (unsigned bits : o.bits) {
    const MxFormat f{bits, 16, MxSemantics::lqer};
    const std::string wname = "MXINT" + std::to_string(bits);
    {
      const UniformWeights q = to_uniform(quantize_mxint(Wv, f));
      std::vector<float> y(eval_rows * N);
      reference_matmul(quantize_activations(X, act, q.padded), q, MatrixView<float>(y.data(), eval_rows, N));
      rows.push_back(TableRow{wname + " / MXINT8", bits_per_weight(f, K), relative_error(dequantize(q), W), relative_error(y, y_ref)});
    }
    for (const bool l2 : {false, true})
      for (std::size_t k : o.ranks) {
        LqerOptions lo;
        lo.rank = k;
        lo.storage = LowRankStorage::mxint8;
        const LqerWeights lw = quantize_lqer(Wv, f, l2 ? scale : std::vector<float>{}, lo);
        std::vector<float> w_hat = dequantize(lw.weights);
        const std::vector<float> corr = dequantize(lw.correction);
        for (std::size_t i = 0; i < w_hat.size(); ++i) w_hat[i] += corr[i];
        std::vector<float> y(eval_rows * N);
        LowRankMatmulOptions ro;
        ro.requantize_output = false;  // what lqer_gemm (and rankq-quantize --model) computes
        lqer_reference_linear(X, act, lw, MatrixView<float>(y.data(), eval_rows, N), ro);
        rows.push_back(TableRow{std::string(l2 ? "L2QER " : "LQER ") + wname + " k=" + std::to_string(k) + " / MXINT8",
                                bits_per_weight(lw), relative_error(w_hat, W), relative_error(y, y_ref)});
      }
  }
  return rows;
}

}  // namespace rankq::example
