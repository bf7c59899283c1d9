// rankq/detail/kernels/codebook_driver.inl — THE codebook tile driver: one width-agnostic body for every path,
// parameterised by the path's instruction-set traits `Isa` (cb_lut / cb_lookup / cb_dot / cb_finish, the nibble
// unpack and the float vector operations; docs/kernels.md §2.1), compiled once per path by re-inclusion inside that
// path's namespace, like w4a8_driver.inl.
//
// No include guard on purpose. The includer defines RANKQ_DRIVER_NAMESPACE, RANKQ_DRIVER_INLINE and
// RANKQ_DRIVER_KERNEL (see w4a8_driver.inl); they are undefined at the end.
//
// Float order: codebook_reference_matmul's (docs/lcq.md §6), so every path gives the same bits: acc =
// fma(a_seg, float(dot), acc) per segment, part = gs·acc / fma(gs, acc, part) per rank, out = out + fma(−off, xs,
// part) per group. Ranks run in blocks of Isa::cb_rank_block<MR>() inside the K loop: a code block is unpacked once
// per rank block, and each (token, rank, vector) has Isa::cb_chains<MR·RB>() int32 chains.

#ifdef RANKQ_X86_CODE_BEGIN
RANKQ_X86_CODE_BEGIN
#endif
RANKQ_NAMESPACE_BEGIN namespace detail::RANKQ_DRIVER_NAMESPACE {

/// iacc += one 8-K code block (J = 0, 1 of the 16-K chunk at `chunk`) for MR tokens, RB ranks and every vector.
template <std::size_t J, std::size_t MR, unsigned RB, std::size_t C>
RANKQ_DRIVER_INLINE void codebook_block(typename Isa::I (&iacc)[MR][RB][Isa::kVecs][C], const std::uint8_t* chunk,
                                        const typename Isa::CbLut (&lut)[RB], const typename Isa::X (&xo)[MR]) {
#pragma GCC unroll 16
  for (std::size_t v = 0; v < Isa::kVecs; ++v) {
    const typename Isa::Codes c = Isa::unpack(chunk + J * sizeof(PackedCodeBlock), v);
#pragma GCC unroll 4
    for (unsigned r = 0; r < RB; ++r) {
      const typename Isa::CbLevels w = Isa::cb_lookup(lut[r], c);
#pragma GCC unroll 8
      for (std::size_t t = 0; t < MR; ++t) Isa::template cb_dot<J>(iacc[t][r][v], w, xo[t]);
    }
  }
}

/// Ranks [q0, q0 + RB) of the group at `gd` (first column g0) for MR tokens, folded into part in rank order.
template <std::size_t MR, unsigned RB>
RANKQ_DRIVER_INLINE void codebook_rank_block(const CodebookArgs& a, const std::uint8_t* gd, const std::int8_t* const* x,
                                             std::size_t m0, std::size_t g0, unsigned q0,
                                             typename Isa::F (&part)[MR][Isa::kVecs]) {
  using F = typename Isa::F;
  constexpr std::size_t V = Isa::kVecs;
  constexpr std::size_t C = Isa::template cb_chains<MR * RB>();
  const std::size_t g_end = g0 + a.geo.group;
  typename Isa::CbLut lut[RB];
  #pragma GCC unroll 16
  for (unsigned r = 0; r < RB; ++r) lut[r] = Isa::cb_lut(a.lut + (q0 + r) * kCodebookLutEntries);
  F acc[MR][RB][V];
  #pragma GCC unroll 16
  for (std::size_t t = 0; t < MR; ++t)
    #pragma GCC unroll 16
    for (unsigned r = 0; r < RB; ++r)
      #pragma GCC unroll 16
      for (std::size_t v = 0; v < V; ++v) acc[t][r][v] = Isa::fzero();
  for (std::size_t k = g0; k < g_end;) {
    const std::size_t b = k / a.x_block;
    const std::size_t seg_start = k, seg_end = std::min(g_end, (b + 1) * a.x_block);
    typename Isa::I iacc[MR][RB][V][C];
    #pragma GCC unroll 16
    for (std::size_t t = 0; t < MR; ++t)
      #pragma GCC unroll 16
      for (unsigned r = 0; r < RB; ++r)
        #pragma GCC unroll 16
        for (std::size_t v = 0; v < V; ++v)
          #pragma GCC unroll 16
          for (std::size_t c = 0; c < C; ++c) iacc[t][r][v][c] = Isa::izero();
    const std::uint8_t* chunk = gd + (k - g0) / kBlockK * sizeof(PackedCodeBlock);
    // One 8-K code block per step (cb_block_steps) or one 16-K chunk, both blocks; segments are multiples of 16 K.
    constexpr std::size_t kStepBlocks = Isa::template cb_block_steps<MR>() ? 1 : 2;
    for (; k < seg_end; k += kStepBlocks * kBlockK, chunk += kStepBlocks * sizeof(PackedCodeBlock)) {
      typename Isa::X xo[MR];
      #pragma GCC unroll 16
      for (std::size_t t = 0; t < MR; ++t) xo[t] = Isa::load_x(x[t] + k);
      codebook_block<0>(iacc, chunk, lut, xo);
      if constexpr (kStepBlocks == 2) codebook_block<1>(iacc, chunk, lut, xo);
    }
    #pragma GCC unroll 16
    for (std::size_t t = 0; t < MR; ++t) {
      const std::int32_t sum = codebook_segment_sum(a, m0 + t, seg_start, seg_end);
      const F xs = Isa::set1(a.x_scales[(m0 + t) * a.x_blocks + b]);
      #pragma GCC unroll 16
      for (unsigned r = 0; r < RB; ++r)
        #pragma GCC unroll 16
        for (std::size_t v = 0; v < V; ++v) {
          typename Isa::I dot = iacc[t][r][v][0];
          #pragma GCC unroll 16
          for (std::size_t c = 1; c < C; ++c) dot = Isa::iadd(dot, iacc[t][r][v][c]);
          acc[t][r][v] = Isa::fma(xs, Isa::cvt(Isa::cb_finish(dot, sum)), acc[t][r][v]);
        }
    }
  }
  #pragma GCC unroll 16
  for (unsigned r = 0; r < RB; ++r) {
    const unsigned q = q0 + r;
    #pragma GCC unroll 16
    for (std::size_t v = 0; v < V; ++v) {
      const F gs = Isa::load_row_values(gd + a.geo.scales_at() + q * kTileRows * sizeof(float), v, ScaleType::f32);
      #pragma GCC unroll 16
      for (std::size_t t = 0; t < MR; ++t)
        part[t][v] = q == 0 ? Isa::mul(gs, acc[t][r][v]) : Isa::fma(gs, acc[t][r][v], part[t][v]);
    }
  }
}

/// y[m0 .. m0+MR)[n0 .. n0+16) for one tile.
template <std::size_t MR>
RANKQ_DRIVER_INLINE void codebook_block_tokens(const CodebookArgs& a, const std::uint8_t* tile, std::size_t n0,
                                               std::size_t rows, std::size_t m0) {
  using F = typename Isa::F;
  constexpr std::size_t V = Isa::kVecs;
  constexpr unsigned RB = Isa::template cb_rank_block<MR>();
  const PackedCodebookGeometry& geo = a.geo;
  const std::int8_t* x[MR];
  F out[MR][V];
  for (std::size_t t = 0; t < MR; ++t) {
    x[t] = a.x + (m0 + t) * a.x_padded;
    for (std::size_t v = 0; v < V; ++v) out[t][v] = Isa::fzero();
  }
  for (std::size_t g = 0; g < geo.groups; ++g) {
    const std::uint8_t* gd = tile + g * geo.group_stride();
    if (Isa::kPageAhead) {
      // Touch the end of the group's stream (its offsets) before its codes: keeps more DRAM requests in flight at
      // decode (avx512vnni M = 1 cold ~20 -> ~30 GB/s, docs/lcq.md §7), and the page 16 KiB ahead.
      prefetch_line(gd + geo.offsets_at());
      if (a.page_ahead) prefetch_page_ahead(gd);
    }
    F part[MR][V];  // set at rank 0
    for (std::size_t t = 0; t < MR; ++t)
      for (std::size_t v = 0; v < V; ++v) part[t][v] = Isa::fzero();
    for (unsigned q0 = 0; q0 < geo.rank; q0 += RB) {
      switch (std::min(RB, geo.rank - q0)) {
        case 4: if constexpr (RB >= 4) codebook_rank_block<MR, 4>(a, gd, x, m0, g * geo.group, q0, part); break;
        case 3: if constexpr (RB >= 3) codebook_rank_block<MR, 3>(a, gd, x, m0, g * geo.group, q0, part); break;
        case 2: if constexpr (RB >= 2) codebook_rank_block<MR, 2>(a, gd, x, m0, g * geo.group, q0, part); break;
        default: codebook_rank_block<MR, 1>(a, gd, x, m0, g * geo.group, q0, part); break;
      }
    }
    for (std::size_t v = 0; v < V; ++v) {
      const F off = Isa::load_row_values(gd + geo.offsets_at(), v, ScaleType::f32);
      for (std::size_t t = 0; t < MR; ++t)
        out[t][v] = Isa::add(out[t][v], Isa::fnma(off, Isa::set1(a.xs[(m0 + t) * geo.groups + g]), part[t][v]));
    }
  }
  F bias[V];
  for (std::size_t v = 0; v < V; ++v) bias[v] = Isa::fzero();  // only read with a bias; set for the compiler
  if (a.bias) Isa::load_rows(a.bias + n0, rows, bias);
  for (std::size_t t = 0; t < MR; ++t) {
    if (a.bias)
      for (std::size_t v = 0; v < V; ++v) out[t][v] = Isa::add(out[t][v], bias[v]);
    Isa::store_rows(a.y + (m0 + t) * a.ldy + n0, rows, out[t]);
  }
}

/// Tokens [m, M) of one tile: blocks of Isa::kCodebookTokens, then the remainder with the largest block.
template <std::size_t MR = Isa::kCodebookTokens>
RANKQ_DRIVER_INLINE void codebook_tokens(const CodebookArgs& a, const std::uint8_t* tile, std::size_t n0,
                                         std::size_t rows, std::size_t m) {
  if constexpr (MR == Isa::kCodebookTokens)
    for (; m + MR <= a.M; m += MR) codebook_block_tokens<MR>(a, tile, n0, rows, m);
  else if (a.M - m == MR)
    return codebook_block_tokens<MR>(a, tile, n0, rows, m);
  if constexpr (MR > 1) codebook_tokens<MR - 1>(a, tile, n0, rows, m);
}

/// The path's codebook kernel over tiles [tile_begin, tile_end) (found by argument-dependent lookup on the tag).
RANKQ_DRIVER_KERNEL void run_codebook_tiles(Isa, const CodebookArgs& a, std::size_t tile_begin, std::size_t tile_end) {
  for (std::size_t tile = tile_begin; tile < tile_end; ++tile) {
    const std::size_t n0 = tile * kTileRows;
    codebook_tokens(a, a.packed + tile * a.geo.tile_stride(), n0, std::min(kTileRows, a.rows - n0), 0);
  }
}

}  RANKQ_NAMESPACE_END  // namespace rankq::detail::RANKQ_DRIVER_NAMESPACE
#ifdef RANKQ_X86_CODE_END
RANKQ_X86_CODE_END
#endif

#undef RANKQ_DRIVER_NAMESPACE
#undef RANKQ_DRIVER_INLINE
#undef RANKQ_DRIVER_KERNEL
