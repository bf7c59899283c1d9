// rankq/kernels/w4a8.hpp — packed 4-bit weights x int8 activations with int32 accumulation: packing (once, at load
// time), GEMV/GEMM on every compiled instruction-set path, threads through a parallel-for hook.
// Layout: docs/formats.md §5. Kernel design and how to pick a path: docs/kernels.md.
#pragma once

#include "rankq/detail/abi.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "rankq/formats/activation.hpp"
#include "rankq/error.hpp"
#include "rankq/formats/half.hpp"
#include "rankq/kernels/kernel_path.hpp"
#include "rankq/kernels/packed_activations.hpp"
#include "rankq/formats/matrix.hpp"
#include "rankq/kernels/threading.hpp"
#include "rankq/kernels/workspace.hpp"
#include "rankq/formats/uniform.hpp"
#include "rankq/detail/kernels/w4a8_layout.hpp"
#include "rankq/detail/kernels/scalar_primitives.hpp"
#include "rankq/detail/kernels/tile_runner.hpp"
#include "rankq/detail/kernels/w4a8_dispatch.hpp"

RANKQ_NAMESPACE_BEGIN

/// Weights packed in the kernels' native layout: tiles of 16 output rows; per tile, per group: the codes as
/// 64-byte blocks (16 rows x 8 K), then 16 scales, then (asymmetric only) 16 offsets, in the source's scale type.
/// 2- and 3-bit codes ride in the 4-bit container. Rows past N in the last tile are zero (codes, scales).
struct PackedW4 {
  std::size_t rows = 0, cols = 0, padded = 0;  ///< N, K, K_pad (same padding as the source)
  std::size_t tiles = 0;
  unsigned source_bits = 4;
  Symmetry symmetry = Symmetry::symmetric;
  ScaleType scale_type = ScaleType::f16;
  detail::PackedW4Geometry geo;
  AlignedBuffer<std::uint8_t> data;  ///< tiles * geo.tile_stride() bytes, 64-byte aligned

  std::size_t size_bytes() const { return data.size(); }
};

/// Converts canonical uniform weights (2, 3 or 4 bits, any group, sym/asym, f16/f32) into the packed layout.
inline PackedW4 pack_w4(const UniformWeights& w) {
  constexpr const char* fn = "pack_w4";
  if (w.format.bits > 4)
    detail::throw_argument(fn, "w.format.bits", "= " + std::to_string(w.format.bits) + ": the W4A8 kernels take 2, 3 or 4-bit codes");
  if (w.rows == 0 || w.cols == 0 || w.codes.size() != w.rows * w.row_bytes)
    detail::throw_argument(fn, "w", "is empty or inconsistent");
  if (w.group % 16 != 0 || w.padded != w.groups * w.group)
    detail::throw_argument(fn, "w.group", "= " + std::to_string(w.group) + ": must be a multiple of 16 dividing the padded K");
  PackedW4 p;
  p.rows = w.rows;
  p.cols = w.cols;
  p.padded = w.padded;
  p.tiles = detail::ceil_div(w.rows, detail::kTileRows);
  p.source_bits = w.format.bits;
  p.symmetry = w.format.symmetry;
  p.scale_type = w.format.scale_type;
  p.geo.group = w.group;
  p.geo.groups = w.groups;
  p.geo.scale_bytes = w.format.scale_type == ScaleType::f16 ? 2 : 4;
  p.geo.has_offsets = w.format.symmetry == Symmetry::asymmetric;
  p.data.resize(p.tiles * p.geo.tile_stride());
  auto store = [&](std::uint8_t* dst, std::size_t i, float v) { detail::store_packed_value(dst, i, v, p.scale_type); };
  detail::for_each_packed_group(p.data.data(), w.rows, w.groups, p.geo.tile_stride(), p.geo.group_stride(),
                                [&](std::size_t n, std::size_t g, std::uint8_t* gd, std::size_t r) {
                                  for (std::size_t kk = 0; kk < w.group; ++kk) detail::put_packed_code(gd, r, kk, w.code(n, g * w.group + kk));
                                  std::uint8_t* scales = gd + p.geo.code_bytes();
                                  store(scales, r, w.scale(n, g));
                                  if (p.geo.has_offsets) store(scales + detail::kTileRows * p.geo.scale_bytes, r, w.offsets[n * w.groups + g]);
                                });
  return p;
}

/// Options of a W4A8 call.
struct W4A8Options {
  KernelPath path = best_supported_path();  ///< run-time dispatch; set a path explicitly to opt out
  const ParallelFor* parallel = nullptr;    ///< null: run on the calling thread
  const float* bias = nullptr;              ///< N floats or null
  Workspace* workspace = nullptr;           ///< the caller's reusable scratch; null: a temporary one per call
};

/// The activation side terms the W4A8 kernels read for these weights, on every path: the float group sums (the
/// offset term) and, for symmetric weights, the integer group sums (the folded zero point of the VNNI prefill).
inline ActivationTerms activation_terms(const PackedW4& w) {
  return ActivationTerms{w.padded, w.geo.group, !w.geo.has_offsets, false};
}

namespace detail {
/// The arguments of a W4A8 call (shapes checked by the caller) on activation side terms `t`.
inline W4A8Args w4a8_args(const QuantizedActivations& x, const ActivationTermsView& t, const PackedW4& w,
                          MatrixView<float> y, KernelPath path, const float* bias) {
  W4A8Args a;
  set_kernel_operands(a, x, y, bias);
  a.packed = w.data.data();
  a.geo = w.geo;
  a.scale_type = w.scale_type;
  a.zero_code = static_cast<float>(1u << (w.source_bits - 1));
  a.rows = w.rows;
  a.xsum = t.group_sums;
  // Symmetric weights x per-token activations: exact integer group sums for the folded zero point (the avx512vnni
  // path; the others subtract z·xsum in float).
  if (!w.geo.has_offsets && x.blocks == 1 && path == KernelPath::avx512_vnni) a.xqsum = t.group_qsums;
  return a;
}

inline void check_w4a8_call(const QuantizedActivations& x, const PackedW4& w, MatrixView<float> y, KernelPath path,
                            const char* fn) {
  check_kernel_call(x, w.rows, w.cols, w.padded, y, path, fn);
}
}  // namespace detail

/// Y (M x N, row stride y.ld) = X_q (M x K) · W^T (+ bias). x must be padded to w.padded.
/// Integer parts equal reference_matmul exactly on every path; the float epilogue may differ in rounding.
inline void w4a8_gemm(const QuantizedActivations& x, const PackedW4& w, MatrixView<float> y, const W4A8Options& o = {}) {
  constexpr const char* fn = "w4a8_gemm";
  detail::check_w4a8_call(x, w, y, o.path, fn);
  Workspace temporary;
  detail::KernelScratch& scratch = (o.workspace ? *o.workspace : temporary).kernel_scratch();
  const auto t = detail::compute_activation_terms(x, activation_terms(w), scratch.terms, o.path, fn);
  detail::run_w4a8(detail::w4a8_args(x, t, w, y, o.path, o.bias), w.tiles, o.path, o.parallel);
}

/// w4a8_gemm on activations packed with activation_terms(w): no activation term is computed again.
inline void w4a8_gemm(const PackedActivations& x, const PackedW4& w, MatrixView<float> y, const W4A8Options& o = {}) {
  constexpr const char* fn = "w4a8_gemm";
  detail::check_w4a8_call(x.quantized(), w, y, o.path, fn);
  const auto t = x.terms_for(activation_terms(w), fn);
  detail::run_w4a8(detail::w4a8_args(x.quantized(), t, w, y, o.path, o.bias), w.tiles, o.path, o.parallel);
}

/// quantize_activations (activation.hpp) on a kernel path: the same codes and scales bit for bit, vectorized.
inline void quantize_activations(MatrixView<const float> x, const ActivationFormat& f, QuantizedActivations& out,
                                 std::size_t padded_cols, KernelPath path) {
  constexpr const char* fn = "quantize_activations";
  detail::check_path(path, fn);
  detail::prepare_quantized_activations(x, f, out, padded_cols, fn);
  detail::quantize_activation_rows(x, f, out, path, fn);
}

/// Float activations in: quantizes X with `format` on o.path (into `scratch`, reused across calls) and runs w4a8_gemm.
inline void w4a8_linear(MatrixView<const float> x, const ActivationFormat& format, const PackedW4& w, MatrixView<float> y,
                        QuantizedActivations& scratch, const W4A8Options& o = {}) {
  quantize_activations(x, format, scratch, w.padded, o.path);
  w4a8_gemm(scratch, w, y, o);
}

RANKQ_NAMESPACE_END  // namespace rankq
