// tests/kernel_paths.hpp — which kernel paths a test runs: every path this CPU supports, narrowed by the
// environment variable RANKQ_TEST_PATHS (comma-separated names), and a check that the best one ran.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "rankq/kernel_path.hpp"

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

/// Prints the covered paths; fails if the best path this CPU supports (among those compiled in) did not run,
/// unless RANKQ_TEST_PATHS deliberately narrowed the set.
inline void expect_best_path_covered(const std::set<rankq::KernelPath>& covered, const char* what) {
  std::string names;
  for (auto p : covered) names += std::string(rankq::to_string(p)) + " ";
  std::printf("[ paths    ] %s covered: %s\n", what, names.c_str());
  const char* env = std::getenv("RANKQ_TEST_PATHS");
  if (env && *env) return;
  EXPECT_TRUE(covered.count(rankq::best_supported_path()))
      << what << ": the best path on this CPU (" << rankq::to_string(rankq::best_supported_path()) << ") did not run";
}

}  // namespace test
