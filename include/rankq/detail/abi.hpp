// rankq/detail/abi.hpp — the instruction-set ABI namespace every rankq declaration lives in (docs/kernels.md §7).
//
// Every header opens `namespace rankq { inline namespace RANKQ_ABI_NAMESPACE {` (RANKQ_NAMESPACE_BEGIN). The
// inner name is derived from the translation unit's own instruction-set flags, so two TUs compiled with
// different -m flags (or one with RANKQ_DISABLE_SIMD) get distinct symbols for every rankq function, kernel
// and type: the linker can never merge an AVX2- or AVX-512-compiled body into code that runs on an older CPU,
// and no inline function has two different definitions under one name (no ODR violation). User code still
// writes `rankq::X`; the inline namespace only shows in mangled names. Passing a rankq object between TUs
// built with different ISA flags is therefore a link error (naming e.g. rankq::isa_x86_64_v3::PackedW4), never
// a silent crash on another CPU.
//
// The key covers the tiers that change code generation of portable C++ in practice: x86-64 psABI levels
// v1 (SSE2) / v2 (SSE4.2 + POPCNT) / AVX / v3 (AVX2 + FMA) / v4 (AVX-512 F/BW/DQ/VL), each with the VNNI
// variant the kernels use; on AArch64 the dot-product, i8mm and SVE extensions. TUs whose flags differ only
// in features outside the key (e.g. -march=znver4 vs -march=icelake-server) share a namespace: build a
// binary's TUs for one target per tier, as docs/kernels.md §7 says.
#pragma once

#if defined(RANKQ_DISABLE_SIMD) && RANKQ_DISABLE_SIMD
#define RANKQ_ABI_SIMD_SUFFIX _nosimd
#else
#define RANKQ_ABI_SIMD_SUFFIX
#endif

#if defined(__x86_64__) || defined(_M_X64)
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512DQ__) && defined(__AVX512VL__)
#if defined(__AVX512VNNI__)
#define RANKQ_ABI_ISA isa_x86_64_v4_vnni
#else
#define RANKQ_ABI_ISA isa_x86_64_v4
#endif
#elif defined(__AVX2__) && defined(__FMA__)
#if defined(__AVXVNNI__)
#define RANKQ_ABI_ISA isa_x86_64_v3_avxvnni
#else
#define RANKQ_ABI_ISA isa_x86_64_v3
#endif
#elif defined(__AVX__)
#define RANKQ_ABI_ISA isa_x86_64_avx
#elif defined(__SSE4_2__) && defined(__POPCNT__)
#define RANKQ_ABI_ISA isa_x86_64_v2
#else
#define RANKQ_ABI_ISA isa_x86_64_v1
#endif
#elif defined(__aarch64__) || defined(_M_ARM64)
#if defined(__ARM_FEATURE_SVE)
#define RANKQ_ABI_ISA isa_aarch64_sve
#elif defined(__ARM_FEATURE_MATMUL_INT8)
#define RANKQ_ABI_ISA isa_aarch64_i8mm
#elif defined(__ARM_FEATURE_DOTPROD)
#define RANKQ_ABI_ISA isa_aarch64_dotprod
#else
#define RANKQ_ABI_ISA isa_aarch64
#endif
#else
#define RANKQ_ABI_ISA isa_generic
#endif

#define RANKQ_ABI_CONCAT_(a, b) a##b
#define RANKQ_ABI_CONCAT(a, b) RANKQ_ABI_CONCAT_(a, b)
/// The inline namespace of this translation unit's rankq declarations (e.g. isa_x86_64_v3 for -mavx2 -mfma).
#define RANKQ_ABI_NAMESPACE RANKQ_ABI_CONCAT(RANKQ_ABI_ISA, RANKQ_ABI_SIMD_SUFFIX)

#define RANKQ_NAMESPACE_BEGIN namespace rankq { inline namespace RANKQ_ABI_NAMESPACE {
#define RANKQ_NAMESPACE_END } }

namespace rankq {
inline namespace RANKQ_ABI_NAMESPACE {
/// The ABI namespace's name as a string, for diagnostics and tests.
inline constexpr const char* abi_namespace_name() {
#define RANKQ_ABI_STR_(x) #x
#define RANKQ_ABI_STR(x) RANKQ_ABI_STR_(x)
  return RANKQ_ABI_STR(RANKQ_ABI_NAMESPACE);
#undef RANKQ_ABI_STR
#undef RANKQ_ABI_STR_
}
}  // namespace RANKQ_ABI_NAMESPACE
}  // namespace rankq
