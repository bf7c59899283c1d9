// examples/rankq_quantize/layerwise.hpp — rankq-quantize's bounded-memory pipeline (docs/engine.md, "Layer by
// layer"): the checkpoint stays mapped (io::LlamaCheckpoint) and is processed one block at a time — load block i's
// weights in float, run the calibration residual streams through it in fp32 (collecting block i's input statistics
// exactly as the whole-model calibration does), quantize its projections, stream them to the output file, release
// the block's float weights and mapped pages, go on with block i+1. The file equals the whole-model path's bit for bit.
// Methods quantized in place (RTN, MXINT: in_place.hpp) never decode the block's projections to float: the quantizers
// read the mapped BF16/F16 tensors row by row.
#pragma once

#include <rankq/algorithms/calibration.hpp>
#include <rankq/io/llama_checkpoint.hpp>
#include <rankq/io/quantized_model_stream.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <cstdio>
#include <string>
#include <vector>

#include "llama/calibration.hpp"
#include "llama/model.hpp"
#include "rankq_quantize/in_place.hpp"
#include "rankq_quantize/methods.hpp"
#include "rankq_quantize/progress.hpp"

namespace rankq::example {

/// Per projection (GGUF tensor name): statistics of its input activations in the fp32 model on the
/// calibration paragraphs. One batch per paragraph (window of at most seq_len tokens, BOS included).
using CalibrationStats = std::map<std::string, ActivationStats>;

/// What quantize_layerwise does to each block: `label` names the method in the file; `calibrated`: collect the
/// block's input statistics first (`gram`: with XᵀX, for GPTQ); `factory_for(stats)`: the block's layer factory.
/// `in_place` (optional, replaces factory_for for the projections): the stored projection of a tensor built from the
/// checkpoint's own element type (quantize_in_place), so the block's projections are never decoded to float.
struct LayerwiseMethod {
  std::string label;
  bool calibrated = false, gram = false;
  std::function<llama::LinearFactory(const CalibrationStats&)> factory_for;
  std::function<io::QuantizedProjection(const io::LlamaCheckpoint&, const std::string& name)> in_place = nullptr;
};

struct LayerwiseReport {
  llama::CalibrationSummary calibration;  ///< batches/tokens as run_calibration counts them
  double calibration_seconds = 0;          ///< fp32 forward of the calibration streams through every block
  double quantize_seconds = 0;             ///< quantizing and spooling the projections
  double write_seconds = 0;                ///< finish(): header + spool copied to the output, fsync, rename
  std::uint64_t file_bytes = 0;
};

/// The calibration residual streams: one per batch run_calibration would run (each paragraph of `range` encoded
/// as BOS + tokens, cut into disjoint windows of at most `context` tokens), holding the embedding rows.
struct ResidualStreams {
  std::vector<std::size_t> lengths;
  std::vector<std::vector<float>> x;  ///< x[b]: lengths[b] x dim
};

/// The embedding rows are decoded one token at a time from the checkpoint's own element type (never the whole table).
inline ResidualStreams embed_calibration(const io::LlamaCheckpoint& ckpt, std::size_t dim, const llama::Tokenizer& tok,
                                         const std::vector<std::string>& paragraphs, llama::ParagraphRange range,
                                         std::size_t context, llama::CalibrationSummary& summary) {
  ResidualStreams s;
  const io::CheckpointTensor& embedding = ckpt.at("token_embd.weight");
  const std::size_t vocab = static_cast<std::size_t>(embedding.shape.at(0)), row_bytes = dim * io::dtype_size(embedding.dtype);
  for (std::size_t p = range.begin; p < range.end; ++p) {
    const std::vector<int> tokens = tok.encode(paragraphs[p], true, false);
    for (const llama::ScoringWindow& w : llama::plan_disjoint_windows(tokens.size(), context)) {
      std::vector<float> x((w.end - w.begin) * dim);
      for (std::size_t i = w.begin; i < w.end; ++i) {
        const auto t = static_cast<std::size_t>(tokens[i]);
        if (t >= vocab) throw rankq::invalid_argument("rankq-quantize: token " + std::to_string(t) + " is outside the vocabulary");
        io::decode_floats(embedding.dtype, embedding.data + t * row_bytes, dim, x.data() + (i - w.begin) * dim);
      }
      s.lengths.push_back(w.end - w.begin);
      s.x.push_back(std::move(x));
      ++summary.batches;
      summary.tokens += w.end - w.begin;
    }
    ++summary.paragraphs;
  }
  if (summary.tokens == 0) throw rankq::invalid_argument("rankq-quantize: --calib-range holds no token: calibration needs at least one");
  return s;
}

/// Adds a tensor of the checkpoint to `out` as the checkpoint stores it (F32, F16 or BF16: its mapped bytes spooled,
/// never decoded whole), then releases its pages. A Q/K tensor in Hugging Face's rotary order goes in decoded (F32).
inline void add_checkpoint_tensor(io::QuantizedModelStream& out, const io::LlamaCheckpoint& ckpt, const std::string& name) {
  const io::CheckpointTensor& e = ckpt.at(name);
  if (e.permute_heads > 0) out.add_tensor(name, ckpt.load(name));
  else out.add_tensor(name, e.dtype, e.shape, e.data);
  ckpt.release(name);
}

/// Quantizes every projection of `ckpt` with `m` block by block and writes the quantized model file to `out_path`
/// (io::QuantizedModelStream). Calibration (when `m` needs it; `tok` may be null otherwise) uses the paragraphs [range) of `calib` with the
/// model's full context, as calibrate() does. Projections a factory leaves in float are stored as F32, as
/// save_quantized_model does; the embedding, norms and classifier in the checkpoint's own element type (a BF16
/// checkpoint's file holds them in BF16; save_quantized_model writes F32: the same values). Peak memory: one block in
/// float (none with m.in_place; plus its dense fp32 copy while calibrating), the calibration streams (tokens x dim
/// floats), one block's quantized layers, and the 4 MiB copy buffer.
inline LayerwiseReport quantize_layerwise(const io::LlamaCheckpoint& ckpt, const llama::Tokenizer* tok,
                                          const std::vector<std::string>& calib, llama::ParagraphRange range,
                                          const LayerwiseMethod& m, const std::string& out_path) {
  using clock = std::chrono::steady_clock;
  const auto seconds_since = [](clock::time_point t) { return std::chrono::duration<double>(clock::now() - t).count(); };
  const io::LlamaConfig& c = ckpt.config;
  const std::size_t dim = static_cast<std::size_t>(c.dim), layers = static_cast<std::size_t>(c.n_layers);
  const std::size_t kv_dim = dim * static_cast<std::size_t>(c.n_kv_heads) / static_cast<std::size_t>(c.n_heads);
  LayerwiseReport report;
  io::QuantizedModelStream out(out_path, c, m.label);
  const bool calibrated = m.calibrated;
  ResidualStreams streams;
  if (calibrated) {
    range = range.resolved(calib.size(), "rankq-quantize --calib-range");
    if (tok == nullptr) throw rankq::invalid_argument("rankq-quantize: calibration needs a tokenizer");
    streams = embed_calibration(ckpt, dim, *tok, calib, range, static_cast<std::size_t>(c.seq_len), report.calibration);
  }
  add_checkpoint_tensor(out, ckpt, "token_embd.weight");
  ProgressBar bar("layer by layer " + m.label, layers);
  for (std::size_t l = 0; l < layers; ++l) {
    io::LlamaModel block;  // block l's tensors in float
    block.config = c;
    std::vector<std::string> names;
    for (const char* kind : {"attn_norm", "ffn_norm"}) names.push_back(llama::block_tensor_name(l, kind));
    for (const auto& suffix : llama::projection_suffixes()) names.push_back(llama::block_tensor_name(l, suffix));
    // In float: what the fp32 slice needs (norms and projections), or the projections for the factory.
    for (std::size_t i = 0; i < names.size(); ++i)
      if (calibrated || (i >= 2 && !m.in_place)) block.tensors.emplace(names[i], ckpt.load(names[i]));
    CalibrationStats stats;
    if (calibrated) {
      const auto start = clock::now();
      const llama::Model fp32(block, llama::dense_linear_factory(), l, 1);
      block.tensors.clear();  // the slice holds its own (transposed) copies: never two float copies of a block
      const bool gram = m.gram;
      for (const auto& name : fp32.projection_names()) stats.try_emplace(name, fp32.projection(name).in_features(), gram);
      const llama::ActivationObserver observer = [&stats](const std::string& name, const float* x, std::size_t M, std::size_t K) {
        stats.at(name).add_batch(MatrixView<const float>(x, M, K));
      };
      for (std::size_t b = 0; b < streams.x.size(); ++b) {
        llama::KvCache cache(1, streams.lengths[b], kv_dim);
        fp32.forward_blocks(streams.x[b].data(), streams.lengths[b], 0, cache, observer);
      }
      report.calibration_seconds += seconds_since(start);
    }
    if (block.tensors.empty() && !m.in_place)  // the projections decoded again for the factory
      for (std::size_t i = 2; i < names.size(); ++i) block.tensors.emplace(names[i], ckpt.load(names[i]));
    const auto start = clock::now();
    const llama::LinearFactory factory = m.in_place ? llama::LinearFactory{} : m.factory_for(stats);
    for (const auto& suffix : llama::projection_suffixes()) {
      const std::string name = llama::block_tensor_name(l, suffix);
      if (m.in_place) {
        out.add_projection(name, m.in_place(ckpt, name));
        ckpt.release(name);  // its mapped pages: one projection's BF16 bytes resident at a time
        continue;
      }
      const std::unique_ptr<llama::Linear> layer = factory(name, block.tensors.at(name));
      if (const auto* s = dynamic_cast<const StorableLinear*>(layer.get())) out.add_projection(name, s->stored());
      else out.add_tensor(name, block.tensors.at(name));
    }
    for (const char* kind : {"attn_norm", "ffn_norm"}) add_checkpoint_tensor(out, ckpt, llama::block_tensor_name(l, kind));
    for (const auto& name : names) ckpt.release(name);
    report.quantize_seconds += seconds_since(start);
    bar.update(l + 1);
  }
  bar.finish();
  for (const char* name : {"output_norm.weight", "output.weight"}) add_checkpoint_tensor(out, ckpt, name);
  const auto start = clock::now();
  report.file_bytes = out.spooled_bytes();
  out.finish();
  report.write_seconds = seconds_since(start);
  return report;
}

}  // namespace rankq::example
