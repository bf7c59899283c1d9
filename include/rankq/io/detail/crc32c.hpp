// rankq/io/detail/crc32c.hpp — CRC-32C (Castagnoli; iSCSI, RFC 3720 §B.4): reflected polynomial 0x82F63B78,
// initial value and final XOR 0xFFFFFFFF. Table-driven, one byte at a time (a 1 KiB table built at compile time).
// The quantized model file stores one per tensor (docs/io.md).
#pragma once

#include "rankq/detail/abi.hpp"

#include <array>
#include <cstddef>
#include <cstdint>

RANKQ_NAMESPACE_BEGIN namespace io::detail {

inline constexpr std::array<std::uint32_t, 256> make_crc32c_table() {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int bit = 0; bit < 8; ++bit) c = (c & 1u) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    table[i] = c;
  }
  return table;
}

inline constexpr std::array<std::uint32_t, 256> kCrc32cTable = make_crc32c_table();

/// Continues a CRC-32C over more bytes: crc32c(b, n2, crc32c(a, n1)) = crc32c of a followed by b.
inline std::uint32_t crc32c(const std::uint8_t* data, std::size_t size, std::uint32_t previous = 0) {
  std::uint32_t c = ~previous;
  for (std::size_t i = 0; i < size; ++i) c = kCrc32cTable[(c ^ data[i]) & 0xFFu] ^ (c >> 8);
  return ~c;
}

}  RANKQ_NAMESPACE_END  // namespace rankq::io::detail
