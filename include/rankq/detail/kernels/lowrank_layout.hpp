// rankq/detail/kernels/lowrank_layout.hpp — the packed int8 layout of the low-rank factors Aᵀ (k x K) and Bᵀ
// (N x k) (docs/lqer.md §6, byte by byte) and the arguments every low-rank path receives. The kernels decide
// this layout; pack_lowrank() is its slave.
#pragma once

#include "rankq/detail/abi.hpp"

#include <cstddef>
#include <cstdint>

RANKQ_NAMESPACE_BEGIN namespace detail {

/// One chunk of a packed factor: 16 rows x 16 reduction values as 4 "quads" of 64 bytes, then 16 f32 scales.
/// Byte 64q + 4r + i (q = 0..3, r = 0..15, i = 0..3) is u[r][16c + 4q + i] = l + 128, the level l in offset
/// binary (the canonical 8-bit symmetric code). So each quad is 16 little-endian 32-bit lanes of 4 consecutive
/// reduction values, one lane per row — what vpdpbusd / sdot consume with a broadcast activation word.
struct PackedLowRankChunk {
  std::uint8_t codes[4][16][4];  ///< [quad][row][i]
  float scales[16];              ///< s[r][c]: the factor's scale of row r for this chunk (MXINT8: 2^e, exact)
};
inline constexpr std::size_t kLowRankRows = 16;  ///< rows per tile (ranks for Aᵀ, outputs for Bᵀ)
inline constexpr std::size_t kLowRankChunkBytes = sizeof(PackedLowRankChunk);
static_assert(sizeof(PackedLowRankChunk) == 320, "a chunk is 256 code bytes + 64 scale bytes");
static_assert(kLowRankChunkBytes % 64 == 0, "chunks (and so tiles) stay 64-byte aligned");
static_assert(offsetof(PackedLowRankChunk, scales) == 256, "scales follow the codes");

/// One low-rank product over a range of 16-row tiles: for each token m < M and row r,
///   acc = 0; for c < chunks: acc = fma(x_scales[m·chunks + c] · s[r][c], float(D[m][r][c]), acc)
/// with D the exact int32 dot product of x[m][16c .. 16c+15] and the levels; then
///   out[m·ldo + row] = acc                 (accumulate = false)
///   out[m·ldo + row] = (out + acc) + bias  (accumulate = true; "+ bias" only if bias is set).
/// x_sums[m·chunks + c] = Σ_j x[m][16c + j] (for the offset-binary trick of the vpdpbusd paths).
struct LowRankArgs {
  bool page_ahead = false;  ///< issue the page-ahead hint (page_ahead_hint(), stream_prefetch.hpp)
  const std::uint8_t* packed = nullptr;  ///< tiles x chunks PackedLowRankChunk
  std::size_t rows = 0;                  ///< real rows (the last tile may be partial)
  std::size_t chunks = 0;                ///< reduction chunks of 16
  std::size_t M = 0;
  const std::int8_t* x = nullptr;  ///< M x x_stride int8, at least 16·chunks columns
  std::size_t x_stride = 0;
  const float* x_scales = nullptr;      ///< M x chunks
  const std::int32_t* x_sums = nullptr;  ///< M x chunks
  float* out = nullptr;
  std::size_t ldo = 0;
  bool accumulate = false;
  const float* bias = nullptr;
  std::size_t tile_stride() const { return chunks * kLowRankChunkBytes; }
};

}  RANKQ_NAMESPACE_END  // namespace rankq::detail
