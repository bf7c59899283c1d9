// rankq/algorithms/svd.hpp — truncated SVD of a dense matrix: exact (Eigen BDCSVD) or randomized (Gaussian block Krylov
// method with oversampling and re-orthonormalized iterations), deterministic for a seed. Math: docs/lqer.md §3.
#pragma once

#include "rankq/detail/abi.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include <Eigen/Core>

#include "rankq/error.hpp"
#include "rankq/detail/svd_method.hpp"
#include "rankq/algorithms/detail/svd_randomized.hpp"

RANKQ_NAMESPACE_BEGIN

struct SvdOptions {
  SvdMethod method = SvdMethod::automatic;
  std::size_t oversampling = 10;     ///< p: each Krylov block has k + p columns (capped at min(m, n))
  /// q: Krylov blocks after the first, each Aᵀ· then A· with a QR re-orthonormalization after both; the basis
  /// has (q + 1)(k + p) columns (fewer blocks if that exceeds min(m, n)). q = 2 keeps the randomized error within
  /// 1 % of the exact truncation's on the flat spectra of quantization errors (docs/lqer.md §3, §8.2).
  std::size_t power_iterations = 2;
  std::uint64_t seed = 0x5eed5eed5eedull;  ///< the Gaussian test matrix depends on this only
};

/// A ≈ u · diag(sigma) · vᵀ with u (m x k) and v (n x k) orthonormal columns, sigma descending (>= 0).
struct TruncatedSvd {
  Eigen::MatrixXd u;
  Eigen::VectorXd sigma;
  Eigen::MatrixXd v;
  SvdMethod method = SvdMethod::exact;  ///< the method actually used (never automatic)
};

/// The method `automatic` resolves to for an m x n matrix at rank k.
inline SvdMethod resolve_svd_method(std::size_t m, std::size_t n, std::size_t k, const SvdOptions& o) {
  if (o.method != SvdMethod::automatic) return o.method;
  return (k + o.oversampling) * 4 <= std::min(m, n) ? SvdMethod::randomized : SvdMethod::exact;
}

namespace detail {
template <typename Scalar>
TruncatedSvd truncated_svd_impl(const Eigen::Ref<const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>>& a,
                                std::size_t k, const SvdOptions& o) {
  constexpr const char* fn = "truncated_svd";
  const std::size_t m = static_cast<std::size_t>(a.rows()), n = static_cast<std::size_t>(a.cols());
  if (m == 0 || n == 0)
    throw_argument(fn, "a", "has shape " + std::to_string(m) + "x" + std::to_string(n) + ": dimensions must be non-zero");
  const std::size_t full = std::min(m, n);
  if (k == 0 || k > full)
    throw_argument(fn, "k", "= " + std::to_string(k) + ": must be in [1, min(m, n) = " + std::to_string(full) + "]");
  if (o.method != SvdMethod::automatic && o.method != SvdMethod::exact && o.method != SvdMethod::randomized)
    throw_argument(fn, "options.method", "is not automatic, exact or randomized");
  if (!a.allFinite()) throw_argument(fn, "a", "has a non-finite value (NaN or Inf)");
  TruncatedSvd r;
  r.method = resolve_svd_method(m, n, k, o);
  const Eigen::Index kk = static_cast<Eigen::Index>(k);
  if (r.method == SvdMethod::exact) {
    exact_svd(a.template cast<double>(), kk, r.u, r.sigma, r.v);
  } else {
    const std::size_t block = std::min(full, k + o.oversampling);
    randomized_svd<Scalar>(a, kk, static_cast<Eigen::Index>(block), o.power_iterations, o.seed, r.u, r.sigma, r.v);
  }
  return r;
}
}  // namespace detail

/// Leading k singular triplets of a (m x n). Float input: the randomized method's large products run in float
/// (the small SVD in double); the exact method converts to double. Deterministic for a given seed and build.
/// Throws rankq::invalid_argument for k == 0, k > min(m, n), an empty matrix or a NaN/Inf entry.
inline TruncatedSvd truncated_svd(const Eigen::Ref<const Eigen::MatrixXf>& a, std::size_t k, const SvdOptions& o = {}) {
  return detail::truncated_svd_impl<float>(a, k, o);
}
inline TruncatedSvd truncated_svd(const Eigen::Ref<const Eigen::MatrixXd>& a, std::size_t k, const SvdOptions& o = {}) {
  return detail::truncated_svd_impl<double>(a, k, o);
}

/// ‖A − u·diag(sigma)·vᵀ‖_F² computed as ‖A‖_F² − Σ sigma²: exact for both methods, because both return
/// u·diag(sigma)·vᵀ = u·uᵀ·A (an orthogonal projection of A), so the cross term vanishes. Clamped at 0.
inline double truncation_error_squared(double frobenius_norm_squared, const TruncatedSvd& s) {
  return std::max(0.0, frobenius_norm_squared - s.sigma.squaredNorm());
}

RANKQ_NAMESPACE_END  // namespace rankq
