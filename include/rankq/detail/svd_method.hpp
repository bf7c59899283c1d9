// rankq/detail/svd_method.hpp — the SvdMethod enum of rankq/algorithms/svd.hpp, apart so that Eigen-free headers
// (rankq/formats/lowrank.hpp, the low-rank kernels) can name it without pulling in Eigen.
#pragma once

#include "rankq/detail/abi.hpp"

#include <cstdint>

RANKQ_NAMESPACE_BEGIN

enum class SvdMethod : std::uint8_t {
  automatic = 0,   ///< randomized when (k + oversampling)·4 <= min(m, n), else exact
  exact = 1,       ///< full BDCSVD in double, then truncated: O(m·n·min(m, n))
  randomized = 2,  ///< block Krylov (Musco & Musco): O(m·n·(k + p)·(3q + 2)) in matrix products
};

inline const char* to_string(SvdMethod m) {
  switch (m) {
    case SvdMethod::exact: return "exact";
    case SvdMethod::randomized: return "randomized";
    default: return "auto";
  }
}

RANKQ_NAMESPACE_END  // namespace rankq
