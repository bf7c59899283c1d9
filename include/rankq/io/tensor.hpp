// rankq/io/tensor.hpp — types shared by the model-file readers: element types, a raw tensor, F32/F16/BF16 to
// float conversion, and ByteReader, the bounds-checked little-endian reader every parser is built on.
#pragma once

#include "rankq/detail/abi.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "rankq/error.hpp"
#include "rankq/formats/half.hpp"
#include "rankq/io/detail/checked.hpp"

RANKQ_NAMESPACE_BEGIN namespace io {

/// Element type of a raw tensor. The names (dtype_name) are the safetensors spellings.
enum class DType : std::uint8_t {
  f32, f16, bf16, f64,       // floating point
  i8, u8, i16, u16, i32, u32, i64, u64,
  boolean,                   // one byte per element
  f8_e4m3, f8_e5m2,          // 8-bit floats, carried as raw bytes
};

inline constexpr DType kAllDTypes[] = {DType::f32, DType::f16, DType::bf16, DType::f64, DType::i8,
                                       DType::u8,  DType::i16, DType::u16,  DType::i32, DType::u32,
                                       DType::i64, DType::u64, DType::boolean, DType::f8_e4m3, DType::f8_e5m2};

/// Bytes per element.
inline std::size_t dtype_size(DType t) {
  switch (t) {
    case DType::f64: case DType::i64: case DType::u64: return 8;
    case DType::f32: case DType::i32: case DType::u32: return 4;
    case DType::f16: case DType::bf16: case DType::i16: case DType::u16: return 2;
    case DType::i8: case DType::u8: case DType::boolean: case DType::f8_e4m3: case DType::f8_e5m2: return 1;
  }
  rankq::detail::throw_argument("io::dtype_size", "t", "is not a valid DType");
}

/// "F32", "F16", "BF16", "F64", "I8", "U8", "I16", "U16", "I32", "U32", "I64", "U64", "BOOL", "F8_E4M3", "F8_E5M2".
inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "F32";
    case DType::f16: return "F16";
    case DType::bf16: return "BF16";
    case DType::f64: return "F64";
    case DType::i8: return "I8";
    case DType::u8: return "U8";
    case DType::i16: return "I16";
    case DType::u16: return "U16";
    case DType::i32: return "I32";
    case DType::u32: return "U32";
    case DType::i64: return "I64";
    case DType::u64: return "U64";
    case DType::boolean: return "BOOL";
    case DType::f8_e4m3: return "F8_E4M3";
    case DType::f8_e5m2: return "F8_E5M2";
  }
  rankq::detail::throw_argument("io::dtype_name", "t", "is not a valid DType");
}

/// Inverse of dtype_name (exact, case-sensitive); nullopt for an unknown name.
inline std::optional<DType> dtype_from_name(std::string_view name) {
  for (DType t : kAllDTypes)
    if (name == dtype_name(t)) return t;
  return std::nullopt;
}

inline bool is_float_dtype(DType t) { return t == DType::f32 || t == DType::f16 || t == DType::bf16; }

/// A tensor as stored in a file: element type, shape (outermost first; shape[0] = rows of a matrix) and the
/// little-endian element bytes, row-major. An empty shape is a scalar (one element).
struct RawTensor {
  DType dtype = DType::f32;
  std::vector<std::uint64_t> shape;
  std::vector<std::uint8_t> bytes;

  /// Product of the shape; throws rankq::invalid_argument if it overflows 64 bits.
  std::uint64_t element_count() const {
    std::uint64_t n = 0;
    if (!detail::product_ok(shape, std::numeric_limits<std::uint64_t>::max(), n))
      rankq::detail::throw_argument("io::RawTensor::element_count", "shape", "has an element count that overflows 64 bits");
    return n;
  }
};

/// Throws rankq::invalid_argument unless bytes.size() == element_count() * dtype_size(dtype).
inline void check_raw_tensor(const RawTensor& t, const char* function, const char* argument) {
  std::uint64_t n = 0, bytes = 0;
  if (!detail::product_ok(t.shape, std::numeric_limits<std::uint64_t>::max(), n) ||
      !detail::mul_ok(n, dtype_size(t.dtype), bytes))
    rankq::detail::throw_argument(function, argument, "has a shape whose byte size overflows 64 bits");
  if (bytes != t.bytes.size())
    rankq::detail::throw_argument(function, argument,
                                  "has " + std::to_string(t.bytes.size()) + " bytes but its shape and dtype " +
                                      dtype_name(t.dtype) + " need " + std::to_string(bytes));
}

/// Decodes `count` little-endian F32/F16/BF16 values from `src` into `dst`.
inline void decode_floats(DType t, const std::uint8_t* src, std::size_t count, float* dst) {
  switch (t) {
    case DType::f32:
      for (std::size_t i = 0; i < count; ++i, src += 4)
        dst[i] = bits_float(std::uint32_t{src[0]} | std::uint32_t{src[1]} << 8 | std::uint32_t{src[2]} << 16 |
                            std::uint32_t{src[3]} << 24);
      return;
    case DType::f16:
      for (std::size_t i = 0; i < count; ++i, src += 2)
        dst[i] = half_to_float(static_cast<std::uint16_t>(src[0] | src[1] << 8));
      return;
    case DType::bf16:
      for (std::size_t i = 0; i < count; ++i, src += 2)
        dst[i] = bf16_to_float(static_cast<std::uint16_t>(src[0] | src[1] << 8));
      return;
    default:
      rankq::detail::throw_argument("io::decode_floats", "t",
                                    std::string("= ") + dtype_name(t) + ": only F32, F16 and BF16 convert to float");
  }
}

/// The tensor's values as floats (exact for F32/F16/BF16). Throws rankq::invalid_argument for other dtypes or
/// when the byte count does not match the shape.
inline std::vector<float> to_float(const RawTensor& t) {
  if (!is_float_dtype(t.dtype))
    rankq::detail::throw_argument("io::to_float", "t.dtype",
                                  std::string("= ") + dtype_name(t.dtype) + ": only F32, F16 and BF16 convert to float");
  check_raw_tensor(t, "io::to_float", "t");
  std::vector<float> out(t.bytes.size() / dtype_size(t.dtype));
  decode_floats(t.dtype, t.bytes.data(), out.size(), out.data());
  return out;
}

/// Reads little-endian values from a byte range, checking every access. Any out-of-bounds read throws
/// rankq::format_error: "<source>: <field>: <problem> (offset <pos> of <size> bytes)". `field` names the file
/// section/field being read (e.g. "tensor info #3 ('blk.0.attn_q.weight') type").
class ByteReader {
 public:
  ByteReader(const std::uint8_t* data, std::size_t size, std::string source)
      : data_(data), size_(size), source_(std::move(source)) {
    if (data == nullptr && size != 0) rankq::detail::throw_argument("io::ByteReader", "data", "is null with a non-zero size");
  }

  std::size_t size() const noexcept { return size_; }
  std::size_t pos() const noexcept { return pos_; }
  std::size_t remaining() const noexcept { return size_ - pos_; }
  const std::string& source() const noexcept { return source_; }
  const std::uint8_t* data() const noexcept { return data_; }

  /// Throws rankq::format_error naming the source, field, problem and current offset.
  [[noreturn]] void fail(std::string_view field, const std::string& problem) const {
    throw format_error(source_ + ": " + std::string(field) + ": " + problem + " (offset " + std::to_string(pos_) +
                       " of " + std::to_string(size_) + " bytes)");
  }

  /// Checks that `n` more bytes exist.
  void need(std::uint64_t n, std::string_view field) const {
    if (n > remaining())
      fail(field, "truncated: needs " + std::to_string(n) + " bytes, only " + std::to_string(remaining()) + " remain");
  }

  /// A pointer to the next `n` bytes; advances past them.
  const std::uint8_t* take(std::uint64_t n, std::string_view field) {
    need(n, field);
    const std::uint8_t* p = data_ + pos_;
    pos_ += static_cast<std::size_t>(n);
    return p;
  }
  void skip(std::uint64_t n, std::string_view field) { take(n, field); }
  void seek(std::uint64_t pos, std::string_view field) {
    if (pos > size_) fail(field, "offset " + std::to_string(pos) + " is past the end");
    pos_ = static_cast<std::size_t>(pos);
  }

  /// Reads an integer or floating-point value of type T, little-endian.
  template <typename T>
  T read(std::string_view field) {
    static_assert(std::is_arithmetic_v<T> && !std::is_same_v<T, bool>, "ByteReader::read: arithmetic T only");
    const std::uint8_t* p = take(sizeof(T), field);
    std::uint64_t u = 0;
    for (std::size_t i = sizeof(T); i-- > 0;) u = u << 8 | p[i];
    using U = std::conditional_t<sizeof(T) == 1, std::uint8_t,
              std::conditional_t<sizeof(T) == 2, std::uint16_t, std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>>>;
    const U bits = static_cast<U>(u);
    T v;
    std::memcpy(&v, &bits, sizeof(T));
    return v;
  }
  std::uint8_t u8(std::string_view f) { return read<std::uint8_t>(f); }
  std::uint16_t u16(std::string_view f) { return read<std::uint16_t>(f); }
  std::uint32_t u32(std::string_view f) { return read<std::uint32_t>(f); }
  std::uint64_t u64(std::string_view f) { return read<std::uint64_t>(f); }
  std::int32_t i32(std::string_view f) { return read<std::int32_t>(f); }
  std::int64_t i64(std::string_view f) { return read<std::int64_t>(f); }
  float f32(std::string_view f) { return read<float>(f); }
  double f64(std::string_view f) { return read<double>(f); }

  /// `n` bytes as a std::string.
  std::string string(std::uint64_t n, std::string_view field) {
    const std::uint8_t* p = take(n, field);
    return std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n));
  }

  /// Checks a count read from the file: `count` items of at least `min_bytes_each` bytes must fit in the remaining
  /// bytes (so a huge count fails here, before anything is allocated). Returns count as size_t.
  std::size_t count(std::uint64_t n, std::uint64_t min_bytes_each, std::string_view field) const {
    std::uint64_t bytes = 0;
    if (min_bytes_each == 0) min_bytes_each = 1;
    if (!detail::mul_ok(n, min_bytes_each, bytes) || bytes > remaining())
      fail(field, "count " + std::to_string(n) + " is impossible: " + std::to_string(n) + " items of at least " +
                      std::to_string(min_bytes_each) + " bytes need more than the " + std::to_string(remaining()) +
                      " bytes that remain");
    return static_cast<std::size_t>(n);
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
  std::string source_;
};

}  RANKQ_NAMESPACE_END  // namespace rankq::io
