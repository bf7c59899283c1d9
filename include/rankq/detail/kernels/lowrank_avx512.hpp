// rankq/detail/kernels/lowrank_avx512.hpp — the avx512_vnni low-rank path: one zmm per quad (all 16 rows of a
// tile), vpdpbusd on the offset-binary codes with the activation word as a {1to16} broadcast, D = Σu·x − 128·Σx.
// docs/lqer.md §6.
#pragma once

#include "rankq/detail/abi.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "rankq/kernel_path.hpp"
#include "rankq/detail/x86_targets.hpp"
#include "rankq/detail/kernels/lowrank_layout.hpp"
#include "rankq/detail/kernels/stream_prefetch.hpp"
#include "rankq/detail/kernels/x86_primitives_avx512.hpp"

#if RANKQ_X86_PATHS
RANKQ_X86_CODE_BEGIN
RANKQ_NAMESPACE_BEGIN namespace detail {

template <KernelPath P>
void lowrank_tiles(const LowRankArgs& a, std::size_t tile_begin, std::size_t tile_end);

namespace avx512 {

template <std::size_t MR>
RANKQ_AVX512_INLINE void lowrank_token_block(const LowRankArgs& a, const PackedLowRankChunk* chunks, std::size_t row0,
                                             __mmask16 mask, std::size_t m0) {
  const std::int8_t* x[MR];
  __m512 out[MR];
  for (std::size_t t = 0; t < MR; ++t) {
    x[t] = a.x + (m0 + t) * a.x_stride;
    out[t] = _mm512_setzero_ps();
  }
  for (std::size_t c = 0; c < a.chunks; ++c) {
    const PackedLowRankChunk& ch = chunks[c];
    prefetch_page_ahead(&ch);  // the factors stream from DRAM at decode too (stream_prefetch.hpp)
    __m512i acc[MR];
    for (std::size_t t = 0; t < MR; ++t) acc[t] = _mm512_setzero_si512();
    for (std::size_t q = 0; q < 4; ++q) {
      const __m512i u = _mm512_load_si512(ch.codes[q]);
      for (std::size_t t = 0; t < MR; ++t) acc[t] = dot4(acc[t], u, x[t] + 16 * c + 4 * q);
    }
    const __m512 s = _mm512_load_ps(ch.scales);
    for (std::size_t t = 0; t < MR; ++t) {
      const std::size_t i = (m0 + t) * a.chunks + c;
      const __m512i d = _mm512_sub_epi32(acc[t], _mm512_set1_epi32(128 * a.x_sums[i]));
      out[t] = _mm512_fmadd_ps(_mm512_mul_ps(s, _mm512_set1_ps(a.x_scales[i])), _mm512_cvtepi32_ps(d), out[t]);
    }
  }
  const __m512 bias = a.accumulate && a.bias ? load_rows(a.bias + row0, mask) : _mm512_setzero_ps();
  for (std::size_t t = 0; t < MR; ++t) {
    float* dst = a.out + (m0 + t) * a.ldo + row0;
    if (a.accumulate) {
      out[t] = _mm512_add_ps(load_rows(dst, mask), out[t]);
      if (a.bias) out[t] = _mm512_add_ps(out[t], bias);
    }
    store_rows(dst, mask, out[t]);
  }
}

RANKQ_AVX512_KERNEL void run_lowrank_tiles(const LowRankArgs& a, std::size_t tile_begin, std::size_t tile_end) {
  for (std::size_t tile = tile_begin; tile < tile_end; ++tile) {
    const auto* chunks = reinterpret_cast<const PackedLowRankChunk*>(a.packed + tile * a.tile_stride());
    const std::size_t row0 = tile * kLowRankRows;
    const __mmask16 mask = row_mask(std::min(kLowRankRows, a.rows - row0));
    std::size_t m = 0;
    for (; m + 4 <= a.M; m += 4) lowrank_token_block<4>(a, chunks, row0, mask, m);
    switch (a.M - m) {
      case 3: lowrank_token_block<3>(a, chunks, row0, mask, m); break;
      case 2: lowrank_token_block<2>(a, chunks, row0, mask, m); break;
      case 1: lowrank_token_block<1>(a, chunks, row0, mask, m); break;
      default: break;
    }
  }
}

}  // namespace avx512

template <>
inline void lowrank_tiles<KernelPath::avx512_vnni>(const LowRankArgs& a, std::size_t tile_begin, std::size_t tile_end) {
  avx512::run_lowrank_tiles(a, tile_begin, tile_end);
}

}  RANKQ_NAMESPACE_END  // namespace rankq::detail
RANKQ_X86_CODE_END
#endif
