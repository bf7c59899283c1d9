// tests/test_data.hpp — where the tests find the real data (stories260K, tok512, TinyStories text, ...), and the
// rule for when it is missing.
//
// The folder is the environment variable RANKQ_DATA_DIR if set, else the CMake cache variable of the same name
// (default <repo>/data, filled by scripts/get-data.sh). A test that needs a file starts with
// RANKQ_REQUIRE_DATA("file", ...): when a file is missing the test is SKIPPED with a message naming
// scripts/get-data.sh, or FAILS when the environment sets RANKQ_REQUIRE_DATA=1 (scripts/test-all.sh does when
// the data is present or CI is set, so a green CI run means the data tests ran).
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <initializer_list>
#include <string>

namespace rankq_test {

/// The data folder: $RANKQ_DATA_DIR, else the build's default.
inline std::string data_dir() {
  const char* env = std::getenv("RANKQ_DATA_DIR");
  if (env != nullptr && *env != '\0') return env;
  return RANKQ_DATA_DIR_DEFAULT;
}

/// Path of a data file (whether or not it exists; guard the test with RANKQ_REQUIRE_DATA).
inline std::string data_path(const std::string& name) { return data_dir() + "/" + name; }

/// True when the environment demands the data (RANKQ_REQUIRE_DATA set to anything but "" or "0").
inline bool data_required() {
  const char* env = std::getenv("RANKQ_REQUIRE_DATA");
  return env != nullptr && *env != '\0' && std::string(env) != "0";
}

/// Empty if every named file is a regular file in data_dir(); otherwise the message of the skip/failure.
inline std::string missing_data(std::initializer_list<const char*> names) {
  std::string missing;
  for (const char* name : names)
    if (!std::filesystem::is_regular_file(data_path(name))) missing += (missing.empty() ? "" : ", ") + std::string(name);
  if (missing.empty()) return missing;
  return "real test data missing in '" + data_dir() + "' (" + missing +
         "): run scripts/get-data.sh, or point RANKQ_DATA_DIR at a folder holding it";
}

}  // namespace rankq_test

/// First statement of a test that reads real data files: skips it (or fails it under RANKQ_REQUIRE_DATA=1)
/// when any of them is missing.
#define RANKQ_REQUIRE_DATA(...)                                                        \
  do {                                                                                 \
    const std::string rankq_missing_ = ::rankq_test::missing_data({__VA_ARGS__});      \
    if (!rankq_missing_.empty()) {                                                     \
      if (::rankq_test::data_required()) FAIL() << rankq_missing_ << " [RANKQ_REQUIRE_DATA=1]"; \
      GTEST_SKIP() << rankq_missing_;                                                  \
    }                                                                                  \
  } while (0)
