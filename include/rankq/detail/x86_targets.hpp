// rankq/detail/x86_targets.hpp — function-level target attributes for the x86 paths (no global -m flags needed).
//
// Rules for per-ISA code (docs/kernels.md §7):
//  * Everything a path calls lives in its own namespace (rankq::detail::avx2, ::avx_vnni, ::avx512) and carries
//    that path's target attribute, so no two differently compiled bodies ever share a symbol.
//  * Small helpers are RANKQ_<ISA>_INLINE (always_inline): they never exist out of line, so the linker has
//    nothing to merge. Kernel drivers are RANKQ_<ISA>_KERNEL (noinline): one out-of-line body per path, never
//    inlined into a caller compiled with other flags.
//  * The attributes add to the translation unit's own flags, so a -march=native TU may compile the avx2 path
//    with more features than AVX2; a binary that runs on older CPUs must not build any TU with -march above
//    its oldest target (see docs/kernels.md §7).
#pragma once

#include "rankq/detail/platform.hpp"

#if RANKQ_X86_PATHS
#include <immintrin.h>

#define RANKQ_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#define RANKQ_TARGET_AVXVNNI __attribute__((target("avx2,fma,f16c,avxvnni")))
#define RANKQ_TARGET_AVX512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))

#define RANKQ_AVX2_INLINE inline __attribute__((always_inline)) RANKQ_TARGET_AVX2
#define RANKQ_AVXVNNI_INLINE inline __attribute__((always_inline)) RANKQ_TARGET_AVXVNNI
#define RANKQ_AVX512_INLINE inline __attribute__((always_inline)) RANKQ_TARGET_AVX512

#define RANKQ_AVX2_KERNEL inline __attribute__((noinline)) RANKQ_TARGET_AVX2
#define RANKQ_AVXVNNI_KERNEL inline __attribute__((noinline)) RANKQ_TARGET_AVXVNNI
#define RANKQ_AVX512_KERNEL inline __attribute__((noinline)) RANKQ_TARGET_AVX512

// GCC 12 reports its own intrinsics' `__m512 __Y = __Y` (_mm512_undefined_*) as (maybe-)uninitialized once they
// are inlined into a target-attribute function; per-ISA headers wrap their code in these to silence that only.
#if defined(__GNUC__) && !defined(__clang__)
#define RANKQ_X86_CODE_BEGIN                                       \
  _Pragma("GCC diagnostic push")                                   \
  _Pragma("GCC diagnostic ignored \"-Wmaybe-uninitialized\"") \
  _Pragma("GCC diagnostic ignored \"-Wuninitialized\"")
#define RANKQ_X86_CODE_END _Pragma("GCC diagnostic pop")
#else
#define RANKQ_X86_CODE_BEGIN
#define RANKQ_X86_CODE_END
#endif
#endif
