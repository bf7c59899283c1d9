// rankq/io/quantized_extras.hpp — stores what LQER / L²QER (weights + low-rank factors Aᵀ, Bᵀ) and LCQ
// (indices, codebooks V, group numbers S and offsets B, double-quantization tensors) produce as plain safetensors
// tensors with JSON descriptors in the metadata, and reads them back fully validated. Builds on
// quantized_tensors.hpp (uniform, MXINT). Tensor names and descriptors: docs/io.md ("Quantized model file").
#pragma once

#include "rankq/detail/abi.hpp"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "rankq/error.hpp"
#include "rankq/io/quantized_tensors.hpp"
#include "rankq/algorithms/lcq.hpp"
#include "rankq/formats/lowrank.hpp"
#include "rankq/formats/mxint.hpp"
#include "rankq/kernels/reference.hpp"
#include "rankq/formats/uniform.hpp"

RANKQ_NAMESPACE_BEGIN namespace io {

/// The exact inverse of to_uniform (kernels/reference.hpp) for MXINT weights: symmetric uniform weights with f32
/// power-of-two scales, groups of format.block, codes level + 2^(bits−1). Returns nothing if `u` is not such a form
/// (then the caller stores it as uniform).
inline std::optional<MxTensor> mxint_from_uniform(const UniformWeights& u, const MxFormat& format) {
  if (u.format.bits != format.bits || u.format.group_size != format.block || u.format.symmetry != Symmetry::symmetric ||
      u.format.scale_type != ScaleType::f32)
    return std::nullopt;
  MxTensor t;
  t.format = format;
  t.rows = u.rows;
  t.cols = u.cols;
  t.padded = rankq::detail::round_up(u.cols, format.block);
  t.blocks = t.padded / format.block;
  t.row_bytes = t.padded * format.bits / 8;
  if (t.padded != u.padded || t.blocks != u.groups || t.row_bytes != u.row_bytes) return std::nullopt;
  t.codes.resize(t.rows * t.row_bytes);
  t.exponents.resize(t.rows * t.blocks);
  const int half = 1 << (format.bits - 1), zero_step = rankq::detail::mx_step_from_shared(0, format);
  for (std::size_t r = 0; r < t.rows; ++r) {
    for (std::size_t b = 0; b < t.blocks; ++b) {
      int e2 = 0;
      const double m = std::frexp(static_cast<double>(u.scales[r * u.groups + b]), &e2);  // scale = 0.5·2^e2
      if (m != 0.5) return std::nullopt;
      const int shared = (e2 - 1) - zero_step;
      if (shared < -127 || shared > 128) return std::nullopt;
      t.exponents[r * t.blocks + b] = static_cast<std::uint8_t>(shared + 127);
    }
    for (std::size_t c = 0; c < t.cols; ++c) {  // padding codes stay 0
      const int level = static_cast<int>(rankq::detail::get_bits(u.codes.data() + r * u.row_bytes, c, u.format.bits)) - half;
      if (level < -(half - 1)) return std::nullopt;  // code 0 has no MXINT level
      const unsigned code = level < 0 ? static_cast<unsigned>(-level) | static_cast<unsigned>(half) : static_cast<unsigned>(level);
      rankq::detail::put_bits(t.codes.data() + r * t.row_bytes, c, format.bits, code);
    }
  }
  return t;
}

namespace detail {
inline RawTensor raw_f32(const float* p, std::vector<std::uint64_t> shape, std::size_t count) {
  RawTensor r{DType::f32, std::move(shape), std::vector<std::uint8_t>(count * 4)};
  if (count) std::memcpy(r.bytes.data(), p, count * 4);
  return r;
}
inline RawTensor raw_i8(const std::int8_t* p, std::vector<std::uint64_t> shape, std::size_t count) {
  RawTensor r{DType::i8, std::move(shape), std::vector<std::uint8_t>(count)};
  if (count) std::memcpy(r.bytes.data(), p, count);
  return r;
}


inline const char* lowrank_storage_name(LowRankStorage s) { return to_string(s); }
inline LowRankStorage lowrank_storage_from(const std::string& s, const std::string& name) {
  for (LowRankStorage v : {LowRankStorage::mxint8, LowRankStorage::int8_group16, LowRankStorage::int8_row})
    if (s == to_string(v)) return v;
  bad(name, "descriptor field 'factors' is '" + s + "'");
}

/// Stores an 8-bit factor: MXINT8 codes + exponents when it is (exactly) an MXINT8 tensor, else uniform.
inline void put_factor(TensorMap& tensors, MetadataMap& meta, const std::string& name, const UniformWeights& f,
                       LowRankStorage storage) {
  if (storage == LowRankStorage::mxint8) {
    if (auto mx = mxint_from_uniform(f, MxFormat{8, 16, MxSemantics::lqer})) return put_mxint(tensors, meta, name, *mx);
    rankq::detail::throw_argument("io::put_lqer", "weights.correction", "says mxint8 factors but '" + name + "' is not an MXINT8 tensor");
  }
  put_uniform(tensors, meta, name, f);
}

/// Reads a factor of a given shape and storage, validated; returns its uniform form and adds its bits.
inline UniformWeights get_factor(const SafetensorsFile& f, const std::string& name, LowRankStorage storage,
                                 std::size_t rows, std::size_t cols, double& bits) {
  const double elements = static_cast<double>(rows) * static_cast<double>(cols);
  UniformWeights u;
  if (storage == LowRankStorage::mxint8) {
    const MxTensor t = get_mxint(f, name);
    if (t.format.bits != 8 || t.format.block != 16 || t.format.semantics != MxSemantics::lqer)
      bad(name, "is not MXINT8 (blocks of 16, lqer semantics) as the layer's 'factors' says");
    bits += bits_per_weight(t.format, t.cols) * elements;
    u = to_uniform(t);
  } else {
    u = get_uniform(f, name);
    const UniformFormat want{8, storage == LowRankStorage::int8_row ? kWholeRow : 16, Symmetry::symmetric, ScaleType::f16};
    if (to_string(u.format) != to_string(want)) bad(name, "has format " + to_string(u.format) + ", expected " + to_string(want));
    bits += bits_per_weight(u.format, u.cols) * elements;
  }
  if (u.rows != rows || u.cols != cols)
    bad(name, "is " + std::to_string(u.rows) + "x" + std::to_string(u.cols) + ", expected " + std::to_string(rows) + "x" +
                  std::to_string(cols));
  return u;
}
}  // namespace detail

/// LQER / L²QER weights as read back: the weights (and their MXINT form when stored as MXINT) and the correction.
struct StoredLqer {
  LqerWeights lqer;               ///< weights, weight_bits, correction (rank, shape, storage, a_t, b_t, storage_bits)
  std::optional<MxTensor> mxint;  ///< the weights as MXINT, if they were stored so
  std::string scaling;            ///< "lqer" (s = 1) or "l2qer" (activation-scaled), as written
};

/// Adds LQER / L²QER weights under `name`:
///   metadata[name] = {"kind":"lqer","scaling":"lqer"|"l2qer","rows":N,"cols":K,"rank":k,"weight_bits":b,
///                     "factors":"mxint8-b16"|"int8-sym-g16"|"int8-sym-row"}
///   `name:weights` — the quantized weights (MXINT via put_mxint if `mxint` is given, else put_uniform)
///   `name:a_t`     — Aᵀ, k x K, 8-bit (MXINT8 via put_mxint, or int8 via put_uniform)
///   `name:b_t`     — Bᵀ, N x k, likewise.
/// The float factors kept for analysis (a_t_float, singular values, ...) are not stored.
inline void put_lqer(TensorMap& tensors, MetadataMap& meta, const std::string& name, const LqerWeights& w,
                     const MxTensor* mxint, const std::string& scaling) {
  const LowRankCorrection& c = w.correction;
  if (scaling != "lqer" && scaling != "l2qer")
    rankq::detail::throw_argument("io::put_lqer", "scaling", "is '" + scaling + "': must be lqer or l2qer");
  if (c.out_features != w.weights.rows || c.in_features != w.weights.cols || c.a_t.rows != c.rank ||
      c.a_t.cols != c.in_features || c.b_t.rows != c.out_features || c.b_t.cols != c.rank)
    rankq::detail::throw_argument("io::put_lqer", "w", "has a correction inconsistent with its weights");
  if (mxint) put_mxint(tensors, meta, name + ":weights", *mxint);
  else put_uniform(tensors, meta, name + ":weights", w.weights);
  detail::put_factor(tensors, meta, name + ":a_t", c.a_t, c.storage);
  detail::put_factor(tensors, meta, name + ":b_t", c.b_t, c.storage);
  meta[name] = nlohmann::json{{"kind", "lqer"},      {"scaling", scaling},         {"rows", c.out_features},
                              {"cols", c.in_features}, {"rank", c.rank},           {"weight_bits", w.weight_bits},
                              {"factors", detail::lowrank_storage_name(c.storage)}}
                   .dump();
}

/// Reads what put_lqer wrote; every descriptor, shape, dtype and value is validated (rankq::format_error).
inline StoredLqer get_lqer(const SafetensorsFile& f, const std::string& name) {
  const nlohmann::json j = detail::descriptor(f, name, "lqer");
  StoredLqer out;
  out.scaling = detail::text_field(j, name, "scaling");
  if (out.scaling != "lqer" && out.scaling != "l2qer") detail::bad(name, "descriptor field 'scaling' is '" + out.scaling + "'");
  const auto rows = detail::field<std::size_t>(j, name, "rows", 1, detail::kMaxDim);
  const auto cols = detail::field<std::size_t>(j, name, "cols", 1, detail::kMaxDim);
  const auto rank = detail::field<std::size_t>(j, name, "rank", 1, std::min(rows, cols));
  if (!j.contains("weight_bits") || !j["weight_bits"].is_number() || !std::isfinite(j["weight_bits"].get<double>()) ||
      j["weight_bits"].get<double>() <= 0 || j["weight_bits"].get<double>() > 64)
    detail::bad(name, "descriptor field 'weight_bits' is missing or not a positive number");
  const LowRankStorage storage = detail::lowrank_storage_from(detail::text_field(j, name, "factors"), name);
  const std::string wname = name + ":weights", kind = quantized_kind(f, wname);
  LqerWeights& lw = out.lqer;
  if (kind == "mxint") {
    out.mxint = get_mxint(f, wname);
    lw.weights = to_uniform(*out.mxint);
  } else if (kind == "uniform") {
    lw.weights = get_uniform(f, wname);
  } else {
    detail::bad(wname, "is missing or neither uniform nor mxint");
  }
  if (lw.weights.rows != rows || lw.weights.cols != cols) detail::bad(wname, "has a shape different from the layer's");
  lw.weight_bits = j["weight_bits"].get<double>();
  LowRankCorrection& c = lw.correction;
  c.rank = rank;
  c.out_features = rows;
  c.in_features = cols;
  c.storage = storage;
  c.a_t = detail::get_factor(f, name + ":a_t", storage, rank, cols, c.storage_bits);
  c.b_t = detail::get_factor(f, name + ":b_t", storage, rows, rank, c.storage_bits);
  return out;
}

/// Adds LCQ codebook weights under `name`:
///   metadata[name] = {"kind":"lcq","bits":b,"group_size":g (0 = row),"rank":k,"double_quantized":bool,"rows","cols"}
///   `name.indices` U8 [N][K_pad·b/8] (uniform.hpp's LSB-first bit stream), `name.V` F32 [k][2^b],
///   plain: `name.S` F32 [N][groups·k] and `name.B` F32 [N][groups];
///   double-quantized: `name.S_q` I8 [N][groups·k], `name.S_scale` F32 [N][k], `name.B_q` I8 [N][groups],
///   `name.B_scale` F32 [N][1] (S = S_q·S_scale[n][r], B = B_q·B_scale[n], as in docs/lcq.md).
inline void put_codebook(TensorMap& tensors, MetadataMap& meta, const std::string& name, const CodebookWeights& q) {
  (void)serialize(q);  // validates the array sizes (rankq::invalid_argument)
  const unsigned k = q.format.rank;
  tensors[name + ".indices"] = detail::raw_u8(q.indices.data(), q.rows, q.row_bytes);
  tensors[name + ".V"] = detail::raw_f32(q.V.data(), {k, q.codewords()}, q.V.size());
  if (!q.format.double_quantized) {
    tensors[name + ".S"] = detail::raw_f32(q.S.data(), {q.rows, q.groups * k}, q.S.size());
    tensors[name + ".B"] = detail::raw_f32(q.B.data(), {q.rows, q.groups}, q.B.size());
  } else {
    tensors[name + ".S_q"] = detail::raw_i8(q.S_q.data(), {q.rows, q.groups * k}, q.S_q.size());
    tensors[name + ".S_scale"] = detail::raw_f32(q.S_scale.data(), {q.rows, k}, q.S_scale.size());
    tensors[name + ".B_q"] = detail::raw_i8(q.B_q.data(), {q.rows, q.groups}, q.B_q.size());
    tensors[name + ".B_scale"] = detail::raw_f32(q.B_scale.data(), {q.rows, 1}, q.B_scale.size());
  }
  meta[name] = nlohmann::json{{"kind", "lcq"},
                              {"bits", q.format.bits},
                              {"group_size", q.format.group_size},
                              {"rank", q.format.rank},
                              {"double_quantized", q.format.double_quantized},
                              {"rows", q.rows},
                              {"cols", q.cols}}
                   .dump();
}

/// Reads what put_codebook wrote. Shapes and dtypes are checked here; the values go through
/// deserialize_codebook's validation (finite, non-negative DQ scales, no int8 −128, zero padding indices).
inline CodebookWeights get_codebook(const SafetensorsFile& f, const std::string& name) {
  const nlohmann::json j = detail::descriptor(f, name, "lcq");
  CodebookFormat fmt;
  fmt.bits = detail::field<unsigned>(j, name, "bits", 2, 4);
  fmt.group_size = detail::field<std::size_t>(j, name, "group_size", 0, 128);
  fmt.rank = detail::field<unsigned>(j, name, "rank", 1, kMaxCodebookRank);
  if (!j.contains("double_quantized") || !j["double_quantized"].is_boolean())
    detail::bad(name, "descriptor field 'double_quantized' is missing or not a boolean");
  fmt.double_quantized = j["double_quantized"].get<bool>();
  const auto rows = detail::field<std::size_t>(j, name, "rows", 1, detail::kMaxDim);
  const auto cols = detail::field<std::size_t>(j, name, "cols", 1, detail::kMaxDim);
  if (rows * cols > (std::uint64_t(1) << 40)) detail::bad(name, "is implausibly large");
  CodebookWeights shape;
  try {
    shape = make_codebook_weights(fmt, rows, cols);
  } catch (const rankq::invalid_argument& e) {
    detail::bad(name, std::string("descriptor is not a valid format: ") + e.what());
  }
  const std::uint64_t k = fmt.rank;
  const RawTensor& idx = detail::expect(f, name + ".indices", DType::u8, {rows, shape.row_bytes});
  const RawTensor& V = detail::expect(f, name + ".V", DType::f32, {k, shape.codewords()});
  // Re-assemble the documented byte form and let deserialize_codebook validate every value.
  rankq::detail::ByteWriter w(codebook_storage(fmt, rows, cols).total_bytes);
  w.raw(reinterpret_cast<const std::uint8_t*>("RQLC"), 4);
  w.u16(kCodebookFormatVersion);
  w.u8(static_cast<std::uint8_t>(fmt.bits));
  w.u8(static_cast<std::uint8_t>(fmt.rank));
  w.u32(static_cast<std::uint32_t>(fmt.group_size));
  w.u8(fmt.double_quantized ? 1 : 0);
  w.u8(0), w.u8(0), w.u8(0);
  w.u64(rows);
  w.u64(cols);
  w.raw(V.bytes.data(), V.bytes.size());
  w.raw(idx.bytes.data(), idx.bytes.size());
  if (!fmt.double_quantized) {
    const RawTensor& S = detail::expect(f, name + ".S", DType::f32, {rows, shape.groups * k});
    const RawTensor& B = detail::expect(f, name + ".B", DType::f32, {rows, shape.groups});
    w.raw(S.bytes.data(), S.bytes.size());
    w.raw(B.bytes.data(), B.bytes.size());
  } else {
    const RawTensor& Sq = detail::expect(f, name + ".S_q", DType::i8, {rows, shape.groups * k});
    const RawTensor& Ss = detail::expect(f, name + ".S_scale", DType::f32, {rows, k});
    const RawTensor& Bq = detail::expect(f, name + ".B_q", DType::i8, {rows, shape.groups});
    const RawTensor& Bs = detail::expect(f, name + ".B_scale", DType::f32, {rows, 1});
    w.raw(Ss.bytes.data(), Ss.bytes.size());
    w.raw(Bs.bytes.data(), Bs.bytes.size());
    w.raw(Sq.bytes.data(), Sq.bytes.size());
    w.raw(Bq.bytes.data(), Bq.bytes.size());
  }
  const std::vector<std::uint8_t> bytes = w.take();
  try {
    return deserialize_codebook(bytes);
  } catch (const format_error& e) {
    detail::bad(name, e.what());
  }
}

}  RANKQ_NAMESPACE_END  // namespace rankq::io
