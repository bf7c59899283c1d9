// rankq/detail/kernels/codebook_layout.hpp — the kernel-native packed layout of LCQ codebook weights (docs/lcq.md
// §9), the arguments every codebook path receives, and the activation terms all paths share.
#pragma once

#include "rankq/detail/abi.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "rankq/formats/activation.hpp"
#include "rankq/kernels/kernel_path.hpp"
#include "rankq/detail/kernels/kernel_operands.hpp"
#include "rankq/detail/kernels/w4a8_layout.hpp"

RANKQ_NAMESPACE_BEGIN namespace detail {

inline constexpr std::size_t kCodebookLutEntries = 16;  ///< one int8 table of 16 entries per rank (2^b <= 16)
inline constexpr std::size_t kCodebookChunkK = 16;      ///< every group and activation block is a multiple of this

/// Inside a packed tile: [group 0: codes, scales (rank x 16 f32), offsets (16 f32)][group 1: ...] ...
/// Codes are PackedW4's 64-byte blocks (16 rows x 8 K, w4a8_layout.hpp): the index t[r][k0 + i] is the low
/// nibble of byte 4r + i and t[r][k0 + 4 + i] its high nibble. scales[q·16 + r] = group_scales of row r, rank q;
/// offsets[r] = group_offsets of row r. Every part starts on a 64-byte boundary.
struct PackedCodebookGeometry {
  std::size_t group = 0;   ///< K per group (multiple of 16)
  std::size_t groups = 0;  ///< groups per row
  unsigned rank = 1;
  std::size_t code_bytes() const { return group / kBlockK * sizeof(PackedCodeBlock); }
  std::size_t scales_at() const { return code_bytes(); }
  std::size_t offsets_at() const { return code_bytes() + std::size_t(rank) * kTileRows * sizeof(float); }
  std::size_t group_stride() const { return offsets_at() + kTileRows * sizeof(float); }
  std::size_t tile_stride() const { return groups * group_stride(); }
};

/// Everything a path needs for y[m][n] over a range of tiles: the shared operands (activations, output, bias),
/// the weights and the activations' side terms.
struct CodebookArgs : KernelOperands {
  const std::uint8_t* packed = nullptr;
  PackedCodebookGeometry geo;
  const std::int8_t* lut = nullptr;  ///< rank x 16 int8 levels Vq_r[t] in [-127, 127] (entries >= 2^b are 0)
  std::size_t rows = 0;              ///< N (the last tile may be partial)
  const std::int64_t* x_prefix = nullptr;  ///< M x prefix_stride: Σ q_x over columns [0, 16c) at index c
  std::size_t prefix_stride = 0;           ///< x_padded / 16 + 1
  const float* xs = nullptr;               ///< M x groups: xs of docs/lcq.md §6 (shared by every path)
};

/// Σ q_x of token m over columns [k0, k1) (multiples of 16), exact.
inline std::int32_t codebook_segment_sum(const CodebookArgs& a, std::size_t m, std::size_t k0, std::size_t k1) {
  const std::int64_t* p = a.x_prefix + m * a.prefix_stride;
  return static_cast<std::int32_t>(p[k1 / kCodebookChunkK] - p[k0 / kCodebookChunkK]);
}


}  RANKQ_NAMESPACE_END  // namespace rankq::detail
