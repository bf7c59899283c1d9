// rankq/detail/kernels/w4a8_layout.hpp — the kernel-native packed 4-bit layout (docs/formats.md §5) and the
// arguments every W4A8 path receives. The kernel decides this layout; pack_w4() is its slave.
#pragma once

#include "rankq/detail/abi.hpp"

#include <cstddef>
#include <cstdint>

#include "rankq/formats/activation.hpp"
#include "rankq/formats/uniform.hpp"
#include "rankq/detail/kernels/kernel_operands.hpp"

RANKQ_NAMESPACE_BEGIN namespace detail {

/// One code block: 16 output rows x 8 consecutive K, as 64 bytes. Byte 4*r + i (r = row in tile, i = 0..3)
/// holds t[r][k0 + i] in its low nibble and t[r][k0 + 4 + i] in its high nibble. So the low nibbles of a
/// block form 16 little-endian 32-bit lanes of 4 consecutive K each — exactly what vpdpbusd / sdot consume.
struct PackedCodeBlock {
  std::uint8_t bytes[64];
};
inline constexpr std::size_t kTileRows = 16;  ///< output rows per tile
inline constexpr std::size_t kBlockK = 8;     ///< K values per code block
static_assert(sizeof(PackedCodeBlock) == kTileRows * kBlockK / 2, "a code block is 16 rows x 8 K nibbles");
static_assert(sizeof(PackedCodeBlock) == 64, "a code block is one cache line");

/// ORs code t (0..15) of row `row` (in its tile) and group-relative column kk into a group's code blocks.
inline void put_packed_code(std::uint8_t* group_codes, std::size_t row, std::size_t kk, unsigned t) {
  std::uint8_t& byte = group_codes[(kk / kBlockK) * sizeof(PackedCodeBlock) + 4 * row + (kk % 4)];
  byte = static_cast<std::uint8_t>(byte | ((kk % kBlockK) < 4 ? t : (t << 4)));
}

/// Calls f(n, g, group_data, row_in_tile) for every row n < rows and group g of a tiled layout (16-row tiles of
/// `groups` groups, tile_stride / group_stride bytes apart): the one loop every packer (W4A8, codebook) shares.
template <class F>
inline void for_each_packed_group(std::uint8_t* data, std::size_t rows, std::size_t groups, std::size_t tile_stride,
                                  std::size_t group_stride, F&& f) {
  for (std::size_t n = 0; n < rows; ++n) {
    std::uint8_t* tile = data + n / kTileRows * tile_stride;
    for (std::size_t g = 0; g < groups; ++g) f(n, g, tile + g * group_stride, n % kTileRows);
  }
}

/// Where things are inside a packed tile: [group 0: codes, scales, offsets?][group 1: ...] ...
struct PackedW4Geometry {
  std::size_t group = 0;        ///< K per group (multiple of 16)
  std::size_t groups = 0;       ///< groups per row
  std::size_t scale_bytes = 0;  ///< bytes of one value (2 for f16, 4 for f32)
  bool has_offsets = false;     ///< asymmetric formats store 16 offsets after the 16 scales
  std::size_t code_bytes() const { return group / kBlockK * sizeof(PackedCodeBlock); }
  std::size_t group_stride() const { return code_bytes() + kTileRows * scale_bytes * (has_offsets ? 2 : 1); }
  std::size_t tile_stride() const { return groups * group_stride(); }
};

/// Everything a path needs for y[m][n] over a range of tiles: the shared operands (activations, output, bias),
/// the weights and xsum[m * groups + g] = Σ_seg a_seg · Σ_k q_x[k] (the float group sum of dequantized
/// activations, for the zero-point/offset term).
struct W4A8Args : KernelOperands {
  const std::uint8_t* packed = nullptr;
  PackedW4Geometry geo;
  ScaleType scale_type = ScaleType::f16;
  float zero_code = 0.0f;  ///< symmetric: 2^(b-1), so z = s * zero_code; unused when has_offsets
  std::size_t rows = 0;    ///< N (real rows; the last tile may be partial)
  const float* xsum = nullptr;  ///< M x groups
  /// Optional (x86 paths): M x groups exact sums Σ_k q_x[k] per group, set only for symmetric weights with
  /// per-token activations. Kernels then start each group's int32 accumulator at −zero_code·sum, so the zero
  /// point is folded into the integer dot product and the per-token scale applied once (docs/kernels.md §2).
  const std::int32_t* xqsum = nullptr;
};

}  RANKQ_NAMESPACE_END  // namespace rankq::detail
