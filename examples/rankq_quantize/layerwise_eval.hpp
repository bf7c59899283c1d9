// examples/rankq_quantize/layerwise_eval.hpp — the fp32 perplexity of a mapped checkpoint with one block in float at a
// time (docs/engine.md, "Layer by layer"): every scoring window's residual stream is kept (tokens x dim floats), each
// block runs over all of them and is released, then the classifier is applied in slices of rows. The result equals
// llama::evaluate_perplexity (and chunked_perplexity) on the whole fp32 model bit for bit: each window goes through
// the same arithmetic, DenseLinear computes every output row the same way in a slice (slices start at multiples of
// its 16-row blocks), and the per-paragraph sums are added in the same order.
#pragma once

#include <rankq/io/llama_checkpoint.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "llama/model.hpp"
#include "llama/ops.hpp"
#include "llama/paragraphs.hpp"
#include "llama/perplexity.hpp"
#include "llama/tokenizer.hpp"
#include "rankq_quantize/progress.hpp"

namespace rankq::example {

/// Rows of the classifier decoded at a time (a multiple of DenseLinear's 16-row blocks): 4096 x dim floats, twice.
inline constexpr std::size_t kClassifierSlice = 4096;

inline llama::PerplexityResult fp32_perplexity_layerwise(const io::LlamaCheckpoint& ckpt, const llama::Tokenizer& tok,
                                                         const std::vector<std::string>& paragraphs, llama::ParagraphRange range,
                                                         std::size_t threads, std::size_t classifier_slice = kClassifierSlice) {
  if (classifier_slice == 0 || classifier_slice % 16 != 0)
    rankq::throw_invalid_argument("fp32_perplexity_layerwise", "classifier_slice", "must be a positive multiple of 16");
  const auto start = std::chrono::steady_clock::now();
  const io::LlamaConfig& c = ckpt.config;
  const std::size_t dim = static_cast<std::size_t>(c.dim), vocab = static_cast<std::size_t>(c.vocab_size);
  const std::size_t kv_dim = dim * static_cast<std::size_t>(c.n_kv_heads) / static_cast<std::size_t>(c.n_heads);
  const std::size_t context = static_cast<std::size_t>(c.seq_len);
  range = range.resolved(paragraphs.size(), "rankq-quantize --eval-range");
  if (tok.vocab_size() != vocab)
    throw rankq::invalid_argument("rankq-quantize: the tokenizer has " + std::to_string(tok.vocab_size()) + " tokens, the model " +
                                  std::to_string(vocab));
  struct Window {
    std::size_t paragraph;  // index in the range
    llama::ScoringWindow w;
    std::vector<float> x;
  };
  std::vector<std::vector<int>> tokens(range.end - range.begin);
  std::vector<Window> windows;
  {
    const io::FloatTensor embedding = ckpt.load("token_embd.weight");
    for (std::size_t p = 0; p < tokens.size(); ++p) {
      tokens[p] = tok.encode(paragraphs[range.begin + p], true, false);
      for (const llama::ScoringWindow& w : llama::plan_scoring_windows(tokens[p].size(), context)) {
        Window win{p, w, std::vector<float>((w.end - w.begin) * dim)};
        for (std::size_t i = w.begin; i < w.end; ++i) {
          const auto t = static_cast<std::size_t>(tokens[p][i]);
          std::copy_n(embedding.data.data() + t * dim, dim, win.x.data() + (i - w.begin) * dim);
        }
        windows.push_back(std::move(win));
      }
    }
    ckpt.release("token_embd.weight");
  }
  // Runs f(window index) over all windows on `threads` threads (each window is independent).
  const auto parallel = [&](const std::function<void(std::size_t)>& f) {
    std::atomic<std::size_t> next{0};
    const auto work = [&] {
      for (std::size_t i = next++; i < windows.size(); i = next++) f(i);
    };
    std::vector<std::thread> pool;
    for (std::size_t t = 1; t < std::min(threads, windows.size()); ++t) pool.emplace_back(work);
    work();
    for (auto& t : pool) t.join();
  };
  const std::size_t layers = static_cast<std::size_t>(c.n_layers);
  ProgressBar bar("eval fp32 (layer by layer)", layers + 1);
  for (std::size_t l = 0; l < layers; ++l) {
    io::LlamaModel block;
    block.config = c;
    std::vector<std::string> names{llama::block_tensor_name(l, "attn_norm"), llama::block_tensor_name(l, "ffn_norm")};
    for (const auto& suffix : llama::projection_suffixes()) names.push_back(llama::block_tensor_name(l, suffix));
    for (const auto& name : names) block.tensors.emplace(name, ckpt.load(name));
    {
      const llama::Model fp32(block, llama::dense_linear_factory(), l, 1);
      block.tensors.clear();  // the dense layers hold their own copies
      parallel([&](std::size_t i) {
        const std::size_t n = windows[i].w.end - windows[i].w.begin;
        llama::KvCache cache(1, n, kv_dim);
        fp32.forward_blocks(windows[i].x.data(), n, 0, cache);
      });
    }
    for (const auto& name : names) ckpt.release(name);
    bar.update(l + 1);
  }
  // Head: final norm, classifier slice by slice, NLL of every scored token.
  const io::FloatTensor norm = ckpt.load("output_norm.weight");
  for (Window& win : windows) {
    const std::size_t n = win.w.end - win.w.begin;
    std::vector<float> normed(n * dim);
    llama::ops::rms_norm(win.x.data(), norm.data.data(), n, dim, c.norm_eps, normed.data());
    win.x = std::move(normed);
  }
  std::vector<std::vector<float>> logits(windows.size());
  for (std::size_t i = 0; i < windows.size(); ++i) logits[i].resize((windows[i].w.end - windows[i].w.begin) * vocab);
  for (std::size_t first = 0; first < vocab; first += classifier_slice) {
    const std::size_t rows = std::min(classifier_slice, vocab - first);
    const llama::DenseLinear slice(ckpt.load_rows("output.weight", first, rows).data.data(), rows, dim);
    ckpt.release_rows("output.weight", first, rows);
    parallel([&](std::size_t i) {
      const std::size_t n = windows[i].w.end - windows[i].w.begin;
      std::vector<float> y(n * rows);
      slice.forward(windows[i].x.data(), n, y.data());
      for (std::size_t r = 0; r < n; ++r) std::copy_n(y.data() + r * rows, rows, logits[i].data() + r * vocab + first);
    });
  }
  bar.finish();
  llama::PerplexityResult result;
  result.paragraph_nll.assign(tokens.size(), 0.0);
  result.paragraph_tokens.assign(tokens.size(), 0);
  for (std::size_t i = 0; i < windows.size(); ++i) {  // windows of a paragraph in order, as sequence_nll adds them
    const Window& win = windows[i];
    const std::vector<int>& t = tokens[win.paragraph];
    for (std::size_t k = win.w.first_scored; k < win.w.end; ++k)
      result.paragraph_nll[win.paragraph] += llama::token_nll(logits[i].data() + (k - 1 - win.w.begin) * vocab, vocab, t[k]);
  }
  double total = 0.0;
  for (std::size_t p = 0; p < tokens.size(); ++p) {
    result.paragraph_tokens[p] = tokens[p].size() - 1;
    total += result.paragraph_nll[p];
    result.tokens += result.paragraph_tokens[p];
  }
  if (result.tokens == 0) throw rankq::invalid_argument("rankq-quantize: --eval-range has no token to score");
  result.paragraphs = tokens.size();
  result.mean_nll = total / static_cast<double>(result.tokens);
  result.perplexity = std::exp(result.mean_nll);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.tokens_per_second = result.seconds > 0 ? static_cast<double>(result.tokens) / result.seconds : 0;
  return result;
}

}  // namespace rankq::example
