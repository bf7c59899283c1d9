// rankq/reference.hpp — the scalar reference W·A8 matmul Y = X_q · W^T: obviously correct, not fast. It is the
// oracle every SIMD kernel is tested against. Any uniform weight format (2/3/4/8 bits, any group, sym/asym,
// MXINT weights via to_uniform()) times any int8 activation format. Math: docs/math.md §3.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>

#include "rankq/activation.hpp"
#include "rankq/error.hpp"
#include "rankq/matrix.hpp"
#include "rankq/mxint.hpp"
#include "rankq/uniform.hpp"

namespace rankq {

namespace detail {
inline void check_matmul_shapes(const QuantizedActivations& x, std::size_t N, std::size_t K, std::size_t padded,
                                const MatrixView<float>& y, const char* fn) {
  if (x.rows == 0) throw_argument(fn, "x", "has no rows");
  if (x.cols != K)
    throw_argument(fn, "x", "has K = " + std::to_string(x.cols) + " columns but the weights have K = " + std::to_string(K));
  if (x.padded != padded)
    throw_argument(fn, "x", "is padded to " + std::to_string(x.padded) + " columns but the weights to " +
                                std::to_string(padded) + ": pass the weights' padded K to quantize_activations");
  check_view(y, fn, "y");
  if (y.rows != x.rows || y.cols != N)
    throw_argument(fn, "y", "has shape " + std::to_string(y.rows) + "x" + std::to_string(y.cols) + ", expected " +
                                std::to_string(x.rows) + "x" + std::to_string(N));
}
}  // namespace detail

/// Y (M x N) = X_q (M x K) · W^T (W: N x K) + bias (optional, N floats).
///
/// For each output (m, n) and each weight group g, the group is cut into segments where it meets the
/// activation blocks; per segment the integer dot product d = Σ q_x·t and the integer sum c = Σ q_x are
/// exact (int64 here; the 4-bit kernels use int32, which cannot overflow for K_pad < 2^20). Then, in float:
///   acc_g = Σ_seg a_seg·d_seg,  xs_g = Σ_seg a_seg·c_seg,  y += s_g·acc_g − z_g·xs_g
/// with a_seg the activation block scale and w^ = s·t − z (z = s·2^(b−1) for symmetric formats).
inline void reference_matmul(const QuantizedActivations& x, const UniformWeights& w, MatrixView<float> y,
                             const float* bias = nullptr) {
  constexpr const char* fn = "reference_matmul";
  detail::check_matmul_shapes(x, w.rows, w.cols, w.padded, y, fn);
  for (std::size_t m = 0; m < x.rows; ++m) {
    const std::int8_t* xq = x.row(m);
    for (std::size_t n = 0; n < w.rows; ++n) {
      float out = 0.0f;
      for (std::size_t g = 0; g < w.groups; ++g) {
        float acc = 0.0f, xs = 0.0f;
        const std::size_t g_end = (g + 1) * w.group;
        for (std::size_t k = g * w.group; k < g_end;) {
          const std::size_t b = k / x.block;
          const std::size_t seg_end = std::min(g_end, (b + 1) * x.block);
          std::int64_t dot = 0, sum = 0;
          for (; k < seg_end; ++k) {
            dot += static_cast<std::int64_t>(xq[k]) * static_cast<std::int64_t>(w.code(n, k));
            sum += xq[k];
          }
          const float a = x.scale(m, b);
          acc += a * static_cast<float>(dot);
          xs += a * static_cast<float>(sum);
        }
        out += w.scale(n, g) * acc - w.offset(n, g) * xs;
      }
      y(m, n) = bias ? out + bias[n] : out;
    }
  }
}

/// Exact conversion of MXINT weights (block 16/32 along K) to the symmetric uniform form with f32 scales:
/// level l in [-(2^(w-1)-1), 2^(w-1)-1] becomes code t = l + 2^(w-1), scale 2^step. Every value is preserved.
inline UniformWeights to_uniform(const MxTensor& t) {
  if (t.format.bits != 2 && t.format.bits != 3 && t.format.bits != 4 && t.format.bits != 8)
    detail::throw_argument("to_uniform", "t.format.bits",
                           "= " + std::to_string(t.format.bits) + ": only 2, 3, 4 and 8-bit MXINT have a uniform form");
  UniformWeights u = make_uniform_weights(UniformFormat{t.format.bits, t.format.block, Symmetry::symmetric, ScaleType::f32},
                                          t.rows, t.cols);
  const int half = 1 << (t.format.bits - 1);
  // 4 and 8 bits: a byte table from sign-magnitude code(s) to offset code(s) (two nibbles per byte at 4 bits).
  // Padding columns keep code 0, as put_bits leaves them.
  const bool byte_table = t.format.bits == 4 || t.format.bits == 8;
  std::uint8_t table[256] = {};
  if (byte_table) {
    const unsigned w = t.format.bits, sign_bit = 1u << (w - 1);
    const auto offset_code = [&](unsigned c) {
      const int mag = static_cast<int>(c & (sign_bit - 1u));
      return static_cast<unsigned>(((c & sign_bit) ? -mag : mag) + half);
    };
    for (unsigned v = 0; v < 256; ++v)
      table[v] = static_cast<std::uint8_t>(w == 8 ? offset_code(v) : offset_code(v & 15u) | (offset_code(v >> 4) << 4));
  }
  for (std::size_t r = 0; r < t.rows; ++r) {
    std::uint8_t* dst = u.codes.data() + r * u.row_bytes;
    std::size_t c = 0;
    if (byte_table) {
      const std::uint8_t* src = t.codes.data() + r * t.row_bytes;
      const std::size_t whole_bytes = t.cols * t.format.bits / 8;
      for (std::size_t i = 0; i < whole_bytes; ++i) dst[i] = table[src[i]];
      c = whole_bytes * 8 / t.format.bits;
    }
    for (; c < t.cols; ++c) detail::put_bits(dst, c, t.format.bits, static_cast<unsigned>(t.level(r, c) + half));
    for (std::size_t b = 0; b < t.blocks; ++b) {
      const int step = detail::mx_step_from_shared(t.shared_exponent(r, b), t.format);
      u.scales[r * u.groups + b] = step >= -126 && step <= 127 ? detail::exp2_normal(step)
                                                               : static_cast<float>(std::ldexp(1.0, step));
    }
  }
  return u;
}

}  // namespace rankq
