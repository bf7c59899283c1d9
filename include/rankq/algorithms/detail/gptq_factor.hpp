// rankq/algorithms/detail/gptq_factor.hpp — GPTQ's preparation of H: dead channels, dampening, activation order and the
// upper Cholesky factor U of H⁻¹ (H⁻¹ = UᵀU), computed from one Eigen LLT of the reversed H. Include
// rankq/algorithms/gptq.hpp instead. Math: docs/gptq.md §2–3.
#pragma once

#include "rankq/detail/abi.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <numeric>
#include <string>
#include <vector>

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include "rankq/error.hpp"
#include "rankq/algorithms/detail/gptq_types.hpp"

RANKQ_NAMESPACE_BEGIN namespace detail {

using GptqRowMajorF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// H prepared for a pass. Positions are processing positions; columns are the weight's original columns.
struct GptqFactor {
  std::size_t K = 0;
  std::vector<std::size_t> order;     ///< position i -> original column
  std::vector<std::size_t> position;  ///< original column -> position
  std::vector<char> dead;             ///< per original column: diag(H) was 0
  std::vector<double> diagonal;       ///< per original column: diagonal of the dampened H
  std::size_t dead_count = 0;
  double damping = 0.0;
  GptqRowMajorF U;                    ///< K x K upper triangular, in processing order: H_d⁻¹ = UᵀU
};

using ::rankq::kGptqMaxClipSteps;

/// Per original column: the cost 1/U_pp² of a unit error at its processing position p (docs/gptq.md §3.8); 0 for a
/// dead channel (its true H is zero: its error never reaches the output).
inline std::vector<float> gptq_column_costs(const GptqFactor& f) {
  std::vector<float> cost(f.K, 0.0f);
  for (std::size_t c = 0; c < f.K; ++c) {
    if (f.dead[c]) continue;
    const double u = f.U(static_cast<Eigen::Index>(f.position[c]), static_cast<Eigen::Index>(f.position[c]));
    cost[c] = static_cast<float>(1.0 / (u * u));
  }
  return cost;
}

inline void check_gptq_options(const GptqOptions& o, const char* fn) {
  if (!std::isfinite(o.damp) || o.damp < 0.0)
    throw_argument(fn, "options.damp", "= " + std::to_string(o.damp) + ": must be finite and >= 0");
  if (o.block == 0) throw_argument(fn, "options.block", "is 0: must be >= 1 (GPTQ uses 128)");
  if (!std::isfinite(o.clip_min) || !(o.clip_min > 0.0) || o.clip_min > 1.0)
    throw_argument(fn, "options.clip_min", "= " + std::to_string(o.clip_min) + ": must be in (0, 1]");
  if (o.clip_steps > kGptqMaxClipSteps)
    throw_argument(fn, "options.clip_steps", "= " + std::to_string(o.clip_steps) + ": must be <= " +
                                                 std::to_string(kGptqMaxClipSteps));
}

/// Checks H's shape against K (the weight's columns) and its entries (finite, diagonal >= 0, symmetric).
inline void check_gptq_hessian(const GptqHessian& h, std::size_t K, const char* fn) {
  if (h.channels != K)
    throw_argument(fn, "hessian", "has " + std::to_string(h.channels) + " channels, expected K = " + std::to_string(K) +
                                      " (the weight's columns)");
  if (h.values.size() != K * K)
    throw_argument(fn, "hessian.values", "has " + std::to_string(h.values.size()) + " entries, expected K·K = " +
                                             std::to_string(K * K));
  for (std::size_t i = 0; i < K; ++i)
    for (std::size_t j = 0; j < K; ++j) {
      const double v = h.values[i * K + j];
      if (!std::isfinite(v))
        throw_argument(fn, "hessian", "has a non-finite entry (NaN or Inf) at (" + std::to_string(i) + ", " +
                                          std::to_string(j) + ")");
      if (j > i && v != h.values[j * K + i])
        throw_argument(fn, "hessian", "is not symmetric: entry (" + std::to_string(i) + ", " + std::to_string(j) +
                                          ") differs from (" + std::to_string(j) + ", " + std::to_string(i) + ")");
    }
  for (std::size_t i = 0; i < K; ++i)
    if (h.values[i * K + i] < 0.0)
      throw_argument(fn, "hessian", "has a negative diagonal entry at " + std::to_string(i) +
                                        ": not a second-moment matrix");
}

/// Dead channels (diag 0 -> 1), dampening H + λ·mean(diag)·I, activation order (stable sort by decreasing
/// diag), then U = J·L⁻¹·J from the Cholesky J·H_p·J = L·Lᵀ of the permuted H reversed (J = reversal): U is
/// upper triangular and UᵀU = J·L⁻ᵀ·L⁻¹·J = H_p⁻¹. Throws if H_d is not positive definite.
inline GptqFactor gptq_factor(const GptqHessian& h, const GptqOptions& o, const char* fn) {
  const std::size_t K = h.channels;
  const Eigen::Index k = static_cast<Eigen::Index>(K);
  GptqFactor f;
  f.K = K;
  Eigen::MatrixXd H = Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
      h.values.data(), k, k);
  f.dead.assign(K, 0);
  for (Eigen::Index i = 0; i < k; ++i)
    if (H(i, i) == 0.0) {
      f.dead[static_cast<std::size_t>(i)] = 1;
      ++f.dead_count;
      H(i, i) = 1.0;
    }
  f.order.resize(K);
  std::iota(f.order.begin(), f.order.end(), std::size_t{0});
  if (o.act_order)
    std::stable_sort(f.order.begin(), f.order.end(), [&](std::size_t a, std::size_t b) {
      return H(static_cast<Eigen::Index>(a), static_cast<Eigen::Index>(a)) >
             H(static_cast<Eigen::Index>(b), static_cast<Eigen::Index>(b));
    });
  f.position.resize(K);
  for (std::size_t i = 0; i < K; ++i) f.position[f.order[i]] = i;
  f.damping = o.damp * H.diagonal().mean();
  H.diagonal().array() += f.damping;
  f.diagonal.resize(K);
  for (std::size_t i = 0; i < K; ++i) f.diagonal[i] = H(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(i));
  // Reversed permuted H: R(i, j) = H(order[K-1-i], order[K-1-j]).
  Eigen::MatrixXd R(k, k);
  for (Eigen::Index j = 0; j < k; ++j)
    for (Eigen::Index i = 0; i < k; ++i)
      R(i, j) = H(static_cast<Eigen::Index>(f.order[K - 1 - static_cast<std::size_t>(i)]),
                  static_cast<Eigen::Index>(f.order[K - 1 - static_cast<std::size_t>(j)]));
  Eigen::LLT<Eigen::MatrixXd> llt(R);
  if (llt.info() != Eigen::Success)
    throw_argument(fn, "hessian", "is not positive definite after dampening (damp = " + std::to_string(o.damp) +
                                      ", " + std::to_string(f.damping) +
                                      " added to the diagonal): increase the dampening or the calibration tokens");
  // L⁻¹ by column panels: panel [j0, j0 + nb) of L⁻¹ is zero above row j0, and its rows [j0, K) solve
  // L[j0:, j0:]·X = I[j0:, j0:j0+nb] — K³/6 multiply-adds instead of the K³/2 of a solve against the full identity.
  Eigen::MatrixXd Linv = Eigen::MatrixXd::Zero(k, k);
  const Eigen::MatrixXd& L = llt.matrixLLT();  // lower triangle = L
  constexpr Eigen::Index kPanel = 128;
  for (Eigen::Index j0 = 0; j0 < k; j0 += kPanel) {
    const Eigen::Index nb = std::min(kPanel, k - j0), rest = k - j0;
    auto panel = Linv.block(j0, j0, rest, nb);
    panel.setIdentity();
    L.block(j0, j0, rest, rest).triangularView<Eigen::Lower>().solveInPlace(panel);
  }
  f.U.setZero(k, k);
  for (Eigen::Index i = 0; i < k; ++i)
    for (Eigen::Index j = i; j < k; ++j) f.U(i, j) = static_cast<float>(Linv(k - 1 - i, k - 1 - j));
  for (Eigen::Index i = 0; i < k; ++i)
    if (!(f.U(i, i) > 0.0f) || !std::isfinite(f.U(i, i)))
      throw_argument(fn, "hessian", "is too ill-conditioned after dampening (damp = " + std::to_string(o.damp) +
                                        "): the Cholesky factor of its inverse has a zero or non-finite diagonal");
  return f;
}

}  RANKQ_NAMESPACE_END  // namespace rankq::detail
