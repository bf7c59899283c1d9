// examples/rankq_quantize/synthetic.hpp — the built-in deterministic synthetic layer (heavy-tailed weights,
// activations with a few outlier input channels) and the table rows for rankq's uniform and MXINT formats.
#pragma once

#include <rankq/rankq.hpp>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "rankq_quantize/table_row.hpp"

namespace rankq::example {

/// A linear layer y = x·Wᵀ with calibration and evaluation activations drawn from the same distribution.
struct SyntheticLayer {
  std::size_t N = 0, K = 0, calib_rows = 0, eval_rows = 0;
  std::vector<float> W;      ///< N x K
  std::vector<float> calib;  ///< calib_rows x K
  std::vector<float> eval;   ///< eval_rows x K
};

/// Student-t (ν = 4) weights with per-output-row scale variation; Gaussian activations whose channels have
/// log-normal magnitudes and where every 64th channel is a 25x outlier (what LLM activations look like).
inline SyntheticLayer make_synthetic_layer(std::size_t N = 512, std::size_t K = 1024, std::size_t calib_rows = 256,
                                           std::size_t eval_rows = 128, std::uint64_t seed = 2024) {
  SyntheticLayer L;
  L.N = N, L.K = K, L.calib_rows = calib_rows, L.eval_rows = eval_rows;
  std::mt19937_64 rng(seed);
  std::student_t_distribution<double> t4(4.0);
  std::normal_distribution<double> gauss(0.0, 1.0);
  L.W.resize(N * K);
  for (std::size_t n = 0; n < N; ++n) {
    const double row_scale = 0.02 * std::exp(0.3 * gauss(rng));
    for (std::size_t k = 0; k < K; ++k) L.W[n * K + k] = static_cast<float>(row_scale * t4(rng));
  }
  std::vector<double> channel(K);
  for (std::size_t k = 0; k < K; ++k) channel[k] = std::exp(0.5 * gauss(rng)) * (k % 64 == 7 ? 25.0 : 1.0);
  auto draw = [&](std::vector<float>& X, std::size_t rows) {
    X.resize(rows * K);
    for (std::size_t m = 0; m < rows; ++m)
      for (std::size_t k = 0; k < K; ++k) X[m * K + k] = static_cast<float>(channel[k] * gauss(rng));
  };
  draw(L.calib, calib_rows);
  draw(L.eval, eval_rows);
  return L;
}

/// One row for quantized weights `q` run with int8 activations (`act`) through rankq's W·A8 path:
/// the packed SIMD kernels for ≤ 4-bit codes, the reference matmul for 8-bit.
inline TableRow uniform_row(const std::string& method, const SyntheticLayer& L, const UniformWeights& q, double bpw,
                            const ActivationFormat& act) {
  const std::vector<float> deq = dequantize(q);
  const auto y_ref = float_output(L.eval, L.eval_rows, L.W, L.N, L.K);
  std::vector<float> y(L.eval_rows * L.N);
  auto x = quantize_activations(MatrixView<const float>(L.eval.data(), L.eval_rows, L.K), act, q.padded);
  if (q.format.bits <= 4) {
    W4A8Options o;
    o.path = best_supported_path();
    w4a8_gemm(x, pack_w4(q), MatrixView<float>(y.data(), L.eval_rows, L.N), o);
  } else {
    reference_matmul(x, q, MatrixView<float>(y.data(), L.eval_rows, L.N));
  }
  return TableRow{method, bpw, relative_error(deq, L.W), relative_error(y, y_ref)};
}

/// Rows for every uniform format (bits × symmetry at group 128 and 32) and MXINT weights, with A8 per-token.
inline std::vector<TableRow> format_rows(const SyntheticLayer& L) {
  std::vector<TableRow> rows;
  const MatrixView<const float> W(L.W.data(), L.N, L.K);
  const ActivationFormat a8{};
  for (unsigned bits : {8u, 4u, 3u, 2u})
    for (std::size_t g : {std::size_t(128), std::size_t(32)})
      for (Symmetry s : {Symmetry::symmetric, Symmetry::asymmetric}) {
        const UniformFormat f{bits, g, s, ScaleType::f16};
        rows.push_back(uniform_row("RTN " + to_string(f) + " / A8", L, quantize_uniform(W, f), bits_per_weight(f, L.K), a8));
      }
  for (unsigned bits : {8u, 4u, 3u})
    for (MxSemantics sem : {MxSemantics::lqer, MxSemantics::ocp}) {
      const MxFormat f{bits, 16, sem};
      const ActivationFormat mx8{ActivationQuant::mxint8, 16, sem};
      rows.push_back(uniform_row(to_string(f) + " / MXINT8", L, to_uniform(quantize_mxint(W, f)), bits_per_weight(f, L.K), mx8));
    }
  return rows;
}

}  // namespace rankq::example
