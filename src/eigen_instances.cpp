// src/eigen_instances.cpp — the one definition of the instantiations rankq/algorithms/eigen_instances.hpp declares extern
// (CMake target rankq::eigen_instances).
#include <rankq/algorithms/eigen_instances.hpp>

template class Eigen::BDCSVD<Eigen::MatrixXd>;
template class Eigen::HouseholderQR<Eigen::MatrixXf>;
template class Eigen::HouseholderQR<Eigen::MatrixXd>;
