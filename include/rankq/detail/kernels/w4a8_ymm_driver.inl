// rankq/detail/kernels/w4a8_ymm_driver.inl — the 256-bit W4A8 tile driver, compiled once per ymm path (avx2,
// avx_vnni) inside that path's namespace with that path's target attribute (Highway-style re-inclusion).
//
// No include guard on purpose. The includer defines RANKQ_YMM_NAMESPACE, RANKQ_YMM_INLINE, RANKQ_YMM_KERNEL and,
// in that namespace: `Dot` (begin/add/finish/kMaxBlocks — the dot-product primitive), kTokenBlock, Nibbles,
// unpack_code_half, load_row_values, load_rows, store_rows. The macros are undefined at the end.

RANKQ_X86_CODE_BEGIN
RANKQ_NAMESPACE_BEGIN namespace detail::RANKQ_YMM_NAMESPACE {

/// y[m0 .. m0+MR)[n0 .. n0+16) for one tile; a code block is two ymm halves (rows 0-7, rows 8-15). Per segment
/// (a group cut at activation-block boundaries) the int32 dot products run 16 K per step; the primitive's partial
/// is widened every Dot::kMaxBlocks blocks. Small MR keeps separate partials for even/odd blocks (latency).
/// Float epilogue: out += (s·a_seg)·dot per segment, out −= z·xsum per group.
template <std::size_t MR>
RANKQ_YMM_INLINE void tile_token_block(const W4A8Args& a, const std::uint8_t* tile, std::size_t n0, std::size_t rows,
                                       std::size_t m0) {
  constexpr std::size_t kParities = MR <= 2 ? 2 : 1;
  const PackedW4Geometry& geo = a.geo;
  const std::size_t code_bytes = geo.code_bytes(), group_stride = geo.group_stride();
  const std::int8_t* x[MR];
  __m256 out[MR][2];
  for (std::size_t t = 0; t < MR; ++t) {
    x[t] = a.x + (m0 + t) * a.x_padded;
    out[t][0] = out[t][1] = _mm256_setzero_ps();
  }
  for (std::size_t g = 0; g < geo.groups; ++g) {
    const std::uint8_t* gd = tile + g * group_stride;
    prefetch_page_ahead(gd);  // starts the hardware prefetchers on the page 16 KiB ahead (stream_prefetch.hpp)
    const __m256 s[2] = {load_row_values(gd + code_bytes, 0, a.scale_type), load_row_values(gd + code_bytes, 1, a.scale_type)};
    const std::size_t g0 = g * geo.group, g_end = g0 + geo.group;
    for (std::size_t k = g0; k < g_end;) {
      const std::size_t b = k / a.x_block;
      const std::size_t seg_end = std::min(g_end, (b + 1) * a.x_block);
      __m256i acc[MR][2];
      for (std::size_t t = 0; t < MR; ++t) acc[t][0] = acc[t][1] = _mm256_setzero_si256();
      const std::uint8_t* block = gd + (k - g0) / kBlockK * sizeof(PackedCodeBlock);
      while (k < seg_end) {
        const std::size_t chunk_end = k + std::min(seg_end - k, kBlockK * Dot::kMaxBlocks);
        typename Dot::Partial p[MR][2][kParities];
        for (std::size_t t = 0; t < MR; ++t)
          for (std::size_t h = 0; h < 2; ++h)
            for (std::size_t j = 0; j < kParities; ++j) p[t][h][j] = Dot::begin();
        for (; k < chunk_end; k += 2 * kBlockK, block += 2 * sizeof(PackedCodeBlock)) {  // segments: multiples of 16 K
          for (std::size_t j = 0; j < 2; ++j)
            for (std::size_t h = 0; h < 2; ++h) {
              const Nibbles c = unpack_code_half(block + j * sizeof(PackedCodeBlock) + h * 32);
              for (std::size_t t = 0; t < MR; ++t) p[t][h][j % kParities] = Dot::add(p[t][h][j % kParities], c, x[t] + k + j * kBlockK);
            }
        }
        for (std::size_t t = 0; t < MR; ++t)
          for (std::size_t h = 0; h < 2; ++h)
            for (std::size_t j = 0; j < kParities; ++j) acc[t][h] = Dot::finish(acc[t][h], p[t][h][j]);
      }
      for (std::size_t t = 0; t < MR; ++t) {
        const __m256 xs = _mm256_set1_ps(a.x_scales[(m0 + t) * a.x_blocks + b]);
        for (std::size_t h = 0; h < 2; ++h)
          out[t][h] = _mm256_fmadd_ps(_mm256_mul_ps(s[h], xs), _mm256_cvtepi32_ps(acc[t][h]), out[t][h]);
      }
    }
    __m256 z[2];
    for (std::size_t h = 0; h < 2; ++h)
      z[h] = geo.has_offsets ? load_row_values(gd + code_bytes + kTileRows * geo.scale_bytes, h, a.scale_type)
                             : _mm256_mul_ps(s[h], _mm256_set1_ps(a.zero_code));
    for (std::size_t t = 0; t < MR; ++t) {
      const __m256 xsum = _mm256_set1_ps(a.xsum[(m0 + t) * geo.groups + g]);
      for (std::size_t h = 0; h < 2; ++h) out[t][h] = _mm256_fnmadd_ps(z[h], xsum, out[t][h]);
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

RANKQ_YMM_KERNEL void run_w4a8_tiles(const W4A8Args& a, std::size_t tile_begin, std::size_t tile_end) {
  static_assert(kTokenBlock >= 1 && kTokenBlock <= 4, "remainders below handle up to 3 tokens");
  for (std::size_t tile = tile_begin; tile < tile_end; ++tile) {
    const std::uint8_t* td = a.packed + tile * a.geo.tile_stride();
    const std::size_t n0 = tile * kTileRows;
    const std::size_t rows = std::min(kTileRows, a.rows - n0);
    std::size_t m = 0;
    for (; m + kTokenBlock <= a.M; m += kTokenBlock) tile_token_block<kTokenBlock>(a, td, n0, rows, m);
    switch (a.M - m) {
      case 3: tile_token_block<3>(a, td, n0, rows, m); break;
      case 2: tile_token_block<2>(a, td, n0, rows, m); break;
      case 1: tile_token_block<1>(a, td, n0, rows, m); break;
      default: break;
    }
  }
}

}  RANKQ_NAMESPACE_END  // namespace rankq::detail::RANKQ_YMM_NAMESPACE
RANKQ_X86_CODE_END

#undef RANKQ_YMM_NAMESPACE
#undef RANKQ_YMM_INLINE
#undef RANKQ_YMM_KERNEL
