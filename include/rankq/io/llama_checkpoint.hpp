// rankq/io/llama_checkpoint.hpp — a LLaMA checkpoint opened without decoding it: the config and, per tensor (GGUF
// names, as in LlamaModel), where its bytes lie in the mapped file(s). Tensors are decoded to float one at a time
// (load), or viewed in their own element type without a copy (with_matrix_view: MatrixView<const bf16_t> of a BF16
// tensor, which the quantizers take as it is), and their mapped pages handed back to the kernel after use (release),
// so a pipeline that works block by block keeps one block's weights resident, not the file (docs/io.md, "Bounded memory").
//
//   rankq::io::LlamaCheckpoint ckpt = rankq::io::open_hf_llama("Llama-2-7b-hf");      // or open_llama_gguf/llama2c
//   rankq::io::FloatTensor q = ckpt.load("blk.0.attn_q.weight");   // decoded to float, Q/K rows in Meta's order
//   auto w = ckpt.with_matrix_view("blk.0.ffn_up.weight",          // the mapped BF16 bytes, rows in the file's order
//                                  [&](auto view) { return rankq::quantize_uniform(view, format); });
//   ckpt.release("blk.0.attn_q.weight");                            // madvise(MADV_DONTNEED) on its mapped range
#pragma once

#include "rankq/detail/abi.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "rankq/error.hpp"
#include "rankq/formats/half.hpp"
#include "rankq/formats/matrix.hpp"
#include "rankq/io/llama_model.hpp"
#include "rankq/io/tensor.hpp"

RANKQ_NAMESPACE_BEGIN namespace io {

/// Where one tensor's values lie: `count` elements of `dtype` (F32, F16 or BF16) at `data`, row-major `shape`.
/// `permute_heads` > 0: the rows are in Hugging Face's rotary order for that many heads and load() undoes it.
struct CheckpointTensor {
  DType dtype = DType::f32;
  std::vector<std::uint64_t> shape;
  const std::uint8_t* data = nullptr;
  std::size_t count = 0;
  int permute_heads = 0;
};

namespace detail {

/// Rows of a Q or K weight ([n_heads * head][cols]) from HF's rotary order back to Meta's interleaved pairs.
/// HF's convert_llama_weights_to_hf.py stores row h*head + j*head/2 + i what Meta has at row h*head + 2i + j
/// (docs/io.md §Hugging Face checkpoints), so Meta's row h*head + 2i + j = HF's row h*head + j*head/2 + i.
inline void hf_unpermute_rows(FloatTensor& t, int n_heads, const std::string& name) {
  const std::uint64_t rows = t.shape.at(0), cols = t.shape.at(1), heads = static_cast<std::uint64_t>(n_heads);
  if (rows % heads != 0 || (rows / heads) % 2 != 0)
    throw format_error("tensor '" + name + "': " + std::to_string(rows) + " rows are not " + std::to_string(heads) +
                       " heads of an even size");
  const std::uint64_t head = rows / heads, half = head / 2;
  std::vector<float> out(t.data.size());
  for (std::uint64_t h = 0; h < heads; ++h)
    for (std::uint64_t i = 0; i < half; ++i)
      for (std::uint64_t j = 0; j < 2; ++j) {
        const float* src = t.data.data() + (h * head + j * half + i) * cols;
        std::copy(src, src + cols, out.data() + (h * head + 2 * i + j) * cols);
      }
  t.data = std::move(out);
}

/// Copies `count` little-endian values of E's width from `src` into an aligned buffer of E (the bits unchanged).
template <typename E>
std::vector<E> copy_elements(const std::uint8_t* src, std::size_t count) {
  std::vector<E> out(count);
  for (std::size_t i = 0; i < count; ++i, src += sizeof(E)) {
    std::uint32_t bits = 0;
    for (std::size_t b = 0; b < sizeof(E); ++b) bits |= static_cast<std::uint32_t>(src[b]) << (8 * b);
    if constexpr (std::is_same_v<E, float>) out[i] = bits_float(bits);
    else out[i] = E{static_cast<std::uint16_t>(bits)};
  }
  return out;
}

}  // namespace detail

/// Row `row` of a Q or K weight in Meta's order ([n_heads * head][cols], head = rows / n_heads) is this row of the
/// Hugging Face file (rotary order, docs/io.md §Hugging Face checkpoints): Meta's h*head + 2i + j is HF's
/// h*head + j*head/2 + i. What load() undoes; callers of with_matrix_view map rows with it.
inline std::uint64_t hf_rotary_file_row(std::uint64_t row, std::uint64_t rows, int n_heads) {
  const std::uint64_t head = rows / static_cast<std::uint64_t>(n_heads), h = row / head, within = row % head;
  return h * head + (within % 2) * (head / 2) + within / 2;
}

/// A checkpoint whose tensors stay in their file until asked for. Every tensor the config implies (and
/// output.weight, which aliases token_embd.weight when the file ties them) was checked when it was opened: present,
/// float dtype, shape. Copyable (copies share the mappings); load() is thread-safe.
class LlamaCheckpoint {
 public:
  LlamaConfig config{};
  std::string source;                              ///< names the checkpoint in messages
  std::map<std::string, CheckpointTensor> tensors;  ///< GGUF names
  std::vector<std::shared_ptr<const void>> owners;  ///< keep `data` alive (file mappings, or a parsed copy)
  bool mapped = false;  ///< data lies in read-only file mappings (release() may drop its pages)

  const CheckpointTensor& entry(const std::string& name) const {
    const auto it = tensors.find(name);
    if (it == tensors.end()) throw format_error(source + ": no tensor named '" + name + "'");
    return it->second;
  }

  const CheckpointTensor& at(const std::string& name) const { return entry(name); }

  /// The named tensor decoded to float (exact for F32/F16/BF16), HF's Q/K permutation undone.
  FloatTensor load(const std::string& name) const {
    const CheckpointTensor& e = entry(name);
    FloatTensor t{e.shape, std::vector<float>(e.count)};
    decode_floats(e.dtype, e.data, e.count, t.data.data());
    if (e.permute_heads > 0) detail::hf_unpermute_rows(t, e.permute_heads, name);
    return t;
  }

  /// Rows [first, first + count) of a 2-D tensor, decoded to float (count x cols). Not for Q/K tensors stored in
  /// HF's rotary order (their rows are permuted): rankq::invalid_argument naming the tensor then, or for rows
  /// outside the tensor.
  FloatTensor load_rows(const std::string& name, std::uint64_t first, std::uint64_t count) const {
    const CheckpointTensor& e = entry(name);
    const char* fn = "io::LlamaCheckpoint::load_rows";
    rankq::detail::require(e.shape.size() == 2 && e.permute_heads == 0, fn, "name", "'" + name + "' is not a plain matrix");
    rankq::detail::require(first <= e.shape[0] && count <= e.shape[0] - first, fn, "count",
                           "rows [" + std::to_string(first) + ", " + std::to_string(first + count) + ") are outside '" + name + "'");
    const std::uint64_t cols = e.shape[1];
    FloatTensor t{{count, cols}, std::vector<float>(static_cast<std::size_t>(count * cols))};
    decode_floats(e.dtype, e.data + first * cols * dtype_size(e.dtype), t.data.size(), t.data.data());
    return t;
  }

  /// The named 2-D tensor in its own element type, without decoding it: calls fn(MatrixView<const E>) with E = float,
  /// bf16_t or f16_t for an F32, BF16 or F16 tensor, viewing the mapped bytes in place (no copy, no conversion; a
  /// BF16 tensor is never materialised in float), and returns what fn returns (fn must return the same type for
  /// the three element types: a generic lambda). Rows are in the file's order: for a Q/K tensor of a Hugging Face
  /// checkpoint (entry(name).permute_heads > 0) that is HF's rotary order, which load() undoes and this does not —
  /// map rows with hf_rotary_file_row. Bytes not aligned for E (safetensors promises no alignment) or a big-endian
  /// host: the values are first copied into an aligned buffer of E (16 bits per value for BF16/F16, never float).
  /// Throws rankq::invalid_argument for a tensor that is not 2-D.
  template <typename Fn>
  decltype(auto) with_matrix_view(const std::string& name, Fn&& fn) const {
    const CheckpointTensor& e = entry(name);
    rankq::detail::require(e.shape.size() == 2 && e.shape[0] * e.shape[1] == e.count, "io::LlamaCheckpoint::with_matrix_view",
                           "name", "'" + name + "' is not a 2-D tensor");
    const auto rows = static_cast<std::size_t>(e.shape[0]), cols = static_cast<std::size_t>(e.shape[1]);
    switch (e.dtype) {
      case DType::f32: return view_as<float>(e, rows, cols, std::forward<Fn>(fn));
      case DType::bf16: return view_as<bf16_t>(e, rows, cols, std::forward<Fn>(fn));
      case DType::f16: return view_as<f16_t>(e, rows, cols, std::forward<Fn>(fn));
      default: break;
    }
    throw format_error(source + ": tensor '" + name + "' has dtype " + dtype_name(e.dtype) + ": expected F32, F16 or BF16");
  }

  /// Tells the kernel that the named tensor's mapped pages are not needed any more (madvise MADV_DONTNEED on the
  /// pages it spans): they leave the process's resident set (RSS counts mapped file pages) and are read again from
  /// the file if the tensor is loaded again. The mappings are private and read-only, so nothing is lost. Pages
  /// shared with a neighbouring tensor are dropped too (they are re-read on demand). A no-op for a checkpoint
  /// parsed from memory.
  void release(const std::string& name) const {
    const CheckpointTensor& e = entry(name);
    release_bytes(e.data, e.count * dtype_size(e.dtype));
  }

  /// release() for rows [first, first + count) of a 2-D tensor (after load_rows).
  void release_rows(const std::string& name, std::uint64_t first, std::uint64_t count) const {
    const CheckpointTensor& e = entry(name);
    if (e.shape.size() != 2 || first > e.shape[0] || count > e.shape[0] - first) return;
    const std::uint64_t row_bytes = e.shape[1] * dtype_size(e.dtype);
    release_bytes(e.data + first * row_bytes, static_cast<std::size_t>(count * row_bytes));
  }

 private:
  template <typename E, typename Fn>
  static decltype(auto) view_as(const CheckpointTensor& e, std::size_t rows, std::size_t cols, Fn&& fn) {
    const bool little_endian = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__;
    if (little_endian && reinterpret_cast<std::uintptr_t>(e.data) % alignof(E) == 0)
      return fn(MatrixView<const E>(reinterpret_cast<const E*>(e.data), rows, cols));
    const std::vector<E> copy = detail::copy_elements<E>(e.data, e.count);
    return fn(MatrixView<const E>(copy.data(), rows, cols));
  }

  void release_bytes(const std::uint8_t* data, std::size_t bytes) const {
    if (!mapped || bytes == 0) return;
    const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
    const auto begin = reinterpret_cast<std::uintptr_t>(data) / page * page;
    const auto end = reinterpret_cast<std::uintptr_t>(data) + bytes;
    ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);  // advice: a failure changes nothing
  }


 public:
  /// Every tensor decoded (a LlamaModel in float; what read_hf_llama, read_llama_gguf and read_llama2c return).
  LlamaModel load_all() const {
    LlamaModel m;
    m.config = config;
    for (const auto& e : tensors) m.tensors.emplace(e.first, load(e.first));
    return m;
  }
};

}  RANKQ_NAMESPACE_END  // namespace rankq::io
