// examples/rankq_quantize/gptq_rows.hpp — rankq-quantize's GPTQ rows on the synthetic layer: RTN vs GPTQ (uniform
// asymmetric, groups of 128 and 32), MXINT vs GPTQ-MXINT, L²QER vs GPTQ + L²QER (k = 16), same formats and
// activations as the other tables; H = XᵀX/n of the layer's calibration rows (docs/gptq.md).
#pragma once

#include <rankq/algorithms/calibration.hpp>
#include <rankq/algorithms/gptq.hpp>
#include <rankq/kernels/lowrank_reference.hpp>

#include <string>
#include <vector>

#include "rankq_quantize/lqer_rows.hpp"
#include "rankq_quantize/synthetic.hpp"
#include "rankq_quantize/table_row.hpp"

namespace rankq::example {

inline TableRow lqer_table_row(const std::string& method, const SyntheticLayer& L, const LqerWeights& lw) {
  const ActivationFormat act{ActivationQuant::mxint8, 16, MxSemantics::lqer};
  std::vector<float> w_hat = dequantize(lw.weights);
  const std::vector<float> corr = dequantize(lw.correction);
  for (std::size_t i = 0; i < w_hat.size(); ++i) w_hat[i] += corr[i];
  std::vector<float> y(L.eval_rows * L.N);
  LowRankMatmulOptions ro;
  ro.requantize_output = false;  // lqer_gemm's semantics, as in lqer_rows
  lqer_reference_linear(MatrixView<const float>(L.eval.data(), L.eval_rows, L.K), act, lw,
                        MatrixView<float>(y.data(), L.eval_rows, L.N), ro);
  return TableRow{method, bits_per_weight(lw), relative_error(w_hat, L.W),
                  relative_error(y, float_output(L.eval, L.eval_rows, L.W, L.N, L.K))};
}

inline std::vector<TableRow> gptq_rows(const SyntheticLayer& L) {
  const MatrixView<const float> W(L.W.data(), L.N, L.K);
  ActivationStats stats(L.K, true);
  for (std::size_t r = 0; r < L.calib_rows; r += 32)  // L²QER's batches of 32 rows (lqer_rows' default)
    stats.add_batch(MatrixView<const float>(L.calib.data() + r * L.K, std::min<std::size_t>(32, L.calib_rows - r), L.K));
  const GptqHessian h = gptq_hessian(stats);
  const std::vector<float> scale = l2qer_scale(stats);
  ThreadPool pool(2);
  GptqOptions o;
  o.parallel_for = pool.hook();
  std::vector<TableRow> rows;
  const ActivationFormat a8{};
  for (unsigned bits : {4u, 3u, 2u})
    for (std::size_t g : {std::size_t(128), std::size_t(32)}) {
      const UniformFormat f{bits, g, Symmetry::asymmetric, ScaleType::f16};
      rows.push_back(uniform_row("RTN  " + to_string(f) + " / A8", L, quantize_uniform(W, f), bits_per_weight(f, L.K), a8));
      rows.push_back(uniform_row("GPTQ " + to_string(f) + " / A8", L, gptq_quantize_uniform(W, h, f, o), bits_per_weight(f, L.K), a8));
    }
  const ActivationFormat mx8{ActivationQuant::mxint8, 16, MxSemantics::lqer};
  for (unsigned bits : {4u, 3u}) {
    const MxFormat f{bits, 16, MxSemantics::lqer};
    rows.push_back(uniform_row("     " + to_string(f) + " / MXINT8", L, to_uniform(quantize_mxint(W, f)), bits_per_weight(f, L.K), mx8));
    rows.push_back(uniform_row("GPTQ " + to_string(f) + " / MXINT8", L, to_uniform(gptq_quantize_mxint(W, h, f, o)),
                               bits_per_weight(f, L.K), mx8));
  }
  LqerOptions lo;
  lo.rank = 16;
  lo.storage = LowRankStorage::mxint8;
  for (unsigned bits : {4u, 3u}) {
    const MxFormat f{bits, 16, MxSemantics::lqer};
    const std::string name = "L2QER MXINT" + std::to_string(bits) + " k=16 / MXINT8";
    rows.push_back(lqer_table_row("     " + name, L, quantize_lqer(W, f, scale, lo)));
    rows.push_back(lqer_table_row("GPTQ+" + name, L, gptq_quantize_lqer(W, h, f, scale, lo, o)));
  }
  return rows;
}

}  // namespace rankq::example
