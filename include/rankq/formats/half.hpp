// rankq/formats/half.hpp — IEEE 754 binary16 and bfloat16 conversions in portable C++ (round to nearest even),
// bit-exact with F16C's vcvtps2ph (imm 0) / vcvtph2ps and with AArch64's fcvt; and the 16-bit element types
// bf16_t / f16_t through which the quantizers read a checkpoint's weights in place (MatrixView<const bf16_t>).
#pragma once

#include "rankq/detail/abi.hpp"

#include <cstdint>
#include <cstring>
#include <type_traits>

RANKQ_NAMESPACE_BEGIN

inline std::uint32_t float_bits(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float bits_float(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

/// binary16 -> float (exact).
inline float half_to_float(std::uint16_t h) {
  std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  std::uint32_t exp = (h >> 10) & 0x1Fu;
  std::uint32_t man = h & 0x3FFu;
  if (exp == 0x1F) return bits_float(sign | 0x7F800000u | (man << 13));  // Inf / NaN
  if (exp == 0) {
    if (man == 0) return bits_float(sign);
    // subnormal: value = man * 2^-24
    float v = static_cast<float>(man) * bits_float(0x33800000u);  // 2^-24
    return sign ? -v : v;
  }
  return bits_float(sign | ((exp + 112) << 23) | (man << 13));
}

/// float -> binary16, round to nearest even; overflow gives Inf, NaN stays NaN.
inline std::uint16_t float_to_half(float f) {
  std::uint32_t u = float_bits(f);
  std::uint32_t sign = (u >> 16) & 0x8000u;
  std::uint32_t abs = u & 0x7FFFFFFFu;
  if (abs >= 0x7F800000u) {  // Inf or NaN
    return static_cast<std::uint16_t>(sign | 0x7C00u | (abs > 0x7F800000u ? (0x200u | ((abs >> 13) & 0x3FFu)) : 0u));
  }
  if (abs >= 0x477FF000u) return static_cast<std::uint16_t>(sign | 0x7C00u);  // rounds to >= 65520 -> Inf
  if (abs < 0x38800000u) {  // result is subnormal or zero: value / 2^-24 rounded to nearest even
    if (abs < 0x33000000u) return static_cast<std::uint16_t>(sign);  // < 2^-25 -> 0 (2^-25 exactly ties to 0)
    std::uint32_t exp = abs >> 23;
    std::uint32_t man = (abs & 0x7FFFFFu) | 0x800000u;
    std::uint32_t shift = 126 - exp;  // 14 + (113 - exp) - 1 ... places the result's lsb at 2^-24
    std::uint32_t q = man >> shift;
    std::uint32_t rem = man & ((1u << shift) - 1u);
    std::uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) ++q;
    return static_cast<std::uint16_t>(sign | q);
  }
  std::uint32_t q = abs - 0x38000000u;  // rebias exponent 127 -> 15
  std::uint32_t rem = q & 0x1FFFu;
  q >>= 13;
  if (rem > 0x1000u || (rem == 0x1000u && (q & 1u))) ++q;
  return static_cast<std::uint16_t>(sign | q);
}

/// bfloat16 -> float (exact).
inline float bf16_to_float(std::uint16_t b) { return bits_float(static_cast<std::uint32_t>(b) << 16); }

/// float -> bfloat16, round to nearest even; NaN stays NaN.
inline std::uint16_t float_to_bf16(float f) {
  std::uint32_t u = float_bits(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<std::uint16_t>((u >> 16) | 0x40u);
  u += 0x7FFFu + ((u >> 16) & 1u);
  return static_cast<std::uint16_t>(u >> 16);
}

/// A bfloat16 element as a checkpoint stores it (the upper 16 bits of an IEEE single, host byte order), so that
/// MatrixView<const bf16_t> views a mapped BF16 tensor without copying it. Converts to float exactly, implicitly
/// (like a widening conversion) or by to_float(); from_float rounds to nearest even.
struct bf16_t {
  std::uint16_t bits;
  float to_float() const { return bf16_to_float(bits); }
  operator float() const { return to_float(); }  // NOLINT: exact widening
  static bf16_t from_float(float f) { return bf16_t{float_to_bf16(f)}; }
};

/// An IEEE binary16 element (host byte order), the F16 counterpart of bf16_t.
struct f16_t {
  std::uint16_t bits;
  float to_float() const { return half_to_float(bits); }
  operator float() const { return to_float(); }  // NOLINT: exact widening
  static f16_t from_float(float f) { return f16_t{float_to_half(f)}; }
};

static_assert(sizeof(bf16_t) == 2 && sizeof(f16_t) == 2 && std::is_trivially_copyable_v<bf16_t> &&
                  std::is_trivially_copyable_v<f16_t>,
              "bf16_t and f16_t must be bare 16-bit values (they view checkpoint bytes)");

/// The weight element types the quantizers accept: float, bf16_t and f16_t (const or not).
template <typename T>
inline constexpr bool is_weight_element_v =
    std::is_same_v<std::remove_const_t<T>, float> || std::is_same_v<std::remove_const_t<T>, bf16_t> ||
    std::is_same_v<std::remove_const_t<T>, f16_t>;

RANKQ_NAMESPACE_END  // namespace rankq
