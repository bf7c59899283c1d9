// rankq/io/detail/gguf_parser.hpp — the GGUF v1/v2/v3 parser behind rankq::io::parse_gguf (validates every
// count, length, type, shape, offset and alignment before use). Include rankq/io/gguf.hpp instead.
#pragma once

#include "rankq/detail/abi.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "rankq/io/detail/checked.hpp"
#include "rankq/io/gguf_file.hpp"
#include "rankq/io/tensor.hpp"

RANKQ_NAMESPACE_BEGIN namespace io::detail {

inline constexpr int kGgufMaxArrayDepth = 8;     ///< arrays nested deeper than this are rejected
inline constexpr std::uint32_t kGgufMaxDims = 4; ///< GGML_MAX_DIMS

struct GgufParser {
  GgufFile f;
  ByteReader in;

  /// `owner` keeps the `size` bytes at `data` alive (a copied buffer or a MappedFile) for the GgufFile's lifetime.
  GgufParser(std::shared_ptr<const void> owner, const std::uint8_t* data, std::size_t size, std::string source)
      : in(data, size, source) {
    f.owner_ = std::move(owner);
    f.bytes_ = data;
    f.source_ = std::move(source);
  }

  [[noreturn]] void fail_at(const std::string& field, const std::string& problem) const {
    throw format_error(f.source_ + ": " + field + ": " + problem);
  }

  std::size_t len_size() const { return f.version_ == 1 ? 4 : 8; }
  /// A count or length: uint32 in v1, uint64 in v2/v3.
  std::uint64_t len(std::string_view field) { return f.version_ == 1 ? in.u32(field) : in.u64(field); }

  std::string str(std::string_view field) {
    const std::uint64_t n = len(field);
    return in.string(n, field);
  }
  /// A key or tensor name: non-empty, valid UTF-8.
  std::string name(const std::string& field) {
    std::string s = str(field);
    if (s.empty()) in.fail(field, "is empty");
    if (!valid_utf8(s)) in.fail(field, quote(s) + " is not valid UTF-8");
    return s;
  }

  std::uint64_t min_value_size(GgufType t) const {
    switch (t) {
      case GgufType::uint8: case GgufType::int8: case GgufType::boolean: return 1;
      case GgufType::uint16: case GgufType::int16: return 2;
      case GgufType::uint32: case GgufType::int32: case GgufType::float32: return 4;
      case GgufType::uint64: case GgufType::int64: case GgufType::float64: return 8;
      case GgufType::string: return len_size();
      case GgufType::array: return 4 + len_size();
    }
    return 1;
  }

  GgufType value_type(std::string_view field) {
    const std::uint32_t t = in.u32(field);
    if (t > 12) in.fail(field, "unknown value type " + std::to_string(t) + " (0..12 are defined)");
    return static_cast<GgufType>(t);
  }

  std::uint64_t read_unsigned(GgufType t, std::string_view field) {
    switch (t) {
      case GgufType::uint8: return in.u8(field);
      case GgufType::uint16: return in.u16(field);
      case GgufType::uint32: return in.u32(field);
      case GgufType::uint64: return in.u64(field);
      default: {  // boolean
        const std::uint8_t b = in.u8(field);
        if (b > 1) in.fail(field, "bool value is " + std::to_string(b) + ", must be 0 or 1");
        return b;
      }
    }
  }
  std::int64_t read_signed(GgufType t, std::string_view field) {
    switch (t) {
      case GgufType::int8: return in.read<std::int8_t>(field);
      case GgufType::int16: return in.read<std::int16_t>(field);
      case GgufType::int32: return in.i32(field);
      default: return in.i64(field);
    }
  }
  double read_float(GgufType t, std::string_view field) {
    return t == GgufType::float32 ? static_cast<double>(in.f32(field)) : in.f64(field);
  }

  void read_value(GgufValue& v, GgufType t, int depth, const std::string& field) {
    v.type_ = t;
    if (GgufValue::is_unsigned(t) || t == GgufType::boolean) v.u_ = read_unsigned(t, field);
    else if (GgufValue::is_signed(t)) v.i_ = read_signed(t, field);
    else if (t == GgufType::float32 || t == GgufType::float64) v.f_ = read_float(t, field);
    else if (t == GgufType::string) v.s_ = str(field);
    else read_array(v, depth, field);
  }

  void read_array(GgufValue& v, int depth, const std::string& field) {
    const GgufType et = value_type(field + " array element type");
    if (et == GgufType::array && depth + 1 >= kGgufMaxArrayDepth)
      in.fail(field, "arrays nested deeper than " + std::to_string(kGgufMaxArrayDepth) + " levels");
    const std::uint64_t n64 = len(field + " array length");
    const std::size_t n = in.count(n64, min_value_size(et), field + " array length");
    v.elem_ = et;
    const std::string elem = field + " element";
    if (GgufValue::is_unsigned(et) || et == GgufType::boolean) {
      v.uints_.reserve(n);
      for (std::size_t i = 0; i < n; ++i) v.uints_.push_back(read_unsigned(et, elem));
    } else if (GgufValue::is_signed(et)) {
      v.ints_.reserve(n);
      for (std::size_t i = 0; i < n; ++i) v.ints_.push_back(read_signed(et, elem));
    } else if (et == GgufType::float32 || et == GgufType::float64) {
      v.floats_.reserve(n);
      for (std::size_t i = 0; i < n; ++i) v.floats_.push_back(read_float(et, elem));
    } else if (et == GgufType::string) {
      v.strings_.reserve(n);
      for (std::size_t i = 0; i < n; ++i) v.strings_.push_back(str(elem));
    } else {  // nested arrays, each {element type, length, values}; grown as read (elements are large in memory)
      for (std::size_t i = 0; i < n; ++i) {
        GgufValue sub;
        sub.key_ = v.key_ + "[" + std::to_string(i) + "]";
        sub.type_ = GgufType::array;
        read_array(sub, depth + 1, elem);
        v.arrays_.push_back(std::move(sub));
      }
    }
  }

  void header() {
    static const std::uint8_t magic[4] = {'G', 'G', 'U', 'F'};
    const std::uint8_t* m = in.take(4, "magic");
    if (!std::equal(m, m + 4, magic))
      fail_at("magic", "is " + quote(std::string(reinterpret_cast<const char*>(m), 4)) + ", expected 'GGUF'");
    const std::uint32_t v = in.u32("version");
    if (v < 1 || v > 3) {
      const std::uint32_t swapped = (v >> 24) | ((v >> 8) & 0xFF00u) | ((v << 8) & 0xFF0000u) | (v << 24);
      fail_at("version", "is " + std::to_string(v) +
                             (swapped >= 1 && swapped <= 3 ? " (a big-endian file?), only little-endian GGUF is supported"
                                                           : ", only versions 1, 2 and 3 are supported"));
    }
    f.version_ = v;
  }

  void metadata(std::uint64_t n_kv) {
    const std::size_t n = in.count(n_kv, len_size() + 4 + 1, "metadata count");
    for (std::size_t i = 0; i < n; ++i) {
      const std::string where = "metadata #" + std::to_string(i);
      GgufValue v;
      v.key_ = name(where + " key");
      if (f.kv_index_.count(v.key_)) in.fail(where + " key", "duplicate key " + quote(v.key_));
      const std::string field = where + " ('" + v.key_ + "')";
      read_value(v, value_type(field + " type"), 0, field + " value");
      f.kv_index_.emplace(v.key_, f.kv_.size());
      f.kv_.push_back(std::move(v));
    }
    if (const GgufValue* a = f.find("general.alignment")) {
      if (!GgufValue::is_unsigned(a->type()) && !GgufValue::is_signed(a->type()))
        fail_at("metadata 'general.alignment'", std::string("is ") + gguf_type_name(a->type()) + ", expected uint32");
      const std::int64_t al = a->as_int();
      if (al <= 0 || (al & (al - 1)) != 0 || al > (std::int64_t{1} << 30))
        fail_at("metadata 'general.alignment'", "= " + std::to_string(al) + ": must be a power of two up to 2^30");
      f.alignment_ = static_cast<std::uint64_t>(al);
    }
  }

  void tensor_infos(std::uint64_t n_tensors) {
    const std::size_t n = in.count(n_tensors, len_size() + 4 + 4 + 8, "tensor count");
    for (std::size_t i = 0; i < n; ++i) {
      const std::string where = "tensor info #" + std::to_string(i);
      GgufTensorInfo t;
      t.name = name(where + " name");
      if (f.tensor_index_.count(t.name)) in.fail(where + " name", "duplicate tensor name " + quote(t.name));
      const std::string field = where + " ('" + t.name + "')";
      const std::uint32_t n_dims = in.u32(field + " n_dims");
      if (n_dims > kGgufMaxDims) in.fail(field + " n_dims", "= " + std::to_string(n_dims) + ", at most 4 are allowed");
      constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
      for (std::uint32_t d = 0; d < n_dims; ++d) {
        const std::uint64_t ne = f.version_ == 1 ? in.u32(field + " ne") : in.u64(field + " ne");
        if (ne > kMax) in.fail(field + " ne[" + std::to_string(d) + "]", "= " + std::to_string(ne) + " is too large");
        t.ne.push_back(ne);
      }
      if (!product_ok(t.ne, kMax, t.n_elements)) in.fail(field + " ne", "the element count overflows int64");
      t.type = in.u32(field + " type");
      t.offset = in.u64(field + " offset");
      if (const GgmlTypeInfo* info = ggml_type_info(t.type)) {
        const std::uint64_t ne0 = t.ne.empty() ? 1 : t.ne[0];
        if (ne0 % info->block_size != 0)
          in.fail(field + " ne[0]", "= " + std::to_string(ne0) + " is not a multiple of the block size " +
                                       std::to_string(info->block_size) + " of type " + info->name);
        if (!mul_ok(t.n_elements / info->block_size, info->type_size, t.n_bytes))
          in.fail(field, "the byte size overflows");
        t.size_known = true;
      }
      if (t.offset % f.alignment_ != 0)
        in.fail(field + " offset", "= " + std::to_string(t.offset) + " is not a multiple of the alignment " +
                                       std::to_string(f.alignment_));
      f.tensor_index_.emplace(t.name, f.tensors_.size());
      f.tensors_.push_back(std::move(t));
    }
  }

  void data_section() {
    std::uint64_t start = 0;
    if (!align_up_ok(in.pos(), f.alignment_, start)) fail_at("data section", "start offset overflows");
    if (!f.tensors_.empty() && start > in.size())
      fail_at("data section", "starts at offset " + std::to_string(start) + ", past the end of the " +
                                  std::to_string(in.size()) + "-byte file (truncated)");
    f.data_offset_ = start;
    const std::uint64_t data_size = start <= in.size() ? in.size() - start : 0;
    std::vector<std::pair<std::uint64_t, std::size_t>> by_offset;  // (offset, tensor index), non-empty only
    for (std::size_t i = 0; i < f.tensors_.size(); ++i) {
      const GgufTensorInfo& t = f.tensors_[i];
      std::uint64_t end = t.offset;
      if (t.size_known && !add_ok(t.offset, t.n_bytes, end)) end = std::numeric_limits<std::uint64_t>::max();
      if (end > data_size)
        fail_at("tensor '" + t.name + "' data",
                "bytes [" + std::to_string(t.offset) + ", " + (t.size_known ? std::to_string(t.offset + t.n_bytes) : "?") +
                    ") are past the end of the " + std::to_string(data_size) + "-byte data section (truncated file?)");
      if (t.size_known && t.n_bytes > 0) by_offset.emplace_back(t.offset, i);
    }
    std::sort(by_offset.begin(), by_offset.end());
    for (std::size_t k = 1; k < by_offset.size(); ++k) {
      const GgufTensorInfo& a = f.tensors_[by_offset[k - 1].second];
      const GgufTensorInfo& b = f.tensors_[by_offset[k].second];
      if (b.offset < a.offset + a.n_bytes)
        fail_at("tensor '" + b.name + "' data", "bytes [" + std::to_string(b.offset) + ", " +
                                                    std::to_string(b.offset + b.n_bytes) + ") overlap tensor '" + a.name +
                                                    "' at [" + std::to_string(a.offset) + ", " +
                                                    std::to_string(a.offset + a.n_bytes) + ")");
    }
  }

  GgufFile parse() {
    header();
    const std::uint64_t n_tensors = len("tensor count");
    const std::uint64_t n_kv = len("metadata count");
    in.count(n_tensors, len_size() + 4 + 4 + 8, "tensor count");
    metadata(n_kv);
    tensor_infos(n_tensors);
    data_section();
    return std::move(f);
  }
};

}  RANKQ_NAMESPACE_END  // namespace rankq::io::detail
