// rankq/formats/uniform.hpp — uniform b-bit group-wise weight quantization (round to nearest), the canonical
// storage of a quantized N x K weight matrix (out-features x in-features, PyTorch's layout).
// Byte layout: docs/formats.md §2. Math: docs/math.md §1.
#pragma once

#include "rankq/detail/abi.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "rankq/detail/rounding.hpp"
#include "rankq/error.hpp"
#include "rankq/formats/half.hpp"
#include "rankq/formats/matrix.hpp"

RANKQ_NAMESPACE_BEGIN

enum class ScaleType : std::uint8_t { f32 = 0, f16 = 1 };
enum class Symmetry : std::uint8_t { symmetric = 0, asymmetric = 1 };

inline constexpr std::size_t kWholeRow = 0;  ///< group_size value meaning "one group per row"
inline constexpr std::size_t kPadMultiple = 16;  ///< every padded row length is a multiple of this

/// A uniform quantization format.
///  - symmetric:  w^ = s * (t - 2^(b-1)),  s = max|w| / (2^(b-1) - 1)      codes t in [0, 2^b - 1]
///  - asymmetric: w^ = s * t - z,          s = (max w - min w)/(2^b - 1), z = -min w
struct UniformFormat {
  unsigned bits = 4;                    ///< 2, 3, 4 or 8
  std::size_t group_size = 32;          ///< 16, 32, 64, 128 or kWholeRow, along K (the reduction dimension)
  Symmetry symmetry = Symmetry::symmetric;
  ScaleType scale_type = ScaleType::f16;  ///< precision in which scales/offsets are stored
};

inline std::string to_string(const UniformFormat& f) {
  return "int" + std::to_string(f.bits) + (f.symmetry == Symmetry::symmetric ? "-sym" : "-asym") + "-g" +
         (f.group_size == kWholeRow ? std::string("row") : std::to_string(f.group_size)) +
         (f.scale_type == ScaleType::f16 ? "-f16" : "-f32");
}

/// Padded row length for a format: round_up(K, group) for a fixed group, round_up(K, 16) for a whole row.
inline std::size_t padded_cols(const UniformFormat& f, std::size_t K) {
  return detail::round_up(K, f.group_size == kWholeRow ? kPadMultiple : f.group_size);
}

namespace detail {
inline void check_format(const UniformFormat& f, const char* function) {
  if (!(f.bits == 2 || f.bits == 3 || f.bits == 4 || f.bits == 8))
    throw_argument(function, "format.bits", "= " + std::to_string(f.bits) + ": must be 2, 3, 4 or 8");
  const std::size_t g = f.group_size;
  if (!(g == kWholeRow || g == 16 || g == 32 || g == 64 || g == 128))
    throw_argument(function, "format.group_size",
                   "= " + std::to_string(g) + ": must be 16, 32, 64, 128 or 0 (whole row)");
  if (f.scale_type != ScaleType::f32 && f.scale_type != ScaleType::f16)
    throw_argument(function, "format.scale_type", "is not f32 or f16");
  if (f.symmetry != Symmetry::symmetric && f.symmetry != Symmetry::asymmetric)
    throw_argument(function, "format.symmetry", "is not symmetric or asymmetric");
}

/// Rounds a scale/offset to its storage precision (binary16 round-to-nearest-even for f16).
inline float to_storage(float v, ScaleType t) { return t == ScaleType::f16 ? half_to_float(float_to_half(v)) : v; }
}  // namespace detail

/// A quantized N x K weight matrix in rankq's canonical layout (docs/formats.md §2).
/// Codes: row n occupies `row_bytes` bytes; code k sits at bits [b*k, b*k + b) of the row's
/// little-endian LSB-first bit stream (for 4 bits: element 2j is the low nibble of byte j, 2j+1 the high one).
/// Scales/offsets: [N][groups] floats whose values are exactly representable in `format.scale_type`.
struct UniformWeights {
  UniformFormat format;
  std::size_t rows = 0;         ///< N (out-features)
  std::size_t cols = 0;         ///< K (in-features, the reduction dimension)
  std::size_t padded = 0;       ///< K_pad: columns after padding (codes in [cols, padded) are 0 and ignored)
  std::size_t group = 0;        ///< effective group size (K_pad for a whole row)
  std::size_t groups = 0;       ///< groups per row = K_pad / group
  std::size_t row_bytes = 0;    ///< K_pad * bits / 8
  AlignedBuffer<std::uint8_t> codes;  ///< N * row_bytes
  AlignedBuffer<float> scales;        ///< N * groups
  AlignedBuffer<float> offsets;       ///< N * groups (asymmetric only; empty for symmetric)

  unsigned code(std::size_t n, std::size_t k) const { return detail::get_bits(codes.data() + n * row_bytes, k, format.bits); }
  float scale(std::size_t n, std::size_t g) const { return scales[n * groups + g]; }
  /// The offset z of w^ = s*t - z; for a symmetric format, z = s * 2^(b-1) (which overflows to +inf when
  /// s >= 2^(128-b+1), e.g. MXINT blocks with a maximum >= 2^127: value() does not use it, docs/math.md §2.2).
  float offset(std::size_t n, std::size_t g) const {
    return format.symmetry == Symmetry::asymmetric ? offsets[n * groups + g]
                                                   : scales[n * groups + g] * static_cast<float>(1u << (format.bits - 1));
  }
  /// Dequantized value of element (n, k), computed in float: asymmetric s*t - z; symmetric s*(t - 2^(b-1)), the
  /// signed level being an exact small integer, so the result is finite whenever the value is (docs/math.md §2.2).
  float value(std::size_t n, std::size_t k) const {
    const std::size_t g = k / group;
    if (format.symmetry == Symmetry::symmetric)
      return scale(n, g) * static_cast<float>(static_cast<int>(code(n, k)) - (1 << (format.bits - 1)));
    return scale(n, g) * static_cast<float>(code(n, k)) - offset(n, g);
  }
};

/// Allocates an all-zero UniformWeights of the given shape (used by quantizers and readers).
inline UniformWeights make_uniform_weights(const UniformFormat& f, std::size_t N, std::size_t K) {
  detail::check_format(f, "make_uniform_weights");
  detail::require_positive(N, "make_uniform_weights", "rows");
  detail::require_positive(K, "make_uniform_weights", "cols");
  UniformWeights q;
  q.format = f;
  q.rows = N;
  q.cols = K;
  q.padded = padded_cols(f, K);
  q.group = f.group_size == kWholeRow ? q.padded : f.group_size;
  q.groups = q.padded / q.group;
  q.row_bytes = q.padded * f.bits / 8;
  q.codes.resize(N * q.row_bytes);
  q.scales.resize(N * q.groups);
  if (f.symmetry == Symmetry::asymmetric) q.offsets.resize(N * q.groups);
  return q;
}

namespace detail {
/// Round-to-nearest scale s and offset z of one group of n > 0 values (already in storage precision):
/// symmetric s = max|w|/(2^(b-1) - 1), z unused (0); asymmetric s = (max - min)/(2^b - 1), z = -min.
/// Shared by quantize_uniform and the GPTQ grids (gptq.hpp) so both choose identical parameters.
inline void uniform_group_params(const float* x, std::size_t n, const UniformFormat& f, float& s, float& z) {
  s = 0.0f;
  z = 0.0f;
  if (f.symmetry == Symmetry::symmetric) {
    float amax = 0.0f;
    for (std::size_t k = 0; k < n; ++k) amax = std::max(amax, std::fabs(x[k]));
    const double half_range = static_cast<double>(1u << (f.bits - 1));
    s = to_storage(static_cast<float>(amax / (half_range - 1.0)), f.scale_type);
  } else {
    float lo = x[0], hi = x[0];
    for (std::size_t k = 0; k < n; ++k) lo = std::min(lo, x[k]), hi = std::max(hi, x[k]);
    const double tmax = static_cast<double>((1u << f.bits) - 1u);
    s = to_storage(static_cast<float>((static_cast<double>(hi) - lo) / tmax), f.scale_type);
    z = to_storage(-lo, f.scale_type);
  }
}

/// Throws when a group's scale or offset overflowed its storage type.
inline void check_group_params(float s, float z, const UniformFormat& f, const char* fn, std::size_t row, std::size_t group) {
  if (!std::isfinite(s) || !std::isfinite(z))
    throw_argument(fn, "weights",
                   "row " + std::to_string(row) + " group " + std::to_string(group) + ": scale or offset overflows the " +
                       (f.scale_type == ScaleType::f16 ? "f16" : "f32") + " scale type");
}

/// The round-to-nearest code of x in a group with scale s and offset z (docs/math.md §1): rhe(x/s) + 2^(b-1)
/// (symmetric) or rhe((x + z)/s) (asymmetric), clamped to [0, 2^b - 1]; a constant group (s = 0) maps every
/// value to the code whose value is -z (symmetric: 2^(b-1), asymmetric: 0).
inline unsigned uniform_code(float x, float s, float z, const UniformFormat& f) {
  const double tmax = static_cast<double>((1u << f.bits) - 1u);
  const double half_range = static_cast<double>(1u << (f.bits - 1));
  double t;
  if (s == 0.0f)
    t = f.symmetry == Symmetry::symmetric ? half_range : 0.0;
  else if (f.symmetry == Symmetry::symmetric)
    t = round_half_even(static_cast<double>(x) / s) + half_range;
  else
    t = round_half_even((static_cast<double>(x) + z) / s);
  return static_cast<unsigned>(std::min(std::max(t, 0.0), tmax));
}
}  // namespace detail

/// Round-to-nearest quantization of an N x K weight matrix (row n = output channel n). The elements are float,
/// bf16_t or f16_t (e.g. a mapped BF16 checkpoint tensor): a 16-bit row is converted to float when it is reached
/// (one row buffer, never the whole matrix), and the result equals quantize_uniform of the same values in float
/// bit for bit. Throws rankq::invalid_argument for an unsupported format, an empty/null view or NaN/Inf weights.
template <typename T>
UniformWeights quantize_uniform(MatrixView<T> w, const UniformFormat& f) {
  static_assert(is_weight_element_v<T>, "quantize_uniform: weights must be float, bf16_t or f16_t");
  constexpr const char* fn = "quantize_uniform";
  detail::check_format(f, fn);
  detail::check_view(w, fn, "weights");
  detail::require_finite(w.data, w.rows, w.cols, w.ld, fn, "weights");
  UniformWeights q = make_uniform_weights(f, w.rows, w.cols);
  std::vector<float> buffer(detail::float_row_buffer_size(w));
  for (std::size_t n = 0; n < w.rows; ++n) {
    const float* row = detail::float_row(w, n, buffer.data());
    std::uint8_t* crow = q.codes.data() + n * q.row_bytes;
    for (std::size_t g = 0; g < q.groups; ++g) {
      const std::size_t k0 = g * q.group, k1 = std::min(w.cols, k0 + q.group);
      float s = 0.0f, z = 0.0f;
      if (k0 < k1) {
        detail::uniform_group_params(row + k0, k1 - k0, f, s, z);
        detail::check_group_params(s, z, f, fn, n, g);
        for (std::size_t k = k0; k < k1; ++k) detail::put_bits(crow, k, f.bits, detail::uniform_code(row[k], s, z, f));
      }
      q.scales[n * q.groups + g] = s;
      if (f.symmetry == Symmetry::asymmetric) q.offsets[n * q.groups + g] = z;
    }
  }
  return q;
}

/// Writes the dequantized N x K matrix into `out` (shape must match).
inline void dequantize(const UniformWeights& q, MatrixView<float> out) {
  detail::check_view(out, "dequantize", "out");
  if (out.rows != q.rows || out.cols != q.cols)
    detail::throw_argument("dequantize", "out",
                           "has shape " + std::to_string(out.rows) + "x" + std::to_string(out.cols) + ", expected " +
                               std::to_string(q.rows) + "x" + std::to_string(q.cols));
  for (std::size_t n = 0; n < q.rows; ++n)
    for (std::size_t k = 0; k < q.cols; ++k) out(n, k) = q.value(n, k);
}

/// Dequantized matrix as a dense row-major vector (N * K).
inline std::vector<float> dequantize(const UniformWeights& q) {
  std::vector<float> out(q.rows * q.cols);
  dequantize(q, MatrixView<float>(out.data(), q.rows, q.cols));
  return out;
}

/// Storage cost in bits per (real) weight: codes of the padded row plus scales and offsets.
inline double bits_per_weight(const UniformFormat& f, std::size_t K) {
  detail::check_format(f, "bits_per_weight");
  detail::require_positive(K, "bits_per_weight", "K");
  const std::size_t Kp = padded_cols(f, K);
  const std::size_t groups = f.group_size == kWholeRow ? 1 : Kp / f.group_size;
  const double scale_bits = f.scale_type == ScaleType::f16 ? 16.0 : 32.0;
  const double per_group = scale_bits * (f.symmetry == Symmetry::asymmetric ? 2.0 : 1.0);
  return (static_cast<double>(Kp) * f.bits + groups * per_group) / static_cast<double>(K);
}

RANKQ_NAMESPACE_END  // namespace rankq
