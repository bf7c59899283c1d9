// rankq/formats/matrix.hpp — non-owning row-major matrix views (pointer + rows + cols + row stride) and a
// 64-byte aligned owning buffer. Engines pass their own memory through views; rankq never copies it. Weight views
// may hold float, bf16_t or f16_t elements (formats/half.hpp); row_as_float converts one row.
#pragma once

#include "rankq/detail/abi.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <type_traits>
#include <utility>

#include "rankq/error.hpp"
#include "rankq/formats/half.hpp"

RANKQ_NAMESPACE_BEGIN

/// Row-major view: element (r, c) is data[r * ld + c]; ld >= cols.
template <typename T>
struct MatrixView {
  T* data = nullptr;
  std::size_t rows = 0;
  std::size_t cols = 0;
  std::size_t ld = 0;  ///< row stride in elements

  MatrixView() = default;
  MatrixView(T* d, std::size_t r, std::size_t c) : data(d), rows(r), cols(c), ld(c) {}
  MatrixView(T* d, std::size_t r, std::size_t c, std::size_t stride) : data(d), rows(r), cols(c), ld(stride) {}
  template <typename U, typename = std::enable_if_t<std::is_same_v<const U, T> && !std::is_same_v<U, T>>>
  MatrixView(const MatrixView<U>& o) : data(o.data), rows(o.rows), cols(o.cols), ld(o.ld) {}  // NOLINT: T -> const T

  T& operator()(std::size_t r, std::size_t c) const { return data[r * ld + c]; }
  T* row(std::size_t r) const { return data + r * ld; }
  bool empty() const { return rows == 0 || cols == 0; }
};

/// Row r of a weight view (float, bf16_t or f16_t elements) as floats: out[c] = float(v(r, c)) for c < v.cols,
/// exact. How the quantizers read BF16/F16 weights: one row at a time, never the whole matrix.
template <typename T>
void row_as_float(MatrixView<T> v, std::size_t r, float* out) {
  static_assert(is_weight_element_v<T>, "row_as_float: elements must be float, bf16_t or f16_t");
  const T* row = v.row(r);
  for (std::size_t c = 0; c < v.cols; ++c) out[c] = static_cast<float>(row[c]);
}

namespace detail {
/// Row r of a weight view as floats without a copy when the elements are float (the row itself), otherwise
/// converted into `buffer` (v.cols floats; unused for float).
template <typename T>
const float* float_row(MatrixView<T> v, std::size_t r, float* buffer) {
  if constexpr (std::is_same_v<std::remove_const_t<T>, float>) {
    (void)buffer;
    return v.row(r);
  } else {
    row_as_float(v, r, buffer);
    return buffer;
  }
}

/// Size of the row buffer float_row needs: 0 for float elements, cols otherwise.
template <typename T>
std::size_t float_row_buffer_size(const MatrixView<T>& v) {
  return std::is_same_v<std::remove_const_t<T>, float> ? 0 : v.cols;
}

/// Validates a view: non-zero sizes, stride >= cols, non-null data.
template <typename T>
void check_view(const MatrixView<T>& v, const char* function, const char* argument) {
  if (v.rows == 0 || v.cols == 0)
    throw_argument(function, argument,
                   "has shape " + std::to_string(v.rows) + "x" + std::to_string(v.cols) + ": dimensions must be non-zero");
  if (v.ld < v.cols)
    throw_argument(function, argument,
                   "has row stride " + std::to_string(v.ld) + " < cols " + std::to_string(v.cols));
  if (v.data == nullptr) throw_argument(function, argument, "is a null pointer with a non-zero size");
}
}  // namespace detail

inline constexpr std::size_t kBufferAlignment = 64;  ///< packed buffers are aligned to a cache line

/// 64-byte aligned array of trivially copyable T: owning and zero-initialised (resize), or borrowed (borrow:
/// a read-only view of caller memory, e.g. a mapped model file, that is never freed or written). A copy is
/// always an owning deep copy; a move keeps ownership as it was.
template <typename T>
class AlignedBuffer {
  static_assert(std::is_trivially_copyable_v<T>, "AlignedBuffer holds trivially copyable types only");

 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(std::size_t n) { resize(n); }
  AlignedBuffer(const AlignedBuffer& o) : AlignedBuffer(o.size_) {
    if (size_) std::memcpy(data_, o.data_, size_ * sizeof(T));
  }
  AlignedBuffer(AlignedBuffer&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)), owned_(std::exchange(o.owned_, true)) {}
  AlignedBuffer& operator=(AlignedBuffer o) noexcept {
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    std::swap(owned_, o.owned_);
    return *this;
  }

  /// A non-owning view of n elements at `data`, which must be 64-byte aligned and outlive the buffer (and its
  /// moves). The memory must not be written through the view: it is typically a read-only mapping.
  static AlignedBuffer borrow(const T* data, std::size_t n) {
    if (n != 0 && (data == nullptr || reinterpret_cast<std::uintptr_t>(data) % kBufferAlignment != 0))
      detail::throw_argument("AlignedBuffer::borrow", "data", "is null or not 64-byte aligned");
    AlignedBuffer b;
    b.data_ = n == 0 ? nullptr : const_cast<T*>(data);
    b.size_ = n;
    b.owned_ = false;
    return b;
  }
  /// False for a borrowed view (borrow), true otherwise.
  bool owns_data() const { return owned_; }
  ~AlignedBuffer() { release(); }

  /// Discards the contents and allocates n zeroed elements.
  void resize(std::size_t n) {
    release();
    if (n == 0) return;
    if (n > (SIZE_MAX - kBufferAlignment) / sizeof(T)) throw std::bad_alloc();
    std::size_t bytes = (n * sizeof(T) + kBufferAlignment - 1) / kBufferAlignment * kBufferAlignment;
    data_ = static_cast<T*>(std::aligned_alloc(kBufferAlignment, bytes));
    if (!data_) throw std::bad_alloc();
    owned_ = true;
    std::memset(static_cast<void*>(data_), 0, bytes);
    size_ = n;
  }

  T* data() { return data_; }
  const T* data() const { return data_; }
  std::size_t size() const { return size_; }
  std::size_t size_bytes() const { return size_ * sizeof(T); }
  bool empty() const { return size_ == 0; }
  T& operator[](std::size_t i) { return data_[i]; }
  const T& operator[](std::size_t i) const { return data_[i]; }
  T* begin() { return data_; }
  T* end() { return data_ + size_; }
  const T* begin() const { return data_; }
  const T* end() const { return data_ + size_; }

 private:
  void release() {
    if (owned_) std::free(data_);
    data_ = nullptr;
    size_ = 0;
    owned_ = true;
  }
  T* data_ = nullptr;
  std::size_t size_ = 0;
  bool owned_ = true;
};

RANKQ_NAMESPACE_END  // namespace rankq
