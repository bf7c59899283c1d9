// rankq/algorithms/lqer.hpp — LQER and L²QER (Zhang et al., ICML 2024): a low-rank correction A_k·B_k of a weight
// quantizer's error, fitted by truncated SVD of the (activation-scaled) error, its factors stored as 8-bit rankq
// weight matrices. The weights may be float, bf16_t or f16_t views: quantize_lqer reads them row by row (the
// quantizer, then the error), and its only N x K float buffer is the scaled error the SVD needs anyway (docs/formats.md
// §8, "Weight element types"). Math, storage format and the deviation from the paper's blocking: docs/lqer.md.
#pragma once

#include "rankq/detail/abi.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include "rankq/error.hpp"
#include "rankq/formats/matrix.hpp"
#include "rankq/formats/mxint.hpp"
#include "rankq/kernels/reference.hpp"
#include "rankq/algorithms/svd.hpp"
#include "rankq/formats/uniform.hpp"
#include "rankq/algorithms/detail/lqer_factors.hpp"
#include "rankq/formats/lowrank.hpp"
#include "rankq/detail/scratch_buffer.hpp"

RANKQ_NAMESPACE_BEGIN

struct LqerOptions {
  std::size_t rank = 32;                            ///< k, in [1, min(N, K)]
  LowRankStorage storage = LowRankStorage::mxint8;  ///< format of Aᵀ and Bᵀ
  SvdOptions svd;                                   ///< automatic: randomized when (k + 10)·4 <= min(N, K)
};

namespace detail {
inline UniformWeights quantize_lowrank_factor(MatrixView<const float> f, LowRankStorage storage, double& bits) {
  const double elements = static_cast<double>(f.rows) * static_cast<double>(f.cols);
  switch (storage) {
    case LowRankStorage::mxint8: {
      const MxFormat mf{8, 16, MxSemantics::lqer};
      bits = bits_per_weight(mf, f.cols) * elements;
      return quantize_mxint_uniform(f, mf);  // = to_uniform(quantize_mxint(f, mf))
    }
    case LowRankStorage::int8_group16:
    case LowRankStorage::int8_row: {
      const UniformFormat uf{8, storage == LowRankStorage::int8_row ? kWholeRow : 16, Symmetry::symmetric, ScaleType::f16};
      bits = bits_per_weight(uf, f.cols) * elements;
      return quantize_uniform(f, uf);
    }
  }
  throw_argument("fit_low_rank_correction", "options.storage", "is not mxint8, int8_group16 or int8_row");
}

inline void check_lqer_options(const LqerOptions& o, std::size_t N, std::size_t K, const char* fn) {
  if (o.rank == 0 || o.rank > std::min(N, K))
    throw_argument(fn, "options.rank", "= " + std::to_string(o.rank) + ": must be in [1, min(N, K) = " +
                                           std::to_string(std::min(N, K)) + "]");
  if (o.storage != LowRankStorage::mxint8 && o.storage != LowRankStorage::int8_group16 &&
      o.storage != LowRankStorage::int8_row)
    throw_argument(fn, "options.storage", "is not mxint8, int8_group16 or int8_row");
}

/// Fits the correction to an already scaled error E_s (N x K row-major, ‖E_s‖² given). Used by both entry points.
inline LowRankCorrection fit_scaled_error(const float* scaled_error, double norm2, std::size_t N, std::size_t K,
                                          const std::vector<float>& scale, const LqerOptions& o, const char* fn) {
  check_lqer_options(o, N, K, fn);
  // Our row-major N x K buffer is, read column-major, the paper's K x N matrix diag(s)·E: no copy.
  const Eigen::Map<const Eigen::MatrixXf> es(scaled_error, static_cast<Eigen::Index>(K), static_cast<Eigen::Index>(N));
  const TruncatedSvd svd = truncated_svd(es, o.rank, o.svd);
  LowRankCorrection c;
  c.rank = o.rank;
  c.out_features = N;
  c.in_features = K;
  c.storage = o.storage;
  c.svd_method = svd.method;
  c.scaled_error_norm_squared = norm2;
  c.singular_values.assign(svd.sigma.data(), svd.sigma.data() + svd.sigma.size());
  factors_from_svd(svd, scale.empty() ? nullptr : scale.data(), c.a_t_float, c.b_t_float);
  double bits_a = 0, bits_b = 0;
  c.a_t = quantize_lowrank_factor(MatrixView<const float>(c.a_t_float.data(), o.rank, K), o.storage, bits_a);
  c.b_t = quantize_lowrank_factor(MatrixView<const float>(c.b_t_float.data(), N, o.rank), o.storage, bits_b);
  c.storage_bits = bits_a + bits_b;
  return c;
}

template <typename T>
LqerWeights quantize_lqer_uniform(MatrixView<const T> w, UniformWeights q, double weight_bits,
                                         const std::vector<float>& scale, const LqerOptions& o, const char* fn) {
  detail::ScratchBuffer<float> es(w.rows * w.cols);  // uninitialised, huge pages: written once just below
  const double norm2 = scaled_quantization_error(w, q, scale.empty() ? nullptr : scale.data(), es.data());
  LqerWeights r;
  r.correction = fit_scaled_error(es.data(), norm2, w.rows, w.cols, scale, o, fn);
  r.weights = std::move(q);
  r.weight_bits = weight_bits;
  return r;
}
}  // namespace detail

/// Fits the rank-k correction of a quantization error `error` = W − Q(W) (N x K, PyTorch layout). `scale`:
/// L²QER's per-input-channel s (K values, see l2qer_scale) or empty for plain LQER (s = 1). In the paper's
/// orientation (E: K x N): SVD of diag(s)·E = U Σ Vᵀ, A_k = diag(s)⁻¹·U_k, B_k = Σ_k·V_kᵀ, then 8-bit storage.
inline LowRankCorrection fit_low_rank_correction(MatrixView<const float> error, const std::vector<float>& scale,
                                                 const LqerOptions& o = {}) {
  constexpr const char* fn = "fit_low_rank_correction";
  detail::check_view(error, fn, "error");
  detail::require_finite(error.data, error.rows, error.cols, error.ld, fn, "error");
  detail::check_scale(scale, error.cols, fn);
  detail::check_lqer_options(o, error.rows, error.cols, fn);
  detail::ScratchBuffer<float> es(error.rows * error.cols);
  double norm2 = 0;
  for (std::size_t n = 0; n < error.rows; ++n)
    for (std::size_t k = 0; k < error.cols; ++k) {
      const float e = scale.empty() ? error(n, k) : error(n, k) * scale[k];
      es.data()[n * error.cols + k] = e;
      norm2 += static_cast<double>(e) * e;
    }
  return detail::fit_scaled_error(es.data(), norm2, error.rows, error.cols, scale, o, fn);
}

/// LQER / L²QER with a uniform weight quantizer: W_q = quantize_uniform(w, format), E = W − W_q, correction.
/// w: float, bf16_t or f16_t (the result equals the float path's on the same values bit for bit).
template <typename T>
LqerWeights quantize_lqer(MatrixView<T> wv, const UniformFormat& format, const std::vector<float>& scale,
                          const LqerOptions& o = {}) {
  static_assert(is_weight_element_v<T>, "quantize_lqer: weights must be float, bf16_t or f16_t");
  const MatrixView<const std::remove_const_t<T>> w = wv;
  constexpr const char* fn = "quantize_lqer";
  detail::check_view(w, fn, "weights");
  detail::check_scale(scale, w.cols, fn);
  detail::check_lqer_options(o, w.rows, w.cols, fn);
  return detail::quantize_lqer_uniform(w, quantize_uniform(w, format), bits_per_weight(format, w.cols), scale, o, fn);
}

/// LQER / L²QER with MXINT weights (the paper's setting: MXINT4, blocks of 16 along K). The weights are kept in
/// their exact uniform form (to_uniform) so that reference_matmul and the W4A8 kernels can run them.
template <typename T>
LqerWeights quantize_lqer(MatrixView<T> wv, const MxFormat& format, const std::vector<float>& scale,
                          const LqerOptions& o = {}) {
  static_assert(is_weight_element_v<T>, "quantize_lqer: weights must be float, bf16_t or f16_t");
  using E = std::remove_const_t<T>;
  const MatrixView<const E> w = wv;
  constexpr const char* fn = "quantize_lqer";
  detail::check_view(w, fn, "weights");
  detail::check_scale(scale, w.cols, fn);
  detail::check_lqer_options(o, w.rows, w.cols, fn);
  UniformWeights q;
  if constexpr (std::is_same_v<E, float>) {
    q = detail::quantize_mxint_uniform(w, format);  // = to_uniform(quantize_mxint(w, format)) without the MxTensor
  } else {  // the same checks in the same order, then the two-step form (equal bit for bit, kernels/reference.hpp)
    detail::check_format(format, "quantize_mxint");
    detail::check_view(w, "quantize_mxint", "values");
    detail::check_uniform_mx_bits(format.bits, "quantize_mxint", "format.bits");
    q = to_uniform(quantize_mxint(w, format));
  }
  return detail::quantize_lqer_uniform(w, std::move(q), bits_per_weight(format, w.cols), scale, o, fn);
}

// bits_per_weight(LowRankCorrection) and bits_per_weight(LqerWeights): rankq/formats/lowrank.hpp (Eigen-free).

/// The dense correction (A·B)ᵀ (N x K, row-major, PyTorch layout) from the QUANTIZED factors, so that
/// Ŵ = dequantize(weights) + this is the effective weight of the integer inference path (up to activations).
inline std::vector<float> dequantize(const LowRankCorrection& c) {
  const std::vector<float> a = dequantize(c.a_t), b = dequantize(c.b_t);
  return detail::correction_product(a.data(), b.data(), c.out_features, c.in_features, c.rank);
}

/// The same from the float (unquantized) factors: diag(s)⁻¹·U_k·Σ_k·V_kᵀ transposed — the Eckart–Young optimum.
inline std::vector<float> dequantize_float(const LowRankCorrection& c) {
  return detail::correction_product(c.a_t_float.data(), c.b_t_float.data(), c.out_features, c.in_features, c.rank);
}

RANKQ_NAMESPACE_END  // namespace rankq
