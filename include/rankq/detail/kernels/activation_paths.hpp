// rankq/detail/kernels/activation_paths.hpp — the activation-side work of a kernel call on a path: int8
// quantization (bit-identical on every path) and the side terms the kernels read (activation_terms.hpp), through
// the one activation driver (activation_driver.inl) compiled per instruction set.
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
#include "rankq/detail/kernels/activation_terms.hpp"
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

/// The side terms of already quantized activations (activation_driver.inl): the same bits on every path.
inline void activation_side_terms(const QuantizedActivations& x, const ActivationTermsOut& t, KernelPath path,
                                  const char* fn) {
  dispatch_isa(path, fn, "activation", [&](auto isa) { run_side_terms(isa, x, t); });
}

/// Quantizes x into `out` (shaped by prepare_quantized_activations) and writes its side terms, row by row.
inline void pack_activation_rows(MatrixView<const float> x, const ActivationFormat& f, QuantizedActivations& out,
                                 const ActivationTermsOut& t, KernelPath path, const char* fn) {
  dispatch_isa(path, fn, "activation", [&](auto isa) { run_pack_rows(isa, x, f, out, t, fn); });
}

}  RANKQ_NAMESPACE_END  // namespace rankq::detail
