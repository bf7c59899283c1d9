// rankq/kernels/reference.hpp — the scalar reference W·A8 matmul Y = X_q · W^T: obviously correct, not fast. It is the
// oracle every SIMD kernel is tested against. Any uniform weight format (2/3/4/8 bits, any group, sym/asym,
// MXINT weights via to_uniform()) times any int8 activation format. Math: docs/math.md §3.
#pragma once

#include "rankq/detail/abi.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>

#include "rankq/formats/activation.hpp"
#include "rankq/error.hpp"
#include "rankq/formats/matrix.hpp"
#include "rankq/formats/mxint.hpp"
#include "rankq/formats/uniform.hpp"

RANKQ_NAMESPACE_BEGIN


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

namespace detail {
/// Byte table from MXINT sign-magnitude code(s) to the uniform form's offset code(s) t = level + 2^(w−1), for
/// w = 4 (two codes per byte) and w = 8; other widths convert code by code (offset_code).
struct MxOffsetCodes {
  unsigned w;
  std::uint8_t table[256] = {};
  explicit MxOffsetCodes(unsigned bits) : w(bits) {
    if (w == 4 || w == 8)
      for (unsigned v = 0; v < 256; ++v)
        table[v] = static_cast<std::uint8_t>(w == 8 ? offset_code(v) : offset_code(v & 15u) | (offset_code(v >> 4) << 4));
  }
  unsigned offset_code(unsigned c) const {
    const unsigned sign_bit = 1u << (w - 1);
    const int mag = static_cast<int>(c & (sign_bit - 1u));
    return static_cast<unsigned>(((c & sign_bit) ? -mag : mag) + static_cast<int>(sign_bit));
  }
};

/// 2^step as the uniform form's f32 scale.
inline float mx_uniform_scale(int step) {
  return step >= -126 && step <= 127 ? exp2_normal(step) : static_cast<float>(std::ldexp(1.0, step));
}

inline void check_uniform_mx_bits(unsigned bits, const char* fn, const char* argument) {
  if (bits != 2 && bits != 3 && bits != 4 && bits != 8)
    throw_argument(fn, argument, "= " + std::to_string(bits) + ": only 2, 3, 4 and 8-bit MXINT have a uniform form");
}

inline UniformWeights make_uniform_from_mx(const MxFormat& f, std::size_t rows, std::size_t cols) {
  return make_uniform_weights(UniformFormat{f.bits, f.block, Symmetry::symmetric, ScaleType::f32}, rows, cols);
}

/// to_uniform(quantize_mxint(x, f)) in one pass, without the intermediate MxTensor (same codes and scales bit
/// for bit: both run for_each_mxint_block). Used by quantize_lqer, where the MXINT form is not needed.
inline UniformWeights quantize_mxint_uniform(MatrixView<const float> x, const MxFormat& f) {
  constexpr const char* fn = "quantize_mxint";
  check_format(f, fn);
  check_view(x, fn, "values");
  check_uniform_mx_bits(f.bits, fn, "format.bits");
  UniformWeights u = make_uniform_from_mx(f, x.rows, x.cols);
  const MxOffsetCodes offsets(f.bits);
  std::uint8_t t[32];
  for_each_mxint_block(x, f, fn, [&](std::size_t r, std::size_t b, int e, const std::uint8_t* codes, std::size_t n) {
    u.scales[r * u.groups + b] = mx_uniform_scale(mx_step_from_shared(e, f));
    for (std::size_t i = 0; i < n; ++i) t[i] = static_cast<std::uint8_t>(offsets.offset_code(codes[i]));
    put_block_codes(u.codes.data() + r * u.row_bytes, b * f.block, n, f.bits, t);
  });
  return u;
}
}  // namespace detail

/// Exact conversion of MXINT weights (block 16/32 along K) to the symmetric uniform form with f32 scales:
/// level l in [-(2^(w-1)-1), 2^(w-1)-1] becomes code t = l + 2^(w-1), scale 2^step. Every value is preserved.
inline UniformWeights to_uniform(const MxTensor& t) {
  detail::check_uniform_mx_bits(t.format.bits, "to_uniform", "t.format.bits");
  UniformWeights u = detail::make_uniform_from_mx(t.format, t.rows, t.cols);
  const detail::MxOffsetCodes offsets(t.format.bits);
  const bool byte_table = t.format.bits == 4 || t.format.bits == 8;  // padding columns keep code 0
  for (std::size_t r = 0; r < t.rows; ++r) {
    std::uint8_t* dst = u.codes.data() + r * u.row_bytes;
    const std::uint8_t* src = t.codes.data() + r * t.row_bytes;
    std::size_t c = 0;
    if (byte_table) {
      const std::size_t whole_bytes = t.cols * t.format.bits / 8;
      for (std::size_t i = 0; i < whole_bytes; ++i) dst[i] = offsets.table[src[i]];
      c = whole_bytes * 8 / t.format.bits;
    }
    for (; c < t.cols; ++c) detail::put_bits(dst, c, t.format.bits, offsets.offset_code(detail::get_bits(src, c, t.format.bits)));
    for (std::size_t b = 0; b < t.blocks; ++b)
      u.scales[r * u.groups + b] = detail::mx_uniform_scale(detail::mx_step_from_shared(t.shared_exponent(r, b), t.format));
  }
  return u;
}

RANKQ_NAMESPACE_END  // namespace rankq
