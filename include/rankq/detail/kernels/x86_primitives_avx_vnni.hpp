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


/// Instruction-set traits of the avx_vnni path: the avx2 ones with vpdpbusd straight into int32.
struct Isa : avx2::Isa {
  static constexpr std::size_t kMaxChunks = std::size_t(1) << 40;
  template <std::size_t NT, std::size_t J, std::size_t C>
  static RANKQ_AVXVNNI_INLINE void dot(Partial (&p)[C], const Codes& c, X x) {
    p[J % C] = DotVnni::add(p[J % C], c, x + 8 * J);
  }
  // Low-rank factors: VEX vpdpbusd on the offset-binary codes u (u8) and x (s8), then D = Σu·x − 128·Σx.
  static RANKQ_AVXVNNI_INLINE LrCodes lr_load(const std::uint8_t* quad, std::size_t v) {
    return _mm256_load_si256(reinterpret_cast<const __m256i*>(quad + 32 * v));
  }
  template <std::size_t Q>
  static RANKQ_AVXVNNI_INLINE I lr_dot(I acc, LrCodes u, X x) { return dpbusd(acc, u, broadcast4(x + 4 * Q)); }
  static RANKQ_AVXVNNI_INLINE I lr_finish(I acc, std::int32_t x_sum) { return _mm256_sub_epi32(acc, _mm256_set1_epi32(128 * x_sum)); }
  /// W8A8: vpdpbusd takes every code u in [0, 255] exactly (overrides avx2's split product).
  template <std::size_t Q>
  static RANKQ_AVXVNNI_INLINE I w8_dot(I acc, LrCodes u, X x) { return lr_dot<Q>(acc, u, x); }
  // Codebooks: vpshufb lookup of the biased table Vq + 128 (u8), vpdpbusd, then − 128·Σx per segment: exact
  // modulo 2^32, hence exact.
  template <std::size_t N>  // (token, rank) pairs: split lo/hi chains while there are few of them
  static constexpr std::size_t cb_chains() { return N <= 2 ? 2 : 1; }
  static RANKQ_AVXVNNI_INLINE CbLut cb_lut(const std::int8_t* levels16) {
    const __m128i t = _mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(levels16)), _mm_set1_epi8(-128));
    return _mm256_broadcastsi128_si256(t);
  }
  template <std::size_t J, std::size_t C>
  static RANKQ_AVXVNNI_INLINE void cb_dot(I (&acc)[C], const CbLevels& w, X x) {
    acc[0] = _mm256_dpbusd_avx_epi32(acc[0], w.lo, broadcast4(x + 8 * J));
    acc[C - 1] = _mm256_dpbusd_avx_epi32(acc[C - 1], w.hi, broadcast4(x + 8 * J + 4));
  }
  static RANKQ_AVXVNNI_INLINE I cb_finish(I acc, std::int32_t segment_sum) {
    return _mm256_sub_epi32(acc, _mm256_set1_epi32(static_cast<std::int32_t>(static_cast<std::uint32_t>(segment_sum) << 7)));
  }
  template <std::size_t C>
  static RANKQ_AVXVNNI_INLINE I finish(I acc, const Partial (&p)[C]) {
    for (std::size_t i = 0; i < C; ++i) acc = _mm256_add_epi32(acc, p[i]);
    return acc;
  }
};

}  RANKQ_NAMESPACE_END  // namespace rankq::detail::avx_vnni
RANKQ_X86_CODE_END
#endif
