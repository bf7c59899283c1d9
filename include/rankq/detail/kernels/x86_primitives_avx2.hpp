// rankq/detail/kernels/x86_primitives_avx2.hpp — AVX2 building blocks for kernels on the packed 4-bit layout: nibble
// unpack of a code-block half (8 rows), exact u8 x s8 dot products via vpmaddubsw, per-row scales, row I/O.
#pragma once

#include "rankq/detail/abi.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "rankq/detail/x86_targets.hpp"
#include "rankq/detail/kernels/w4a8_layout.hpp"

#if RANKQ_X86_PATHS
RANKQ_X86_CODE_BEGIN
RANKQ_NAMESPACE_BEGIN namespace detail::avx2 {

/// Half h of a 64-byte code block (rows 8h..8h+7, bytes 32h..32h+31) as two u8 operands: lane r of `lo` holds
/// t[8h+r][k0..k0+3], lane r of `hi` holds t[8h+r][k0+4..k0+7] (docs/formats.md §5).
struct Nibbles {
  __m256i lo, hi;
};

RANKQ_AVX2_INLINE Nibbles unpack_code_half(const std::uint8_t* half) {
  const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(half));
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  return {_mm256_and_si256(v, low4), _mm256_and_si256(_mm256_srli_epi16(v, 4), low4)};
}

/// The 4 int8 activations at x, repeated in every 32-bit lane (one vpbroadcastd from memory).
RANKQ_AVX2_INLINE __m256i broadcast4(const std::int8_t* x) {
  std::int32_t v;
  std::memcpy(&v, x, 4);
  return _mm256_set1_epi32(v);
}

/// Exact u8 x s8 dot products without VNNI. vpmaddubsw gives int16 pair sums c0·x0 + c1·x1 with codes c <= 15,
/// so |pair| <= 2·15·128 = 3840 and it never saturates; up to 8 pair sums (4 code blocks: lo + hi each) are
/// added in int16 (|sum| <= 30720 < 32768), then widened once with vpmaddwd(ones) into int32.
struct DotMaddubs {
  static constexpr std::size_t kMaxBlocks = 4;  ///< code blocks per int16 partial
  using Partial = __m256i;
  static RANKQ_AVX2_INLINE Partial begin() { return _mm256_setzero_si256(); }
  static RANKQ_AVX2_INLINE Partial add(Partial p, const Nibbles& c, const std::int8_t* x) {
    const __m256i lo = _mm256_maddubs_epi16(c.lo, broadcast4(x));
    const __m256i hi = _mm256_maddubs_epi16(c.hi, broadcast4(x + 4));
    return _mm256_add_epi16(p, _mm256_add_epi16(lo, hi));
  }
  static RANKQ_AVX2_INLINE __m256i finish(__m256i acc, Partial p) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
  }
};

/// 8 per-row values (scales or offsets) of half h of a tile, stored as f16 or f32.
RANKQ_AVX2_INLINE __m256 load_row_values(const std::uint8_t* p, std::size_t h, ScaleType t) {
  if (t == ScaleType::f16) return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * h)));
  return _mm256_loadu_ps(reinterpret_cast<const float*>(p + 32 * h));
}

/// The 16 values of a tile's rows at p; rows past `rows` (1..16) are zero and never read.
RANKQ_AVX2_INLINE void load_rows(const float* p, std::size_t rows, __m256 v[2]) {
  if (rows >= kTileRows) {
    v[0] = _mm256_loadu_ps(p);
    v[1] = _mm256_loadu_ps(p + 8);
    return;
  }
  alignas(32) float tmp[kTileRows] = {};
  std::memcpy(tmp, p, rows * sizeof(float));
  v[0] = _mm256_load_ps(tmp);
  v[1] = _mm256_load_ps(tmp + 8);
}

/// Stores the first `rows` (1..16) of a tile's 16 outputs; nothing past them is written.
RANKQ_AVX2_INLINE void store_rows(float* p, std::size_t rows, __m256 v0, __m256 v1) {
  if (rows >= kTileRows) {
    _mm256_storeu_ps(p, v0);
    _mm256_storeu_ps(p + 8, v1);
    return;
  }
  alignas(32) float tmp[kTileRows];
  _mm256_store_ps(tmp, v0);
  _mm256_store_ps(tmp + 8, v1);
  std::memcpy(p, tmp, rows * sizeof(float));
}


/// Instruction-set traits of the avx2 path (contract: docs/kernels.md §2.1): a 16-row tile is two ymm of 8 rows.
struct Isa {
  static constexpr std::size_t kVecs = 2;
  static constexpr std::size_t kTokenBlock = 4;  ///< tokens per micro-kernel call (4 x 16 rows of outputs)
  static constexpr std::size_t kTileBlock = 1;
  /// int16 partials: <= 8 pair sums of |c·x| <= 3840 each, i.e. 2 chunks of both blocks (C = 1) or 4 chunks of
  /// one block each (C = 2: the driver runs kMaxChunks · C chunks between finishes).
  static constexpr std::size_t kMaxChunks = 2;
  static constexpr bool kPageAhead = true;
  static constexpr bool kPrefill = false;  ///< has a W4A8 prefill specialisation (run_w4a8_prefill)
  /// Two partials (even / odd code block) for 1-2 tokens: more independent chains in flight.
  template <std::size_t N>
  static constexpr std::size_t chains() { return N <= 2 ? 2 : 1; }
  using F = __m256;
  using I = __m256i;
  using Partial = __m256i;
  using Codes = Nibbles;
  using X = const std::int8_t*;

  static RANKQ_AVX2_INLINE F fzero() { return _mm256_setzero_ps(); }
  static RANKQ_AVX2_INLINE F set1(float v) { return _mm256_set1_ps(v); }
  static RANKQ_AVX2_INLINE F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static RANKQ_AVX2_INLINE F add(F a, F b) { return _mm256_add_ps(a, b); }
  static RANKQ_AVX2_INLINE F fma(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  static RANKQ_AVX2_INLINE F fnma(F a, F b, F c) { return _mm256_fnmadd_ps(a, b, c); }
  static RANKQ_AVX2_INLINE F cvt(I v) { return _mm256_cvtepi32_ps(v); }
  static RANKQ_AVX2_INLINE I izero() { return _mm256_setzero_si256(); }
  static RANKQ_AVX2_INLINE I iadd(I a, I b) { return _mm256_add_epi32(a, b); }
  static RANKQ_AVX2_INLINE I iset1(std::int32_t v) { return _mm256_set1_epi32(v); }
  static RANKQ_AVX2_INLINE Partial pzero() { return _mm256_setzero_si256(); }
  static RANKQ_AVX2_INLINE Codes unpack(const std::uint8_t* block, std::size_t v) { return unpack_code_half(block + 32 * v); }
  static RANKQ_AVX2_INLINE X load_x(const std::int8_t* x) { return x; }
  /// p[J mod C] += pair sums of the block's codes with x[8J .. 8J+7] (vpmaddubsw, int16).
  template <std::size_t NT, std::size_t J, std::size_t C>
  static RANKQ_AVX2_INLINE void dot(Partial (&p)[C], const Codes& c, X x) {
    p[J % C] = DotMaddubs::add(p[J % C], c, x + 8 * J);
  }
  template <std::size_t C>
  static RANKQ_AVX2_INLINE I finish(I acc, const Partial (&p)[C]) {
    for (std::size_t i = 0; i < C; ++i) acc = DotMaddubs::finish(acc, p[i]);
    return acc;
  }
  // Low-rank factors (lowrank_driver.inl): levels l = u ^ 0x80, then vpmaddubsw(|x|, sign(l, x)) (|x| <= 128 as u8,
  // |l| <= 127 so sign() never wraps, pair sums <= 32512: no saturation), widened by vpmaddwd each step.
  static constexpr std::size_t kLowRankTokens = 4;
  using LrCodes = __m256i;
  static RANKQ_AVX2_INLINE LrCodes lr_load(const std::uint8_t* quad, std::size_t v) {
    return _mm256_xor_si256(_mm256_load_si256(reinterpret_cast<const __m256i*>(quad + 32 * v)), _mm256_set1_epi8(-128));
  }
  template <std::size_t Q>
  static RANKQ_AVX2_INLINE I lr_dot(I acc, LrCodes l, X x) {
    const __m256i xb = broadcast4(x + 4 * Q);
    const __m256i p = _mm256_maddubs_epi16(_mm256_abs_epi8(xb), _mm256_sign_epi8(l, xb));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
  }
  static RANKQ_AVX2_INLINE I lr_finish(I acc, std::int32_t) { return acc; }
  /// W8A8 (w8a8_driver.inl): weight levels reach -128, where lr_dot's sign() wraps, so each level l is split as
  /// l = 16·h + n with n = l & 15 in [0, 15] and h = floor(l / 16) in [-8, 7]: vpmaddubsw(n, x) (|pair| <= 3840)
  /// and vpmaddubsw(|x|, sign(h, x)) (|pair| <= 2048) never saturate; both widened by vpmaddwd (·1 and ·16).
  template <std::size_t Q>
  static RANKQ_AVX2_INLINE I w8_dot(I acc, LrCodes l, X x) {
    const __m256i xb = broadcast4(x + 4 * Q), nibble = _mm256_set1_epi8(0x0F), eight = _mm256_set1_epi8(8);
    const __m256i n = _mm256_and_si256(l, nibble);
    const __m256i h = _mm256_sub_epi8(_mm256_xor_si256(_mm256_and_si256(_mm256_srli_epi16(l, 4), nibble), eight), eight);
    const __m256i pn = _mm256_maddubs_epi16(n, xb);
    const __m256i ph = _mm256_maddubs_epi16(_mm256_abs_epi8(xb), _mm256_sign_epi8(h, xb));
    const __m256i d = _mm256_add_epi32(_mm256_madd_epi16(pn, _mm256_set1_epi16(1)), _mm256_madd_epi16(ph, _mm256_set1_epi16(16)));
    return _mm256_add_epi32(acc, d);
  }
  // Codebooks (codebook_driver.inl): nibble -> int8 level with vpshufb, then the sign trick vpmaddubsw(|x|,
  // sign(level, x)): |x0·l0 + x1·l1| <= 2·128·127 = 32512 (no saturation), widened at once by vpmaddwd.
  static constexpr std::size_t kCodebookTokens = 4;
  template <std::size_t MR>
  static constexpr bool cb_block_steps() { return MR > 1; }
  template <std::size_t MR>
  static constexpr unsigned cb_rank_block() { return MR == 1 ? 2 : 1; }
  template <std::size_t N>
  static constexpr std::size_t cb_chains() { return 1; }  // vpaddd has latency 1
  using CbLut = __m256i;  ///< the rank's 16 signed levels in both 128-bit lanes
  struct CbLevels {
    __m256i lo, hi;
  };
  static RANKQ_AVX2_INLINE CbLut cb_lut(const std::int8_t* levels16) {
    return _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(levels16)));
  }
  static RANKQ_AVX2_INLINE CbLevels cb_lookup(CbLut lut, const Codes& c) {
    return {_mm256_shuffle_epi8(lut, c.lo), _mm256_shuffle_epi8(lut, c.hi)};
  }
  template <std::size_t J, std::size_t C>
  static RANKQ_AVX2_INLINE void cb_dot(I (&acc)[C], const CbLevels& w, X x) {
    const __m256i ones = _mm256_set1_epi16(1), x0 = broadcast4(x + 8 * J), x1 = broadcast4(x + 8 * J + 4);
    const __m256i p0 = _mm256_maddubs_epi16(_mm256_abs_epi8(x0), _mm256_sign_epi8(w.lo, x0));
    const __m256i p1 = _mm256_maddubs_epi16(_mm256_abs_epi8(x1), _mm256_sign_epi8(w.hi, x1));
    acc[0] = _mm256_add_epi32(acc[0], _mm256_madd_epi16(p0, ones));
    acc[C - 1] = _mm256_add_epi32(acc[C - 1], _mm256_madd_epi16(p1, ones));
  }
  static RANKQ_AVX2_INLINE I cb_finish(I acc, std::int32_t) { return acc; }
  static RANKQ_AVX2_INLINE F load_row_values(const std::uint8_t* p, std::size_t v, ScaleType t) {
    return avx2::load_row_values(p, v, t);
  }
  static RANKQ_AVX2_INLINE void load_rows(const float* p, std::size_t rows, F (&v)[2]) { avx2::load_rows(p, rows, v); }
  static RANKQ_AVX2_INLINE void store_rows(float* p, std::size_t rows, const F (&v)[2]) { avx2::store_rows(p, rows, v[0], v[1]); }
};

}  RANKQ_NAMESPACE_END  // namespace rankq::detail::avx2
RANKQ_X86_CODE_END
#endif
