// rankq/error.hpp — the exceptions rankq throws and the argument checks that raise them.
#pragma once

#include "rankq/detail/abi.hpp"

#include <cmath>
#include <cstddef>
#include <stdexcept>
#include <string>

RANKQ_NAMESPACE_BEGIN

/// Thrown for every invalid argument: the message always names the argument and the problem,
/// e.g. "rankq::quantize_uniform: argument 'group_size' = 48: must be 16, 32, 64, 128 or 0 (whole row)".
class invalid_argument : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

/// Thrown when a file or byte stream is malformed (truncated, wrong magic, sizes out of range...).
class format_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Throws rankq::invalid_argument in the library's own format, "rankq::<function>: argument '<argument>'
/// <problem>", so that code built on rankq (an engine, the examples) reports bad input the same way.
[[noreturn]] inline void throw_invalid_argument(const char* function, const char* argument, const std::string& problem) {
  throw invalid_argument(std::string("rankq::") + function + ": argument '" + argument + "' " + problem);
}

/// Throws (throw_invalid_argument) if `value` is 0.
inline void require_positive(std::size_t value, const char* function, const char* argument) {
  if (value == 0) throw_invalid_argument(function, argument, "is 0: must be positive");
}

/// Throws (throw_invalid_argument) if `p` is null while `count` values are expected.
inline void require_non_null(const void* p, std::size_t count, const char* function, const char* argument) {
  if (p == nullptr && count != 0) throw_invalid_argument(function, argument, "is a null pointer with a non-zero size");
}

namespace detail {

[[noreturn]] inline void throw_argument(const char* function, const char* argument, const std::string& problem) {
  throw_invalid_argument(function, argument, problem);
}

inline void require(bool ok, const char* function, const char* argument, const std::string& problem) {
  if (!ok) throw_argument(function, argument, problem);
}

using ::rankq::require_non_null;
using ::rankq::require_positive;

/// Throws if any of the `rows` x `cols` values (row stride `ld`) is NaN or infinite.
template <typename T>
void require_finite(const T* p, std::size_t rows, std::size_t cols, std::size_t ld, const char* function,
                    const char* argument) {
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = 0; c < cols; ++c)
      if (!std::isfinite(static_cast<double>(p[r * ld + c])))
        throw_argument(function, argument,
                       "has a non-finite value (NaN or Inf) at row " + std::to_string(r) + ", column " +
                           std::to_string(c));
}

}  // namespace detail
RANKQ_NAMESPACE_END  // namespace rankq
