// rankq/detail/cpu_features.hpp — run-time CPU feature detection (CPUID + XGETBV on x86, HWCAP on AArch64).
#pragma once

#include "rankq/detail/abi.hpp"

#include "rankq/detail/platform.hpp"

#if RANKQ_ARCH_X86_64 && RANKQ_GNU_COMPATIBLE
#include <cpuid.h>
#endif
#if RANKQ_ARCH_AARCH64 && defined(__linux__)
#include <sys/auxv.h>
#endif

RANKQ_NAMESPACE_BEGIN namespace detail {

struct CpuFeatures {
  bool avx2 = false;         ///< AVX2 + FMA + F16C, OS saves ymm state
  bool avx_vnni = false;     ///< AVX-VNNI (VEX vpdpbusd on ymm)
  bool avx512_vnni = false;  ///< AVX-512 F/BW/VL/DQ + VNNI, OS saves zmm state
  bool neon = false;
  bool neon_dotprod = false;
  bool amd = false;         ///< x86 vendor "AuthenticAMD"
  unsigned family = 0;      ///< x86 display family (base + extended), e.g. 0x19 Zen 3/4, 0x1A Zen 5
  unsigned model = 0;       ///< x86 display model
};

inline CpuFeatures detect_cpu_features() {
  CpuFeatures f;
#if RANKQ_ARCH_X86_64 && RANKQ_GNU_COMPATIBLE
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(0, &a, &b, &c, &d)) return f;
  f.amd = b == 0x68747541u && d == 0x69746E65u && c == 0x444D4163u;  // "Auth" "enti" "cAMD"
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const unsigned base_family = (a >> 8) & 0xFu, base_model = (a >> 4) & 0xFu;
  f.family = base_family == 0xFu ? base_family + ((a >> 20) & 0xFFu) : base_family;
  f.model = base_family == 0xFu || base_family == 0x6u ? base_model | (((a >> 16) & 0xFu) << 4) : base_model;
  const bool fma = c & (1u << 12), osxsave = c & (1u << 27), avx = c & (1u << 28), f16c = c & (1u << 29);
  if (!osxsave || !avx) return f;
  unsigned xcr0_lo = 0, xcr0_hi = 0;
  __asm__("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
  const bool ymm_state = (xcr0_lo & 0x6u) == 0x6u;
  const bool zmm_state = (xcr0_lo & 0xE6u) == 0xE6u;
  if (!ymm_state || __get_cpuid_max(0, nullptr) < 7) return f;
  __cpuid_count(7, 0, a, b, c, d);
  const bool avx2 = b & (1u << 5), avx512f = b & (1u << 16), avx512dq = b & (1u << 17), avx512bw = b & (1u << 30),
             avx512vl = b & (1u << 31), avx512vnni = c & (1u << 11);
  __cpuid_count(7, 1, a, b, c, d);
  const bool avxvnni = a & (1u << 4);
  f.avx2 = avx2 && fma && f16c;
  f.avx_vnni = f.avx2 && avxvnni;
  f.avx512_vnni = f.avx2 && zmm_state && avx512f && avx512dq && avx512bw && avx512vl && avx512vnni;
#elif RANKQ_ARCH_AARCH64
  f.neon = true;
#if defined(__linux__)
  f.neon_dotprod = (getauxval(AT_HWCAP) & (1ul << 20)) != 0;  // HWCAP_ASIMDDP
#endif
#endif
  return f;
}

inline const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect_cpu_features();
  return f;
}

}  RANKQ_NAMESPACE_END  // namespace rankq::detail
