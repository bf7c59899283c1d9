// rankq/algorithms/detail/lcq_serialize.hpp — byte serialization of CodebookWeights (little-endian, validated on read).
// Include rankq/algorithms/lcq.hpp instead. The byte layout is documented in docs/lcq.md "Byte layout".
#pragma once

#include "rankq/detail/abi.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "rankq/formats/codebook.hpp"
#include "rankq/error.hpp"

RANKQ_NAMESPACE_BEGIN

inline constexpr std::uint16_t kCodebookFormatVersion = 1;

namespace detail {

class ByteWriter {
 public:
  explicit ByteWriter(std::size_t reserve) { bytes_.reserve(reserve); }
  void u8(std::uint8_t v) { bytes_.push_back(v); }
  void u16(std::uint16_t v) { le(v, 2); }
  void u32(std::uint32_t v) { le(v, 4); }
  void u64(std::uint64_t v) { le(v, 8); }
  void f32(float v) {
    std::uint32_t u;
    std::memcpy(&u, &v, 4);
    le(u, 4);
  }
  void raw(const std::uint8_t* p, std::size_t n) { bytes_.insert(bytes_.end(), p, p + n); }
  std::vector<std::uint8_t> take() { return std::move(bytes_); }

 private:
  void le(std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) bytes_.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  }
  std::vector<std::uint8_t> bytes_;
};

class ByteReader {
 public:
  ByteReader(const std::uint8_t* p, std::size_t n) : p_(p), n_(n) {}
  std::uint64_t le(int n, const char* what) {
    need(static_cast<std::size_t>(n), what);
    std::uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= static_cast<std::uint64_t>(p_[pos_ + i]) << (8 * i);
    pos_ += static_cast<std::size_t>(n);
    return v;
  }
  float f32(const char* what) {
    const auto u = static_cast<std::uint32_t>(le(4, what));
    float v;
    std::memcpy(&v, &u, 4);
    return v;
  }
  const std::uint8_t* raw(std::size_t n, const char* what) {
    need(n, what);
    const std::uint8_t* q = p_ + pos_;
    pos_ += n;
    return q;
  }
  std::size_t remaining() const { return n_ - pos_; }

 private:
  void need(std::size_t n, const char* what) {
    if (n > n_ - pos_)
      throw format_error(std::string("rankq::deserialize_codebook: truncated while reading ") + what + " (need " +
                         std::to_string(n) + " bytes at offset " + std::to_string(pos_) + ", " +
                         std::to_string(n_ - pos_) + " left)");
  }
  const std::uint8_t* p_;
  std::size_t n_, pos_ = 0;
};

[[noreturn]] inline void throw_format(const std::string& problem) {
  throw format_error("rankq::deserialize_codebook: " + problem);
}

inline float finite_f32(ByteReader& in, const char* what) {
  const float v = in.f32(what);
  if (!std::isfinite(v)) throw_format(std::string(what) + " has a non-finite value");
  return v;
}

}  // namespace detail

/// Serializes to the documented byte layout; the result has exactly codebook_storage(q).total_bytes bytes.
inline std::vector<std::uint8_t> serialize(const CodebookWeights& q) {
  const CodebookFormat& f = q.format;
  detail::check_codebook_format(f, "serialize", "q.format");
  const CodebookStorage st = codebook_storage(f, q.rows, q.cols);
  const std::size_t nums = q.rows * q.groups;
  if (q.indices.size() != q.rows * q.row_bytes || q.V.size() != (std::size_t(f.rank) << f.bits) ||
      q.S.size() != nums * f.rank || q.B.size() != nums ||
      (f.double_quantized && (q.S_q.size() != nums * f.rank || q.B_q.size() != nums ||
                              q.S_scale.size() != q.rows * f.rank || q.B_scale.size() != q.rows)))
    detail::throw_argument("serialize", "q", "has arrays whose sizes do not match its shape and format");
  detail::ByteWriter out(st.total_bytes);
  out.raw(reinterpret_cast<const std::uint8_t*>("RQLC"), 4);
  out.u16(kCodebookFormatVersion);
  out.u8(static_cast<std::uint8_t>(f.bits));
  out.u8(static_cast<std::uint8_t>(f.rank));
  out.u32(static_cast<std::uint32_t>(f.group_size));
  out.u8(f.double_quantized ? 1 : 0);
  out.u8(0), out.u8(0), out.u8(0);
  out.u64(q.rows);
  out.u64(q.cols);
  for (float v : q.V) out.f32(v);
  out.raw(q.indices.data(), q.indices.size());
  if (!f.double_quantized) {
    for (float v : q.S) out.f32(v);
    for (float v : q.B) out.f32(v);
  } else {
    for (float v : q.S_scale) out.f32(v);
    for (float v : q.B_scale) out.f32(v);
    for (std::int8_t v : q.S_q) out.u8(static_cast<std::uint8_t>(v));
    for (std::int8_t v : q.B_q) out.u8(static_cast<std::uint8_t>(v));
  }
  return out.take();
}

/// Parses and validates a serialized CodebookWeights. Throws rankq::format_error for anything malformed: bad
/// magic/version/flags, unsupported bits/rank/group, sizes that do not add up, non-finite or negative scales,
/// an int8 of -128, non-zero indices in the padding.
inline CodebookWeights deserialize_codebook(const std::uint8_t* data, std::size_t size) {
  if (data == nullptr && size != 0) detail::throw_argument("deserialize_codebook", "data", "is a null pointer");
  detail::ByteReader in(data, size);
  const std::uint8_t* magic = in.raw(4, "magic");
  if (std::memcmp(magic, "RQLC", 4) != 0) detail::throw_format("bad magic (expected \"RQLC\")");
  const auto version = in.le(2, "version");
  if (version != kCodebookFormatVersion) detail::throw_format("unsupported version " + std::to_string(version));
  CodebookFormat f;
  f.bits = static_cast<unsigned>(in.le(1, "bits"));
  f.rank = static_cast<unsigned>(in.le(1, "rank"));
  f.group_size = static_cast<std::size_t>(in.le(4, "group_size"));
  const auto flags = in.le(1, "flags");
  const auto reserved = in.le(3, "reserved");
  if (flags > 1) detail::throw_format("unknown flags " + std::to_string(flags));
  if (reserved != 0) detail::throw_format("reserved header bytes are not zero");
  f.double_quantized = flags == 1;
  try {
    detail::check_codebook_format(f, "deserialize_codebook", "header");
  } catch (const invalid_argument& e) {
    detail::throw_format(std::string("bad header: ") + e.what());
  }
  const std::uint64_t N = in.le(8, "rows"), K = in.le(8, "cols");
  constexpr std::uint64_t kMaxDim = std::uint64_t(1) << 31;
  if (N == 0 || K == 0 || N > kMaxDim || K > kMaxDim)
    detail::throw_format("shape " + std::to_string(N) + "x" + std::to_string(K) + " is empty or too large");
  const CodebookStorage st = codebook_storage(f, static_cast<std::size_t>(N), static_cast<std::size_t>(K));
  if (st.total_bytes != size)
    detail::throw_format("size is " + std::to_string(size) + " bytes, the header implies " +
                         std::to_string(st.total_bytes));
  CodebookWeights q = make_codebook_weights(f, static_cast<std::size_t>(N), static_cast<std::size_t>(K));
  for (float& v : q.V) v = detail::finite_f32(in, "V");
  std::memcpy(q.indices.data(), in.raw(q.indices.size(), "indices"), q.indices.size());
  for (std::size_t n = 0; n < q.rows; ++n)
    for (std::size_t c = q.cols; c < q.padded; ++c)
      if (q.index(n, c) != 0)
        detail::throw_format("index of padded column " + std::to_string(c) + " in row " + std::to_string(n) +
                             " is not 0");
  if (!f.double_quantized) {
    for (float& v : q.S) v = detail::finite_f32(in, "S");
    for (float& v : q.B) v = detail::finite_f32(in, "B");
  } else {
    for (float& v : q.S_scale) v = detail::finite_f32(in, "S_scale");
    for (float& v : q.B_scale) v = detail::finite_f32(in, "B_scale");
    for (float v : q.S_scale)
      if (v < 0.0f) detail::throw_format("S_scale has a negative value");
    for (float v : q.B_scale)
      if (v < 0.0f) detail::throw_format("B_scale has a negative value");
    const std::uint8_t* sq = in.raw(q.S_q.size(), "S_q");
    const std::uint8_t* bq = in.raw(q.B_q.size(), "B_q");
    std::memcpy(q.S_q.data(), sq, q.S_q.size());
    std::memcpy(q.B_q.data(), bq, q.B_q.size());
    for (std::int8_t v : q.S_q)
      if (v == -128) detail::throw_format("S_q holds -128 (the symmetric range is [-127, 127])");
    for (std::int8_t v : q.B_q)
      if (v == -128) detail::throw_format("B_q holds -128 (the symmetric range is [-127, 127])");
    for (std::size_t n = 0; n < q.rows; ++n)
      for (std::size_t g = 0; g < q.groups; ++g) {
        const std::size_t i = n * q.groups + g;
        for (unsigned r = 0; r < f.rank; ++r)
          q.S[i * f.rank + r] = static_cast<float>(q.S_q[i * f.rank + r]) * q.S_scale[n * f.rank + r];
        q.B[i] = static_cast<float>(q.B_q[i]) * q.B_scale[n];
      }
  }
  if (in.remaining() != 0) detail::throw_format("trailing bytes");
  return q;
}

inline CodebookWeights deserialize_codebook(const std::vector<std::uint8_t>& bytes) {
  return deserialize_codebook(bytes.data(), bytes.size());
}

RANKQ_NAMESPACE_END  // namespace rankq
