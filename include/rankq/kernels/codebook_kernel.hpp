// rankq/kernels/codebook_kernel.hpp — LCQ codebook weights packed for the kernels (once, at load time) and the codebook
// GEMV/GEMM Y = X_q · Ŵ_Kᵀ on every compiled path (scalar, avx2, avxvnni, avx512vnni, neon, neondot), bit-exact with codebook_reference_matmul.
// Layout and float order: docs/lcq.md §6 and §9. Paths, threads and options: the W4A8 framework (w4a8.hpp).
#pragma once

#include "rankq/detail/abi.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "rankq/formats/activation.hpp"
#include "rankq/kernels/codebook_reference.hpp"
#include "rankq/detail/kernels/codebook_dispatch.hpp"
#include "rankq/detail/kernels/codebook_layout.hpp"
#include "rankq/detail/kernels/tile_runner.hpp"
#include "rankq/error.hpp"
#include "rankq/kernels/kernel_path.hpp"
#include "rankq/formats/codebook.hpp"
#include "rankq/formats/matrix.hpp"
#include "rankq/kernels/w4a8.hpp"

RANKQ_NAMESPACE_BEGIN

/// Codebook weights in the kernels' layout: tiles of 16 output rows; per tile, per group: the indices as PackedW4
/// code blocks, then rank x 16 f32 group scales, then 16 f32 group offsets (detail/kernels/codebook_layout.hpp).
/// Rows past N in the last tile are zero. lut: the int8 tables Vq, 16 entries per rank (entries >= 2^b are 0).
struct PackedCodebook {
  std::size_t rows = 0, cols = 0, padded = 0, tiles = 0;
  unsigned bits = 4;
  detail::PackedCodebookGeometry geo;
  AlignedBuffer<std::uint8_t> data;  ///< tiles · geo.tile_stride() bytes, 64-byte aligned
  std::vector<std::int8_t> lut;      ///< rank · 16

  std::size_t size_bytes() const { return data.size() + lut.size(); }
};

/// Every kernel path usable here that has a codebook kernel, best last: all of supported_paths(), since every
/// path is an instance of the one codebook driver.
inline std::vector<KernelPath> codebook_supported_paths() { return supported_paths(); }

/// Packs w with its kernel tables kt (make_codebook_kernel_tables(w)).
inline PackedCodebook pack_codebook(const CodebookWeights& w, const CodebookKernelTables& kt) {
  constexpr const char* fn = "pack_codebook";
  detail::check_codebook_format(w.format, fn, "w.format");
  if (w.rows == 0 || w.cols == 0 || w.indices.size() != w.rows * w.row_bytes || w.group % 16 != 0 ||
      w.padded != w.groups * w.group)
    detail::throw_argument(fn, "w", "is empty or inconsistent");
  if (kt.bits != w.format.bits || kt.rank != w.format.rank || kt.group_scales.size() != w.S.size() ||
      kt.group_offsets.size() != w.B.size() || kt.vq.size() != (std::size_t(kt.rank) << kt.bits))
    detail::throw_argument(fn, "kt", "was not made from these weights (make_codebook_kernel_tables(w))");
  if (w.group > kMaxCodebookSegment)
    detail::throw_argument(fn, "w", "has groups of " + std::to_string(w.group) + " > " +
                                        std::to_string(kMaxCodebookSegment) + " weights: int32 sums could overflow");
  const unsigned k = w.format.rank;
  PackedCodebook p;
  p.rows = w.rows;
  p.cols = w.cols;
  p.padded = w.padded;
  p.tiles = detail::ceil_div(w.rows, detail::kTileRows);
  p.bits = w.format.bits;
  p.geo.group = w.group;
  p.geo.groups = w.groups;
  p.geo.rank = k;
  p.data.resize(p.tiles * p.geo.tile_stride());
  p.lut.assign(k * detail::kCodebookLutEntries, 0);
  for (unsigned r = 0; r < k; ++r)
    for (unsigned t = 0; t < (1u << w.format.bits); ++t) p.lut[r * detail::kCodebookLutEntries + t] = kt.level(r, t);
  detail::for_each_packed_group(p.data.data(), w.rows, w.groups, p.geo.tile_stride(), p.geo.group_stride(),
                                [&](std::size_t n, std::size_t g, std::uint8_t* gd, std::size_t row) {
                                  for (std::size_t kk = 0; kk < w.group; ++kk) detail::put_packed_code(gd, row, kk, w.index(n, g * w.group + kk));
                                  const std::size_t i = n * w.groups + g;
                                  for (unsigned r = 0; r < k; ++r)
                                    std::memcpy(gd + p.geo.scales_at() + 4 * (r * detail::kTileRows + row), &kt.group_scales[i * k + r], 4);
                                  std::memcpy(gd + p.geo.offsets_at() + 4 * row, &kt.group_offsets[i], 4);
                                });
  return p;
}

inline PackedCodebook pack_codebook(const CodebookWeights& w) { return pack_codebook(w, make_codebook_kernel_tables(w)); }

/// The activation side terms the codebook kernels read for these weights: the float group sums and the
/// 16-column prefix sums of the codes.
inline ActivationTerms activation_terms(const PackedCodebook& w) {
  return ActivationTerms{w.padded, w.geo.group, false, true};
}

namespace detail {
inline void check_codebook_call(const QuantizedActivations& x, const PackedCodebook& w, MatrixView<float> y,
                                KernelPath path, const char* fn) {
  check_kernel_call(x, w.rows, w.cols, w.padded, y, path, fn);
}

inline void run_codebook(const QuantizedActivations& x, const ActivationTermsView& t, const PackedCodebook& w,
                         MatrixView<float> y, const W4A8Options& o) {
  CodebookArgs a;
  set_kernel_operands(a, x, y, o.bias);
  a.packed = w.data.data();
  a.geo = w.geo;
  a.lut = w.lut.data();
  a.rows = w.rows;
  a.x_prefix = t.prefix;
  a.prefix_stride = t.prefix_stride;
  a.xs = t.group_sums;
  const CodebookArgs* args = &a;  // one pointer captured: the hook's std::function does not allocate
  const KernelPath path = o.path;
  run_tiles(w.tiles, o.parallel, [args, path](std::size_t t0, std::size_t t1) { codebook_dispatch(path, *args, t0, t1); });
}
}  // namespace detail

/// Y (M x N, row stride y.ld) = X_q (M x K) · Ŵ_Kᵀ (+ o.bias). x must be padded to w.padded. Bit-exact with
/// codebook_reference_matmul on every path (same integer sums, same float operations in the same order).
inline void codebook_gemm(const QuantizedActivations& x, const PackedCodebook& w, MatrixView<float> y,
                          const W4A8Options& o = {}) {
  constexpr const char* fn = "codebook_gemm";
  detail::check_codebook_call(x, w, y, o.path, fn);
  Workspace temporary;
  detail::KernelScratch& scratch = (o.workspace ? *o.workspace : temporary).kernel_scratch();
  detail::run_codebook(x, detail::compute_activation_terms(x, activation_terms(w), scratch.terms, o.path, fn), w, y, o);
}

/// codebook_gemm on activations packed with activation_terms(w): no activation term is computed again.
inline void codebook_gemm(const PackedActivations& x, const PackedCodebook& w, MatrixView<float> y,
                          const W4A8Options& o = {}) {
  constexpr const char* fn = "codebook_gemm";
  detail::check_codebook_call(x.quantized(), w, y, o.path, fn);
  detail::run_codebook(x.quantized(), x.terms_for(activation_terms(w), fn), w, y, o);
}

RANKQ_NAMESPACE_END  // namespace rankq
