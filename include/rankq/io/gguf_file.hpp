// rankq/io/gguf_file.hpp — a parsed GGUF file (versions 1-3): typed metadata values, tensor infos, ggml type
// sizes and access to F32/F16/BF16 (and plain integer) tensor data. Parsing: rankq/io/gguf.hpp.
#pragma once

#include "rankq/detail/abi.hpp"

#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "rankq/error.hpp"
#include "rankq/io/detail/checked.hpp"
#include "rankq/io/tensor.hpp"

RANKQ_NAMESPACE_BEGIN namespace io {

/// GGUF metadata value types (the numbers are the file's).
enum class GgufType : std::uint32_t {
  uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6, boolean = 7,
  string = 8, array = 9, uint64 = 10, int64 = 11, float64 = 12,
};

inline const char* gguf_type_name(GgufType t) {
  static const char* names[] = {"uint8", "int8",   "uint16", "int16", "uint32", "int32", "float32",
                                "bool",  "string", "array",  "uint64", "int64", "float64"};
  const auto i = static_cast<std::uint32_t>(t);
  return i < 13 ? names[i] : "invalid";
}

/// Block geometry of a ggml tensor type: `block_size` elements take `type_size` bytes.
struct GgmlTypeInfo {
  const char* name;
  std::uint32_t block_size, type_size;
};

/// The ggml tensor type with id `type`, or nullptr for ids this library does not know (removed or newer types).
inline const GgmlTypeInfo* ggml_type_info(std::uint32_t type) {
  static const GgmlTypeInfo table[] = {
      {"F32", 1, 4},        {"F16", 1, 2},        {"Q4_0", 32, 18},     {"Q4_1", 32, 20},    {nullptr, 0, 0},
      {nullptr, 0, 0},      {"Q5_0", 32, 22},     {"Q5_1", 32, 24},     {"Q8_0", 32, 34},    {"Q8_1", 32, 36},
      {"Q2_K", 256, 84},    {"Q3_K", 256, 110},   {"Q4_K", 256, 144},   {"Q5_K", 256, 176},  {"Q6_K", 256, 210},
      {"Q8_K", 256, 292},   {"IQ2_XXS", 256, 66}, {"IQ2_XS", 256, 74},  {"IQ3_XXS", 256, 98}, {"IQ1_S", 256, 50},
      {"IQ4_NL", 32, 18},   {"IQ3_S", 256, 110},  {"IQ2_S", 256, 82},   {"IQ4_XS", 256, 136}, {"I8", 1, 1},
      {"I16", 1, 2},        {"I32", 1, 4},        {"I64", 1, 8},        {"F64", 1, 8},       {"IQ1_M", 256, 56},
      {"BF16", 1, 2},       {nullptr, 0, 0},      {nullptr, 0, 0},      {nullptr, 0, 0},     {"TQ1_0", 256, 54},
      {"TQ2_0", 256, 66},   {nullptr, 0, 0},      {nullptr, 0, 0},      {nullptr, 0, 0},     {"MXFP4", 32, 17},
  };
  if (type >= sizeof(table) / sizeof(table[0]) || table[type].name == nullptr) return nullptr;
  return &table[type];
}

class GgufValue;
class GgufFile;
namespace detail {
struct GgufParser;
}

/// One metadata value. Scalars and arrays are read through typed accessors, which throw rankq::format_error
/// naming the key when the stored type does not fit.
class GgufValue {
 public:
  const std::string& key() const noexcept { return key_; }
  GgufType type() const noexcept { return type_; }
  bool is_array() const noexcept { return type_ == GgufType::array; }
  /// Element type and count (arrays only).
  GgufType element_type() const {
    require_array();
    return elem_;
  }
  std::size_t size() const {
    require_array();
    return uints_.size() + ints_.size() + floats_.size() + strings_.size() + arrays_.size();
  }

  /// Any integer type whose value fits int64.
  std::int64_t as_int() const {
    if (is_signed(type_)) return i_;
    if (is_unsigned(type_) && u_ <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      return static_cast<std::int64_t>(u_);
    fail(is_unsigned(type_) ? "= " + std::to_string(u_) + " does not fit int64" : wrong("an integer"));
  }
  /// Any integer type with a non-negative value.
  std::uint64_t as_uint() const {
    if (is_unsigned(type_)) return u_;
    if (is_signed(type_) && i_ >= 0) return static_cast<std::uint64_t>(i_);
    fail(is_signed(type_) ? "= " + std::to_string(i_) + " is negative" : wrong("a non-negative integer"));
  }
  /// float32 or float64.
  double as_float() const {
    if (type_ == GgufType::float32 || type_ == GgufType::float64) return f_;
    fail(wrong("a float"));
  }
  bool as_bool() const {
    if (type_ == GgufType::boolean) return u_ != 0;
    fail(wrong("a bool"));
  }
  const std::string& as_string() const {
    if (type_ == GgufType::string) return s_;
    fail(wrong("a string"));
  }
  /// Array of any integer type, each element fitting int64.
  std::vector<std::int64_t> as_int_array() const {
    require_array();
    if (is_signed(elem_)) return ints_;
    if (!is_unsigned(elem_)) fail(wrong_array("integers"));
    std::vector<std::int64_t> out;
    out.reserve(uints_.size());
    for (std::uint64_t u : uints_) {
      if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        fail("has an element " + std::to_string(u) + " that does not fit int64");
      out.push_back(static_cast<std::int64_t>(u));
    }
    return out;
  }
  std::vector<bool> as_bool_array() const {
    require_array();
    if (elem_ != GgufType::boolean) fail(wrong_array("bools"));
    return std::vector<bool>(uints_.begin(), uints_.end());
  }
  /// Array of float32/float64 (float64 values are rounded to float).
  std::vector<float> as_float_array() const {
    const std::vector<double>& d = as_double_array();
    return std::vector<float>(d.begin(), d.end());
  }
  const std::vector<double>& as_double_array() const {
    require_array();
    if (elem_ != GgufType::float32 && elem_ != GgufType::float64) fail(wrong_array("floats"));
    return floats_;
  }
  const std::vector<std::string>& as_string_array() const {
    require_array();
    if (elem_ != GgufType::string) fail(wrong_array("strings"));
    return strings_;
  }
  /// Array of arrays: the nested values (keys "<key>[i]").
  const std::vector<GgufValue>& as_array_array() const {
    require_array();
    if (elem_ != GgufType::array) fail(wrong_array("arrays"));
    return arrays_;
  }

  static bool is_unsigned(GgufType t) {
    return t == GgufType::uint8 || t == GgufType::uint16 || t == GgufType::uint32 || t == GgufType::uint64;
  }
  static bool is_signed(GgufType t) {
    return t == GgufType::int8 || t == GgufType::int16 || t == GgufType::int32 || t == GgufType::int64;
  }

 private:
  friend struct detail::GgufParser;
  [[noreturn]] void fail(const std::string& problem) const {
    throw format_error("rankq::io GGUF metadata '" + key_ + "': " + problem);
  }
  std::string wrong(const char* expected) const {
    return std::string("is ") + gguf_type_name(type_) + ", expected " + expected;
  }
  std::string wrong_array(const char* expected) const {
    return std::string("is an array of ") + gguf_type_name(elem_) + ", expected an array of " + expected;
  }
  void require_array() const {
    if (type_ != GgufType::array) fail(wrong("an array"));
  }

  std::string key_;
  GgufType type_ = GgufType::uint8;
  GgufType elem_ = GgufType::uint8;
  std::uint64_t u_ = 0;  // unsigned integers, bool
  std::int64_t i_ = 0;   // signed integers
  double f_ = 0.0;       // float32, float64
  std::string s_;
  // array elements, by element kind (only one is used)
  std::vector<std::uint64_t> uints_;
  std::vector<std::int64_t> ints_;
  std::vector<double> floats_;
  std::vector<std::string> strings_;
  std::vector<GgufValue> arrays_;
};

/// A tensor's entry in the file. `ne` is ggml's order: ne[0] is the innermost (contiguous) dimension, so a
/// matrix with ne = [in, out] is row-major [out][in]; shape() gives the row-major order.
struct GgufTensorInfo {
  std::string name;
  std::vector<std::uint64_t> ne;
  std::uint32_t type = 0;          ///< ggml type id (0 = F32, 1 = F16, 30 = BF16, ...)
  std::uint64_t offset = 0;        ///< from the start of the data section; a multiple of the alignment
  std::uint64_t n_elements = 0;
  std::uint64_t n_bytes = 0;       ///< meaningful only if size_known
  bool size_known = false;         ///< false for ggml types ggml_type_info does not know

  std::vector<std::uint64_t> shape() const { return std::vector<std::uint64_t>(ne.rbegin(), ne.rend()); }
  const char* type_name() const {
    const GgmlTypeInfo* t = ggml_type_info(type);
    return t ? t->name : "unknown";
  }
};

/// A parsed GGUF file. It owns the file's bytes; tensor data is decoded on request.
class GgufFile {
 public:
  std::uint32_t version() const noexcept { return version_; }
  std::uint64_t alignment() const noexcept { return alignment_; }
  const std::string& source() const noexcept { return source_; }
  /// Metadata in file order.
  const std::vector<GgufValue>& metadata() const noexcept { return kv_; }
  const std::vector<GgufTensorInfo>& tensors() const noexcept { return tensors_; }

  /// The value for `key`, or nullptr.
  const GgufValue* find(const std::string& key) const {
    const auto it = kv_index_.find(key);
    return it == kv_index_.end() ? nullptr : &kv_[it->second];
  }
  bool has(const std::string& key) const { return find(key) != nullptr; }
  /// The value for `key`; throws rankq::format_error if absent.
  const GgufValue& get(const std::string& key) const {
    if (const GgufValue* v = find(key)) return *v;
    throw format_error(source_ + ": missing metadata key '" + key + "'");
  }
  std::int64_t get_int(const std::string& key) const { return get(key).as_int(); }
  std::int64_t get_int(const std::string& key, std::int64_t fallback) const {
    const GgufValue* v = find(key);
    return v ? v->as_int() : fallback;
  }
  std::uint64_t get_uint(const std::string& key) const { return get(key).as_uint(); }
  double get_float(const std::string& key) const { return get(key).as_float(); }
  double get_float(const std::string& key, double fallback) const {
    const GgufValue* v = find(key);
    return v ? v->as_float() : fallback;
  }
  bool get_bool(const std::string& key) const { return get(key).as_bool(); }
  const std::string& get_string(const std::string& key) const { return get(key).as_string(); }

  /// The tensor named `name`, or nullptr.
  const GgufTensorInfo* find_tensor(const std::string& name) const {
    const auto it = tensor_index_.find(name);
    return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
  }
  /// The tensor named `name`; throws rankq::format_error if absent.
  const GgufTensorInfo& tensor(const std::string& name) const {
    if (const GgufTensorInfo* t = find_tensor(name)) return *t;
    throw format_error(source_ + ": missing tensor '" + name + "'");
  }

  /// The tensor's data with its row-major shape. Types F32, F16, BF16, F64, I8, I16, I32, I64 only; any other
  /// ggml type (quantized, unknown) throws rankq::format_error naming the tensor and its type.
  RawTensor tensor_raw(const std::string& name) const {
    const GgufTensorInfo& t = tensor(name);
    RawTensor out;
    switch (t.type) {
      case 0: out.dtype = DType::f32; break;
      case 1: out.dtype = DType::f16; break;
      case 30: out.dtype = DType::bf16; break;
      case 28: out.dtype = DType::f64; break;
      case 24: out.dtype = DType::i8; break;
      case 25: out.dtype = DType::i16; break;
      case 26: out.dtype = DType::i32; break;
      case 27: out.dtype = DType::i64; break;
      default:
        throw format_error(source_ + ": tensor '" + name + "' has ggml type " + t.type_name() + " (" +
                           std::to_string(t.type) + "): only F32, F16, BF16, F64, I8, I16, I32 and I64 data can be read");
    }
    out.shape = t.shape();
    const std::uint8_t* p = bytes_ + data_offset_ + t.offset;  // bounds checked by the parser
    out.bytes.assign(p, p + t.n_bytes);
    return out;
  }
  /// Where the tensor's bytes begin (n_bytes of them when size_known; bounds checked by the parser). Valid while
  /// this GgufFile (or a copy of it) lives.
  const std::uint8_t* tensor_data(const std::string& name) const { return bytes_ + data_offset_ + tensor(name).offset; }
  /// The tensor's values as floats (F32, F16, BF16 only; others throw rankq::format_error).
  std::vector<float> tensor_floats(const std::string& name) const {
    const GgufTensorInfo& t = tensor(name);
    if (t.type != 0 && t.type != 1 && t.type != 30)
      throw format_error(source_ + ": tensor '" + name + "' has ggml type " + t.type_name() + " (" +
                         std::to_string(t.type) + "): only F32, F16 and BF16 convert to float");
    std::vector<float> out(static_cast<std::size_t>(t.n_elements));
    const DType d = t.type == 0 ? DType::f32 : t.type == 1 ? DType::f16 : DType::bf16;
    decode_floats(d, bytes_ + data_offset_ + t.offset, out.size(), out.data());
    return out;
  }

 private:
  friend struct detail::GgufParser;
  std::string source_;
  std::shared_ptr<const void> owner_;  ///< keeps bytes_ alive: the parsed copy or the file's mapping
  const std::uint8_t* bytes_ = nullptr;
  std::uint64_t data_offset_ = 0;
  std::uint32_t version_ = 0;
  std::uint64_t alignment_ = 32;
  std::vector<GgufValue> kv_;
  std::map<std::string, std::size_t> kv_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, std::size_t> tensor_index_;
};

}  RANKQ_NAMESPACE_END  // namespace rankq::io
