// rankq/rankq.hpp — umbrella header: includes every public rankq header.
#pragma once

#include "rankq/activation.hpp"
#include "rankq/error.hpp"
#include "rankq/half.hpp"
#include "rankq/kernel_path.hpp"
#include "rankq/lowrank_kernel.hpp"
#include "rankq/matrix.hpp"
#include "rankq/mxint.hpp"
#include "rankq/reference.hpp"
#include "rankq/threading.hpp"
#include "rankq/uniform.hpp"
#include "rankq/version.hpp"
#include "rankq/w4a8.hpp"
