// rankq/detail/kernels/quantize_act_avx512.hpp — the AVX-512 primitives of activation quantization
// (activation_driver.inl), bit-identical to detail::quantize_act_block; rounding is explicit (embedded
// round-to-nearest-even), so the result does not depend on MXCSR.
#pragma once

#include "rankq/detail/abi.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "rankq/formats/activation.hpp"
#include "rankq/formats/mxint.hpp"
#include "rankq/detail/x86_targets.hpp"
#include "rankq/detail/kernels/quantize_act_avx2.hpp"

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

/// q = clamp(round_half_even(x · factor), ±127) for n values, 16 at a time (int8 rule).
RANKQ_AVX512_INLINE void quantize_scaled(const float* x, std::size_t n, float factor, std::int8_t* q) {
  const __m512 vf = _mm512_set1_ps(factor);
  const __m512i lo = _mm512_set1_epi32(-127);
  for (std::size_t i = 0; i < n; i += 16) {
    const __mmask16 lanes = first_lanes(n - i);
    store_rounded(q + i, lanes, _mm512_mul_ps(_mm512_maskz_loadu_ps(lanes, x + i), vf), lo);
  }
}

/// q = sign(x) · min(round_half_even(|x| · 2^-step), 127) for n values (MXINT8 rule).
RANKQ_AVX512_INLINE void quantize_pow2(const float* x, std::size_t n, float factor, std::int8_t* q) {
  const __m512 vf = _mm512_set1_ps(factor), abs_bits = _mm512_castsi512_ps(_mm512_set1_epi32(0x7FFFFFFF));
  for (std::size_t i = 0; i < n; i += 16) {
    const __mmask16 lanes = first_lanes(n - i);
    const __m512 v = _mm512_maskz_loadu_ps(lanes, x + i);
    __m512i r = _mm512_cvt_roundps_epi32(_mm512_mul_ps(_mm512_and_ps(v, abs_bits), vf),
                                         _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    r = _mm512_min_epi32(r, _mm512_set1_epi32(127));
    const __mmask16 negative = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LT_OQ);
    r = _mm512_mask_sub_epi32(r, negative, _mm512_setzero_si512(), r);
    _mm_mask_storeu_epi8(q + i, lanes, _mm512_cvtepi32_epi8(r));
  }
}

using avx2::segment_sum;

}  RANKQ_NAMESPACE_END  // namespace rankq::detail::avx512
RANKQ_X86_CODE_END
#endif
