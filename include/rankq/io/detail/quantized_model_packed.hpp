// rankq/io/detail/quantized_model_packed.hpp — one projection of a rankq-quantized-llama/3 file in the kernels'
// layout (kinds "packed_w4a8", "packed_lqer", "packed_codebook", "packed_w8a8"): written from a rankq::Linear's packed
// data, read back into a Linear that views the mapped file (zero copy) or owns a copy when the bytes are not 64-byte
// aligned. docs/io.md.
#pragma once

#include "rankq/detail/abi.hpp"

#include <nlohmann/json.hpp>

#include <cstring>
#include <string>
#include <utility>

#include "rankq/io/detail/quantized_model_meta.hpp"
#include "rankq/io/detail/quantized_model_writer.hpp"
#include "rankq/io/quantized_tensors.hpp"
#include "rankq/layers/linear.hpp"

RANKQ_NAMESPACE_BEGIN namespace io {
namespace detail {

static_assert(sizeof(rankq::detail::PackedCodeBlock) % kPackedAlignment == 0 &&
                  rankq::detail::kLowRankChunkBytes % kPackedAlignment == 0,
              "code blocks and low-rank chunks (so every packed tile) keep the file's 64-byte alignment");
static_assert(rankq::detail::kW8ChunkBytes % kPackedAlignment == 0,
              "W8 chunks (and W8 tile headers, rounded up to 64 bytes) keep the file's 64-byte alignment");

/// Adds layer `name` (its descriptor, activation format and packed tensors, borrowed from `l`) to a /3 file.
inline void put_packed_layer(std::map<std::string, OutTensor>& out, std::map<std::string, std::string>& meta,
                             const std::string& name, const Linear& l, const std::string& label, double bits_per_weight) {
  nlohmann::json d{{"kind", std::string("packed_") + to_string(l.kind())}, {"rows", l.out_features()}, {"cols", l.in_features()},
                   {"label", label}, {"bits_per_weight", bits_per_weight}};
  const auto put = [&](const char* part, const AlignedBuffer<std::uint8_t>& b) {
    out[name + kPackedMarker + part] = packed_tensor(b.data(), b.size());
  };
  if (l.kind() == LinearKind::codebook) {
    const PackedCodebook& p = l.packed_codebook();
    d.update({{"padded", p.padded}, {"group", p.geo.group}, {"groups", p.geo.groups}, {"bits", p.bits}, {"rank", p.geo.rank}});
    put("codebook", p.data);
    out[name + ".lut"] = OutTensor{DType::i8, {p.lut.size()}, reinterpret_cast<const std::uint8_t*>(p.lut.data()), p.lut.size(), 0};
  } else if (l.kind() == LinearKind::w8a8) {
    const PackedW8& p = l.packed_w8();
    d.update({{"padded", p.padded}, {"group", p.geo.group}, {"groups", p.geo.groups},
              {"symmetry", symmetry_name(p.symmetry)}, {"scale_type", scale_type_name(p.scale_type)}});
    put("w8", p.data);
  } else {
    const PackedW4& p = l.packed_w4();
    d.update({{"padded", p.padded}, {"group", p.geo.group}, {"groups", p.geo.groups}, {"source_bits", p.source_bits},
              {"symmetry", symmetry_name(p.symmetry)}, {"scale_type", scale_type_name(p.scale_type)}});
    put("w4", p.data);
    if (l.kind() == LinearKind::lqer) {
      d["rank"] = l.packed_lowrank().rank;
      put("a_t", l.packed_lowrank().a_t.data);
      put("b_t", l.packed_lowrank().b_t.data);
    }
  }
  meta[name] = d.dump();
  meta[name + ":activation"] = activation_to_json(l.activation_format());
}

/// Where the tensors of a parsed file live: copied (RawTensor::bytes) or viewed (base + data_offsets).
struct FileBytes {
  const SafetensorsFile& file;
  const std::uint8_t* base;  ///< the parsed buffer (for viewed tensors)
  KeepAlive keep_alive;      ///< set when viewed tensors may be borrowed (a mapped file)
  std::pair<const std::uint8_t*, std::size_t> bytes(const std::string& name) const {
    const RawTensor& t = file.tensors.at(name);
    if (!t.bytes.empty() || !is_packed_tensor(name)) return {t.bytes.data(), t.bytes.size()};
    std::uint64_t n = 0;
    (void)product_ok(t.shape, ~std::uint64_t{0}, n);
    return {base + file.data_offsets.at(name), static_cast<std::size_t>(n)};
  }
};

/// The packed part `part` of layer `name`: `size` bytes (its tensor is U8 [size rounded up to 64]), borrowed
/// from the mapping when possible, else copied into an owned aligned buffer.
inline AlignedBuffer<std::uint8_t> packed_part(const FileBytes& fb, const std::string& name, const char* part,
                                               std::size_t size, const std::string& source) {
  const std::string t = name + kPackedMarker + part;
  const auto it = fb.file.tensors.find(t);
  const std::uint64_t want = (size + kPackedAlignment - 1) / kPackedAlignment * kPackedAlignment;
  if (it == fb.file.tensors.end() || it->second.dtype != DType::u8 || it->second.shape != std::vector<std::uint64_t>{want})
    bad_model_file(source, "layer '" + name + "' needs a tensor '" + t + "' of dtype U8 and shape [" + std::to_string(want) + "]");
  const auto [data, n] = fb.bytes(t);
  (void)n;
  if (fb.keep_alive && reinterpret_cast<std::uintptr_t>(data) % kBufferAlignment == 0)
    return AlignedBuffer<std::uint8_t>::borrow(data, size);
  AlignedBuffer<std::uint8_t> copy(size);
  if (size) std::memcpy(copy.data(), data, size);
  return copy;
}

/// Rebuilds the packed layer `name` from its descriptor `d` (kind packed_w4a8/_lqer/_codebook/_w8a8); `label`/`bpw` receive
/// what the writer recorded. Bad fields are format_error; the Linear's own checks (invalid_argument) run last.
inline Linear load_packed_layer(const FileBytes& fb, const std::string& name, const nlohmann::json& d, const std::string& kind,
                                LinearOptions o, std::string& label, double& bpw, const std::string& source) {
  const auto num = [&](const char* key, std::uint64_t lo, std::uint64_t hi) -> std::size_t {
    const auto it = d.find(key);
    if (it == d.end() || !it->is_number_unsigned() || it->get<std::uint64_t>() < lo || it->get<std::uint64_t>() > hi)
      bad_model_file(source, "layer '" + name + "' descriptor field '" + key + "' is missing or outside [" +
                                 std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return static_cast<std::size_t>(it->get<std::uint64_t>());
  };
  const auto text = [&](const char* key) {
    const auto it = d.find(key);
    if (it == d.end() || !it->is_string()) bad_model_file(source, "layer '" + name + "' descriptor has no text field '" + key + "'");
    return it->get<std::string>();
  };
  const auto bits_it = d.find("bits_per_weight");
  if (bits_it == d.end() || !bits_it->is_number() || !(bits_it->get<double>() > 0) || bits_it->get<double>() > 64)
    bad_model_file(source, "layer '" + name + "' descriptor field 'bits_per_weight' is missing or not in (0, 64]");
  bpw = bits_it->get<double>();
  label = text("label");
  const std::size_t rows = num("rows", 1, kMaxDim), cols = num("cols", 1, kMaxDim), padded = num("padded", 16, 2 * kMaxDim),
                    group = num("group", 16, 2 * kMaxDim), groups = num("groups", 1, 2 * kMaxDim);
  const std::size_t tiles = rankq::detail::ceil_div(rows, rankq::detail::kTileRows);
  if (group % 16 != 0 || padded != group * groups || padded < cols || padded - cols >= group)
    bad_model_file(source, "layer '" + name + "' has inconsistent cols, padded, group and groups");
  if (kind == "packed_codebook") {
    PackedCodebook p;
    p.rows = rows, p.cols = cols, p.padded = padded, p.tiles = tiles;
    p.bits = static_cast<unsigned>(num("bits", 2, 4));
    p.geo.group = group, p.geo.groups = groups, p.geo.rank = static_cast<unsigned>(num("rank", 1, kMaxCodebookRank));
    p.data = packed_part(fb, name, "codebook", tiles * p.geo.tile_stride(), source);
    const auto lut = fb.file.tensors.find(name + ".lut");
    if (lut == fb.file.tensors.end() || lut->second.dtype != DType::i8 ||
        lut->second.shape != std::vector<std::uint64_t>{p.geo.rank * rankq::detail::kCodebookLutEntries})
      bad_model_file(source, "layer '" + name + "' needs a tensor '" + name + ".lut' of dtype I8 and shape [rank·16]");
    const auto* l = reinterpret_cast<const std::int8_t*>(lut->second.bytes.data());
    p.lut.assign(l, l + lut->second.bytes.size());
    return Linear::from_packed_codebook(std::move(p), std::move(o), fb.keep_alive);
  }
  const std::string sym = text("symmetry"), st = text("scale_type");
  if ((sym != "symmetric" && sym != "asymmetric") || (st != "f16" && st != "f32"))
    bad_model_file(source, "layer '" + name + "' has an unknown symmetry or scale_type");
  const Symmetry symmetry = sym == "symmetric" ? Symmetry::symmetric : Symmetry::asymmetric;
  const ScaleType scale_type = st == "f16" ? ScaleType::f16 : ScaleType::f32;
  const std::size_t scale_bytes = st == "f16" ? 2 : 4;
  if (kind == "packed_w8a8") {
    if (padded > kW8MaxPaddedK)
      bad_model_file(source, "layer '" + name + "' has padded K above " + std::to_string(kW8MaxPaddedK) + " (the W8A8 limit)");
    PackedW8 w;
    w.rows = rows, w.cols = cols, w.padded = padded, w.tiles = tiles, w.symmetry = symmetry, w.scale_type = scale_type;
    w.geo = rankq::detail::PackedW8Geometry{group, groups, padded / rankq::detail::kW8ChunkK, scale_bytes,
                                            symmetry == Symmetry::asymmetric};
    w.data = packed_part(fb, name, "w8", tiles * w.geo.tile_stride(), source);
    return Linear::from_packed_w8(std::move(w), std::move(o), fb.keep_alive);
  }
  PackedW4 w;
  w.rows = rows, w.cols = cols, w.padded = padded, w.tiles = tiles;
  w.source_bits = static_cast<unsigned>(num("source_bits", 2, 4));
  w.symmetry = symmetry;
  w.scale_type = scale_type;
  w.geo.group = group, w.geo.groups = groups, w.geo.scale_bytes = scale_bytes;
  w.geo.has_offsets = symmetry == Symmetry::asymmetric;
  w.data = packed_part(fb, name, "w4", tiles * w.geo.tile_stride(), source);
  if (kind == "packed_w4a8") return Linear::from_packed(std::move(w), std::move(o), fb.keep_alive);
  PackedLowRank c;
  c.rank = num("rank", 1, kMaxDim), c.out_features = rows, c.in_features = cols;
  const auto factor = [&](PackedLowRankFactor& f, std::size_t r, std::size_t k, const char* part) {
    f.rows = r, f.cols = k, f.tiles = rankq::detail::ceil_div(r, rankq::detail::kLowRankRows);
    f.chunks = rankq::detail::ceil_div(k, rankq::detail::kLowRankChunk);
    f.data = packed_part(fb, name, part, f.tiles * f.chunks * rankq::detail::kLowRankChunkBytes, source);
  };
  factor(c.a_t, c.rank, cols, "a_t");
  factor(c.b_t, rows, c.rank, "b_t");
  return Linear::from_packed_lqer(std::move(w), std::move(c), std::move(o), fb.keep_alive);
}

}  // namespace detail
}  RANKQ_NAMESPACE_END  // namespace rankq::io
