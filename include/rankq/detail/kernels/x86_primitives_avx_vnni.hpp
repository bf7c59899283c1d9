// rankq/detail/kernels/x86_primitives_avx_vnni.hpp — AVX-VNNI building blocks: the ymm VEX vpdpbusd dot product.
// Unpack, scales and row I/O are the AVX2 helpers (always inlined; their target is a subset of this one).
#pragma once

#include "rankq/detail/abi.hpp"

#include <cstddef>
#include <cstdint>

#include "rankq/detail/x86_targets.hpp"
#include "rankq/detail/kernels/x86_primitives_avx2.hpp"

#if RANKQ_X86_PATHS
RANKQ_X86_CODE_BEGIN
RANKQ_NAMESPACE_BEGIN namespace detail::avx_vnni {

using avx2::broadcast4;
using avx2::load_row_values;
using avx2::load_rows;
using avx2::Nibbles;
using avx2::store_rows;
using avx2::unpack_code_half;

/// acc[r] += Σ_i codes[4r+i] · x[r][i] with VEX vpdpbusd (ymm0-15 only: "x"). Written out for GCC 12, which wraps
/// the intrinsic in register copies (see avx512::dot4).
RANKQ_AVXVNNI_INLINE __m256i dpbusd(__m256i acc, __m256i codes, __m256i x) {
#if defined(__GNUC__) && !defined(__clang__)
  __asm__("{%{vex%} vpdpbusd %2, %1, %0|%{vex%} vpdpbusd %0, %1, %2}" : "+x"(acc) : "x"(codes), "x"(x));
  return acc;
#else
  return _mm256_dpbusd_avx_epi32(acc, codes, x);
#endif
}

/// u8 x s8 dot products with VEX vpdpbusd straight into int32 (no partial to widen).
struct DotVnni {
  static constexpr std::size_t kMaxBlocks = std::size_t(1) << 40;
  using Partial = __m256i;
  static RANKQ_AVXVNNI_INLINE Partial begin() { return _mm256_setzero_si256(); }
  static RANKQ_AVXVNNI_INLINE Partial add(Partial p, const Nibbles& c, const std::int8_t* x) {
    return dpbusd(dpbusd(p, c.lo, broadcast4(x)), c.hi, broadcast4(x + 4));
  }
  static RANKQ_AVXVNNI_INLINE __m256i finish(__m256i acc, Partial p) { return _mm256_add_epi32(acc, p); }
};

}  RANKQ_NAMESPACE_END  // namespace rankq::detail::avx_vnni
RANKQ_X86_CODE_END
#endif
