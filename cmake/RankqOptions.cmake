# Flags for rankq's own tests, benchmarks and examples. Nothing here touches the rankq INTERFACE target:
# -march, -fsanitize and -Werror would leak into every consumer.

set(RANKQ_ISA_FLAGS "")
set(RANKQ_ISA_DEFINES "")
if(RANKQ_ISA STREQUAL "scalar")
  set(RANKQ_ISA_DEFINES RANKQ_DISABLE_SIMD=1)
elseif(RANKQ_ISA STREQUAL "avx2")
  set(RANKQ_ISA_FLAGS -mavx2 -mfma -mf16c)
elseif(RANKQ_ISA STREQUAL "native")
  set(RANKQ_ISA_FLAGS -march=native)
elseif(RANKQ_ISA STREQUAL "aarch64")
  set(RANKQ_ISA_FLAGS -march=armv8-a)
elseif(RANKQ_ISA STREQUAL "aarch64-dotprod")
  set(RANKQ_ISA_FLAGS -march=armv8.2-a+dotprod)
elseif(NOT RANKQ_ISA STREQUAL "default")
  message(FATAL_ERROR "RANKQ_ISA='${RANKQ_ISA}' is not one of default, scalar, avx2, native, aarch64, aarch64-dotprod")
endif()

function(rankq_configure_target target)
  # -ffp-contract=off: rankq's own builds test exact contracts (LCQ k = 1 == RTN bit for bit, monotone fits,
  # scalar references == SIMD kernels in float too) that assume a*b + c rounds twice unless std::fma or an fma
  # intrinsic says otherwise; GCC contracts by default in GNU mode, differently at -O2 and -O3. Not put on the
  # interface target: it would change the FP code generation of every consumer TU (docs/kernels.md).
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wundef -Wshadow
    $<$<CXX_COMPILER_ID:GNU,Clang,AppleClang>:-ffp-contract=off> ${RANKQ_ISA_FLAGS})
  if(RANKQ_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  if(RANKQ_ISA STREQUAL "native" AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    # GCC 12's AVX-512 intrinsics initialise their "undefined" operands as `__m512 __Y = __Y;` (GCC PR 105593):
    # once Eigen's packet code is inlined into our TUs, -W(maybe-)uninitialized fires inside <avx512fintrin.h>
    # hundreds of times, and system-header status does not silence warnings emitted after inlining. The other
    # configurations (scalar, avx2, asan-ubsan) keep both warnings as errors.
    target_compile_options(${target} PRIVATE -Wno-uninitialized -Wno-maybe-uninitialized)
  endif()
  if(RANKQ_ISA_DEFINES)
    target_compile_definitions(${target} PRIVATE ${RANKQ_ISA_DEFINES})
  endif()
  # Eigen's own headers are noisy under -Wshadow; treat them as system headers.
  get_target_property(_eigen_inc Eigen3::Eigen INTERFACE_INCLUDE_DIRECTORIES)
  target_include_directories(${target} SYSTEM PRIVATE ${_eigen_inc})
endfunction()

# Where the tests find the real data (stories260K, tok512, TinyStories text...): the git-ignored data/ folder that
# scripts/get-data.sh fills. The environment variable RANKQ_DATA_DIR overrides it when a test runs.
set(RANKQ_DATA_DIR "${PROJECT_SOURCE_DIR}/data" CACHE PATH "Folder with the real test data (scripts/get-data.sh)")

# rankq's own Eigen-using tests, benchmarks and examples link rankq::eigen_instances (CMakeLists.txt), so Eigen's
# heavy decompositions are compiled once per build instead of in every TU that includes svd.hpp or lqer.hpp.
if(RANKQ_IS_TOP_LEVEL AND TARGET rankq_eigen_instances)
  rankq_configure_target(rankq_eigen_instances)
endif()
function(rankq_use_eigen_instances target)
  target_link_libraries(${target} PRIVATE rankq::eigen_instances)
endfunction()
