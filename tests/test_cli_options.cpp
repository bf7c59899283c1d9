// Tests for examples/cli/options.hpp: strict whole-token integers, ranges, lists and the --threads bound.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "cli/options.hpp"

using namespace rankq;

namespace {
void expect_error(const std::function<void()>& fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "expected rankq::invalid_argument mentioning '" << needle << "'";
  } catch (const rankq::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}
}  // namespace

TEST(CliOptions, IntegersAreWholeTokensInRange) {
  EXPECT_EQ(cli::parse_integer("4", "--bits", 2, 8), 4u);
  EXPECT_EQ(cli::parse_integer("0", "--group", 0, 128), 0u);
  EXPECT_EQ(cli::parse_integer("18446744073709551615", "--x", 0, ~0ull), ~0ull);
  for (const char* bad : {"", "-1", "+4", " 4", "4 ", "4x", "0x10", "4.0", "1e3"})
    expect_error([&] { cli::parse_integer(bad, "--bits", 2, 8); }, "--bits: '" + std::string(bad) + "' is not a whole");
  expect_error([] { cli::parse_integer("4294967300", "--bits", 2, 8); }, "--bits: '4294967300' is out of range [2, 8]");
  expect_error([] { cli::parse_integer("18446744073709551616", "--x", 0, ~0ull); }, "out of range");
  expect_error([] { cli::parse_integer("99999999999999999999999", "--x", 0, ~0ull); }, "not a whole");
  expect_error([] { cli::parse_integer("1", "--bits", 2, 8); }, "out of range [2, 8]");
}

TEST(CliOptions, ListsAndRanges) {
  EXPECT_EQ(cli::parse_integer_list("3,4", "--bits", 2, 8), (std::vector<std::uint64_t>{3, 4}));
  for (const char* bad : {"", ",", "3,", ",3", "3,,4"}) expect_error([&] { cli::parse_integer_list(bad, "--bits", 2, 8); }, "empty item");
  expect_error([] { cli::parse_integer_list("3,-4", "--bits", 2, 8); }, "'-4' is not a whole");
  auto r = cli::parse_range("5:9", "--eval-range");
  EXPECT_EQ(r.begin, 5u);
  EXPECT_EQ(r.end, 9u);
  r = cli::parse_range("7:", "--eval-range");
  EXPECT_EQ(r.end, llama::ParagraphRange::npos);
  expect_error([] { cli::parse_range("5:5", "--eval-range"); }, "--eval-range: '5:5' is an empty range");
  expect_error([] { cli::parse_range("9:5", "--calib-range"); }, "empty range");
  expect_error([] { cli::parse_range("5", "--calib-range"); }, "expects A:B");
  expect_error([] { cli::parse_range("-1:5", "--calib-range"); }, "'-1' is not a whole");
}

TEST(CliOptions, ThreadsAreBounded) {
  EXPECT_EQ(cli::parse_threads("1", "--threads"), 1u);
  EXPECT_EQ(cli::parse_threads(std::to_string(cli::max_threads()), "--threads"), cli::max_threads());
  EXPECT_GE(cli::max_threads(), 4u);
  expect_error([] { cli::parse_threads("0", "--threads"); }, "--threads: '0' is out of range");
  expect_error([] { cli::parse_threads(std::to_string(cli::max_threads() + 1), "--threads"); }, "out of range");
  expect_error([] { cli::parse_threads("-1", "--threads"); }, "not a whole");
}
