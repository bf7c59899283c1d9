// rankq/detail/kernels/w4a8_scalar.hpp — the portable path on the packed layout: same arithmetic, in the same
// order, as reference_matmul (so it checks the packing itself), one row and one token at a time.
#pragma once

#include "rankq/detail/abi.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "rankq/half.hpp"
#include "rankq/kernel_path.hpp"
#include "rankq/detail/kernels/w4a8_layout.hpp"

RANKQ_NAMESPACE_BEGIN namespace detail {

template <KernelPath P>
void w4a8_tiles(const W4A8Args& a, std::size_t tile_begin, std::size_t tile_end);

inline float load_packed_scale(const std::uint8_t* p, std::size_t i, ScaleType t) {
  if (t == ScaleType::f16) {
    std::uint16_t h;
    std::memcpy(&h, p + 2 * i, 2);
    return half_to_float(h);
  }
  float f;
  std::memcpy(&f, p + 4 * i, 4);
  return f;
}

/// Code t[r][k] of a tile, k relative to the start of group data (k < group).
inline unsigned packed_code(const std::uint8_t* group_codes, std::size_t r, std::size_t k) {
  const std::uint8_t byte = group_codes[(k / kBlockK) * 64 + 4 * r + (k % 4)];
  return (k % kBlockK) < 4 ? (byte & 0x0Fu) : (byte >> 4);
}

template <>
inline void w4a8_tiles<KernelPath::scalar>(const W4A8Args& a, std::size_t tile_begin, std::size_t tile_end) {
  const PackedW4Geometry& geo = a.geo;
  for (std::size_t tile = tile_begin; tile < tile_end; ++tile) {
    const std::uint8_t* tile_data = a.packed + tile * geo.tile_stride();
    const std::size_t rows_here = std::min(kTileRows, a.rows - tile * kTileRows);
    for (std::size_t m = 0; m < a.M; ++m) {
      const std::int8_t* xq = a.x + m * a.x_padded;
      for (std::size_t r = 0; r < rows_here; ++r) {
        float out = 0.0f;
        for (std::size_t g = 0; g < geo.groups; ++g) {
          const std::uint8_t* gd = tile_data + g * geo.group_stride();
          const std::uint8_t* scales = gd + geo.code_bytes();
          float acc = 0.0f;
          const std::size_t g0 = g * geo.group, g_end = g0 + geo.group;
          for (std::size_t k = g0; k < g_end;) {
            const std::size_t b = k / a.x_block;
            const std::size_t seg_end = std::min(g_end, (b + 1) * a.x_block);
            std::int32_t dot = 0;
            for (; k < seg_end; ++k) dot += static_cast<std::int32_t>(xq[k]) * static_cast<std::int32_t>(packed_code(gd, r, k - g0));
            acc += a.x_scales[m * a.x_blocks + b] * static_cast<float>(dot);
          }
          const float s = load_packed_scale(scales, r, a.scale_type);
          const float z = geo.has_offsets ? load_packed_scale(scales + kTileRows * geo.scale_bytes, r, a.scale_type) : s * a.zero_code;
          out += s * acc - z * a.xsum[m * geo.groups + g];
        }
        const std::size_t n = tile * kTileRows + r;
        a.y[m * a.ldy + n] = a.bias ? out + a.bias[n] : out;
      }
    }
  }
}

}  RANKQ_NAMESPACE_END  // namespace rankq::detail
