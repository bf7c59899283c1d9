// rankq/kernels/codebook_reference.hpp — the kernel-ready int8 form of LCQ codebook weights (V quantized per rank to
// int8) and the scalar reference matmul Y = X_q · Ŵᵀ with exact int32 inner sums: obviously correct, not fast,
// the oracle every SIMD codebook kernel is tested against. Math: docs/lcq.md "Kernel-ready form".
#pragma once

#include "rankq/detail/abi.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "rankq/formats/activation.hpp"
#include "rankq/formats/codebook.hpp"
#include "rankq/detail/rounding.hpp"
#include "rankq/error.hpp"
#include "rankq/formats/matrix.hpp"
#include "rankq/kernels/reference.hpp"

RANKQ_NAMESPACE_BEGIN

/// The int8 tables a codebook kernel multiplies with. Per rank r, V's row is centered first (the offset moves into
/// B, so Vq uses all 255 levels on half the range): center[r] = (max_t V[r,t] + min_t V[r,t]) / 2,
/// v_scale[r] = max_t |V[r,t] − center[r]| / 127, Vq[r][t] = round_half_even((V[r,t] − center[r]) / v_scale[r]) in
/// [-127, 127] (never -128: x86 kernels negate int8 with the sign trick). Per group i:
/// group_scales[i·k + r] = S[r,i]·v_scale[r] and group_offsets[i] = B[i] − Σ_r S[r,i]·center[r], rounded to float.
/// The weight these tables represent — what every codebook kernel computes with, instead of value() — is
///   ŵ_K(n, c) = Σ_r group_scales[i·k + r]·Vq[r][t] − group_offsets[i]    (i = n·groups + c / group, t = index(n, c))
struct CodebookKernelTables {
  unsigned bits = 0, rank = 0;
  std::vector<std::int8_t> vq;        ///< rank x 2^b, row-major: vq[r·2^b + t]
  std::vector<float> v_scale;         ///< rank
  std::vector<float> v_center;        ///< rank
  std::vector<float> group_scales;    ///< N·groups·rank, [i][r]
  std::vector<float> group_offsets;   ///< N·groups

  std::int8_t level(unsigned r, unsigned t) const { return vq[(std::size_t(r) << bits) + t]; }
};

inline CodebookKernelTables make_codebook_kernel_tables(const CodebookWeights& w) {
  detail::check_codebook_format(w.format, "make_codebook_kernel_tables", "w.format");
  const unsigned k = w.format.rank;
  const std::size_t T = w.codewords();
  if (w.V.size() != k * T || w.S.size() != w.rows * w.groups * k || w.B.size() != w.rows * w.groups)
    detail::throw_argument("make_codebook_kernel_tables", "w", "has V, S or B arrays that do not match its format");
  CodebookKernelTables kt;
  kt.bits = w.format.bits;
  kt.rank = k;
  kt.vq.assign(k * T, 0);
  kt.v_scale.assign(k, 0.0f);
  kt.v_center.assign(k, 0.0f);
  for (unsigned r = 0; r < k; ++r) {
    const float* v = w.V.data() + r * T;
    const float lo = *std::min_element(v, v + T), hi = *std::max_element(v, v + T);
    const float center = static_cast<float>(0.5 * (static_cast<double>(lo) + hi));
    double amax = 0.0;
    for (std::size_t t = 0; t < T; ++t) amax = std::max(amax, std::fabs(static_cast<double>(v[t]) - center));
    const float scale = static_cast<float>(amax / 127.0);
    kt.v_center[r] = center;
    kt.v_scale[r] = scale;
    for (std::size_t t = 0; t < T; ++t) {
      const double l = scale > 0.0f ? detail::round_half_even((static_cast<double>(v[t]) - center) / scale) : 0.0;
      kt.vq[r * T + t] = static_cast<std::int8_t>(std::min(127.0, std::max(-127.0, l)));
    }
  }
  kt.group_scales.resize(w.S.size());
  kt.group_offsets.resize(w.B.size());
  for (std::size_t i = 0; i < w.rows * w.groups; ++i) {
    double offset = w.B[i];
    for (unsigned r = 0; r < k; ++r) {
      kt.group_scales[i * k + r] = w.S[i * k + r] * kt.v_scale[r];
      offset -= static_cast<double>(w.S[i * k + r]) * kt.v_center[r];
    }
    kt.group_offsets[i] = static_cast<float>(offset);
  }
  return kt;
}

/// ŵ_K(n, c) evaluated in double from its float/int8 operands (the kernel-ready weight, for error measurements).
inline double kernel_ready_value(const CodebookWeights& w, const CodebookKernelTables& kt, std::size_t n, std::size_t c) {
  const std::size_t i = n * w.groups + c / w.group;
  const unsigned t = w.index(n, c);
  double v = 0.0;
  for (unsigned r = 0; r < kt.rank; ++r) v += static_cast<double>(kt.group_scales[i * kt.rank + r]) * kt.level(r, t);
  return v - static_cast<double>(kt.group_offsets[i]);
}

/// The kernel-ready weights as a dense N x K row-major matrix (rounded to float).
inline std::vector<float> dequantize_kernel_ready(const CodebookWeights& w, const CodebookKernelTables& kt) {
  std::vector<float> out(w.rows * w.cols);
  for (std::size_t n = 0; n < w.rows; ++n)
    for (std::size_t c = 0; c < w.cols; ++c) out[n * w.cols + c] = static_cast<float>(kernel_ready_value(w, kt, n, c));
  return out;
}

/// Longest run of one group inside one activation block whose int32 sums cannot overflow: len·127·127 < 2^31.
inline constexpr std::size_t kMaxCodebookSegment = 131072;

namespace detail {
/// Exact integer sums of one segment [c0, c1) of row n: dot[r] = Σ_c q_x[c]·Vq_r[t_c] and sum = Σ_c q_x[c].
inline void codebook_segment_sums(const std::int8_t* xq, const CodebookWeights& w, const CodebookKernelTables& kt,
                                  std::size_t n, std::size_t c0, std::size_t c1, std::int32_t* dot, std::int32_t& sum) {
  for (unsigned r = 0; r < kt.rank; ++r) dot[r] = 0;
  sum = 0;
  for (std::size_t c = c0; c < c1; ++c) {
    const unsigned t = w.index(n, c);
    for (unsigned r = 0; r < kt.rank; ++r) dot[r] += static_cast<std::int32_t>(xq[c]) * kt.level(r, t);
    sum += xq[c];
  }
}
}  // namespace detail

/// Y (M x N) = X_q (M x K) · Ŵ_Kᵀ (+ bias, N floats, optional) with the kernel-ready weights of `kt`.
///
/// For each output (m, n) and group i, the group is cut into segments where it meets the activation blocks; per
/// segment and rank the int32 sums dot_r = Σ q_x·Vq_r[t] and sum = Σ q_x are exact. The float part is defined
/// operation by operation (fma = one rounding; every SIMD codebook kernel reproduces it bit for bit):
///   acc_r = fma(a_seg, float(dot_r), acc_r)    xs = fma(a_seg, float(sum), xs)      segments ascending, from 0
///   part  = group_scales[i·k]·acc_0,  then part = fma(group_scales[i·k + r], acc_r, part) for r = 1 … k−1
///   out   = out + fma(−group_offsets[i], xs, part)                                   groups ascending, from 0
///   y     = out (+ bias[n])
/// For k = 1 this is reference_matmul's algebra s·acc − z·xs with s = group_scales, z = group_offsets.
inline void codebook_reference_matmul(const QuantizedActivations& x, const CodebookWeights& w,
                                      const CodebookKernelTables& kt, MatrixView<float> y, const float* bias = nullptr) {
  constexpr const char* fn = "codebook_reference_matmul";
  detail::check_matmul_shapes(x, w.rows, w.cols, w.padded, y, fn);
  if (kt.bits != w.format.bits || kt.rank != w.format.rank || kt.group_scales.size() != w.S.size() ||
      kt.group_offsets.size() != w.B.size())
    detail::throw_argument(fn, "kt", "was not made from these weights (make_codebook_kernel_tables(w))");
  if (w.group > kMaxCodebookSegment)
    detail::throw_argument(fn, "w", "has groups of " + std::to_string(w.group) + " > " +
                                        std::to_string(kMaxCodebookSegment) + " weights: int32 sums could overflow");
  const unsigned k = kt.rank;
  for (std::size_t m = 0; m < x.rows; ++m) {
    const std::int8_t* xq = x.row(m);
    for (std::size_t n = 0; n < w.rows; ++n) {
      float out = 0.0f;
      for (std::size_t g = 0; g < w.groups; ++g) {
        float acc[kMaxCodebookRank] = {};
        float xs = 0.0f;
        const std::size_t g_end = (g + 1) * w.group;
        for (std::size_t c = g * w.group; c < g_end;) {
          const std::size_t b = c / x.block;
          const std::size_t seg_end = std::min(g_end, (b + 1) * x.block);
          std::int32_t dot[kMaxCodebookRank], sum;
          detail::codebook_segment_sums(xq, w, kt, n, c, seg_end, dot, sum);
          const float a = x.scale(m, b);
          for (unsigned r = 0; r < k; ++r) acc[r] = std::fma(a, static_cast<float>(dot[r]), acc[r]);
          xs = std::fma(a, static_cast<float>(sum), xs);
          c = seg_end;
        }
        const std::size_t i = n * w.groups + g;
        float part = kt.group_scales[i * k] * acc[0];
        for (unsigned r = 1; r < k; ++r) part = std::fma(kt.group_scales[i * k + r], acc[r], part);
        out = out + std::fma(-kt.group_offsets[i], xs, part);
      }
      y(m, n) = bias ? out + bias[n] : out;
    }
  }
}

RANKQ_NAMESPACE_END  // namespace rankq
