// Tests for rankq/io/detail/crc32c.hpp against the published CRC-32C check values (RFC 3720 §B.4, and the
// "123456789" check value of the CRC catalogue).
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "rankq/io/detail/crc32c.hpp"

using rankq::io::detail::crc32c;

namespace {
std::uint32_t crc_of(const std::vector<std::uint8_t>& v) { return crc32c(v.data(), v.size()); }
}  // namespace

TEST(Crc32c, KnownVectors) {
  const std::string check = "123456789";
  EXPECT_EQ(crc32c(reinterpret_cast<const std::uint8_t*>(check.data()), check.size()), 0xE3069283u);
  EXPECT_EQ(crc_of(std::vector<std::uint8_t>(32, 0x00)), 0x8A9136AAu);  // RFC 3720 B.4: 32 bytes of zeros
  EXPECT_EQ(crc_of(std::vector<std::uint8_t>(32, 0xFF)), 0x62A8AB43u);  // 32 bytes of ones
  std::vector<std::uint8_t> up(32), down(32);
  for (std::uint8_t i = 0; i < 32; ++i) up[i] = i, down[i] = static_cast<std::uint8_t>(31 - i);
  EXPECT_EQ(crc_of(up), 0x46DD794Eu);    // incrementing 00..1f
  EXPECT_EQ(crc_of(down), 0x113FDB5Cu);  // decrementing 1f..00
  EXPECT_EQ(crc32c(nullptr, 0), 0u);
}

TEST(Crc32c, ContinuesAcrossPiecesAndSeesEveryBitFlip) {
  std::vector<std::uint8_t> bytes(1000);
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::uint8_t>(i * 37 + 11);
  const std::uint32_t whole = crc_of(bytes);
  EXPECT_EQ(crc32c(bytes.data() + 400, 600, crc32c(bytes.data(), 400)), whole);
  for (std::size_t i = 0; i < bytes.size(); i += 97)
    for (int bit = 0; bit < 8; ++bit) {
      auto flipped = bytes;
      flipped[i] = static_cast<std::uint8_t>(flipped[i] ^ (1u << bit));
      EXPECT_NE(crc_of(flipped), whole) << "byte " << i << " bit " << bit;
    }
}
