// rankq/detail/kernels/w4a8_neon.hpp — the AArch64 W4A8 paths: plain ARMv8 NEON (vmull_s8 + vpadalq_s16) and
// dotprod (sdot by element), register-blocked over up to 4 tokens x one 16-row tile. Design: docs/kernels.md.
#pragma once

#include "rankq/detail/abi.hpp"

#include "rankq/detail/platform.hpp"

#if RANKQ_NEON_PATHS

#include <arm_neon.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "rankq/kernel_path.hpp"
#include "rankq/detail/kernels/neon_primitives.hpp"
#include "rankq/detail/kernels/w4a8_layout.hpp"
#include "rankq/detail/kernels/w4a8_scalar.hpp"

// Arithmetic (same as w4a8_scalar.hpp): per token m, row n, group g, the group is cut at activation-block
// boundaries into segments; dot_seg = Σ q_x·t exactly in int32, acc_g = Σ_seg a_seg·dot_seg in float, and
// y = Σ_g (s·acc_g − z·xsum_g) (+ bias). Segments are whole 16-K chunks: groups are multiples of 16 and
// activation blocks are 16, 32 or the padded row. One 16-K chunk = two 64-byte code blocks of the tile.
//
// Micro-kernel contract (a "Micro" type): kTokens (tokens per register block), splits<MB>() (int32 registers per
// 4-row quarter and token), chunk16<MB, S>(acc, blocks, x16) accumulating one 16-K chunk, rows(acc[t][j]) giving
// one int32 lane per row.
RANKQ_NAMESPACE_BEGIN namespace detail::neon {

/// Plain ARMv8: per quarter (4 rows x 4 K) vmull_s8 / vmlal_s8 into int16 (4 products per lane, |sum| <= 7680),
/// then vpadalq_s16 into int32 pairs; a row's dot is the sum of its two pair lanes.
struct MullMicro {
  static constexpr std::size_t kTokens = 2;
  template <std::size_t MB>
  static constexpr std::size_t splits() { return 2; }  // [0]: rows 4j, 4j+1; [1]: rows 4j+2, 4j+3 (pair lanes)

  template <std::size_t MB, std::size_t S>
  RANKQ_ALWAYS_INLINE static void chunk16(int32x4_t (&acc)[MB][4][S], const std::uint8_t* blocks, const int8x16_t (&x16)[MB]) {
    int8x16_t xq[MB][4];
#pragma GCC unroll 4
    for (std::size_t t = 0; t < MB; ++t) {
      xq[t][0] = broadcast_quad<0>(x16[t]);
      xq[t][1] = broadcast_quad<1>(x16[t]);
      xq[t][2] = broadcast_quad<2>(x16[t]);
      xq[t][3] = broadcast_quad<3>(x16[t]);
    }
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      const NibbleQuarter b0 = load_quarter(blocks, j), b1 = load_quarter(blocks + sizeof(PackedCodeBlock), j);
#pragma GCC unroll 4
      for (std::size_t t = 0; t < MB; ++t) {
        int16x8_t rows01, rows23;
        mul_quarter_s16(rows01, rows23, b0.lo, xq[t][0]);
        mla_quarter_s16(rows01, rows23, b0.hi, xq[t][1]);
        mla_quarter_s16(rows01, rows23, b1.lo, xq[t][2]);
        mla_quarter_s16(rows01, rows23, b1.hi, xq[t][3]);
        acc[t][j][0] = vpadalq_s16(acc[t][j][0], rows01);
        acc[t][j][1] = vpadalq_s16(acc[t][j][1], rows23);
      }
    }
  }
  template <std::size_t S>
  RANKQ_ALWAYS_INLINE static int32x4_t rows(const int32x4_t (&acc)[S]) { return rows_from_pairs(acc[0], acc[1]); }
};

/// y for tokens m0..m0+MB-1 and the rows of one tile (n0.., rows_here <= 16). Never reads x past column
/// x_padded, the tile past its end, or writes y past row N.
template <class Micro, std::size_t MB>
inline void tile_tokens(const W4A8Args& a, const std::uint8_t* tile, std::size_t n0, std::size_t rows_here, std::size_t m0) {
  constexpr std::size_t S = Micro::template splits<MB>();
  const PackedW4Geometry& geo = a.geo;
  const std::int8_t* x[MB];
  float32x4_t out[MB][4];
  for (std::size_t t = 0; t < MB; ++t) {
    x[t] = a.x + (m0 + t) * a.x_padded;
    for (int j = 0; j < 4; ++j) out[t][j] = vdupq_n_f32(0.0f);
  }
  for (std::size_t g = 0; g < geo.groups; ++g) {
    const std::uint8_t* codes = tile + g * geo.group_stride();
    const std::size_t g0 = g * geo.group, g_end = g0 + geo.group;
    float32x4_t acc_g[MB][4];
    for (std::size_t t = 0; t < MB; ++t)
      for (int j = 0; j < 4; ++j) acc_g[t][j] = vdupq_n_f32(0.0f);
    for (std::size_t k = g0; k < g_end;) {
      const std::size_t b = k / a.x_block, seg_end = std::min(g_end, (b + 1) * a.x_block);
      int32x4_t acc[MB][4][S];
      for (std::size_t t = 0; t < MB; ++t)
        for (int j = 0; j < 4; ++j)
          for (std::size_t s = 0; s < S; ++s) acc[t][j][s] = vdupq_n_s32(0);
      for (; k < seg_end; k += 2 * kBlockK) {
        int8x16_t x16[MB];
#pragma GCC unroll 4
        for (std::size_t t = 0; t < MB; ++t) x16[t] = vld1q_s8(x[t] + k);
        Micro::template chunk16<MB, S>(acc, codes + (k - g0) / kBlockK * sizeof(PackedCodeBlock), x16);
      }
      for (std::size_t t = 0; t < MB; ++t) {
        const float32x4_t x_scale = vdupq_n_f32(a.x_scales[(m0 + t) * a.x_blocks + b]);
        for (int j = 0; j < 4; ++j) acc_g[t][j] = vfmaq_f32(acc_g[t][j], x_scale, vcvtq_f32_s32(Micro::rows(acc[t][j])));
      }
    }
    const std::uint8_t* scales = codes + geo.code_bytes();
    const std::uint8_t* offsets = scales + kTileRows * geo.scale_bytes;
    for (int j = 0; j < 4; ++j) {
      const float32x4_t s = load_scales4(scales, j, a.scale_type);
      const float32x4_t z = geo.has_offsets ? load_scales4(offsets, j, a.scale_type) : vmulq_n_f32(s, a.zero_code);
      for (std::size_t t = 0; t < MB; ++t) {
        const float32x4_t xsum = vdupq_n_f32(a.xsum[(m0 + t) * geo.groups + g]);
        out[t][j] = vfmsq_f32(vfmaq_f32(out[t][j], s, acc_g[t][j]), z, xsum);
      }
    }
  }
  for (std::size_t t = 0; t < MB; ++t) {
    float* y = a.y + (m0 + t) * a.ldy + n0;
    if (rows_here == kTileRows) {
      for (int j = 0; j < 4; ++j) vst1q_f32(y + 4 * j, a.bias ? vaddq_f32(out[t][j], vld1q_f32(a.bias + n0 + 4 * j)) : out[t][j]);
    } else {
      float full[kTileRows];
      for (int j = 0; j < 4; ++j) vst1q_f32(full + 4 * j, out[t][j]);
      for (std::size_t r = 0; r < rows_here; ++r) y[r] = a.bias ? full[r] + a.bias[n0 + r] : full[r];
    }
  }
}

/// The last M mod kTokens tokens, with the largest register block that fits.
template <class Micro, std::size_t MB>
inline void tail_tokens(const W4A8Args& a, const std::uint8_t* tile, std::size_t n0, std::size_t rows_here, std::size_t m0,
                        std::size_t remaining) {
  if (remaining == MB) return tile_tokens<Micro, MB>(a, tile, n0, rows_here, m0);
  if constexpr (MB > 1) tail_tokens<Micro, MB - 1>(a, tile, n0, rows_here, m0, remaining);
}

/// Tiles [tile_begin, tile_end): for each tile, all tokens in register blocks of Micro::kTokens (GEMV: M = 1
/// streams each tile's codes once, group after group).
template <class Micro>
inline void w4a8_tiles_neon(const W4A8Args& a, std::size_t tile_begin, std::size_t tile_end) {
  if (a.x_block % (2 * kBlockK) != 0) return w4a8_tiles<KernelPath::scalar>(a, tile_begin, tile_end);  // not from quantize_activations
  for (std::size_t tile = tile_begin; tile < tile_end; ++tile) {
    const std::uint8_t* tile_data = a.packed + tile * a.geo.tile_stride();
    const std::size_t n0 = tile * kTileRows, rows_here = std::min(kTileRows, a.rows - n0);
    std::size_t m = 0;
    for (; m + Micro::kTokens <= a.M; m += Micro::kTokens) tile_tokens<Micro, Micro::kTokens>(a, tile_data, n0, rows_here, m);
    if (m < a.M) tail_tokens<Micro, Micro::kTokens - 1>(a, tile_data, n0, rows_here, m, a.M - m);
  }
}

}  RANKQ_NAMESPACE_END  // namespace rankq::detail::neon

#if RANKQ_NEON_DOTPROD_PATH
RANKQ_NAMESPACE_BEGIN namespace detail::neon_dotprod {

/// sdot: per quarter, 4 instructions per 16-K chunk and token. With 1-2 tokens the high-nibble products go to a
/// second accumulator so that more independent sdot chains are in flight.
struct SdotMicro {
  static constexpr std::size_t kTokens = 4;
  template <std::size_t MB>
  static constexpr std::size_t splits() { return MB <= 2 ? 2 : 1; }

  template <std::size_t MB, std::size_t S>
  RANKQ_ALWAYS_INLINE static void chunk16(int32x4_t (&acc)[MB][4][S], const std::uint8_t* blocks, const int8x16_t (&x16)[MB]) {
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      const neon::NibbleQuarter b0 = neon::load_quarter(blocks, j);
      const neon::NibbleQuarter b1 = neon::load_quarter(blocks + sizeof(PackedCodeBlock), j);
#pragma GCC unroll 4
      for (std::size_t t = 0; t < MB; ++t) {
        acc[t][j][0] = dot_quarter<0>(acc[t][j][0], b0.lo, x16[t]);
        acc[t][j][S - 1] = dot_quarter<1>(acc[t][j][S - 1], b0.hi, x16[t]);
        acc[t][j][0] = dot_quarter<2>(acc[t][j][0], b1.lo, x16[t]);
        acc[t][j][S - 1] = dot_quarter<3>(acc[t][j][S - 1], b1.hi, x16[t]);
      }
    }
  }
  template <std::size_t S>
  RANKQ_ALWAYS_INLINE static int32x4_t rows(const int32x4_t (&acc)[S]) {
    if constexpr (S == 2) return vaddq_s32(acc[0], acc[1]);
    return acc[0];
  }
};

}  RANKQ_NAMESPACE_END  // namespace rankq::detail::neon_dotprod
#endif  // RANKQ_NEON_DOTPROD_PATH

RANKQ_NAMESPACE_BEGIN namespace detail {

template <>
inline void w4a8_tiles<KernelPath::neon>(const W4A8Args& a, std::size_t tile_begin, std::size_t tile_end) {
  neon::w4a8_tiles_neon<neon::MullMicro>(a, tile_begin, tile_end);
}

#if RANKQ_NEON_DOTPROD_PATH
template <>
inline void w4a8_tiles<KernelPath::neon_dotprod>(const W4A8Args& a, std::size_t tile_begin, std::size_t tile_end) {
  neon::w4a8_tiles_neon<neon_dotprod::SdotMicro>(a, tile_begin, tile_end);
}
#endif

}  RANKQ_NAMESPACE_END  // namespace rankq::detail

#endif  // RANKQ_NEON_PATHS
