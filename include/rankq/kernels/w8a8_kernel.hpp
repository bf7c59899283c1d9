// rankq/kernels/w8a8_kernel.hpp — packed 8-bit uniform weights (and MXINT8 via to_uniform) x int8 activations with int32
// accumulation: packing (once, at load time), GEMV/GEMM on every compiled instruction-set path, threads through a
// parallel-for hook. Layout: docs/formats.md §7. Arithmetic and paths: docs/kernels.md §2.2.
#pragma once

#include "rankq/detail/abi.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "rankq/formats/activation.hpp"
#include "rankq/error.hpp"
#include "rankq/formats/half.hpp"
#include "rankq/kernels/kernel_path.hpp"
#include "rankq/kernels/lowrank_kernel.hpp"
#include "rankq/formats/matrix.hpp"
#include "rankq/formats/uniform.hpp"
#include "rankq/kernels/w4a8.hpp"
#include "rankq/kernels/workspace.hpp"
#include "rankq/detail/kernels/w8a8_dispatch.hpp"
#include "rankq/detail/kernels/w8a8_layout.hpp"

RANKQ_NAMESPACE_BEGIN

/// The largest padded K of 8-bit weights: every int32 dot product |Σ q_x·(t − 128)| <= 128·128·K_pad stays below
/// 2^31, and so do the vpdpbusd paths' Σ t·q_x and 128·Σ q_x (they wrap modulo 2^32 and cancel exactly).
inline constexpr std::size_t kW8MaxPaddedK = (std::size_t(1) << 17) - 16;

/// 8-bit weights in the W8A8 kernels' layout (docs/formats.md §7): tiles of 16 output rows; per tile a header of
/// the groups' 16 scales (and 16 offsets for asymmetric formats) in the source's scale type, padded to 64 bytes,
/// then the codes in chunks of 16 rows x 16 K. Rows past N (and columns past K) hold code 128 (level 0), scale 0.
struct PackedW8 {
  std::size_t rows = 0, cols = 0, padded = 0, tiles = 0;  ///< N, K, K_pad (the source's padding), 16-row tiles
  Symmetry symmetry = Symmetry::symmetric;
  ScaleType scale_type = ScaleType::f16;
  detail::PackedW8Geometry geo;
  AlignedBuffer<std::uint8_t> data;  ///< tiles * geo.tile_stride() bytes, 64-byte aligned

  std::size_t size_bytes() const { return data.size(); }
};

/// Converts canonical 8-bit uniform weights (any group, symmetric or asymmetric, f16 or f32 scales; MXINT8 through
/// to_uniform) into the packed layout. Every code 0..255 is valid.
inline PackedW8 pack_w8(const UniformWeights& w) {
  constexpr const char* fn = "pack_w8";
  if (w.format.bits != 8)
    detail::throw_argument(fn, "w.format.bits", "= " + std::to_string(w.format.bits) +
                                                    ": the W8A8 kernels take 8-bit codes (2-4 bits: pack_w4)");
  if (w.rows == 0 || w.cols == 0 || w.codes.size() != w.rows * w.row_bytes || w.row_bytes != w.padded ||
      w.scales.size() != w.rows * w.groups ||
      w.offsets.size() != (w.format.symmetry == Symmetry::asymmetric ? w.rows * w.groups : 0))
    detail::throw_argument(fn, "w", "is empty or inconsistent");
  if (w.group % detail::kW8ChunkK != 0 || w.padded != w.groups * w.group)
    detail::throw_argument(fn, "w.group", "= " + std::to_string(w.group) + ": must be a multiple of 16 dividing the padded K");
  if (w.padded > kW8MaxPaddedK)
    detail::throw_argument(fn, "w.cols", "= " + std::to_string(w.cols) + ": the W8A8 kernels take K_pad <= " +
                                             std::to_string(kW8MaxPaddedK) + " (int32 dot products)");
  const ScaleType st = w.format.scale_type;
  const bool asym = w.format.symmetry == Symmetry::asymmetric;
  const detail::PackedW8Geometry geo{w.group, w.groups, w.padded / detail::kW8ChunkK, st == ScaleType::f16 ? 2u : 4u, asym};
  PackedW8 p{w.rows, w.cols, w.padded, detail::ceil_div(w.rows, detail::kTileRows), w.format.symmetry, st, geo, {}};
  p.data.resize(p.tiles * p.geo.tile_stride());
  std::memset(p.data.data(), 0, p.data.size());
  auto store = [&](std::uint8_t* dst, std::size_t i, float v) { detail::store_packed_value(dst, i, v, st); };
  const std::size_t value_bytes = detail::kTileRows * p.geo.scale_bytes;  // one group's 16 values
  for (std::size_t tile = 0; tile < p.tiles; ++tile) {
    std::uint8_t* td = p.data.data() + tile * p.geo.tile_stride();
    auto* chunks = reinterpret_cast<detail::PackedW8Chunk*>(td + p.geo.header_bytes());
    for (std::size_t r = 0; r < detail::kTileRows; ++r) {
      const std::size_t n = tile * detail::kTileRows + r;
      for (std::size_t k = 0; k < w.padded; ++k)  // padding rows and columns: level 0 (code 128), adds nothing
        chunks[k / detail::kW8ChunkK].codes[k % 16 / 4][r][k % 4] = n < w.rows && k < w.cols ? w.codes[n * w.row_bytes + k] : 128;
      if (n >= w.rows) continue;
      for (std::size_t g = 0; g < w.groups; ++g) {
        store(td + g * value_bytes, r, w.scale(n, g));
        if (p.geo.has_offsets) store(td + p.geo.values_bytes() + g * value_bytes, r, w.offsets[n * w.groups + g]);
      }
    }
  }
  return p;
}

/// The activation side terms the W8A8 kernels read for these weights, on every path: Σ q per 16-K chunk (the
/// vpdpbusd offset term) and the float group sums (the offset term of asymmetric weights).
inline ActivationTerms activation_terms(const PackedW8& w) {
  return ActivationTerms{w.padded, w.geo.group, false, false, true};
}

namespace detail {
/// The arguments of a W8A8 call (shapes checked by the caller) on activation side terms `t`.
inline W8A8Args w8a8_args(const QuantizedActivations& x, const ActivationTermsView& t, const PackedW8& w,
                          MatrixView<float> y, const float* bias) {
  W8A8Args a;
  set_kernel_operands(a, x, y, bias);
  a.packed = w.data.data();
  a.geo = w.geo;
  a.scale_type = w.scale_type;
  a.rows = w.rows;
  a.x_chunk_sums = t.chunk_sums;
  a.xsum = w.geo.has_offsets ? t.group_sums : nullptr;
  return a;
}

inline void check_w8a8_call(const QuantizedActivations& x, const PackedW8& w, MatrixView<float> y, KernelPath path,
                            const char* fn) {
  if (w.data.empty() || w.data.size() != w.tiles * w.geo.tile_stride())
    throw_argument(fn, "w", "is empty or inconsistent (use pack_w8)");
  check_kernel_call(x, w.rows, w.cols, w.padded, y, path, fn);
}
}  // namespace detail

/// Y (M x N, row stride y.ld) = X_q (M x K) · Ŵᵀ (+ bias) for 8-bit weights. x must be padded to w.padded.
/// The integer dot products are exact on every path, and every path's y is bit-identical to the scalar path's;
/// against reference_matmul the float epilogue may differ in rounding (docs/kernels.md §2.2). Threads over 16-row
/// tiles through o.parallel (any partition gives identical y); o.workspace makes repeated calls allocation-free.
inline void w8a8_gemm(const QuantizedActivations& x, const PackedW8& w, MatrixView<float> y, const W4A8Options& o = {}) {
  constexpr const char* fn = "w8a8_gemm";
  detail::check_w8a8_call(x, w, y, o.path, fn);
  Workspace temporary;
  detail::KernelScratch& scratch = (o.workspace ? *o.workspace : temporary).kernel_scratch();
  const auto t = detail::compute_activation_terms(x, activation_terms(w), scratch.terms, o.path, fn);
  detail::run_w8a8(detail::w8a8_args(x, t, w, y, o.bias), w.tiles, o.path, o.parallel);
}

/// w8a8_gemm on activations packed with activation_terms(w): no activation term is computed again.
inline void w8a8_gemm(const PackedActivations& x, const PackedW8& w, MatrixView<float> y, const W4A8Options& o = {}) {
  constexpr const char* fn = "w8a8_gemm";
  detail::check_w8a8_call(x.quantized(), w, y, o.path, fn);
  const auto t = x.terms_for(activation_terms(w), fn);
  detail::run_w8a8(detail::w8a8_args(x.quantized(), t, w, y, o.bias), w.tiles, o.path, o.parallel);
}

/// Float activations in: quantizes X with `format` on o.path (into `scratch`, reused across calls), then w8a8_gemm.
inline void w8a8_linear(MatrixView<const float> x, const ActivationFormat& format, const PackedW8& w, MatrixView<float> y,
                        QuantizedActivations& scratch, const W4A8Options& o = {}) {
  quantize_activations(x, format, scratch, w.padded, o.path);
  w8a8_gemm(scratch, w, y, o);
}

RANKQ_NAMESPACE_END  // namespace rankq
