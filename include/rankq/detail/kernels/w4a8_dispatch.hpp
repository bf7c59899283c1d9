// rankq/detail/kernels/w4a8_dispatch.hpp — includes every compiled W4A8 path and maps a KernelPath to it.
#pragma once

#include <cstddef>
#include <string>

#include "rankq/detail/platform.hpp"
#include "rankq/error.hpp"
#include "rankq/kernel_path.hpp"
#include "rankq/detail/kernels/w4a8_layout.hpp"
#include "rankq/detail/kernels/w4a8_scalar.hpp"

namespace rankq::detail {

inline void w4a8_dispatch(KernelPath p, const W4A8Args& a, std::size_t t0, std::size_t t1) {
  switch (p) {
    case KernelPath::scalar: return w4a8_tiles<KernelPath::scalar>(a, t0, t1);
    default: break;
  }
  throw_argument("w4a8_gemm", "options.path", std::string("= ") + to_string(p) + ": no W4A8 kernel for this path yet");
}

}  // namespace rankq::detail
