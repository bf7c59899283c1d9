// rankq/detail/kernels/codebook_avx512.hpp — the avx512vnni codebook path: nibble -> int8 level lookup with vpshufb
// (the rank's 16-entry table in every 128-bit lane), vpdpbusd on the biased levels Vq + 128, up to 8 tokens x 16 rows.
// Ranks are processed in blocks inside the K loop, so a code block is unpacked once per rank block and the int32
// chains (tokens x ranks x split) are enough to hide the vpdpbusd latency at decode (docs/lcq.md §9).
#pragma once

#include "rankq/detail/abi.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "rankq/kernel_path.hpp"
#include "rankq/detail/x86_targets.hpp"
#include "rankq/detail/kernels/codebook_layout.hpp"
#include "rankq/detail/kernels/stream_prefetch.hpp"
#include "rankq/detail/kernels/x86_primitives_avx512.hpp"

#if RANKQ_X86_PATHS
RANKQ_X86_CODE_BEGIN
RANKQ_NAMESPACE_BEGIN namespace detail::avx512 {

inline constexpr std::size_t kCodebookTokenBlock = 8;  ///< tokens per micro-kernel call

/// Ranks per pass over a group's code blocks for MR tokens: MR x ranks int32 accumulators stay <= 16 zmm.
template <std::size_t MR>
inline constexpr unsigned kCodebookRankBlock = MR <= 4 ? 4 : 1;

/// The rank's table as unsigned bytes Vq + 128 (in [1, 255]) in all four 128-bit lanes: vpdpbusd multiplies
/// u8 x s8, so Σ x·(Vq + 128) − 128·Σ x = Σ x·Vq, exact modulo 2^32 and therefore exact (|Σ x·Vq| < 2^31).
RANKQ_AVX512_INLINE __m512i codebook_biased_lut(const std::int8_t* lut16) {
  const __m128i t = _mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(lut16)), _mm_set1_epi8(-128));
  return _mm512_broadcast_i32x4(t);
}

/// Ranks [q0, q0 + RB) of group g for MR tokens: acc_r over the group's segments (the reference's float order),
/// then folded into part in rank order. C int32 chains per (token, rank): 4 / 2 / 1 so that MR·RB·C is 4..16.
template <std::size_t MR, unsigned RB>
RANKQ_AVX512_INLINE void codebook_rank_block(const CodebookArgs& a, const std::uint8_t* gd, const std::int8_t* const* x,
                                             std::size_t m0, std::size_t g0, unsigned q0, __m512* part) {
  constexpr std::size_t C = MR * RB <= 4 ? 4 : MR * RB <= 8 ? 2 : 1;
  const PackedCodebookGeometry& geo = a.geo;
  const std::size_t g_end = g0 + geo.group;
  __m512i lut[RB];
#pragma GCC unroll 16
  for (unsigned r = 0; r < RB; ++r) lut[r] = codebook_biased_lut(a.lut + (q0 + r) * kCodebookLutEntries);
  __m512 acc[MR][RB];
#pragma GCC unroll 16
  for (std::size_t t = 0; t < MR; ++t)
#pragma GCC unroll 16
    for (unsigned r = 0; r < RB; ++r) acc[t][r] = _mm512_setzero_ps();
  for (std::size_t k = g0; k < g_end;) {
    const std::size_t b = k / a.x_block;
    const std::size_t seg_start = k, seg_end = std::min(g_end, (b + 1) * a.x_block);
    __m512i iacc[MR][RB][C];
#pragma GCC unroll 16
    for (std::size_t t = 0; t < MR; ++t)
#pragma GCC unroll 16
      for (unsigned r = 0; r < RB; ++r)
#pragma GCC unroll 16
        for (std::size_t c = 0; c < C; ++c) iacc[t][r][c] = _mm512_setzero_si512();
    const std::uint8_t* block = gd + (k - g0) / kBlockK * sizeof(PackedCodeBlock);
    for (; k < seg_end; k += 2 * kBlockK, block += 2 * sizeof(PackedCodeBlock)) {  // segments: multiples of 16 K
      const Nibbles c0 = unpack_code_block(block), c1 = unpack_code_block(block + sizeof(PackedCodeBlock));
#pragma GCC unroll 16
      for (unsigned r = 0; r < RB; ++r) {
        const __m512i w0 = _mm512_shuffle_epi8(lut[r], c0.lo), w1 = _mm512_shuffle_epi8(lut[r], c0.hi);
        const __m512i w2 = _mm512_shuffle_epi8(lut[r], c1.lo), w3 = _mm512_shuffle_epi8(lut[r], c1.hi);
#pragma GCC unroll 16
        for (std::size_t t = 0; t < MR; ++t) {
          iacc[t][r][0] = dot4(iacc[t][r][0], w0, x[t] + k);
          iacc[t][r][1 % C] = dot4(iacc[t][r][1 % C], w1, x[t] + k + 4);
          iacc[t][r][2 % C] = dot4(iacc[t][r][2 % C], w2, x[t] + k + 8);
          iacc[t][r][3 % C] = dot4(iacc[t][r][3 % C], w3, x[t] + k + 12);
        }
      }
    }
#pragma GCC unroll 16
    for (std::size_t t = 0; t < MR; ++t) {
      const std::int32_t sum = codebook_segment_sum(a, m0 + t, seg_start, seg_end);
      const __m512i bias128 = _mm512_set1_epi32(static_cast<std::int32_t>(static_cast<std::uint32_t>(sum) << 7));
      const __m512 xs = _mm512_set1_ps(a.x_scales[(m0 + t) * a.x_blocks + b]);
#pragma GCC unroll 16
      for (unsigned r = 0; r < RB; ++r) {
        __m512i dot = iacc[t][r][0];
#pragma GCC unroll 16
        for (std::size_t c = 1; c < C; ++c) dot = _mm512_add_epi32(dot, iacc[t][r][c]);
        acc[t][r] = _mm512_fmadd_ps(xs, _mm512_cvtepi32_ps(_mm512_sub_epi32(dot, bias128)), acc[t][r]);
      }
    }
  }
#pragma GCC unroll 16
  for (unsigned r = 0; r < RB; ++r) {
    const unsigned q = q0 + r;
    const __m512 gs = _mm512_loadu_ps(gd + geo.scales_at() + q * kTileRows * sizeof(float));
#pragma GCC unroll 16
    for (std::size_t t = 0; t < MR; ++t) part[t] = q == 0 ? _mm512_mul_ps(gs, acc[t][r]) : _mm512_fmadd_ps(gs, acc[t][r], part[t]);
  }
}

/// y[m0 .. m0+MR)[n0 .. n0+16) for one tile, in the float order of codebook_reference_matmul (docs/lcq.md §6).
template <std::size_t MR>
RANKQ_AVX512_INLINE void codebook_tile_token_block(const CodebookArgs& a, const std::uint8_t* tile, std::size_t n0,
                                                   __mmask16 rows, std::size_t m0) {
  constexpr unsigned RB = kCodebookRankBlock<MR>;
  const PackedCodebookGeometry& geo = a.geo;
  const std::int8_t* x[MR];
  __m512 out[MR];
  for (std::size_t t = 0; t < MR; ++t) {
    x[t] = a.x + (m0 + t) * a.x_padded;
    out[t] = _mm512_setzero_ps();
  }
  for (std::size_t g = 0; g < geo.groups; ++g) {
    const std::uint8_t* gd = tile + g * geo.group_stride();
    // Touch the end of the group's stream (its offsets) before its codes: keeps more DRAM requests in flight at
    // decode (measured: avx512vnni M = 1 cold ~20 -> ~30 GB/s, docs/lcq.md §7; the idea of w4a8_avx512's scales-first),
    // and the page 16 KiB ahead, which starts the hardware prefetchers on it early (stream_prefetch.hpp).
    _mm_prefetch(reinterpret_cast<const char*>(gd + geo.offsets_at()), _MM_HINT_T0);
    prefetch_page_ahead(gd);
    const std::size_t g0 = g * geo.group;
    __m512 part[MR];  // set at rank 0 (rank >= 1)
    for (std::size_t t = 0; t < MR; ++t) part[t] = _mm512_setzero_ps();
    for (unsigned q0 = 0; q0 < geo.rank; q0 += RB) {
      switch (std::min(RB, geo.rank - q0)) {
        case 4: if constexpr (RB >= 4) codebook_rank_block<MR, 4>(a, gd, x, m0, g0, q0, part); break;
        case 3: if constexpr (RB >= 3) codebook_rank_block<MR, 3>(a, gd, x, m0, g0, q0, part); break;
        case 2: codebook_rank_block<MR, 2>(a, gd, x, m0, g0, q0, part); break;
        default: codebook_rank_block<MR, 1>(a, gd, x, m0, g0, q0, part); break;
      }
    }
    const __m512 off = _mm512_loadu_ps(gd + geo.offsets_at());
    for (std::size_t t = 0; t < MR; ++t)
      out[t] = _mm512_add_ps(out[t], _mm512_fnmadd_ps(off, _mm512_set1_ps(a.xs[(m0 + t) * geo.groups + g]), part[t]));
  }
  const bool has_bias = a.bias != nullptr;
  const __m512 bias = has_bias ? load_rows(a.bias + n0, rows) : _mm512_setzero_ps();
  for (std::size_t t = 0; t < MR; ++t)
    store_rows(a.y + (m0 + t) * a.ldy + n0, rows, has_bias ? _mm512_add_ps(out[t], bias) : out[t]);
}

RANKQ_AVX512_KERNEL void run_codebook_tiles(const CodebookArgs& a, std::size_t tile_begin, std::size_t tile_end) {
  for (std::size_t tile = tile_begin; tile < tile_end; ++tile) {
    const std::uint8_t* td = a.packed + tile * a.geo.tile_stride();
    const std::size_t n0 = tile * kTileRows;
    const __mmask16 rows = row_mask(a.rows - n0);
    std::size_t m = 0;
    for (; m + kCodebookTokenBlock <= a.M; m += kCodebookTokenBlock) codebook_tile_token_block<kCodebookTokenBlock>(a, td, n0, rows, m);
    switch (a.M - m) {
      case 7: codebook_tile_token_block<7>(a, td, n0, rows, m); break;
      case 6: codebook_tile_token_block<6>(a, td, n0, rows, m); break;
      case 5: codebook_tile_token_block<5>(a, td, n0, rows, m); break;
      case 4: codebook_tile_token_block<4>(a, td, n0, rows, m); break;
      case 3: codebook_tile_token_block<3>(a, td, n0, rows, m); break;
      case 2: codebook_tile_token_block<2>(a, td, n0, rows, m); break;
      case 1: codebook_tile_token_block<1>(a, td, n0, rows, m); break;
      default: break;
    }
  }
}

}  RANKQ_NAMESPACE_END  // namespace rankq::detail::avx512

RANKQ_NAMESPACE_BEGIN namespace detail {
template <>
inline void codebook_tiles<KernelPath::avx512_vnni>(const CodebookArgs& a, std::size_t tile_begin, std::size_t tile_end) {
  avx512::run_codebook_tiles(a, tile_begin, tile_end);
}
}  RANKQ_NAMESPACE_END  // namespace rankq::detail
RANKQ_X86_CODE_END
#endif
