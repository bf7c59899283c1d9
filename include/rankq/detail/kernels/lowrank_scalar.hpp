// rankq/detail/kernels/lowrank_scalar.hpp — the portable low-rank path on the packed layout: the arithmetic of
// detail::lowrank_rows_reference, in the same order, one token and one row at a time (so it checks the packing).
#pragma once

#include "rankq/detail/abi.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "rankq/kernel_path.hpp"
#include "rankq/detail/kernels/lowrank_layout.hpp"

RANKQ_NAMESPACE_BEGIN namespace detail {

template <KernelPath P>
void lowrank_tiles(const LowRankArgs& a, std::size_t tile_begin, std::size_t tile_end);

/// The write-back every path shares, per output: out = acc, or (out + acc) + bias.
inline float lowrank_output(const LowRankArgs& a, float old, float acc, std::size_t row) {
  if (!a.accumulate) return acc;
  const float sum = old + acc;
  return a.bias ? sum + a.bias[row] : sum;
}

template <>
inline void lowrank_tiles<KernelPath::scalar>(const LowRankArgs& a, std::size_t tile_begin, std::size_t tile_end) {
  for (std::size_t tile = tile_begin; tile < tile_end; ++tile) {
    const auto* chunks = reinterpret_cast<const PackedLowRankChunk*>(a.packed + tile * a.tile_stride());
    const std::size_t rows_here = std::min(kLowRankRows, a.rows - tile * kLowRankRows);
    for (std::size_t m = 0; m < a.M; ++m) {
      const std::int8_t* x = a.x + m * a.x_stride;
      for (std::size_t r = 0; r < rows_here; ++r) {
        float acc = 0.0f;
        for (std::size_t c = 0; c < a.chunks; ++c) {
          std::int32_t d = 0;
          for (std::size_t q = 0; q < 4; ++q)
            for (std::size_t i = 0; i < 4; ++i)
              d += static_cast<std::int32_t>(x[16 * c + 4 * q + i]) * (static_cast<std::int32_t>(chunks[c].codes[q][r][i]) - 128);
          acc = std::fma(a.x_scales[m * a.chunks + c] * chunks[c].scales[r], static_cast<float>(d), acc);
        }
        const std::size_t row = tile * kLowRankRows + r;
        float& o = a.out[m * a.ldo + row];
        o = lowrank_output(a, o, acc, row);
      }
    }
  }
}

}  RANKQ_NAMESPACE_END  // namespace rankq::detail
