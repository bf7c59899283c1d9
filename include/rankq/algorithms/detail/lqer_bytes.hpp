// rankq/algorithms/detail/lqer_bytes.hpp — little-endian byte writing/reading for rankq's serialized statistics
// (independent of the host's endianness), in their own namespace so they never meet other formats' readers.
#pragma once

#include "rankq/detail/abi.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "rankq/error.hpp"

RANKQ_NAMESPACE_BEGIN namespace detail::lqer_bytes {

inline void put_u32(std::vector<std::uint8_t>& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
inline void put_u64(std::vector<std::uint8_t>& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
inline void put_f64(std::vector<std::uint8_t>& out, double v) {
  std::uint64_t bits = 0;
  static_assert(sizeof(bits) == sizeof(v), "binary64 expected");
  std::memcpy(&bits, &v, sizeof(v));
  put_u64(out, bits);
}

/// Sequential reader; callers check the total size first, so reading past the end is a logic error that
/// still throws format_error rather than reading out of bounds.
struct Reader {
  const std::uint8_t* data;
  std::size_t size;
  std::size_t pos;

  std::uint64_t bytes_le(int n) {
    if (size - pos < static_cast<std::size_t>(n)) throw format_error("rankq: truncated byte stream");
    std::uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= static_cast<std::uint64_t>(data[pos + static_cast<std::size_t>(i)]) << (8 * i);
    pos += static_cast<std::size_t>(n);
    return v;
  }
  std::uint32_t u32() { return static_cast<std::uint32_t>(bytes_le(4)); }
  std::uint64_t u64() { return bytes_le(8); }
  double f64() {
    const std::uint64_t bits = bytes_le(8);
    double v = 0.0;
    std::memcpy(&v, &bits, sizeof(v));
    return v;
  }
};

}  RANKQ_NAMESPACE_END  // namespace rankq::detail::lqer_bytes
