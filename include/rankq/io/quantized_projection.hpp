// rankq/io/quantized_projection.hpp — what the quantized model file holds (rankq/io/quantized_model.hpp): the
// model config, its float tensors and every quantized projection as a prepared layer.
#pragma once

#include "rankq/detail/abi.hpp"

#include <map>
#include <memory>
#include <string>

#include "rankq/formats/activation.hpp"
#include "rankq/io/llama_model.hpp"
#include "rankq/layers/linear.hpp"
#include "rankq/formats/uniform.hpp"

RANKQ_NAMESPACE_BEGIN namespace io {

inline constexpr const char* kQuantizedModelFormat = "rankq-quantized-llama/3";    ///< written
inline constexpr const char* kQuantizedModelFormatV2 = "rankq-quantized-llama/2";  ///< still read (packed at load)

/// One quantized projection: a prepared layer (uniform and MXINT of 2-4 or 8 bits, LQER/L²QER, LCQ) or, as an escape
/// hatch for 8-bit codes, the canonical weights that reference_matmul runs: what files written before 8-bit layers
/// were stored packed hold (and were evaluated with), and 8-bit weights wider than the W8A8 kernels take.
struct QuantizedProjection {
  std::shared_ptr<const Linear> layer;
  std::shared_ptr<const UniformWeights> reference;
  ActivationFormat activation{};  ///< the activation quantizer (= layer->activation_format() when layer is set)
  std::string label;              ///< e.g. "blk.0.attn_q.weight:mxint4-b16+l2qer-k16", for tables
  double bits_per_weight = 0;     ///< storage cost per weight (scales, factors, tables included)

  std::size_t out_features() const { return layer ? layer->out_features() : reference ? reference->rows : 0; }
  std::size_t in_features() const { return layer ? layer->in_features() : reference ? reference->cols : 0; }
};

/// A quantized model as read back.
struct QuantizedModel {
  LlamaConfig config{};
  std::string method;  ///< rankq.method, e.g. "L2QER W4A8 k=16"
  std::string format;  ///< rankq.format of the file read (/3, or /2 for an older file)
  std::map<std::string, FloatTensor> tensors;                   ///< embedding, norms, classifier, fp32 projections
  std::map<std::string, QuantizedProjection> projections;      ///< by GGUF name ("blk.0.attn_q.weight")
};

}  RANKQ_NAMESPACE_END  // namespace rankq::io
