// examples/cli/options.hpp — strict command-line value parsing shared by rankq-quantize and rankq-llama: whole-token
// decimal integers (no sign, no spaces, no overflow, e.g. "-1" and "4294967300" are refused, never wrapped or
// truncated), checked against a range, comma lists, paragraph ranges "A:B", and the --threads bound. Every error is
// a rankq::invalid_argument whose message starts with the option's name.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "llama/paragraphs.hpp"
#include "rankq/error.hpp"

namespace rankq::cli {

[[noreturn]] inline void option_error(const std::string& option, const std::string& problem) {
  throw rankq::invalid_argument(option + ": " + problem);
}

/// A decimal integer in [lo, hi] spelled by the whole of `text` (digits only).
inline std::uint64_t parse_integer(const std::string& text, const std::string& option, std::uint64_t lo, std::uint64_t hi) {
  const std::string range = "[" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  if (text.empty() || text.size() > 20 || !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
    option_error(option, "'" + text + "' is not a whole non-negative integer (expected one in " + range + ")");
  std::uint64_t v = 0;
  for (char c : text) {
    const auto digit = static_cast<std::uint64_t>(c - '0');
    if (v > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) option_error(option, "'" + text + "' is out of range " + range);
    v = v * 10 + digit;
  }
  if (v < lo || v > hi) option_error(option, "'" + text + "' is out of range " + range);
  return v;
}

/// The non-empty items of a comma list; an empty list or an empty item ("4,,3", "4,") is an error.
inline std::vector<std::string> split_list(const std::string& text, const std::string& option) {
  std::vector<std::string> out;
  std::size_t begin = 0;
  for (;;) {
    const std::size_t comma = text.find(',', begin);
    out.push_back(text.substr(begin, comma == std::string::npos ? std::string::npos : comma - begin));
    if (out.back().empty()) option_error(option, "'" + text + "' has an empty item (expected a comma list)");
    if (comma == std::string::npos) return out;
    begin = comma + 1;
  }
}

/// A comma list of integers, each in [lo, hi].
inline std::vector<std::uint64_t> parse_integer_list(const std::string& text, const std::string& option, std::uint64_t lo,
                                                     std::uint64_t hi) {
  std::vector<std::uint64_t> out;
  for (const std::string& item : split_list(text, option)) out.push_back(parse_integer(item, option, lo, hi));
  return out;
}

/// "A:B" (paragraphs [A, B)) or "A:" (A to the end). An empty range (A >= B) is an error: it has nothing to run.
inline llama::ParagraphRange parse_range(const std::string& text, const std::string& option) {
  const auto colon = text.find(':');
  if (colon == std::string::npos) option_error(option, "expects A:B (or A: for 'to the end'), got '" + text + "'");
  const std::uint64_t cap = std::numeric_limits<std::size_t>::max() - 1;
  llama::ParagraphRange r;
  r.begin = static_cast<std::size_t>(parse_integer(text.substr(0, colon), option, 0, cap));
  const std::string end = text.substr(colon + 1);
  r.end = end.empty() ? llama::ParagraphRange::npos : static_cast<std::size_t>(parse_integer(end, option, 0, cap));
  if (r.end != llama::ParagraphRange::npos && r.begin >= r.end)
    option_error(option, "'" + text + "' is an empty range (it must hold at least one paragraph)");
  return r;
}

/// The most threads a tool accepts: 4 x the hardware threads (at least 4).
inline std::size_t max_threads() { return 4 * static_cast<std::size_t>(std::max(1u, std::thread::hardware_concurrency())); }

inline std::size_t parse_threads(const std::string& text, const std::string& option) {
  return static_cast<std::size_t>(parse_integer(text, option, 1, max_threads()));
}

}  // namespace rankq::cli
