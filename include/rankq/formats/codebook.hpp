// rankq/formats/codebook.hpp — the LCQ rank-k codebook weight format (CodebookWeights), its checks and its exact
// storage accounting, Eigen-free so that kernels and readers need not include the fit (rankq/algorithms/lcq.hpp).
// Byte layout and math: docs/lcq.md.
#pragma once

#include "rankq/detail/abi.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "rankq/detail/rounding.hpp"
#include "rankq/error.hpp"
#include "rankq/formats/matrix.hpp"
#include "rankq/formats/uniform.hpp"

RANKQ_NAMESPACE_BEGIN

inline constexpr unsigned kMaxCodebookRank = 8;  ///< rank k is 1..8

namespace detail {
/// Codeword t of a group with numbers s[0..rank) and offset b: (Σ_r s[r]·V[r·T + t], r ascending) − b, in float.
/// The one definition every dequantizer and the fit use, so values agree bit for bit.
inline float codeword_value(const float* s, float b, const float* V, unsigned rank, std::size_t T, unsigned t) {
  if (rank == 1) return s[0] * V[t] - b;  // the exact expression of UniformWeights::value (s·t − z)
  float acc = s[0] * V[t];
  for (unsigned r = 1; r < rank; ++r) acc += s[r] * V[r * T + t];
  return acc - b;
}
}  // namespace detail

/// An LCQ format: b-bit indices into a per-group codebook row c_i[t] = Σ_r S[r,i]·V[r,t] − B[i], t < 2^b.
struct CodebookFormat {
  unsigned bits = 4;                ///< b: 2, 3 or 4 bits per index
  std::size_t group_size = 128;     ///< g: 32, 64, 128 or kWholeRow, consecutive weights of one row along K
  unsigned rank = 2;                ///< k: 1..kMaxCodebookRank numbers S[., i] per group
  bool double_quantized = false;    ///< S and B stored as int8 with a float scale per output row (and rank)
};

inline std::string to_string(const CodebookFormat& f) {
  return "lcq" + std::to_string(f.bits) + "-k" + std::to_string(f.rank) + "-g" +
         (f.group_size == kWholeRow ? std::string("row") : std::to_string(f.group_size)) +
         (f.double_quantized ? "-dq8" : "");
}

/// Padded row length: round_up(K, g) for a fixed group, round_up(K, 16) for a whole row (uniform.hpp's rule).
inline std::size_t padded_cols(const CodebookFormat& f, std::size_t K) {
  return detail::round_up(K, f.group_size == kWholeRow ? kPadMultiple : f.group_size);
}

/// A rank-k codebook-quantized N x K weight matrix (N = out-features, K = in-features; PyTorch's layout).
///
/// Element (n, c) of group i = (n, c / group) has index t = index(n, c) and value
///   ŵ = (Σ_{r<k} S[r,i]·V[r,t]) − B[i]    computed in float, r ascending (value() below).
/// Indices: row n occupies row_bytes = K_pad·b/8 bytes, index c at bits [b·c, b·c + b) of the row's LSB-first
/// bit stream (uniform.hpp's code layout; for b = 4, index 2j is the low nibble of byte j). Indices of padded
/// columns [K, K_pad) are 0. S and B always hold the values dequantization uses; with double quantization they
/// equal float(q)·scale exactly (q int8 in [-127, 127]) and only q and the scales are serialized.
struct CodebookWeights {
  CodebookFormat format;
  std::size_t rows = 0;       ///< N
  std::size_t cols = 0;       ///< K
  std::size_t padded = 0;     ///< K_pad
  std::size_t group = 0;      ///< effective group size (K_pad for a whole row)
  std::size_t groups = 0;     ///< groups per row
  std::size_t row_bytes = 0;  ///< K_pad·b/8
  AlignedBuffer<std::uint8_t> indices;  ///< N·row_bytes
  std::vector<float> V;                 ///< k x 2^b, row-major: V[r·2^b + t]
  std::vector<float> S;                 ///< N·groups·k: S[(n·groups + g)·k + r]
  std::vector<float> B;                 ///< N·groups:   B[n·groups + g]
  // Double quantization (empty unless format.double_quantized):
  std::vector<std::int8_t> S_q;  ///< N·groups·k, same order as S; S = float(S_q)·S_scale[n·k + r]
  std::vector<float> S_scale;    ///< N·k
  std::vector<std::int8_t> B_q;  ///< N·groups;  B = float(B_q)·B_scale[n]
  std::vector<float> B_scale;    ///< N

  std::size_t codewords() const { return std::size_t(1) << format.bits; }
  unsigned index(std::size_t n, std::size_t c) const { return detail::get_bits(indices.data() + n * row_bytes, c, format.bits); }
  float scale(std::size_t n, std::size_t g, unsigned r) const { return S[(n * groups + g) * format.rank + r]; }
  float offset(std::size_t n, std::size_t g) const { return B[n * groups + g]; }
  /// Codeword t of group g of row n, computed in float: (Σ_r S[r,i]·V[r,t], r ascending) − B[i].
  float codeword(std::size_t n, std::size_t g, unsigned t) const {
    return detail::codeword_value(S.data() + (n * groups + g) * format.rank, B[n * groups + g], V.data(), format.rank,
                                  codewords(), t);
  }
  /// Dequantized value of element (n, c).
  float value(std::size_t n, std::size_t c) const { return codeword(n, c / group, index(n, c)); }
};

namespace detail {

inline void check_codebook_format(const CodebookFormat& f, const char* function, const char* prefix) {
  const std::string p(prefix);
  if (!(f.bits == 2 || f.bits == 3 || f.bits == 4))
    throw_argument(function, (p + ".bits").c_str(), "= " + std::to_string(f.bits) + ": must be 2, 3 or 4");
  const std::size_t g = f.group_size;
  if (!(g == kWholeRow || g == 32 || g == 64 || g == 128))
    throw_argument(function, (p + ".group_size").c_str(),
                   "= " + std::to_string(g) + ": must be 32, 64, 128 or 0 (whole row)");
  if (f.rank < 1 || f.rank > kMaxCodebookRank)
    throw_argument(function, (p + ".rank").c_str(),
                   "= " + std::to_string(f.rank) + ": must be in 1.." + std::to_string(kMaxCodebookRank));
}

}  // namespace detail

/// Allocates an all-zero CodebookWeights of the given shape (V, S, B zero; DQ arrays sized iff double_quantized).
inline CodebookWeights make_codebook_weights(const CodebookFormat& f, std::size_t N, std::size_t K) {
  constexpr const char* fn = "make_codebook_weights";
  detail::check_codebook_format(f, fn, "format");
  detail::require_positive(N, fn, "rows");
  detail::require_positive(K, fn, "cols");
  CodebookWeights q;
  q.format = f;
  q.rows = N;
  q.cols = K;
  q.padded = padded_cols(f, K);
  q.group = f.group_size == kWholeRow ? q.padded : f.group_size;
  q.groups = q.padded / q.group;
  q.row_bytes = q.padded * f.bits / 8;
  q.indices.resize(N * q.row_bytes);
  q.V.assign(std::size_t(f.rank) << f.bits, 0.0f);
  q.S.assign(N * q.groups * f.rank, 0.0f);
  q.B.assign(N * q.groups, 0.0f);
  if (f.double_quantized) {
    q.S_q.assign(q.S.size(), 0);
    q.S_scale.assign(N * f.rank, 0.0f);
    q.B_q.assign(q.B.size(), 0);
    q.B_scale.assign(N, 0.0f);
  }
  return q;
}

/// Exact byte counts of the serialized form (docs/lcq.md "Byte layout"); total_bytes == serialize(q).size().
struct CodebookStorage {
  std::size_t header_bytes = 0;    ///< fixed 32-byte header
  std::size_t codebook_bytes = 0;  ///< V: k·2^b float32
  std::size_t index_bytes = 0;     ///< N·K_pad·b/8
  std::size_t scale_bytes = 0;     ///< S: N·groups·k · (4 or 1 bytes)
  std::size_t offset_bytes = 0;    ///< B: N·groups · (4 or 1 bytes)
  std::size_t dq_scale_bytes = 0;  ///< double quantization: N·(k+1) float32 scales, else 0
  std::size_t total_bytes = 0;
  /// Bits per real weight of the layer payload: 8·(total − header) / (N·K). Includes the padding's indices.
  double bits_per_weight = 0.0;
};

inline CodebookStorage codebook_storage(const CodebookFormat& f, std::size_t N, std::size_t K) {
  constexpr const char* fn = "codebook_storage";
  detail::check_codebook_format(f, fn, "format");
  detail::require_positive(N, fn, "N");
  detail::require_positive(K, fn, "K");
  const std::size_t Kp = padded_cols(f, K);
  const std::size_t groups = f.group_size == kWholeRow ? 1 : Kp / f.group_size;
  const std::size_t per_number = f.double_quantized ? 1 : 4;
  CodebookStorage s;
  s.header_bytes = 32;
  s.codebook_bytes = (std::size_t(f.rank) << f.bits) * 4;
  s.index_bytes = N * (Kp * f.bits / 8);
  s.scale_bytes = N * groups * f.rank * per_number;
  s.offset_bytes = N * groups * per_number;
  s.dq_scale_bytes = f.double_quantized ? N * (f.rank + 1) * 4 : 0;
  s.total_bytes = s.header_bytes + s.codebook_bytes + s.index_bytes + s.scale_bytes + s.offset_bytes + s.dq_scale_bytes;
  s.bits_per_weight = 8.0 * static_cast<double>(s.total_bytes - s.header_bytes) / (static_cast<double>(N) * K);
  return s;
}

inline CodebookStorage codebook_storage(const CodebookWeights& q) { return codebook_storage(q.format, q.rows, q.cols); }

/// Writes the dequantized N x K matrix into `out` (shape must match).
inline void dequantize(const CodebookWeights& q, MatrixView<float> out) {
  detail::check_view(out, "dequantize", "out");
  if (out.rows != q.rows || out.cols != q.cols)
    detail::throw_argument("dequantize", "out",
                           "has shape " + std::to_string(out.rows) + "x" + std::to_string(out.cols) + ", expected " +
                               std::to_string(q.rows) + "x" + std::to_string(q.cols));
  std::vector<float> book(q.codewords());
  for (std::size_t n = 0; n < q.rows; ++n)
    for (std::size_t g = 0; g < q.groups; ++g) {
      for (unsigned t = 0; t < book.size(); ++t) book[t] = q.codeword(n, g, t);
      const std::size_t c1 = std::min(q.cols, (g + 1) * q.group);
      for (std::size_t c = g * q.group; c < c1; ++c) out(n, c) = book[q.index(n, c)];
    }
}

/// Dequantized matrix as a dense row-major vector (N·K).
inline std::vector<float> dequantize(const CodebookWeights& q) {
  std::vector<float> out(q.rows * q.cols);
  dequantize(q, MatrixView<float>(out.data(), q.rows, q.cols));
  return out;
}

RANKQ_NAMESPACE_END  // namespace rankq
