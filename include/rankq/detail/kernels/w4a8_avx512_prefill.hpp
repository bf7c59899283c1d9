// rankq/detail/kernels/w4a8_avx512_prefill.hpp — the avx512vnni W4A8 prefill (M > Isa::kTokenBlock), a
// hand-written specialisation beside the shared driver (w4a8_driver.inl), kept because it measurably wins
// (docs/performance.md): per tile (pair) and 1024-K chunk the codes are unpacked once into an L1 buffer, then
// every 8-token block runs over them — the inner loop is nothing but vpdpbusd with {1to16} activation broadcasts.
//
// Contract: reads the packed tiles [tile_begin, tile_end) (and prefetches, never faulting, the bytes after them),
// x rows [0, M) up to x_padded, x_scales, xsum / xqsum; writes exactly y[m][n] for m < M and the tiles' real rows
// n < N (masked stores), using y as float scratch between K chunks (so the result does not depend on the
// chunking, docs/kernels.md §3). Scratch: thread_local grow-only buffers (no allocation after a thread's first
// call of a shape). Results: the same integer dots as every path; floats within the driver's rounding.
#pragma once

#include "rankq/detail/abi.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "rankq/detail/x86_targets.hpp"
#include "rankq/detail/grow_buffer.hpp"
#include "rankq/detail/kernels/w4a8_avx512_fold_asm.hpp"
#include "rankq/detail/kernels/w4a8_layout.hpp"
#include "rankq/detail/kernels/x86_primitives_avx512.hpp"

#if RANKQ_X86_PATHS
RANKQ_X86_CODE_BEGIN
RANKQ_NAMESPACE_BEGIN namespace detail::avx512 {


/// Prefill micro-kernel on pre-unpacked codes: y[m0 .. m0+MR) x the 16 rows of `tile` over groups [g_begin,
/// g_end), whose code blocks were unpacked into `codes` (per 8 K: the 64-byte low-nibble operand, then the
/// high-nibble one; docs/kernels.md §3). The inner loop is nothing but vpdpbusd with {1to16} activation
/// broadcasts and one 64-byte code load per 8·MR of them: the nibble unpack (and, shift, and), which competes
/// with vpdpbusd for the same vector pipes, is paid once per tile chunk instead of once per token block.
/// Same epilogue and chunk contract as tile_token_block.
template <std::size_t MR, bool kFold>
RANKQ_AVX512_INLINE void unpacked_token_block(const W4A8Args& a, std::size_t tile, const std::uint8_t* codes,
                                              std::size_t m0, std::size_t g_begin, std::size_t g_end, bool first,
                                              bool last) {
  constexpr std::size_t C = MR <= 2 ? 4 : 2;  // int32 accumulators per token
  const PackedW4Geometry& geo = a.geo;
  const std::uint8_t* td = a.packed + tile * geo.tile_stride();
  const std::size_t n0 = tile * kTileRows, code_bytes = geo.code_bytes(), group_stride = geo.group_stride();
  const __mmask16 rows = row_mask(a.rows - n0);
  const std::size_t k_begin = g_begin * geo.group;
  const std::int8_t* x[MR];
  __m512 out[MR];
  for (std::size_t t = 0; t < MR; ++t) {
    x[t] = a.x + (m0 + t) * a.x_padded;
    out[t] = first ? _mm512_setzero_ps() : load_rows(a.y + (m0 + t) * a.ldy + n0, rows);
  }
  std::size_t b = k_begin / a.x_block, b_end = (b + 1) * a.x_block;  // activation block of k, its end
  for (std::size_t g = g_begin; g < g_end; ++g) {
    const std::size_t g0 = g * geo.group, g_end_k = g0 + geo.group;
    for (std::size_t k = g0; k < g_end_k;) {
      if (k == b_end) ++b, b_end += a.x_block;
      const std::size_t seg_end = std::min(g_end_k, b_end);
      __m512i acc[MR][C];
      for (std::size_t t = 0; t < MR; ++t) {
        acc[t][0] = kFold ? _mm512_set1_epi32(-static_cast<std::int32_t>(a.zero_code) * a.xqsum[(m0 + t) * geo.groups + g])
                          : _mm512_setzero_si512();
        for (std::size_t c = 1; c < C; ++c) acc[t][c] = _mm512_setzero_si512();
      }
      const std::uint8_t* cp = codes + (k - k_begin) / kBlockK * 2 * sizeof(PackedCodeBlock);
#if RANKQ_AVX512_FOLD_ASM
      if constexpr (MR == 8) {
        __m512i init[8], d[8];
        for (std::size_t t = 0; t < 8; ++t) init[t] = acc[t][0];
        dot_8_tokens(cp, x, k, seg_end, init, d);
        for (std::size_t t = 0; t < 8; ++t) acc[t][0] = d[t], acc[t][1] = _mm512_setzero_si512();
        k = seg_end;
      }
#endif
      for (; k < seg_end; k += 2 * kBlockK, cp += 4 * sizeof(PackedCodeBlock)) {  // segments are multiples of 16 K
        for (std::size_t j = 0; j < 2; ++j) {
          const __m512i lo = _mm512_load_si512(cp + 2 * j * sizeof(PackedCodeBlock));
          const __m512i hi = _mm512_load_si512(cp + (2 * j + 1) * sizeof(PackedCodeBlock));
          for (std::size_t t = 0; t < MR; ++t) {
            acc[t][(2 * j) % C] = dot4(acc[t][(2 * j) % C], lo, x[t] + k + j * kBlockK);
            acc[t][(2 * j + 1) % C] = dot4(acc[t][(2 * j + 1) % C], hi, x[t] + k + j * kBlockK + 4);
          }
        }
      }
      const __m512 s = load_row_values(td + g * group_stride + code_bytes, a.scale_type);
      for (std::size_t t = 0; t < MR; ++t) {
        __m512i d = _mm512_add_epi32(acc[t][0], acc[t][1]);
        if (C == 4) d = _mm512_add_epi32(d, _mm512_add_epi32(acc[t][2], acc[t][3]));
        const __m512 sa = kFold ? s : _mm512_mul_ps(s, _mm512_set1_ps(a.x_scales[(m0 + t) * a.x_blocks + b]));
        out[t] = _mm512_fmadd_ps(sa, _mm512_cvtepi32_ps(d), out[t]);
      }
    }
    if (kFold) continue;
    const std::uint8_t* sp = td + g * group_stride + code_bytes;
    const __m512 z = geo.has_offsets ? load_row_values(sp + kTileRows * geo.scale_bytes, a.scale_type)
                                     : _mm512_mul_ps(load_row_values(sp, a.scale_type), _mm512_set1_ps(a.zero_code));
    for (std::size_t t = 0; t < MR; ++t) out[t] = _mm512_fnmadd_ps(z, _mm512_set1_ps(a.xsum[(m0 + t) * geo.groups + g]), out[t]);
  }
  const __m512 bias = last && a.bias ? load_rows(a.bias + n0, rows) : _mm512_setzero_ps();
  for (std::size_t t = 0; t < MR; ++t) {
    if (kFold && last) out[t] = _mm512_mul_ps(out[t], _mm512_set1_ps(a.x_scales[(m0 + t) * a.x_blocks]));
    store_rows(a.y + (m0 + t) * a.ldy + n0, rows, last && a.bias ? _mm512_add_ps(out[t], bias) : out[t]);
  }
}

/// Unpacks the code blocks of groups [g0, g1) of a tile into `codes` (layout of unpacked_token_block), and
/// prefetches the packed bytes that follow (the next chunk, or the next tile's first one: tiles are contiguous)
/// into L2, so they arrive while the token blocks compute on this chunk. Prefetches never fault. With `scales`,
/// also writes each group's 16 scales as f32 (kFoldScaleStride floats apart) for the folded asm loops.
RANKQ_AVX512_INLINE void unpack_tile_chunk(const W4A8Args& a, std::size_t tile, std::size_t g0, std::size_t g1,
                                           std::uint8_t* codes, float* scales, bool prefetch_next = true) {
  const std::uint8_t* td = a.packed + tile * a.geo.tile_stride();
  const std::size_t blocks = a.geo.group / kBlockK, chunk_bytes = (g1 - g0) * a.geo.group_stride();
  for (std::size_t g = g0; g < g1; ++g) {
    const std::uint8_t* src = td + g * a.geo.group_stride();
    for (std::size_t j = 0; j < blocks; ++j, codes += 2 * sizeof(PackedCodeBlock)) {
      if (prefetch_next)
        _mm_prefetch(reinterpret_cast<const char*>(src + chunk_bytes + j * sizeof(PackedCodeBlock)), _MM_HINT_T1);
      const Nibbles c = unpack_code_block(src + j * sizeof(PackedCodeBlock));
      _mm512_store_si512(codes, c.lo);
      _mm512_store_si512(codes + sizeof(PackedCodeBlock), c.hi);
    }
    if (scales) _mm512_store_ps(scales + (g - g0) * kFoldScaleStride, load_row_values(src + a.geo.code_bytes(), a.scale_type));
  }
}

#if RANKQ_AVX512_FOLD_ASM
/// kFold prefill of tokens [m0, m0 + 8) on one unpacked chunk (groups [g0, g1)) through fold_chunk_8_tokens:
/// same float operations in the same order as unpacked_token_block<8, true>, so the same bits.
RANKQ_AVX512_INLINE void fold_token_block_8(const W4A8Args& a, std::size_t tile, const std::uint8_t* codes,
                                            const float* scales, const std::int32_t* init, std::size_t m0,
                                            std::size_t g0, std::size_t g1, bool first, bool last) {
  const std::size_t n0 = tile * kTileRows;
  const __mmask16 rows = row_mask(a.rows - n0);
  __m512 out[8];
  for (std::size_t t = 0; t < 8; ++t) out[t] = first ? _mm512_setzero_ps() : load_rows(a.y + (m0 + t) * a.ldy + n0, rows);
  fold_chunk_8_tokens(codes, a.x + m0 * a.x_padded + g0 * a.geo.group, a.x_padded, init, scales, g1 - g0,
                      a.geo.group / (2 * kBlockK), out);
  const __m512 bias = last && a.bias ? load_rows(a.bias + n0, rows) : _mm512_setzero_ps();
  for (std::size_t t = 0; t < 8; ++t) {
    if (last) out[t] = _mm512_mul_ps(out[t], _mm512_set1_ps(a.x_scales[(m0 + t) * a.x_blocks]));
    store_rows(a.y + (m0 + t) * a.ldy + n0, rows, last && a.bias ? _mm512_add_ps(out[t], bias) : out[t]);
  }
}

/// fold_token_block_8 for tiles `tile` and `tile + 1` at once (fold_chunk_8x2): the same float operations per
/// output, so the same bits.
RANKQ_AVX512_INLINE void fold_token_block_8x2(const W4A8Args& a, std::size_t tile, const std::uint8_t* codes_a,
                                              const std::uint8_t* codes_b, const float* scales,
                                              const std::int32_t* init, std::size_t m0, std::size_t g0,
                                              std::size_t g1, bool first, bool last) {
  __mmask16 rows[2];
  std::size_t n0[2];
  for (std::size_t u = 0; u < 2; ++u) n0[u] = (tile + u) * kTileRows, rows[u] = row_mask(a.rows - n0[u]);
  alignas(64) float out[8 * 2 * kTileRows];  // [token][tile][row]
  for (std::size_t t = 0; t < 8; ++t)
    for (std::size_t u = 0; u < 2; ++u)
      _mm512_store_ps(out + (2 * t + u) * kTileRows,
                      first ? _mm512_setzero_ps() : load_rows(a.y + (m0 + t) * a.ldy + n0[u], rows[u]));
  fold_chunk_8x2(codes_a, codes_b, a.x + m0 * a.x_padded + g0 * a.geo.group, a.x_padded, init, scales, g1 - g0,
                 a.geo.group / (2 * kBlockK), out);
  for (std::size_t u = 0; u < 2; ++u) {
    const __m512 bias = last && a.bias ? load_rows(a.bias + n0[u], rows[u]) : _mm512_setzero_ps();
    for (std::size_t t = 0; t < 8; ++t) {
      __m512 o = _mm512_load_ps(out + (2 * t + u) * kTileRows);
      if (last) o = _mm512_mul_ps(o, _mm512_set1_ps(a.x_scales[(m0 + t) * a.x_blocks]));
      store_rows(a.y + (m0 + t) * a.ldy + n0[u], rows[u], last && a.bias ? _mm512_add_ps(o, bias) : o);
    }
  }
}
#endif  // RANKQ_AVX512_FOLD_ASM

inline constexpr std::size_t kPrefillTokens = 8;  ///< tokens per unpacked_token_block: 16 int32 chains + 8 outputs
inline constexpr std::size_t kChunkK = 1024;      ///< K per chunk of unpacked codes (16 KiB: stays in L1)

/// Prefill (more than one direct token block): per tile and K chunk, unpack the chunk once, then run every
/// token block over it. The chunk's codes (16 x kChunkK bytes) stay in L1; each token block reads its
/// activations (kPrefillTokens x kChunkK bytes) once per tile, streaming from L2.
/// The token blocks of one tile's unpacked chunk that the folded asm does not cover (all of them without it):
/// unpacked_token_block from token m on, 8 at a time, then the 1-7 remainder.
template <bool kFold>
RANKQ_AVX512_INLINE void unpacked_tokens(const W4A8Args& a, std::size_t tile, const std::uint8_t* codes, std::size_t m,
                                         std::size_t g0, std::size_t g1, bool first, bool last) {
  static_assert(kPrefillTokens == 8, "the remainder switch below handles 1 to 7 tokens");
  for (; m + kPrefillTokens <= a.M; m += kPrefillTokens)
    unpacked_token_block<kPrefillTokens, kFold>(a, tile, codes, m, g0, g1, first, last);
  switch (a.M - m) {
    case 7: unpacked_token_block<7, kFold>(a, tile, codes, m, g0, g1, first, last); break;
    case 6: unpacked_token_block<6, kFold>(a, tile, codes, m, g0, g1, first, last); break;
    case 5: unpacked_token_block<5, kFold>(a, tile, codes, m, g0, g1, first, last); break;
    case 4: unpacked_token_block<4, kFold>(a, tile, codes, m, g0, g1, first, last); break;
    case 3: unpacked_token_block<3, kFold>(a, tile, codes, m, g0, g1, first, last); break;
    case 2: unpacked_token_block<2, kFold>(a, tile, codes, m, g0, g1, first, last); break;
    case 1: unpacked_token_block<1, kFold>(a, tile, codes, m, g0, g1, first, last); break;
    default: break;
  }
}

/// Prefill (more than one direct token block): per tile (folded asm: per tile pair) and K chunk, unpack the
/// chunk once, then run every token block over it. The chunk's codes (16 x kChunkK bytes per tile) stay in L1;
/// each token block reads its activations (kPrefillTokens x kChunkK bytes) once per tile (pair), streaming
/// from L2.
/// Not inlined into run_w4a8_tiles, which keeps that function's decode / small-M code apart from the prefill
/// code (benchmark, 3 alternating rounds: M = 8 2.38-2.42 -> 2.20-2.27 ms, M = 128 +1-2 %; M = 1 within noise).
template <bool kFold>
RANKQ_AVX512_KERNEL void run_prefill(const W4A8Args& a, std::size_t tile_begin, std::size_t tile_end) {
  const std::size_t groups = a.geo.groups;
  const std::size_t chunk = std::max<std::size_t>(1, kChunkK / a.geo.group);  // groups per K chunk
  const std::size_t chunk_bytes = chunk * a.geo.group / kBlockK * 2 * sizeof(PackedCodeBlock);
  // Folded asm: tiles in pairs (one code buffer each), the chunk's scales as f32, and the accumulator start
  // −zero_code·Σq of every full 8-token block and group, laid out [block][group][token] so that the asm reads
  // 8 consecutive int32 per group.
  constexpr bool kChunkAsm = kFold && kFoldChunkAsm;
  const std::size_t full_blocks = kChunkAsm ? a.M / kPrefillTokens : 0;
  // Tile pairs from two full token blocks on. With a single block (M = 8-15) the weights' DRAM stream, not the
  // broadcasts, is the limit, and one tile at a time reads them in address order (side driver, cold weights,
  // M = 8: ~300 GOP/s single tile against ~270 in pairs).
  const std::size_t tiles_per_step = kChunkAsm && full_blocks >= 2 ? 2 : 1;
  // Per-thread scratch that only grows: after a thread's first call of a shape, no allocation (docs/kernels.md §5).
  thread_local GrowBuffer<std::uint8_t> codes_buffer;
  thread_local GrowBuffer<float> scales_buffer;
  thread_local GrowBuffer<std::int32_t> fold_init_buffer;
  std::uint8_t* const codes = codes_buffer.get(tiles_per_step * chunk_bytes);
  float* const scales = kChunkAsm ? scales_buffer.get(chunk * kFoldScaleStride) : nullptr;
  std::int32_t* const fold_init = fold_init_buffer.get(full_blocks * groups * kPrefillTokens);
  for (std::size_t mb = 0; mb < full_blocks; ++mb)
    for (std::size_t g = 0; g < groups; ++g)
      for (std::size_t t = 0; t < kPrefillTokens; ++t)
        fold_init[(mb * groups + g) * kPrefillTokens + t] =
            -static_cast<std::int32_t>(a.zero_code) * a.xqsum[(mb * kPrefillTokens + t) * groups + g];
  for (std::size_t tile = tile_begin; tile < tile_end; tile += tiles_per_step) {
    const std::size_t tiles_here = std::min(tiles_per_step, tile_end - tile);
    for (std::size_t g0 = 0; g0 < groups; g0 += chunk) {
      const std::size_t g1 = std::min(groups, g0 + chunk);
      const bool first = g0 == 0, last = g1 == groups;
      for (std::size_t u = 0; u < tiles_here; ++u)
        unpack_tile_chunk(a, tile + u, g0, g1, codes + u * chunk_bytes,
                          kChunkAsm ? scales + u * kTileRows : nullptr, !kChunkAsm || full_blocks == 0);
#if RANKQ_AVX512_FOLD_ASM
      if constexpr (kChunkAsm) {
        // The packed bytes of the next step (this pair's next chunk, or the next pair's first one): prefetched
        // into L2 a slice per token block, so the DRAM requests spread over this step's compute instead of
        // bursting during the unpack.
        const bool wrap = g1 == groups;
        const std::size_t next_tile = wrap ? tile + tiles_per_step : tile, next_g0 = wrap ? 0 : g1;
        const std::size_t next_bytes = (std::min(groups, next_g0 + chunk) - next_g0) * a.geo.group_stride();
        const std::size_t next_lines = next_bytes / 64 + 1;
        for (std::size_t mb = 0; mb < full_blocks; ++mb) {
          for (std::size_t u = 0; u < tiles_per_step && (next_tile + u) * kTileRows < a.rows; ++u) {
            const std::uint8_t* next = a.packed + (next_tile + u) * a.geo.tile_stride() + next_g0 * a.geo.group_stride();
            for (std::size_t l = mb * next_lines / full_blocks; l < (mb + 1) * next_lines / full_blocks; ++l)
              _mm_prefetch(reinterpret_cast<const char*>(next + 64 * l), _MM_HINT_T1);
          }
          const std::int32_t* init = fold_init + (mb * groups + g0) * kPrefillTokens;
          if (tiles_here == 2)
            fold_token_block_8x2(a, tile, codes, codes + chunk_bytes, scales, init,
                                 mb * kPrefillTokens, g0, g1, first, last);
          else
            fold_token_block_8(a, tile, codes, scales, init, mb * kPrefillTokens, g0, g1, first, last);
        }
      }
#endif
      for (std::size_t u = 0; u < tiles_here; ++u)
        unpacked_tokens<kFold>(a, tile + u, codes + u * chunk_bytes, full_blocks * kPrefillTokens, g0, g1,
                               first, last);
    }
  }
}

/// The prefill entry the W4A8 dispatch calls for M > Isa::kTokenBlock (argument-dependent lookup on the tag).
RANKQ_AVX512_KERNEL void run_w4a8_prefill(Isa, const W4A8Args& a, std::size_t tile_begin, std::size_t tile_end) {
  if (a.xqsum) return run_prefill<true>(a, tile_begin, tile_end);
  run_prefill<false>(a, tile_begin, tile_end);
}

}  RANKQ_NAMESPACE_END  // namespace rankq::detail::avx512
RANKQ_X86_CODE_END
#endif
