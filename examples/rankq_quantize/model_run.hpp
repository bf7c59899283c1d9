// examples/rankq_quantize/model_run.hpp — rankq-quantize on a real LLaMA checkpoint: load, calibrate on one
// paragraph range, quantize every projection with each requested method, measure perplexity on another range.
#pragma once

#include <rankq/io/detect.hpp>
#include <rankq/io/gguf.hpp>
#include <rankq/io/hf_checkpoint.hpp>
#include <rankq/io/hf_tokenizer.hpp>
#include <rankq/io/llama2c.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "llama/calibration.hpp"
#include "llama/model.hpp"
#include "llama/perplexity.hpp"
#include "llama/tokenizer.hpp"
#include "rankq_quantize/gptq_linear.hpp"
#include "rankq_quantize/in_place.hpp"
#include "rankq_quantize/layerwise.hpp"
#include "rankq_quantize/layerwise_eval.hpp"
#include "rankq_quantize/lcq_linear.hpp"
#include "rankq_quantize/lqer_linear.hpp"
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
  std::string activations;  ///< "fp32", "int8/token" or "MXINT8 b16"
  double bits_per_weight = 0, perplexity = 0, delta_vs_fp32 = 0, tokens_per_second = 0;
  std::size_t tokens = 0;
  std::size_t eval_end = 0;  ///< the resolved end of the evaluation range
  double quantize_seconds = 0;  ///< wall time to quantize every projection (calibration excluded)
};

inline std::string describe_activations(const MethodSpec& m) {
  if (m.method == "fp32") return "fp32";
  const ActivationFormat a = activation_format_for(m);
  if (a.kind == ActivationQuant::mxint8) return "MXINT8 b" + std::to_string(a.block);
  return a.kind == ActivationQuant::per_token ? "int8/token" : "int8 b" + std::to_string(a.block);
}

/// A folder is a Hugging Face checkpoint (config.json + safetensors); a file is llama2.c or GGUF, told apart by
/// its first bytes (io::detect_model_file), never by its name.
inline io::LlamaModel load_model(const std::string& path) {
  if (std::filesystem::is_directory(path)) return io::read_hf_llama(path);
  switch (io::detect_model_file(path)) {
    case io::ModelFileKind::gguf: return io::read_llama_gguf(path);
    case io::ModelFileKind::llama2c: return io::read_llama2c(path);
    default:
      throw rankq::invalid_argument("rankq-quantize: --model '" + path + "' is a single safetensors file: pass the Hugging Face "
                                    "folder that holds it (config.json, safetensors, tokenizer.json), a GGUF or a llama2.c file");
  }
}

/// The checkpoint opened without decoding it (io::LlamaCheckpoint; load_model(path) is open_checkpoint(path).load_all()).
inline io::LlamaCheckpoint open_checkpoint(const std::string& path) {
  if (std::filesystem::is_directory(path)) return io::open_hf_llama(path);
  switch (io::detect_model_file(path)) {
    case io::ModelFileKind::gguf: return io::open_llama_gguf(path);
    case io::ModelFileKind::llama2c: return io::open_llama2c(path);
    default: break;
  }
  (void)load_model(path);  // throws: a single safetensors file is refused with load_model's message
  throw rankq::invalid_argument("rankq-quantize: --model '" + path + "' is not a checkpoint");
}

inline llama::Tokenizer load_tokenizer(const ModelRunOptions& o, std::size_t vocab) {
  const auto ends_with = [](const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
  };
  std::string hf_tokenizer = ends_with(o.tokenizer_path, ".json") ? o.tokenizer_path : "";
  if (o.tokenizer_path.empty() && std::filesystem::is_directory(o.model_path)) hf_tokenizer = o.model_path + "/tokenizer.json";
  if (!hf_tokenizer.empty()) return llama::Tokenizer::from_hf(io::read_hf_tokenizer(hf_tokenizer), hf_tokenizer, vocab);
  if (!o.tokenizer_path.empty()) return llama::Tokenizer::from_file(o.tokenizer_path, vocab);
  if (io::detect_model_file(o.model_path) != io::ModelFileKind::gguf)
    throw rankq::invalid_argument("rankq-quantize: --tokenizer is required for a llama2.c checkpoint");
  const auto v = io::gguf_vocab(io::read_gguf(o.model_path));
  return llama::Tokenizer::from_vocabulary(v.tokens, v.scores, v.bos, v.eos);
}

/// Methods that use calibration: L²QER (its scale s from max-of-batch-means |x|), LCQ (D = E[x²]) and GPTQ (XᵀX).
inline bool needs_calibration(const MethodSpec& m) { return m.method == "l2qer" || m.method == "lcq" || m.gptq.enabled; }

/// Runs the fp32 model once over `range` of `paragraphs` and collects every projection's input statistics.
inline CalibrationStats calibrate(const io::LlamaModel& weights, const llama::Tokenizer& tok,
                                  const std::vector<std::string>& paragraphs, llama::ParagraphRange range,
                                  llama::CalibrationSummary* summary = nullptr, bool keep_gram = false) {
  const llama::Model fp32(weights);
  CalibrationStats stats;
  llama::CalibrationTaps taps;
  for (const auto& name : fp32.projection_names()) {
    ActivationStats& s = stats.try_emplace(name, fp32.projection(name).in_features(), keep_gram).first->second;
    taps.add(name, [&s](const float* x, std::size_t M, std::size_t K) { s.add_batch(MatrixView<const float>(x, M, K)); });
  }
  range = range.resolved(paragraphs.size(), "rankq-quantize --calib-range");
  ProgressBar bar("calibrate (fp32)", range.end - range.begin);
  llama::CalibrationOptions co;
  co.range = range;
  co.progress = [&bar](std::size_t done, std::size_t) { bar.update(done); };
  const auto sum = llama::run_calibration(fp32, tok, paragraphs, co, taps);
  bar.finish();
  if (summary) *summary = sum;
  return stats;
}

/// Builds the factory for one method; `calib` holds per-projection statistics (empty if none was collected).
using FactoryBuilder = std::function<llama::LinearFactory(const MethodSpec&, const CalibrationStats& calib)>;

inline const ActivationStats* find_stats(const CalibrationStats& calib, const std::string& name) {
  const auto it = calib.find(name);
  return it == calib.end() ? nullptr : &it->second;
}

/// The factory of rankq-quantize's methods. The returned factory refers to `calib`: keep it alive while building.
inline llama::LinearFactory default_factory(const MethodSpec& m, const CalibrationStats& calib, std::size_t threads = 2) {
  if (m.method == "fp32") return llama::dense_linear_factory();
  if (m.gptq.enabled)
    return [m, &calib, threads](const std::string& name, const io::FloatTensor& w) {
      return make_gptq_linear(m, name, w, find_stats(calib, name), threads);
    };
  if (m.method == "rtn" || m.method == "mxint")
    return [m](const std::string& name, const io::FloatTensor& w) { return make_uniform_linear(m, name, w); };
  if (m.method == "lqer" || m.method == "l2qer")
    return [m, &calib](const std::string& name, const io::FloatTensor& w) {
      return make_lqer_linear(m, name, w, find_stats(calib, name));
    };
  if (m.method == "lcq")
    return [m, &calib, threads](const std::string& name, const io::FloatTensor& w) {
      const ActivationStats* s = find_stats(calib, name);
      if (s == nullptr) throw rankq::invalid_argument("rankq-quantize: lcq needs calibration statistics for '" + name + "'");
      return make_lcq_linear(m, name, w, s, threads);
    };
  throw rankq::invalid_argument("rankq-quantize: unknown method '" + m.method + "'");
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

/// Throws naming `option` unless `range` holds at least one of the `count` paragraphs; returns it resolved.
inline llama::ParagraphRange checked_range(llama::ParagraphRange range, std::size_t count, const std::string& option,
                                           const std::string& path) {
  const std::size_t end = range.end == llama::ParagraphRange::npos ? count : range.end;
  if (range.begin >= end || end > count)
    throw rankq::invalid_argument(option + ": [" + std::to_string(range.begin) + ", " + std::to_string(end) +
                                  ") holds no paragraph of the " + std::to_string(count) + " in '" + path + "'");
  return {range.begin, end};
}

/// run_model with --out: the quantized method goes through quantize_layerwise (bounded memory, the file streamed)
/// and is evaluated from the file it wrote, mapped (model_file.hpp); the fp32 baseline is evaluated layer by layer
/// (fp32_perplexity_layerwise, the same perplexity as the whole fp32 model).
/// With the default factory (`default_methods`), RTN and MXINT are quantized in place (in_place.hpp: from the
/// checkpoint's own element type, the same file).
inline std::vector<ModelRow> run_model_layerwise(const ModelRunOptions& o, const io::LlamaCheckpoint& checkpoint,
                                                 const llama::Tokenizer& tok, const std::vector<std::string>& eval_paragraphs,
                                                 const std::vector<std::string>& calib_paragraphs, const FactoryBuilder& factory_for,
                                                 bool default_methods) {
  std::vector<ModelRow> rows;
  double fp32_ppl = 0;
  for (const MethodSpec& m : o.methods) {
    const std::string label = describe(m);
    ModelRow row{label, describe_activations(m), 32.0, 0, 0, 0, 0, o.eval_range.end, 0};
    llama::PerplexityResult r;
    if (m.method == "fp32") {
      r = fp32_perplexity_layerwise(checkpoint, tok, eval_paragraphs, o.eval_range, o.threads);
      fp32_ppl = r.perplexity;
    } else {
      LayerwiseMethod lm{label, needs_calibration(m), m.gptq.enabled,
                         [&factory_for, m](const CalibrationStats& stats) { return factory_for(m, stats); }};
      if (default_methods && quantizes_in_place(m))
        lm.in_place = [m](const io::LlamaCheckpoint& ckpt, const std::string& name) { return quantize_in_place(m, ckpt, name); };
      if (lm.calibrated && o.calib_path == o.eval_path && o.calib_range.begin < o.eval_range.end && o.eval_range.begin < o.calib_range.end)
        std::fprintf(stderr, "rankq-quantize: warning: calibration paragraphs [%zu, %zu) overlap evaluation paragraphs [%zu, %zu)\n",
                     o.calib_range.begin, o.calib_range.end, o.eval_range.begin, o.eval_range.end);
      const LayerwiseReport rep = quantize_layerwise(checkpoint, &tok, calib_paragraphs, o.calib_range, lm, o.out_path);
      if (lm.calibrated)
        std::fprintf(stderr, "calibration: %zu paragraphs, %zu tokens per projection, %.1f s (fp32 forward, block by block)\n",
                     rep.calibration.paragraphs, rep.calibration.tokens, rep.calibration_seconds);
      std::fprintf(stderr, "layer by layer: quantize %.2f s, write %.2f s, %llu bytes to '%s'\n", rep.quantize_seconds,
                   rep.write_seconds, static_cast<unsigned long long>(rep.file_bytes), o.out_path.c_str());
      auto loaded = load_quantized_model(o.out_path);  // mapped: the layers view the file
      const llama::Model model(loaded.weights, loaded.factory);
      loaded.weights = {};  // the model holds its own float tensors (embedding, norms, classifier)
      r = chunked_perplexity(model, tok, eval_paragraphs, o.eval_range, o.threads, label);
      row.bits_per_weight = model.projection_bits_per_weight();
      row.quantize_seconds = rep.quantize_seconds;
    }
    row.perplexity = r.perplexity;
    row.delta_vs_fp32 = fp32_ppl > 0 ? r.perplexity - fp32_ppl : 0.0;
    row.tokens_per_second = r.tokens_per_second;
    row.tokens = r.tokens;
    rows.push_back(row);
  }
  return rows;
}

/// `validate` (if set) runs once the model is loaded, before calibration and quantization (rankq-quantize checks
/// that every method fits every layer there). Texts and ranges are checked before the model is loaded.
inline std::vector<ModelRow> run_model(ModelRunOptions o, FactoryBuilder factory_for = nullptr,
                                       const std::function<void(const io::LlamaCheckpoint&)>& validate = nullptr) {
  const bool default_methods = !factory_for;
  if (!factory_for)
    factory_for = [threads = o.threads](const MethodSpec& m, const CalibrationStats& c) { return default_factory(m, c, threads); };
  const bool calibrated = std::any_of(o.methods.begin(), o.methods.end(), needs_calibration);
  const auto eval_paragraphs = llama::load_paragraphs(o.eval_path);
  o.eval_range = checked_range(o.eval_range, eval_paragraphs.size(), "--eval-range", o.eval_path);
  std::vector<std::string> calib_paragraphs;
  if (calibrated) {
    calib_paragraphs = o.calib_path == o.eval_path ? eval_paragraphs : llama::load_paragraphs(o.calib_path);
    o.calib_range = checked_range(o.calib_range, calib_paragraphs.size(), "--calib-range", o.calib_path);
  }
  const io::LlamaCheckpoint checkpoint = open_checkpoint(o.model_path);
  if (validate) validate(checkpoint);
  const llama::Tokenizer tok = load_tokenizer(o, static_cast<std::size_t>(checkpoint.config.vocab_size));
  if (!o.out_path.empty()) return run_model_layerwise(o, checkpoint, tok, eval_paragraphs, calib_paragraphs, factory_for, default_methods);
  const io::LlamaModel weights = checkpoint.load_all();
  CalibrationStats calib;  // collected once, shared by every method that needs it
  if (calibrated) {
    if (o.calib_path == o.eval_path && o.calib_range.begin < o.eval_range.end && o.eval_range.begin < o.calib_range.end)
      std::fprintf(stderr, "rankq-quantize: warning: calibration paragraphs [%zu, %zu) overlap evaluation paragraphs [%zu, %zu)\n",
                   o.calib_range.begin, o.calib_range.end, o.eval_range.begin, o.eval_range.end);
    llama::CalibrationSummary cs;
    const bool gram = std::any_of(o.methods.begin(), o.methods.end(), [](const MethodSpec& m) { return m.gptq.enabled; });
    calib = calibrate(weights, tok, calib_paragraphs, o.calib_range, &cs, gram);
    std::fprintf(stderr, "calibration: %zu paragraphs, %zu tokens per projection, %.1f s\n", cs.paragraphs, cs.tokens, cs.seconds);
  }
  std::vector<ModelRow> rows;
  double fp32_ppl = 0;
  for (const MethodSpec& m : o.methods) {
    const std::string label = describe(m);
    const auto factory = factory_for(m, calib);
    const std::size_t layers = static_cast<std::size_t>(weights.config.n_layers) * llama::projection_suffixes().size();
    std::size_t built = 0;
    ProgressBar bar("quantize " + label, layers);
    const auto start = std::chrono::steady_clock::now();
    const llama::Model model(weights, [&](const std::string& name, const io::FloatTensor& w) {
      auto layer = factory(name, w);
      bar.update(++built);
      return layer;
    });
    const double quantize_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    bar.finish();
    const auto r = chunked_perplexity(model, tok, eval_paragraphs, o.eval_range, o.threads, label);
    if (m.method == "fp32") fp32_ppl = r.perplexity;
    rows.push_back(ModelRow{label, describe_activations(m), m.method == "fp32" ? 32.0 : model.projection_bits_per_weight(),
                            r.perplexity, fp32_ppl > 0 ? r.perplexity - fp32_ppl : 0.0, r.tokens_per_second, r.tokens,
                            o.eval_range.end, quantize_seconds});
  }
  return rows;
}

}  // namespace rankq::example
