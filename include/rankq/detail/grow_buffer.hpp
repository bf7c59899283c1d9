// rankq/detail/grow_buffer.hpp — an aligned scratch array that only grows (the kernels' reusable buffers).
#pragma once

#include "rankq/detail/abi.hpp"

#include <cstddef>

#include "rankq/formats/matrix.hpp"

RANKQ_NAMESPACE_BEGIN namespace detail {

/// An aligned array that only ever grows: get(n) reallocates (contents lost) only when n exceeds what it has.
template <typename T>
class GrowBuffer {
 public:
  T* get(std::size_t n) {
    if (n > buf_.size()) buf_.resize(n);
    return buf_.data();
  }
  std::size_t capacity() const { return buf_.size(); }
  std::size_t capacity_bytes() const { return buf_.size_bytes(); }

 private:
  AlignedBuffer<T> buf_;
};

}  RANKQ_NAMESPACE_END  // namespace rankq::detail
