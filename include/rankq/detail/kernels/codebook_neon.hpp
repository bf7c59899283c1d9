// rankq/detail/kernels/codebook_neon.hpp — the AArch64 codebook paths: nibble -> int8 level lookup with vqtbl1q_s8,
// then plain ARMv8 vmull_s8/vmlal_s8 + vpadalq_s16 or dotprod sdot by element; up to 4 tokens x one 16-row tile.
#pragma once

#include "rankq/detail/abi.hpp"

#include "rankq/detail/platform.hpp"

#if RANKQ_NEON_PATHS

#include <arm_neon.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "rankq/kernel_path.hpp"
#include "rankq/detail/kernels/codebook_layout.hpp"
#include "rankq/detail/kernels/codebook_scalar.hpp"
#include "rankq/detail/kernels/neon_primitives.hpp"

// Float order: codebook_reference_matmul's (docs/lcq.md §6): acc = fma(a_seg, float(dot), acc) per segment,
// part = gs·acc / fma(gs, acc, part) per rank, out = out + fma(−off, xs, part) per group. Segments are whole
// 16-K chunks (two 64-byte code blocks). Micro contract: kTokens, kSplits, chunk16<MB>(acc, blocks, x16, lut)
// and rows(acc[t][j]) giving one int32 lane per row of quarter j.
RANKQ_NAMESPACE_BEGIN namespace detail::neon {

/// Plain ARMv8: levels |l| <= 127 times activations |x| <= 128 need int16 for at most two products (32512), so
/// each vmull/vmlal pair goes straight into int32 pair lanes with vpadalq_s16.
struct CodebookMullMicro {
  static constexpr std::size_t kTokens = 2;
  static constexpr std::size_t kSplits = 2;  // [0]: rows 4j, 4j+1; [1]: rows 4j+2, 4j+3 (pair lanes)
  template <std::size_t MB>
  RANKQ_ALWAYS_INLINE static void chunk16(int32x4_t (&acc)[MB][4][kSplits], const std::uint8_t* blocks,
                                          const int8x16_t (&x16)[MB], int8x16_t lut) {
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      const NibbleQuarter b0 = load_quarter(blocks, j), b1 = load_quarter(blocks + sizeof(PackedCodeBlock), j);
      const int8x16_t l0 = vqtbl1q_s8(lut, vreinterpretq_u8_s8(b0.lo)), l1 = vqtbl1q_s8(lut, vreinterpretq_u8_s8(b0.hi));
      const int8x16_t l2 = vqtbl1q_s8(lut, vreinterpretq_u8_s8(b1.lo)), l3 = vqtbl1q_s8(lut, vreinterpretq_u8_s8(b1.hi));
#pragma GCC unroll 4
      for (std::size_t t = 0; t < MB; ++t) {
        int16x8_t rows01, rows23;
        mul_quarter_s16(rows01, rows23, l0, broadcast_quad<0>(x16[t]));
        mla_quarter_s16(rows01, rows23, l1, broadcast_quad<1>(x16[t]));
        acc[t][j][0] = vpadalq_s16(acc[t][j][0], rows01);
        acc[t][j][1] = vpadalq_s16(acc[t][j][1], rows23);
        mul_quarter_s16(rows01, rows23, l2, broadcast_quad<2>(x16[t]));
        mla_quarter_s16(rows01, rows23, l3, broadcast_quad<3>(x16[t]));
        acc[t][j][0] = vpadalq_s16(acc[t][j][0], rows01);
        acc[t][j][1] = vpadalq_s16(acc[t][j][1], rows23);
      }
    }
  }
  RANKQ_ALWAYS_INLINE static int32x4_t rows(const int32x4_t (&acc)[kSplits]) { return rows_from_pairs(acc[0], acc[1]); }
};

/// y for tokens m0..m0+MB-1 and the rows of one tile (n0.., rows_here <= 16).
template <class Micro, std::size_t MB>
inline void codebook_tile_tokens(const CodebookArgs& a, const std::uint8_t* tile, std::size_t n0, std::size_t rows_here,
                                 std::size_t m0) {
  constexpr std::size_t S = Micro::kSplits;
  const PackedCodebookGeometry& geo = a.geo;
  const std::int8_t* x[MB];
  float32x4_t out[MB][4];
  for (std::size_t t = 0; t < MB; ++t) {
    x[t] = a.x + (m0 + t) * a.x_padded;
    for (int j = 0; j < 4; ++j) out[t][j] = vdupq_n_f32(0.0f);
  }
  for (std::size_t g = 0; g < geo.groups; ++g) {
    const std::uint8_t* gd = tile + g * geo.group_stride();
    const std::size_t g0 = g * geo.group, g_end = g0 + geo.group;
    float32x4_t part[MB][4];  // set at rank 0 (rank >= 1); zeroed so no path reads an indeterminate value
    for (std::size_t t = 0; t < MB; ++t)
      for (int j = 0; j < 4; ++j) part[t][j] = vdupq_n_f32(0.0f);
    for (unsigned q = 0; q < geo.rank; ++q) {
      const int8x16_t lut = vld1q_s8(a.lut + q * kCodebookLutEntries);
      float32x4_t acc_f[MB][4];
      for (std::size_t t = 0; t < MB; ++t)
        for (int j = 0; j < 4; ++j) acc_f[t][j] = vdupq_n_f32(0.0f);
      for (std::size_t k = g0; k < g_end;) {
        const std::size_t b = k / a.x_block, seg_end = std::min(g_end, (b + 1) * a.x_block);
        int32x4_t acc[MB][4][S];
        for (std::size_t t = 0; t < MB; ++t)
          for (int j = 0; j < 4; ++j)
            for (std::size_t s = 0; s < S; ++s) acc[t][j][s] = vdupq_n_s32(0);
        for (; k < seg_end; k += 2 * kBlockK) {
          int8x16_t x16[MB];
          for (std::size_t t = 0; t < MB; ++t) x16[t] = vld1q_s8(x[t] + k);
          Micro::template chunk16<MB>(acc, gd + (k - g0) / kBlockK * sizeof(PackedCodeBlock), x16, lut);
        }
        for (std::size_t t = 0; t < MB; ++t) {
          const float32x4_t x_scale = vdupq_n_f32(a.x_scales[(m0 + t) * a.x_blocks + b]);
          for (int j = 0; j < 4; ++j) acc_f[t][j] = vfmaq_f32(acc_f[t][j], x_scale, vcvtq_f32_s32(Micro::rows(acc[t][j])));
        }
      }
      const float* gs = reinterpret_cast<const float*>(gd + geo.scales_at()) + q * kTileRows;
      for (int j = 0; j < 4; ++j) {
        const float32x4_t s = vld1q_f32(gs + 4 * j);
        for (std::size_t t = 0; t < MB; ++t) part[t][j] = q == 0 ? vmulq_f32(s, acc_f[t][j]) : vfmaq_f32(part[t][j], s, acc_f[t][j]);
      }
    }
    const float* off = reinterpret_cast<const float*>(gd + geo.offsets_at());
    for (int j = 0; j < 4; ++j) {
      const float32x4_t z = vld1q_f32(off + 4 * j);
      for (std::size_t t = 0; t < MB; ++t)
        out[t][j] = vaddq_f32(out[t][j], vfmsq_f32(part[t][j], z, vdupq_n_f32(a.xs[(m0 + t) * geo.groups + g])));
    }
  }
  for (std::size_t t = 0; t < MB; ++t) {
    float* y = a.y + (m0 + t) * a.ldy + n0;
    float full[kTileRows];
    for (int j = 0; j < 4; ++j) vst1q_f32(full + 4 * j, out[t][j]);
    for (std::size_t r = 0; r < rows_here; ++r) y[r] = a.bias ? full[r] + a.bias[n0 + r] : full[r];
  }
}

template <class Micro, std::size_t MB>
inline void codebook_tail_tokens(const CodebookArgs& a, const std::uint8_t* tile, std::size_t n0, std::size_t rows_here,
                                 std::size_t m0, std::size_t remaining) {
  if (remaining == MB) return codebook_tile_tokens<Micro, MB>(a, tile, n0, rows_here, m0);
  if constexpr (MB > 1) codebook_tail_tokens<Micro, MB - 1>(a, tile, n0, rows_here, m0, remaining);
}

template <class Micro>
inline void codebook_tiles_neon(const CodebookArgs& a, std::size_t tile_begin, std::size_t tile_end) {
  if (a.x_block % (2 * kBlockK) != 0) return codebook_tiles<KernelPath::scalar>(a, tile_begin, tile_end);
  for (std::size_t tile = tile_begin; tile < tile_end; ++tile) {
    const std::uint8_t* tile_data = a.packed + tile * a.geo.tile_stride();
    const std::size_t n0 = tile * kTileRows, rows_here = std::min(kTileRows, a.rows - n0);
    std::size_t m = 0;
    for (; m + Micro::kTokens <= a.M; m += Micro::kTokens) codebook_tile_tokens<Micro, Micro::kTokens>(a, tile_data, n0, rows_here, m);
    if (m < a.M) codebook_tail_tokens<Micro, Micro::kTokens - 1>(a, tile_data, n0, rows_here, m, a.M - m);
  }
}

}  RANKQ_NAMESPACE_END  // namespace rankq::detail::neon

#if RANKQ_NEON_DOTPROD_PATH
RANKQ_NAMESPACE_BEGIN namespace detail::neon_dotprod {

/// sdot by element on the looked-up signed levels: one instruction per quarter, K quad and token.
struct CodebookSdotMicro {
  static constexpr std::size_t kTokens = 4;
  static constexpr std::size_t kSplits = 1;
  template <std::size_t MB>
  RANKQ_ALWAYS_INLINE static void chunk16(int32x4_t (&acc)[MB][4][kSplits], const std::uint8_t* blocks,
                                          const int8x16_t (&x16)[MB], int8x16_t lut) {
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      const neon::NibbleQuarter b0 = neon::load_quarter(blocks, j);
      const neon::NibbleQuarter b1 = neon::load_quarter(blocks + sizeof(PackedCodeBlock), j);
      const int8x16_t l0 = vqtbl1q_s8(lut, vreinterpretq_u8_s8(b0.lo)), l1 = vqtbl1q_s8(lut, vreinterpretq_u8_s8(b0.hi));
      const int8x16_t l2 = vqtbl1q_s8(lut, vreinterpretq_u8_s8(b1.lo)), l3 = vqtbl1q_s8(lut, vreinterpretq_u8_s8(b1.hi));
#pragma GCC unroll 4
      for (std::size_t t = 0; t < MB; ++t) {
        acc[t][j][0] = dot_quarter<0>(acc[t][j][0], l0, x16[t]);
        acc[t][j][0] = dot_quarter<1>(acc[t][j][0], l1, x16[t]);
        acc[t][j][0] = dot_quarter<2>(acc[t][j][0], l2, x16[t]);
        acc[t][j][0] = dot_quarter<3>(acc[t][j][0], l3, x16[t]);
      }
    }
  }
  RANKQ_ALWAYS_INLINE static int32x4_t rows(const int32x4_t (&acc)[kSplits]) { return acc[0]; }
};

}  RANKQ_NAMESPACE_END  // namespace rankq::detail::neon_dotprod
#endif  // RANKQ_NEON_DOTPROD_PATH

RANKQ_NAMESPACE_BEGIN namespace detail {

template <>
inline void codebook_tiles<KernelPath::neon>(const CodebookArgs& a, std::size_t tile_begin, std::size_t tile_end) {
  neon::codebook_tiles_neon<neon::CodebookMullMicro>(a, tile_begin, tile_end);
}

#if RANKQ_NEON_DOTPROD_PATH
template <>
inline void codebook_tiles<KernelPath::neon_dotprod>(const CodebookArgs& a, std::size_t tile_begin, std::size_t tile_end) {
  neon::codebook_tiles_neon<neon_dotprod::CodebookSdotMicro>(a, tile_begin, tile_end);
}
#endif

}  RANKQ_NAMESPACE_END  // namespace rankq::detail

#endif  // RANKQ_NEON_PATHS
