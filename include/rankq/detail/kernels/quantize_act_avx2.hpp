// rankq/detail/kernels/quantize_act_avx2.hpp — activation quantization (per token, per block, MXINT8) with AVX2,
// bit-identical to detail::quantize_act_block (explicit round-to-nearest-even, independent of MXCSR); and the
// int8 group sums of w4a8_gemm's offset term, shared by every x86 path.
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

/// detail::quantize_act_block, vectorized (same scale, same codes, same errors).
RANKQ_AVX2_INLINE float quantize_block(const float* x, std::size_t n, const ActivationFormat& f, std::int8_t* q,
                                       const char* function, std::size_t row) {
  bool finite = true;
  const float amax = abs_max(x, n, finite);
  if (!finite) return detail::quantize_act_block(x, n, f, q, function, row);  // throws the scalar's message
  if (amax == 0.0f) {
    std::memset(q, 0, n);
    return 0.0f;
  }
  const __m256i hi = _mm256_set1_epi32(127);
  if (f.kind == ActivationQuant::mxint8) {
    int e = 0;
    const int step = mx_step_exponent(amax, MxFormat{8, f.block, f.semantics}, e);
    if (step > 126 || step < -127) return detail::quantize_act_block(x, n, f, q, function, row);  // 2^-step not a float
    const __m256 factor = _mm256_set1_ps(std::ldexp(1.0f, -step));  // |x| * 2^-step is exact where it matters
    const __m256 abs_bits = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    for (std::size_t i = 0; i < n; i += 8) {
      const __m256 v = load_first(x + i, n - i);
      __m256i r = _mm256_min_epi32(round_even(_mm256_mul_ps(_mm256_and_ps(v, abs_bits), factor)), hi);
      const __m256i negative = _mm256_castps_si256(_mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_LT_OQ));  // all-ones or 0
      r = _mm256_sub_epi32(_mm256_xor_si256(r, negative), negative);                                        // -r where x < 0
      store_bytes(q + i, n - i, r);
    }
    return static_cast<float>(std::ldexp(1.0, step));
  }
  const float inv = 127.0f / amax;
  if (std::isinf(inv)) {  // amax < 127 / FLT_MAX: every nonzero value saturates (x * inf), zeros stay 0
    for (std::size_t i = 0; i < n; ++i) q[i] = static_cast<std::int8_t>(x[i] > 0.0f ? 127 : x[i] < 0.0f ? -127 : 0);
    return amax / 127.0f;
  }
  const __m256 vinv = _mm256_set1_ps(inv);
  const __m256i lo = _mm256_set1_epi32(-127);
  for (std::size_t i = 0; i < n; i += 8) {
    const __m256i r = round_even(_mm256_mul_ps(load_first(x + i, n - i), vinv));
    store_bytes(q + i, n - i, _mm256_min_epi32(_mm256_max_epi32(r, lo), hi));
  }
  return amax / 127.0f;
}

/// Quantizes every row of x into `out` (already shaped by prepare_quantized_activations).
RANKQ_AVX2_KERNEL void quantize_activation_rows(MatrixView<const float> x, const ActivationFormat& f,
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

/// xsum[m·groups + g] = Σ_seg a_seg · Σ_{k in seg} q[m][k] over group g's segments (same float order as the
/// scalar loop: exact integer sums, one fma per segment), for groups of `group` K (a multiple of 16).
RANKQ_AVX2_KERNEL void group_sums(const QuantizedActivations& x, std::size_t group, std::size_t groups, float* xsum) {
  const __m128i bias = _mm_set1_epi8(static_cast<char>(0x80)), zero = _mm_setzero_si128();
  for (std::size_t m = 0; m < x.rows; ++m) {
    const std::int8_t* q = x.row(m);
    for (std::size_t g = 0; g < groups; ++g) {
      float s = 0.0f;
      const std::size_t g_end = (g + 1) * group;
      for (std::size_t k = g * group; k < g_end;) {
        const std::size_t b = k / x.block, seg_end = std::min(g_end, (b + 1) * x.block), len = seg_end - k;
        __m128i acc = zero;  // vpsadbw of (q ^ 0x80) = Σ (q + 128) per 8 bytes
        for (; k < seg_end; k += 16)
          acc = _mm_add_epi64(acc, _mm_sad_epu8(_mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q + k)), bias), zero));
        const std::int64_t c = _mm_cvtsi128_si64(acc) + _mm_extract_epi64(acc, 1) - 128 * static_cast<std::int64_t>(len);
        s = std::fma(x.scale(m, b), static_cast<float>(static_cast<std::int32_t>(c)), s);
      }
      xsum[m * groups + g] = s;
    }
  }
}

}  RANKQ_NAMESPACE_END  // namespace rankq::detail::avx2
RANKQ_X86_CODE_END
#endif
