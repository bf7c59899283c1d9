// rankq/detail/kernels/activation_paths.hpp — the activation-side work of a kernel call on a path: int8
// quantization (bit-identical on every path) and the group sums of the W4A8 offset term, through the one
// activation driver (activation_driver.inl) compiled per instruction set.
#pragma once

#include "rankq/detail/abi.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "rankq/formats/activation.hpp"
#include "rankq/kernels/kernel_path.hpp"
#include "rankq/detail/platform.hpp"
#include "rankq/detail/kernels/path_dispatch.hpp"
#include "rankq/detail/kernels/quantize_act_scalar.hpp"
#if RANKQ_X86_PATHS
#include "rankq/detail/kernels/quantize_act_avx2.hpp"
#include "rankq/detail/kernels/quantize_act_avx512.hpp"
#endif
#if RANKQ_NEON_PATHS
#include "rankq/detail/kernels/quantize_act_neon.hpp"
#endif

// The paths that share another's activation primitives.
RANKQ_NAMESPACE_BEGIN namespace detail {
#if RANKQ_X86_PATHS
namespace avx_vnni {
using avx2::abs_max;
using avx2::quantize_pow2;
using avx2::quantize_scaled;
using avx2::segment_sum;
}  // namespace avx_vnni
#endif
#if RANKQ_NEON_DOTPROD_PATH
namespace neon_dotprod {
using neon::abs_max;
using neon::quantize_pow2;
using neon::quantize_scaled;
using neon::segment_sum;
}  // namespace neon_dotprod
#endif
}  RANKQ_NAMESPACE_END  // namespace rankq::detail

#define RANKQ_DRIVER_FILE "rankq/detail/kernels/activation_driver.inl"
#include "rankq/detail/kernels/foreach_isa.inl"

RANKQ_NAMESPACE_BEGIN namespace detail {

/// Quantizes x on `path` (into `out`, shaped by prepare_quantized_activations): the same codes and scales on
/// every path.
inline void quantize_activation_rows(MatrixView<const float> x, const ActivationFormat& f, QuantizedActivations& out,
                                     KernelPath path, const char* fn) {
  dispatch_isa(path, fn, "activation", [&](auto isa) { run_quantize_rows(isa, x, f, out, fn); });
}

/// xsum[m·groups + g] = Σ_seg a_seg · Σ_{k in seg} q[m][k] (activation_driver.inl), the same bits on every path.
inline void activation_group_sums(const QuantizedActivations& x, std::size_t group, std::size_t groups, float* xsum,
                                  KernelPath path) {
  dispatch_isa(path, "w4a8_gemm", "activation", [&](auto isa) { run_group_sums(isa, x, group, groups, xsum); });
}

}  RANKQ_NAMESPACE_END  // namespace rankq::detail
