// Tests for rankq/kernels/kernel_path.hpp: names round-trip, scalar always works, the compile-time default is usable.
#include <rankq/kernels/kernel_path.hpp>

#include <gtest/gtest.h>

#include <cstdio>

#include "test_util.hpp"

using namespace rankq;

TEST(KernelPath, NamesRoundTrip) {
  for (KernelPath p : {KernelPath::scalar, KernelPath::avx2, KernelPath::avx_vnni, KernelPath::avx512_vnni,
                       KernelPath::neon, KernelPath::neon_dotprod})
    EXPECT_EQ(parse_kernel_path(to_string(p)), p);
  test::expect_invalid([] { parse_kernel_path("sse9"); }, "'s'");
}

TEST(KernelPath, SupportedPathsAreConsistent) {
  auto paths = supported_paths();
  ASSERT_FALSE(paths.empty());
  EXPECT_EQ(paths.front(), KernelPath::scalar);
  for (auto p : paths) EXPECT_TRUE(path_compiled(p));
  EXPECT_TRUE(path_supported(compiled_default_path())) << "the TU's flags promise a path the CPU lacks";
  std::printf("best supported path: %s, compiled default: %s\n", to_string(best_supported_path()),
              to_string(compiled_default_path()));
#if RANKQ_SIMD_DISABLED
  EXPECT_EQ(paths.size(), 1u);
#endif
}

TEST(KernelPath, PageAheadHintDefaultsByCpuAndCanBeSwitched) {
  const auto& f = detail::cpu_features();
  EXPECT_EQ(page_ahead_hint(), f.amd && f.family >= 0x1Au) << "on by default only on AMD family 0x1A (Zen 5)";
  std::printf("cpu: %s family 0x%x model 0x%x, page-ahead hint %s\n", f.amd ? "AMD" : "not AMD", f.family, f.model,
              page_ahead_hint() ? "on" : "off");
  const bool was = page_ahead_hint();
  set_page_ahead_hint(!was);
  EXPECT_EQ(page_ahead_hint(), !was);
  set_page_ahead_hint(was);
  EXPECT_EQ(page_ahead_hint(), was);
}
