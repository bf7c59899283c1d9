// examples/rankq_quantize/model_file.hpp — rankq-quantize's use of the library's quantized model file
// (rankq/io/quantized_model.hpp, docs/io.md): a quantized llama::Model written as its prepared layers, and a file
// read back into a model whose layers view the mapped file.
#pragma once

#include <rankq/io/quantized_model.hpp>

#include <algorithm>
#include <map>
#include <string>

#include "llama/model.hpp"
#include "llama/prepared_linear.hpp"
#include "rankq_quantize/methods.hpp"

namespace rankq::example {

/// Writes `model` (built from `weights` with any factory) to `path`. Projections that are StorableLinear are
/// stored as the library's prepared layers; the others (fp32) and the embedding, norms and classifier as F32.
inline void save_quantized_model(const std::string& path, const io::LlamaModel& weights, const llama::Model& model,
                                 const std::string& method) {
  std::map<std::string, io::QuantizedProjection> projections;
  for (const std::string& name : model.projection_names())
    if (const auto* s = dynamic_cast<const StorableLinear*>(&model.projection(name))) projections[name] = s->stored();
  io::write_quantized_model(path, weights.config, method, weights.tensors, projections);  // float tensors not copied
}

using LoadedQuantizedModel = llama::QuantizedLlama;

/// Reads a quantized model file (mapped; the layers view it) as a model for llama::Model.
inline LoadedQuantizedModel load_quantized_model(const std::string& path) {
  return llama::quantized_llama(io::read_quantized_model(path));
}

/// The same from memory (`source` names it in messages); the model owns copies of everything.
inline LoadedQuantizedModel parse_quantized_model(const std::uint8_t* data, std::size_t size, const std::string& source) {
  return llama::quantized_llama(io::parse_quantized_model(data, size, source));
}

}  // namespace rankq::example
