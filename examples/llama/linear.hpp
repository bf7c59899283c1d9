// llama/linear.hpp — the pluggable Linear interface, the fp32 DenseLinear and the layer factory type.
#pragma once

#include <cmath>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "rankq/error.hpp"
#include "rankq/io/llama_model.hpp"

namespace rankq::llama {

/// y = x · Wᵀ for a weight W of out_features x in_features ([out][in], as GGUF and llama2.c store it).
///
/// Contract for implementations (fp32, W4A8 RTN, MXINT, LQER, L²QER, LCQ, ...):
/// * forward(x, M, y): x is M x in_features row-major, y is M x out_features row-major and is overwritten
///   (not accumulated into). M is 1 for decode steps and the sequence length (up to seq_len) for prefill.
///   Rows are independent: row m of y may depend only on row m of x (the engine relies on this when it
///   compares prefill with decode, and activation quantizers must quantize per row/token, not per batch).
/// * forward is const and must be safe to call concurrently from several threads on the same object
///   (perplexity runs paragraphs in parallel against one model). Keep per-call scratch on the stack or
///   in thread_local / locally allocated buffers, never in mutable members.
/// * bits_per_weight(): storage cost of the weights including scales, zero points, low-rank factors etc.,
///   divided by in_features * out_features; name(): a short label for tables ("fp32", "w4a8-rtn-g32", ...).
struct Linear {
  virtual ~Linear() = default;
  virtual std::size_t in_features() const = 0;
  virtual std::size_t out_features() const = 0;
  virtual void forward(const float* x, std::size_t M, float* y) const = 0;
  virtual double bits_per_weight() const = 0;
  virtual std::string name() const = 0;
};

/// Builds the Linear for one of the 7 projections of a block. `tensor_name` is the GGUF name
/// ("blk.3.attn_q.weight", "blk.0.ffn_down.weight", ...), `weight` its fp32 [out][in] tensor.
using LinearFactory =
    std::function<std::unique_ptr<Linear>(const std::string& tensor_name, const rankq::io::FloatTensor& weight)>;

namespace detail {
/// Checks that `weight` is a finite 2-D [rows][cols] tensor with matching data size; returns {rows, cols}.
inline std::pair<std::size_t, std::size_t> check_matrix_tensor(const rankq::io::FloatTensor& weight,
                                                               const std::string& tensor_name) {
  const std::string where = "rankq::llama: tensor '" + tensor_name + "'";
  if (weight.shape.size() != 2)
    throw rankq::invalid_argument(where + " has " + std::to_string(weight.shape.size()) +
                                  " dimensions: expected 2 ([out][in])");
  const auto rows = static_cast<std::size_t>(weight.shape[0]), cols = static_cast<std::size_t>(weight.shape[1]);
  if (rows == 0 || cols == 0 || weight.data.size() / cols != rows || weight.data.size() % cols != 0)
    throw rankq::invalid_argument(where + " has shape " + std::to_string(rows) + "x" + std::to_string(cols) + " but " +
                                  std::to_string(weight.data.size()) + " values");
  for (std::size_t i = 0; i < weight.data.size(); ++i)
    if (!std::isfinite(weight.data[i]))
      throw rankq::invalid_argument(where + " has a non-finite value at row " + std::to_string(i / cols) + ", column " +
                                    std::to_string(i % cols));
  return {rows, cols};
}
}  // namespace detail

/// The fp32 reference layer. Stores Wᵀ ([in][out]) so that the inner loop is a contiguous axpy over a block
/// of 16 outputs (vectorizable at -O2): every y[m][n] is still the float sum over k in increasing order,
/// exactly as a plain dot product (and llama2.c's matmul) computes it, and a row's result does not depend on M.
class DenseLinear final : public Linear {
 public:
  /// `weight` is [out_features][in_features] row-major.
  DenseLinear(const float* weight, std::size_t out_features, std::size_t in_features, std::string label = "fp32")
      : out_(out_features), in_(in_features), label_(std::move(label)) {
    rankq::require_positive(out_features, "llama::DenseLinear", "out_features");
    rankq::require_positive(in_features, "llama::DenseLinear", "in_features");
    rankq::require_non_null(weight, out_features * in_features, "llama::DenseLinear", "weight");
    transposed_.resize(out_ * in_);
    for (std::size_t n = 0; n < out_; ++n)
      for (std::size_t k = 0; k < in_; ++k) transposed_[k * out_ + n] = weight[n * in_ + k];
  }

  /// From a model tensor (validated: 2-D, sizes consistent, finite).
  static std::unique_ptr<DenseLinear> from_tensor(const std::string& tensor_name,
                                                  const rankq::io::FloatTensor& weight) {
    const auto [rows, cols] = rankq::llama::detail::check_matrix_tensor(weight, tensor_name);
    return std::make_unique<DenseLinear>(weight.data.data(), rows, cols);
  }

  std::size_t in_features() const override { return in_; }
  std::size_t out_features() const override { return out_; }
  double bits_per_weight() const override { return 32.0; }
  std::string name() const override { return label_; }

  void forward(const float* x, std::size_t M, float* y) const override {
    rankq::require_non_null(x, M, "llama::DenseLinear::forward", "x");
    rankq::require_non_null(y, M, "llama::DenseLinear::forward", "y");
    for (std::size_t m = 0; m < M; ++m) {
      const float* x_row = x + m * in_;
      float* y_row = y + m * out_;
      std::size_t n0 = 0;
      // Blocks of kBlock outputs accumulate in a fixed-size local array the compiler keeps in vector registers.
      for (; n0 + kBlock <= out_; n0 += kBlock) {
        float acc[kBlock] = {};
        const float* w = transposed_.data() + n0;
        for (std::size_t k = 0; k < in_; ++k, w += out_) {
          const float xk = x_row[k];
#pragma GCC unroll 16
          for (std::size_t j = 0; j < kBlock; ++j) acc[j] += xk * w[j];
        }
        for (std::size_t j = 0; j < kBlock; ++j) y_row[n0 + j] = acc[j];
      }
      for (std::size_t n = n0; n < out_; ++n) {
        float acc = 0.0f;
        for (std::size_t k = 0; k < in_; ++k) acc += x_row[k] * transposed_[k * out_ + n];
        y_row[n] = acc;
      }
    }
  }

 private:
  static constexpr std::size_t kBlock = 16;
  std::size_t out_, in_;
  std::string label_;
  std::vector<float> transposed_;  // [in][out]
};

/// The factory that keeps every projection in fp32.
inline LinearFactory dense_linear_factory() {
  return [](const std::string& tensor_name, const rankq::io::FloatTensor& weight) -> std::unique_ptr<Linear> {
    return DenseLinear::from_tensor(tensor_name, weight);
  };
}

}  // namespace rankq::llama
