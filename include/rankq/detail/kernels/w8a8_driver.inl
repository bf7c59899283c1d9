// rankq/detail/kernels/w8a8_driver.inl — THE W8A8 tile driver (8-bit uniform weights x int8 activations): one
// width-agnostic body for every path, on the path's instruction-set traits `Isa` (the low-rank factors' code
// operands lr_load / lr_finish plus w8_dot, and the float vector operations; docs/kernels.md §2.1), compiled once
// per path by re-inclusion inside that path's namespace, like w4a8_driver.inl.
//
// No include guard on purpose. The includer defines RANKQ_DRIVER_NAMESPACE, RANKQ_DRIVER_INLINE and
// RANKQ_DRIVER_KERNEL (see w4a8_driver.inl); they are undefined at the end.
//
// Arithmetic (w8a8_layout.hpp, docs/kernels.md §2.2): per token, row and segment (a group cut at activation-block
// boundaries) D = Σ q_x·(t − 128) is exact in int32 (4 quads of 4 K per 16-K chunk, lr_finish removes the
// vpdpbusd paths' 128·Σq_x once per segment), then out = fma(s·a_seg, float(D), out); per group of an asymmetric
// format out −= (z − 128·s)·xsum; finally (+ bias) and store. The same float operations in the same order on every
// path, so every path's output is bit-identical to the scalar path's.

#ifdef RANKQ_X86_CODE_BEGIN
RANKQ_X86_CODE_BEGIN
#endif
RANKQ_NAMESPACE_BEGIN namespace detail::RANKQ_DRIVER_NAMESPACE {

/// acc[t][v][Q mod C] += the quad-Q dot products of one 16-K chunk for MR tokens and all vectors of the tile.
template <std::size_t Q, std::size_t MR, std::size_t C>
RANKQ_DRIVER_INLINE void w8a8_quad(typename Isa::I (&acc)[MR][Isa::kVecs][C], const std::uint8_t* chunk,
                                   const typename Isa::X (&xo)[MR]) {
  #pragma GCC unroll 16
  for (std::size_t v = 0; v < Isa::kVecs; ++v) {
    const typename Isa::LrCodes u = Isa::lr_load(chunk + 64 * Q, v);
    #pragma GCC unroll 16
    for (std::size_t t = 0; t < MR; ++t) acc[t][v][Q % C] = Isa::template w8_dot<Q>(acc[t][v][Q % C], u, xo[t]);
  }
}

/// y[m0 .. m0+MR) x the rows of one tile, over all groups.
template <std::size_t MR>
RANKQ_DRIVER_KERNEL void w8a8_block(const W8A8Args& a, std::size_t tile, std::size_t m0) {
  using F = typename Isa::F;
  constexpr std::size_t V = Isa::kVecs;
  constexpr std::size_t C = Isa::template chains<MR>();  // independent int32 chains per (token, vector): latency
  const PackedW8Geometry& geo = a.geo;
  const std::uint8_t* td = a.packed + tile * geo.tile_stride();
  const std::uint8_t* codes = td + geo.header_bytes();
  const std::size_t value_bytes = kTileRows * geo.scale_bytes;
  const std::size_t n0 = tile * kTileRows, rows = std::min(kTileRows, a.rows - n0);
  const std::int8_t* x[MR];
  F out[MR][V];
  #pragma GCC unroll 16
  for (std::size_t t = 0; t < MR; ++t) {
    x[t] = a.x + (m0 + t) * a.x_padded;
    #pragma GCC unroll 16
    for (std::size_t v = 0; v < V; ++v) out[t][v] = Isa::fzero();
  }
  std::size_t b = 0, b_end = a.x_block;  // activation block of k, its end
  for (std::size_t g = 0; g < geo.groups; ++g) {
    const std::size_t g0 = g * geo.group, g_end = g0 + geo.group;
    F s[V];
    #pragma GCC unroll 16
    for (std::size_t v = 0; v < V; ++v) s[v] = Isa::load_row_values(td + g * value_bytes, v, a.scale_type);
    for (std::size_t k = g0; k < g_end;) {
      if (k == b_end) ++b, b_end += a.x_block;
      const std::size_t seg_end = std::min(g_end, b_end);
      typename Isa::I acc[MR][V][C];
      std::int32_t xq[MR];
      #pragma GCC unroll 16
      for (std::size_t t = 0; t < MR; ++t) {
        xq[t] = 0;
        #pragma GCC unroll 16
        for (std::size_t v = 0; v < V; ++v)
          #pragma GCC unroll 16
          for (std::size_t c = 0; c < C; ++c) acc[t][v][c] = Isa::izero();
      }
      for (; k < seg_end; k += kW8ChunkK) {
        const std::size_t c = k / kW8ChunkK;
        const std::uint8_t* chunk = codes + c * kW8ChunkBytes;
        if (Isa::kPageAhead && a.page_ahead && c % 4 == 0) prefetch_page_ahead(chunk);  // once per KiB: stream_prefetch.hpp
        typename Isa::X xo[MR];
        #pragma GCC unroll 16
        for (std::size_t t = 0; t < MR; ++t) {
          xo[t] = Isa::load_x(x[t] + k);
          xq[t] += a.x_chunk_sums[(m0 + t) * geo.chunks + c];
        }
        w8a8_quad<0>(acc, chunk, xo);
        w8a8_quad<1>(acc, chunk, xo);
        w8a8_quad<2>(acc, chunk, xo);
        w8a8_quad<3>(acc, chunk, xo);
      }
      #pragma GCC unroll 16
      for (std::size_t t = 0; t < MR; ++t) {
        const F sa = Isa::set1(a.x_scales[(m0 + t) * a.x_blocks + b]);
        #pragma GCC unroll 16
        for (std::size_t v = 0; v < V; ++v) {
          typename Isa::I d = acc[t][v][0];
          #pragma GCC unroll 16
          for (std::size_t c = 1; c < C; ++c) d = Isa::iadd(d, acc[t][v][c]);
          out[t][v] = Isa::fma(Isa::mul(s[v], sa), Isa::cvt(Isa::lr_finish(d, xq[t])), out[t][v]);
        }
      }
    }
    if (!geo.has_offsets) continue;
    const std::uint8_t* offsets = td + geo.values_bytes() + g * value_bytes;
    #pragma GCC unroll 16
    for (std::size_t v = 0; v < V; ++v) {
      const F z = Isa::fnma(s[v], Isa::set1(128.0f), Isa::load_row_values(offsets, v, a.scale_type));  // z − 128·s
      #pragma GCC unroll 16
      for (std::size_t t = 0; t < MR; ++t) out[t][v] = Isa::fnma(z, Isa::set1(a.xsum[(m0 + t) * geo.groups + g]), out[t][v]);
    }
  }
  F bias[V];
  #pragma GCC unroll 16
  for (std::size_t v = 0; v < V; ++v) bias[v] = Isa::fzero();  // only read with a bias; set for the compiler
  if (a.bias) Isa::load_rows(a.bias + n0, rows, bias);
  #pragma GCC unroll 16
  for (std::size_t t = 0; t < MR; ++t) {
    if (a.bias)
      #pragma GCC unroll 16
      for (std::size_t v = 0; v < V; ++v) out[t][v] = Isa::add(out[t][v], bias[v]);
    Isa::store_rows(a.y + (m0 + t) * a.ldy + n0, rows, out[t]);
  }
}

/// Tokens [m, M) of one tile: blocks of Isa::kLowRankTokens, then the remainder with the largest block.
template <std::size_t MR = Isa::kLowRankTokens>
RANKQ_DRIVER_INLINE void w8a8_tokens(const W8A8Args& a, std::size_t tile, std::size_t m) {
  if constexpr (MR == Isa::kLowRankTokens)
    for (; m + MR <= a.M; m += MR) w8a8_block<MR>(a, tile, m);
  else if (a.M - m == MR)
    return w8a8_block<MR>(a, tile, m);
  if constexpr (MR > 1) w8a8_tokens<MR - 1>(a, tile, m);
}

/// The path's W8A8 kernel over tiles [tile_begin, tile_end) (found by argument-dependent lookup on the Isa tag).
RANKQ_DRIVER_KERNEL void run_w8a8_tiles(Isa, const W8A8Args& a, std::size_t tile_begin, std::size_t tile_end) {
  for (std::size_t tile = tile_begin; tile < tile_end; ++tile) w8a8_tokens(a, tile, 0);
}

}  RANKQ_NAMESPACE_END  // namespace rankq::detail::RANKQ_DRIVER_NAMESPACE
#ifdef RANKQ_X86_CODE_END
RANKQ_X86_CODE_END
#endif

#undef RANKQ_DRIVER_NAMESPACE
#undef RANKQ_DRIVER_INLINE
#undef RANKQ_DRIVER_KERNEL
