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

/// Every kernel path usable here that has a codebook kernel, best last.
inline std::vector<KernelPath> codebook_supported_paths() {
  std::vector<KernelPath> out;
  for (KernelPath p : supported_paths())
    if (detail::codebook_path_available(p)) out.push_back(p);
  return out;
}

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

/// Y (M x N, row stride y.ld) = X_q (M x K) · Ŵ_Kᵀ (+ o.bias). x must be padded to w.padded. Bit-exact with
/// codebook_reference_matmul on every path (same integer sums, same float operations in the same order).
/// o.path must be compiled, supported by this CPU and have a codebook kernel (codebook_supported_paths()).
inline void codebook_gemm(const QuantizedActivations& x, const PackedCodebook& w, MatrixView<float> y,
                          const W4A8Options& o = {}) {
  constexpr const char* fn = "codebook_gemm";
  detail::check_matmul_shapes(x, w.rows, w.cols, w.padded, y, fn);
  detail::check_kernel_activation_blocks(x, fn);
  detail::check_path(o.path, fn);
  if (!detail::codebook_path_available(o.path))
    detail::throw_argument(fn, "options.path", std::string("= ") + to_string(o.path) + ": no codebook kernel for this path yet");
  Workspace temporary;
  detail::KernelScratch& scratch = (o.workspace ? *o.workspace : temporary).kernel_scratch();
  const std::size_t prefix_stride = x.padded / detail::kCodebookChunkK + 1;
  std::int64_t* prefix = scratch.prefix.get(x.rows * prefix_stride);
  float* xs = scratch.codebook_xs.get(x.rows * w.geo.groups);
  detail::codebook_activation_terms(x, w.geo.group, w.geo.groups, prefix, xs);
  detail::CodebookArgs a;
  a.packed = w.data.data();
  a.geo = w.geo;
  a.lut = w.lut.data();
  a.rows = w.rows;
  a.M = x.rows;
  a.x = x.values.data();
  a.x_padded = x.padded;
  a.x_scales = x.scales.data();
  a.x_block = x.block;
  a.x_blocks = x.blocks;
  a.x_prefix = prefix;
  a.prefix_stride = prefix_stride;
  a.xs = xs;
  a.y = y.data;
  a.ldy = y.ld;
  a.bias = o.bias;
  const detail::CodebookArgs* args = &a;  // one pointer captured: the hook's std::function does not allocate
  const KernelPath path = o.path;
  detail::run_tiles(w.tiles, o.parallel,
                    [args, path](std::size_t t0, std::size_t t1) { detail::codebook_dispatch(path, *args, t0, t1); });
}

RANKQ_NAMESPACE_END  // namespace rankq
