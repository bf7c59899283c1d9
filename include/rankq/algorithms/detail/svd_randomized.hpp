// rankq/algorithms/detail/svd_randomized.hpp — machinery of rankq/algorithms/svd.hpp: a library-independent Gaussian generator and
// the randomized block Krylov SVD (Musco & Musco 2015; the range-finder framework of Halko, Martinsson & Tropp 2011).
#pragma once

#include "rankq/detail/abi.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>

#include <Eigen/Core>
#include <Eigen/QR>
#include <Eigen/SVD>
#if defined(RANKQ_EXTERN_EIGEN_INSTANCES) && RANKQ_EXTERN_EIGEN_INSTANCES
#include "rankq/algorithms/eigen_instances.hpp"
#endif

RANKQ_NAMESPACE_BEGIN namespace detail {

/// Standard normal numbers from std::mt19937_64 (whose output sequence the C++ standard fixes) by Box–Muller,
/// so a seed gives the same numbers with every standard library (std::normal_distribution is not portable).
class PortableNormal {
 public:
  explicit PortableNormal(std::uint64_t seed) : rng_(seed) {}
  double operator()() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    // u1 in (0, 1] (never 0, so the log is finite), u2 in [0, 1), both with 53 random bits.
    const double u1 = (static_cast<double>(rng_() >> 11) + 1.0) * 0x1.0p-53;
    const double u2 = static_cast<double>(rng_() >> 11) * 0x1.0p-53;
    const double r = std::sqrt(-2.0 * std::log(u1));
    const double t = 6.283185307179586476925 * u2;
    spare_ = r * std::sin(t);
    has_spare_ = true;
    return r * std::cos(t);
  }

 private:
  std::mt19937_64 rng_;
  double spare_ = 0.0;
  bool has_spare_ = false;
};

/// Replaces the columns of y (rows x l, rows >= l) by an orthonormal basis of their span (thin Householder Q).
template <typename Scalar>
void orthonormalize_columns(Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>& y) {
  using Mat = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;
  Eigen::HouseholderQR<Mat> qr(y);
  y = qr.householderQ() * Mat::Identity(y.rows(), y.cols());
}

/// Randomized truncated SVD core, a block Krylov method (Musco & Musco 2015, "Randomized block Krylov methods
/// for stronger and faster approximate SVD", Alg. 2, with every block re-orthonormalized): Y_0 = orth(A·Ω),
/// then q times Z_i = orth(Aᵀ·Y_{i−1}), Y_i = orth(A·Z_i); Q = orth([Y_0 … Y_q]) and A ≈ Q·(QᵀA). Unlike subspace
/// iteration, which keeps only the last block, the whole Krylov space is used: on the flat spectra of
/// quantization errors q = 2 with blocks of k + 10 is more accurate than subspace iteration with q = 4 at about
/// 60 % of its matrix products (docs/lqer.md §3). Products with A run in Scalar (float for speed); the small SVD in
/// double. `block` = k + oversampling (capped by the caller at min(m, n)); the number of blocks is cut so that
/// the basis has at most min(m, n) columns. Outputs the leading k triplets in u (m x k), sigma (k), v (n x k).
template <typename Scalar>
void randomized_svd(const Eigen::Ref<const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>>& a, Eigen::Index k,
                    Eigen::Index block, std::size_t power_iterations, std::uint64_t seed, Eigen::MatrixXd& u,
                    Eigen::VectorXd& sigma, Eigen::MatrixXd& v) {
  using Mat = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;
  const Eigen::Index m = a.rows(), n = a.cols();
  const Eigen::Index max_blocks = std::max<Eigen::Index>(1, std::min(m, n) / block);
  const Eigen::Index blocks = std::min<Eigen::Index>(static_cast<Eigen::Index>(power_iterations) + 1, max_blocks);
  PortableNormal normal(seed);
  Mat omega(n, block);  // filled column by column: entry (i, j) is draw number j*n + i
  for (Eigen::Index j = 0; j < block; ++j)
    for (Eigen::Index i = 0; i < n; ++i) omega(i, j) = static_cast<Scalar>(normal());
  Mat y = a * omega;  // m x block sample of the range of A
  orthonormalize_columns(y);
  Mat krylov(m, block * blocks);
  krylov.leftCols(block) = y;
  for (Eigen::Index i = 1; i < blocks; ++i) {
    // Aᵀ·Y formed as (Yᵀ·A)ᵀ: Eigen's GEMM is ~4x faster for a wide block x n result than for a tall n x block
    // one with A transposed (measured on 4096 x 11008, block 42).
    Mat z = (y.transpose() * a).transpose();  // n x block
    orthonormalize_columns(z);
    y.noalias() = a * z;
    orthonormalize_columns(y);
    krylov.middleCols(block * i, block) = y;
  }
  orthonormalize_columns(krylov);
  // B = QᵀA (block·blocks x n); its SVD B = Ũ Σ Vᵀ gives A ≈ (QŨ) Σ Vᵀ.
  const Eigen::MatrixXd b = (krylov.transpose() * a).template cast<double>();
  Eigen::BDCSVD<Eigen::MatrixXd> svd(b, Eigen::ComputeThinU | Eigen::ComputeThinV);
  u.noalias() = krylov.template cast<double>() * svd.matrixU().leftCols(k);
  sigma = svd.singularValues().head(k);
  v = svd.matrixV().leftCols(k);
}

/// Exact truncated SVD (Eigen's divide-and-conquer BDCSVD in double) keeping the leading k triplets.
inline void exact_svd(const Eigen::MatrixXd& a, Eigen::Index k, Eigen::MatrixXd& u, Eigen::VectorXd& sigma,
                      Eigen::MatrixXd& v) {
  Eigen::BDCSVD<Eigen::MatrixXd> svd(a, Eigen::ComputeThinU | Eigen::ComputeThinV);
  u = svd.matrixU().leftCols(k);
  sigma = svd.singularValues().head(k);
  v = svd.matrixV().leftCols(k);
}

}  RANKQ_NAMESPACE_END  // namespace rankq::detail
