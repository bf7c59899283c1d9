// llama/paragraphs.hpp — the evaluation text protocol: blank-line paragraphs, paragraph ranges, context windows.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "rankq/error.hpp"
#include "rankq/io/file.hpp"

namespace rankq::llama {

/// ASCII whitespace as Python's str.strip() removes it (the data has no other whitespace at paragraph ends).
inline bool is_ascii_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

/// The paragraphs of `text`: split on every "\n\n", each piece stripped of leading and trailing ASCII
/// whitespace, empty pieces dropped — Python's [p.strip() for p in text.split("\n\n") if p.strip()], the
/// protocol behind the reference numbers of docs/data.md (without the strip, 930 paragraphs
/// of tinystories-valid-head.txt keep a trailing space and the count is 381,598 tokens instead of 380,662).
inline std::vector<std::string> split_paragraphs(const std::string& text) {
  std::vector<std::string> paragraphs;
  std::size_t begin = 0;
  while (begin <= text.size()) {
    std::size_t end = text.find("\n\n", begin);
    if (end == std::string::npos) end = text.size();
    std::size_t first = begin, last = end;
    while (first < last && is_ascii_space(text[first])) ++first;
    while (last > first && is_ascii_space(text[last - 1])) --last;
    if (last > first) paragraphs.push_back(text.substr(first, last - first));
    begin = end + 2;
  }
  return paragraphs;
}

/// Reads a whole text file; throws rankq::io::io_error naming it if it cannot be opened or read, or is not a
/// regular file (a directory, or a FIFO — refused without blocking).
inline std::string read_text_file(const std::string& path) {
  const std::vector<std::uint8_t> bytes = rankq::io::read_file_bytes(path);
  return std::string(bytes.begin(), bytes.end());
}

/// split_paragraphs(read_text_file(path)).
inline std::vector<std::string> load_paragraphs(const std::string& path) {
  return split_paragraphs(read_text_file(path));
}

/// A half-open range [begin, end) of paragraph indices; end = npos means "to the last paragraph".
struct ParagraphRange {
  static constexpr std::size_t npos = std::numeric_limits<std::size_t>::max();
  std::size_t begin = 0;
  std::size_t end = npos;

  /// The range with npos resolved; throws rankq::invalid_argument unless begin <= end <= count.
  ParagraphRange resolved(std::size_t count, const char* function) const {
    const std::size_t e = end == npos ? count : end;
    if (begin > e || e > count)
      rankq::throw_invalid_argument(function, "range",
                                    "= [" + std::to_string(begin) + ", " + std::to_string(e) + ") is not inside the " +
                                        std::to_string(count) + " paragraphs");
    return {begin, e};
  }
};

/// One forward_sequence call of a scoring plan: tokens [begin, end) run at positions 0..end-begin-1; the
/// targets with token index in [first_scored, end) are scored (token i is predicted by position i-1-begin).
struct ScoringWindow {
  std::size_t begin, end, first_scored;
};

/// How a sequence of `length` tokens (BOS first) is scored with a context of `context` positions.
/// If length <= context: one window, every token after BOS scored. Otherwise overlapping windows of
/// `context` tokens advance by context/2: each token is scored exactly once, in the first window that
/// contains it with a predecessor, so every token after the first window sees at least context/2
/// tokens of left context (later windows start mid-text, without BOS).
inline std::vector<ScoringWindow> plan_scoring_windows(std::size_t length, std::size_t context) {
  if (context < 2) rankq::throw_invalid_argument("llama::plan_scoring_windows", "context", "must be at least 2");
  std::vector<ScoringWindow> windows;
  if (length < 2) return windows;
  const std::size_t stride = context / 2;
  ScoringWindow w{0, std::min(length, context), 1};
  windows.push_back(w);
  while (w.end < length) {
    const std::size_t begin = w.begin + stride;
    w = {begin, std::min(length, begin + context), w.end};
    windows.push_back(w);
  }
  return windows;
}

/// Consecutive, non-overlapping windows of at most `context` tokens covering [0, length) (calibration batches).
inline std::vector<ScoringWindow> plan_disjoint_windows(std::size_t length, std::size_t context) {
  if (context < 1) rankq::throw_invalid_argument("llama::plan_disjoint_windows", "context", "must be at least 1");
  std::vector<ScoringWindow> windows;
  for (std::size_t begin = 0; begin < length; begin += context) {
    const std::size_t end = std::min(length, begin + context);
    windows.push_back({begin, end, begin});
  }
  return windows;
}

}  // namespace rankq::llama
