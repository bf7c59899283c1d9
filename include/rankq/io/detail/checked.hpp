// rankq/io/detail/checked.hpp — overflow-checked size arithmetic and UTF-8 validation for the file readers.
#pragma once

#include "rankq/detail/abi.hpp"

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

RANKQ_NAMESPACE_BEGIN namespace io::detail {

/// a + b, or false on overflow of std::uint64_t.
inline bool add_ok(std::uint64_t a, std::uint64_t b, std::uint64_t& out) noexcept {
  if (b > std::numeric_limits<std::uint64_t>::max() - a) return false;
  out = a + b;
  return true;
}

/// a * b, or false on overflow of std::uint64_t.
inline bool mul_ok(std::uint64_t a, std::uint64_t b, std::uint64_t& out) noexcept {
  if (a != 0 && b > std::numeric_limits<std::uint64_t>::max() / a) return false;
  out = a * b;
  return true;
}

/// Product of `dims`, or false if it overflows `limit`.
template <typename Dims>
bool product_ok(const Dims& dims, std::uint64_t limit, std::uint64_t& out) noexcept {
  std::uint64_t p = 1;
  for (auto d : dims)
    if (!mul_ok(p, static_cast<std::uint64_t>(d), p) || p > limit) return false;
  out = p;
  return true;
}

/// Rounds `v` up to a multiple of `align` (a power of two), or false on overflow.
inline bool align_up_ok(std::uint64_t v, std::uint64_t align, std::uint64_t& out) noexcept {
  if (!add_ok(v, align - 1, out)) return false;
  out &= ~(align - 1);
  return true;
}

/// True if `s` is well-formed UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF).
inline bool valid_utf8(std::string_view s) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  std::size_t i = 0;
  while (i < n) {
    const unsigned c = p[i];
    if (c < 0x80) { ++i; continue; }
    std::size_t len;
    unsigned lo = 0x80, hi = 0xBF;  // allowed range of the first continuation byte
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c == 0xE0) { len = 3; lo = 0xA0; }
    else if (c == 0xED) { len = 3; hi = 0x9F; }
    else if (c >= 0xE1 && c <= 0xEF) len = 3;
    else if (c == 0xF0) { len = 4; lo = 0x90; }
    else if (c >= 0xF1 && c <= 0xF3) len = 4;
    else if (c == 0xF4) { len = 4; hi = 0x8F; }
    else return false;
    if (n - i < len) return false;
    if (p[i + 1] < lo || p[i + 1] > hi) return false;
    for (std::size_t k = 2; k < len; ++k)
      if (p[i + k] < 0x80 || p[i + k] > 0xBF) return false;
    i += len;
  }
  return true;
}

/// `s` quoted for an error message: at most 80 bytes, control and non-ASCII bytes as \xNN.
inline std::string quote(std::string_view s) {
  static const char* hex = "0123456789abcdef";
  std::string out = "'";
  for (std::size_t i = 0; i < s.size() && i < 80; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7F && c != '\'' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  if (s.size() > 80) out += "...";
  return out + "'";
}

}  RANKQ_NAMESPACE_END  // namespace rankq::io::detail
