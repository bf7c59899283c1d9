// rankq/detail/rounding.hpp — rounding helpers shared by every quantizer (independent of the FP environment).
#pragma once

#include "rankq/detail/abi.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>

RANKQ_NAMESPACE_BEGIN namespace detail {

/// Round half to even, independent of the current rounding mode.
inline double round_half_even(double x) {
  double r = std::floor(x + 0.5);
  if (r - x == 0.5 && std::fmod(r, 2.0) != 0.0) r -= 1.0;  // exact tie on an odd integer: go down
  return r;
}

inline std::size_t round_up(std::size_t x, std::size_t m) { return (x + m - 1) / m * m; }
inline std::size_t ceil_div(std::size_t x, std::size_t m) { return (x + m - 1) / m; }

/// Reads the b-bit code j of a little-endian, LSB-first bit stream (b in 1..8).
inline unsigned get_bits(const std::uint8_t* stream, std::size_t j, unsigned b) {
  std::size_t bit = j * b;
  unsigned v = stream[bit >> 3] >> (bit & 7u);
  if ((bit & 7u) + b > 8) v |= static_cast<unsigned>(stream[(bit >> 3) + 1]) << (8 - (bit & 7u));
  return v & ((1u << b) - 1u);
}

/// Writes the b-bit code j of a little-endian, LSB-first bit stream (the stream must start zeroed).
inline void put_bits(std::uint8_t* stream, std::size_t j, unsigned b, unsigned code) {
  std::size_t bit = j * b;
  code &= (1u << b) - 1u;
  stream[bit >> 3] = static_cast<std::uint8_t>(stream[bit >> 3] | (code << (bit & 7u)));
  if ((bit & 7u) + b > 8) stream[(bit >> 3) + 1] = static_cast<std::uint8_t>(stream[(bit >> 3) + 1] | (code >> (8 - (bit & 7u))));
}

}  RANKQ_NAMESPACE_END  // namespace rankq::detail
