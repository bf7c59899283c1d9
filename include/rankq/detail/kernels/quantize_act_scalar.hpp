// rankq/detail/kernels/quantize_act_scalar.hpp — the portable primitives of activation quantization
// (activation_driver.inl): the arithmetic of detail::quantize_act_block, one value at a time.
#pragma once

#include "rankq/detail/abi.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "rankq/detail/rounding.hpp"

RANKQ_NAMESPACE_BEGIN namespace detail::scalar {

/// max |x[i]| over n floats; `finite` = no NaN/Inf among them.
inline float abs_max(const float* x, std::size_t n, bool& finite) {
  float amax = 0.0f;
  finite = true;
  for (std::size_t i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) finite = false;
    amax = std::max(amax, std::fabs(x[i]));
  }
  return amax;
}

/// q = clamp(round_half_even(float(x · factor)), ±127) (int8 rule).
inline void quantize_scaled(const float* x, std::size_t n, float factor, std::int8_t* q) {
  for (std::size_t i = 0; i < n; ++i) {
    const float p = x[i] * factor;
    q[i] = static_cast<std::int8_t>(std::min(std::max(round_half_even(static_cast<double>(p)), -127.0), 127.0));
  }
}

/// q = sign(x) · min(round_half_even(|x| · 2^-step), 127), factor = 2^-step (MXINT8 rule; exact in double).
inline void quantize_pow2(const float* x, std::size_t n, float factor, std::int8_t* q) {
  for (std::size_t i = 0; i < n; ++i) {
    const double v = std::min(round_half_even(std::fabs(static_cast<double>(x[i])) * factor), 127.0);
    q[i] = static_cast<std::int8_t>(x[i] < 0 ? -v : v);
  }
}

/// Σ q[0 .. len) exactly.
inline std::int32_t segment_sum(const std::int8_t* q, std::size_t len) {
  std::int32_t c = 0;
  for (std::size_t k = 0; k < len; ++k) c += q[k];
  return c;
}

}  RANKQ_NAMESPACE_END  // namespace rankq::detail::scalar
