// rankq/io/quantized_tensors.hpp — stores rankq's quantized weights (uniform, MXINT) as plain safetensors
// tensors plus a JSON descriptor in the file's metadata, so any safetensors tool can inspect them; and reads
// them back with full validation. Layout: docs/io.md ("Quantized model file") and docs/formats.md §2–3.
#pragma once

#include "rankq/detail/abi.hpp"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>

#include "rankq/error.hpp"
#include "rankq/formats/half.hpp"
#include "rankq/io/safetensors.hpp"
#include "rankq/io/tensor.hpp"
#include "rankq/formats/mxint.hpp"
#include "rankq/formats/uniform.hpp"

RANKQ_NAMESPACE_BEGIN namespace io {

using TensorMap = std::map<std::string, RawTensor>;
using MetadataMap = std::map<std::string, std::string>;

namespace detail {
inline RawTensor raw_u8(const std::uint8_t* p, std::size_t rows, std::size_t cols) {
  return RawTensor{DType::u8, {rows, cols}, std::vector<std::uint8_t>(p, p + rows * cols)};
}
inline RawTensor raw_scales(const AlignedBuffer<float>& v, std::size_t rows, std::size_t cols, ScaleType t) {
  RawTensor r{t == ScaleType::f16 ? DType::f16 : DType::f32, {rows, cols}, {}};
  r.bytes.resize(v.size() * (t == ScaleType::f16 ? 2 : 4));
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (t == ScaleType::f16) {
      const std::uint16_t h = float_to_half(v[i]);
      std::memcpy(r.bytes.data() + 2 * i, &h, 2);
    } else {
      std::memcpy(r.bytes.data() + 4 * i, &v[i], 4);
    }
  }
  return r;
}
[[noreturn]] inline void bad(const std::string& name, const std::string& problem) {
  throw format_error("rankq::io quantized tensor '" + name + "': " + problem);
}
inline const RawTensor& expect(const SafetensorsFile& f, const std::string& name, DType dtype,
                               std::vector<std::uint64_t> shape) {
  const auto it = f.tensors.find(name);
  if (it == f.tensors.end()) bad(name, "is missing");
  if (it->second.dtype != dtype) bad(name, std::string("has dtype ") + dtype_name(it->second.dtype) + ", expected " + dtype_name(dtype));
  if (it->second.shape != shape) bad(name, "has an unexpected shape");
  return it->second;
}
inline void read_scales(const RawTensor& t, const std::string& name, AlignedBuffer<float>& out) {
  const std::size_t n = out.size();
  for (std::size_t i = 0; i < n; ++i) {
    float v;
    if (t.dtype == DType::f16) {
      std::uint16_t h;
      std::memcpy(&h, t.bytes.data() + 2 * i, 2);
      v = half_to_float(h);
    } else {
      std::memcpy(&v, t.bytes.data() + 4 * i, 4);
    }
    if (!std::isfinite(v)) bad(name, "has a non-finite value at index " + std::to_string(i));
    out[i] = v;
  }
}
inline nlohmann::json descriptor(const SafetensorsFile& f, const std::string& name, const char* kind) {
  const auto it = f.metadata.find(name);
  if (it == f.metadata.end()) bad(name, "has no descriptor in the metadata");
  nlohmann::json j = nlohmann::json::parse(it->second, nullptr, false);
  if (j.is_discarded() || !j.is_object()) bad(name, "descriptor is not a JSON object");
  if (!j.contains("kind") || j["kind"] != kind) bad(name, std::string("descriptor kind is not '") + kind + "'");
  return j;
}
template <typename T>
T field(const nlohmann::json& j, const std::string& name, const char* key, T lo, T hi) {
  if (!j.contains(key) || !j[key].is_number_unsigned()) bad(name, std::string("descriptor field '") + key + "' is missing or not an unsigned integer");
  const auto v = j[key].get<std::uint64_t>();
  if (v < static_cast<std::uint64_t>(lo) || v > static_cast<std::uint64_t>(hi)) bad(name, std::string("descriptor field '") + key + "' is out of range");
  return static_cast<T>(v);
}
inline std::string text_field(const nlohmann::json& j, const std::string& name, const char* key) {
  if (!j.contains(key) || !j[key].is_string()) bad(name, std::string("descriptor field '") + key + "' is missing or not a string");
  return j[key].get<std::string>();
}
inline constexpr std::uint64_t kMaxDim = std::uint64_t(1) << 31;
/// The descriptors' names of a symmetry and a scale type (uniform layers and packed ones).
inline const char* symmetry_name(Symmetry s) { return s == Symmetry::symmetric ? "symmetric" : "asymmetric"; }
inline const char* scale_type_name(ScaleType t) { return t == ScaleType::f16 ? "f16" : "f32"; }
}  // namespace detail

/// Which kind of quantized tensor `name` is ("uniform", "mxint", ... ) according to its descriptor, or "".
inline std::string quantized_kind(const SafetensorsFile& f, const std::string& name) {
  const auto it = f.metadata.find(name);
  if (it == f.metadata.end()) return "";
  const nlohmann::json j = nlohmann::json::parse(it->second, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("kind") || !j["kind"].is_string()) return "";
  return j["kind"].get<std::string>();
}

/// Adds uniform weights: `name.codes` U8 [N][row_bytes], `name.scales` F16/F32 [N][groups], `name.offsets`
/// (asymmetric only) and metadata[name] = {"kind":"uniform","bits",...}.
inline void put_uniform(TensorMap& tensors, MetadataMap& meta, const std::string& name, const UniformWeights& w) {
  tensors[name + ".codes"] = detail::raw_u8(w.codes.data(), w.rows, w.row_bytes);
  tensors[name + ".scales"] = detail::raw_scales(w.scales, w.rows, w.groups, w.format.scale_type);
  if (w.format.symmetry == Symmetry::asymmetric)
    tensors[name + ".offsets"] = detail::raw_scales(w.offsets, w.rows, w.groups, w.format.scale_type);
  meta[name] = nlohmann::json{{"kind", "uniform"},
                              {"bits", w.format.bits},
                              {"group_size", w.format.group_size},
                              {"symmetry", detail::symmetry_name(w.format.symmetry)},
                              {"scale_type", detail::scale_type_name(w.format.scale_type)},
                              {"rows", w.rows},
                              {"cols", w.cols}}
                   .dump();
}

/// Reads uniform weights written by put_uniform; every size, dtype and value is validated (rankq::format_error).
inline UniformWeights get_uniform(const SafetensorsFile& f, const std::string& name) {
  const nlohmann::json j = detail::descriptor(f, name, "uniform");
  UniformFormat fmt;
  fmt.bits = detail::field<unsigned>(j, name, "bits", 2, 8);
  fmt.group_size = detail::field<std::size_t>(j, name, "group_size", 0, 128);
  const std::string sym = detail::text_field(j, name, "symmetry"), st = detail::text_field(j, name, "scale_type");
  if (sym != "symmetric" && sym != "asymmetric") detail::bad(name, "descriptor field 'symmetry' is '" + sym + "'");
  if (st != "f16" && st != "f32") detail::bad(name, "descriptor field 'scale_type' is '" + st + "'");
  fmt.symmetry = sym == "symmetric" ? Symmetry::symmetric : Symmetry::asymmetric;
  fmt.scale_type = st == "f16" ? ScaleType::f16 : ScaleType::f32;
  const auto rows = detail::field<std::size_t>(j, name, "rows", 1, detail::kMaxDim);
  const auto cols = detail::field<std::size_t>(j, name, "cols", 1, detail::kMaxDim);
  if (rows * cols > (std::uint64_t(1) << 40)) detail::bad(name, "is implausibly large");
  UniformWeights w;
  try {
    w = make_uniform_weights(fmt, rows, cols);
  } catch (const rankq::invalid_argument& e) {
    detail::bad(name, std::string("descriptor is not a valid format: ") + e.what());
  }
  const RawTensor& codes = detail::expect(f, name + ".codes", DType::u8, {rows, w.row_bytes});
  std::memcpy(w.codes.data(), codes.bytes.data(), codes.bytes.size());
  const DType sd = fmt.scale_type == ScaleType::f16 ? DType::f16 : DType::f32;
  detail::read_scales(detail::expect(f, name + ".scales", sd, {rows, w.groups}), name + ".scales", w.scales);
  if (fmt.symmetry == Symmetry::asymmetric)
    detail::read_scales(detail::expect(f, name + ".offsets", sd, {rows, w.groups}), name + ".offsets", w.offsets);
  return w;
}

/// Adds MXINT weights: `name.codes` U8 [rows][row_bytes], `name.exponents` U8 [rows][blocks], and metadata.
inline void put_mxint(TensorMap& tensors, MetadataMap& meta, const std::string& name, const MxTensor& t) {
  tensors[name + ".codes"] = detail::raw_u8(t.codes.data(), t.rows, t.row_bytes);
  tensors[name + ".exponents"] = detail::raw_u8(t.exponents.data(), t.rows, t.blocks);
  meta[name] = nlohmann::json{{"kind", "mxint"}, {"bits", t.format.bits}, {"block", t.format.block},
                              {"semantics", t.format.semantics == MxSemantics::lqer ? "lqer" : "ocp"},
                              {"rows", t.rows}, {"cols", t.cols}}
                   .dump();
}

/// Reads MXINT weights written by put_mxint, validated.
inline MxTensor get_mxint(const SafetensorsFile& f, const std::string& name) {
  const nlohmann::json j = detail::descriptor(f, name, "mxint");
  MxFormat fmt;
  fmt.bits = detail::field<unsigned>(j, name, "bits", 2, 8);
  fmt.block = detail::field<std::size_t>(j, name, "block", 16, 32);
  const std::string sem = detail::text_field(j, name, "semantics");
  if (sem != "lqer" && sem != "ocp") detail::bad(name, "descriptor field 'semantics' is '" + sem + "'");
  fmt.semantics = sem == "lqer" ? MxSemantics::lqer : MxSemantics::ocp;
  if (fmt.block != 16 && fmt.block != 32) detail::bad(name, "descriptor field 'block' must be 16 or 32");
  MxTensor t;
  t.format = fmt;
  t.rows = detail::field<std::size_t>(j, name, "rows", 1, detail::kMaxDim);
  t.cols = detail::field<std::size_t>(j, name, "cols", 1, detail::kMaxDim);
  if (t.rows * t.cols > (std::uint64_t(1) << 40)) detail::bad(name, "is implausibly large");
  t.padded = rankq::detail::round_up(t.cols, fmt.block);
  t.blocks = t.padded / fmt.block;
  t.row_bytes = t.padded * fmt.bits / 8;
  const RawTensor& codes = detail::expect(f, name + ".codes", DType::u8, {t.rows, t.row_bytes});
  const RawTensor& exps = detail::expect(f, name + ".exponents", DType::u8, {t.rows, t.blocks});
  t.codes.resize(codes.bytes.size());
  std::memcpy(t.codes.data(), codes.bytes.data(), codes.bytes.size());
  t.exponents.resize(exps.bytes.size());
  std::memcpy(t.exponents.data(), exps.bytes.data(), exps.bytes.size());
  // Byte 0xFF (e = 128): with ocp semantics it is OCP MX's NaN scale (the quantizer clamps e to 127) and the
  // 2-bit step 2^(e-(m-1)) = 2^128 is not a float: refused. With lqer semantics e = 128 is what quantize_mxint
  // writes for a block maximum above 2^127; its values (2^m-1)·2^(128-m) are finite (docs/formats.md §3).
  if (fmt.semantics == MxSemantics::ocp)
    for (std::size_t i = 0; i < t.exponents.size(); ++i)
      if (t.exponents[i] == 0xFF)
        detail::bad(name + ".exponents", "has the byte 0xFF (a NaN scale in OCP MX) at row " + std::to_string(i / t.blocks) +
                                              ", block " + std::to_string(i % t.blocks));
  return t;
}

}  RANKQ_NAMESPACE_END  // namespace rankq::io
