// rankq/algorithms/eigen_instances.hpp — Eigen's heavy decompositions that rankq instantiates, declared extern so a TU does
// not compile them again (docs/kernels.md §9). Included by rankq's Eigen-using headers when
// RANKQ_EXTERN_EIGEN_INSTANCES is 1, which linking CMake target rankq::eigen_instances sets; that target's one
// source file (src/eigen_instances.cpp) holds the definitions, built with the consumer's own flags.
#pragma once

#include <Eigen/Core>
#include <Eigen/QR>
#include <Eigen/SVD>

extern template class Eigen::BDCSVD<Eigen::MatrixXd>;
extern template class Eigen::HouseholderQR<Eigen::MatrixXf>;
extern template class Eigen::HouseholderQR<Eigen::MatrixXd>;
