// cmake/eigen_instances.cpp — the one definition of the instantiations cmake/eigen_instances.hpp declares extern.
#include <Eigen/Core>
#include <Eigen/QR>
#include <Eigen/SVD>

template class Eigen::BDCSVD<Eigen::MatrixXd>;
template class Eigen::HouseholderQR<Eigen::MatrixXf>;
template class Eigen::HouseholderQR<Eigen::MatrixXd>;
