// rankq/detail/kernels/activation_paths.hpp — the activation-side work of a W4A8 call on a kernel path: int8
// quantization (bit-identical on every path) and the group sums of the offset term.
#pragma once

#include "rankq/detail/abi.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "rankq/activation.hpp"
#include "rankq/kernel_path.hpp"
#include "rankq/detail/platform.hpp"
#if RANKQ_X86_PATHS
#include "rankq/detail/kernels/quantize_act_avx2.hpp"
#include "rankq/detail/kernels/quantize_act_avx512.hpp"
#endif
#if RANKQ_NEON_PATHS
#include "rankq/detail/kernels/quantize_act_neon.hpp"
#endif

RANKQ_NAMESPACE_BEGIN namespace detail {

/// The checks and the output shape of quantize_activations (activation.hpp), without quantizing.
inline void prepare_quantized_activations(MatrixView<const float> x, const ActivationFormat& f, QuantizedActivations& out,
                                          std::size_t padded_cols, const char* fn) {
  check_format(f, fn);
  check_view(x, fn, "activations");
  const std::size_t padded = padded_cols == 0 ? round_up(x.cols, std::size_t(16)) : padded_cols;
  if (padded < x.cols || padded % 16 != 0)
    throw_argument(fn, "padded_cols", "= " + std::to_string(padded_cols) + ": must be >= K (" + std::to_string(x.cols) +
                                          ") and a multiple of 16");
  const std::size_t block = f.kind == ActivationQuant::per_token ? padded : f.block;
  const std::size_t blocks = ceil_div(padded, block);
  if (out.values.size() != x.rows * padded) out.values.resize(x.rows * padded);
  if (out.scales.size() != x.rows * blocks) out.scales.resize(x.rows * blocks);
  out.format = f;
  out.rows = x.rows;
  out.cols = x.cols;
  out.padded = padded;
  out.block = block;
  out.blocks = blocks;
}

/// Quantizes x on `path` (any path; paths without their own quantizer use the nearest one below).
inline void quantize_activation_rows(MatrixView<const float> x, const ActivationFormat& f, QuantizedActivations& out,
                                     KernelPath path, const char* fn) {
#if RANKQ_X86_PATHS
  if (path == KernelPath::avx512_vnni) return avx512::quantize_activation_rows(x, f, out, fn);
  if (path == KernelPath::avx2 || path == KernelPath::avx_vnni) return avx2::quantize_activation_rows(x, f, out, fn);
#elif RANKQ_NEON_PATHS
  if (path == KernelPath::neon || path == KernelPath::neon_dotprod) return neon::quantize_activation_rows(x, f, out, fn);
#else
  (void)path;
#endif
  for (std::size_t m = 0; m < x.rows; ++m) {
    std::int8_t* q = out.values.data() + m * out.padded;
    for (std::size_t b = 0; b < out.blocks; ++b) {
      const std::size_t k0 = b * out.block, k1 = std::min(x.cols, k0 + out.block);
      out.scales[m * out.blocks + b] = k1 > k0 ? quantize_act_block(x.row(m) + k0, k1 - k0, f, q + k0, fn, m) : 0.0f;
    }
    std::memset(q + x.cols, 0, out.padded - x.cols);
  }
}

/// xsum[m·groups + g] = Σ_seg a_seg · Σ_{k in seg} q[m][k]: exact integer sums, then one fma per segment in order,
/// so every path and every compiler flag gives the same bits.
inline void activation_group_sums(const QuantizedActivations& x, std::size_t group, std::size_t groups, float* xsum,
                                  KernelPath path) {
#if RANKQ_X86_PATHS
  if (path == KernelPath::avx2 || path == KernelPath::avx_vnni || path == KernelPath::avx512_vnni)
    return avx2::group_sums(x, group, groups, xsum);
#elif RANKQ_NEON_PATHS
  if (path == KernelPath::neon || path == KernelPath::neon_dotprod) return neon::group_sums(x, group, groups, xsum);
#else
  (void)path;
#endif
  for (std::size_t m = 0; m < x.rows; ++m)
    for (std::size_t g = 0; g < groups; ++g) {
      float s = 0.0f;
      const std::size_t g_end = (g + 1) * group;
      for (std::size_t k = g * group; k < g_end;) {
        const std::size_t b = k / x.block, seg_end = std::min(g_end, (b + 1) * x.block);
        std::int32_t c = 0;
        for (; k < seg_end; ++k) c += x.row(m)[k];
        s = std::fma(x.scale(m, b), static_cast<float>(c), s);  // explicit: no flag-dependent contraction
      }
      xsum[m * groups + g] = s;
    }
}

}  RANKQ_NAMESPACE_END  // namespace rankq::detail
