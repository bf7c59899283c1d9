// rankq/detail/kernels/w4a8_avx512.hpp — the avx512vnni W4A8 path: one zmm vpdpbusd per 64-byte code block
// half (16 rows x 4 K), register-blocked over up to 8 tokens x 16 rows. Design: docs/kernels.md §2.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "rankq/kernel_path.hpp"
#include "rankq/detail/x86_targets.hpp"
#include "rankq/detail/kernels/w4a8_layout.hpp"
#include "rankq/detail/kernels/x86_primitives_avx512.hpp"

#if RANKQ_X86_PATHS
RANKQ_X86_CODE_BEGIN
namespace rankq::detail {

template <KernelPath P>
void w4a8_tiles(const W4A8Args& a, std::size_t tile_begin, std::size_t tile_end);

namespace avx512 {

inline constexpr std::size_t kTokenBlock = 8;  ///< tokens per micro-kernel call (8 x 16 rows of outputs)

/// y[m0 .. m0+MR)[n0 .. n0+16) for one tile. Per segment (a group cut at activation-block boundaries) the
/// int32 dot products of every token run over 16 K per step (two code blocks); small MR gets twice the
/// accumulators so the vpdpbusd latency stays hidden. Float epilogue: out += (s·a_seg)·dot per segment,
/// out −= z·xsum per group.
template <std::size_t MR>
RANKQ_AVX512_INLINE void tile_token_block(const W4A8Args& a, const std::uint8_t* tile, std::size_t n0, __mmask16 rows,
                                          std::size_t m0) {
  constexpr std::size_t kChains = MR <= 2 ? 4 : 2;  // int32 accumulators per token
  const PackedW4Geometry& geo = a.geo;
  const std::size_t code_bytes = geo.code_bytes(), group_stride = geo.group_stride();
  const std::int8_t* x[MR];
  __m512 out[MR];
  for (std::size_t t = 0; t < MR; ++t) {
    x[t] = a.x + (m0 + t) * a.x_padded;
    out[t] = _mm512_setzero_ps();
  }
  for (std::size_t g = 0; g < geo.groups; ++g) {
    const std::uint8_t* gd = tile + g * group_stride;
    const __m512 s = load_row_values(gd + code_bytes, a.scale_type);
    const std::size_t g0 = g * geo.group, g_end = g0 + geo.group;
    for (std::size_t k = g0; k < g_end;) {
      const std::size_t b = k / a.x_block;
      const std::size_t seg_end = std::min(g_end, (b + 1) * a.x_block);
      __m512i acc[MR][kChains];
      for (std::size_t t = 0; t < MR; ++t)
        for (std::size_t c = 0; c < kChains; ++c) acc[t][c] = _mm512_setzero_si512();
      const std::uint8_t* block = gd + (k - g0) / kBlockK * sizeof(PackedCodeBlock);
      for (; k < seg_end; k += 2 * kBlockK, block += 2 * sizeof(PackedCodeBlock)) {  // segments are multiples of 16 K
        const Nibbles c0 = unpack_code_block(block), c1 = unpack_code_block(block + sizeof(PackedCodeBlock));
        for (std::size_t t = 0; t < MR; ++t) {
          acc[t][0] = dot4(acc[t][0], c0.lo, x[t] + k);
          acc[t][1] = dot4(acc[t][1], c0.hi, x[t] + k + 4);
          acc[t][kChains - 2] = dot4(acc[t][kChains - 2], c1.lo, x[t] + k + 8);
          acc[t][kChains - 1] = dot4(acc[t][kChains - 1], c1.hi, x[t] + k + 12);
        }
      }
      for (std::size_t t = 0; t < MR; ++t) {
        __m512i d = _mm512_add_epi32(acc[t][0], acc[t][1]);
        if (kChains == 4) d = _mm512_add_epi32(d, _mm512_add_epi32(acc[t][2], acc[t][3]));
        const __m512 sa = _mm512_mul_ps(s, _mm512_set1_ps(a.x_scales[(m0 + t) * a.x_blocks + b]));
        out[t] = _mm512_fmadd_ps(sa, _mm512_cvtepi32_ps(d), out[t]);
      }
    }
    const __m512 z = geo.has_offsets ? load_row_values(gd + code_bytes + kTileRows * geo.scale_bytes, a.scale_type)
                                     : _mm512_mul_ps(s, _mm512_set1_ps(a.zero_code));
    for (std::size_t t = 0; t < MR; ++t) out[t] = _mm512_fnmadd_ps(z, _mm512_set1_ps(a.xsum[(m0 + t) * geo.groups + g]), out[t]);
  }
  const bool has_bias = a.bias != nullptr;
  const __m512 bias = has_bias ? load_rows(a.bias + n0, rows) : _mm512_setzero_ps();
  for (std::size_t t = 0; t < MR; ++t)
    store_rows(a.y + (m0 + t) * a.ldy + n0, rows, has_bias ? _mm512_add_ps(out[t], bias) : out[t]);
}

RANKQ_AVX512_KERNEL void run_w4a8_tiles(const W4A8Args& a, std::size_t tile_begin, std::size_t tile_end) {
  for (std::size_t tile = tile_begin; tile < tile_end; ++tile) {
    const std::uint8_t* td = a.packed + tile * a.geo.tile_stride();
    const std::size_t n0 = tile * kTileRows;
    const __mmask16 rows = row_mask(a.rows - n0);
    std::size_t m = 0;
    for (; m + kTokenBlock <= a.M; m += kTokenBlock) tile_token_block<kTokenBlock>(a, td, n0, rows, m);
    switch (a.M - m) {
      case 7: tile_token_block<7>(a, td, n0, rows, m); break;
      case 6: tile_token_block<6>(a, td, n0, rows, m); break;
      case 5: tile_token_block<5>(a, td, n0, rows, m); break;
      case 4: tile_token_block<4>(a, td, n0, rows, m); break;
      case 3: tile_token_block<3>(a, td, n0, rows, m); break;
      case 2: tile_token_block<2>(a, td, n0, rows, m); break;
      case 1: tile_token_block<1>(a, td, n0, rows, m); break;
      default: break;
    }
  }
}

}  // namespace avx512

template <>
inline void w4a8_tiles<KernelPath::avx512_vnni>(const W4A8Args& a, std::size_t tile_begin, std::size_t tile_end) {
  avx512::run_w4a8_tiles(a, tile_begin, tile_end);
}

}  // namespace rankq::detail
RANKQ_X86_CODE_END
#endif
