// rankq/formats/lowrank.hpp — the LQER / L²QER weight format (LowRankStorage, LowRankCorrection, LqerWeights):
// what rankq/algorithms/lqer.hpp produces, Eigen-free so that the inference reference, the low-rank kernels and
// the readers use it without compiling the SVD.
#pragma once

#include "rankq/detail/abi.hpp"

#include <cstddef>
#include <cstdint>
#include <vector>

#include "rankq/formats/uniform.hpp"
#include "rankq/detail/svd_method.hpp"

RANKQ_NAMESPACE_BEGIN

/// How the 8-bit factors Aᵀ (k x K) and Bᵀ (N x k) are stored. Blocks/groups always run along each factor's
/// REDUCTION dimension (K for Aᵀ, k for Bᵀ) so that an integer kernel can apply one scale per block.
enum class LowRankStorage : std::uint8_t {
  mxint8 = 0,       ///< MXINT8 (lqer semantics), blocks of 16: 8.5 bits per element (the paper's format)
  int8_group16 = 1, ///< symmetric int8, groups of 16, f16 scales: 9 bits per element
  int8_row = 2,     ///< symmetric int8, one f16 scale per row: 8 + 16/row_length bits per element
};

inline const char* to_string(LowRankStorage s) {
  switch (s) {
    case LowRankStorage::mxint8: return "mxint8-b16";
    case LowRankStorage::int8_group16: return "int8-sym-g16";
    default: return "int8-sym-row";
  }
}

/// The rank-k correction of an N x K weight matrix: y ≈ x·W_qᵀ + (x·A)·B with A: K x k, B: k x N.
struct LowRankCorrection {
  std::size_t rank = 0;          ///< k
  std::size_t out_features = 0;  ///< N
  std::size_t in_features = 0;   ///< K
  LowRankStorage storage = LowRankStorage::mxint8;
  UniformWeights a_t;  ///< Aᵀ quantized: k x K, 8-bit, blocks along K (x·A = reference_matmul(x, a_t))
  UniformWeights b_t;  ///< Bᵀ quantized: N x k, 8-bit, blocks along k ((x·A)·B = reference_matmul(xA, b_t))
  double storage_bits = 0;  ///< bits of both factors (codes + scales/exponents, padding included)
  // For analysis (not needed for inference):
  std::vector<float> a_t_float;              ///< Aᵀ before quantization, k x K row-major
  std::vector<float> b_t_float;              ///< Bᵀ before quantization, N x k row-major
  std::vector<double> singular_values;       ///< σ_1 >= ... >= σ_k of diag(s)·E (paper orientation)
  double scaled_error_norm_squared = 0;      ///< ‖diag(s)·E‖_F² (E = W − Q(W), paper orientation)
  SvdMethod svd_method = SvdMethod::exact;   ///< the SVD method actually used
};

/// A weight matrix quantized with any rankq weight quantizer plus its low-rank correction.
struct LqerWeights {
  UniformWeights weights;        ///< Q(W) in uniform form (MXINT converted exactly by to_uniform)
  double weight_bits = 0;        ///< bits per weight of the weight format alone (e.g. 4.5 for MXINT4, blocks of 16)
  LowRankCorrection correction;
};

/// Bits per weight of the correction alone: storage_bits / (N·K). For MXINT8 factors and k a multiple of 16
/// this is the paper's 8.5·k·(m + n)/(m·n); smaller k pays for Bᵀ's rows padded to 16.
inline double bits_per_weight(const LowRankCorrection& c) {
  return c.storage_bits / (static_cast<double>(c.out_features) * static_cast<double>(c.in_features));
}

/// Total bits per weight: weight format + correction (4.5 + 8.5·k(m+n)/(mn) for MXINT4 + MXINT8, k % 16 == 0).
inline double bits_per_weight(const LqerWeights& w) { return w.weight_bits + bits_per_weight(w.correction); }

RANKQ_NAMESPACE_END  // namespace rankq
