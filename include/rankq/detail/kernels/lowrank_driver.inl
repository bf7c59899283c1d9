// rankq/detail/kernels/lowrank_driver.inl — THE low-rank tile driver: one width-agnostic body for every path,
// parameterised by the path's instruction-set traits `Isa` (lr_load / lr_dot / lr_finish and the float vector
// operations; docs/kernels.md §2.1) and compiled once per path by re-inclusion inside that path's namespace, like
// w4a8_driver.inl.
//
// No include guard on purpose. The includer defines RANKQ_DRIVER_NAMESPACE, RANKQ_DRIVER_INLINE and
// RANKQ_DRIVER_KERNEL (see w4a8_driver.inl); they are undefined at the end.
//
// Arithmetic (lowrank_layout.hpp): per token, row and chunk of 16 reduction values the int8 dot product D is exact
// in int32 (4 quads of 4 values), then out = fma(s·a_x, float(D), out); finally out (accumulate = false) or
// (old + out) (+ bias).

#ifdef RANKQ_X86_CODE_BEGIN
RANKQ_X86_CODE_BEGIN
#endif
RANKQ_NAMESPACE_BEGIN namespace detail::RANKQ_DRIVER_NAMESPACE {

/// acc[t][v] += the quad-Q dot products of chunk `ch` for MR tokens and all vectors of the tile.
template <std::size_t Q, std::size_t MR>
RANKQ_DRIVER_INLINE void lowrank_quad(typename Isa::I (&acc)[MR][Isa::kVecs], const PackedLowRankChunk& ch,
                                      const typename Isa::X (&xo)[MR]) {
  for (std::size_t v = 0; v < Isa::kVecs; ++v) {
    const typename Isa::LrCodes u = Isa::lr_load(ch.codes[Q][0], v);
    for (std::size_t t = 0; t < MR; ++t) acc[t][v] = Isa::template lr_dot<Q>(acc[t][v], u, xo[t]);
  }
}

/// out rows [row0, row0 + rows) of tokens [m0, m0 + MR).
template <std::size_t MR>
RANKQ_DRIVER_INLINE void lowrank_block(const LowRankArgs& a, const PackedLowRankChunk* chunks, std::size_t row0,
                                       std::size_t rows, std::size_t m0) {
  using F = typename Isa::F;
  constexpr std::size_t V = Isa::kVecs;
  const std::int8_t* x[MR];
  F out[MR][V];
  for (std::size_t t = 0; t < MR; ++t) {
    x[t] = a.x + (m0 + t) * a.x_stride;
    for (std::size_t v = 0; v < V; ++v) out[t][v] = Isa::fzero();
  }
  for (std::size_t c = 0; c < a.chunks; ++c) {
    const PackedLowRankChunk& ch = chunks[c];
    if (Isa::kPageAhead && a.page_ahead) prefetch_page_ahead(&ch);  // the factors stream from DRAM at decode too
    typename Isa::I acc[MR][V];
    typename Isa::X xo[MR];
    for (std::size_t t = 0; t < MR; ++t) {
      xo[t] = Isa::load_x(x[t] + 16 * c);
      for (std::size_t v = 0; v < V; ++v) acc[t][v] = Isa::izero();
    }
    lowrank_quad<0>(acc, ch, xo);
    lowrank_quad<1>(acc, ch, xo);
    lowrank_quad<2>(acc, ch, xo);
    lowrank_quad<3>(acc, ch, xo);
    const auto* scales = reinterpret_cast<const std::uint8_t*>(ch.scales);
    for (std::size_t t = 0; t < MR; ++t) {
      const std::size_t i = (m0 + t) * a.chunks + c;
      const F xs = Isa::set1(a.x_scales[i]);
      for (std::size_t v = 0; v < V; ++v) {
        const F s = Isa::load_row_values(scales, v, ScaleType::f32);
        out[t][v] = Isa::fma(Isa::mul(s, xs), Isa::cvt(Isa::lr_finish(acc[t][v], a.x_sums[i])), out[t][v]);
      }
    }
  }
  F bias[V];
  for (std::size_t v = 0; v < V; ++v) bias[v] = Isa::fzero();  // only read with a bias; set for the compiler
  if (a.accumulate && a.bias) Isa::load_rows(a.bias + row0, rows, bias);
  for (std::size_t t = 0; t < MR; ++t) {
    float* dst = a.out + (m0 + t) * a.ldo + row0;
    if (a.accumulate) {
      F old[V];
      Isa::load_rows(dst, rows, old);
      for (std::size_t v = 0; v < V; ++v) {
        out[t][v] = Isa::add(old[v], out[t][v]);
        if (a.bias) out[t][v] = Isa::add(out[t][v], bias[v]);
      }
    }
    Isa::store_rows(dst, rows, out[t]);
  }
}

/// Tokens [m, M) of one tile: blocks of Isa::kLowRankTokens, then the remainder with the largest block.
template <std::size_t MR = Isa::kLowRankTokens>
RANKQ_DRIVER_INLINE void lowrank_tokens(const LowRankArgs& a, const PackedLowRankChunk* chunks, std::size_t row0,
                                        std::size_t rows, std::size_t m) {
  if constexpr (MR == Isa::kLowRankTokens)
    for (; m + MR <= a.M; m += MR) lowrank_block<MR>(a, chunks, row0, rows, m);
  else if (a.M - m == MR)
    return lowrank_block<MR>(a, chunks, row0, rows, m);
  if constexpr (MR > 1) lowrank_tokens<MR - 1>(a, chunks, row0, rows, m);
}

/// The path's low-rank kernel over tiles [tile_begin, tile_end) (found by argument-dependent lookup on the Isa tag).
RANKQ_DRIVER_KERNEL void run_lowrank_tiles(Isa, const LowRankArgs& a, std::size_t tile_begin, std::size_t tile_end) {
  for (std::size_t tile = tile_begin; tile < tile_end; ++tile) {
    const auto* chunks = reinterpret_cast<const PackedLowRankChunk*>(a.packed + tile * a.tile_stride());
    const std::size_t row0 = tile * kLowRankRows;
    lowrank_tokens(a, chunks, row0, std::min(kLowRankRows, a.rows - row0), 0);
  }
}

}  RANKQ_NAMESPACE_END  // namespace rankq::detail::RANKQ_DRIVER_NAMESPACE
#ifdef RANKQ_X86_CODE_END
RANKQ_X86_CODE_END
#endif

#undef RANKQ_DRIVER_NAMESPACE
#undef RANKQ_DRIVER_INLINE
#undef RANKQ_DRIVER_KERNEL
