// tests/kernel_paths.hpp — which kernel paths a test runs: every path this CPU supports, narrowed by the
// environment variable RANKQ_TEST_PATHS (comma-separated names), and a check that the best one ran.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "rankq/kernels/kernel_path.hpp"

namespace test {

inline std::vector<rankq::KernelPath> paths_under_test() {
  std::vector<rankq::KernelPath> all = rankq::supported_paths();
  const char* env = std::getenv("RANKQ_TEST_PATHS");
  if (!env || !*env) return all;
  std::set<std::string> wanted;
  std::stringstream ss(env);
  for (std::string item; std::getline(ss, item, ',');) wanted.insert(item);
  std::vector<rankq::KernelPath> out;
  for (auto p : all)
    if (wanted.count(rankq::to_string(p))) out.push_back(p);
  return out;
}

/// Registers a check that runs once after every test of the binary has run (a GoogleTest Environment, so it
/// does not depend on test order or shuffling): the best path this CPU supports and the path the TU's own
/// flags guarantee must both be in `covered` (filled by the tests as they run kernels). Skipped when
/// RANKQ_TEST_PATHS narrows the paths or a --gtest_filter selects only some tests.
class BestPathCoverage : public ::testing::Environment {
 public:
  BestPathCoverage(const char* what, const std::set<rankq::KernelPath>* covered) : what_(what), covered_(covered) {}
  void TearDown() override {
    std::string names;
    for (auto p : *covered_) names += std::string(rankq::to_string(p)) + " ";
    std::printf("[ paths    ] %s covered: %s\n", what_, names.c_str());
    const char* env = std::getenv("RANKQ_TEST_PATHS");
    if (env && *env) return;
#ifdef GTEST_FLAG_GET
    const std::string filter = GTEST_FLAG_GET(filter);
#else
    const std::string filter = ::testing::GTEST_FLAG(filter);
#endif
    if (filter != "*") return;
    EXPECT_TRUE(covered_->count(rankq::best_supported_path()))
        << what_ << ": the best path on this CPU (" << rankq::to_string(rankq::best_supported_path()) << ") did not run";
    // Catches a run-time detection that under-reports the CPU, which the check above cannot see.
    EXPECT_TRUE(covered_->count(rankq::compiled_default_path()))
        << what_ << ": the path this TU's flags guarantee (" << rankq::to_string(rankq::compiled_default_path())
        << ") did not run";
  }

 private:
  const char* what_;
  const std::set<rankq::KernelPath>* covered_;
};

/// Use at namespace scope, after `covered` is defined: `const bool registered = register_best_path_coverage(...)`.
inline bool register_best_path_coverage(const char* what, const std::set<rankq::KernelPath>* covered) {
  ::testing::AddGlobalTestEnvironment(new BestPathCoverage(what, covered));
  return true;
}

}  // namespace test
