// rankq/detail/scratch_buffer.hpp — an uninitialised work array for the quantization algorithms' large
// temporaries (LQER's scaled error: N·K floats, 180 MB for an 11008 x 4096 layer), backed by transparent huge
// pages on Linux when it is large.
//
// Why: such a buffer is written once and read a few times, so its cost is dominated by the first touch of each
// page. On the virtual machines we measured, one 4 KiB page fault costs ~11 µs: first-touching 180 MB took
// 0.52 s, against 0.02 s for the same bytes in 2 MiB pages (docs/lqer.md §8). std::vector would also zero the
// array first, which is a second full pass. The buffer is aligned to 2 MiB and advised with
// madvise(MADV_HUGEPAGE), which only asks: with transparent huge pages "never" it is an ordinary allocation.
#pragma once

#include "rankq/detail/abi.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <type_traits>
#include <utility>

#if defined(__linux__)
#include <sys/mman.h>
#endif

RANKQ_NAMESPACE_BEGIN namespace detail {

template <typename T>
class ScratchBuffer {
  static_assert(std::is_trivially_copyable_v<T> && std::is_trivially_destructible_v<T>,
                "ScratchBuffer holds trivial types only (its elements are never constructed)");

 public:
  static constexpr std::size_t kHugePage = std::size_t(2) << 20;          ///< x86-64 / AArch64 (4 KiB granule) THP size
  static constexpr std::size_t kHugePageThreshold = std::size_t(4) << 20;  ///< smaller arrays: plain 64-byte alignment

  ScratchBuffer() = default;
  /// n elements, uninitialised. Throws std::bad_alloc.
  explicit ScratchBuffer(std::size_t n) {
    if (n == 0) return;
    if (n > (SIZE_MAX - kHugePage) / sizeof(T)) throw std::bad_alloc();
    const std::size_t bytes = n * sizeof(T);
    const std::size_t alignment = bytes >= kHugePageThreshold ? kHugePage : 64;
    const std::size_t rounded = (bytes + alignment - 1) / alignment * alignment;  // aligned_alloc's contract
    data_ = static_cast<T*>(std::aligned_alloc(alignment, rounded));
    if (!data_) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (alignment == kHugePage) (void)madvise(static_cast<void*>(data_), rounded, MADV_HUGEPAGE);  // advice only
#endif
    size_ = n;
  }
  ScratchBuffer(const ScratchBuffer&) = delete;
  ScratchBuffer& operator=(const ScratchBuffer&) = delete;
  ScratchBuffer(ScratchBuffer&& o) noexcept : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  ScratchBuffer& operator=(ScratchBuffer&& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    return *this;
  }
  ~ScratchBuffer() { std::free(data_); }

  T* data() { return data_; }
  const T* data() const { return data_; }
  std::size_t size() const { return size_; }

 private:
  T* data_ = nullptr;
  std::size_t size_ = 0;
};

}  RANKQ_NAMESPACE_END  // namespace rankq::detail
