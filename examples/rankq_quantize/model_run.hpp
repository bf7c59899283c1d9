// examples/rankq_quantize/model_run.hpp — rankq-quantize on a real LLaMA checkpoint: load, calibrate on one
// paragraph range, quantize every projection with each requested method, measure perplexity on another range.
#pragma once

#include <rankq/io/gguf.hpp>
#include <rankq/io/llama2c.hpp>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "llama/calibration.hpp"
#include "llama/model.hpp"
#include "llama/perplexity.hpp"
#include "llama/tokenizer.hpp"
#include "rankq_quantize/methods.hpp"
#include "rankq_quantize/model_file.hpp"
#include "rankq_quantize/progress.hpp"

namespace rankq::example {

struct ModelRunOptions {
  std::string model_path, tokenizer_path, calib_path, eval_path;
  llama::ParagraphRange calib_range{0, 256};  ///< paragraphs that calibrate (never evaluated)
  llama::ParagraphRange eval_range{256, llama::ParagraphRange::npos};
  std::vector<MethodSpec> methods;
  std::size_t threads = 2;
  std::string out_path;  ///< if set, the (single) quantized method's model is written here
};

struct ModelRow {
  std::string method;
  double bits_per_weight = 0, perplexity = 0, delta_vs_fp32 = 0, tokens_per_second = 0;
  std::size_t tokens = 0;
};

inline io::LlamaModel load_model(const std::string& path) {
  const bool gguf = path.size() >= 5 && path.compare(path.size() - 5, 5, ".gguf") == 0;
  return gguf ? io::read_llama_gguf(path) : io::read_llama2c(path);
}

inline llama::Tokenizer load_tokenizer(const ModelRunOptions& o, std::size_t vocab) {
  if (!o.tokenizer_path.empty()) return llama::Tokenizer::from_file(o.tokenizer_path, vocab);
  const bool gguf = o.model_path.size() >= 5 && o.model_path.compare(o.model_path.size() - 5, 5, ".gguf") == 0;
  if (!gguf) throw rankq::invalid_argument("rankq-quantize: --tokenizer is required for a llama2.c checkpoint");
  const auto v = io::gguf_vocab(io::read_gguf(o.model_path));
  return llama::Tokenizer::from_vocabulary(v.tokens, v.scores, v.bos, v.eos);
}

/// Builds the factory for one method; `calib` gives per-layer calibration data to methods that need it.
using FactoryBuilder = std::function<llama::LinearFactory(const MethodSpec&)>;

inline llama::LinearFactory default_factory(const MethodSpec& m) {
  if (m.method == "fp32") return llama::dense_linear_factory();
  if (m.method == "rtn" || m.method == "mxint")
    return [m](const std::string& name, const io::FloatTensor& w) { return make_uniform_linear(m, name, w); };
  throw rankq::invalid_argument("rankq-quantize: method '" + m.method + "' is not available in this build");
}

/// Evaluates perplexity in chunks of paragraphs (so that progress can be shown) and combines them exactly.
inline llama::PerplexityResult chunked_perplexity(const llama::Model& model, const llama::Tokenizer& tok,
                                                  const std::vector<std::string>& paragraphs, llama::ParagraphRange range,
                                                  std::size_t threads, const std::string& label) {
  llama::PerplexityResult total;
  double nll = 0, seconds = 0;
  const std::size_t chunk = 200;
  ProgressBar bar("eval " + label, range.end - range.begin);
  for (std::size_t b = range.begin; b < range.end; b += chunk) {
    llama::PerplexityOptions po;
    po.range = {b, std::min(range.end, b + chunk)};
    po.threads = threads;
    const auto r = llama::evaluate_perplexity(model, tok, paragraphs, po);
    for (std::size_t i = 0; i < r.paragraph_nll.size(); ++i) nll += r.paragraph_nll[i];
    total.tokens += r.tokens;
    total.paragraphs += r.paragraphs;
    seconds += r.seconds;
    bar.update(po.range.end - range.begin);
  }
  bar.finish();
  total.mean_nll = total.tokens ? nll / static_cast<double>(total.tokens) : 0;
  total.perplexity = std::exp(total.mean_nll);
  total.seconds = seconds;
  total.tokens_per_second = seconds > 0 ? static_cast<double>(total.tokens) / seconds : 0;
  return total;
}

inline std::vector<ModelRow> run_model(ModelRunOptions o, const FactoryBuilder& factory_for = default_factory) {
  const io::LlamaModel weights = load_model(o.model_path);
  const llama::Tokenizer tok = load_tokenizer(o, static_cast<std::size_t>(weights.config.vocab_size));
  const auto eval_paragraphs = llama::load_paragraphs(o.eval_path);
  o.eval_range = o.eval_range.resolved(eval_paragraphs.size(), "rankq-quantize --eval-range");
  std::vector<ModelRow> rows;
  double fp32_ppl = 0;
  for (const MethodSpec& m : o.methods) {
    const std::string label = describe(m);
    const auto factory = factory_for(m);
    const std::size_t layers = static_cast<std::size_t>(weights.config.n_layers) * llama::projection_suffixes().size();
    std::size_t built = 0;
    ProgressBar bar("quantize " + label, layers);
    const llama::Model model(weights, [&](const std::string& name, const io::FloatTensor& w) {
      auto layer = factory(name, w);
      bar.update(++built);
      return layer;
    });
    bar.finish();
    if (!o.out_path.empty() && m.method != "fp32") save_quantized_model(o.out_path, weights, model, label);
    const auto r = chunked_perplexity(model, tok, eval_paragraphs, o.eval_range, o.threads, label);
    if (m.method == "fp32") fp32_ppl = r.perplexity;
    rows.push_back(ModelRow{label, m.method == "fp32" ? 32.0 : model.projection_bits_per_weight(), r.perplexity,
                            fp32_ppl > 0 ? r.perplexity - fp32_ppl : 0.0, r.tokens_per_second, r.tokens});
  }
  return rows;
}

}  // namespace rankq::example
