// llama/generate.hpp — greedy (argmax) generation with the KV-cached decode path (llama2.c at temperature 0).
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

#include "model.hpp"
#include "rankq/error.hpp"

namespace rankq::llama {

/// Index of the first maximum of v[0..n).
inline std::size_t argmax(const float* v, std::size_t n) {
  std::size_t best = 0;
  for (std::size_t i = 1; i < n; ++i)
    if (v[i] > v[best]) best = i;
  return best;
}

/// Feeds `prompt` (normally starting with BOS) one token per position, then appends the argmax token until
/// `max_positions` positions are used (prompt included, capped at the model's seq_len) or a token of
/// `stop_tokens` is produced (llama2.c stops at BOS, which separates stories). Returns only the generated
/// tokens, without the stop token.
inline std::vector<int> generate_greedy(const Model& model, const std::vector<int>& prompt, std::size_t max_positions,
                                        const std::vector<int>& stop_tokens = {}) {
  if (prompt.empty()) rankq::throw_invalid_argument("llama::generate_greedy", "prompt", "is empty: start it with BOS");
  const std::size_t limit = std::min(max_positions, model.max_positions());
  if (limit == 0) return {};
  DecodeSession session(model, limit);  // the KV cache holds the positions asked for, not the file's seq_len
  std::vector<int> generated;
  int token = prompt[0];
  for (std::size_t pos = 0; pos < limit; ++pos) {
    const std::vector<float>& logits = session.forward_token(token, pos);
    if (pos + 1 < prompt.size()) {
      token = prompt[pos + 1];
      continue;
    }
    token = static_cast<int>(argmax(logits.data(), logits.size()));
    if (std::find(stop_tokens.begin(), stop_tokens.end(), token) != stop_tokens.end()) break;
    generated.push_back(token);
  }
  return generated;
}

}  // namespace rankq::llama
