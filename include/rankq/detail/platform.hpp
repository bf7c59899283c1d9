// rankq/detail/platform.hpp — platform macros, always defined to 0 or 1 (test them with #if; we build with -Wundef).
#pragma once

#if defined(RANKQ_DISABLE_SIMD) && RANKQ_DISABLE_SIMD
#define RANKQ_SIMD_DISABLED 1
#else
#define RANKQ_SIMD_DISABLED 0
#endif

#if defined(__x86_64__) || defined(_M_X64)
#define RANKQ_ARCH_X86_64 1
#else
#define RANKQ_ARCH_X86_64 0
#endif

#if defined(__aarch64__) || defined(_M_ARM64)
#define RANKQ_ARCH_AARCH64 1
#else
#define RANKQ_ARCH_AARCH64 0
#endif

#if defined(__GNUC__) || defined(__clang__)
#define RANKQ_GNU_COMPATIBLE 1
#else
#define RANKQ_GNU_COMPATIBLE 0
#endif

// x86 paths are compiled with per-function target attributes, so every path can be compiled into one
// binary regardless of the consumer's -m flags and picked at run time.
#if RANKQ_ARCH_X86_64 && RANKQ_GNU_COMPATIBLE && !RANKQ_SIMD_DISABLED
#define RANKQ_X86_PATHS 1
#else
#define RANKQ_X86_PATHS 0
#endif

// NEON is baseline on AArch64. The dot-product path is compiled into every AArch64 GCC/Clang build and picked
// at run time (HWCAP_ASIMDDP): in a TU without +dotprod its one sdot instruction is emitted through inline
// assembly (neon_primitives.hpp), so no -march flag is needed for it.
#if RANKQ_ARCH_AARCH64 && !RANKQ_SIMD_DISABLED
#define RANKQ_NEON_PATHS 1
#else
#define RANKQ_NEON_PATHS 0
#endif
#if RANKQ_NEON_PATHS && (defined(__ARM_FEATURE_DOTPROD) || RANKQ_GNU_COMPATIBLE)
#define RANKQ_NEON_DOTPROD_PATH 1
#else
#define RANKQ_NEON_DOTPROD_PATH 0
#endif
#if RANKQ_NEON_PATHS && defined(__ARM_FEATURE_DOTPROD)
#define RANKQ_COMPILED_NEON_DOTPROD 1
#else
#define RANKQ_COMPILED_NEON_DOTPROD 0
#endif

// Compile-time ISA of the consumer's translation unit (what the default path uses).
#if RANKQ_X86_PATHS && defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__)
#define RANKQ_COMPILED_AVX512VNNI 1
#else
#define RANKQ_COMPILED_AVX512VNNI 0
#endif
#if RANKQ_X86_PATHS && defined(__AVXVNNI__) && defined(__AVX2__)
#define RANKQ_COMPILED_AVXVNNI 1
#else
#define RANKQ_COMPILED_AVXVNNI 0
#endif
#if RANKQ_X86_PATHS && defined(__AVX2__) && defined(__FMA__)
#define RANKQ_COMPILED_AVX2 1
#else
#define RANKQ_COMPILED_AVX2 0
#endif

#if RANKQ_GNU_COMPATIBLE
#define RANKQ_ALWAYS_INLINE inline __attribute__((always_inline))
#define RANKQ_RESTRICT __restrict__
#else
#define RANKQ_ALWAYS_INLINE inline
#define RANKQ_RESTRICT
#endif
