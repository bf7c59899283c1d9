// rankq/detail/kernels/lowrank_neon.hpp — the AArch64 low-rank paths: levels l = u ^ 0x80 (s8), then per quad
// (4 rows x 4 values per 16-byte quarter) sdot by element (neondot) or vmull_s8 + vpadalq_s16 pair sums (neon:
// |l·x| <= 127·128, one product pair per int16 lane, no overflow). Float epilogue vfmaq_f32: the same single
// rounding as std::fma. docs/lqer.md §6.
#pragma once

#include "rankq/detail/abi.hpp"

#include "rankq/detail/platform.hpp"

#if RANKQ_NEON_PATHS

#include <arm_neon.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "rankq/kernel_path.hpp"
#include "rankq/detail/kernels/lowrank_layout.hpp"
#include "rankq/detail/kernels/lowrank_scalar.hpp"
#include "rankq/detail/kernels/neon_primitives.hpp"

RANKQ_NAMESPACE_BEGIN namespace detail::neon {

/// The 16 signed levels of quarter j (rows 4j..4j+3) of quad q of a chunk.
RANKQ_ALWAYS_INLINE int8x16_t lowrank_levels(const PackedLowRankChunk& ch, std::size_t q, int j) {
  return vreinterpretq_s8_u8(veorq_u8(vld1q_u8(ch.codes[q][4 * j]), vdupq_n_u8(0x80)));
}

/// Plain ARMv8: acc[j][0] holds pair sums of rows 4j, 4j+1, acc[j][1] of rows 4j+2, 4j+3 (vpadalq_s16 lanes).
struct LowRankMull {
  static constexpr std::size_t kSplits = 2;
  template <int Q>
  RANKQ_ALWAYS_INLINE static void quad(int32x4_t (&acc)[4][kSplits], const PackedLowRankChunk& ch, int8x16_t x16) {
    const int8x16_t xq = broadcast_quad<Q>(x16);
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      int16x8_t rows01, rows23;
      mul_quarter_s16(rows01, rows23, lowrank_levels(ch, Q, j), xq);
      acc[j][0] = vpadalq_s16(acc[j][0], rows01);
      acc[j][1] = vpadalq_s16(acc[j][1], rows23);
    }
  }
  RANKQ_ALWAYS_INLINE static int32x4_t rows(const int32x4_t (&acc)[kSplits]) { return rows_from_pairs(acc[0], acc[1]); }
};

#if RANKQ_NEON_DOTPROD_PATH
/// ARMv8.2 dotprod: one sdot by element per quarter; acc[j][0] holds rows 4j..4j+3.
struct LowRankSdot {
  static constexpr std::size_t kSplits = 1;
  template <int Q>
  RANKQ_ALWAYS_INLINE static void quad(int32x4_t (&acc)[4][kSplits], const PackedLowRankChunk& ch, int8x16_t x16) {
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) acc[j][0] = neon_dotprod::dot_quarter<Q>(acc[j][0], lowrank_levels(ch, Q, j), x16);
  }
  RANKQ_ALWAYS_INLINE static int32x4_t rows(const int32x4_t (&acc)[kSplits]) { return acc[0]; }
};
#endif

/// Outputs of tokens m0..m0+MB-1 for one tile's rows (row0.., rows <= 16).
template <class Dot, std::size_t MB>
RANKQ_ALWAYS_INLINE void lowrank_token_block(const LowRankArgs& a, const PackedLowRankChunk* chunks, std::size_t row0,
                                             std::size_t rows, std::size_t m0) {
  constexpr std::size_t S = Dot::kSplits;
  float32x4_t out[MB][4];
  for (std::size_t t = 0; t < MB; ++t)
    for (int j = 0; j < 4; ++j) out[t][j] = vdupq_n_f32(0.0f);
  for (std::size_t c = 0; c < a.chunks; ++c) {
    const PackedLowRankChunk& ch = chunks[c];
#pragma GCC unroll 4
    for (std::size_t t = 0; t < MB; ++t) {
      int32x4_t acc[4][S];
      for (int j = 0; j < 4; ++j)
        for (std::size_t s = 0; s < S; ++s) acc[j][s] = vdupq_n_s32(0);
      const int8x16_t x16 = vld1q_s8(a.x + (m0 + t) * a.x_stride + 16 * c);
      Dot::template quad<0>(acc, ch, x16);
      Dot::template quad<1>(acc, ch, x16);
      Dot::template quad<2>(acc, ch, x16);
      Dot::template quad<3>(acc, ch, x16);
      const float xs = a.x_scales[(m0 + t) * a.chunks + c];
      for (int j = 0; j < 4; ++j) {
        const float32x4_t scale = vmulq_f32(vld1q_f32(ch.scales + 4 * j), vdupq_n_f32(xs));
        out[t][j] = vfmaq_f32(out[t][j], scale, vcvtq_f32_s32(Dot::rows(acc[j])));
      }
    }
  }
  for (std::size_t t = 0; t < MB; ++t) {
    float* dst = a.out + (m0 + t) * a.ldo + row0;
    float full[kLowRankRows];
    for (int j = 0; j < 4; ++j) vst1q_f32(full + 4 * j, out[t][j]);
    for (std::size_t r = 0; r < rows; ++r) dst[r] = lowrank_output(a, dst[r], full[r], row0 + r);
  }
}

template <class Dot>
inline void run_lowrank_tiles(const LowRankArgs& a, std::size_t tile_begin, std::size_t tile_end) {
  for (std::size_t tile = tile_begin; tile < tile_end; ++tile) {
    const auto* chunks = reinterpret_cast<const PackedLowRankChunk*>(a.packed + tile * a.tile_stride());
    const std::size_t row0 = tile * kLowRankRows, rows = std::min(kLowRankRows, a.rows - row0);
    std::size_t m = 0;
    for (; m + 2 <= a.M; m += 2) lowrank_token_block<Dot, 2>(a, chunks, row0, rows, m);
    if (m < a.M) lowrank_token_block<Dot, 1>(a, chunks, row0, rows, m);
  }
}

}  RANKQ_NAMESPACE_END  // namespace rankq::detail::neon

RANKQ_NAMESPACE_BEGIN namespace detail {

template <>
inline void lowrank_tiles<KernelPath::neon>(const LowRankArgs& a, std::size_t tile_begin, std::size_t tile_end) {
  neon::run_lowrank_tiles<neon::LowRankMull>(a, tile_begin, tile_end);
}

#if RANKQ_NEON_DOTPROD_PATH
template <>
inline void lowrank_tiles<KernelPath::neon_dotprod>(const LowRankArgs& a, std::size_t tile_begin, std::size_t tile_end) {
  neon::run_lowrank_tiles<neon::LowRankSdot>(a, tile_begin, tile_end);
}
#endif

}  RANKQ_NAMESPACE_END  // namespace rankq::detail

#endif  // RANKQ_NEON_PATHS
