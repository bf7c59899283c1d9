// llama/ops.hpp — RMSNorm, RoPE, causal GQA attention and SwiGLU, operation for operation as llama2.c's run.c.
#pragma once

#include <cmath>
#include <cstddef>
#include <vector>

namespace rankq::llama::ops {

/// out[r] = weight ⊙ x[r] / sqrt(mean(x[r]²) + eps) for each of `rows` rows of length `dim`.
inline void rms_norm(const float* x, const float* weight, std::size_t rows, std::size_t dim, float eps, float* out) {
  for (std::size_t r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    float* o = out + r * dim;
    float ss = 0.0f;
    for (std::size_t j = 0; j < dim; ++j) ss += xr[j] * xr[j];
    ss /= static_cast<float>(dim);
    ss += eps;
    ss = 1.0f / std::sqrt(ss);
    for (std::size_t j = 0; j < dim; ++j) o[j] = weight[j] * (ss * xr[j]);
  }
}

/// cos/sin of the rotary angles: angle(pos, i) = pos / theta^(2i / head_size) for the pair (2i, 2i+1) of
/// every head, i < head_size / 2 — "interleaved" (GPT-J style) pairs as in llama2.c and Meta's reference.
/// Holds the positions [first, first + count) only: the model builds one per forward call for the positions it
/// runs, so nothing is sized by the file's seq_len (each entry is computed by the same expression as before,
/// whatever table it belongs to, so results do not depend on how positions are grouped).
class RopeTable {
 public:
  RopeTable() = default;
  RopeTable(std::size_t first, std::size_t count, std::size_t head_size, float theta)
      : first_(first), half_(head_size / 2), cos_(count * half_), sin_(count * half_) {
    for (std::size_t p = 0; p < count; ++p)
      for (std::size_t i = 0; i < half_; ++i) {
        const float frequency = 1.0f / std::pow(theta, static_cast<float>(2 * i) / static_cast<float>(head_size));
        const float angle = static_cast<float>(first + p) * frequency;
        cos_[p * half_ + i] = std::cos(angle);
        sin_[p * half_ + i] = std::sin(angle);
      }
  }

  /// Rotates the `width` values of `vec` (whole heads of size 2 * half) for position `pos` (in the table's range).
  void apply(float* vec, std::size_t width, std::size_t pos) const {
    const float* c = cos_.data() + (pos - first_) * half_;
    const float* s = sin_.data() + (pos - first_) * half_;
    for (std::size_t j = 0; j < width; j += 2) {
      const std::size_t i = (j % (2 * half_)) / 2;
      const float v0 = vec[j], v1 = vec[j + 1];
      vec[j] = v0 * c[i] - v1 * s[i];
      vec[j + 1] = v0 * s[i] + v1 * c[i];
    }
  }

 private:
  std::size_t first_ = 0, half_ = 0;
  std::vector<float> cos_, sin_;
};

/// In-place softmax of x[0..n) (max-subtracted).
inline void softmax(float* x, std::size_t n) {
  float max_value = x[0];
  for (std::size_t i = 1; i < n; ++i)
    if (x[i] > max_value) max_value = x[i];
  float sum = 0.0f;
  for (std::size_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - max_value);
    sum += x[i];
  }
  for (std::size_t i = 0; i < n; ++i) x[i] /= sum;
}

/// Shapes of grouped-query attention: q-head h reads kv-head h / (n_heads / n_kv_heads).
struct AttentionShape {
  std::size_t n_heads, n_kv_heads, head_size;
  std::size_t dim() const { return n_heads * head_size; }
  std::size_t kv_dim() const { return n_kv_heads * head_size; }
};

/// Causal attention of one query row at absolute position `pos` against cached keys/values of positions
/// 0..pos (rows of kv_dim floats, row stride kv_dim). `scores` has room for pos + 1 floats; `out` gets dim floats.
inline void attend(const float* query, std::size_t pos, const float* keys, const float* values,
                   const AttentionShape& shape, float* scores, float* out) {
  const std::size_t kv_dim = shape.kv_dim(), group = shape.n_heads / shape.n_kv_heads;
  const float scale = std::sqrt(static_cast<float>(shape.head_size));
  for (std::size_t h = 0; h < shape.n_heads; ++h) {
    const float* q = query + h * shape.head_size;
    const std::size_t kv_offset = (h / group) * shape.head_size;
    for (std::size_t t = 0; t <= pos; ++t) {
      const float* k = keys + t * kv_dim + kv_offset;
      float score = 0.0f;
      for (std::size_t i = 0; i < shape.head_size; ++i) score += q[i] * k[i];
      scores[t] = score / scale;
    }
    softmax(scores, pos + 1);
    float* o = out + h * shape.head_size;
    for (std::size_t i = 0; i < shape.head_size; ++i) o[i] = 0.0f;
    for (std::size_t t = 0; t <= pos; ++t) {
      const float* v = values + t * kv_dim + kv_offset;
      const float a = scores[t];
      for (std::size_t i = 0; i < shape.head_size; ++i) o[i] += a * v[i];
    }
  }
}

/// gate[i] = silu(gate[i]) * up[i] for n values (SwiGLU; silu(x) = x * sigmoid(x)).
inline void swiglu(float* gate, const float* up, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    float v = gate[i];
    v *= 1.0f / (1.0f + std::exp(-v));
    gate[i] = v * up[i];
  }
}

/// x[i] += delta[i] for n values (residual connection).
inline void add_in_place(float* x, const float* delta, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) x[i] += delta[i];
}

}  // namespace rankq::llama::ops
