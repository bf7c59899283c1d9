// rankq/algorithms/detail/lqer_factors.hpp — machinery of rankq/algorithms/lqer.hpp: the scaled quantization error diag(s)·E in one
// pass over the codes, the SVD factors turned into Aᵀ / Bᵀ, and the dense correction (A·B)ᵀ.
#pragma once

#include "rankq/detail/abi.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "rankq/error.hpp"
#include "rankq/formats/matrix.hpp"
#include "rankq/algorithms/svd.hpp"
#include "rankq/formats/uniform.hpp"

RANKQ_NAMESPACE_BEGIN namespace detail {

/// out[n*K + k] = scale[k] · (w(n, k) − ŵ(n, k)) for the N x K weights w and their quantization q (scale null:
/// 1). ŵ is computed exactly as UniformWeights::value() does (s·t − z in float; symmetric s·(t − 2^(b−1))), one row at a time: the codes are
/// decoded into a row of floats first (direct nibble/byte reads for 4 and 8 bits), then a vectorizable pass.
/// Returns ‖out‖_F² in double (four partial sums per row, deterministic). w: float, bf16_t or f16_t elements, a
/// 16-bit row converted to float when it is reached.
template <typename T>
double scaled_quantization_error(MatrixView<const T> w, const UniformWeights& q, const float* scale, float* out) {
  const std::size_t N = w.rows, K = w.cols;
  const unsigned bits = q.format.bits;
  std::vector<float> value(q.padded), row_buffer(float_row_buffer_size(w));
  double norm2 = 0.0;
  for (std::size_t n = 0; n < N; ++n) {
    const float* row = float_row(w, n, row_buffer.data());
    const std::uint8_t* codes = q.codes.data() + n * q.row_bytes;
    for (std::size_t g = 0; g < q.groups; ++g) {
      const bool symmetric = q.format.symmetry == Symmetry::symmetric;
      const float s = q.scale(n, g), z = symmetric ? 0.0f : q.offset(n, g);
      const int level_shift = symmetric ? 1 << (bits - 1) : 0;
      const std::size_t k0 = g * q.group, k1 = std::min(K, k0 + q.group);
      for (std::size_t k = k0; k < k1; ++k) {
        const unsigned t = bits == 4 ? (codes[k >> 1] >> ((k & 1u) * 4)) & 0xFu
                           : bits == 8 ? codes[k]
                                       : get_bits(codes, k, bits);
        value[k] = s * static_cast<float>(static_cast<int>(t) - level_shift) - z;
      }
    }
    float* dst = out + n * K;
    double part[4] = {0.0, 0.0, 0.0, 0.0};
    for (std::size_t k = 0; k < K; ++k) {
      float e = row[k] - value[k];
      if (scale) e *= scale[k];
      dst[k] = e;
      part[k % 4] += static_cast<double>(e) * e;
    }
    norm2 += (part[0] + part[1]) + (part[2] + part[3]);
  }
  return norm2;
}

/// From the SVD of the scaled error in the paper's orientation (E_s: K x N, u: K x k, v: N x k):
/// aᵀ (k x K, row-major) = (diag(s)⁻¹·U_k)ᵀ and bᵀ (N x k, row-major) = (Σ_k·V_kᵀ)ᵀ = V_k·Σ_k.
inline void factors_from_svd(const TruncatedSvd& svd, const float* scale, std::vector<float>& a_t,
                             std::vector<float>& b_t) {
  const std::size_t K = static_cast<std::size_t>(svd.u.rows()), N = static_cast<std::size_t>(svd.v.rows());
  const std::size_t k = static_cast<std::size_t>(svd.sigma.size());
  a_t.assign(k * K, 0.0f);
  b_t.assign(N * k, 0.0f);
  for (std::size_t r = 0; r < k; ++r)
    for (std::size_t i = 0; i < K; ++i) {
      const double u = svd.u(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(r));
      a_t[r * K + i] = static_cast<float>(scale ? u / static_cast<double>(scale[i]) : u);
    }
  for (std::size_t n = 0; n < N; ++n)
    for (std::size_t r = 0; r < k; ++r)
      b_t[n * k + r] = static_cast<float>(svd.sigma(static_cast<Eigen::Index>(r)) *
                                          svd.v(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(r)));
}

/// Dense (A·B)ᵀ, N x K row-major, from aᵀ (k x K) and bᵀ (N x k), accumulated in double.
inline std::vector<float> correction_product(const float* a_t, const float* b_t, std::size_t N, std::size_t K,
                                             std::size_t k) {
  std::vector<float> out(N * K);
  std::vector<double> acc(K);
  for (std::size_t n = 0; n < N; ++n) {
    std::fill(acc.begin(), acc.end(), 0.0);
    for (std::size_t r = 0; r < k; ++r) {
      const double b = b_t[n * k + r];
      const float* a = a_t + r * K;
      for (std::size_t i = 0; i < K; ++i) acc[i] += b * a[i];
    }
    for (std::size_t i = 0; i < K; ++i) out[n * K + i] = static_cast<float>(acc[i]);
  }
  return out;
}

/// The L²QER scale argument: empty (plain LQER) or K finite positive values.
inline void check_scale(const std::vector<float>& scale, std::size_t K, const char* fn) {
  if (scale.empty()) return;
  if (scale.size() != K)
    throw_argument(fn, "scale", "has " + std::to_string(scale.size()) + " entries, expected K = " + std::to_string(K) +
                                    " (one per input channel) or none");
  for (std::size_t k = 0; k < K; ++k)
    if (!(scale[k] > 0.0f) || !std::isfinite(scale[k]))
      throw_argument(fn, "scale", "entry " + std::to_string(k) + " is not a finite positive number");
}

}  RANKQ_NAMESPACE_END  // namespace rankq::detail
