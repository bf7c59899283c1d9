// tests/mixed_flags/variant.inl — one instruction-set variant of the kernel tests for test_mixed_flags.
//
// No include guard on purpose: each variant_<name>.cpp defines RANKQ_TEST_VARIANT and RANKQ_TEST_FILE and
// includes this file; CMake compiles each with its own -m flags (baseline, -mavx2 -mfma -mf16c, -march=native)
// and links all of them into ONE program. Everything the test file includes is included here first, outside
// the variant's namespace, so the test's own #include lines are no-ops and the test's code (including the
// helpers of test_util.hpp / kernel_paths.hpp / guarded_buffer.hpp, which are not part of rankq) lands in
// namespace RANKQ_TEST_VARIANT. rankq itself needs no such wrapping: its ABI namespace (rankq/detail/abi.hpp)
// already gives each flag set its own symbols — which is exactly what this program checks.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cfenv>
#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <rankq/algorithms/lcq.hpp>
#include <rankq/kernels/codebook_kernel.hpp>
#include <rankq/kernels/lowrank_kernel.hpp>
#include <rankq/kernels/packed_activations.hpp>
#include <rankq/kernels/reference.hpp>
#include <rankq/kernels/w4a8.hpp>
#include <rankq/kernels/w8a8_kernel.hpp>

namespace RANKQ_TEST_VARIANT {
#include RANKQ_TEST_FILE
}  // namespace RANKQ_TEST_VARIANT
