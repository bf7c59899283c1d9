// rankq/detail/kernels/quantize_act_avx2.hpp — the AVX2 primitives of activation quantization (activation_driver.inl):
// abs max, the int8 and MXINT8 rounding loops (explicit round-to-nearest-even, independent of MXCSR, so every path
// is bit-identical to detail::quantize_act_block), and the exact int8 segment sums, shared by every x86 path.
#pragma once

#include "rankq/detail/abi.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "rankq/formats/activation.hpp"
#include "rankq/formats/mxint.hpp"
#include "rankq/detail/x86_targets.hpp"

#if RANKQ_X86_PATHS
RANKQ_X86_CODE_BEGIN
RANKQ_NAMESPACE_BEGIN namespace detail::avx2 {

/// All-ones in the first min(n, 8) 32-bit lanes (a vmaskmov mask: masked-out lanes are never touched).
RANKQ_AVX2_INLINE __m256i first_lanes(std::size_t n) {
  const int k = n >= 8 ? 8 : static_cast<int>(n);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(k), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

RANKQ_AVX2_INLINE __m256 load_first(const float* x, std::size_t n) {
  return n >= 8 ? _mm256_loadu_ps(x) : _mm256_maskload_ps(x, first_lanes(n));
}

/// Stores the low byte of the first min(n, 8) int32 lanes (values already in [-127, 127]).
RANKQ_AVX2_INLINE void store_bytes(std::int8_t* q, std::size_t n, __m256i r) {
  const __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
  const __m128i b = _mm_packs_epi16(w16, w16);
  if (n >= 8) {
    _mm_storel_epi64(reinterpret_cast<__m128i*>(q), b);
  } else {
    alignas(16) std::int8_t tmp[16];
    _mm_store_si128(reinterpret_cast<__m128i*>(tmp), b);
    std::memcpy(q, tmp, n);
  }
}

/// Round half to even whatever the MXCSR mode, then to int32 (the rounded value is integral, so truncation is exact).
RANKQ_AVX2_INLINE __m256i round_even(__m256 v) {
  return _mm256_cvttps_epi32(_mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

/// max |x[i]| over n floats; `finite` = no NaN/Inf among them.
RANKQ_AVX2_INLINE float abs_max(const float* x, std::size_t n, bool& finite) {
  const __m256i abs_bits = _mm256_set1_epi32(0x7FFFFFFF), max_finite = _mm256_set1_epi32(0x7F7FFFFF);
  __m256i m = _mm256_setzero_si256(), bad = m;
  for (std::size_t i = 0; i < n; i += 8) {
    const __m256i a = _mm256_and_si256(_mm256_castps_si256(load_first(x + i, n - i)), abs_bits);
    bad = _mm256_or_si256(bad, _mm256_cmpgt_epi32(a, max_finite));
    m = _mm256_max_epi32(m, a);  // non-negative floats order like their bit patterns
  }
  finite = _mm256_testz_si256(bad, bad) != 0;
  __m128i r = _mm_max_epi32(_mm256_castsi256_si128(m), _mm256_extracti128_si256(m, 1));
  r = _mm_max_epi32(r, _mm_shuffle_epi32(r, 0x4E));
  r = _mm_max_epi32(r, _mm_shuffle_epi32(r, 0xB1));
  return _mm_cvtss_f32(_mm_castsi128_ps(r));
}

/// q = clamp(round_half_even(x · factor), ±127) for n values, 8 at a time (int8 rule).
RANKQ_AVX2_INLINE void quantize_scaled(const float* x, std::size_t n, float factor, std::int8_t* q) {
  const __m256 vf = _mm256_set1_ps(factor);
  const __m256i lo = _mm256_set1_epi32(-127), hi = _mm256_set1_epi32(127);
  for (std::size_t i = 0; i < n; i += 8) {
    const __m256i r = round_even(_mm256_mul_ps(load_first(x + i, n - i), vf));
    store_bytes(q + i, n - i, _mm256_min_epi32(_mm256_max_epi32(r, lo), hi));
  }
}

/// q = sign(x) · min(round_half_even(|x| · 2^-step), 127) for n values (MXINT8 rule; |x| · 2^-step is exact
/// unless it is subnormal, and then it rounds to 0 either way).
RANKQ_AVX2_INLINE void quantize_pow2(const float* x, std::size_t n, float factor, std::int8_t* q) {
  const __m256 vf = _mm256_set1_ps(factor), abs_bits = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  const __m256i hi = _mm256_set1_epi32(127);
  for (std::size_t i = 0; i < n; i += 8) {
    const __m256 v = load_first(x + i, n - i);
    __m256i r = _mm256_min_epi32(round_even(_mm256_mul_ps(_mm256_and_ps(v, abs_bits), vf)), hi);
    const __m256i negative = _mm256_castps_si256(_mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_LT_OQ));  // all-ones or 0
    r = _mm256_sub_epi32(_mm256_xor_si256(r, negative), negative);                                        // -r where x < 0
    store_bytes(q + i, n - i, r);
  }
}

/// Σ q[0 .. len) exactly, len a multiple of 16: vpsadbw of (q ^ 0x80) = Σ (q + 128) per 8 bytes.
RANKQ_AVX2_INLINE std::int32_t segment_sum(const std::int8_t* q, std::size_t len) {
  const __m128i bias = _mm_set1_epi8(static_cast<char>(0x80)), zero = _mm_setzero_si128();
  __m128i acc = zero;
  for (std::size_t k = 0; k < len; k += 16)
    acc = _mm_add_epi64(acc, _mm_sad_epu8(_mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q + k)), bias), zero));
  return static_cast<std::int32_t>(_mm_cvtsi128_si64(acc) + _mm_extract_epi64(acc, 1) - 128 * static_cast<std::int64_t>(len));
}

}  RANKQ_NAMESPACE_END  // namespace rankq::detail::avx2
RANKQ_X86_CODE_END
#endif
