// rankq/detail/kernels/w4a8_avx512_fold_asm.hpp — hand-scheduled AVX-512 VNNI loops of the avx512vnni prefill
// (GCC only), used by w4a8_avx512_prefill.hpp where they measurably win over the intrinsics (docs/performance.md).
//
// Contract of every loop here (details at each function):
//  * Registers: accumulators zmm16-31, codes zmm8-15, outputs zmm0-7 (fold_chunk_8_tokens) or memory (8x2); all
//    are declared clobbered, so the compiler keeps nothing there across the asm.
//  * Inputs: unpacked codes (per 8 K: 64-byte low-nibble operand then the high-nibble one, 64-byte aligned, as
//    unpack_tile_chunk writes them); activations at x + t·x_stride, read 4 bytes per vpdpbusd {1to16}, never
//    past the segment / chunk end; `init`: −zero_code·Σq per (group, token); `scales`: f32, kFoldScaleStride
//    floats per group.
//  * Outputs: the int32 dots (dot_8_tokens) or out += s·float(dot) per group with one rounding (the fold loops),
//    bit-identical to the intrinsic epilogue of unpacked_token_block.
//  * Both assembler dialects (-masm=att / intel) are written out.
#pragma once

#include "rankq/detail/abi.hpp"

#include <cstddef>
#include <cstdint>

#include "rankq/detail/x86_targets.hpp"
#include "rankq/detail/kernels/w4a8_layout.hpp"

#if RANKQ_X86_PATHS
// Clang allocates the intrinsics' registers well by itself and has no asm path: everything that calls these
// loops is compiled only under this macro, so no Clang build contains a function that silently does nothing.
#if defined(__GNUC__) && !defined(__clang__)
#define RANKQ_AVX512_FOLD_ASM 1
#else
#define RANKQ_AVX512_FOLD_ASM 0
#endif

RANKQ_X86_CODE_BEGIN
RANKQ_NAMESPACE_BEGIN namespace detail::avx512 {

/// Floats per group in the f32 scale scratch of the folded prefill: tile A's 16 scales, then tile B's (unused
/// when a tile runs alone). The asm loops advance by this many floats (128 bytes) per group.
inline constexpr std::size_t kFoldScaleStride = 2 * kTileRows;
static_assert(kFoldScaleStride * sizeof(float) == 128, "fold_chunk_8_tokens / fold_chunk_8x2 hard-code 128 bytes");

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

}  RANKQ_NAMESPACE_END  // namespace rankq::detail::avx512
RANKQ_X86_CODE_END
#endif
