// rankq/kernels/kernel_path.hpp — the instruction-set paths of rankq's kernels, which are compiled into this binary,
// and which the running CPU supports. How an engine opts in: docs/kernels.md §4.
#pragma once

#include "rankq/detail/abi.hpp"

#include <cstdint>
#include <string>
#include <vector>

#include "rankq/detail/cpu_features.hpp"
#include "rankq/detail/kernels/stream_prefetch.hpp"
#include "rankq/detail/platform.hpp"
#include "rankq/error.hpp"

RANKQ_NAMESPACE_BEGIN

/// Kernel paths, in increasing order of preference within an architecture.
enum class KernelPath : std::uint8_t {
  scalar = 0,       ///< portable C++, the packed-layout reference
  avx2 = 1,         ///< AVX2 + FMA + F16C: vpmaddubsw / vpmaddwd on ymm
  avx_vnni = 2,     ///< AVX-VNNI: vpdpbusd on ymm
  avx512_vnni = 3,  ///< AVX-512 BW/VL + VNNI: vpdpbusd on zmm
  neon = 4,         ///< AArch64 NEON without the dot-product extension
  neon_dotprod = 5, ///< AArch64 NEON with sdot (armv8.2-a+dotprod)
};

inline const char* to_string(KernelPath p) {
  switch (p) {
    case KernelPath::scalar: return "scalar";
    case KernelPath::avx2: return "avx2";
    case KernelPath::avx_vnni: return "avxvnni";
    case KernelPath::avx512_vnni: return "avx512vnni";
    case KernelPath::neon: return "neon";
    case KernelPath::neon_dotprod: return "neondot";
  }
  return "unknown";
}

/// Parses "scalar", "avx2", "avxvnni", "avx512vnni", "neon", "neondot".
inline KernelPath parse_kernel_path(const std::string& s) {
  for (KernelPath p : {KernelPath::scalar, KernelPath::avx2, KernelPath::avx_vnni, KernelPath::avx512_vnni,
                       KernelPath::neon, KernelPath::neon_dotprod})
    if (s == to_string(p)) return p;
  detail::throw_argument("parse_kernel_path", "s",
                         "= '" + s + "': not one of scalar, avx2, avxvnni, avx512vnni, neon, neondot");
}

/// Is the path's code compiled into this binary? x86 paths use per-function target attributes, so they are
/// compiled whenever SIMD is enabled on x86-64 with GCC/Clang, whatever the -m flags.
constexpr bool path_compiled(KernelPath p) {
  switch (p) {
    case KernelPath::scalar: return true;
    case KernelPath::avx2:
    case KernelPath::avx_vnni:
    case KernelPath::avx512_vnni: return RANKQ_X86_PATHS != 0;
    case KernelPath::neon: return RANKQ_NEON_PATHS != 0;
    case KernelPath::neon_dotprod: return RANKQ_NEON_DOTPROD_PATH != 0;
  }
  return false;
}

/// Compiled in and supported by the CPU this process runs on.
inline bool path_supported(KernelPath p) {
  if (!path_compiled(p)) return false;
  const auto& f = detail::cpu_features();
  switch (p) {
    case KernelPath::scalar: return true;
    case KernelPath::avx2: return f.avx2;
    case KernelPath::avx_vnni: return f.avx_vnni;
    case KernelPath::avx512_vnni: return f.avx512_vnni;
    case KernelPath::neon: return f.neon;
    case KernelPath::neon_dotprod: return f.neon_dotprod;
  }
  return false;
}

/// The best path the translation unit's own compiler flags guarantee (no run-time check needed). Not a default
/// anywhere: options and layers default to best_supported_path(), so ordinary flags still get SIMD kernels.
constexpr KernelPath compiled_default_path() {
#if RANKQ_COMPILED_AVX512VNNI
  return KernelPath::avx512_vnni;
#elif RANKQ_COMPILED_AVXVNNI
  return KernelPath::avx_vnni;
#elif RANKQ_COMPILED_AVX2
  return KernelPath::avx2;
#elif RANKQ_COMPILED_NEON_DOTPROD
  return KernelPath::neon_dotprod;
#elif RANKQ_NEON_PATHS
  return KernelPath::neon;
#else
  return KernelPath::scalar;
#endif
}

/// Every path usable here, best last.
inline std::vector<KernelPath> supported_paths() {
  std::vector<KernelPath> out;
  for (KernelPath p : {KernelPath::scalar, KernelPath::neon, KernelPath::neon_dotprod, KernelPath::avx2,
                       KernelPath::avx_vnni, KernelPath::avx512_vnni})
    if (path_supported(p)) out.push_back(p);
  return out;
}

namespace detail {
inline KernelPath detect_best_path() {
  KernelPath best = KernelPath::scalar;
  for (KernelPath p : {KernelPath::neon, KernelPath::neon_dotprod, KernelPath::avx2, KernelPath::avx_vnni,
                       KernelPath::avx512_vnni})
    if (path_supported(p)) best = p;
  return best;
}
}  // namespace detail

/// The best path the running CPU supports among those compiled in: the default of every options object and
/// prepared layer (run-time dispatch). Resolved once per process (CPUID/XGETBV or HWCAP), then a cached load;
/// never allocates.
inline KernelPath best_supported_path() {
  static const KernelPath best = detail::detect_best_path();
  return best;
}

/// The page-ahead prefetch hint of the decode kernels (docs/kernels.md §3): whether it helps depends on the
/// microarchitecture, so it is on by default only where it was measured to (AMD Zen 5; it cost 30 % on Zen 3).
/// An engine that measured its own machine (the benchmarks' memory_read_page_ahead row against memory_read, or
/// the decode rows with and without it) may switch it. It changes no result; it takes effect at the next call.
inline bool page_ahead_hint() { return detail::page_ahead_flag().load(std::memory_order_relaxed); }
inline void set_page_ahead_hint(bool on) { detail::page_ahead_flag().store(on, std::memory_order_relaxed); }

namespace detail {
inline void check_path(KernelPath p, const char* fn, const char* argument = "options.path") {
  if (!path_compiled(p)) throw_argument(fn, argument, std::string("= ") + to_string(p) + ": not compiled into this binary");
  if (!path_supported(p)) throw_argument(fn, argument, std::string("= ") + to_string(p) + ": not supported by this CPU");
}
}  // namespace detail

RANKQ_NAMESPACE_END  // namespace rankq
