// rankq/detail/kernels/codebook_ymm_driver.inl — the 256-bit codebook tile driver, compiled once per ymm path (avx2,
// avx_vnni) inside that path's namespace with that path's target attribute (like w4a8_ymm_driver.inl).
//
// No include guard on purpose. The includer defines RANKQ_CB_YMM_NAMESPACE, RANKQ_CB_YMM_INLINE, RANKQ_CB_YMM_KERNEL
// and, in that namespace: `CodebookDot` (lut / token / add / finish and the compile-time rank_block<MR> and
// chains<MR·RB> — the level lookup + dot-product primitive), kCodebookTokenBlock (1..4), Nibbles, unpack_code_half,
// load_rows, store_rows. The macros are undefined at the end.
//
// Ranks run in blocks of CodebookDot::rank_block<MR> inside the K loop: a code half is unpacked once per block and a
// token's activation operands once per 8 K, shared by both halves and every rank of the block.

RANKQ_X86_CODE_BEGIN
RANKQ_NAMESPACE_BEGIN namespace detail::RANKQ_CB_YMM_NAMESPACE {

/// Ranks [q0, q0 + RB) of one group for MR tokens: acc_r over the group's segments, then folded into part in rank
/// order (the float order of codebook_reference_matmul, docs/lcq.md §6). A code block is two ymm halves (rows 0-7 in
/// bytes 0-31, rows 8-15 in bytes 32-63); each (token, rank, half) has C int32 chains (lo / hi nibbles when C = 2).
template <std::size_t MR, unsigned RB>
RANKQ_CB_YMM_INLINE void codebook_rank_block(const CodebookArgs& a, const std::uint8_t* gd, const std::int8_t* const* x,
                                             std::size_t m0, std::size_t g0, unsigned q0, __m256 (*part)[2]) {
  constexpr std::size_t C = CodebookDot::template chains<MR * RB>;
  const PackedCodebookGeometry& geo = a.geo;
  const std::size_t g_end = g0 + geo.group;
  typename CodebookDot::Lut lut[RB];
#pragma GCC unroll 8
  for (unsigned r = 0; r < RB; ++r) lut[r] = CodebookDot::lut(a.lut + (q0 + r) * kCodebookLutEntries);
  __m256 acc[MR][RB][2];
#pragma GCC unroll 8
  for (std::size_t t = 0; t < MR; ++t)
#pragma GCC unroll 8
    for (unsigned r = 0; r < RB; ++r) acc[t][r][0] = acc[t][r][1] = _mm256_setzero_ps();
  for (std::size_t k = g0; k < g_end;) {
    const std::size_t b = k / a.x_block;
    const std::size_t seg_start = k, seg_end = std::min(g_end, (b + 1) * a.x_block);
    __m256i iacc[MR][RB][2][C];
#pragma GCC unroll 8
    for (std::size_t t = 0; t < MR; ++t)
#pragma GCC unroll 8
      for (unsigned r = 0; r < RB; ++r)
#pragma GCC unroll 2
        for (std::size_t h = 0; h < 2; ++h)
#pragma GCC unroll 2
          for (std::size_t c = 0; c < C; ++c) iacc[t][r][h][c] = _mm256_setzero_si256();
    const std::uint8_t* block = gd + (k - g0) / kBlockK * sizeof(PackedCodeBlock);
    for (; k < seg_end; k += kBlockK, block += sizeof(PackedCodeBlock)) {  // segments: multiples of 16 K
      typename CodebookDot::Token xt[MR];
#pragma GCC unroll 8
      for (std::size_t t = 0; t < MR; ++t) xt[t] = CodebookDot::token(x[t] + k);
#pragma GCC unroll 2
      for (std::size_t h = 0; h < 2; ++h) {
        const Nibbles c = unpack_code_half(block + h * 32);
#pragma GCC unroll 8
        for (unsigned r = 0; r < RB; ++r) {
          const __m256i lo = CodebookDot::lookup(lut[r], c.lo), hi = CodebookDot::lookup(lut[r], c.hi);
#pragma GCC unroll 8
          for (std::size_t t = 0; t < MR; ++t) CodebookDot::add(iacc[t][r][h][0], iacc[t][r][h][C - 1], lo, hi, xt[t]);
        }
      }
    }
#pragma GCC unroll 8
    for (std::size_t t = 0; t < MR; ++t) {
      const std::int32_t sum = codebook_segment_sum(a, m0 + t, seg_start, seg_end);
      const __m256 xs = _mm256_set1_ps(a.x_scales[(m0 + t) * a.x_blocks + b]);
#pragma GCC unroll 8
      for (unsigned r = 0; r < RB; ++r)
#pragma GCC unroll 2
        for (std::size_t h = 0; h < 2; ++h) {
          const __m256i dot = C == 2 ? _mm256_add_epi32(iacc[t][r][h][0], iacc[t][r][h][C - 1]) : iacc[t][r][h][0];
          acc[t][r][h] = _mm256_fmadd_ps(xs, _mm256_cvtepi32_ps(CodebookDot::finish(dot, sum)), acc[t][r][h]);
        }
    }
  }
#pragma GCC unroll 8
  for (unsigned r = 0; r < RB; ++r) {
    const unsigned q = q0 + r;
#pragma GCC unroll 2
    for (std::size_t h = 0; h < 2; ++h) {
      const __m256 gs = _mm256_loadu_ps(reinterpret_cast<const float*>(gd + geo.scales_at()) + q * kTileRows + 8 * h);
#pragma GCC unroll 8
      for (std::size_t t = 0; t < MR; ++t)
        part[t][h] = q == 0 ? _mm256_mul_ps(gs, acc[t][r][h]) : _mm256_fmadd_ps(gs, acc[t][r][h], part[t][h]);
    }
  }
}

/// y[m0 .. m0+MR)[n0 .. n0+16) for one tile.
template <std::size_t MR>
RANKQ_CB_YMM_INLINE void codebook_tile_token_block(const CodebookArgs& a, const std::uint8_t* tile, std::size_t n0,
                                                   std::size_t rows, std::size_t m0) {
  constexpr unsigned RB = CodebookDot::template rank_block<MR>;
  static_assert(RB >= 1 && RB <= 2, "rank blocks of 1 or 2");
  const PackedCodebookGeometry& geo = a.geo;
  const std::int8_t* x[MR];
  __m256 out[MR][2];
  for (std::size_t t = 0; t < MR; ++t) {
    x[t] = a.x + (m0 + t) * a.x_padded;
    out[t][0] = out[t][1] = _mm256_setzero_ps();
  }
  for (std::size_t g = 0; g < geo.groups; ++g) {
    const std::uint8_t* gd = tile + g * geo.group_stride();
    // Touch the end of the group's stream (its offsets) before its codes: keeps more DRAM requests in flight at
    // decode (measured: avx512vnni M = 1 cold ~20 -> ~30 GB/s, docs/lcq.md §7; the idea of w4a8_avx512's scales-first),
    // and the page 16 KiB ahead, which starts the hardware prefetchers on it early (stream_prefetch.hpp).
    _mm_prefetch(reinterpret_cast<const char*>(gd + geo.offsets_at()), _MM_HINT_T0);
    prefetch_page_ahead(gd);
    __m256 part[MR][2];  // set at rank 0 (rank >= 1)
    for (std::size_t t = 0; t < MR; ++t) part[t][0] = part[t][1] = _mm256_setzero_ps();
    for (unsigned q0 = 0; q0 < geo.rank; q0 += RB) {
      if (RB == 2 && q0 + 1 < geo.rank)
        codebook_rank_block<MR, RB>(a, gd, x, m0, g * geo.group, q0, part);
      else
        codebook_rank_block<MR, 1>(a, gd, x, m0, g * geo.group, q0, part);
    }
    for (std::size_t h = 0; h < 2; ++h) {
      const __m256 off = _mm256_loadu_ps(reinterpret_cast<const float*>(gd + geo.offsets_at()) + 8 * h);
      for (std::size_t t = 0; t < MR; ++t)
        out[t][h] = _mm256_add_ps(out[t][h], _mm256_fnmadd_ps(off, _mm256_set1_ps(a.xs[(m0 + t) * geo.groups + g]), part[t][h]));
    }
  }
  __m256 bias[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
  if (a.bias) load_rows(a.bias + n0, rows, bias);
  for (std::size_t t = 0; t < MR; ++t) {
    if (a.bias)
      for (std::size_t h = 0; h < 2; ++h) out[t][h] = _mm256_add_ps(out[t][h], bias[h]);
    store_rows(a.y + (m0 + t) * a.ldy + n0, rows, out[t][0], out[t][1]);
  }
}

RANKQ_CB_YMM_KERNEL void run_codebook_tiles(const CodebookArgs& a, std::size_t tile_begin, std::size_t tile_end) {
  static_assert(kCodebookTokenBlock >= 1 && kCodebookTokenBlock <= 4, "remainders below handle up to 3 tokens");
  for (std::size_t tile = tile_begin; tile < tile_end; ++tile) {
    const std::uint8_t* td = a.packed + tile * a.geo.tile_stride();
    const std::size_t n0 = tile * kTileRows;
    const std::size_t rows = std::min(kTileRows, a.rows - n0);
    std::size_t m = 0;
    for (; m + kCodebookTokenBlock <= a.M; m += kCodebookTokenBlock) codebook_tile_token_block<kCodebookTokenBlock>(a, td, n0, rows, m);
    switch (a.M - m) {
      case 3: codebook_tile_token_block<3>(a, td, n0, rows, m); break;
      case 2: codebook_tile_token_block<2>(a, td, n0, rows, m); break;
      case 1: codebook_tile_token_block<1>(a, td, n0, rows, m); break;
      default: break;
    }
  }
}

}  RANKQ_NAMESPACE_END  // namespace rankq::detail::RANKQ_CB_YMM_NAMESPACE
RANKQ_X86_CODE_END

#undef RANKQ_CB_YMM_NAMESPACE
#undef RANKQ_CB_YMM_INLINE
#undef RANKQ_CB_YMM_KERNEL
