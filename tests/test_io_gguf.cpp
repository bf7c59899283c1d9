// Tests for rankq/io/gguf.hpp and rankq/io/gguf_file.hpp: the real GGUF v1 file, synthetic v1/v2/v3 files built
// in memory (every value type, tensor types, alignment), the llama mapping, the vocabulary, corrupted inputs.
#include "rankq/io/gguf.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "rankq/io/llama2c.hpp"
#include "test_data.hpp"
#include "test_util.hpp"

namespace {

using rankq::io::GgufFile;
using rankq_test::data_path;
using rankq::io::GgufType;

using test::expect_format_error;


GgufFile parse(const std::vector<std::uint8_t>& b) { return rankq::io::parse_gguf(b.data(), b.size()); }

/// Builds GGUF files byte by byte, independently of the parser.
struct Builder {
  std::uint32_t version;
  std::uint64_t alignment = 32;
  std::vector<std::uint8_t> kv;
  std::uint64_t n_kv = 0;
  struct Tensor {
    std::string name;
    std::vector<std::uint64_t> ne;
    std::uint32_t type;
    std::vector<std::uint8_t> data;
    std::int64_t offset = -1;  // -1: next aligned offset
  };
  std::vector<Tensor> tensors;
  std::vector<std::size_t> boundaries;  // section ends in the last build()

  explicit Builder(std::uint32_t v) : version(v) {}
  static void put(std::vector<std::uint8_t>& b, std::uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  }
  void len(std::vector<std::uint8_t>& b, std::uint64_t n) const { put(b, n, version == 1 ? 4 : 8); }
  void str(std::vector<std::uint8_t>& b, const std::string& s) const {
    len(b, s.size());
    b.insert(b.end(), s.begin(), s.end());
  }
  /// Appends a key and type; the caller appends the value to `kv`.
  void key(const std::string& k, GgufType t) {
    str(kv, k);
    put(kv, static_cast<std::uint32_t>(t), 4);
    ++n_kv;
  }
  void u32(const std::string& k, std::uint32_t v) {
    key(k, GgufType::uint32);
    put(kv, v, 4);
  }
  void f32(const std::string& k, float v) {
    key(k, GgufType::float32);
    put(kv, rankq::float_bits(v), 4);
  }
  void string(const std::string& k, const std::string& v) {
    key(k, GgufType::string);
    str(kv, v);
  }
  void strings(const std::string& k, const std::vector<std::string>& v) {
    key(k, GgufType::array);
    put(kv, static_cast<std::uint32_t>(GgufType::string), 4);
    len(kv, v.size());
    for (const auto& s : v) str(kv, s);
  }
  void floats(const std::string& k, const std::vector<float>& v) {
    key(k, GgufType::array);
    put(kv, static_cast<std::uint32_t>(GgufType::float32), 4);
    len(kv, v.size());
    for (float f : v) put(kv, rankq::float_bits(f), 4);
  }
  void tensor(const std::string& name, std::vector<std::uint64_t> ne, std::uint32_t type, std::vector<std::uint8_t> data) {
    tensors.push_back({name, std::move(ne), type, std::move(data)});
  }
  void f32_tensor(const std::string& name, std::vector<std::uint64_t> ne, const std::vector<float>& v) {
    std::vector<std::uint8_t> d;
    for (float f : v) put(d, rankq::float_bits(f), 4);
    tensor(name, std::move(ne), 0, std::move(d));
  }
  std::vector<std::uint8_t> build() {
    std::vector<std::uint8_t> b = {'G', 'G', 'U', 'F'};
    boundaries.clear();
    put(b, version, 4);
    len(b, tensors.size());
    len(b, n_kv);
    boundaries.push_back(b.size());
    b.insert(b.end(), kv.begin(), kv.end());
    boundaries.push_back(b.size());
    std::uint64_t offset = 0;
    std::vector<std::uint64_t> offsets;
    for (const Tensor& t : tensors) {
      str(b, t.name);
      put(b, t.ne.size(), 4);
      for (auto n : t.ne) put(b, n, version == 1 ? 4 : 8);
      put(b, t.type, 4);
      const std::uint64_t o = t.offset >= 0 ? static_cast<std::uint64_t>(t.offset) : offset;
      put(b, o, 8);
      offsets.push_back(o);
      offset = (std::max(offset, o + t.data.size()) + alignment - 1) / alignment * alignment;
      boundaries.push_back(b.size());
    }
    const std::size_t data_start = (b.size() + alignment - 1) / alignment * alignment;
    std::size_t end = data_start;
    for (std::size_t i = 0; i < tensors.size(); ++i) end = std::max<std::size_t>(end, data_start + offsets[i] + tensors[i].data.size());
    if (!tensors.empty()) b.resize(end, 0);
    for (std::size_t i = 0; i < tensors.size(); ++i) {
      if (!tensors[i].data.empty())
        std::memcpy(b.data() + data_start + offsets[i], tensors[i].data.data(), tensors[i].data.size());
      boundaries.push_back(data_start + offsets[i] + tensors[i].data.size());
    }
    return b;
  }
};

TEST(IoGguf, RealFileStructure) {
  RANKQ_REQUIRE_DATA("tinyllamas-stories-260k-f32.gguf");
  const GgufFile g = rankq::io::read_gguf(data_path("tinyllamas-stories-260k-f32.gguf"));
  EXPECT_EQ(g.version(), 1u);
  EXPECT_EQ(g.alignment(), 32u);
  EXPECT_EQ(g.metadata().size(), 18u);
  ASSERT_EQ(g.tensors().size(), 48u);
  EXPECT_EQ(g.metadata()[0].key(), "general.architecture");
  EXPECT_EQ(g.get_string("general.architecture"), "llama");
  EXPECT_EQ(g.get("llama.context_length").type(), GgufType::uint32);
  EXPECT_EQ(g.get_int("llama.context_length"), 512);
  EXPECT_EQ(g.get_uint("llama.feed_forward_length"), 172u);
  EXPECT_EQ(static_cast<float>(g.get_float("llama.attention.layer_norm_rms_epsilon")), 1e-5f);
  EXPECT_EQ(g.get("tokenizer.ggml.token_type").as_int_array().size(), 512u);
  const auto& q = g.tensor("blk.0.attn_k.weight");
  EXPECT_EQ(q.ne, (std::vector<std::uint64_t>{64, 32}));
  EXPECT_EQ(q.shape(), (std::vector<std::uint64_t>{32, 64}));
  EXPECT_STREQ(q.type_name(), "F32");
  EXPECT_EQ(q.n_bytes, 32u * 64u * 4u);
  EXPECT_EQ(g.tensors().back().name, "output.weight");
  EXPECT_EQ(g.tensor_floats("output.weight"), g.tensor_floats("token_embd.weight"));
  const auto raw = g.tensor_raw("blk.3.ffn_down.weight");
  EXPECT_EQ(raw.dtype, rankq::io::DType::f32);
  EXPECT_EQ(raw.shape, (std::vector<std::uint64_t>{64, 172}));
  expect_format_error([&] { g.get("llama.rope.freq_base"); }, "missing metadata key 'llama.rope.freq_base'");
  expect_format_error([&] { g.tensor("rope_freqs.weight"); }, "missing tensor 'rope_freqs.weight'");
}

TEST(IoGguf, RealFileLlamaModelAndVocab) {
  RANKQ_REQUIRE_DATA("tinyllamas-stories-260k-f32.gguf", "tok512.bin");
  const GgufFile g = rankq::io::read_gguf(data_path("tinyllamas-stories-260k-f32.gguf"));
  const auto m = rankq::io::load_llama_gguf(g);
  EXPECT_EQ(m.config.dim, 64);
  EXPECT_EQ(m.config.hidden_dim, 172);
  EXPECT_EQ(m.config.n_layers, 5);
  EXPECT_EQ(m.config.n_heads, 8);
  EXPECT_EQ(m.config.n_kv_heads, 4);
  EXPECT_EQ(m.config.vocab_size, 512);
  EXPECT_EQ(m.config.seq_len, 512);
  EXPECT_EQ(m.config.norm_eps, 1e-5f);
  EXPECT_EQ(m.config.rope_theta, 10000.f);
  EXPECT_EQ(m.tensors.size(), 48u);
  const auto v = rankq::io::gguf_vocab(g);
  ASSERT_EQ(v.tokens.size(), 512u);
  ASSERT_EQ(v.scores.size(), 512u);
  EXPECT_EQ(v.tokens[0], "<unk>");
  EXPECT_EQ(v.tokens[1], "<s>");
  EXPECT_EQ(v.tokens[2], "</s>");
  EXPECT_EQ(v.tokens[3], "<0x00>");
  EXPECT_EQ(v.bos, 1);
  EXPECT_EQ(v.eos, 2);
  // Cross-check with tok512.bin (llama2.c format): same scores, same pieces with U+2581 for spaces (ids >= 3).
  const auto tok = rankq::io::read_file_bytes(data_path("tok512.bin"));
  rankq::io::ByteReader in(tok.data(), tok.size(), "tok512.bin");
  EXPECT_EQ(in.i32("max_token_length"), 7);
  for (std::size_t i = 0; i < 512; ++i) {
    const float score = in.f32("score");
    const auto n = static_cast<std::uint32_t>(in.i32("len"));
    const std::string piece = in.string(n, "piece");
    EXPECT_EQ(rankq::float_bits(score), rankq::float_bits(v.scores[i])) << i;
    if (i < 3) continue;
    std::string expected = v.tokens[i];
    for (std::size_t p; (p = expected.find("\xE2\x96\x81")) != std::string::npos;) expected.replace(p, 3, " ");
    EXPECT_EQ(piece, expected) << "token " << i;
  }
}

/// Ends of every section of the real v1 file's header (fields, each metadata entry, every 64th element of each
/// array, each tensor info), found by a walk independent of the parser (it knows only the types this file uses).
std::vector<std::size_t> real_header_boundaries(const std::vector<std::uint8_t>& raw) {
  rankq::io::ByteReader in(raw.data(), raw.size(), "walk");
  std::vector<std::size_t> ends;
  const auto skip_value = [&](std::uint32_t type) {
    if (type == 8) in.skip(in.u32("len"), "str");
    else if (type == 4 || type == 5 || type == 6) in.skip(4, "scalar");
    else ADD_FAILURE() << "unexpected type " << type;
  };
  in.skip(8, "magic+version");
  ends.push_back(in.pos());
  const std::uint32_t n_tensors = in.u32("n_tensors");
  ends.push_back(in.pos());
  const std::uint32_t n_kv = in.u32("n_kv");
  ends.push_back(in.pos());
  for (std::uint32_t i = 0; i < n_kv; ++i) {
    in.skip(in.u32("key len"), "key");
    ends.push_back(in.pos());
    const std::uint32_t type = in.u32("type");
    ends.push_back(in.pos());
    if (type != 9) {
      skip_value(type);
    } else {
      const std::uint32_t et = in.u32("elem type"), n = in.u32("n");
      ends.push_back(in.pos());
      for (std::uint32_t k = 0; k < n; ++k) {
        skip_value(et);
        if (k % 64 == 0) ends.push_back(in.pos());
      }
    }
    ends.push_back(in.pos());
  }
  for (std::uint32_t i = 0; i < n_tensors; ++i) {
    in.skip(in.u32("name len"), "name");
    ends.push_back(in.pos());
    const std::uint32_t n_dims = in.u32("n_dims");
    in.skip(4 * n_dims + 4 + 8, "ne, type, offset");
    ends.push_back(in.pos());
  }
  return ends;
}

TEST(IoGguf, RealFileTruncatedAtEverySectionBoundary) {
  RANKQ_REQUIRE_DATA("tinyllamas-stories-260k-f32.gguf");
  const auto raw = rankq::io::read_file_bytes(data_path("tinyllamas-stories-260k-f32.gguf"));
  const GgufFile g = parse(raw);
  const auto ends = real_header_boundaries(raw);
  ASSERT_EQ(ends.back(), 11450u);  // header end; data starts at 11456 (aligned to 32)
  std::vector<std::size_t> cuts;
  for (std::size_t n = 0; n < 64; ++n) cuts.push_back(n);
  for (std::size_t e : ends)
    for (std::size_t n : {e - 1, e, e + 1}) cuts.push_back(n);
  for (std::size_t n = 11450; n < 11456 + 8; ++n) cuts.push_back(n);
  for (const auto& t : g.tensors())
    for (std::size_t d : {1, 4}) cuts.push_back(11456 + t.offset + t.n_bytes - d);
  for (std::size_t n : cuts)
    EXPECT_THROW(rankq::io::parse_gguf(raw.data(), n), rankq::format_error) << "prefix of " << n << " bytes";
  for (const auto& t : g.tensors()) {
    const std::size_t n = 11456 + t.offset + t.n_bytes - 1;
    expect_format_error([&] { rankq::io::parse_gguf(raw.data(), n); }, "tensor '" + t.name + "' data");
  }
  EXPECT_NO_THROW(parse(raw));
}

Builder sample(std::uint32_t version) {
  Builder b(version);
  b.key("u8", GgufType::uint8), Builder::put(b.kv, 200, 1);
  b.key("i8", GgufType::int8), Builder::put(b.kv, 0x80, 1);
  b.key("u16", GgufType::uint16), Builder::put(b.kv, 65535, 2);
  b.key("i16", GgufType::int16), Builder::put(b.kv, 0xFFFE, 2);
  b.u32("u32", 4000000000u);
  b.key("i32", GgufType::int32), Builder::put(b.kv, static_cast<std::uint32_t>(-7), 4);
  b.f32("f32", 0.375f);
  b.key("bool", GgufType::boolean), Builder::put(b.kv, 1, 1);
  b.string("str", "h\xC3\xA9llo");
  b.key("u64", GgufType::uint64), Builder::put(b.kv, ~0ull, 8);
  b.key("i64", GgufType::int64), Builder::put(b.kv, static_cast<std::uint64_t>(-5), 8);
  b.key("f64", GgufType::float64), Builder::put(b.kv, 0x3FF8000000000000ull, 8);  // 1.5
  b.strings("strs", {"a", "", "ccc"});
  b.floats("floats", {1.f, -2.f});
  b.key("i16s", GgufType::array), Builder::put(b.kv, 3, 4), b.len(b.kv, 2), Builder::put(b.kv, 0xFFFF, 2), Builder::put(b.kv, 9, 2);
  b.key("bools", GgufType::array), Builder::put(b.kv, 7, 4), b.len(b.kv, 2), Builder::put(b.kv, 0, 1), Builder::put(b.kv, 1, 1);
  // [[1, 2], []] as int32 arrays
  b.key("nested", GgufType::array), Builder::put(b.kv, 9, 4), b.len(b.kv, 2);
  Builder::put(b.kv, 5, 4), b.len(b.kv, 2), Builder::put(b.kv, 1, 4), Builder::put(b.kv, 2, 4);
  Builder::put(b.kv, 5, 4), b.len(b.kv, 0);
  b.f32_tensor("f32", {3, 2}, {1, 2, 3, 4, 5, 6});
  b.tensor("f16", {2}, 1, {0x00, 0x3C, 0x00, 0xC0});           // 1, -2
  b.tensor("bf16", {1, 2}, 30, {0x80, 0x3F, 0x40, 0x40});      // 1, 3
  b.tensor("q4_0", {32}, 2, std::vector<std::uint8_t>(18, 1));  // one block
  b.tensor("i32", {2}, 26, {1, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF});
  b.tensor("removed_type", {4}, 4, {});                         // Q4_2: unknown size, data not readable
  b.tensor("empty", {0, 3}, 0, {});
  return b;
}

TEST(IoGguf, SyntheticAllValueTypesV1V2V3) {
  for (std::uint32_t version : {1u, 2u, 3u}) {
    SCOPED_TRACE("version " + std::to_string(version));
    Builder b = sample(version);
    const GgufFile g = parse(b.build());
    EXPECT_EQ(g.version(), version);
    EXPECT_EQ(g.metadata().size(), 17u);
    EXPECT_EQ(g.get_uint("u8"), 200u);
    EXPECT_EQ(g.get_int("i8"), -128);
    EXPECT_EQ(g.get_uint("u16"), 65535u);
    EXPECT_EQ(g.get_int("i16"), -2);
    EXPECT_EQ(g.get_int("u32"), 4000000000ll);
    EXPECT_EQ(g.get_int("i32"), -7);
    EXPECT_EQ(g.get_float("f32"), 0.375);
    EXPECT_TRUE(g.get_bool("bool"));
    EXPECT_EQ(g.get_string("str"), "h\xC3\xA9llo");
    EXPECT_EQ(g.get_uint("u64"), ~0ull);
    EXPECT_EQ(g.get_int("i64"), -5);
    EXPECT_EQ(g.get_float("f64"), 1.5);
    EXPECT_EQ(g.get("strs").as_string_array(), (std::vector<std::string>{"a", "", "ccc"}));
    EXPECT_EQ(g.get("strs").element_type(), GgufType::string);
    EXPECT_EQ(g.get("floats").as_float_array(), (std::vector<float>{1.f, -2.f}));
    EXPECT_EQ(g.get("i16s").as_int_array(), (std::vector<std::int64_t>{-1, 9}));
    EXPECT_EQ(g.get("bools").as_bool_array(), (std::vector<bool>{false, true}));
    expect_format_error([&] { g.get("bools").as_int_array(); }, "is an array of bool, expected an array of integers");
    const auto& nested = g.get("nested").as_array_array();
    ASSERT_EQ(nested.size(), 2u);
    EXPECT_EQ(nested[0].as_int_array(), (std::vector<std::int64_t>{1, 2}));
    EXPECT_EQ(nested[1].size(), 0u);
    EXPECT_EQ(nested[1].key(), "nested[1]");
    EXPECT_EQ(g.tensor_floats("f32"), (std::vector<float>{1, 2, 3, 4, 5, 6}));
    EXPECT_EQ(g.tensor("f32").shape(), (std::vector<std::uint64_t>{2, 3}));
    EXPECT_EQ(g.tensor_floats("f16"), (std::vector<float>{1, -2}));
    EXPECT_EQ(g.tensor_floats("bf16"), (std::vector<float>{1, 3}));
    EXPECT_EQ(g.tensor("q4_0").n_bytes, 18u);
    EXPECT_EQ(g.tensor("q4_0").offset % 32, 0u);
    expect_format_error([&] { g.tensor_floats("q4_0"); }, "tensor 'q4_0' has ggml type Q4_0 (2)");
    expect_format_error([&] { g.tensor_raw("q4_0"); }, "Q4_0");
    EXPECT_FALSE(g.tensor("removed_type").size_known);
    expect_format_error([&] { g.tensor_raw("removed_type"); }, "unknown (4)");
    const auto i32 = g.tensor_raw("i32");
    EXPECT_EQ(i32.dtype, rankq::io::DType::i32);
    EXPECT_EQ(i32.bytes, (std::vector<std::uint8_t>{1, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF}));
    EXPECT_TRUE(g.tensor_floats("empty").empty());
    // Typed accessors name the key when the type does not fit.
    expect_format_error([&] { g.get_string("u32"); }, "metadata 'u32': is uint32, expected a string");
    expect_format_error([&] { g.get_uint("i32"); }, "'i32': = -7 is negative");
    expect_format_error([&] { g.get_int("u64"); }, "does not fit int64");
    expect_format_error([&] { g.get_float("str"); }, "expected a float");
    expect_format_error([&] { g.get("u8").size(); }, "expected an array");
    expect_format_error([&] { g.get("strs").as_float_array(); }, "is an array of string, expected an array of floats");
    expect_format_error([&] { g.get("nested").as_string_array(); }, "array of array");
  }
}

TEST(IoGguf, EveryTruncationOfSyntheticFilesFails) {
  for (std::uint32_t version : {1u, 2u, 3u}) {
    Builder b = sample(version);
    const auto bytes = b.build();
    for (std::size_t n = 0; n < bytes.size(); ++n)
      EXPECT_THROW(rankq::io::parse_gguf(bytes.data(), n), rankq::format_error) << "v" << version << " prefix " << n;
    for (std::size_t n : b.boundaries)
      if (n < bytes.size()) {
        EXPECT_THROW(rankq::io::parse_gguf(bytes.data(), n), rankq::format_error);
      }
  }
  Builder empty(3);  // no tensors: the file may end right after the metadata
  empty.u32("a", 1);
  const auto e = empty.build();
  EXPECT_EQ(parse(e).tensors().size(), 0u);
}

TEST(IoGguf, CustomAlignment) {
  Builder b(3);
  b.alignment = 64;
  b.u32("general.alignment", 64);
  b.f32_tensor("a", {3}, {1, 2, 3});
  b.f32_tensor("b", {2}, {4, 5});
  const GgufFile g = parse(b.build());
  EXPECT_EQ(g.alignment(), 64u);
  EXPECT_EQ(g.tensor("b").offset, 64u);
  EXPECT_EQ(g.tensor_floats("b"), (std::vector<float>{4, 5}));
  for (std::uint32_t bad : {0u, 3u, 48u}) {
    Builder c(3);
    c.u32("general.alignment", bad);
    expect_format_error([&] { parse(c.build()); }, "general.alignment': = " + std::to_string(bad) + ": must be a power of two");
  }
  Builder s(3);
  s.string("general.alignment", "32");
  expect_format_error([&] { parse(s.build()); }, "is string, expected uint32");
}

/// Parses `bytes` after `patch` and expects a format_error mentioning `needle`.
void expect_bad(std::vector<std::uint8_t> bytes, const std::function<void(std::vector<std::uint8_t>&)>& patch,
                const std::string& needle) {
  patch(bytes);
  expect_format_error([&] { parse(bytes); }, needle);
}

TEST(IoGguf, MalformedHeadersAreRejected) {
  Builder b(2);
  b.u32("k", 1);
  b.f32_tensor("t", {2}, {1, 2});
  const auto good = b.build();
  const auto set64 = [](std::size_t at, std::uint64_t v) {
    return [=](std::vector<std::uint8_t>& x) { for (int i = 0; i < 8; ++i) x[at + i] = static_cast<std::uint8_t>(v >> (8 * i)); };
  };
  expect_bad(good, [](auto& x) { x[0] = 'X'; }, "magic: is 'XGUF', expected 'GGUF'");
  expect_bad(good, [](auto& x) { x[4] = 0; }, "only versions 1, 2 and 3");
  expect_bad(good, [](auto& x) { x[4] = 4; }, "version: is 4");
  expect_bad(good, [](auto& x) { x[4] = 0, x[7] = 2; }, "big-endian");
  expect_bad(good, set64(8, 1ull << 62), "tensor count: count 4611686018427387904 is impossible");
  expect_bad(good, set64(16, ~0ull), "metadata count: count");
  expect_bad(good, set64(24, 1ull << 40), "metadata #0 key");                // key length
  expect_bad(good, set64(24, 0), "metadata #0 key: is empty");
  expect_bad(good, [](auto& x) { x[32] = 0xFF; }, "not valid UTF-8");        // the key 'k'
  expect_bad(good, [](auto& x) { x[33] = 13; }, "unknown value type 13");
  expect_bad(good, [](auto& x) { x[33] = 7, x[37] = 2; }, "bool value is 2, must be 0 or 1");
  const std::size_t info = 41;                                               // after kv: name length
  expect_bad(good, [&](auto& x) { x[info + 8] = 0xC0; }, "tensor info #0 name: '\\xc0' is not valid UTF-8");
  expect_bad(good, set64(info, 1ull << 50), "tensor info #0 name");
  expect_bad(good, [&](auto& x) { x[info + 9] = 5; }, "n_dims: = 5, at most 4");
  expect_bad(good, set64(info + 13, 1ull << 63), "ne[0]");
  expect_bad(good, [&](auto& x) { x[info + 21] = 2; }, "not a multiple of the block size 32 of type Q4_0");
  expect_bad(good, set64(info + 25, 8), "offset: = 8 is not a multiple of the alignment 32");
  expect_bad(good, set64(info + 25, 32), "past the end");
  expect_bad(good, set64(info + 25, ~0ull - 31), "past the end");
}

TEST(IoGguf, MalformedStructuresAreRejected) {
  {
    Builder b(3);
    b.u32("a", 1);
    b.u32("a", 2);
    expect_format_error([&] { parse(b.build()); }, "duplicate key 'a'");
  }
  {
    Builder b(3);
    b.f32_tensor("t", {1}, {1});
    b.f32_tensor("t", {1}, {1});
    expect_format_error([&] { parse(b.build()); }, "duplicate tensor name 't'");
  }
  {
    Builder b(3);
    b.f32_tensor("a", {16}, std::vector<float>(16, 1.f));
    b.f32_tensor("b", {4}, {1, 2, 3, 4});
    b.tensors[1].offset = 32;  // inside a's 64 bytes
    expect_format_error([&] { parse(b.build()); }, "tensor 'b' data: bytes [32, 48) overlap tensor 'a' at [0, 64)");
  }
  {
    Builder b(3);
    b.tensor("huge", {1ull << 32, 1ull << 32}, 0, {});
    expect_format_error([&] { parse(b.build()); }, "element count overflows");
  }
  {
    Builder b(1);
    b.key("arr", GgufType::array), Builder::put(b.kv, 5, 4), b.len(b.kv, 0xFFFFFFFFu);
    expect_format_error([&] { parse(b.build()); }, "'arr') value array length: count 4294967295 is impossible");
  }
  {
    Builder b(3);
    b.key("arr", GgufType::array), Builder::put(b.kv, 99, 4);
    expect_format_error([&] { parse(b.build()); }, "array element type: unknown value type 99");
  }
  for (int levels : {8, 9}) {  // arrays nested 8 deep parse, 9 deep are rejected
    Builder b(3);
    b.key("deep", GgufType::array);
    for (int l = 1; l < levels; ++l) Builder::put(b.kv, 9, 4), b.len(b.kv, 1);
    Builder::put(b.kv, 4, 4), b.len(b.kv, 1), Builder::put(b.kv, 42, 4);
    if (levels == 8) {
      const GgufFile g = parse(b.build());
      const rankq::io::GgufValue* v = &g.get("deep");
      for (int l = 1; l < levels; ++l) v = &v->as_array_array()[0];
      EXPECT_EQ(v->as_int_array(), std::vector<std::int64_t>{42});
    } else {
      expect_format_error([&] { parse(b.build()); }, "nested deeper than 8");
    }
  }
}

/// A tiny llama GGUF (dim 8, hidden 12, 2 layers, 2 heads, 1 kv head, vocab 5), values 0.25 * i - 3 in llama2.c
/// file order, so it must load exactly like the matching llama2.c checkpoint.
Builder tiny_llama(std::uint32_t version, bool with_output = true, bool with_kv_heads = true, std::uint32_t heads = 2,
                   std::uint32_t rope_dim = 4) {
  Builder b(version);
  b.string("general.architecture", "llama");
  b.u32("llama.embedding_length", 8);
  b.u32("llama.feed_forward_length", 12);
  b.u32("llama.block_count", 2);
  b.u32("llama.attention.head_count", heads);
  if (with_kv_heads) b.u32("llama.attention.head_count_kv", 1);
  b.u32("llama.context_length", 3);
  b.u32("llama.rope.dimension_count", rope_dim);
  b.f32("llama.attention.layer_norm_rms_epsilon", 1e-6f);
  b.f32("llama.rope.freq_base", 500000.f);
  b.strings("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "a", "b"});
  b.u32("tokenizer.ggml.bos_token_id", 1);
  std::size_t i = 0;
  const auto run = [&](const std::string& name, std::uint64_t rows, std::uint64_t cols) {
    std::vector<float> v;
    for (std::uint64_t k = 0; k < rows * cols; ++k, ++i) v.push_back(0.25f * static_cast<float>(i) - 3.f);
    b.f32_tensor(name, rows == 1 ? std::vector<std::uint64_t>{cols} : std::vector<std::uint64_t>{cols, rows}, v);
  };
  const std::uint64_t kv = with_kv_heads ? 4 : 8;
  run("token_embd.weight", 5, 8);
  const std::pair<const char*, std::pair<std::uint64_t, std::uint64_t>> kinds[] = {
      {"attn_norm", {1, 8}}, {"attn_q", {8, 8}},      {"attn_k", {kv, 8}},     {"attn_v", {kv, 8}},    {"attn_output", {8, 8}},
      {"ffn_norm", {1, 8}},  {"ffn_gate", {12, 8}},   {"ffn_down", {8, 12}},   {"ffn_up", {12, 8}}};
  for (const auto& [kind, rc] : kinds)
    for (int l = 0; l < 2; ++l) run("blk." + std::to_string(l) + "." + kind + ".weight", rc.first, rc.second);
  run("output_norm.weight", 1, 8);
  i += 3 * 2 * 2;  // llama2.c's freq_cis
  if (with_output) run("output.weight", 5, 8);
  return b;
}

TEST(IoGguf, LoadLlamaMapsConfigAndMatchesLlama2c) {
  for (std::uint32_t version : {1u, 2u, 3u}) {
    Builder b = tiny_llama(version);
    const auto m = rankq::io::load_llama_gguf(parse(b.build()));
    EXPECT_EQ(m.config.dim, 8);
    EXPECT_EQ(m.config.hidden_dim, 12);
    EXPECT_EQ(m.config.n_layers, 2);
    EXPECT_EQ(m.config.n_heads, 2);
    EXPECT_EQ(m.config.n_kv_heads, 1);
    EXPECT_EQ(m.config.vocab_size, 5);
    EXPECT_EQ(m.config.seq_len, 3);
    EXPECT_EQ(m.config.norm_eps, 1e-6f);
    EXPECT_EQ(m.config.rope_theta, 500000.f);
    EXPECT_EQ(m.at("blk.1.attn_k.weight").shape, (std::vector<std::uint64_t>{4, 8}));
    EXPECT_EQ(m.at("blk.0.ffn_down.weight").shape, (std::vector<std::uint64_t>{8, 12}));
    // The same values as a llama2.c file with a separate classifier.
    std::vector<std::uint8_t> c;
    for (std::int32_t h : {8, 12, 2, 2, 1, -5, 3}) Builder::put(c, static_cast<std::uint32_t>(h), 4);
    const std::size_t n = 5 * 8 + 2 * (2 * 8 + 2 * 64 + 2 * 32 + 3 * 96) + 8 + 12 + 40;
    for (std::size_t i = 0; i < n; ++i) Builder::put(c, rankq::float_bits(0.25f * static_cast<float>(i) - 3.f), 4);
    const auto ref = rankq::io::parse_llama2c(c.data(), c.size());
    ASSERT_EQ(ref.tensors.size(), m.tensors.size());
    for (const auto& [name, t] : ref.tensors) {
      EXPECT_EQ(m.at(name).shape, t.shape) << name;
      EXPECT_EQ(m.at(name).data, t.data) << name;
    }
    const auto v = rankq::io::gguf_vocab(parse(b.build()));
    EXPECT_EQ(v.tokens.size(), 5u);
    EXPECT_EQ(v.scores, std::vector<float>(5, 0.f));
    EXPECT_EQ(v.bos, 1);
    EXPECT_EQ(v.eos, -1);
  }
  Builder shared = tiny_llama(3, /*with_output=*/false, /*with_kv_heads=*/false);  // defaults
  const auto m = rankq::io::load_llama_gguf(parse(shared.build()));
  EXPECT_EQ(m.config.n_kv_heads, 2);
  EXPECT_EQ(m.at("output.weight").data, m.at("token_embd.weight").data);
}

TEST(IoGguf, LoadLlamaRejectsInconsistentFiles) {
  const auto load = [](Builder b) { return rankq::io::load_llama_gguf(parse(b.build())); };
  Builder arch = tiny_llama(3);
  arch.kv.clear(), arch.n_kv = 0, arch.string("general.architecture", "gpt2");
  expect_format_error([&] { load(arch); }, "general.architecture' = 'gpt2', expected 'llama'");
  Builder missing = tiny_llama(3);
  missing.tensors.erase(missing.tensors.begin() + 3);
  expect_format_error([&] { load(missing); }, "missing tensor 'blk.0.attn_q.weight'");
  Builder shape = tiny_llama(3);
  shape.tensors[5].ne = {8, 4, 2};
  shape.tensors[5].data.resize(8 * 4 * 2 * 4);
  expect_format_error([&] { load(shape); }, "tensor 'blk.0.attn_k.weight' has shape [2][4][8]");
  Builder quant = tiny_llama(3);
  quant.tensors[4] = {"blk.1.attn_q.weight", {32, 2}, 2, std::vector<std::uint8_t>(36, 0)};
  expect_format_error([&] { load(quant); }, "has shape [2][32]");
  quant.tensors[4] = {"blk.1.attn_q.weight", {8, 8}, 24, std::vector<std::uint8_t>(64, 0)};  // I8
  expect_format_error([&] { load(quant); }, "ggml type I8 (24): only F32, F16 and BF16 convert to float");
  expect_format_error([&] { load(tiny_llama(3, true, true, 2, 2)); }, "rope.dimension_count' = 2 differs from the head size 4");
  expect_format_error([&] { load(tiny_llama(3, true, true, 3)); }, "dim = 8 is not a multiple of n_heads = 3");
  expect_format_error([&] { load(tiny_llama(3, true, true, 0)); }, "head_count' = 0: must be in [1, 2^31)");
  Builder no_vocab(3);
  no_vocab.u32("x", 1);
  expect_format_error([&] { rankq::io::gguf_vocab(parse(no_vocab.build())); }, "missing metadata key 'tokenizer.ggml.tokens'");
  Builder bad_scores = tiny_llama(3);
  bad_scores.floats("tokenizer.ggml.scores", {1.f});
  expect_format_error([&] { rankq::io::gguf_vocab(parse(bad_scores.build())); }, "has 1 entries but there are 5 tokens");
  Builder bad_eos = tiny_llama(3);
  bad_eos.u32("tokenizer.ggml.eos_token_id", 5);
  expect_format_error([&] { rankq::io::gguf_vocab(parse(bad_eos.build())); }, "eos_token_id' = 5 is not a token id");
  EXPECT_THROW(rankq::io::read_gguf("/nonexistent/missing.gguf"), rankq::io::io_error);
  test::expect_invalid([] { rankq::io::parse_gguf(nullptr, 1); }, "data");
}

}  // namespace

TEST(IoGguf, MappedFilesOnDiskKeepTheChecks) {  // read_gguf maps the file; the GgufFile keeps the mapping
  const auto bytes = sample(3).build();
  const std::string path = (std::filesystem::temp_directory_path() / ("rankq_test_gguf_" + std::to_string(::getpid()) + ".gguf")).string();
  rankq::io::write_file_atomic(path, bytes);
  const GgufFile from_memory = parse(bytes);
  GgufFile from_disk = rankq::io::read_gguf(path);
  std::filesystem::remove(path);  // the mapping outlives the name
  ASSERT_EQ(from_disk.tensors().size(), from_memory.tensors().size());
  for (const auto& t : from_memory.tensors()) {
    if (t.type == 0 || t.type == 1 || t.type == 30) {
      EXPECT_EQ(from_disk.tensor_floats(t.name), from_memory.tensor_floats(t.name)) << t.name;
    }
  }
  for (std::size_t n : {std::size_t{0}, std::size_t{5}, bytes.size() / 2, bytes.size() - 1}) {
    rankq::io::write_file_atomic(path, bytes.data(), n);
    EXPECT_THROW(rankq::io::read_gguf(path), rankq::format_error) << "prefix of " << n << " bytes";
  }
  std::filesystem::remove(path);
}
