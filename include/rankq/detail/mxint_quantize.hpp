// rankq/detail/mxint_quantize.hpp — machinery of rankq/formats/mxint.hpp: the block quantizer in two forms that give the
// same codes bit for bit. `mx_quantize_block` is the definition (double arithmetic, any exponent);
// `mx_quantize_block_fast` is the float form the compiler vectorizes, valid when 2^-step is a normal float
// (every block except those with a maximum below about 2^-120 and 2-bit blocks at the top of the float range);
// quantize_mxint uses it there and the definition elsewhere. Why the float form is exact: docs/math.md §2.1.
#pragma once

#include "rankq/detail/abi.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "rankq/detail/rounding.hpp"

RANKQ_NAMESPACE_BEGIN namespace detail {

/// 2^p as a float for p in [-126, 127] (a normal float), built from its exponent bits.
inline float exp2_normal(int p) {
  const std::uint32_t bits = static_cast<std::uint32_t>(p + 127) << 23;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

/// True when the float form applies to a block with this step exponent.
inline bool mx_fast_step(int step) { return step >= -127 && step <= 126; }

/// Sign-magnitude codes (sign bit `sign_bit`, |q| <= qmax) of a block of B values at step `step` (mx_fast_step).
/// Same result as mx_quantize_block's: q = round_half_even(|x|·2^-step) clipped at qmax, sign from x < 0 with
/// a zero level always positive. In float: |x|·2^-step is exact whenever it is a normal float (a product by a
/// power of two), and when it underflows the exact value is below 2^-126, which rounds to 0 either way;
/// v <= 2^(w-1) so v − trunc(v) is exact, and the tie test needs no wider type. B is a compile-time 16 or 32 (a
/// short last block is zero-padded by the caller) so that the loop vectorizes.
template <std::size_t B>
inline void mx_quantize_block_fast(const float* x, int step, int qmax, unsigned sign_bit, std::uint8_t* codes) {
  const float inv_step = exp2_normal(-step);
  for (std::size_t i = 0; i < B; ++i) {
    const float v = std::fabs(x[i]) * inv_step;
    const int t = static_cast<int>(v);  // truncation: v >= 0
    const float f = v - static_cast<float>(t);
    // Branch-free (bitwise & on comparison results) so that the loop vectorizes.
    const int up = static_cast<int>(f > 0.5f);
    const int tie_to_odd = static_cast<int>(f == 0.5f) & t;
    int q = t + up + (tie_to_odd & 1);
    q = q < qmax ? q : qmax;
    const int negative = static_cast<int>(x[i] < 0.0f) & static_cast<int>(q != 0);
    codes[i] = static_cast<std::uint8_t>((negative * static_cast<int>(sign_bit)) | q);
  }
}

/// max |x_i| of a block of B values, and whether any is NaN or ±Inf (one vectorizable pass).
template <std::size_t B>
inline float block_abs_max(const float* x, bool& non_finite) {
  float bmax = 0.0f;
  int bad = 0;
  for (std::size_t i = 0; i < B; ++i) {
    const float a = std::fabs(x[i]);
    bad |= static_cast<int>(!(a <= 3.40282347e38f));  // NaN compares false
    bmax = a > bmax ? a : bmax;
  }
  non_finite = bad != 0;
  return bmax;
}

}  RANKQ_NAMESPACE_END  // namespace rankq::detail
