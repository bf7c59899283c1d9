// rankq/detail/gptq_grids.hpp — the grids a GPTQ pass quantizes onto: uniform (rankq's RTN group parameters and
// rounding, uniform.hpp), MXINT (the block exponent and levels of mxint.hpp) and an LCQ codebook held fixed during
// the pass. Each writes its codes straight into the library's quantized type. Include rankq/gptq.hpp instead.
// Math: docs/gptq.md §4.
#pragma once

#include "rankq/detail/abi.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "rankq/lcq.hpp"
#include "rankq/mxint.hpp"
#include "rankq/uniform.hpp"
#include "rankq/detail/rounding.hpp"

RANKQ_NAMESPACE_BEGIN namespace detail {

/// Uniform b-bit grid: group scale/offset from the group's current values (uniform_group_params), code by
/// uniform_code, dequantized value s·t − z exactly as UniformWeights::value computes it.
struct GptqUniformGrid {
  UniformWeights& q;
  const char* fn;

  void start_group(std::size_t n, std::size_t g, const float* values, std::size_t len) {
    float s = 0.0f, z = 0.0f;
    uniform_group_params(values, len, q.format, s, z);
    check_group_params(s, z, q.format, fn, n, g);
    q.scales[n * q.groups + g] = s;
    if (q.format.symmetry == Symmetry::asymmetric) q.offsets[n * q.groups + g] = z;
  }
  float quantize(std::size_t n, std::size_t c, float w) {
    const std::size_t g = c / q.group;
    const float s = q.scales[n * q.groups + g];
    const float z = q.format.symmetry == Symmetry::asymmetric ? q.offsets[n * q.groups + g] : 0.0f;
    const unsigned t = uniform_code(w, s, z, q.format);
    put_bits(q.codes.data() + n * q.row_bytes, c, q.format.bits, t);
    return q.value(n, c);
  }
};

/// Smallest nonzero block max |x| of a matrix (quantize_mxint's exponent for all-zero blocks); 1 if none.
inline float mx_fallback_block_max(MatrixView<const float> W, const std::vector<char>& dead, std::size_t block) {
  float fallback = std::numeric_limits<float>::infinity();
  for (std::size_t n = 0; n < W.rows; ++n)
    for (std::size_t c0 = 0; c0 < W.cols; c0 += block) {
      float bmax = 0.0f;
      for (std::size_t c = c0; c < std::min(W.cols, c0 + block); ++c)
        if (!dead[c]) bmax = std::max(bmax, std::fabs(W(n, c)));
      if (bmax > 0.0f) fallback = std::min(fallback, bmax);
    }
  return std::isfinite(fallback) ? fallback : 1.0f;
}

/// MXINT grid: the block's shared exponent from its current values' max (an all-zero block borrows
/// `fallback_bmax`, as quantize_mxint does), levels rhe(|w|·2^−σ) clipped at 2^(w−1) − 1, sign-magnitude codes.
struct GptqMxGrid {
  MxTensor& t;
  float fallback_bmax;
  std::vector<int> steps;  ///< rows·blocks step exponents σ

  GptqMxGrid(MxTensor& tensor, float fallback) : t(tensor), fallback_bmax(fallback), steps(tensor.rows * tensor.blocks, 0) {}

  void start_group(std::size_t n, std::size_t b, const float* values, std::size_t len) {
    float bmax = 0.0f;
    for (std::size_t j = 0; j < len; ++j) bmax = std::max(bmax, std::fabs(values[j]));
    if (bmax == 0.0f) bmax = fallback_bmax;
    int e = 0;
    steps[n * t.blocks + b] = mx_step_exponent(bmax, t.format, e);
    t.exponents[n * t.blocks + b] = static_cast<std::uint8_t>(e + 127);
  }
  float quantize(std::size_t n, std::size_t c, float w) {
    const int step = steps[n * t.blocks + c / t.format.block];
    const unsigned sign_bit = 1u << (t.format.bits - 1);
    const double qmax = static_cast<double>(sign_bit - 1u);
    const double q = std::min(round_half_even(std::ldexp(std::fabs(static_cast<double>(w)), -step)), qmax);
    const unsigned mag = static_cast<unsigned>(q);
    const bool negative = w < 0.0f && mag != 0;
    put_bits(t.codes.data() + n * t.row_bytes, c, t.format.bits, negative ? (sign_bit | mag) : mag);
    return t.value(n, c);
  }
};

/// LCQ codebook grid, fixed during the pass: each weight takes the nearest codeword of its group (first minimum
/// of (w − c_t)² in double, as LCQ's exhaustive assignment). An affine rank-1 codebook (V = 0 … 2^b − 1, which
/// is what RTN initialization gives) uses uniform_code's asymmetric rounding rhe((w + B)/S) instead — the nearest
/// codeword up to the float rounding of the codewords — so that a fixed RTN grid reproduces uniform asymmetric
/// GPTQ exactly (docs/gptq.md §4.3).
struct GptqCodebookGrid {
  const LcqState& st;
  std::size_t K, group, groups, T;
  unsigned bits;
  std::vector<std::uint8_t>& codes;  ///< N x K
  bool affine;
  std::vector<float> book;           ///< per group: its T codewords (float, the dequantized values)

  GptqCodebookGrid(const LcqState& state, const LcqProblem& p, std::vector<std::uint8_t>& out)
      : st(state), K(p.K), group(p.group), groups(p.groups), T(p.T), bits(p.bits), codes(out) {
    affine = st.rank == 1;
    for (std::size_t t = 0; t < T && affine; ++t) affine = st.V[t] == static_cast<float>(t);
    book.resize(p.group_count() * T);
    for (std::size_t i = 0; i < p.group_count(); ++i)
      for (std::size_t t = 0; t < T; ++t)
        book[i * T + t] = codeword_value(st.S.data() + i * st.rank, st.B[i], st.V.data(), st.rank, T, static_cast<unsigned>(t));
    codes.assign(p.N * K, 0);
  }

  void start_group(std::size_t, std::size_t, const float*, std::size_t) {}
  float quantize(std::size_t n, std::size_t c, float w) {
    const std::size_t i = n * groups + c / group;
    const float* b = book.data() + i * T;
    unsigned best_t = 0;
    if (affine) {
      best_t = uniform_code(w, st.S[i], st.B[i], UniformFormat{bits, group, Symmetry::asymmetric, ScaleType::f32});
    } else {
      double best = std::numeric_limits<double>::infinity();
      for (unsigned t = 0; t < T; ++t) {
        const double d = static_cast<double>(w) - b[t];
        if (d * d < best) best = d * d, best_t = t;
      }
    }
    codes[n * K + c] = static_cast<std::uint8_t>(best_t);
    return b[best_t];
  }
};

}  RANKQ_NAMESPACE_END  // namespace rankq::detail
