// rankq/detail/kernels/activation_terms.hpp — the side terms of quantized activations that the packed-weight
// kernels read besides the int8 codes and scales (docs/kernels.md §8.1): what is asked for (ActivationTerms),
// where the activation driver writes it (ActivationTermsOut), the buffers that hold it and the view the kernels
// read. No driver here, so workspace.hpp can hold the buffers cheaply.
#pragma once

#include "rankq/detail/abi.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

#include "rankq/error.hpp"
#include "rankq/detail/grow_buffer.hpp"

RANKQ_NAMESPACE_BEGIN

/// The side terms a packed-weight kernel reads, for one weight geometry: activation_terms(w) of the weights.
/// Every term is an exact integer sum or an fma chain over exact integer sums, so every path gives the same bits.
struct ActivationTerms {
  std::size_t padded = 0;     ///< the weights' padded K (a multiple of 16)
  std::size_t group = 0;      ///< the weights' group along K (a multiple of 16 dividing padded): float group sums
  bool group_qsums = false;   ///< also Σ q per token and group (symmetric weights: the folded zero point)
  bool chunk_prefix = false;  ///< also the prefix sums of Σ q per 16 columns (codebook kernels)
  bool chunk_sums = false;    ///< also Σ q per 16 columns (8-bit weight kernels)
};

/// True when terms packed as `have` contain everything `need` asks for.
inline bool covers(const ActivationTerms& have, const ActivationTerms& need) {
  return have.padded == need.padded && have.group == need.group && (have.group_qsums || !need.group_qsums) &&
         (have.chunk_prefix || !need.chunk_prefix) && (have.chunk_sums || !need.chunk_sums);
}

inline std::string to_string(const ActivationTerms& t) {
  return "padded " + std::to_string(t.padded) + ", group " + std::to_string(t.group) +
         (t.group_qsums ? ", integer group sums" : "") + (t.chunk_prefix ? ", 16-column prefix sums" : "") +
         (t.chunk_sums ? ", 16-column sums" : "");
}

namespace detail {

inline constexpr std::size_t kActivationChunk = 16;  ///< columns per prefix-sum chunk

inline void check_terms(const ActivationTerms& t, const char* fn, const char* argument) {
  if (t.padded == 0 || t.padded % kActivationChunk != 0)
    throw_argument(fn, argument, "has padded = " + std::to_string(t.padded) + ": must be a positive multiple of 16");
  if (t.group == 0 || t.group % kActivationChunk != 0 || t.padded % t.group != 0)
    throw_argument(fn, argument, "has group = " + std::to_string(t.group) + ": must be a multiple of 16 dividing padded = " +
                                     std::to_string(t.padded));
}

/// Where the activation driver writes the side terms of M rows. group_sums (M x groups) is always written,
/// group_qsums (M x groups), prefix (M x prefix_stride, prefix_stride = padded / 16 + 1) and chunk_sums
/// (M x chunks, chunks = padded / 16) when non-null.
struct ActivationTermsOut {
  std::size_t group = 0, groups = 0, prefix_stride = 0, chunks = 0;
  float* group_sums = nullptr;
  std::int32_t* group_qsums = nullptr;
  std::int64_t* prefix = nullptr;
  std::int32_t* chunk_sums = nullptr;
};

/// What the kernels read (pointers into the buffers that were written).
struct ActivationTermsView {
  const float* group_sums = nullptr;
  const std::int32_t* group_qsums = nullptr;
  const std::int64_t* prefix = nullptr;
  std::size_t prefix_stride = 0;
  const std::int32_t* chunk_sums = nullptr;
};

inline ActivationTermsView view_of(const ActivationTermsOut& o) {
  return ActivationTermsView{o.group_sums, o.group_qsums, o.prefix, o.prefix_stride, o.chunk_sums};
}

/// Grow-only storage of the side terms of M rows.
struct ActivationTermBuffers {
  GrowBuffer<float> group_sums;
  GrowBuffer<std::int32_t> group_qsums;
  GrowBuffer<std::int64_t> prefix;
  GrowBuffer<std::int32_t> chunk_sums;

  /// Shapes the buffers for `rows` rows of terms `t` (checked) and says where to write.
  ActivationTermsOut out(const ActivationTerms& t, std::size_t rows) {
    ActivationTermsOut o;
    o.group = t.group;
    o.groups = t.padded / t.group;
    o.group_sums = group_sums.get(rows * o.groups);
    if (t.group_qsums) o.group_qsums = group_qsums.get(rows * o.groups);
    if (t.chunk_prefix) {
      o.prefix_stride = t.padded / kActivationChunk + 1;
      o.prefix = prefix.get(rows * o.prefix_stride);
    }
    o.chunks = t.padded / kActivationChunk;
    if (t.chunk_sums) o.chunk_sums = chunk_sums.get(rows * o.chunks);
    return o;
  }
  std::size_t capacity_bytes() const {
    return group_sums.capacity_bytes() + group_qsums.capacity_bytes() + prefix.capacity_bytes() +
           chunk_sums.capacity_bytes();
  }
};

}  // namespace detail
RANKQ_NAMESPACE_END  // namespace rankq
