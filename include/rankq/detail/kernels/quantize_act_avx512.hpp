// rankq/detail/kernels/quantize_act_avx512.hpp — activation quantization (per token, per block, MXINT8) with AVX-512,
// bit-identical to detail::quantize_act_block; rounding is explicit (embedded round-to-nearest-even), so the
// result does not depend on MXCSR.
#pragma once

#include "rankq/detail/abi.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "rankq/activation.hpp"
#include "rankq/mxint.hpp"
#include "rankq/detail/x86_targets.hpp"

#if RANKQ_X86_PATHS
RANKQ_X86_CODE_BEGIN
RANKQ_NAMESPACE_BEGIN namespace detail::avx512 {

RANKQ_AVX512_INLINE __mmask16 first_lanes(std::size_t n) {
  return static_cast<__mmask16>(n >= 16 ? 0xFFFFu : (1u << n) - 1u);
}

/// max |x[i]| over n floats; `finite` = no NaN/Inf among them.
RANKQ_AVX512_INLINE float abs_max(const float* x, std::size_t n, bool& finite) {
  const __m512i abs_bits = _mm512_set1_epi32(0x7FFFFFFF), inf_bits = _mm512_set1_epi32(0x7F800000);
  __m512 m0 = _mm512_setzero_ps(), m1 = m0;
  __mmask16 bad = 0;
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512i a = _mm512_and_si512(_mm512_loadu_si512(x + i), abs_bits);
    const __m512i b = _mm512_and_si512(_mm512_loadu_si512(x + i + 16), abs_bits);
    bad = static_cast<__mmask16>(bad | _mm512_cmpge_epi32_mask(a, inf_bits) | _mm512_cmpge_epi32_mask(b, inf_bits));
    m0 = _mm512_max_ps(m0, _mm512_castsi512_ps(a));
    m1 = _mm512_max_ps(m1, _mm512_castsi512_ps(b));
  }
  for (; i < n; i += 16) {
    const __m512i a = _mm512_and_si512(_mm512_maskz_loadu_epi32(first_lanes(n - i), x + i), abs_bits);
    bad = static_cast<__mmask16>(bad | _mm512_cmpge_epi32_mask(a, inf_bits));
    m0 = _mm512_max_ps(m0, _mm512_castsi512_ps(a));
  }
  finite = bad == 0;
  return _mm512_reduce_max_ps(_mm512_max_ps(m0, m1));
}

/// q[i] = clamp(rhe(v[i]), lo, 127) for the first `lanes`, from 16 floats already scaled.
RANKQ_AVX512_INLINE void store_rounded(std::int8_t* q, __mmask16 lanes, __m512 v, __m512i lo) {
  __m512i r = _mm512_cvt_roundps_epi32(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  r = _mm512_min_epi32(_mm512_max_epi32(r, lo), _mm512_set1_epi32(127));
  _mm_mask_storeu_epi8(q, lanes, _mm512_cvtepi32_epi8(r));
}

/// detail::quantize_act_block, vectorized (same scale, same codes, same errors).
RANKQ_AVX512_INLINE float quantize_block(const float* x, std::size_t n, const ActivationFormat& f, std::int8_t* q,
                                         const char* function, std::size_t row) {
  bool finite = true;
  const float amax = abs_max(x, n, finite);
  if (!finite) return detail::quantize_act_block(x, n, f, q, function, row);  // throws the scalar's message
  if (amax == 0.0f) {
    std::memset(q, 0, n);
    return 0.0f;
  }
  if (f.kind == ActivationQuant::mxint8) {
    int e = 0;
    const int step = mx_step_exponent(amax, MxFormat{8, f.block, f.semantics}, e);
    if (step > 126 || step < -127) return detail::quantize_act_block(x, n, f, q, function, row);  // 2^-step not a float
    const __m512 factor = _mm512_set1_ps(std::ldexp(1.0f, -step));  // |x| * 2^-step is exact where it matters
    const __m512 abs_bits = _mm512_castsi512_ps(_mm512_set1_epi32(0x7FFFFFFF));
    for (std::size_t i = 0; i < n; i += 16) {
      const __mmask16 lanes = first_lanes(n - i);
      const __m512 v = _mm512_maskz_loadu_ps(lanes, x + i);
      __m512i r = _mm512_cvt_roundps_epi32(_mm512_mul_ps(_mm512_and_ps(v, abs_bits), factor),
                                           _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      r = _mm512_min_epi32(r, _mm512_set1_epi32(127));
      const __mmask16 negative = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LT_OQ);
      r = _mm512_mask_sub_epi32(r, negative, _mm512_setzero_si512(), r);
      _mm_mask_storeu_epi8(q + i, lanes, _mm512_cvtepi32_epi8(r));
    }
    return static_cast<float>(std::ldexp(1.0, step));
  }
  const float inv = 127.0f / amax;
  if (std::isinf(inv)) {  // amax < 127 / FLT_MAX: every nonzero value saturates (x * inf), zeros stay 0
    for (std::size_t i = 0; i < n; ++i) q[i] = static_cast<std::int8_t>(x[i] > 0.0f ? 127 : x[i] < 0.0f ? -127 : 0);
    return amax / 127.0f;
  }
  const __m512 vinv = _mm512_set1_ps(inv);
  const __m512i lo = _mm512_set1_epi32(-127);
  for (std::size_t i = 0; i < n; i += 16) {
    const __mmask16 lanes = first_lanes(n - i);
    store_rounded(q + i, lanes, _mm512_mul_ps(_mm512_maskz_loadu_ps(lanes, x + i), vinv), lo);
  }
  return amax / 127.0f;
}

/// Quantizes every row of x into `out` (already shaped by prepare_quantized_activations).
RANKQ_AVX512_KERNEL void quantize_activation_rows(MatrixView<const float> x, const ActivationFormat& f,
                                                  QuantizedActivations& out, const char* function) {
  for (std::size_t m = 0; m < x.rows; ++m) {
    std::int8_t* q = out.values.data() + m * out.padded;
    for (std::size_t b = 0; b < out.blocks; ++b) {
      const std::size_t k0 = b * out.block, k1 = std::min(x.cols, k0 + out.block);
      out.scales[m * out.blocks + b] = k1 > k0 ? quantize_block(x.row(m) + k0, k1 - k0, f, q + k0, function, m) : 0.0f;
    }
    std::memset(q + x.cols, 0, out.padded - x.cols);
  }
}

}  RANKQ_NAMESPACE_END  // namespace rankq::detail::avx512
RANKQ_X86_CODE_END
#endif
