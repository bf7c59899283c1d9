// rankq/detail/kernels/lowrank_ymm_driver.inl — the 256-bit low-rank tile driver, compiled once per ymm path
// (avx2, avx_vnni) inside that path's namespace with that path's target attribute (like w4a8_ymm_driver.inl).
//
// No include guard on purpose. The includer defines RANKQ_LR_NAMESPACE, RANKQ_LR_INLINE, RANKQ_LR_KERNEL and, in
// that namespace: `LowRankDot` (prepare/add/finish — the int8 dot-product strategy), broadcast4, load_rows,
// store_rows. The macros are undefined at the end.

RANKQ_X86_CODE_BEGIN
RANKQ_NAMESPACE_BEGIN namespace detail::RANKQ_LR_NAMESPACE {

/// out rows [row0, row0 + rows) of tokens [m0, m0 + MR): a quad is two ymm halves (rows 0-7, 8-15) of 8 int32
/// lanes x 4 bytes. Per chunk: 4 quads of int8 dot products into int32, then out = fma(s·a_x, float(D), out).
template <std::size_t MR>
RANKQ_LR_INLINE void lowrank_token_block(const LowRankArgs& a, const PackedLowRankChunk* chunks, std::size_t row0,
                                         std::size_t rows, std::size_t m0) {
  const std::int8_t* x[MR];
  __m256 out[MR][2];
  for (std::size_t t = 0; t < MR; ++t) {
    x[t] = a.x + (m0 + t) * a.x_stride;
    out[t][0] = out[t][1] = _mm256_setzero_ps();
  }
  for (std::size_t c = 0; c < a.chunks; ++c) {
    const PackedLowRankChunk& ch = chunks[c];
    prefetch_page_ahead(&ch);  // the factors stream from DRAM at decode too (stream_prefetch.hpp)
    __m256i acc[MR][2];
    for (std::size_t t = 0; t < MR; ++t) acc[t][0] = acc[t][1] = _mm256_setzero_si256();
    for (std::size_t q = 0; q < 4; ++q) {
      const __m256i codes[2] = {LowRankDot::prepare(_mm256_load_si256(reinterpret_cast<const __m256i*>(ch.codes[q][0]))),
                                LowRankDot::prepare(_mm256_load_si256(reinterpret_cast<const __m256i*>(ch.codes[q][8])))};
      for (std::size_t t = 0; t < MR; ++t) {
        const __m256i xb = broadcast4(x[t] + 16 * c + 4 * q);
        for (std::size_t h = 0; h < 2; ++h) acc[t][h] = LowRankDot::add(acc[t][h], codes[h], xb);
      }
    }
    const __m256 s[2] = {_mm256_load_ps(ch.scales), _mm256_load_ps(ch.scales + 8)};
    for (std::size_t t = 0; t < MR; ++t) {
      const std::size_t i = (m0 + t) * a.chunks + c;
      const __m256 xs = _mm256_set1_ps(a.x_scales[i]);
      for (std::size_t h = 0; h < 2; ++h) {
        const __m256i d = LowRankDot::finish(acc[t][h], a.x_sums[i]);
        out[t][h] = _mm256_fmadd_ps(_mm256_mul_ps(s[h], xs), _mm256_cvtepi32_ps(d), out[t][h]);
      }
    }
  }
  __m256 bias[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
  if (a.accumulate && a.bias) load_rows(a.bias + row0, rows, bias);
  for (std::size_t t = 0; t < MR; ++t) {
    float* dst = a.out + (m0 + t) * a.ldo + row0;
    if (a.accumulate) {
      __m256 old[2];
      load_rows(dst, rows, old);
      for (std::size_t h = 0; h < 2; ++h) {
        out[t][h] = _mm256_add_ps(old[h], out[t][h]);
        if (a.bias) out[t][h] = _mm256_add_ps(out[t][h], bias[h]);
      }
    }
    store_rows(dst, rows, out[t][0], out[t][1]);
  }
}

RANKQ_LR_KERNEL void run_lowrank_tiles(const LowRankArgs& a, std::size_t tile_begin, std::size_t tile_end) {
  for (std::size_t tile = tile_begin; tile < tile_end; ++tile) {
    const auto* chunks = reinterpret_cast<const PackedLowRankChunk*>(a.packed + tile * a.tile_stride());
    const std::size_t row0 = tile * kLowRankRows, rows = std::min(kLowRankRows, a.rows - row0);
    std::size_t m = 0;
    for (; m + 4 <= a.M; m += 4) lowrank_token_block<4>(a, chunks, row0, rows, m);
    switch (a.M - m) {
      case 3: lowrank_token_block<3>(a, chunks, row0, rows, m); break;
      case 2: lowrank_token_block<2>(a, chunks, row0, rows, m); break;
      case 1: lowrank_token_block<1>(a, chunks, row0, rows, m); break;
      default: break;
    }
  }
}

}  RANKQ_NAMESPACE_END  // namespace rankq::detail::RANKQ_LR_NAMESPACE
RANKQ_X86_CODE_END

#undef RANKQ_LR_NAMESPACE
#undef RANKQ_LR_INLINE
#undef RANKQ_LR_KERNEL
