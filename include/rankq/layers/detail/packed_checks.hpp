// rankq/layers/detail/packed_checks.hpp — the invariants of packed weights handed to Linear::from_packed* (which may view
// bytes read from a file): every header field consistent with the layout of docs/formats.md and the data size,
// every scale and offset finite, codebook/low-rank levels in [-127, 127]. Checked once, at construction.
#pragma once

#include "rankq/detail/abi.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "rankq/kernels/codebook_kernel.hpp"
#include "rankq/error.hpp"
#include "rankq/formats/half.hpp"
#include "rankq/kernels/lowrank_kernel.hpp"
#include "rankq/kernels/w4a8.hpp"
#include "rankq/kernels/w8a8_kernel.hpp"

RANKQ_NAMESPACE_BEGIN namespace detail {

/// Throws unless `count` floats (f16 if scale_bytes == 2, else f32) at `p` are finite.
inline void check_finite_values(const std::uint8_t* p, std::size_t count, std::size_t scale_bytes, const char* fn,
                                const char* name) {
  for (std::size_t i = 0; i < count; ++i) {
    float v;
    if (scale_bytes == 2) {
      std::uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      v = half_to_float(h);
    } else {
      std::memcpy(&v, p + 4 * i, 4);
    }
    if (!std::isfinite(v)) throw_argument(fn, name, "has a non-finite scale or offset");
  }
}

/// Common shape rules of a packed matrix: N, K > 0, groups of a multiple of 16 tiling K_pad, K_pad - K < group.
inline void check_packed_shape(std::size_t rows, std::size_t cols, std::size_t padded, std::size_t group,
                               std::size_t groups, std::size_t tiles, const char* fn, const char* name) {
  if (rows == 0 || cols == 0) throw_argument(fn, name, "is empty");
  if (group == 0 || group % 16 != 0 || groups == 0 || padded / group != groups || padded % group != 0 || padded < cols ||
      padded - cols >= group)
    throw_argument(fn, name, "has inconsistent K = " + std::to_string(cols) + ", K_pad = " + std::to_string(padded) +
                                 ", group = " + std::to_string(group) + ", groups = " + std::to_string(groups));
  if (tiles != ceil_div(rows, kTileRows)) throw_argument(fn, name, "has a tile count that does not match its rows");
}

inline void check_packed(const PackedW4& p, const char* fn, const char* name) {
  check_packed_shape(p.rows, p.cols, p.padded, p.geo.group, p.geo.groups, p.tiles, fn, name);
  if (p.source_bits < 2 || p.source_bits > 4) throw_argument(fn, name, "has source_bits outside 2-4");
  if (p.geo.scale_bytes != (p.scale_type == ScaleType::f16 ? 2u : 4u) ||
      p.geo.has_offsets != (p.symmetry == Symmetry::asymmetric))
    throw_argument(fn, name, "has a geometry that does not match its scale type and symmetry");
  if (p.data.size() != p.tiles * p.geo.tile_stride())
    throw_argument(fn, name, "holds " + std::to_string(p.data.size()) + " bytes, its geometry needs " +
                                 std::to_string(p.tiles * p.geo.tile_stride()));
  const std::size_t values = kTileRows * (p.geo.has_offsets ? 2 : 1);
  for (std::size_t t = 0; t < p.tiles; ++t)
    for (std::size_t g = 0; g < p.geo.groups; ++g)
      check_finite_values(p.data.data() + t * p.geo.tile_stride() + g * p.geo.group_stride() + p.geo.code_bytes(), values,
                          p.geo.scale_bytes, fn, name);
}

inline void check_packed(const PackedW8& p, const char* fn, const char* name) {
  check_packed_shape(p.rows, p.cols, p.padded, p.geo.group, p.geo.groups, p.tiles, fn, name);
  if (p.padded > kW8MaxPaddedK) throw_argument(fn, name, "has K_pad above " + std::to_string(kW8MaxPaddedK));
  if (p.geo.scale_bytes != (p.scale_type == ScaleType::f16 ? 2u : 4u) ||
      p.geo.has_offsets != (p.symmetry == Symmetry::asymmetric) || p.geo.chunks != p.padded / kW8ChunkK)
    throw_argument(fn, name, "has a geometry that does not match its scale type, symmetry and K_pad");
  if (p.data.size() != p.tiles * p.geo.tile_stride())
    throw_argument(fn, name, "holds " + std::to_string(p.data.size()) + " bytes, its geometry needs " +
                                 std::to_string(p.tiles * p.geo.tile_stride()));
  const std::size_t values = p.geo.groups * kTileRows * (p.geo.has_offsets ? 2 : 1);
  for (std::size_t t = 0; t < p.tiles; ++t)
    check_finite_values(p.data.data() + t * p.geo.tile_stride(), values, p.geo.scale_bytes, fn, name);
}

inline void check_packed(const PackedLowRankFactor& f, const char* fn, const char* name) {
  if (f.rows == 0 || f.cols == 0 || f.tiles != ceil_div(f.rows, kLowRankRows) || f.chunks != ceil_div(f.cols, kLowRankChunk))
    throw_argument(fn, name, "has inconsistent rows, columns, tiles or chunks");
  if (f.data.size() != f.tiles * f.chunks * kLowRankChunkBytes)
    throw_argument(fn, name, "holds " + std::to_string(f.data.size()) + " bytes, expected " +
                                 std::to_string(f.tiles * f.chunks * kLowRankChunkBytes));
  const auto* chunks = reinterpret_cast<const PackedLowRankChunk*>(f.data.data());
  for (std::size_t i = 0; i < f.tiles * f.chunks; ++i) {
    const auto* codes = &chunks[i].codes[0][0][0];
    for (std::size_t b = 0; b < sizeof(chunks[i].codes); ++b)
      if (codes[b] == 0) throw_argument(fn, name, "holds level -128: the low-rank kernels take levels in [-127, 127]");
    check_finite_values(reinterpret_cast<const std::uint8_t*>(chunks[i].scales), kLowRankRows, 4, fn, name);
  }
}

inline void check_packed(const PackedLowRank& c, std::size_t out, std::size_t in, const char* fn, const char* name) {
  if (c.rank == 0 || c.out_features != out || c.in_features != in || c.a_t.rows != c.rank || c.a_t.cols != in ||
      c.b_t.rows != out || c.b_t.cols != c.rank)
    throw_argument(fn, name, "is a correction whose shape does not match the " + std::to_string(out) + "x" +
                                 std::to_string(in) + " weights");
  check_packed(c.a_t, fn, name);
  check_packed(c.b_t, fn, name);
}

inline void check_packed(const PackedCodebook& p, const char* fn, const char* name) {
  check_packed_shape(p.rows, p.cols, p.padded, p.geo.group, p.geo.groups, p.tiles, fn, name);
  if (p.bits < 2 || p.bits > 4 || p.geo.rank < 1 || p.geo.rank > kMaxCodebookRank)
    throw_argument(fn, name, "has bits outside 2-4 or a rank outside 1..kMaxCodebookRank");
  if (p.geo.group > rankq::kMaxCodebookSegment) throw_argument(fn, name, "has groups too long for int32 sums");
  if (p.data.size() != p.tiles * p.geo.tile_stride() || p.lut.size() != p.geo.rank * kCodebookLutEntries)
    throw_argument(fn, name, "holds a data or table size that does not match its geometry");
  for (std::size_t i = 0; i < p.lut.size(); ++i)
    if (p.lut[i] == -128 || (i % kCodebookLutEntries >= (std::size_t(1) << p.bits) && p.lut[i] != 0))
      throw_argument(fn, name, "has a table level of -128 or a non-zero entry past 2^bits");
  const std::size_t values = (p.geo.rank + 1) * kTileRows;
  for (std::size_t t = 0; t < p.tiles; ++t)
    for (std::size_t g = 0; g < p.geo.groups; ++g)
      check_finite_values(p.data.data() + t * p.geo.tile_stride() + g * p.geo.group_stride() + p.geo.scales_at(), values, 4,
                          fn, name);
}

}  RANKQ_NAMESPACE_END  // namespace rankq::detail
