// llama/calibration.hpp — streams every linear layer's input activations over a paragraph range to callbacks.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "model.hpp"
#include "paragraphs.hpp"
#include "rankq/error.hpp"
#include "tokenizer.hpp"

namespace rankq::llama {

/// One batch of a layer's inputs: x is M x K row-major (M tokens, K = in_features); valid during the call only.
using BatchCallback = std::function<void(const float* x, std::size_t M, std::size_t K)>;

/// Routes activations to per-layer callbacks by GGUF tensor name; layers without a callback are skipped.
class CalibrationTaps {
 public:
  /// Registers `callback` for `layer_name` ("blk.0.attn_q.weight"); replaces an earlier one.
  void add(const std::string& layer_name, BatchCallback callback) { taps_[layer_name] = std::move(callback); }
  bool empty() const { return taps_.empty(); }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& tap : taps_) out.push_back(tap.first);
    return out;
  }
  /// The observer to hand to Model::forward_sequence / run_calibration.
  ActivationObserver observer() const {
    return [this](const std::string& name, const float* x, std::size_t M, std::size_t K) {
      auto it = taps_.find(name);
      if (it != taps_.end()) it->second(x, M, K);
    };
  }

 private:
  std::map<std::string, BatchCallback> taps_;
};

struct CalibrationOptions {
  ParagraphRange range;     ///< paragraphs to run (keep it disjoint from the evaluation range)
  std::size_t context = 0;  ///< max tokens per batch; 0 = the model's seq_len
  /// Optional: called on the calling thread after each paragraph with (paragraphs done, paragraphs in the range).
  std::function<void(std::size_t done, std::size_t total)> progress;
};

struct CalibrationSummary {
  std::size_t paragraphs = 0;
  std::size_t batches = 0;
  std::size_t tokens = 0;  ///< rows delivered per layer (BOS positions included)
  double seconds = 0.0;
};

/// Runs `model` (normally the fp32 one) over the paragraphs of the range, in order, on the calling thread.
/// Each paragraph is encoded exactly as in evaluate_perplexity (BOS + tokens) and run with forward_sequence;
/// `observer` receives, for every linear layer, one batch per paragraph: M = its token count (BOS included),
/// K = the layer's in_features — the activations the model sees when that paragraph is evaluated. Paragraphs
/// longer than the context are cut into consecutive windows of at most `context` tokens, one batch each.
/// Deterministic; callbacks need no locking. Throws rankq::invalid_argument if the range holds no token.
inline CalibrationSummary run_calibration(const Model& model, const Tokenizer& tokenizer,
                                          const std::vector<std::string>& paragraphs, const CalibrationOptions& options,
                                          const ActivationObserver& observer) {
  const char* fn = "llama::run_calibration";
  if (!observer) rankq::throw_invalid_argument(fn, "observer", "is empty");
  const ParagraphRange range = options.range.resolved(paragraphs.size(), fn);
  const std::size_t context = options.context == 0 ? model.max_positions() : options.context;
  if (context > model.max_positions())
    rankq::throw_invalid_argument(
        fn, "options.context",
        "= " + std::to_string(context) + " exceeds seq_len = " + std::to_string(model.max_positions()));
  const auto start = std::chrono::steady_clock::now();
  CalibrationSummary summary;
  for (std::size_t p = range.begin; p < range.end; ++p) {
    const std::vector<int> tokens = tokenizer.encode(paragraphs[p], true, false);
    for (const ScoringWindow& w : plan_disjoint_windows(tokens.size(), context)) {
      const std::vector<int> batch(tokens.begin() + static_cast<std::ptrdiff_t>(w.begin),
                                   tokens.begin() + static_cast<std::ptrdiff_t>(w.end));
      model.forward_sequence(batch, observer);
      ++summary.batches;
      summary.tokens += batch.size();
    }
    ++summary.paragraphs;
    if (options.progress) options.progress(summary.paragraphs, range.end - range.begin);
  }
  if (summary.tokens == 0)
    rankq::throw_invalid_argument(fn, "options.range",
                                  "= [" + std::to_string(range.begin) + ", " + std::to_string(range.end) +
                                      ") holds no token: calibration needs at least one");
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

/// run_calibration with per-layer callbacks.
inline CalibrationSummary run_calibration(const Model& model, const Tokenizer& tokenizer,
                                          const std::vector<std::string>& paragraphs, const CalibrationOptions& options,
                                          const CalibrationTaps& taps) {
  for (const auto& name : taps.names()) (void)model.projection(name);  // throws for a name that is not a projection
  return run_calibration(model, tokenizer, paragraphs, options, taps.observer());
}

}  // namespace rankq::llama
