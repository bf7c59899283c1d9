// rankq/detail/svd_randomized.hpp — machinery of rankq/svd.hpp: a library-independent Gaussian generator and
// the randomized range finder with power iterations (Halko, Martinsson & Tropp 2011, Alg. 4.4 + 5.1).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>

#include <Eigen/Core>
#include <Eigen/QR>
#include <Eigen/SVD>

namespace rankq::detail {

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

/// Randomized truncated SVD core: returns the l x l-or-smaller factors of A ≈ Q·(QᵀA) with Q (m x l)
/// orthonormal, l = sketch columns. Products with A run in Scalar (float for speed); the small SVD in double.
/// Outputs the leading k triplets in u (m x k), sigma (k), v (n x k).
template <typename Scalar>
void randomized_svd(const Eigen::Ref<const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>>& a, Eigen::Index k,
                    Eigen::Index sketch, std::size_t power_iterations, std::uint64_t seed, Eigen::MatrixXd& u,
                    Eigen::VectorXd& sigma, Eigen::MatrixXd& v) {
  using Mat = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;
  const Eigen::Index n = a.cols();
  PortableNormal normal(seed);
  Mat omega(n, sketch);  // filled column by column: entry (i, j) is draw number j*n + i
  for (Eigen::Index j = 0; j < sketch; ++j)
    for (Eigen::Index i = 0; i < n; ++i) omega(i, j) = static_cast<Scalar>(normal());
  Mat q = a * omega;  // m x l sample of the range of A
  orthonormalize_columns(q);
  for (std::size_t it = 0; it < power_iterations; ++it) {
    // Aᵀ·Q formed as (Qᵀ·A)ᵀ: Eigen's GEMM is ~4x faster for a wide l x n result than for a tall n x l one
    // with A transposed (measured on 4096 x 11008, l = 42).
    Mat z = (q.transpose() * a).transpose();  // n x l
    orthonormalize_columns(z);
    q.noalias() = a * z;
    orthonormalize_columns(q);
  }
  // B = QᵀA (l x n); its SVD B = Ũ Σ Vᵀ gives A ≈ (QŨ) Σ Vᵀ.
  const Eigen::MatrixXd b = (q.transpose() * a).template cast<double>();
  Eigen::BDCSVD<Eigen::MatrixXd> svd(b, Eigen::ComputeThinU | Eigen::ComputeThinV);
  u.noalias() = q.template cast<double>() * svd.matrixU().leftCols(k);
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

}  // namespace rankq::detail
