// rankq/rankq.hpp — umbrella header for engines: formats, kernels, prepared layers and threading, i.e. every
// public header that needs neither Eigen nor nlohmann-json. The quantization algorithms that use Eigen
// (rankq/lqer.hpp, rankq/calibration.hpp, rankq/svd.hpp) and the file readers (rankq/io/*.hpp) are included
// on their own, so that a TU that only runs kernels stays light (docs/kernels.md §9).
#pragma once

#include "rankq/activation.hpp"
#include "rankq/codebook_kernel.hpp"
#include "rankq/codebook_reference.hpp"
#include "rankq/error.hpp"
#include "rankq/half.hpp"
#include "rankq/kernel_path.hpp"
#include "rankq/lcq.hpp"
#include "rankq/linear.hpp"
#include "rankq/lowrank.hpp"
#include "rankq/lowrank_kernel.hpp"
#include "rankq/matrix.hpp"
#include "rankq/mxint.hpp"
#include "rankq/reference.hpp"
#include "rankq/threading.hpp"
#include "rankq/uniform.hpp"
#include "rankq/version.hpp"
#include "rankq/w4a8.hpp"
#include "rankq/w8a8_kernel.hpp"
#include "rankq/workspace.hpp"
