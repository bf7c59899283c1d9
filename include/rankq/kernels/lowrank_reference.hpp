// rankq/kernels/lowrank_reference.hpp — the scalar reference of LQER inference, y = x_q·W_qᵀ + Q(Q(x_q·A)·B) (+ bias), built from
// reference_matmul, the defined int8 low-rank product (detail/lqer_reference.hpp) and quantize_activations.
// Semantics (which products are re-quantized, and how): docs/lqer.md §5.
#pragma once

#include "rankq/detail/abi.hpp"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

#include "rankq/formats/activation.hpp"
#include "rankq/error.hpp"
#include "rankq/formats/matrix.hpp"
#include "rankq/kernels/reference.hpp"
#include "rankq/formats/uniform.hpp"
#include "rankq/detail/lqer_reference.hpp"
#include "rankq/formats/lowrank.hpp"

RANKQ_NAMESPACE_BEGIN

struct LowRankMatmulOptions {
  const float* bias = nullptr;    ///< N floats added last, or null
  /// The paper's output fake-quantization: (x_q·A)·B is rounded to the activation format (x's format,
  /// blocks along N) before it is added to x_q·W_qᵀ. false: it is added unrounded (float).
  bool requantize_output = true;
};

namespace detail {
/// The same quantized activations padded to `padded` columns instead of x.padded: exactly what
/// quantize_activations(x_float, x.format, padded) returns (padding never changes a block's scale).
inline QuantizedActivations repad_activations(const QuantizedActivations& x, std::size_t padded) {
  QuantizedActivations r;
  r.format = x.format;
  r.rows = x.rows;
  r.cols = x.cols;
  r.padded = padded;
  r.block = x.format.kind == ActivationQuant::per_token ? padded : x.block;
  r.blocks = ceil_div(padded, r.block);
  r.values.resize(x.rows * padded);
  r.scales.resize(x.rows * r.blocks);
  for (std::size_t m = 0; m < x.rows; ++m) {
    std::memcpy(r.values.data() + m * padded, x.row(m), x.cols);
    for (std::size_t b = 0; b < std::min(r.blocks, x.blocks); ++b) r.scales[m * r.blocks + b] = x.scale(m, b);
  }
  return r;
}
}  // namespace detail

/// Y (M x N) = x_q·W_qᵀ + Q(Q(x_q·A)·B) + bias, where Q is x's activation quantizer (x.format):
///  1. main   = reference_matmul(x, w)                        — NOT re-quantized (float output);
///  2. t      = x_q·A, M x k, float                           — the defined int8 product (docs/lqer.md §5:
///              int32 dot products per chunk of 16, one fma per chunk; detail::lowrank_rows_reference);
///  3. t_q    = quantize_activations(t, x.format)             — re-quantized (padded to round_up(k, 16), blocks along k);
///  4. u      = t_q·B, M x N, float                           — the same defined int8 product;
///  5. u_q    = dequantized quantize_activations(u, x.format) — fake-quantized output (blocks along N), unless
///              options.requantize_output is false (the fused kernels' semantics: lowrank_kernel.hpp);
///  6. y      = (main + u_q) + bias, in float.
/// x must be padded to w.padded (as for reference_matmul).
inline void lqer_reference_matmul(const QuantizedActivations& x, const UniformWeights& w, const LowRankCorrection& c,
                                  MatrixView<float> y, const LowRankMatmulOptions& o = {}) {
  constexpr const char* fn = "lqer_reference_matmul";
  if (c.in_features != w.cols || c.out_features != w.rows)
    detail::throw_argument(fn, "c", "is a correction for " + std::to_string(c.out_features) + "x" +
                                        std::to_string(c.in_features) + " weights but w is " + std::to_string(w.rows) +
                                        "x" + std::to_string(w.cols));
  if (c.a_t.rows != c.rank || c.a_t.cols != c.in_features || c.b_t.rows != c.out_features || c.b_t.cols != c.rank)
    detail::throw_argument(fn, "c", "has factors inconsistent with its rank and shape");
  detail::check_lowrank_factor(c.a_t, fn, "c.a_t");
  detail::check_lowrank_factor(c.b_t, fn, "c.b_t");
  reference_matmul(x, w, y);
  const std::size_t M = x.rows, N = w.rows;
  detail::LowRankTerms terms;
  detail::lowrank_correction_reference(x, c.a_t, c.b_t, terms);
  std::vector<float>& u = terms.u;
  if (o.requantize_output) {
    const QuantizedActivations u_q = quantize_activations(MatrixView<const float>(u.data(), M, N), x.format);
    for (std::size_t m = 0; m < M; ++m)
      for (std::size_t n = 0; n < N; ++n) u[m * N + n] = u_q.value(m, n);
  }
  for (std::size_t m = 0; m < M; ++m)
    for (std::size_t n = 0; n < N; ++n) {
      const float sum = y(m, n) + u[m * N + n];
      y(m, n) = o.bias ? sum + o.bias[n] : sum;
    }
}

/// Float activations in: quantizes x (M x K) with `format` padded to lw.weights.padded, then
/// lqer_reference_matmul with lw's weights and correction.
inline void lqer_reference_linear(MatrixView<const float> x, const ActivationFormat& format, const LqerWeights& lw,
                                  MatrixView<float> y, const LowRankMatmulOptions& o = {}) {
  lqer_reference_matmul(quantize_activations(x, format, lw.weights.padded), lw.weights, lw.correction, y, o);
}

RANKQ_NAMESPACE_END  // namespace rankq
