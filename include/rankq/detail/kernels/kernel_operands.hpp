// rankq/detail/kernels/kernel_operands.hpp — what every packed-weight kernel call reads besides its weights and
// side terms: the int8 activations, the output and the page-ahead choice. W4A8Args, CodebookArgs and W8A8Args
// extend KernelOperands, and set_kernel_operands fills it for all of them in one place.
#pragma once

#include "rankq/detail/abi.hpp"

#include <cstddef>
#include <cstdint>

#include "rankq/formats/activation.hpp"
#include "rankq/formats/matrix.hpp"
#include "rankq/kernels/kernel_path.hpp"

RANKQ_NAMESPACE_BEGIN namespace detail {

struct KernelOperands {
  bool page_ahead = false;  ///< issue the page-ahead hint (page_ahead_hint(), stream_prefetch.hpp)
  std::size_t M = 0;        ///< tokens
  const std::int8_t* x = nullptr;  ///< M x x_padded int8
  std::size_t x_padded = 0;
  const float* x_scales = nullptr;  ///< M x x_blocks
  std::size_t x_block = 0, x_blocks = 0;
  float* y = nullptr;  ///< M x N, row stride ldy
  std::size_t ldy = 0;
  const float* bias = nullptr;  ///< N or null
};

/// The activations `x`, the output `y` and `bias` of a call whose shapes were checked (check_kernel_call).
inline void set_kernel_operands(KernelOperands& a, const QuantizedActivations& x, MatrixView<float> y, const float* bias) {
  a.page_ahead = page_ahead_hint();
  a.M = x.rows;
  a.x = x.values.data();
  a.x_padded = x.padded;
  a.x_scales = x.scales.data();
  a.x_block = x.block;
  a.x_blocks = x.blocks;
  a.y = y.data;
  a.ldy = y.ld;
  a.bias = bias;
}

/// The checks every packed-weight kernel call shares: x (M x K, padded like the weights, blocks of whole 16-K
/// chunks) against weights of N x K padded to `padded`, y (M x N), and the path.
inline void check_kernel_call(const QuantizedActivations& x, std::size_t N, std::size_t K, std::size_t padded,
                              MatrixView<float> y, KernelPath path, const char* fn) {
  check_matmul_shapes(x, N, K, padded, y, fn);
  check_kernel_activation_blocks(x, fn);
  check_path(path, fn);
}

}  RANKQ_NAMESPACE_END  // namespace rankq::detail
