// rankq/detail/kernels/w8a8_layout.hpp — the packed layout of 8-bit uniform weights (docs/formats.md §7, byte by
// byte) and the arguments every W8A8 path receives. The kernels decide this layout; pack_w8() is its slave.
#pragma once

#include "rankq/detail/abi.hpp"

#include <cstddef>
#include <cstdint>

#include "rankq/formats/uniform.hpp"
#include "rankq/detail/kernels/kernel_operands.hpp"
#include "rankq/detail/kernels/lowrank_layout.hpp"
#include "rankq/detail/kernels/w4a8_layout.hpp"

RANKQ_NAMESPACE_BEGIN namespace detail {

/// One chunk of a tile's codes: 16 rows x 16 consecutive K as 4 quads of 64 bytes, the low-rank factors' code
/// layout (lowrank_layout.hpp) without their per-chunk scales. Byte 64q + 4r + i (q = 0..3, r = 0..15, i = 0..3)
/// is the code t[r][16c + 4q + i] (0..255, the canonical 8-bit code: level t - 128 for symmetric formats). Each
/// quad is 16 little-endian 32-bit lanes of 4 consecutive K, one lane per row: vpdpbusd / sdot operands.
struct PackedW8Chunk {
  std::uint8_t codes[4][kTileRows][4];  ///< [quad][row][i]
};
inline constexpr std::size_t kW8ChunkK = 16;  ///< K per chunk
inline constexpr std::size_t kW8ChunkBytes = sizeof(PackedW8Chunk);
static_assert(sizeof(PackedW8Chunk) == 256, "a W8 chunk is 16 rows x 16 K bytes");
static_assert(kW8ChunkBytes % 64 == 0, "chunks stay 64-byte aligned (the paths use aligned loads)");
static_assert(sizeof(PackedW8Chunk) == sizeof(PackedLowRankChunk::codes), "the low-rank code layout, scales apart");

/// Where things are inside a packed W8 tile (16 rows): a header of per-group values, then the codes.
///   [scales: groups x 16 values][offsets: groups x 16 values, asymmetric only][zero bytes up to a multiple of 64]
///   [chunk 0][chunk 1] ... [chunk K_pad/16 - 1]
/// Values are f16 or f32 (the source's scale type), value [g][r] of row r in group g.
struct PackedW8Geometry {
  std::size_t group = 0;        ///< K per group (a multiple of 16; K_pad for a whole row)
  std::size_t groups = 0;       ///< groups per row
  std::size_t chunks = 0;       ///< K_pad / 16
  std::size_t scale_bytes = 0;  ///< 2 (f16) or 4 (f32)
  bool has_offsets = false;     ///< asymmetric: offsets follow the scales
  std::size_t values_bytes() const { return groups * kTileRows * scale_bytes; }  ///< one table (scales or offsets)
  std::size_t header_bytes() const {
    const std::size_t b = values_bytes() * (has_offsets ? 2 : 1);
    return (b + 63) / 64 * 64;
  }
  std::size_t tile_stride() const { return header_bytes() + chunks * kW8ChunkBytes; }
};

/// One W8A8 product over a range of 16-row tiles. For token m, row n and group g, cut into segments at activation
/// block boundaries: D_seg = Σ_k q_x[m][k]·(t[n][k] − 128), exact in int32; then, in float,
///   y = Σ_g ( Σ_seg fma(s·a_seg, D_seg) − (z − 128·s)·xsum[m][g] ) (+ bias)
/// where the last term exists for asymmetric formats only (w^ = s·t − z; symmetric w^ = s·(t − 128)).
struct W8A8Args : KernelOperands {
  const std::uint8_t* packed = nullptr;
  PackedW8Geometry geo;
  ScaleType scale_type = ScaleType::f16;
  std::size_t rows = 0;  ///< N (real rows; the last tile may be partial)
  const std::int32_t* x_chunk_sums = nullptr;  ///< M x chunks: Σ q_x per 16-K chunk (the vpdpbusd offset term)
  const float* xsum = nullptr;  ///< M x groups: Σ_seg a_seg·Σ q_x (asymmetric only, else null)
};

}  RANKQ_NAMESPACE_END  // namespace rankq::detail
