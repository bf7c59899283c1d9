// rankq/detail/kernels/scalar_primitives.hpp — the portable instruction-set traits of the packed-nibble kernels: a
// "vector" is one row, so a 16-row tile is 16 of them. The drivers run it like any SIMD path; the scalar path
// is checked against reference_matmul (which never sees the packed layout) like every other path.
#pragma once

#include "rankq/detail/abi.hpp"

#include <cstddef>
#include <cstdint>
#include <cmath>
#include <cstring>

#include "rankq/formats/half.hpp"
#include "rankq/detail/platform.hpp"
#include "rankq/detail/kernels/w4a8_layout.hpp"

RANKQ_NAMESPACE_BEGIN namespace detail {

/// Value i of 16 per-row values (scales or offsets) stored as f16 or f32 at p.
inline float load_packed_scale(const std::uint8_t* p, std::size_t i, ScaleType t) {
  if (t == ScaleType::f16) {
    std::uint16_t h;
    std::memcpy(&h, p + 2 * i, 2);
    return half_to_float(h);
  }
  float f;
  std::memcpy(&f, p + 4 * i, 4);
  return f;
}

/// Stores v as value i of 16 per-row values at p, f16 (round to nearest even) or f32: what load_packed_scale reads.
inline void store_packed_value(std::uint8_t* p, std::size_t i, float v, ScaleType t) {
  if (t == ScaleType::f16) {
    const std::uint16_t h = float_to_half(v);
    std::memcpy(p + 2 * i, &h, 2);
  } else {
    std::memcpy(p + 4 * i, &v, 4);
  }
}

/// Value i of an array of f32 at p (any alignment).
inline float load_packed_f32(const std::uint8_t* p, std::size_t i) {
  float f;
  std::memcpy(&f, p + 4 * i, 4);
  return f;
}

/// Code t[r][k] of a tile, k relative to the start of group data (k < group).
inline unsigned packed_code(const std::uint8_t* group_codes, std::size_t r, std::size_t k) {
  const std::uint8_t byte = group_codes[(k / kBlockK) * 64 + 4 * r + (k % 4)];
  return (k % kBlockK) < 4 ? (byte & 0x0Fu) : (byte >> 4);
}

namespace scalar {

/// Instruction-set traits (contract: docs/kernels.md §2.1) with one row per "vector".
struct Isa {
  static constexpr std::size_t kVecs = kTileRows;  ///< vectors per 16-row tile
  static constexpr std::size_t kTokenBlock = 1;    ///< tokens per micro-kernel call
  static constexpr std::size_t kTileBlock = 1;     ///< tiles per micro-kernel call from 2 tokens on
  static constexpr std::size_t kMaxChunks = std::size_t(1) << 40;  ///< 16-K chunks per partial (int32: no limit)
  static constexpr bool kPageAhead = false;
  static constexpr bool kPrefill = false;  ///< has a W4A8 prefill specialisation (run_w4a8_prefill)        ///< touch the page 16 KiB ahead once per group
  template <std::size_t N>
  static constexpr std::size_t chains() { return 1; }
  using F = float;
  using I = std::int32_t;
  using Partial = std::int32_t;
  using Codes = const std::uint8_t*;  ///< the row's 4 bytes of a code block
  using X = const std::int8_t*;

  static F fzero() { return 0.0f; }
  static F set1(float v) { return v; }
  static F mul(F a, F b) { return a * b; }
  static F add(F a, F b) { return a + b; }
  static F fma(F a, F b, F c) { return std::fma(a, b, c); }  // one rounding, like every SIMD path
  static F fnma(F a, F b, F c) { return std::fma(-a, b, c); }
  static F cvt(I v) { return static_cast<float>(v); }
  static I izero() { return 0; }
  static I iadd(I a, I b) { return a + b; }
  static I iset1(std::int32_t v) { return v; }
  static Partial pzero() { return 0; }
  static Codes unpack(const std::uint8_t* block, std::size_t v) { return block + 4 * v; }
  static X load_x(const std::int8_t* x) { return x; }
  /// p += codes · x[8J .. 8J+7] (low nibbles with x[8J..8J+3], high nibbles with x[8J+4..8J+7]).
  template <std::size_t NT, std::size_t J, std::size_t C>
  static void dot(Partial (&p)[C], Codes c, X x) {
    for (std::size_t i = 0; i < 4; ++i)
      p[0] += static_cast<std::int32_t>(c[i] & 0x0F) * x[8 * J + i] + static_cast<std::int32_t>(c[i] >> 4) * x[8 * J + 4 + i];
  }
  template <std::size_t C>
  static I finish(I acc, const Partial (&p)[C]) { return acc + p[0]; }
  // Low-rank factors (lowrank_driver.inl): offset-binary bytes u = l + 128 of one row, 4 reduction values per quad.
  static constexpr std::size_t kLowRankTokens = 1;
  using LrCodes = const std::uint8_t*;
  static LrCodes lr_load(const std::uint8_t* quad, std::size_t v) { return quad + 4 * v; }
  template <std::size_t Q>
  static I lr_dot(I acc, LrCodes u, X x) {
    for (std::size_t i = 0; i < 4; ++i) acc += static_cast<std::int32_t>(x[4 * Q + i]) * (static_cast<std::int32_t>(u[i]) - 128);
    return acc;
  }
  static I lr_finish(I acc, std::int32_t) { return acc; }
  /// W8A8 (w8a8_driver.inl): lr_dot on weight codes, exact for every level in [-128, 127] (exact integers here).
  template <std::size_t Q>
  static I w8_dot(I acc, LrCodes u, X x) { return lr_dot<Q>(acc, u, x); }
  // Codebooks (codebook_driver.inl): the rank's 16 int8 levels, looked up per nibble.
  static constexpr std::size_t kCodebookTokens = 1;
  template <std::size_t MR>
  static constexpr bool cb_block_steps() { return false; }
  template <std::size_t MR>
  static constexpr unsigned cb_rank_block() { return 1; }
  template <std::size_t N>
  static constexpr std::size_t cb_chains() { return 1; }
  using CbLut = const std::int8_t*;
  struct CbLevels {
    const std::int8_t* lut;
    Codes codes;
  };
  static CbLut cb_lut(const std::int8_t* levels16) { return levels16; }
  static CbLevels cb_lookup(CbLut lut, Codes c) { return {lut, c}; }
  template <std::size_t J, std::size_t C>
  static void cb_dot(I (&acc)[C], const CbLevels& w, X x) {
    for (std::size_t i = 0; i < 4; ++i)
      acc[0] += static_cast<std::int32_t>(x[8 * J + i]) * w.lut[w.codes[i] & 0x0F] +
                static_cast<std::int32_t>(x[8 * J + 4 + i]) * w.lut[w.codes[i] >> 4];
  }
  static I cb_finish(I acc, std::int32_t) { return acc; }
  static F load_row_values(const std::uint8_t* p, std::size_t v, ScaleType t) { return load_packed_scale(p, v, t); }
  static void load_rows(const float* p, std::size_t rows, F (&v)[kVecs]) {
    for (std::size_t r = 0; r < kVecs; ++r) v[r] = r < rows ? p[r] : 0.0f;
  }
  static void store_rows(float* p, std::size_t rows, const F (&v)[kVecs]) {
    for (std::size_t r = 0; r < rows; ++r) p[r] = v[r];
  }
};

}  // namespace scalar
}  RANKQ_NAMESPACE_END  // namespace rankq::detail
