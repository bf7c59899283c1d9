// rankq/detail/kernels/activation_driver.inl — THE activation driver: int8 / MXINT8 quantization of activation rows
// and the side terms the packed-weight kernels read (group sums, 16-column prefix sums), written once on the path's primitives (abs_max, quantize_scaled,
// quantize_pow2, segment_sum in the path's namespace: quantize_act_<isa>.hpp) and compiled once per path by
// re-inclusion, like w4a8_driver.inl. Every path gives the codes and scales of detail::quantize_act_block bit for
// bit (and its error messages), and the same group sums.
//
// No include guard on purpose. The includer defines RANKQ_DRIVER_NAMESPACE, RANKQ_DRIVER_INLINE and
// RANKQ_DRIVER_KERNEL (see w4a8_driver.inl); they are undefined at the end.

#ifdef RANKQ_X86_CODE_BEGIN
RANKQ_X86_CODE_BEGIN
#endif
RANKQ_NAMESPACE_BEGIN namespace detail::RANKQ_DRIVER_NAMESPACE {

/// detail::quantize_act_block on this path: same scale, same codes, same errors.
RANKQ_DRIVER_INLINE float quantize_block(const float* x, std::size_t n, const ActivationFormat& f, std::int8_t* q,
                                         const char* function, std::size_t row) {
  bool finite = true;
  const float amax = abs_max(x, n, finite);
  if (!finite) return detail::quantize_act_block(x, n, f, q, function, row);  // throws the scalar's message
  if (amax == 0.0f) {
    std::memset(q, 0, n);
    return 0.0f;
  }
  if (f.kind == ActivationQuant::mxint8) {
    int e = 0;
    const int step = mx_step_exponent(amax, MxFormat{8, f.block, f.semantics}, e);
    if (step > 126 || step < -127) return detail::quantize_act_block(x, n, f, q, function, row);  // 2^-step not a float
    quantize_pow2(x, n, std::ldexp(1.0f, -step), q);  // |x| · 2^-step is exact where it matters
    return static_cast<float>(std::ldexp(1.0, step));
  }
  const float inv = 127.0f / amax;
  if (std::isinf(inv)) {  // amax < 127 / FLT_MAX: every nonzero value saturates (x · inf), zeros stay 0
    for (std::size_t i = 0; i < n; ++i) q[i] = static_cast<std::int8_t>(x[i] > 0.0f ? 127 : x[i] < 0.0f ? -127 : 0);
    return amax / 127.0f;
  }
  quantize_scaled(x, n, inv, q);
  return amax / 127.0f;
}

/// Quantizes row m of x into `out` (already shaped by prepare_quantized_activations), zeroing its padding.
RANKQ_DRIVER_INLINE void quantize_row(MatrixView<const float> x, const ActivationFormat& f, QuantizedActivations& out,
                                      std::size_t m, const char* function) {
  std::int8_t* q = out.values.data() + m * out.padded;
  for (std::size_t b = 0; b < out.blocks; ++b) {
    const std::size_t k0 = b * out.block, k1 = std::min(x.cols, k0 + out.block);
    out.scales[m * out.blocks + b] = k1 > k0 ? quantize_block(x.row(m) + k0, k1 - k0, f, q + k0, function, m) : 0.0f;
  }
  std::memset(q + x.cols, 0, out.padded - x.cols);
}

/// The side terms of row m (docs/kernels.md §8.1). With a prefix or chunk sums: exact sums of each 16-column chunk
/// (and their running total);
/// then per group, segment by segment (a segment = the part of the group under one activation scale),
/// s = fma(scale, Σ_seg q, s) in order and Σ q. Integer sums are exact, so every path gives the same bits.
RANKQ_DRIVER_INLINE void side_terms_row(const QuantizedActivations& x, std::size_t m, const ActivationTermsOut& t) {
  const std::int8_t* q = x.row(m);
  std::int64_t* p = t.prefix ? t.prefix + m * t.prefix_stride : nullptr;
  std::int32_t* cs = t.chunk_sums ? t.chunk_sums + m * t.chunks : nullptr;
  if (p || cs) {
    std::int64_t run = 0;
    if (p) p[0] = 0;
    for (std::size_t c = 0; c < t.chunks; ++c) {
      const std::int32_t s = segment_sum(q + c * kActivationChunk, kActivationChunk);
      if (cs) cs[c] = s;
      run += s;
      if (p) p[c + 1] = run;
    }
  }
  for (std::size_t g = 0; g < t.groups; ++g) {
    float s = 0.0f;
    std::int32_t qs = 0;
    const std::size_t g_end = (g + 1) * t.group;
    for (std::size_t k = g * t.group; k < g_end;) {
      const std::size_t b = k / x.block, seg_end = std::min(g_end, (b + 1) * x.block);
      const std::int32_t seg = p ? static_cast<std::int32_t>(p[seg_end / kActivationChunk] - p[k / kActivationChunk])
                                 : segment_sum(q + k, seg_end - k);
      s = std::fma(x.scale(m, b), static_cast<float>(seg), s);
      qs += seg;
      k = seg_end;
    }
    t.group_sums[m * t.groups + g] = s;
    if (t.group_qsums) t.group_qsums[m * t.groups + g] = qs;
  }
}

/// Quantizes every row of x into `out`.
RANKQ_DRIVER_KERNEL void run_quantize_rows(Isa, MatrixView<const float> x, const ActivationFormat& f,
                                           QuantizedActivations& out, const char* function) {
  for (std::size_t m = 0; m < x.rows; ++m) quantize_row(x, f, out, m, function);
}

/// The side terms of every row of already quantized activations.
RANKQ_DRIVER_KERNEL void run_side_terms(Isa, const QuantizedActivations& x, const ActivationTermsOut& t) {
  for (std::size_t m = 0; m < x.rows; ++m) side_terms_row(x, m, t);
}

/// The LHS quant-pack: each row quantized, then its side terms computed while its codes are in L1.
RANKQ_DRIVER_KERNEL void run_pack_rows(Isa, MatrixView<const float> x, const ActivationFormat& f,
                                       QuantizedActivations& out, const ActivationTermsOut& t, const char* function) {
  for (std::size_t m = 0; m < x.rows; ++m) {
    quantize_row(x, f, out, m, function);
    side_terms_row(out, m, t);
  }
}

}  RANKQ_NAMESPACE_END  // namespace rankq::detail::RANKQ_DRIVER_NAMESPACE
#ifdef RANKQ_X86_CODE_END
RANKQ_X86_CODE_END
#endif

#undef RANKQ_DRIVER_NAMESPACE
#undef RANKQ_DRIVER_INLINE
#undef RANKQ_DRIVER_KERNEL
