// rankq/io/detail/safetensors_impl.hpp — safetensors header parsing/validation and header building behind
// rankq/io/safetensors.hpp. Include that header instead.
#pragma once

#include "rankq/detail/abi.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "rankq/error.hpp"
#include "rankq/io/detail/checked.hpp"
#include "rankq/io/tensor.hpp"

RANKQ_NAMESPACE_BEGIN namespace io {

/// The content of a safetensors file: tensors by name (in name order) and the "__metadata__" string map.
struct SafetensorsFile {
  std::map<std::string, RawTensor> tensors;
  std::map<std::string, std::string> metadata;
  /// Where each tensor's data begins, in bytes from the start of the parsed buffer (file).
  std::map<std::string, std::uint64_t> data_offsets;

  /// The named tensor; throws rankq::format_error if absent.
  const RawTensor& at(const std::string& name) const {
    const auto it = tensors.find(name);
    if (it == tensors.end()) throw format_error("rankq::io safetensors: no tensor named " + detail::quote(name));
    return it->second;
  }
  /// The named F32/F16/BF16 tensor as floats; throws rankq::format_error if absent or of another dtype.
  std::vector<float> floats(const std::string& name) const {
    const RawTensor& t = at(name);
    if (!is_float_dtype(t.dtype))
      throw format_error("rankq::io safetensors: tensor " + detail::quote(name) + " has dtype " + dtype_name(t.dtype) +
                         ", only F32, F16 and BF16 convert to float");
    return to_float(t);
  }
};

inline constexpr std::uint64_t kSafetensorsMaxHeader = 100'000'000;  ///< bytes, as in the reference implementation

namespace detail {

[[noreturn]] inline void st_fail(const std::string& source, const std::string& field, const std::string& problem) {
  throw format_error(source + ": " + field + ": " + problem);
}

/// `view(name)` true: the tensor's bytes are not copied (RawTensor::bytes stays empty; data_offsets locates them).
inline SafetensorsFile parse_safetensors_impl(const std::uint8_t* data, std::size_t size, const std::string& source,
                                              const std::function<bool(const std::string&)>& view = {}) {
  using json = nlohmann::json;
  ByteReader in(data, size, source);
  const std::uint64_t n = in.u64("header length");
  if (n > kSafetensorsMaxHeader)
    in.fail("header length", "= " + std::to_string(n) + " exceeds the 100 MB limit");
  const char* text = reinterpret_cast<const char*>(in.take(n, "header (length " + std::to_string(n) + ")"));

  // Parse with a depth limit (top object 0, tensor entry 1, shape/data_offsets 2) and duplicate-key detection.
  std::set<std::string> top_keys, entry_keys;
  const auto on_event = [&](int depth, json::parse_event_t ev, json& parsed) {
    if ((ev == json::parse_event_t::object_start || ev == json::parse_event_t::array_start) && depth > 2)
      st_fail(source, "header", "JSON nested deeper than a safetensors header can be");
    if (ev == json::parse_event_t::object_start && depth == 1) entry_keys.clear();
    if (ev == json::parse_event_t::key && parsed.is_string()) {
      auto& seen = depth == 1 ? top_keys : entry_keys;
      if (!seen.insert(parsed.get_ref<const std::string&>()).second)
        st_fail(source, "header", "duplicate key " + quote(parsed.get_ref<const std::string&>()));
    }
    return true;
  };
  json header;
  try {
    header = json::parse(text, text + n, on_event, /*allow_exceptions=*/true, /*ignore_comments=*/false);
  } catch (const json::exception& e) {
    st_fail(source, "header", std::string("is not valid JSON: ") + e.what());
  }
  if (!header.is_object()) st_fail(source, "header", "is not a JSON object");

  const std::uint64_t data_start = 8 + n, data_size = size - data_start;
  SafetensorsFile out;
  struct Span {
    std::uint64_t begin, end;
    const std::string* name;
  };
  std::vector<Span> spans;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const json& entry = it.value();
    if (!valid_utf8(name)) st_fail(source, "header", "tensor name " + quote(name) + " is not valid UTF-8");
    if (name == "__metadata__") {
      if (!entry.is_object()) st_fail(source, "__metadata__", "is not a JSON object");
      for (auto m = entry.begin(); m != entry.end(); ++m) {
        if (!m.value().is_string()) st_fail(source, "__metadata__", "value of " + quote(m.key()) + " is not a string");
        out.metadata.emplace(m.key(), m.value().get<std::string>());
      }
      continue;
    }
    const std::string field = "tensor " + quote(name);
    if (name.empty()) st_fail(source, "header", "a tensor has an empty name");
    if (!entry.is_object()) st_fail(source, field, "entry is not a JSON object");
    const auto dt = entry.find("dtype");
    const auto sh = entry.find("shape");
    const auto off = entry.find("data_offsets");
    if (dt == entry.end() || sh == entry.end() || off == entry.end())
      st_fail(source, field, "entry needs \"dtype\", \"shape\" and \"data_offsets\"");
    if (!dt->is_string()) st_fail(source, field, "dtype is not a string");
    const auto dtype = dtype_from_name(dt->get_ref<const std::string&>());
    if (!dtype) st_fail(source, field, "unknown dtype " + quote(dt->get_ref<const std::string&>()));
    RawTensor t;
    t.dtype = *dtype;
    if (!sh->is_array()) st_fail(source, field, "shape is not an array");
    for (const json& d : *sh) {
      if (!d.is_number_unsigned()) st_fail(source, field, "shape has an entry that is not a non-negative integer: " + quote(d.dump()));
      t.shape.push_back(d.get<std::uint64_t>());
    }
    if (!off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() || !(*off)[1].is_number_unsigned())
      st_fail(source, field, "data_offsets is not [begin, end] with non-negative integers");
    const auto begin = (*off)[0].get<std::uint64_t>(), end = (*off)[1].get<std::uint64_t>();
    std::uint64_t count = 0, bytes = 0;
    if (!product_ok(t.shape, ~std::uint64_t{0}, count) || !mul_ok(count, dtype_size(t.dtype), bytes))
      st_fail(source, field, "shape's byte size overflows");
    if (begin > end) st_fail(source, field, "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) + ") are reversed");
    if (end > data_size)
      st_fail(source, field, "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) + ") are past the end of the " +
                      std::to_string(data_size) + "-byte data section (truncated file?)");
    if (end - begin != bytes)
      st_fail(source, field, "data_offsets span " + std::to_string(end - begin) + " bytes but its " + std::to_string(count) + " elements of " +
                      dtype_name(t.dtype) + " need " + std::to_string(bytes));
    const auto inserted = out.tensors.emplace(name, std::move(t)).first;
    spans.push_back({begin, end, &inserted->first});
  }
  // The data must be laid out back to back: no overlap, no gap, nothing after the last tensor.
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  std::uint64_t expected = 0;
  for (const Span& s : spans) {
    if (s.begin < expected)
      st_fail(source, "tensor " + quote(*s.name), "data_offsets [" + std::to_string(s.begin) + ", " + std::to_string(s.end) +
                                            ") overlap the previous tensor, which ends at " + std::to_string(expected));
    if (s.begin > expected)
      st_fail(source, "tensor " + quote(*s.name), "data_offsets begin at " + std::to_string(s.begin) + ": a gap of " +
                                            std::to_string(s.begin - expected) + " unused bytes before it");
    expected = s.end;
    RawTensor& t = out.tensors.at(*s.name);
    out.data_offsets[*s.name] = data_start + s.begin;
    if (!view || !view(*s.name)) t.bytes.assign(data + data_start + s.begin, data + data_start + s.end);
  }
  if (expected != data_size)
    st_fail(source, "data section", std::to_string(data_size - expected) + " bytes after the last tensor are not described by the header");
  return out;
}

/// The 8-byte length and JSON header (padded with spaces so the data starts at a multiple of 8) for `tensors`
/// laid out back to back in name order. Throws rankq::invalid_argument for an inconsistent tensor or a bad name.
inline std::string safetensors_header(const std::map<std::string, RawTensor>& tensors,
                                      const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  const char* fn = "io::write_safetensors";
  for (const auto& [key, value] : metadata) {
    rankq::detail::require(valid_utf8(key) && valid_utf8(value), fn, "metadata", "entry " + quote(key) + " is not valid UTF-8");
    header["__metadata__"][key] = value;
  }
  std::uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    rankq::detail::require(!name.empty() && valid_utf8(name) && name != "__metadata__", fn, "tensors",
                           "has a tensor named " + quote(name) + ": names must be non-empty UTF-8, not __metadata__");
    check_raw_tensor(t, fn, "tensors");
    header[name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  rankq::detail::require(text.size() <= kSafetensorsMaxHeader, fn, "tensors", "make a header larger than 100 MB");
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(i)] = static_cast<char>((text.size() >> (8 * i)) & 0xFF);
  return out + text;
}

}  // namespace detail
}  RANKQ_NAMESPACE_END  // namespace rankq::io
