// rankq/algorithms/detail/lcq_double_quant.hpp — 8-bit double quantization of LCQ's per-group numbers S and offsets B
// (symmetric int8 with a float scale per output row, per rank for S), followed by the re-fit that keeps the
// error low: B re-fitted for the 8-bit S, then indices re-assigned to the final codebook. Include rankq/algorithms/lcq.hpp.
#pragma once

#include "rankq/detail/abi.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "rankq/formats/codebook.hpp"
#include "rankq/detail/rounding.hpp"
#include "rankq/formats/matrix.hpp"

RANKQ_NAMESPACE_BEGIN namespace detail {

/// Symmetric int8 of n values (stride `stride`) with one scale = max|v| / 127; q in [-127, 127], never -128.
/// Writes q and the dequantized values float(q)·scale back into v; returns the scale (0 for an all-zero set).
inline float quantize_int8_symmetric(float* v, std::int8_t* q, std::size_t n, std::size_t stride) {
  float amax = 0.0f;
  for (std::size_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(v[i * stride]));
  const float scale = amax / 127.0f;
  for (std::size_t i = 0; i < n; ++i) {
    double l = scale > 0.0f ? round_half_even(static_cast<double>(v[i * stride]) / scale) : 0.0;
    l = std::min(127.0, std::max(-127.0, l));
    q[i * stride] = static_cast<std::int8_t>(l);
    v[i * stride] = static_cast<float>(q[i * stride]) * scale;
  }
  return scale;
}

/// Re-assigns every real index of row n, group g to its nearest codeword (first minimum).
inline void reassign_group(CodebookWeights& q, const float* w_row, std::size_t n, std::size_t g) {
  const std::size_t T = q.codewords();
  double book[16];
  for (unsigned t = 0; t < T; ++t) book[t] = q.codeword(n, g, t);
  std::uint8_t* stream = q.indices.data() + n * q.row_bytes;
  const std::size_t c1 = std::min(q.cols, (g + 1) * q.group);
  for (std::size_t c = g * q.group; c < c1; ++c) {
    const double x = w_row[c];
    unsigned bt = 0;
    double best = (x - book[0]) * (x - book[0]);
    for (unsigned t = 1; t < T; ++t) {
      const double d2 = (x - book[t]) * (x - book[t]);
      if (d2 < best) best = d2, bt = t;
    }
    // clear, then write (put_bits ORs into a zeroed field)
    const unsigned old = get_bits(stream, c, q.format.bits);
    if (old != bt) {
      const std::size_t bit = c * q.format.bits;
      const unsigned mask = (1u << q.format.bits) - 1u;
      stream[bit >> 3] = static_cast<std::uint8_t>(stream[bit >> 3] & ~(mask << (bit & 7u)));
      if ((bit & 7u) + q.format.bits > 8)
        stream[(bit >> 3) + 1] = static_cast<std::uint8_t>(stream[(bit >> 3) + 1] & ~(mask >> (8 - (bit & 7u))));
      put_bits(stream, c, q.format.bits, bt);
    }
  }
}

/// Turns fitted float S, B into their 8-bit form in place (sets format.double_quantized):
///  1. S: per output row n and rank r, symmetric int8 over the row's groups; S ← float(S_q)·S_scale.
///  2. B re-fitted per group for the 8-bit S: B_i = Σ_j d_j (p_{t_j} − w_j) / Σ_j d_j, p_t = Σ_r S[r,i]·V[r,t].
///  3. B: per output row, symmetric int8; B ← float(B_q)·B_scale.
///  4. Indices re-assigned to the nearest codeword of the final codebook (cannot increase the error).
inline void apply_double_quantization(CodebookWeights& q, MatrixView<const float> W, const double* d) {
  const unsigned k = q.format.rank;
  q.format.double_quantized = true;
  q.S_q.assign(q.S.size(), 0);
  q.S_scale.assign(q.rows * k, 0.0f);
  q.B_q.assign(q.B.size(), 0);
  q.B_scale.assign(q.rows, 0.0f);
  const std::size_t T = q.codewords();
  for (std::size_t n = 0; n < q.rows; ++n) {
    const std::size_t base = n * q.groups;
    for (unsigned r = 0; r < k; ++r)
      q.S_scale[n * k + r] = quantize_int8_symmetric(q.S.data() + base * k + r, q.S_q.data() + base * k + r, q.groups, k);
    for (std::size_t g = 0; g < q.groups; ++g) {
      double p[16];
      const float* s = q.S.data() + (base + g) * k;
      for (unsigned t = 0; t < T; ++t) p[t] = codeword_value(s, 0.0f, q.V.data(), k, T, t);
      double num = 0.0, den = 0.0;
      const std::size_t c1 = std::min(q.cols, (g + 1) * q.group);
      for (std::size_t c = g * q.group; c < c1; ++c) {
        num += d[c] * (p[q.index(n, c)] - static_cast<double>(W(n, c)));
        den += d[c];
      }
      if (den > 0.0 && std::isfinite(static_cast<float>(num / den))) q.B[base + g] = static_cast<float>(num / den);
    }
    q.B_scale[n] = quantize_int8_symmetric(q.B.data() + base, q.B_q.data() + base, q.groups, 1);
    for (std::size_t g = 0; g < q.groups; ++g) reassign_group(q, W.row(n), n, g);
  }
}

}  RANKQ_NAMESPACE_END  // namespace rankq::detail
