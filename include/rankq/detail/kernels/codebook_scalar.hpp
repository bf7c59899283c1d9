// rankq/detail/kernels/codebook_scalar.hpp — the portable codebook path on the packed layout: the float operations
// of codebook_reference_matmul in the same order (so it checks the packing itself), one row and token at a time.
#pragma once

#include "rankq/detail/abi.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "rankq/kernel_path.hpp"
#include "rankq/detail/kernels/codebook_layout.hpp"
#include "rankq/detail/kernels/w4a8_scalar.hpp"

RANKQ_NAMESPACE_BEGIN namespace detail {

inline float load_packed_f32(const std::uint8_t* p, std::size_t i) {
  float f;
  std::memcpy(&f, p + 4 * i, 4);
  return f;
}

template <>
inline void codebook_tiles<KernelPath::scalar>(const CodebookArgs& a, std::size_t tile_begin, std::size_t tile_end) {
  const PackedCodebookGeometry& geo = a.geo;
  for (std::size_t tile = tile_begin; tile < tile_end; ++tile) {
    const std::uint8_t* tile_data = a.packed + tile * geo.tile_stride();
    const std::size_t rows_here = std::min(kTileRows, a.rows - tile * kTileRows);
    for (std::size_t m = 0; m < a.M; ++m) {
      const std::int8_t* xq = a.x + m * a.x_padded;
      for (std::size_t r = 0; r < rows_here; ++r) {
        float out = 0.0f;
        for (std::size_t g = 0; g < geo.groups; ++g) {
          const std::uint8_t* gd = tile_data + g * geo.group_stride();
          const std::size_t g0 = g * geo.group, g_end = g0 + geo.group;
          float part = 0.0f;
          for (unsigned q = 0; q < geo.rank; ++q) {
            const std::int8_t* lut = a.lut + q * kCodebookLutEntries;
            float acc = 0.0f;
            for (std::size_t k = g0; k < g_end;) {
              const std::size_t b = k / a.x_block;
              const std::size_t seg_end = std::min(g_end, (b + 1) * a.x_block);
              std::int32_t dot = 0;
              for (; k < seg_end; ++k) dot += static_cast<std::int32_t>(xq[k]) * lut[packed_code(gd, r, k - g0)];
              acc = std::fma(a.x_scales[m * a.x_blocks + b], static_cast<float>(dot), acc);
            }
            const float gs = load_packed_f32(gd + geo.scales_at(), q * kTileRows + r);
            part = q == 0 ? gs * acc : std::fma(gs, acc, part);
          }
          const float off = load_packed_f32(gd + geo.offsets_at(), r);
          out = out + std::fma(-off, a.xs[m * geo.groups + g], part);
        }
        const std::size_t n = tile * kTileRows + r;
        a.y[m * a.ldy + n] = a.bias ? out + a.bias[n] : out;
      }
    }
  }
}

}  RANKQ_NAMESPACE_END  // namespace rankq::detail
