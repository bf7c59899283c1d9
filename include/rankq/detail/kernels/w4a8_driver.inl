// rankq/detail/kernels/w4a8_driver.inl — THE W4A8 tile driver: one width-agnostic body for every path (scalar,
// avx2, avx_vnni, avx512vnni decode, neon, neon_dotprod), parameterised by the path's instruction-set traits `Isa`
// (contract: docs/kernels.md §2.1). A target attribute cannot be a template argument, so the body is compiled once
// per path by re-inclusion inside that path's namespace (Highway's foreach_target idea): every symbol it defines
// is the path's own, and no two differently compiled bodies share a name.
//
// No include guard on purpose. The includer defines RANKQ_DRIVER_NAMESPACE (the path's namespace below
// rankq::detail, which holds `Isa`), RANKQ_DRIVER_INLINE (always-inline + the path's target) and RANKQ_DRIVER_KERNEL
// (noinline + the path's target); they are undefined at the end.
//
// Arithmetic (docs/kernels.md §2): per token, row and group the group is cut at activation-block boundaries into
// segments (multiples of 16 K); each segment's dot product Σ q_x·t is exact in int32 (partials of the path's width
// widened every Isa::kMaxChunks 16-K chunks), then out += (s·a_seg)·dot; per group out −= z·xsum. kFold (a.xqsum
// set: symmetric weights, per-token activations): the int32 accumulator starts at −zero_code·Σq, out += s·dot,
// and out *= a_token once at the end.

#ifdef RANKQ_X86_CODE_BEGIN
RANKQ_X86_CODE_BEGIN
#endif
RANKQ_NAMESPACE_BEGIN namespace detail::RANKQ_DRIVER_NAMESPACE {

/// y[m0 .. m0+MR) x the rows of NT consecutive tiles from `tile`, over all groups.
template <std::size_t MR, std::size_t NT, bool kFold>
RANKQ_DRIVER_KERNEL void w4a8_block(const W4A8Args& a, std::size_t tile, std::size_t m0) {
  using F = typename Isa::F;
  using I = typename Isa::I;
  using Partial = typename Isa::Partial;
  constexpr std::size_t V = Isa::kVecs;                        // vectors per 16-row tile
  constexpr std::size_t C = Isa::template chains<MR * NT>();  // independent partials per (token, tile, vector)
  const PackedW4Geometry& geo = a.geo;
  const std::size_t code_bytes = geo.code_bytes(), group_stride = geo.group_stride();
  const std::uint8_t* td[NT];
  std::size_t n0[NT], rows[NT];
  #pragma GCC unroll 16
  for (std::size_t u = 0; u < NT; ++u) {
    td[u] = a.packed + (tile + u) * geo.tile_stride();
    n0[u] = (tile + u) * kTileRows;
    rows[u] = std::min(kTileRows, a.rows - n0[u]);
  }
  const std::int8_t* x[MR];
  F out[MR][NT][V];
  #pragma GCC unroll 16
  for (std::size_t t = 0; t < MR; ++t) {
    x[t] = a.x + (m0 + t) * a.x_padded;
    #pragma GCC unroll 16
    for (std::size_t u = 0; u < NT; ++u)
      #pragma GCC unroll 16
      for (std::size_t v = 0; v < V; ++v) out[t][u][v] = Isa::fzero();
  }
  std::size_t b = 0, b_end = a.x_block;  // activation block of k, its end
  for (std::size_t g = 0; g < geo.groups; ++g) {
    const std::size_t g0 = g * geo.group, g_end = g0 + geo.group;
    F s[NT][V];
    #pragma GCC unroll 16
    for (std::size_t u = 0; u < NT; ++u) {
      if (Isa::kPageAhead && a.page_ahead) prefetch_page_ahead(td[u] + g * group_stride);  // stream_prefetch.hpp
      #pragma GCC unroll 16
      for (std::size_t v = 0; v < V; ++v) s[u][v] = Isa::load_row_values(td[u] + g * group_stride + code_bytes, v, a.scale_type);
    }
    for (std::size_t k = g0; k < g_end;) {
      if (k == b_end) ++b, b_end += a.x_block;
      const std::size_t seg_end = std::min(g_end, b_end);
      I acc[MR][NT][V];
      #pragma GCC unroll 16
      for (std::size_t t = 0; t < MR; ++t) {
        const I init = kFold ? Isa::iset1(-static_cast<std::int32_t>(a.zero_code) * a.xqsum[(m0 + t) * geo.groups + g])
                             : Isa::izero();
        #pragma GCC unroll 16
        for (std::size_t u = 0; u < NT; ++u)
          #pragma GCC unroll 16
          for (std::size_t v = 0; v < V; ++v) acc[t][u][v] = init;
      }
      std::size_t off = g * group_stride + (k - g0) / kBlockK * sizeof(PackedCodeBlock);
      while (k < seg_end) {
        // Isa::kMaxChunks counts chunks for a partial that takes both blocks of each chunk; dot spreads the two
        // blocks over the C partials (J % C), so C times as many chunks fit before finish widens them.
        const std::size_t chunk_end = k + std::min(seg_end - k, 2 * kBlockK * Isa::kMaxChunks * C);
        Partial p[MR][NT][V][C];
        #pragma GCC unroll 16
        for (std::size_t t = 0; t < MR; ++t)
          #pragma GCC unroll 16
          for (std::size_t u = 0; u < NT; ++u)
            #pragma GCC unroll 16
            for (std::size_t v = 0; v < V; ++v)
              #pragma GCC unroll 16
              for (std::size_t c = 0; c < C; ++c) p[t][u][v][c] = Isa::pzero();
        for (; k < chunk_end; k += 2 * kBlockK, off += 2 * sizeof(PackedCodeBlock)) {  // one 16-K chunk: two blocks
          typename Isa::X xo[MR];
          #pragma GCC unroll 16
          for (std::size_t t = 0; t < MR; ++t) xo[t] = Isa::load_x(x[t] + k);
          #pragma GCC unroll 16
          for (std::size_t v = 0; v < V; ++v)
            #pragma GCC unroll 16
            for (std::size_t u = 0; u < NT; ++u) {
              const typename Isa::Codes c = Isa::unpack(td[u] + off, v);
              #pragma GCC unroll 16
              for (std::size_t t = 0; t < MR; ++t) Isa::template dot<NT, 0>(p[t][u][v], c, xo[t]);
            }
          #pragma GCC unroll 16
          for (std::size_t v = 0; v < V; ++v)
            #pragma GCC unroll 16
            for (std::size_t u = 0; u < NT; ++u) {
              const typename Isa::Codes c = Isa::unpack(td[u] + off + sizeof(PackedCodeBlock), v);
              #pragma GCC unroll 16
              for (std::size_t t = 0; t < MR; ++t) Isa::template dot<NT, 1>(p[t][u][v], c, xo[t]);
            }
        }
        #pragma GCC unroll 16
        for (std::size_t t = 0; t < MR; ++t)
          #pragma GCC unroll 16
          for (std::size_t u = 0; u < NT; ++u)
            #pragma GCC unroll 16
            for (std::size_t v = 0; v < V; ++v) acc[t][u][v] = Isa::finish(acc[t][u][v], p[t][u][v]);
      }
      #pragma GCC unroll 16
      for (std::size_t t = 0; t < MR; ++t) {
        const F xs = Isa::set1(a.x_scales[(m0 + t) * a.x_blocks + b]);
        #pragma GCC unroll 16
        for (std::size_t u = 0; u < NT; ++u)
          #pragma GCC unroll 16
          for (std::size_t v = 0; v < V; ++v)
            out[t][u][v] = Isa::fma(kFold ? s[u][v] : Isa::mul(s[u][v], xs), Isa::cvt(acc[t][u][v]), out[t][u][v]);
      }
    }
    if (kFold) continue;
    #pragma GCC unroll 16
    for (std::size_t u = 0; u < NT; ++u) {
      const std::uint8_t* offsets = td[u] + g * group_stride + code_bytes + kTileRows * geo.scale_bytes;
      #pragma GCC unroll 16
      for (std::size_t v = 0; v < V; ++v) {
        const F z = geo.has_offsets ? Isa::load_row_values(offsets, v, a.scale_type) : Isa::mul(s[u][v], Isa::set1(a.zero_code));
        #pragma GCC unroll 16
        for (std::size_t t = 0; t < MR; ++t)
          out[t][u][v] = Isa::fnma(z, Isa::set1(a.xsum[(m0 + t) * geo.groups + g]), out[t][u][v]);
      }
    }
  }
  #pragma GCC unroll 16
  for (std::size_t u = 0; u < NT; ++u) {
    F bias[V];
    for (std::size_t v = 0; v < V; ++v) bias[v] = Isa::fzero();  // only read with a bias; set for the compiler
    if (a.bias) Isa::load_rows(a.bias + n0[u], rows[u], bias);
    #pragma GCC unroll 16
    for (std::size_t t = 0; t < MR; ++t) {
      const F xs = Isa::set1(a.x_scales[(m0 + t) * a.x_blocks]);
      #pragma GCC unroll 16
      for (std::size_t v = 0; v < V; ++v) {
        if (kFold) out[t][u][v] = Isa::mul(out[t][u][v], xs);
        if (a.bias) out[t][u][v] = Isa::add(out[t][u][v], bias[v]);
      }
      Isa::store_rows(a.y + (m0 + t) * a.ldy + n0[u], rows[u], out[t][u]);
    }
  }
}

/// Tokens [m, M) of NT tiles from `tile`: blocks of Isa::kTokenBlock, then the remainder with the largest block.
template <std::size_t NT, bool kFold, std::size_t MR = Isa::kTokenBlock>
RANKQ_DRIVER_INLINE void w4a8_tokens(const W4A8Args& a, std::size_t tile, std::size_t m) {
  if constexpr (MR == Isa::kTokenBlock)
    for (; m + MR <= a.M; m += MR) w4a8_block<MR, NT, kFold>(a, tile, m);
  else if (a.M - m == MR)
    return w4a8_block<MR, NT, kFold>(a, tile, m);
  if constexpr (MR > 1) w4a8_tokens<NT, kFold, MR - 1>(a, tile, m);
}

/// Tiles [tile_begin, tile_end), NT at a time (single tiles at the end).
template <std::size_t NT, bool kFold>
RANKQ_DRIVER_INLINE void w4a8_panel(const W4A8Args& a, std::size_t tile_begin, std::size_t tile_end) {
  std::size_t tile = tile_begin;
  if constexpr (NT > 1)
    for (; tile + NT <= tile_end; tile += NT) w4a8_tokens<NT, kFold>(a, tile, 0);
  for (; tile < tile_end; ++tile) w4a8_tokens<1, kFold>(a, tile, 0);
}

/// The path's W4A8 kernel over tiles [tile_begin, tile_end) (found by argument-dependent lookup on the Isa tag). M = 1 streams one tile at a time (each tile's codes
/// once, group after group); from 2 tokens on, Isa::kTileBlock tiles share each activation broadcast.
RANKQ_DRIVER_KERNEL void run_w4a8_tiles(Isa, const W4A8Args& a, std::size_t tile_begin, std::size_t tile_end) {
  const bool fold = a.xqsum != nullptr;
  if (a.M == 1 || Isa::kTileBlock == 1)
    return fold ? w4a8_panel<1, true>(a, tile_begin, tile_end) : w4a8_panel<1, false>(a, tile_begin, tile_end);
  fold ? w4a8_panel<Isa::kTileBlock, true>(a, tile_begin, tile_end)
       : w4a8_panel<Isa::kTileBlock, false>(a, tile_begin, tile_end);
}

}  RANKQ_NAMESPACE_END  // namespace rankq::detail::RANKQ_DRIVER_NAMESPACE
#ifdef RANKQ_X86_CODE_END
RANKQ_X86_CODE_END
#endif

#undef RANKQ_DRIVER_NAMESPACE
#undef RANKQ_DRIVER_INLINE
#undef RANKQ_DRIVER_KERNEL
