// cmake/eigen_instances.hpp — force-included (-include) into rankq's own Eigen-using tests, benchmarks and
// examples, never into consumers. Eigen's BDCSVD<MatrixXd> alone costs ~35 s of GCC time in every translation
// unit that instantiates it (svd.hpp, lqer.hpp); declaring the instantiations extern here and defining them once
// in cmake/eigen_instances.cpp (library rankq_eigen_instances) cuts the test build by minutes per configuration.
#pragma once

#include <Eigen/Core>
#include <Eigen/QR>
#include <Eigen/SVD>

extern template class Eigen::BDCSVD<Eigen::MatrixXd>;
extern template class Eigen::HouseholderQR<Eigen::MatrixXf>;
extern template class Eigen::HouseholderQR<Eigen::MatrixXd>;
