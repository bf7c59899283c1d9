// rankq/algorithms/detail/gptq_grids.hpp — the grids a GPTQ pass quantizes onto: uniform (rankq's RTN group parameters and
// rounding, uniform.hpp), MXINT (the block exponent and levels of mxint.hpp) and an LCQ codebook held fixed during
// the pass. Each writes its codes straight into the library's quantized type. Include rankq/algorithms/gptq.hpp instead.
// Math: docs/gptq.md §4.
#pragma once

#include "rankq/detail/abi.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "rankq/algorithms/lcq.hpp"
#include "rankq/formats/mxint.hpp"
#include "rankq/formats/uniform.hpp"
#include "rankq/detail/rounding.hpp"

RANKQ_NAMESPACE_BEGIN namespace detail {

/// Dequantized value of code t with scale s and offset z, the same float expression as UniformWeights::value.
inline float uniform_value(unsigned t, float s, float z, const UniformFormat& f) {
  if (f.symmetry == Symmetry::symmetric) return s * static_cast<float>(static_cast<int>(t) - (1 << (f.bits - 1)));
  return s * static_cast<float>(t) - z;
}

/// Σ_j cost[j]·(x_j − Q(x_j))² in double for the group parameters (s, z).
inline double weighted_group_error(const float* x, const float* cost, std::size_t len, float s, float z,
                                   const UniformFormat& f) {
  double e = 0.0;
  for (std::size_t j = 0; j < len; ++j) {
    const double d = static_cast<double>(x[j]) - uniform_value(uniform_code(x[j], s, z, f), s, z, f);
    e += static_cast<double>(cost[j]) * d * d;
  }
  return e;
}

/// The clipped group parameters of docs/gptq.md §3.8: candidates p_i = 1 − (1 − clip_min)·i/steps, i = 0..steps,
/// each the parameters RTN's rule gives the shrunk range {p·lo, p·hi} (symmetric: p·max|x|), rounded to the scale
/// type; keeps the first candidate with the least weighted error (i = 0 is RTN's min/max choice, so the result is
/// never worse than it on this error). steps = 0: RTN's parameters.
inline void clipped_group_params(const float* x, const float* cost, std::size_t len, const UniformFormat& f,
                                 unsigned steps, double clip_min, float& s, float& z) {
  uniform_group_params(x, len, f, s, z);
  if (steps == 0 || s == 0.0f) return;
  float lo = x[0], hi = x[0];
  for (std::size_t j = 0; j < len; ++j) lo = std::min(lo, x[j]), hi = std::max(hi, x[j]);
  double best = weighted_group_error(x, cost, len, s, z, f);
  for (unsigned i = 1; i <= steps; ++i) {
    const double p = 1.0 - (1.0 - clip_min) * static_cast<double>(i) / steps;
    const float range[2] = {static_cast<float>(p * lo), static_cast<float>(p * hi)};
    float cs = 0.0f, cz = 0.0f;
    uniform_group_params(range, 2, f, cs, cz);
    if (!(cs > 0.0f) || !std::isfinite(cs) || !std::isfinite(cz)) continue;
    const double e = weighted_group_error(x, cost, len, cs, cz, f);
    if (e < best) best = e, s = cs, z = cz;
  }
}

/// Uniform b-bit grid: group scale/offset from the group's current values (uniform_group_params, or the clipped
/// search of §3.8 when clip_steps > 0 with `cost` = 1/U_pp² per original column), code by uniform_code,
/// dequantized value s·t − z exactly as UniformWeights::value computes it.
struct GptqUniformGrid {
  UniformWeights& q;
  const char* fn;
  unsigned clip_steps = 0;
  double clip_min = 1.0;
  const float* cost = nullptr;  ///< per original column (needed when clip_steps > 0)

  void start_group(std::size_t n, std::size_t g, const float* values, std::size_t len) {
    float s = 0.0f, z = 0.0f;
    if (clip_steps > 0)
      clipped_group_params(values, cost + g * q.group, len, q.format, clip_steps, clip_min, s, z);
    else
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
template <typename T>
float mx_fallback_block_max(MatrixView<const T> W, const std::vector<char>& dead, std::size_t block) {
  float fallback = std::numeric_limits<float>::infinity();
  for (std::size_t n = 0; n < W.rows; ++n)
    for (std::size_t c0 = 0; c0 < W.cols; c0 += block) {
      float bmax = 0.0f;
      for (std::size_t c = c0; c < std::min(W.cols, c0 + block); ++c)
        if (!dead[c]) bmax = std::max(bmax, std::fabs(static_cast<float>(W(n, c))));
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
