// rankq/io/safetensors.hpp — reads and writes safetensors files (8-byte little-endian header length, JSON
// header, tensor bytes back to back). Writes are atomic (temporary file + rename). Rules: docs/io.md.
#pragma once

#include "rankq/detail/abi.hpp"

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "rankq/error.hpp"
#include "rankq/io/detail/safetensors_impl.hpp"
#include "rankq/io/file.hpp"
#include "rankq/io/tensor.hpp"

RANKQ_NAMESPACE_BEGIN namespace io {

/// Parses a safetensors file held in memory. Throws rankq::format_error naming the field on any malformed input:
/// header length past the end or above 100 MB, invalid JSON or UTF-8, unknown dtype, shape x dtype size not matching
/// data_offsets, offsets out of range, overlapping, leaving gaps or leaving bytes after the last tensor.
inline SafetensorsFile parse_safetensors(const std::uint8_t* data, std::size_t size) {
  rankq::detail::require_non_null(data, size, "io::parse_safetensors", "data");
  return detail::parse_safetensors_impl(data, size, "safetensors");
}

/// Reads a safetensors file. Throws io_error if it cannot be read, rankq::format_error if malformed.
inline SafetensorsFile read_safetensors(const std::string& path) {
  const MappedFile file(path);
  return detail::parse_safetensors_impl(file.data(), file.size(), "safetensors '" + path + "'");
}

/// The bytes of a safetensors file holding `tensors` (data in name order, back to back, starting at a multiple of
/// 8 bytes) and `metadata` (omitted when empty). Deterministic: equal inputs give identical bytes.
/// Throws rankq::invalid_argument if a tensor's byte count does not match its shape and dtype or a name is empty,
/// "__metadata__" or not UTF-8.
inline std::vector<std::uint8_t> serialize_safetensors(const std::map<std::string, RawTensor>& tensors,
                                                       const std::map<std::string, std::string>& metadata = {}) {
  const std::string header = detail::safetensors_header(tensors, metadata);
  std::vector<std::uint8_t> out(header.begin(), header.end());
  for (const auto& entry : tensors) out.insert(out.end(), entry.second.bytes.begin(), entry.second.bytes.end());
  return out;
}

/// Writes serialize_safetensors(tensors, metadata) to `path` atomically (see write_file_atomic): on failure an
/// existing file at `path` is untouched, no partial or temporary file is left, and io_error is thrown.
inline void write_safetensors(const std::string& path, const std::map<std::string, RawTensor>& tensors,
                              const std::map<std::string, std::string>& metadata = {}) {
  const std::string header = detail::safetensors_header(tensors, metadata);
  std::vector<ByteSpan> pieces{{reinterpret_cast<const std::uint8_t*>(header.data()), header.size()}};
  for (const auto& entry : tensors) pieces.push_back({entry.second.bytes.data(), entry.second.bytes.size()});
  write_file_atomic(path, pieces);
}

}  RANKQ_NAMESPACE_END  // namespace rankq::io
