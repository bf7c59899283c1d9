// llama/perplexity.hpp — paragraph perplexity (the data README's protocol), threaded over paragraphs, deterministic.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "model.hpp"
#include "paragraphs.hpp"
#include "rankq/error.hpp"
#include "tokenizer.hpp"

namespace rankq::llama {

struct PerplexityOptions {
  ParagraphRange range;     ///< paragraphs [begin, end) to score (default: all)
  std::size_t threads = 2;  ///< worker threads (std::thread); the result does not depend on it
  std::size_t context = 0;  ///< positions per forward call; 0 = the model's seq_len
  /// Optional: called after each paragraph with (paragraphs done, paragraphs in the range). Calls come from
  /// the worker threads but never overlap, and `done` increases by one per call.
  std::function<void(std::size_t done, std::size_t total)> progress;
};

struct PerplexityResult {
  std::size_t paragraphs = 0;
  std::size_t tokens = 0;                     ///< scored tokens (every token after BOS)
  double mean_nll = 0.0;                      ///< nats per scored token
  double perplexity = 0.0;                    ///< exp(mean_nll)
  double seconds = 0.0;                       ///< wall time including tokenization
  double tokens_per_second = 0.0;             ///< scored tokens / seconds
  std::vector<double> paragraph_nll;          ///< per paragraph of the range: summed NLL (for paired comparisons)
  std::vector<std::size_t> paragraph_tokens;  ///< per paragraph of the range: scored tokens
};

/// Negative log-likelihood (natural log) of `target` under softmax(logits[0..n)), computed in double.
inline double token_nll(const float* logits, std::size_t n, int target) {
  float max_logit = logits[0];
  for (std::size_t i = 1; i < n; ++i) max_logit = std::max(max_logit, logits[i]);
  double sum = 0.0;
  for (std::size_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(logits[i]) - max_logit);
  return std::log(sum) + max_logit - static_cast<double>(logits[static_cast<std::size_t>(target)]);
}

/// Summed NLL of every token after the first of `tokens`, using plan_scoring_windows(size, context).
inline double sequence_nll(const Model& model, const std::vector<int>& tokens, std::size_t context) {
  double total = 0.0;
  const std::size_t vocab = model.vocab_size();
  for (const ScoringWindow& w : plan_scoring_windows(tokens.size(), context)) {
    const std::vector<int> window(tokens.begin() + static_cast<std::ptrdiff_t>(w.begin),
                                  tokens.begin() + static_cast<std::ptrdiff_t>(w.end));
    const std::vector<float> logits = model.forward_sequence(window);
    for (std::size_t i = w.first_scored; i < w.end; ++i)
      total += token_nll(logits.data() + (i - 1 - w.begin) * vocab, vocab, tokens[i]);
  }
  return total;
}

/// The protocol: each paragraph of the range is encoded on its own as BOS + tokens (llama2.c encode, with the
/// dummy-prefix space, no EOS) and every token after BOS is scored from its left context within the paragraph.
/// Paragraphs longer than the context use overlapping windows (plan_scoring_windows). Paragraphs are spread
/// over `threads` std::threads; per-paragraph sums are added in paragraph order, so the result is bitwise the
/// same for any thread count. Throws rankq::invalid_argument if the range holds no token to score (an empty range),
/// std::runtime_error if a thread cannot be started.
inline PerplexityResult evaluate_perplexity(const Model& model, const Tokenizer& tokenizer,
                                            const std::vector<std::string>& paragraphs,
                                            const PerplexityOptions& options = {}) {
  const char* fn = "llama::evaluate_perplexity";
  const ParagraphRange range = options.range.resolved(paragraphs.size(), fn);
  const std::size_t context = options.context == 0 ? model.max_positions() : options.context;
  if (context < 2 || context > model.max_positions())
    rankq::throw_invalid_argument(
        fn, "options.context",
        "= " + std::to_string(context) + ": must be in [2, seq_len = " + std::to_string(model.max_positions()) + "]");
  if (tokenizer.vocab_size() != model.vocab_size())
    rankq::throw_invalid_argument(
        fn, "tokenizer",
        "has " + std::to_string(tokenizer.vocab_size()) + " tokens, the model " + std::to_string(model.vocab_size()));
  const auto start = std::chrono::steady_clock::now();
  const std::size_t count = range.end - range.begin;
  PerplexityResult result;
  result.paragraph_nll.assign(count, 0.0);
  result.paragraph_tokens.assign(count, 0);

  std::atomic<std::size_t> next{0};
  std::mutex progress_mutex;
  std::size_t done = 0;
  std::vector<std::exception_ptr> errors(std::max<std::size_t>(1, std::min(options.threads, count)));  // no idle threads
  auto worker = [&](std::size_t thread_index) {
    try {
      for (std::size_t i = next++; i < count; i = next++) {
        const std::vector<int> tokens = tokenizer.encode(paragraphs[range.begin + i], true, false);
        result.paragraph_nll[i] = sequence_nll(model, tokens, context);
        result.paragraph_tokens[i] = tokens.size() - 1;
        if (options.progress) {
          std::lock_guard<std::mutex> lock(progress_mutex);
          options.progress(++done, count);
        }
      }
    } catch (...) {
      errors[thread_index] = std::current_exception();
      next = count;  // stop the other workers early
    }
  };
  std::vector<std::thread> pool;
  try {
    for (std::size_t t = 1; t < errors.size(); ++t) pool.emplace_back(worker, t);
  } catch (const std::exception& e) {  // e.g. std::system_error (EAGAIN): no thread left, or no memory for a stack
    next = count;
    for (auto& thread : pool) thread.join();
    throw std::runtime_error(std::string("rankq::") + fn + ": cannot start " + std::to_string(errors.size()) +
                             " threads (" + std::to_string(pool.size() + 1) + " started): " + e.what());
  }
  worker(0);
  for (auto& thread : pool) thread.join();
  for (const auto& error : errors)
    if (error) std::rethrow_exception(error);

  double total = 0.0;
  for (std::size_t i = 0; i < count; ++i) {
    total += result.paragraph_nll[i];
    result.tokens += result.paragraph_tokens[i];
  }
  if (result.tokens == 0)
    rankq::throw_invalid_argument(fn, "options.range",
                                  "= [" + std::to_string(range.begin) + ", " + std::to_string(range.end) +
                                      ") has no token to score: a perplexity needs at least one");
  result.paragraphs = count;
  result.mean_nll = total / static_cast<double>(result.tokens);
  result.perplexity = std::exp(result.mean_nll);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.tokens_per_second = result.seconds > 0.0 ? static_cast<double>(result.tokens) / result.seconds : 0.0;
  return result;
}

}  // namespace rankq::llama
