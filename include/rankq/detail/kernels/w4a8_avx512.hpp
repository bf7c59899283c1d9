// rankq/detail/kernels/w4a8_avx512.hpp — the avx512vnni W4A8 path: one zmm vpdpbusd per 64-byte code block
// half (16 rows x 4 K); M = 1: one 16-row tile, M = 2-3: 3 tokens x 32 rows, prefill: 8 tokens x 16 rows on unpacked
// codes (folded zero point with GCC: 8 tokens x 32 rows from M = 16 on, whole chunks per asm block). docs/kernels.md §2-3.
#pragma once

#include "rankq/detail/abi.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "rankq/kernel_path.hpp"
#include "rankq/detail/x86_targets.hpp"
#include "rankq/detail/grow_buffer.hpp"
#include "rankq/detail/kernels/stream_prefetch.hpp"
#include "rankq/detail/kernels/w4a8_layout.hpp"
#include "rankq/detail/kernels/x86_primitives_avx512.hpp"

#if RANKQ_X86_PATHS
RANKQ_X86_CODE_BEGIN
RANKQ_NAMESPACE_BEGIN namespace detail {

template <KernelPath P>
void w4a8_tiles(const W4A8Args& a, std::size_t tile_begin, std::size_t tile_end);

namespace avx512 {

inline constexpr std::size_t kTokenBlock = 3;  ///< tokens per micro-kernel call
inline constexpr std::size_t kTileBlock = 2;   ///< tiles per micro-kernel call: 3 tokens x 32 rows of outputs
/// Floats per group in the f32 scale scratch of the folded prefill: tile A's 16 scales, then tile B's (unused
/// when a tile runs alone). The asm loops advance by this many floats (128 bytes) per group.
inline constexpr std::size_t kFoldScaleStride = 2 * kTileRows;
static_assert(kFoldScaleStride * sizeof(float) == 128, "fold_chunk_8_tokens / fold_chunk_8x2 hard-code 128 bytes");

/// y[m0 .. m0+MR) x rows of NT consecutive tiles (from `tile`), over groups [g_begin, g_end). Per segment (a group
/// cut at activation-block boundaries) the int32 dot products run 16 K per step (two code blocks per tile); each
/// broadcast activation word feeds NT vpdpbusd, so a step needs 2·NT code loads + 4·MR broadcasts for 4·MR·NT
/// vpdpbusd (NT = 1 uses the {1to16} memory-operand form instead). C accumulators per
/// (token, tile) keep >= 8 independent vpdpbusd chains (latency 4, 2 per cycle on Zen 5). Float epilogue:
/// out += (s·a_seg)·dot per segment, out −= z·xsum per group. `first`: out starts at 0, else at the partial sums
/// already in y; `last`: adds the bias. Partials round-trip through y as floats, so the result does not depend
/// on how K is chunked (docs/kernels.md §3). kFold (a.xqsum set: symmetric weights, per-token activations): the
/// accumulators start at −zero_code·Σq, so out += s·dot per group and out *= a_token once at the end.
template <std::size_t MR, std::size_t NT, bool kFold>
RANKQ_AVX512_INLINE void tile_token_block(const W4A8Args& a, std::size_t tile, std::size_t m0, std::size_t g_begin,
                                          std::size_t g_end, bool first, bool last) {
  constexpr std::size_t C = MR * NT <= 2 ? 4 : 2;  // int32 accumulators per (token, tile)
  const PackedW4Geometry& geo = a.geo;
  const std::size_t code_bytes = geo.code_bytes(), group_stride = geo.group_stride();
  const std::uint8_t* td[NT];
  std::size_t n0[NT];
  __mmask16 rows[NT];
  for (std::size_t u = 0; u < NT; ++u) {
    td[u] = a.packed + (tile + u) * geo.tile_stride();
    n0[u] = (tile + u) * kTileRows;
    rows[u] = row_mask(a.rows - n0[u]);
  }
  const std::int8_t* x[MR];
  __m512 out[MR][NT];
  for (std::size_t t = 0; t < MR; ++t) {
    x[t] = a.x + (m0 + t) * a.x_padded;
    for (std::size_t u = 0; u < NT; ++u)
      out[t][u] = first ? _mm512_setzero_ps() : load_rows(a.y + (m0 + t) * a.ldy + n0[u], rows[u]);
  }
  std::size_t b = g_begin * geo.group / a.x_block, b_end = (b + 1) * a.x_block;  // activation block of k, its end
  for (std::size_t g = g_begin; g < g_end; ++g) {
    const std::size_t g0 = g * geo.group, g_end_k = g0 + geo.group;
    // The page 16 KiB ahead of each stream is touched once per group (stream_prefetch.hpp; M = 1 from DRAM: 23-31 ->
    // 27-38 GB/s, docs/performance.md), and the scales load first: it touches the end of the group's code stream
    // early (~15 % before the hint).
    __m512 s[NT];
    for (std::size_t u = 0; u < NT; ++u) {
      prefetch_page_ahead(td[u] + g * group_stride);
      s[u] = load_row_values(td[u] + g * group_stride + code_bytes, a.scale_type);
    }
    for (std::size_t k = g0; k < g_end_k;) {
      if (k == b_end) ++b, b_end += a.x_block;
      const std::size_t seg_end = std::min(g_end_k, b_end);
      __m512i acc[MR][NT][C];
      for (std::size_t t = 0; t < MR; ++t) {
        const __m512i init = kFold ? _mm512_set1_epi32(-static_cast<std::int32_t>(a.zero_code) * a.xqsum[(m0 + t) * geo.groups + g])
                                   : _mm512_setzero_si512();
        for (std::size_t u = 0; u < NT; ++u) {
          acc[t][u][0] = init;
          for (std::size_t c = 1; c < C; ++c) acc[t][u][c] = _mm512_setzero_si512();
        }
      }
      std::size_t off = g * group_stride + (k - g0) / kBlockK * sizeof(PackedCodeBlock);
      for (; k < seg_end; k += 2 * kBlockK, off += 2 * sizeof(PackedCodeBlock)) {  // segments are multiples of 16 K
        for (std::size_t j = 0; j < 2; ++j) {
          Nibbles c[NT];
          for (std::size_t u = 0; u < NT; ++u) c[u] = unpack_code_block(td[u] + off + j * sizeof(PackedCodeBlock));
          for (std::size_t t = 0; t < MR; ++t) {
            const std::int8_t* xk = x[t] + k + j * kBlockK;
            if constexpr (NT == 1) {  // the activation word as vpdpbusd's {1to16} memory operand
              acc[t][0][(2 * j) % C] = dot4(acc[t][0][(2 * j) % C], c[0].lo, xk);
              acc[t][0][(2 * j + 1) % C] = dot4(acc[t][0][(2 * j + 1) % C], c[0].hi, xk + 4);
            } else {  // one broadcast register feeds every tile
              const __m512i lo = broadcast4(xk), hi = broadcast4(xk + 4);
              for (std::size_t u = 0; u < NT; ++u) {
                acc[t][u][(2 * j) % C] = dpbusd(acc[t][u][(2 * j) % C], c[u].lo, lo);
                acc[t][u][(2 * j + 1) % C] = dpbusd(acc[t][u][(2 * j + 1) % C], c[u].hi, hi);
              }
            }
          }
        }
      }
      for (std::size_t t = 0; t < MR; ++t) {
        const __m512 xs = _mm512_set1_ps(a.x_scales[(m0 + t) * a.x_blocks + b]);
        for (std::size_t u = 0; u < NT; ++u) {
          __m512i d = _mm512_add_epi32(acc[t][u][0], acc[t][u][1]);
          if (C == 4) d = _mm512_add_epi32(d, _mm512_add_epi32(acc[t][u][C - 2], acc[t][u][C - 1]));
          out[t][u] = _mm512_fmadd_ps(kFold ? s[u] : _mm512_mul_ps(s[u], xs), _mm512_cvtepi32_ps(d), out[t][u]);
        }
      }
    }
    if (kFold) continue;
    for (std::size_t u = 0; u < NT; ++u) {
      const std::uint8_t* sp = td[u] + g * group_stride + code_bytes;
      const __m512 z = geo.has_offsets ? load_row_values(sp + kTileRows * geo.scale_bytes, a.scale_type)
                                       : _mm512_mul_ps(load_row_values(sp, a.scale_type), _mm512_set1_ps(a.zero_code));
      for (std::size_t t = 0; t < MR; ++t)
        out[t][u] = _mm512_fnmadd_ps(z, _mm512_set1_ps(a.xsum[(m0 + t) * geo.groups + g]), out[t][u]);
    }
  }
  if (kFold && last)
    for (std::size_t t = 0; t < MR; ++t) {
      const __m512 xs = _mm512_set1_ps(a.x_scales[(m0 + t) * a.x_blocks]);
      for (std::size_t u = 0; u < NT; ++u) out[t][u] = _mm512_mul_ps(out[t][u], xs);
    }
  for (std::size_t u = 0; u < NT; ++u) {
    const __m512 bias = last && a.bias ? load_rows(a.bias + n0[u], rows[u]) : _mm512_setzero_ps();
    for (std::size_t t = 0; t < MR; ++t)
      store_rows(a.y + (m0 + t) * a.ldy + n0[u], rows[u], last && a.bias ? _mm512_add_ps(out[t][u], bias) : out[t][u]);
  }
}

/// Tokens [m_begin, m_end) of NT tiles from `tile`, over groups [g0, g1).
template <std::size_t NT, bool kFold>
RANKQ_AVX512_INLINE void tiles_tokens(const W4A8Args& a, std::size_t tile, std::size_t m_begin, std::size_t m_end,
                                      std::size_t g0, std::size_t g1, bool first, bool last) {
  static_assert(kTokenBlock == 3, "the remainder switch below handles 1 or 2 tokens");
  std::size_t m = m_begin;
  for (; m + kTokenBlock <= m_end; m += kTokenBlock) tile_token_block<kTokenBlock, NT, kFold>(a, tile, m, g0, g1, first, last);
  if (m_end - m == 2) tile_token_block<2, NT, kFold>(a, tile, m, g0, g1, first, last);
  if (m_end - m == 1) tile_token_block<1, NT, kFold>(a, tile, m, g0, g1, first, last);
}

/// Tokens [m_begin, m_end) of tiles [t0, t1), NT at a time.
template <std::size_t NT, bool kFold>
RANKQ_AVX512_INLINE void panel_tokens(const W4A8Args& a, std::size_t t0, std::size_t t1, std::size_t m_begin,
                                      std::size_t m_end, std::size_t g0, std::size_t g1, bool first, bool last) {
  std::size_t tile = t0;
  for (; tile + NT <= t1; tile += NT) tiles_tokens<NT, kFold>(a, tile, m_begin, m_end, g0, g1, first, last);
  for (; tile < t1; ++tile) tiles_tokens<1, kFold>(a, tile, m_begin, m_end, g0, g1, first, last);
}

// The hand-scheduled asm loops (dot_8_tokens, fold_chunk_8_tokens, fold_chunk_8x2 and their wrappers) are GCC
// only: Clang allocates the intrinsics' registers well by itself and has no asm path. Everything that calls
// them is compiled only under this macro, so no Clang build contains a function that silently does nothing.
#if defined(__GNUC__) && !defined(__clang__)
#define RANKQ_AVX512_FOLD_ASM 1
#else
#define RANKQ_AVX512_FOLD_ASM 0
#endif

#if RANKQ_AVX512_FOLD_ASM
// vpdpbusd OFF(X + ko){1to16}, ZC, ZA in both assembler dialects (-masm=att / intel).
#define RANKQ_DPB(OFF, X, ZC, ZA)                                \
  "{vpdpbusd " OFF "(%[" X "],%[ko])%{1to16%}, %%" ZC ", %%" ZA \
  "|vpdpbusd " ZA ", " ZC ", dword ptr [%[" X "]+%[ko]+" OFF "]%{1to16%}}\n\t"

/// d[t] = init[t] + Σ_k codes · x[t][k] over k in [k, seg_end) for 8 tokens, from unpacked codes (per 8 K: lo, hi
/// operand) — the whole segment as one asm loop for GCC, whose register allocator spills and copies the
/// accumulators of the equivalent intrinsic loop. Accumulators live in zmm16-31 (two chains per token: lo / hi
/// nibbles; each chain gets 2 vpdpbusd per 16-K step, 8 cycles of latency against 16 cycles of issue), codes in
/// zmm12-15; the activation offset runs from −(seg_end − k) up to 0. Needs (seg_end − k) a positive multiple of 16.
RANKQ_AVX512_INLINE void dot_8_tokens(const std::uint8_t* codes, const std::int8_t* const (&x)[8], std::size_t k,
                                      std::size_t seg_end, const __m512i (&init)[8], __m512i (&d)[8]) {
  const std::int8_t* xe[8];
  for (std::size_t t = 0; t < 8; ++t) xe[t] = x[t] + seg_end;
  std::ptrdiff_t ko = -static_cast<std::ptrdiff_t>(seg_end - k);
  __asm__(
      "{vmovdqa64 %[i0], %%zmm16|vmovdqa64 zmm16, %[i0]}\n\t"
      "{vpxord %%zmm17, %%zmm17, %%zmm17|vpxord zmm17, zmm17, zmm17}\n\t"
      "{vmovdqa64 %[i1], %%zmm18|vmovdqa64 zmm18, %[i1]}\n\t"
      "{vpxord %%zmm19, %%zmm19, %%zmm19|vpxord zmm19, zmm19, zmm19}\n\t"
      "{vmovdqa64 %[i2], %%zmm20|vmovdqa64 zmm20, %[i2]}\n\t"
      "{vpxord %%zmm21, %%zmm21, %%zmm21|vpxord zmm21, zmm21, zmm21}\n\t"
      "{vmovdqa64 %[i3], %%zmm22|vmovdqa64 zmm22, %[i3]}\n\t"
      "{vpxord %%zmm23, %%zmm23, %%zmm23|vpxord zmm23, zmm23, zmm23}\n\t"
      "{vmovdqa64 %[i4], %%zmm24|vmovdqa64 zmm24, %[i4]}\n\t"
      "{vpxord %%zmm25, %%zmm25, %%zmm25|vpxord zmm25, zmm25, zmm25}\n\t"
      "{vmovdqa64 %[i5], %%zmm26|vmovdqa64 zmm26, %[i5]}\n\t"
      "{vpxord %%zmm27, %%zmm27, %%zmm27|vpxord zmm27, zmm27, zmm27}\n\t"
      "{vmovdqa64 %[i6], %%zmm28|vmovdqa64 zmm28, %[i6]}\n\t"
      "{vpxord %%zmm29, %%zmm29, %%zmm29|vpxord zmm29, zmm29, zmm29}\n\t"
      "{vmovdqa64 %[i7], %%zmm30|vmovdqa64 zmm30, %[i7]}\n\t"
      "{vpxord %%zmm31, %%zmm31, %%zmm31|vpxord zmm31, zmm31, zmm31}\n\t"
      "1:\n\t"
      "{vmovdqa64 (%[c]), %%zmm12|vmovdqa64 zmm12, zmmword ptr [%[c]]}\n\t"
      "{vmovdqa64 64(%[c]), %%zmm13|vmovdqa64 zmm13, zmmword ptr [%[c]+64]}\n\t"
      RANKQ_DPB("0", "x0", "zmm12", "zmm16") RANKQ_DPB("4", "x0", "zmm13", "zmm17")
      RANKQ_DPB("0", "x1", "zmm12", "zmm18") RANKQ_DPB("4", "x1", "zmm13", "zmm19")
      RANKQ_DPB("0", "x2", "zmm12", "zmm20") RANKQ_DPB("4", "x2", "zmm13", "zmm21")
      RANKQ_DPB("0", "x3", "zmm12", "zmm22") RANKQ_DPB("4", "x3", "zmm13", "zmm23")
      RANKQ_DPB("0", "x4", "zmm12", "zmm24") RANKQ_DPB("4", "x4", "zmm13", "zmm25")
      RANKQ_DPB("0", "x5", "zmm12", "zmm26") RANKQ_DPB("4", "x5", "zmm13", "zmm27")
      RANKQ_DPB("0", "x6", "zmm12", "zmm28") RANKQ_DPB("4", "x6", "zmm13", "zmm29")
      RANKQ_DPB("0", "x7", "zmm12", "zmm30") RANKQ_DPB("4", "x7", "zmm13", "zmm31")
      "{vmovdqa64 128(%[c]), %%zmm14|vmovdqa64 zmm14, zmmword ptr [%[c]+128]}\n\t"
      "{vmovdqa64 192(%[c]), %%zmm15|vmovdqa64 zmm15, zmmword ptr [%[c]+192]}\n\t"
      RANKQ_DPB("8", "x0", "zmm14", "zmm16") RANKQ_DPB("12", "x0", "zmm15", "zmm17")
      RANKQ_DPB("8", "x1", "zmm14", "zmm18") RANKQ_DPB("12", "x1", "zmm15", "zmm19")
      RANKQ_DPB("8", "x2", "zmm14", "zmm20") RANKQ_DPB("12", "x2", "zmm15", "zmm21")
      RANKQ_DPB("8", "x3", "zmm14", "zmm22") RANKQ_DPB("12", "x3", "zmm15", "zmm23")
      RANKQ_DPB("8", "x4", "zmm14", "zmm24") RANKQ_DPB("12", "x4", "zmm15", "zmm25")
      RANKQ_DPB("8", "x5", "zmm14", "zmm26") RANKQ_DPB("12", "x5", "zmm15", "zmm27")
      RANKQ_DPB("8", "x6", "zmm14", "zmm28") RANKQ_DPB("12", "x6", "zmm15", "zmm29")
      RANKQ_DPB("8", "x7", "zmm14", "zmm30") RANKQ_DPB("12", "x7", "zmm15", "zmm31")
      "{add $256, %[c]|add %[c], 256}\n\t"
      "{add $16, %[ko]|add %[ko], 16}\n\t"
      "jnz 1b\n\t"
      "{vpaddd %%zmm17, %%zmm16, %[d0]|vpaddd %[d0], zmm16, zmm17}\n\t"
      "{vpaddd %%zmm19, %%zmm18, %[d1]|vpaddd %[d1], zmm18, zmm19}\n\t"
      "{vpaddd %%zmm21, %%zmm20, %[d2]|vpaddd %[d2], zmm20, zmm21}\n\t"
      "{vpaddd %%zmm23, %%zmm22, %[d3]|vpaddd %[d3], zmm22, zmm23}\n\t"
      "{vpaddd %%zmm25, %%zmm24, %[d4]|vpaddd %[d4], zmm24, zmm25}\n\t"
      "{vpaddd %%zmm27, %%zmm26, %[d5]|vpaddd %[d5], zmm26, zmm27}\n\t"
      "{vpaddd %%zmm29, %%zmm28, %[d6]|vpaddd %[d6], zmm28, zmm29}\n\t"
      "{vpaddd %%zmm31, %%zmm30, %[d7]|vpaddd %[d7], zmm30, zmm31}\n\t"
      : [d0] "=v"(d[0]), [d1] "=v"(d[1]), [d2] "=v"(d[2]), [d3] "=v"(d[3]), [d4] "=v"(d[4]), [d5] "=v"(d[5]),
        [d6] "=v"(d[6]), [d7] "=v"(d[7]), [c] "+r"(codes), [ko] "+r"(ko)
      : [i0] "v"(init[0]), [i1] "v"(init[1]), [i2] "v"(init[2]), [i3] "v"(init[3]), [i4] "v"(init[4]),
        [i5] "v"(init[5]), [i6] "v"(init[6]), [i7] "v"(init[7]), [x0] "r"(xe[0]), [x1] "r"(xe[1]), [x2] "r"(xe[2]),
        [x3] "r"(xe[3]), [x4] "r"(xe[4]), [x5] "r"(xe[5]), [x6] "r"(xe[6]), [x7] "r"(xe[7])
      : "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23",
        "xmm24", "xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31", "cc", "memory");
}
#undef RANKQ_DPB

// Activation address of token t (of 8, rows x_stride apart) with two bases and two index registers, so the
// folded loop below needs 4 pointer registers for 8 tokens: p = token 0, q = token 3, s = stride, s3 = 3·stride.
#define RANKQ_X0_ATT "(%[p])"
#define RANKQ_X0_INTEL "%[p]"
#define RANKQ_X1_ATT "(%[p],%[s],1)"
#define RANKQ_X1_INTEL "%[p]+%[s]*1"
#define RANKQ_X2_ATT "(%[p],%[s],2)"
#define RANKQ_X2_INTEL "%[p]+%[s]*2"
#define RANKQ_X3_ATT "(%[q])"
#define RANKQ_X3_INTEL "%[q]"
#define RANKQ_X4_ATT "(%[p],%[s],4)"
#define RANKQ_X4_INTEL "%[p]+%[s]*4"
#define RANKQ_X5_ATT "(%[q],%[s],2)"
#define RANKQ_X5_INTEL "%[q]+%[s]*2"
#define RANKQ_X6_ATT "(%[p],%[s3],2)"
#define RANKQ_X6_INTEL "%[p]+%[s3]*2"
#define RANKQ_X7_ATT "(%[q],%[s],4)"
#define RANKQ_X7_INTEL "%[q]+%[s]*4"
// vpdpbusd OFF + address of token T {1to16}, ZC, ZA in both dialects.
#define RANKQ_DPT(T, OFF, ZC, ZA)                                          \
  "{vpdpbusd " OFF RANKQ_X##T##_ATT "%{1to16%}, %%" ZC ", %%" ZA          \
  "|vpdpbusd " ZA ", " ZC ", dword ptr [" RANKQ_X##T##_INTEL "+" OFF "]%{1to16%}}\n\t"
// One 8-K half step (codes already in ZLO / ZHI) for all 8 tokens: chains zmm16 + 2t (low nibbles, K OFF_LO
// .. +3) and zmm17 + 2t (high nibbles, K OFF_HI .. +3).
#define RANKQ_DPT8(OFF_LO, OFF_HI, ZLO, ZHI)                                                            \
  RANKQ_DPT(0, OFF_LO, ZLO, "zmm16") RANKQ_DPT(0, OFF_HI, ZHI, "zmm17") RANKQ_DPT(1, OFF_LO, ZLO, "zmm18") \
  RANKQ_DPT(1, OFF_HI, ZHI, "zmm19") RANKQ_DPT(2, OFF_LO, ZLO, "zmm20") RANKQ_DPT(2, OFF_HI, ZHI, "zmm21") \
  RANKQ_DPT(3, OFF_LO, ZLO, "zmm22") RANKQ_DPT(3, OFF_HI, ZHI, "zmm23") RANKQ_DPT(4, OFF_LO, ZLO, "zmm24") \
  RANKQ_DPT(4, OFF_HI, ZHI, "zmm25") RANKQ_DPT(5, OFF_LO, ZLO, "zmm26") RANKQ_DPT(5, OFF_HI, ZHI, "zmm27") \
  RANKQ_DPT(6, OFF_LO, ZLO, "zmm28") RANKQ_DPT(6, OFF_HI, ZHI, "zmm29") RANKQ_DPT(7, OFF_LO, ZLO, "zmm30") \
  RANKQ_DPT(7, OFF_HI, ZHI, "zmm31")
// Group start for token T: the low chain starts at the folded zero point init[T], the high chain at 0.
#define RANKQ_FOLD_INIT(T, ZLO, ZHI)                                                       \
  "{vpbroadcastd " #T "*4(%[ini]), %%" ZLO "|vpbroadcastd " ZLO ", dword ptr [%[ini]+" #T "*4]}\n\t" \
  "{vpxord %%" ZHI ", %%" ZHI ", %%" ZHI "|vpxord " ZHI ", " ZHI ", " ZHI "}\n\t"
// Group end for token T: out += s · float(lo + hi), the same single-rounding fma as the intrinsic epilogue.
#define RANKQ_FOLD_EPILOGUE(T, ZLO, ZHI)                                                  \
  "{vpaddd %%" ZHI ", %%" ZLO ", %%" ZLO "|vpaddd " ZLO ", " ZLO ", " ZHI "}\n\t"         \
  "{vcvtdq2ps %%" ZLO ", %%" ZLO "|vcvtdq2ps " ZLO ", " ZLO "}\n\t"                      \
  "{vfmadd231ps (%[sc]), %%" ZLO ", %%zmm" #T "|vfmadd231ps zmm" #T ", " ZLO ", zmmword ptr [%[sc]]}\n\t"

/// kFold prefill of 8 tokens over `groups` whole groups of one unpacked tile chunk, epilogues included:
/// for each group g, out[t] += scales[g] · float(init[g][t] + Σ_k codes · x[t][k]) — the per-group int32 dot
/// with the folded zero point, then the same fma as unpacked_token_block, so the result is bit-identical. One asm
/// block per chunk instead of one per group: the per-group setup and epilogue (accumulator init, add, cvt, fma)
/// run between the vpdpbusd streams without leaving the asm, and the 8 float outputs stay in registers across
/// the chunk (GCC spilled them around the per-group asm). `x0` = token 0's activations at the chunk start, token
/// t at x0 + t·x_stride; `init` = 8 int32 per group (−zero_code·Σq); `scales` = 16 f32 per group, groups
/// kFoldScaleStride floats apart (the layout fold_chunk_8x2 shares);
/// steps = group / 16 (≥ 1). Registers: accumulators zmm16-31 (lo / hi chain per token), codes zmm12-15,
/// outputs zmm0-7 (loaded from and stored back to `out`: 8 operands would exceed asm's operand limit).
RANKQ_AVX512_INLINE void fold_chunk_8_tokens(const std::uint8_t* codes, const std::int8_t* x0, std::size_t x_stride,
                                             const std::int32_t* init, const float* scales, std::size_t groups,
                                             std::size_t steps, __m512 (&out)[8]) {
  const std::int8_t* q = x0 + 3 * x_stride;
  const std::size_t s3 = 3 * x_stride;
  std::size_t n;
  __asm__ volatile(  // volatile: the results go through memory (`out`), no output operand is used afterwards
      "{vmovups (%[out]), %%zmm0|vmovups zmm0, zmmword ptr [%[out]]}\n\t"
      "{vmovups 64(%[out]), %%zmm1|vmovups zmm1, zmmword ptr [%[out]+64]}\n\t"
      "{vmovups 128(%[out]), %%zmm2|vmovups zmm2, zmmword ptr [%[out]+128]}\n\t"
      "{vmovups 192(%[out]), %%zmm3|vmovups zmm3, zmmword ptr [%[out]+192]}\n\t"
      "{vmovups 256(%[out]), %%zmm4|vmovups zmm4, zmmword ptr [%[out]+256]}\n\t"
      "{vmovups 320(%[out]), %%zmm5|vmovups zmm5, zmmword ptr [%[out]+320]}\n\t"
      "{vmovups 384(%[out]), %%zmm6|vmovups zmm6, zmmword ptr [%[out]+384]}\n\t"
      "{vmovups 448(%[out]), %%zmm7|vmovups zmm7, zmmword ptr [%[out]+448]}\n\t"
      "2:\n\t"
      RANKQ_FOLD_INIT(0, "zmm16", "zmm17") RANKQ_FOLD_INIT(1, "zmm18", "zmm19")
      RANKQ_FOLD_INIT(2, "zmm20", "zmm21") RANKQ_FOLD_INIT(3, "zmm22", "zmm23")
      RANKQ_FOLD_INIT(4, "zmm24", "zmm25") RANKQ_FOLD_INIT(5, "zmm26", "zmm27")
      RANKQ_FOLD_INIT(6, "zmm28", "zmm29") RANKQ_FOLD_INIT(7, "zmm30", "zmm31")
      "{mov %[steps], %[n]|mov %[n], %[steps]}\n\t"
      "1:\n\t"
      "{vmovdqa64 (%[c]), %%zmm12|vmovdqa64 zmm12, zmmword ptr [%[c]]}\n\t"
      "{vmovdqa64 64(%[c]), %%zmm13|vmovdqa64 zmm13, zmmword ptr [%[c]+64]}\n\t"
      RANKQ_DPT8("0", "4", "zmm12", "zmm13")
      "{vmovdqa64 128(%[c]), %%zmm14|vmovdqa64 zmm14, zmmword ptr [%[c]+128]}\n\t"
      "{vmovdqa64 192(%[c]), %%zmm15|vmovdqa64 zmm15, zmmword ptr [%[c]+192]}\n\t"
      RANKQ_DPT8("8", "12", "zmm14", "zmm15")
      "{add $256, %[c]|add %[c], 256}\n\t"
      "{add $16, %[p]|add %[p], 16}\n\t"
      "{add $16, %[q]|add %[q], 16}\n\t"
      "{dec %[n]|dec %[n]}\n\t"
      "jnz 1b\n\t"
      RANKQ_FOLD_EPILOGUE(0, "zmm16", "zmm17") RANKQ_FOLD_EPILOGUE(1, "zmm18", "zmm19")
      RANKQ_FOLD_EPILOGUE(2, "zmm20", "zmm21") RANKQ_FOLD_EPILOGUE(3, "zmm22", "zmm23")
      RANKQ_FOLD_EPILOGUE(4, "zmm24", "zmm25") RANKQ_FOLD_EPILOGUE(5, "zmm26", "zmm27")
      RANKQ_FOLD_EPILOGUE(6, "zmm28", "zmm29") RANKQ_FOLD_EPILOGUE(7, "zmm30", "zmm31")
      "{add $32, %[ini]|add %[ini], 32}\n\t"
      "{add $128, %[sc]|add %[sc], 128}\n\t"  // kFoldScaleStride floats per group
      "{dec %[g]|dec %[g]}\n\t"
      "jnz 2b\n\t"
      "{vmovups %%zmm0, (%[out])|vmovups zmmword ptr [%[out]], zmm0}\n\t"
      "{vmovups %%zmm1, 64(%[out])|vmovups zmmword ptr [%[out]+64], zmm1}\n\t"
      "{vmovups %%zmm2, 128(%[out])|vmovups zmmword ptr [%[out]+128], zmm2}\n\t"
      "{vmovups %%zmm3, 192(%[out])|vmovups zmmword ptr [%[out]+192], zmm3}\n\t"
      "{vmovups %%zmm4, 256(%[out])|vmovups zmmword ptr [%[out]+256], zmm4}\n\t"
      "{vmovups %%zmm5, 320(%[out])|vmovups zmmword ptr [%[out]+320], zmm5}\n\t"
      "{vmovups %%zmm6, 384(%[out])|vmovups zmmword ptr [%[out]+384], zmm6}\n\t"
      "{vmovups %%zmm7, 448(%[out])|vmovups zmmword ptr [%[out]+448], zmm7}\n\t"
      : [c] "+r"(codes), [p] "+r"(x0), [q] "+r"(q), [ini] "+r"(init), [sc] "+r"(scales), [g] "+r"(groups),
        [n] "=&r"(n)
      : [s] "r"(x_stride), [s3] "r"(s3), [steps] "r"(steps), [out] "r"(out)
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23",
        "xmm24", "xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31", "cc", "memory");
}
#undef RANKQ_FOLD_EPILOGUE
#undef RANKQ_FOLD_INIT
#undef RANKQ_DPT8
#undef RANKQ_DPT

// Two-tile step for token T (one 8-K half, codes of tile A in ZAL / ZAH, tile B in ZBL / ZBH): broadcast the
// token's low- and high-nibble activation words once into ZX0 / ZX1 and feed each to both tiles.
#define RANKQ_PAIR_TOKEN(T, OFF_LO, OFF_HI, ZX0, ZX1, ZACC_A, ZACC_B)                                           \
  "{vpbroadcastd " OFF_LO RANKQ_X##T##_ATT ", %%" ZX0 "|vpbroadcastd " ZX0 ", dword ptr [" RANKQ_X##T##_INTEL "+" \
  OFF_LO "]}\n\t"                                                                                              \
  "{vpbroadcastd " OFF_HI RANKQ_X##T##_ATT ", %%" ZX1 "|vpbroadcastd " ZX1 ", dword ptr [" RANKQ_X##T##_INTEL "+" \
  OFF_HI "]}\n\t"                                                                                              \
  "{vpdpbusd %%" ZX0 ", %%zmm8, %%" ZACC_A "|vpdpbusd " ZACC_A ", zmm8, " ZX0 "}\n\t"                           \
  "{vpdpbusd %%" ZX0 ", %%zmm10, %%" ZACC_B "|vpdpbusd " ZACC_B ", zmm10, " ZX0 "}\n\t"                         \
  "{vpdpbusd %%" ZX1 ", %%zmm9, %%" ZACC_A "|vpdpbusd " ZACC_A ", zmm9, " ZX1 "}\n\t"                           \
  "{vpdpbusd %%" ZX1 ", %%zmm11, %%" ZACC_B "|vpdpbusd " ZACC_B ", zmm11, " ZX1 "}\n\t"
#define RANKQ_PAIR_HALF(CODE_OFF, OFF_LO, OFF_HI)                                                        \
  "{vmovdqa64 " CODE_OFF "(%[ca]), %%zmm8|vmovdqa64 zmm8, zmmword ptr [%[ca]+" CODE_OFF "]}\n\t"           \
  "{vmovdqa64 " CODE_OFF "+64(%[ca]), %%zmm9|vmovdqa64 zmm9, zmmword ptr [%[ca]+" CODE_OFF "+64]}\n\t"     \
  "{vmovdqa64 " CODE_OFF "(%[cb]), %%zmm10|vmovdqa64 zmm10, zmmword ptr [%[cb]+" CODE_OFF "]}\n\t"         \
  "{vmovdqa64 " CODE_OFF "+64(%[cb]), %%zmm11|vmovdqa64 zmm11, zmmword ptr [%[cb]+" CODE_OFF "+64]}\n\t"   \
  RANKQ_PAIR_TOKEN(0, OFF_LO, OFF_HI, "zmm12", "zmm13", "zmm16", "zmm24")                                  \
  RANKQ_PAIR_TOKEN(1, OFF_LO, OFF_HI, "zmm14", "zmm15", "zmm17", "zmm25")                                  \
  RANKQ_PAIR_TOKEN(2, OFF_LO, OFF_HI, "zmm12", "zmm13", "zmm18", "zmm26")                                  \
  RANKQ_PAIR_TOKEN(3, OFF_LO, OFF_HI, "zmm14", "zmm15", "zmm19", "zmm27")                                  \
  RANKQ_PAIR_TOKEN(4, OFF_LO, OFF_HI, "zmm12", "zmm13", "zmm20", "zmm28")                                  \
  RANKQ_PAIR_TOKEN(5, OFF_LO, OFF_HI, "zmm14", "zmm15", "zmm21", "zmm29")                                  \
  RANKQ_PAIR_TOKEN(6, OFF_LO, OFF_HI, "zmm12", "zmm13", "zmm22", "zmm30")                                  \
  RANKQ_PAIR_TOKEN(7, OFF_LO, OFF_HI, "zmm14", "zmm15", "zmm23", "zmm31")
// Group start: both tiles' accumulators of token T start at the folded zero point init[T].
#define RANKQ_PAIR_INIT(T, ZACC_A, ZACC_B)                                                                  \
  "{vpbroadcastd " #T "*4(%[ini]), %%" ZACC_A "|vpbroadcastd " ZACC_A ", dword ptr [%[ini]+" #T "*4]}\n\t" \
  "{vpbroadcastd " #T "*4(%[ini]), %%" ZACC_B "|vpbroadcastd " ZACC_B ", dword ptr [%[ini]+" #T "*4]}\n\t"
// Group end of one (token, tile) output at byte offset OUT_OFF of `out`, scales in ZS: out = s · float(acc) + out
// (vfmadd213ps: one rounding, the same value as the intrinsic fma).
#define RANKQ_PAIR_EPILOGUE(ZACC, ZS, OUT_OFF)                                                               \
  "{vcvtdq2ps %%" ZACC ", %%" ZACC "|vcvtdq2ps " ZACC ", " ZACC "}\n\t"                                       \
  "{vfmadd213ps " OUT_OFF "(%[out]), %%" ZS ", %%" ZACC "|vfmadd213ps " ZACC ", " ZS ", zmmword ptr [%[out]+" \
  OUT_OFF "]}\n\t"                                                                                           \
  "{vmovaps %%" ZACC ", " OUT_OFF "(%[out])|vmovaps zmmword ptr [%[out]+" OUT_OFF "], " ZACC "}\n\t"

/// fold_chunk_8_tokens for two tiles (A, B) at once: each activation word is broadcast once into a register and
/// feeds both tiles, halving the broadcast loads per vpdpbusd (the single-tile loop issues 2.25 loads per 2
/// vpdpbusd, above what the load pipes sustain next to peak vpdpbusd) and the activation reads per tile. One
/// int32 chain per (token, tile): 16 chains in zmm16-31 (A: zmm16 + t, B: zmm24 + t), each with 4 vpdpbusd per
/// 16-K step of 64 — far more issue time than latency. Codes zmm8-11, broadcasts zmm12-15. The 16 outputs live in
/// `out` (64-byte aligned, [token][tile]); per group each is read, fma'd and written once. `scales`: tile A's
/// 16 f32 then tile B's, kFoldScaleStride floats per group. Same per-group integer dot and float operations as
/// fold_chunk_8_tokens, so bit-identical results.
RANKQ_AVX512_INLINE void fold_chunk_8x2(const std::uint8_t* codes_a, const std::uint8_t* codes_b,
                                        const std::int8_t* x0, std::size_t x_stride, const std::int32_t* init,
                                        const float* scales, std::size_t groups, std::size_t steps, float* out) {
  const std::int8_t* q = x0 + 3 * x_stride;
  const std::size_t s3 = 3 * x_stride;
  std::size_t n;
  __asm__ volatile(  // volatile: the results go through memory (`out`), no output operand is used afterwards
      "2:\n\t"
      RANKQ_PAIR_INIT(0, "zmm16", "zmm24") RANKQ_PAIR_INIT(1, "zmm17", "zmm25")
      RANKQ_PAIR_INIT(2, "zmm18", "zmm26") RANKQ_PAIR_INIT(3, "zmm19", "zmm27")
      RANKQ_PAIR_INIT(4, "zmm20", "zmm28") RANKQ_PAIR_INIT(5, "zmm21", "zmm29")
      RANKQ_PAIR_INIT(6, "zmm22", "zmm30") RANKQ_PAIR_INIT(7, "zmm23", "zmm31")
      "{mov %[steps], %[n]|mov %[n], %[steps]}\n\t"
      "1:\n\t"
      RANKQ_PAIR_HALF("0", "0", "4")
      RANKQ_PAIR_HALF("128", "8", "12")
      "{add $256, %[ca]|add %[ca], 256}\n\t"
      "{add $256, %[cb]|add %[cb], 256}\n\t"
      "{add $16, %[p]|add %[p], 16}\n\t"
      "{add $16, %[q]|add %[q], 16}\n\t"
      "{dec %[n]|dec %[n]}\n\t"
      "jnz 1b\n\t"
      "{vmovaps (%[sc]), %%zmm8|vmovaps zmm8, zmmword ptr [%[sc]]}\n\t"
      "{vmovaps 64(%[sc]), %%zmm9|vmovaps zmm9, zmmword ptr [%[sc]+64]}\n\t"
      RANKQ_PAIR_EPILOGUE("zmm16", "zmm8", "0") RANKQ_PAIR_EPILOGUE("zmm24", "zmm9", "64")
      RANKQ_PAIR_EPILOGUE("zmm17", "zmm8", "128") RANKQ_PAIR_EPILOGUE("zmm25", "zmm9", "192")
      RANKQ_PAIR_EPILOGUE("zmm18", "zmm8", "256") RANKQ_PAIR_EPILOGUE("zmm26", "zmm9", "320")
      RANKQ_PAIR_EPILOGUE("zmm19", "zmm8", "384") RANKQ_PAIR_EPILOGUE("zmm27", "zmm9", "448")
      RANKQ_PAIR_EPILOGUE("zmm20", "zmm8", "512") RANKQ_PAIR_EPILOGUE("zmm28", "zmm9", "576")
      RANKQ_PAIR_EPILOGUE("zmm21", "zmm8", "640") RANKQ_PAIR_EPILOGUE("zmm29", "zmm9", "704")
      RANKQ_PAIR_EPILOGUE("zmm22", "zmm8", "768") RANKQ_PAIR_EPILOGUE("zmm30", "zmm9", "832")
      RANKQ_PAIR_EPILOGUE("zmm23", "zmm8", "896") RANKQ_PAIR_EPILOGUE("zmm31", "zmm9", "960")
      "{add $32, %[ini]|add %[ini], 32}\n\t"
      "{add $128, %[sc]|add %[sc], 128}\n\t"  // kFoldScaleStride floats per group
      "{dec %[g]|dec %[g]}\n\t"
      "jnz 2b\n\t"
      : [ca] "+r"(codes_a), [cb] "+r"(codes_b), [p] "+r"(x0), [q] "+r"(q), [ini] "+r"(init), [sc] "+r"(scales),
        [g] "+r"(groups), [n] "=&r"(n)
      : [s] "r"(x_stride), [s3] "r"(s3), [steps] "r"(steps), [out] "r"(out)
      : "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19",
        "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31",
        "cc", "memory");
}
#undef RANKQ_PAIR_EPILOGUE
#undef RANKQ_PAIR_INIT
#undef RANKQ_PAIR_HALF
#undef RANKQ_PAIR_TOKEN
#undef RANKQ_X0_ATT
#undef RANKQ_X0_INTEL
#undef RANKQ_X1_ATT
#undef RANKQ_X1_INTEL
#undef RANKQ_X2_ATT
#undef RANKQ_X2_INTEL
#undef RANKQ_X3_ATT
#undef RANKQ_X3_INTEL
#undef RANKQ_X4_ATT
#undef RANKQ_X4_INTEL
#undef RANKQ_X5_ATT
#undef RANKQ_X5_INTEL
#undef RANKQ_X6_ATT
#undef RANKQ_X6_INTEL
#undef RANKQ_X7_ATT
#undef RANKQ_X7_INTEL
#endif  // RANKQ_AVX512_FOLD_ASM
inline constexpr bool kFoldChunkAsm = RANKQ_AVX512_FOLD_ASM != 0;  ///< fold_chunk_8_tokens exists (GCC)

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

template <bool kFold>
RANKQ_AVX512_INLINE void run_tiles(const W4A8Args& a, std::size_t tile_begin, std::size_t tile_end) {
  if (a.M > kTokenBlock) return run_prefill<kFold>(a, tile_begin, tile_end);
  // M = 1 streams one tile at a time: two interleaved tile streams measured ~15 % slower from DRAM (cold), while
  // for 2-3 tokens the shared broadcasts of the 2-tile block win.
  if (a.M == 1) return panel_tokens<1, kFold>(a, tile_begin, tile_end, 0, 1, 0, a.geo.groups, true, true);
  panel_tokens<kTileBlock, kFold>(a, tile_begin, tile_end, 0, a.M, 0, a.geo.groups, true, true);
}

RANKQ_AVX512_KERNEL void run_w4a8_tiles(const W4A8Args& a, std::size_t tile_begin, std::size_t tile_end) {
  if (a.xqsum)
    run_tiles<true>(a, tile_begin, tile_end);
  else
    run_tiles<false>(a, tile_begin, tile_end);
}

}  // namespace avx512

template <>
inline void w4a8_tiles<KernelPath::avx512_vnni>(const W4A8Args& a, std::size_t tile_begin, std::size_t tile_end) {
  avx512::run_w4a8_tiles(a, tile_begin, tile_end);
}

}  RANKQ_NAMESPACE_END  // namespace rankq::detail
RANKQ_X86_CODE_END
#endif
