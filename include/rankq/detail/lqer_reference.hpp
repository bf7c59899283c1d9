// rankq/detail/lqer_reference.hpp — the defined arithmetic of the int8 low-rank product (docs/lqer.md §5), written
// on the canonical factors (UniformWeights) as plainly as possible: the oracle of the fused kernels (and what
// lqer_reference_matmul uses). Eigen-free.
#pragma once

#include "rankq/detail/abi.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "rankq/formats/activation.hpp"
#include "rankq/error.hpp"
#include "rankq/formats/matrix.hpp"
#include "rankq/formats/uniform.hpp"

RANKQ_NAMESPACE_BEGIN namespace detail {

/// The low-rank products reduce in chunks of 16 (one integer dot product, one float fma per chunk).
inline constexpr std::size_t kLowRankChunk = 16;

/// An 8-bit factor the low-rank path can run: symmetric 8-bit, groups a multiple of 16 (MXINT8 via to_uniform,
/// int8 g16, int8 whole row).
inline void check_lowrank_factor(const UniformWeights& f, const char* fn, const char* name) {
  if (f.rows == 0 || f.cols == 0 || f.codes.size() != f.rows * f.row_bytes)
    throw_argument(fn, name, "is empty or inconsistent");
  if (f.format.bits != 8 || f.format.symmetry != Symmetry::symmetric)
    throw_argument(fn, name, "is not a symmetric 8-bit matrix (the low-rank factors are 8-bit, symmetric)");
  if (f.group % kLowRankChunk != 0 || f.padded < f.cols || f.padded % kLowRankChunk != 0)
    throw_argument(fn, name, "has group " + std::to_string(f.group) + ": must be a multiple of 16");
}

/// Level l = t − 128 (the signed int8 value) of an 8-bit symmetric factor.
inline int factor_level(const UniformWeights& f, std::size_t row, std::size_t k) {
  return static_cast<int>(f.codes[row * f.row_bytes + k]) - 128;
}

/// The scale that applies to chunk c (columns 16c .. 16c+15) of row `row`.
inline float factor_chunk_scale(const UniformWeights& f, std::size_t row, std::size_t c) {
  return f.scales[row * f.groups + c * kLowRankChunk / f.group];
}

/// out[m * chunks + c] = the activation scale of columns 16c .. 16c+15 of token m (x.block is 16, 32 or padded).
inline void activation_chunk_scales(const QuantizedActivations& x, std::size_t chunks, float* out) {
  for (std::size_t m = 0; m < x.rows; ++m)
    for (std::size_t c = 0; c < chunks; ++c) out[m * chunks + c] = x.scale(m, c * kLowRankChunk / x.block);
}
inline std::vector<float> activation_chunk_scales(const QuantizedActivations& x, std::size_t chunks) {
  std::vector<float> out(x.rows * chunks);
  activation_chunk_scales(x, chunks, out.data());
  return out;
}

/// The defined low-rank product of int8 activations x (M rows, stride x_stride, 16·chunks columns read) with the
/// rows of an 8-bit factor f (R rows, chunks = ceil(f.cols / 16)):
///   D[m][r][c] = Σ_{j<16} x[m][16c+j] · l[r][16c+j]                    (int32, exact)
///   acc = 0;  for c = 0, 1, ...:  acc = fma(xs[m][c] · s[r][c], float(D), acc)   (IEEE single, this order)
///   out[m][r] = acc                     (accumulate = false)
///   out[m][r] = (out[m][r] + acc) + bias[r]   (accumulate = true; "+ bias" only with a bias)
inline void lowrank_rows_reference(const std::int8_t* x, std::size_t x_stride, const float* xs, std::size_t M,
                                   const UniformWeights& f, float* out, std::size_t ldo, bool accumulate,
                                   const float* bias) {
  const std::size_t chunks = ceil_div(f.cols, kLowRankChunk);
  for (std::size_t m = 0; m < M; ++m)
    for (std::size_t r = 0; r < f.rows; ++r) {
      float acc = 0.0f;
      for (std::size_t c = 0; c < chunks; ++c) {
        std::int32_t d = 0;
        for (std::size_t j = 0; j < kLowRankChunk; ++j) {
          const std::size_t k = c * kLowRankChunk + j;
          const int l = k < f.cols ? factor_level(f, r, k) : 0;
          d += static_cast<std::int32_t>(x[m * x_stride + k]) * l;
        }
        const float scale = xs[m * chunks + c] * factor_chunk_scale(f, r, c);
        acc = std::fma(scale, static_cast<float>(d), acc);
      }
      float& o = out[m * ldo + r];
      if (!accumulate) {
        o = acc;
      } else {
        const float sum = o + acc;
        o = bias ? sum + bias[r] : sum;
      }
    }
}

/// The correction's intermediate results for M tokens: t = x·A (M x k), t_q = t re-quantized with x's format
/// (padded to round_up(k, 16), blocks along k), u = t_q·B (M x N). All by lowrank_rows_reference.
struct LowRankTerms {
  std::vector<float> t;
  QuantizedActivations t_q;
  std::vector<float> u;
};

inline void lowrank_correction_reference(const QuantizedActivations& x, const UniformWeights& a_t,
                                         const UniformWeights& b_t, LowRankTerms& out) {
  const std::size_t M = x.rows, k = a_t.rows, N = b_t.rows;
  const std::size_t a_chunks = ceil_div(a_t.cols, kLowRankChunk), b_chunks = ceil_div(b_t.cols, kLowRankChunk);
  out.t.assign(M * k, 0.0f);
  out.u.assign(M * N, 0.0f);
  const std::vector<float> xs = activation_chunk_scales(x, a_chunks);
  lowrank_rows_reference(x.values.data(), x.padded, xs.data(), M, a_t, out.t.data(), k, false, nullptr);
  quantize_activations(MatrixView<const float>(out.t.data(), M, k), x.format, out.t_q, b_chunks * kLowRankChunk);
  const std::vector<float> ts = activation_chunk_scales(out.t_q, b_chunks);
  lowrank_rows_reference(out.t_q.values.data(), out.t_q.padded, ts.data(), M, b_t, out.u.data(), N, false, nullptr);
}

}  RANKQ_NAMESPACE_END  // namespace rankq::detail
