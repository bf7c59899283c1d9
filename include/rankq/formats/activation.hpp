// rankq/formats/activation.hpp — dynamic symmetric int8 quantization of activations (M tokens x K features):
// per token, per block of 16/32 features, or MXINT8 (power-of-two block scales). Layout: docs/formats.md §4.
#pragma once

#include "rankq/detail/abi.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "rankq/detail/rounding.hpp"
#include "rankq/error.hpp"
#include "rankq/formats/matrix.hpp"
#include "rankq/formats/mxint.hpp"

RANKQ_NAMESPACE_BEGIN

enum class ActivationQuant : std::uint8_t { per_token = 0, per_block = 1, mxint8 = 2 };

struct ActivationFormat {
  ActivationQuant kind = ActivationQuant::per_token;
  std::size_t block = 32;                     ///< 16 or 32 (per_block and mxint8 only)
  MxSemantics semantics = MxSemantics::lqer;  ///< mxint8 only
};

inline std::string to_string(const ActivationFormat& f) {
  switch (f.kind) {
    case ActivationQuant::per_token: return "int8-token";
    case ActivationQuant::per_block: return "int8-b" + std::to_string(f.block);
    default: return "mxint8-b" + std::to_string(f.block) + (f.semantics == MxSemantics::lqer ? "-lqer" : "-ocp");
  }
}

/// Quantized activations: value(m, k) = values[m * padded + k] * scales[m * blocks + k / block].
/// Columns [cols, padded) are zero. For per_token, block == padded (one scale per row).
struct QuantizedActivations {
  ActivationFormat format;
  std::size_t rows = 0, cols = 0, padded = 0, block = 0, blocks = 0;
  AlignedBuffer<std::int8_t> values;  ///< rows * padded
  AlignedBuffer<float> scales;        ///< rows * blocks

  const std::int8_t* row(std::size_t m) const { return values.data() + m * padded; }
  float scale(std::size_t m, std::size_t b) const { return scales[m * blocks + b]; }
  float value(std::size_t m, std::size_t k) const {
    return static_cast<float>(values[m * padded + k]) * scales[m * blocks + k / block];
  }
};

namespace detail {
inline void check_format(const ActivationFormat& f, const char* function) {
  if (f.kind != ActivationQuant::per_token && f.kind != ActivationQuant::per_block && f.kind != ActivationQuant::mxint8)
    throw_argument(function, "format.kind", "is not per_token, per_block or mxint8");
  if (f.kind != ActivationQuant::per_token && f.block != 16 && f.block != 32)
    throw_argument(function, "format.block", "= " + std::to_string(f.block) + ": must be 16 or 32");
}

/// Quantizes n values of one block (symmetric int8, |q| <= 127); returns the block scale.
/// int8:   scale = amax / 127, q = round_half_even(float(x * float(127 / amax)))   (what SIMD paths compute)
/// mxint8: scale = 2^step from the MXINT rules, q = round_half_even(x / scale) clipped to 127.
inline float quantize_act_block(const float* x, std::size_t n, const ActivationFormat& f, std::int8_t* q,
                                const char* function, std::size_t row) {
  float amax = 0.0f;
  for (std::size_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
  for (std::size_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i]))
      throw_argument(function, "activations", "has a non-finite value (NaN or Inf) in row " + std::to_string(row));
  if (amax == 0.0f) {
    for (std::size_t i = 0; i < n; ++i) q[i] = 0;
    return 0.0f;
  }
  if (f.kind == ActivationQuant::mxint8) {
    int e = 0;
    const int step = mx_step_exponent(amax, MxFormat{8, f.block, f.semantics}, e);
    for (std::size_t i = 0; i < n; ++i) {
      double v = std::min(round_half_even(std::ldexp(std::fabs(static_cast<double>(x[i])), -step)), 127.0);
      q[i] = static_cast<std::int8_t>(x[i] < 0 ? -v : v);
    }
    return static_cast<float>(std::ldexp(1.0, step));
  }
  const float inv = 127.0f / amax;
  for (std::size_t i = 0; i < n; ++i) {
    const float p = x[i] * inv;
    const double v = std::min(std::max(round_half_even(static_cast<double>(p)), -127.0), 127.0);
    q[i] = static_cast<std::int8_t>(v);
  }
  return amax / 127.0f;
}
/// The shapes every matmul on quantized activations shares: x (M x K, padded like the weights), y (M x N).
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

/// The packed kernels cut groups at activation-block boundaries in whole 16-K chunks: blocks must be multiples of
/// 16 and consistent with the padded width (quantize_activations always produces such blocks).
inline void check_kernel_activation_blocks(const QuantizedActivations& x, const char* fn) {
  if (x.block == 0 || x.block % 16 != 0 || x.blocks != (x.padded + x.block - 1) / x.block)
    throw_argument(fn, "x", "has activation blocks of " + std::to_string(x.block) + " columns (" +
                                std::to_string(x.blocks) + " per row): the kernels take multiples of 16, as "
                                "quantize_activations produces");
}

/// The checks and the output shape of quantize_activations (activation.hpp), without quantizing.
inline void prepare_quantized_activations(MatrixView<const float> x, const ActivationFormat& f, QuantizedActivations& out,
                                          std::size_t padded_cols, const char* fn) {
  check_format(f, fn);
  check_view(x, fn, "activations");
  const std::size_t padded = padded_cols == 0 ? round_up(x.cols, std::size_t(16)) : padded_cols;
  if (padded < x.cols || padded % 16 != 0)
    throw_argument(fn, "padded_cols", "= " + std::to_string(padded_cols) + ": must be >= K (" + std::to_string(x.cols) +
                                          ") and a multiple of 16");
  const std::size_t block = f.kind == ActivationQuant::per_token ? padded : f.block;
  const std::size_t blocks = ceil_div(padded, block);
  if (out.values.size() != x.rows * padded) out.values.resize(x.rows * padded);
  if (out.scales.size() != x.rows * blocks) out.scales.resize(x.rows * blocks);
  out.format = f;
  out.rows = x.rows;
  out.cols = x.cols;
  out.padded = padded;
  out.block = block;
  out.blocks = blocks;
}

}  // namespace detail

/// Quantizes into `out`, reusing its buffers when the shape allows. `padded_cols` (>= K, a multiple of 16;
/// 0 = round_up(K, 16)) must equal the padded K of the weights this will be multiplied with.
inline void quantize_activations(MatrixView<const float> x, const ActivationFormat& f, QuantizedActivations& out,
                                 std::size_t padded_cols = 0) {
  constexpr const char* fn = "quantize_activations";
  detail::prepare_quantized_activations(x, f, out, padded_cols, fn);
  const std::size_t padded = out.padded, block = out.block, blocks = out.blocks;
  for (std::size_t m = 0; m < x.rows; ++m) {
    std::int8_t* q = out.values.data() + m * padded;
    for (std::size_t b = 0; b < blocks; ++b) {
      const std::size_t k0 = b * block;
      const std::size_t k1 = std::min(x.cols, k0 + block);
      const std::size_t n = k1 > k0 ? k1 - k0 : 0;
      out.scales[m * blocks + b] = n ? detail::quantize_act_block(x.row(m) + k0, n, f, q + k0, fn, m) : 0.0f;
      for (std::size_t k = std::max(k0, x.cols); k < std::min(padded, k0 + block); ++k) q[k] = 0;
    }
  }
}

inline QuantizedActivations quantize_activations(MatrixView<const float> x, const ActivationFormat& f,
                                                 std::size_t padded_cols = 0) {
  QuantizedActivations out;
  quantize_activations(x, f, out, padded_cols);
  return out;
}

RANKQ_NAMESPACE_END  // namespace rankq
