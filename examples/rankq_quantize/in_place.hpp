// examples/rankq_quantize/in_place.hpp — RTN and MXINT projections quantized straight from the checkpoint's own
// element type (docs/engine.md, "Layer by layer"): io::LlamaCheckpoint::with_matrix_view hands the quantizer a
// MatrixView<const bf16_t> (or f16_t, float) of the mapped tensor, which converts one row at a time, so a BF16
// block is never materialised in float. The stored projection equals make_uniform_linear's on the decoded float
// tensor bit for bit (same values; RTN and MXINT quantize each row on its own, so Hugging Face's Q/K rows can be put
// back in Meta's order after quantizing: MXINT's one tensor-wide number, the fallback exponent of all-zero blocks,
// is a minimum over blocks and does not depend on the row order).
#pragma once

#include <rankq/rankq.hpp>

#include <rankq/io/llama_checkpoint.hpp>
#include <rankq/io/quantized_projection.hpp>

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

#include "rankq_quantize/methods.hpp"

namespace rankq::example {

/// Methods quantized in place: RTN and MXINT without GPTQ (they read each weight row once, in any element type).
inline bool quantizes_in_place(const MethodSpec& m) { return (m.method == "rtn" || m.method == "mxint") && !m.gptq.enabled; }

/// Row r of the result is row hf_rotary_file_row(r) of q: a Q/K tensor quantized in the file's (HF's) order, put
/// in Meta's order (what load() does to the float rows).
inline UniformWeights unpermute_hf_rows(const UniformWeights& q, int n_heads, const std::string& name) {
  const auto heads = static_cast<std::size_t>(n_heads);
  if (heads == 0 || q.rows % heads != 0 || (q.rows / heads) % 2 != 0)
    throw format_error("tensor '" + name + "': " + std::to_string(q.rows) + " rows are not " + std::to_string(n_heads) +
                       " heads of an even size");
  UniformWeights out = make_uniform_weights(q.format, q.rows, q.cols);
  for (std::size_t r = 0; r < q.rows; ++r) {
    const auto src = static_cast<std::size_t>(io::hf_rotary_file_row(r, q.rows, n_heads));
    std::memcpy(out.codes.data() + r * q.row_bytes, q.codes.data() + src * q.row_bytes, q.row_bytes);
    std::copy_n(q.scales.data() + src * q.groups, q.groups, out.scales.data() + r * q.groups);
    if (!q.offsets.empty()) std::copy_n(q.offsets.data() + src * q.groups, q.groups, out.offsets.data() + r * q.groups);
  }
  return out;
}

/// The stored projection of `name` for an in-place method (quantizes_in_place): what make_uniform_linear builds
/// from ckpt.load(name), without decoding the tensor to float.
inline io::QuantizedProjection quantize_in_place(const MethodSpec& m, const io::LlamaCheckpoint& ckpt, const std::string& name) {
  if (!quantizes_in_place(m))
    rankq::throw_invalid_argument("quantize_in_place", "m", "'" + describe(m) + "' is not quantized in place (rtn or mxint without GPTQ)");
  const io::CheckpointTensor& e = ckpt.entry(name);
  const std::size_t cols = static_cast<std::size_t>(e.shape.at(1));
  double bpw = 0;
  std::string label;
  UniformWeights q = ckpt.with_matrix_view(name, [&](auto w) {
    if (m.method == "mxint") {
      const MxFormat f{m.bits, 16, MxSemantics::lqer};
      bpw = bits_per_weight(f, cols);
      label = name + ":" + to_string(f);
      return to_uniform(quantize_mxint(w, f));
    }
    const UniformFormat f{m.bits, m.group, Symmetry::asymmetric, ScaleType::f16};
    bpw = bits_per_weight(f, cols);
    label = name + ":" + to_string(f);
    return quantize_uniform(w, f);
  });
  if (e.permute_heads > 0) q = unpermute_hf_rows(q, e.permute_heads, name);
  return QuantizedLinear(std::move(q), bpw, activation_format_for(m), label).stored();
}

}  // namespace rankq::example
