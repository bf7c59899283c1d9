// rankq/io/detail/quantized_model_writer.hpp — the byte layout of a rankq-quantized-llama/3 file behind
// rankq/io/quantized_model.hpp: a safetensors file whose packed tensors (the kernels' layout, docs/formats.md
// §5-7) come first in the data section, each starting at a multiple of 64 bytes of the file, so that a mapped file
// can be handed to the kernels as is (docs/io.md, "Quantized model file").
#pragma once

#include "rankq/detail/abi.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "rankq/error.hpp"
#include "rankq/io/detail/crc32c.hpp"
#include "rankq/io/detail/safetensors_impl.hpp"
#include "rankq/io/file.hpp"
#include "rankq/io/tensor.hpp"

RANKQ_NAMESPACE_BEGIN namespace io {
namespace detail {

/// Packed tensors start at multiples of this many bytes of the file (the kernels' buffer alignment, one cache line).
inline constexpr std::size_t kPackedAlignment = 64;
static_assert(kPackedAlignment % 8 == 0, "the safetensors data section starts at a multiple of 8");
/// Tensor names holding the kernels' layout contain this; they are viewed in place when the file is mapped.
inline constexpr const char* kPackedMarker = ".packed_";

inline bool is_packed_tensor(const std::string& name) { return name.find(kPackedMarker) != std::string::npos; }

/// One tensor to write: borrowed bytes (`size` of them) followed by `pad` zero bytes, both part of the tensor.
struct OutTensor {
  DType dtype = DType::u8;
  std::vector<std::uint64_t> shape;
  const std::uint8_t* data = nullptr;
  std::size_t size = 0, pad = 0;
};

/// Packed bytes as a 1-D U8 tensor, zero-padded to a multiple of kPackedAlignment.
inline OutTensor packed_tensor(const std::uint8_t* data, std::size_t size) {
  const std::size_t pad = (kPackedAlignment - size % kPackedAlignment) % kPackedAlignment;
  return {DType::u8, {static_cast<std::uint64_t>(size + pad)}, data, size, pad};
}

/// A tensor as the file's header sees it: dtype, shape, `size` bytes + `pad` zero bytes, and their CRC-32C.
struct TensorRecord {
  DType dtype = DType::u8;
  std::vector<std::uint64_t> shape;
  std::size_t size = 0, pad = 0;
  std::uint32_t crc = 0;
};

/// CRC-32C of `size` bytes at `data` followed by `pad` zero bytes.
inline std::uint32_t padded_crc32c(const std::uint8_t* data, std::size_t size, std::size_t pad, std::uint32_t crc = 0) {
  static const std::uint8_t zeros[kPackedAlignment] = {};
  crc = crc32c(data, size, crc);
  for (std::size_t left = pad; left > 0; left -= std::min(left, kPackedAlignment)) crc = crc32c(zeros, std::min(left, kPackedAlignment), crc);
  return crc;
}

/// The file order: packed tensors first, then the others, each group in name order.
inline std::vector<std::string> aligned_order(const std::map<std::string, TensorRecord>& records) {
  std::vector<std::string> order;
  for (const auto& e : records)
    if (is_packed_tensor(e.first)) order.push_back(e.first);
  for (const auto& e : records)
    if (!is_packed_tensor(e.first)) order.push_back(e.first);
  return order;
}

/// The bytes before the data section (8-byte length + JSON header padded with spaces so that the data starts at a
/// multiple of kPackedAlignment) for `records` laid out back to back in `order`, with "rankq.checksums" added to the
/// metadata. Throws rankq::invalid_argument for an invalid name, a shape that does not match the bytes, a packed
/// tensor that would not be aligned or metadata that is not UTF-8.
inline std::string aligned_safetensors_prefix(const std::map<std::string, TensorRecord>& records,
                                              const std::vector<std::string>& order, std::map<std::string, std::string> metadata) {
  nlohmann::json checksums = nlohmann::json::object(), header = nlohmann::json::object();
  std::uint64_t offset = 0;
  for (const std::string& name : order) {
    const TensorRecord& t = records.at(name);
    rankq::detail::require(valid_utf8(name) && name != "__metadata__", "io::write_quantized_model", "tensors",
                           "has an invalid tensor name " + quote(name));
    const std::uint64_t bytes = t.size + t.pad;
    std::uint64_t count = 0;
    rankq::detail::require(product_ok(t.shape, ~std::uint64_t{0}, count) && count * dtype_size(t.dtype) == bytes,
                           "io::write_quantized_model", "tensors", quote(name) + " has a shape that does not match its bytes");
    rankq::detail::require(!is_packed_tensor(name) || offset % kPackedAlignment == 0, "io::write_quantized_model", "tensors",
                           quote(name) + " would not be aligned");
    header[name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + bytes}}};
    checksums[name] = t.crc;
    offset += bytes;
  }
  metadata["rankq.checksums"] = checksums.dump();
  for (const auto& [key, value] : metadata) {
    rankq::detail::require(valid_utf8(key) && valid_utf8(value), "io::write_quantized_model", "metadata",
                           "entry " + quote(key) + " is not valid UTF-8");
    header["__metadata__"][key] = value;
  }
  std::string text = header.dump();
  text.append((kPackedAlignment - (8 + text.size()) % kPackedAlignment) % kPackedAlignment, ' ');  // data at 64k
  std::string prefix(8, '\0');
  for (int i = 0; i < 8; ++i) prefix[static_cast<std::size_t>(i)] = static_cast<char>((text.size() >> (8 * i)) & 0xFF);
  return prefix + text;
}

/// Writes the tensors (packed ones first, then the others, each group in name order) and the metadata, with
/// "rankq.checksums" added, atomically to `path` (write_file_atomic: only a regular file is replaced).
inline void write_aligned_safetensors(const std::string& path, const std::map<std::string, OutTensor>& tensors,
                                      std::map<std::string, std::string> metadata) {
  static const std::uint8_t zeros[kPackedAlignment] = {};
  std::map<std::string, TensorRecord> records;
  for (const auto& [name, t] : tensors) records[name] = {t.dtype, t.shape, t.size, t.pad, padded_crc32c(t.data, t.size, t.pad)};
  const std::vector<std::string> order = aligned_order(records);
  const std::string prefix = aligned_safetensors_prefix(records, order, std::move(metadata));
  std::vector<ByteSpan> pieces{{reinterpret_cast<const std::uint8_t*>(prefix.data()), prefix.size()}};
  for (const std::string& name : order) {
    const OutTensor& t = tensors.at(name);
    if (t.size) pieces.push_back({t.data, t.size});
    for (std::size_t left = t.pad; left > 0; left -= std::min(left, kPackedAlignment))
      pieces.push_back({zeros, std::min(left, kPackedAlignment)});
  }
  write_file_atomic(path, pieces);
}

}  // namespace detail
}  RANKQ_NAMESPACE_END  // namespace rankq::io
