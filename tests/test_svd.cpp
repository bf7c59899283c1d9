// Tests for rankq/algorithms/svd.hpp: exact truncation = Eckart–Young optimum, randomized within 1% of it on decaying
// spectra over several seeds, reproducible per seed, the automatic rule, the portable normal generator, errors.
#include <rankq/algorithms/svd.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "test_util.hpp"

using namespace rankq;

namespace {

// m x n matrix U·diag(σ)·Vᵀ with σ_i = decay^i (plus a small flat noise floor), random orthogonal U, V.
Eigen::MatrixXd decaying_matrix(Eigen::Index m, Eigen::Index n, double decay, std::uint64_t seed, double noise = 1e-3) {
  detail::PortableNormal g(seed);
  auto gaussian = [&](Eigen::Index r, Eigen::Index c) {
    Eigen::MatrixXd a(r, c);
    for (Eigen::Index j = 0; j < c; ++j)
      for (Eigen::Index i = 0; i < r; ++i) a(i, j) = g();
    return a;
  };
  const Eigen::Index p = std::min(m, n);
  Eigen::MatrixXd u = gaussian(m, p), v = gaussian(n, p);
  detail::orthonormalize_columns(u);
  detail::orthonormalize_columns(v);
  Eigen::VectorXd s(p);
  for (Eigen::Index i = 0; i < p; ++i) s(i) = std::pow(decay, double(i));
  return u * s.asDiagonal() * v.transpose() + noise * gaussian(m, n);
}

double reconstruction_error(const Eigen::MatrixXd& a, const TruncatedSvd& s) {
  return (a - s.u * s.sigma.asDiagonal() * s.v.transpose()).norm();
}

SvdOptions with(SvdMethod m, std::uint64_t seed = 1) {
  SvdOptions o;
  o.method = m;
  o.seed = seed;
  return o;
}

}  // namespace

TEST(Svd, ExactTruncationIsEckartYoung) {
  const Eigen::MatrixXd a = decaying_matrix(96, 160, 0.9, 1);
  const Eigen::JacobiSVD<Eigen::MatrixXd> ref(a);
  for (std::size_t k : {1u, 5u, 17u, 96u}) {
    const TruncatedSvd s = truncated_svd(a, k, with(SvdMethod::exact));
    EXPECT_EQ(s.method, SvdMethod::exact);
    ASSERT_EQ(s.u.rows(), 96);
    ASSERT_EQ(s.u.cols(), Eigen::Index(k));
    ASSERT_EQ(s.v.rows(), 160);
    const double discarded = ref.singularValues().tail(96 - Eigen::Index(k)).squaredNorm();
    const double err = reconstruction_error(a, s);
    EXPECT_NEAR(err * err, discarded, 1e-9 * a.squaredNorm() + 1e-7 * discarded) << "k=" << k;
    EXPECT_NEAR(truncation_error_squared(a.squaredNorm(), s), discarded, 1e-9 * a.squaredNorm()) << "k=" << k;
    EXPECT_LT((s.u.transpose() * s.u - Eigen::MatrixXd::Identity(Eigen::Index(k), Eigen::Index(k))).norm(), 1e-10);
    for (Eigen::Index i = 1; i < s.sigma.size(); ++i) EXPECT_GE(s.sigma(i - 1), s.sigma(i));
  }
}

TEST(Svd, RandomizedWithinOnePercentOfExactOverSeeds) {
  for (double decay : {0.7, 0.9, 0.97}) {
    const Eigen::MatrixXd a = decaying_matrix(96, 160, decay, 7);
    const Eigen::MatrixXf af = a.cast<float>();
    for (std::size_t k : {4u, 8u, 12u}) {
      const double exact = reconstruction_error(a, truncated_svd(a, k, with(SvdMethod::exact)));
      for (std::uint64_t seed = 1; seed <= 5; ++seed) {
        const double rd = reconstruction_error(a, truncated_svd(a, k, with(SvdMethod::randomized, seed)));
        const double rf = reconstruction_error(a, truncated_svd(af, k, with(SvdMethod::randomized, seed)));
        EXPECT_LE(rd, 1.01 * exact) << "double decay=" << decay << " k=" << k << " seed=" << seed;
        EXPECT_LE(rf, 1.01 * exact) << "float decay=" << decay << " k=" << k << " seed=" << seed;
      }
    }
  }
}

TEST(Svd, RandomizedIsReproducibleForASeed) {
  const Eigen::MatrixXf a = decaying_matrix(64, 100, 0.9, 3).cast<float>();
  const TruncatedSvd x = truncated_svd(a, 6, with(SvdMethod::randomized, 42));
  const TruncatedSvd y = truncated_svd(a, 6, with(SvdMethod::randomized, 42));
  const TruncatedSvd z = truncated_svd(a, 6, with(SvdMethod::randomized, 43));
  EXPECT_EQ(x.method, SvdMethod::randomized);
  EXPECT_TRUE(x.u == y.u && x.sigma == y.sigma && x.v == y.v);
  EXPECT_FALSE(x.u == z.u);                                // a different sketch...
  EXPECT_NEAR(x.sigma(0), z.sigma(0), 1e-4 * x.sigma(0));  // ...finds the same dominant subspace
}

TEST(Svd, RandomizedSketchCappedAtFullRankIsExact) {
  // k + p > min(m, n): the sketch spans everything, so the result is the exact truncation.
  const Eigen::MatrixXd a = decaying_matrix(20, 30, 0.8, 4);
  const double exact = reconstruction_error(a, truncated_svd(a, 15, with(SvdMethod::exact)));
  EXPECT_NEAR(reconstruction_error(a, truncated_svd(a, 15, with(SvdMethod::randomized))), exact, 1e-9);
}

TEST(Svd, AutomaticRule) {
  SvdOptions o;  // p = 10
  EXPECT_EQ(resolve_svd_method(4096, 11008, 32, o), SvdMethod::randomized);
  EXPECT_EQ(resolve_svd_method(96, 160, 14, o), SvdMethod::randomized);  // (14 + 10)·4 = 96
  EXPECT_EQ(resolve_svd_method(96, 160, 15, o), SvdMethod::exact);
  EXPECT_EQ(resolve_svd_method(160, 96, 15, o), SvdMethod::exact);
  o.method = SvdMethod::exact;
  EXPECT_EQ(resolve_svd_method(4096, 11008, 32, o), SvdMethod::exact);
  const Eigen::MatrixXd a = decaying_matrix(40, 50, 0.9, 5);
  EXPECT_EQ(truncated_svd(a, 30).method, SvdMethod::exact);
}

TEST(Svd, PortableNormalIsFixedAndStandard) {
  detail::PortableNormal g(123), h(123);
  double sum = 0, sq = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    const double v = g();
    ASSERT_EQ(v, h());
    sum += v;
    sq += v * v;
  }
  EXPECT_NEAR(sum / n, 0.0, 0.01);
  EXPECT_NEAR(sq / n, 1.0, 0.01);
  // The first draws are a pure function of mt19937_64's standard sequence (golden values, any library).
  detail::PortableNormal first(1);
  const double a = first(), b = first();
  std::mt19937_64 rng(1);
  const double u1 = (double(rng() >> 11) + 1.0) * 0x1.0p-53, u2 = double(rng() >> 11) * 0x1.0p-53;
  EXPECT_EQ(a, std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586476925 * u2));
  EXPECT_EQ(b, std::sqrt(-2.0 * std::log(u1)) * std::sin(6.283185307179586476925 * u2));
}

TEST(Svd, BadInputIsAClearError) {
  const Eigen::MatrixXd a = Eigen::MatrixXd::Ones(6, 9);
  test::expect_invalid([&] { truncated_svd(a, 0); }, "'k' = 0");
  test::expect_invalid([&] { truncated_svd(a, 7); }, "min(m, n) = 6");
  test::expect_invalid([&] { truncated_svd(Eigen::MatrixXd(0, 4), 1); }, "'a'");
  Eigen::MatrixXf b = Eigen::MatrixXf::Ones(6, 9);
  b(2, 3) = std::numeric_limits<float>::quiet_NaN();
  test::expect_invalid([&] { truncated_svd(b, 2); }, "non-finite");
  SvdOptions o;
  o.method = static_cast<SvdMethod>(9);
  test::expect_invalid([&] { truncated_svd(a, 2, o); }, "options.method");
}
