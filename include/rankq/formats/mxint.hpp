// rankq/formats/mxint.hpp — MXINT block floating point (one shared 8-bit exponent per block of 16 or 32 values),
// with the LQER authors' semantics ("lqer": ceil exponent, clip at (2^m-1)/2^m) and OCP MX's ("ocp": floor
// exponent, w-2 fractional bits). Byte layout: docs/formats.md §3. Math: docs/math.md §2.
#pragma once

#include "rankq/detail/abi.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "rankq/detail/mxint_quantize.hpp"
#include "rankq/detail/rounding.hpp"
#include "rankq/error.hpp"
#include "rankq/formats/matrix.hpp"

RANKQ_NAMESPACE_BEGIN

enum class MxSemantics : std::uint8_t { lqer = 0, ocp = 1 };

struct MxFormat {
  unsigned bits = 4;          ///< element width w: 1 sign bit + (w-1) magnitude bits; 2..8
  std::size_t block = 16;     ///< 16 or 32 values share one exponent (along the row)
  MxSemantics semantics = MxSemantics::lqer;
};

inline std::string to_string(const MxFormat& f) {
  return "mxint" + std::to_string(f.bits) + "-b" + std::to_string(f.block) +
         (f.semantics == MxSemantics::lqer ? "-lqer" : "-ocp");
}

namespace detail {
inline void check_format(const MxFormat& f, const char* function) {
  if (f.bits < 2 || f.bits > 8)
    throw_argument(function, "format.bits", "= " + std::to_string(f.bits) + ": MXINT widths are 2..8");
  if (f.block != 16 && f.block != 32)
    throw_argument(function, "format.block", "= " + std::to_string(f.block) + ": must be 16 or 32");
  if (f.semantics != MxSemantics::lqer && f.semantics != MxSemantics::ocp)
    throw_argument(function, "format.semantics", "is not lqer or ocp");
}

/// log2 of the element step for a block whose max magnitude is `bmax` > 0: values are sign * q * 2^step_exp.
/// Returns the shared exponent e (clamped) through `shared_exp`.
inline int mx_step_exponent(float bmax, const MxFormat& f, int& shared_exp) {
  int ex = 0;
  const double frac = std::frexp(static_cast<double>(bmax), &ex);  // bmax = frac * 2^ex, frac in [0.5, 1)
  const int m = static_cast<int>(f.bits) - 1;
  if (f.semantics == MxSemantics::lqer) {
    int e = (frac == 0.5) ? ex - 1 : ex;  // ceil(log2 bmax)
    shared_exp = std::min(std::max(e, -127), 128);
    return shared_exp - m;
  }
  int e = ex - 1;  // floor(log2 bmax)
  shared_exp = std::min(std::max(e, -127), 127);
  return shared_exp - (m - 1);  // w-2 fractional bits
}

/// Quantizes one block: writes signed integer levels (sign * q, |q| <= 2^(w-1)-1) and returns the shared exponent.
/// `fallback_bmax` is used for an all-zero block (the authors borrow the tensor's smallest nonzero block max).
inline int mx_quantize_block(const float* x, std::size_t n, const MxFormat& f, float fallback_bmax, int* levels) {
  float bmax = 0.0f;
  for (std::size_t i = 0; i < n; ++i) bmax = std::max(bmax, std::fabs(x[i]));
  if (bmax == 0.0f) bmax = fallback_bmax > 0.0f ? fallback_bmax : 1.0f;
  int e = 0;
  const int step = mx_step_exponent(bmax, f, e);
  const double qmax = static_cast<double>((1u << (f.bits - 1)) - 1u);
  for (std::size_t i = 0; i < n; ++i) {
    double q = round_half_even(std::ldexp(std::fabs(static_cast<double>(x[i])), -step));
    q = std::min(q, qmax);
    levels[i] = x[i] < 0 ? -static_cast<int>(q) : static_cast<int>(q);
  }
  return e;
}

inline int mx_step_from_shared(int e, const MxFormat& f) {
  const int m = static_cast<int>(f.bits) - 1;
  return f.semantics == MxSemantics::lqer ? e - m : e - (m - 1);
}
}  // namespace detail

/// A quantized rows x cols matrix in MXINT (blocks run along each row; the last block of a row may be short
/// in `cols` but codes are stored for the padded row, padding codes are 0).
/// Codes: sign-magnitude, w bits each, LSB-first bit stream per row (sign is the code's top bit).
/// Exponents: one byte per block, e + 127 (so e in [-127, 128]).
struct MxTensor {
  MxFormat format;
  std::size_t rows = 0, cols = 0, padded = 0, blocks = 0, row_bytes = 0;
  AlignedBuffer<std::uint8_t> codes;      ///< rows * row_bytes
  AlignedBuffer<std::uint8_t> exponents;  ///< rows * blocks, biased by 127

  int shared_exponent(std::size_t r, std::size_t b) const { return static_cast<int>(exponents[r * blocks + b]) - 127; }
  /// Signed integer level of element (r, c): value = level * 2^step(block).
  int level(std::size_t r, std::size_t c) const {
    const unsigned code = detail::get_bits(codes.data() + r * row_bytes, c, format.bits);
    const unsigned sign_bit = 1u << (format.bits - 1);
    const int mag = static_cast<int>(code & (sign_bit - 1u));
    return (code & sign_bit) ? -mag : mag;
  }
  float value(std::size_t r, std::size_t c) const {
    const int step = detail::mx_step_from_shared(shared_exponent(r, c / format.block), format);
    return static_cast<float>(std::ldexp(static_cast<double>(level(r, c)), step));
  }
};

namespace detail {
/// The MXINT quantizer's single pass over x (format and view already checked): per block, its max (with the
/// finiteness check: throws naming the first NaN/Inf), exponent e and sign-magnitude codes, handed to
/// `block(r, b, e, codes, n)` for the n <= f.block values of block b of row r. An all-zero block borrows the
/// tensor's smallest nonzero block max, known only at the end: its codes are 0 whatever the exponent, so it is
/// handed over after the pass. quantize_mxint and quantize_mxint_uniform share it, so they agree bit for bit.
/// The elements are float, bf16_t or f16_t: each row is read as floats once (detail::float_row).
template <typename T, typename BlockFn>
void for_each_mxint_block(MatrixView<const T> x, const MxFormat& f, const char* fn, BlockFn&& block) {
  const std::size_t blocks = round_up(x.cols, f.block) / f.block;
  float fallback = std::numeric_limits<float>::infinity();
  std::vector<std::size_t> zero_blocks;
  std::vector<int> levels(f.block);
  std::uint8_t block_codes[32];
  float padded_block[32];
  const unsigned sign_bit = 1u << (f.bits - 1);
  const int qmax = static_cast<int>(sign_bit - 1u);
  std::vector<float> row_buffer(float_row_buffer_size(x));
  for (std::size_t r = 0; r < x.rows; ++r) {
    const float* row = float_row(x, r, row_buffer.data());
    for (std::size_t b = 0; b < blocks; ++b) {
      const std::size_t c0 = b * f.block, n = std::min(x.cols, c0 + f.block) - c0;
      const float* xb = row + c0;
      if (n < f.block) {  // the row's short last block, zero-padded for the fixed-size loops
        std::fill(padded_block, padded_block + f.block, 0.0f);
        std::copy(xb, xb + n, padded_block);
        xb = padded_block;
      }
      bool non_finite = false;
      const float bmax = f.block == 16 ? block_abs_max<16>(xb, non_finite) : block_abs_max<32>(xb, non_finite);
      if (non_finite) require_finite(x.data, x.rows, x.cols, x.ld, fn, "values");  // throws, naming the first
      if (bmax == 0.0f) {
        zero_blocks.push_back(r * blocks + b);
        continue;
      }
      fallback = std::min(fallback, bmax);
      int e = 0;
      const int step = mx_step_exponent(bmax, f, e);
      if (mx_fast_step(step)) {
        if (f.block == 16)
          mx_quantize_block_fast<16>(xb, step, qmax, sign_bit, block_codes);
        else
          mx_quantize_block_fast<32>(xb, step, qmax, sign_bit, block_codes);
      } else {
        mx_quantize_block(xb, n, f, 0.0f, levels.data());
        for (std::size_t i = 0; i < n; ++i) {
          const int l = levels[i];
          block_codes[i] = static_cast<std::uint8_t>(l < 0 ? (sign_bit | static_cast<unsigned>(-l)) : static_cast<unsigned>(l));
        }
      }
      block(r, b, e, static_cast<const std::uint8_t*>(block_codes), n);
    }
  }
  if (zero_blocks.empty()) return;
  int e = 0;
  mx_step_exponent(std::isfinite(fallback) ? fallback : 1.0f, f, e);  // no nonzero block at all: 1
  std::fill(block_codes, block_codes + 32, std::uint8_t{0});
  for (std::size_t i : zero_blocks) {
    const std::size_t r = i / blocks, b = i % blocks;
    block(r, b, e, static_cast<const std::uint8_t*>(block_codes), std::min(x.cols, (b + 1) * f.block) - b * f.block);
  }
}

/// Writes n w-bit codes at columns [c0, c0 + n) of an LSB-first row stream that starts zeroed (c0 is a multiple
/// of 16, so 4-bit codes start on a byte).
inline void put_block_codes(std::uint8_t* row, std::size_t c0, std::size_t n, unsigned w, const std::uint8_t* codes) {
  if (w == 8) {
    std::memcpy(row + c0, codes, n);
  } else if (w == 4) {  // whole bytes; an odd tail's high nibble stays 0
    for (std::size_t i = 0; i + 1 < n; i += 2) row[(c0 + i) / 2] = static_cast<std::uint8_t>(codes[i] | (codes[i + 1] << 4));
    if (n % 2) row[(c0 + n - 1) / 2] = codes[n - 1];
  } else {
    for (std::size_t i = 0; i < n; ++i) put_bits(row, c0 + i, w, codes[i]);
  }
}
}  // namespace detail

/// Quantizes a rows x cols matrix to MXINT. The elements are float, bf16_t or f16_t (e.g. a mapped BF16 checkpoint
/// tensor): 16-bit rows are converted to float one at a time, and the result equals quantize_mxint of the same
/// values in float bit for bit. Throws for NaN/Inf, empty/null views or a bad format.
template <typename T>
MxTensor quantize_mxint(MatrixView<T> xv, const MxFormat& f) {
  static_assert(is_weight_element_v<T>, "quantize_mxint: values must be float, bf16_t or f16_t");
  constexpr const char* fn = "quantize_mxint";
  const MatrixView<const std::remove_const_t<T>> x = xv;
  detail::check_format(f, fn);
  detail::check_view(x, fn, "values");
  MxTensor t;
  t.format = f;
  t.rows = x.rows;
  t.cols = x.cols;
  t.padded = detail::round_up(x.cols, f.block);
  t.blocks = t.padded / f.block;
  t.row_bytes = t.padded * f.bits / 8;
  t.codes.resize(t.rows * t.row_bytes);
  t.exponents.resize(t.rows * t.blocks);
  detail::for_each_mxint_block(x, f, fn, [&](std::size_t r, std::size_t b, int e, const std::uint8_t* codes, std::size_t n) {
    t.exponents[r * t.blocks + b] = static_cast<std::uint8_t>(e + 127);
    detail::put_block_codes(t.codes.data() + r * t.row_bytes, b * f.block, n, f.bits, codes);
  });
  return t;
}

inline std::vector<float> dequantize(const MxTensor& t) {
  std::vector<float> out(t.rows * t.cols);
  for (std::size_t r = 0; r < t.rows; ++r)
    for (std::size_t c = 0; c < t.cols; ++c) out[r * t.cols + c] = t.value(r, c);
  return out;
}

/// Quantize-dequantize in one step ("fake quantization"), e.g. for error analysis. Same rules as quantize_mxint.
template <typename T>
std::vector<float> mxint_round_trip(MatrixView<T> x, const MxFormat& f) {
  return dequantize(quantize_mxint(x, f));
}

/// Bits per element: w bits plus one 8-bit exponent per block (padding counted).
inline double bits_per_weight(const MxFormat& f, std::size_t cols) {
  detail::check_format(f, "bits_per_weight");
  detail::require_positive(cols, "bits_per_weight", "cols");
  const std::size_t padded = detail::round_up(cols, f.block);
  return (static_cast<double>(padded) * f.bits + 8.0 * static_cast<double>(padded / f.block)) / static_cast<double>(cols);
}

RANKQ_NAMESPACE_END  // namespace rankq
