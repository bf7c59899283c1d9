// rankq/detail/kernels/stream_prefetch.hpp — the page-ahead hint that lets one thread stream packed weights from
// DRAM at the memory's pace (docs/kernels.md §3, measurements in docs/performance.md).
//
// The hardware prefetchers follow a sequential stream only inside a 4 KiB page: each new page starts cold, and one
// thread's bandwidth drops to what its demand misses alone keep in flight. Touching the first line of the page
// kPageAheadBytes ahead, once per group of packed codes, starts each page's stream early. Measured on the project
// machine (Zen 5, 4 KiB pages), single thread (docs/performance.md, first section): a plain vectorized sum over
// 512 MiB 22–31 GB/s, the same sum with the hint 33–42 GB/s; avx512vnni decode 23–31 GB/s without it, 27–38 GB/s
// with it. Distances of 8–24 KiB measured the same; 4 KiB (the page read next) gains nothing.
#pragma once

#include "rankq/detail/abi.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "rankq/detail/cpu_features.hpp"
#include "rankq/detail/platform.hpp"

RANKQ_NAMESPACE_BEGIN namespace detail {

inline constexpr std::size_t kStreamPageBytes = 4096;   ///< the page size the hardware prefetchers stop at
inline constexpr std::size_t kPageAheadBytes = 16384;  ///< how far ahead of the read position a page is touched
static_assert(kPageAheadBytes % kStreamPageBytes == 0 && kPageAheadBytes >= 2 * kStreamPageBytes,
              "the hint targets a page beyond the next one");

/// Hints the first cache line of the 4 KiB page kPageAheadBytes past `p` into the cache. A hint only: it never
/// faults (the address may lie past the end of the buffer) and changes no result. The address is formed as an
/// integer, so no out-of-range pointer arithmetic happens.
RANKQ_ALWAYS_INLINE void prefetch_page_ahead(const void* p) {
#if RANKQ_GNU_COMPATIBLE
  const std::uintptr_t page =
      (reinterpret_cast<std::uintptr_t>(p) + kPageAheadBytes) & ~static_cast<std::uintptr_t>(kStreamPageBytes - 1);
  __builtin_prefetch(reinterpret_cast<const void*>(page), 0, 3);
#else
  (void)p;
#endif
}

/// Whether the hint helps depends on the microarchitecture (docs/kernels.md §3): on Zen 5 it raised a single
/// thread's stream from 22–31 to 33–42 GB/s, on Zen 3 it made the same read 30 % slower and avx2 decode 2.60–2.90 ms
/// instead of 1.96–2.01 ms. So it is on by default only where it was measured to help: AMD family 0x1A (Zen 5).
inline bool page_ahead_default() {
  const CpuFeatures& f = cpu_features();
  return f.amd && f.family >= 0x1Au;
}

inline std::atomic<bool>& page_ahead_flag() {
  static std::atomic<bool> on{page_ahead_default()};
  return on;
}

/// Hints the cache line at `p` into L1 (read). A hint only: never faults, changes no result.
RANKQ_ALWAYS_INLINE void prefetch_line(const void* p) {
#if RANKQ_GNU_COMPATIBLE
  __builtin_prefetch(p, 0, 3);
#else
  (void)p;
#endif
}

}  RANKQ_NAMESPACE_END  // namespace rankq::detail
