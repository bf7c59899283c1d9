// Tests for rankq/io/safetensors.hpp: round trips of every dtype and metadata, deterministic aligned output, the
// atomic writer's failure behaviour, and rejection of every kind of malformed header.
#include "rankq/io/safetensors.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace {

namespace fs = std::filesystem;
using rankq::io::DType;
using rankq::io::RawTensor;
using Tensors = std::map<std::string, RawTensor>;

using test::expect_format_error;

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("rankq_test_io_st_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::size_t count() const { return static_cast<std::size_t>(std::distance(fs::directory_iterator(path), {})); }
};

RawTensor make(DType t, std::vector<std::uint64_t> shape, std::uint8_t seed) {
  RawTensor r{t, std::move(shape), {}};
  r.bytes.resize(static_cast<std::size_t>(r.element_count() * rankq::io::dtype_size(t)));
  for (std::size_t i = 0; i < r.bytes.size(); ++i) r.bytes[i] = static_cast<std::uint8_t>(seed + 37 * i);
  return r;
}

Tensors all_dtypes() {
  Tensors m;
  std::uint8_t seed = 1;
  for (DType t : rankq::io::kAllDTypes) m[std::string("t_") + rankq::io::dtype_name(t)] = make(t, {3, 5}, seed++);
  m["scalar"] = make(DType::f32, {}, 9);
  m["empty"] = make(DType::f16, {0, 7}, 0);
  m["blk.0.attn_q.weight"] = make(DType::bf16, {4, 2, 3}, 5);
  m["\xC3\xA9t\xC3\xA9"] = make(DType::i8, {1}, 6);  // UTF-8 name
  return m;
}

std::vector<std::uint8_t> with_header(const std::string& json, std::size_t data_bytes) {
  std::vector<std::uint8_t> b(8);
  for (int i = 0; i < 8; ++i) b[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(json.size() >> (8 * i));
  b.insert(b.end(), json.begin(), json.end());
  b.resize(b.size() + data_bytes, 0xAB);
  return b;
}

TEST(IoSafetensors, RoundTripEveryDtypeInMemoryAndOnDisk) {
  const Tensors m = all_dtypes();
  const std::map<std::string, std::string> meta = {{"format", "pt"}, {"rankq", "{\"bits\": 4}"}, {"\xE2\x82\xAC", ""}};
  const auto bytes = rankq::io::serialize_safetensors(m, meta);
  std::uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ((8 + n) % 8, 0u) << "data must start 8-byte aligned";
  EXPECT_EQ(bytes[8], '{');
  const auto f = rankq::io::parse_safetensors(bytes.data(), bytes.size());
  EXPECT_EQ(f.metadata, meta);
  ASSERT_EQ(f.tensors.size(), m.size());
  for (const auto& [name, t] : m) {
    const RawTensor& u = f.at(name);
    EXPECT_EQ(u.dtype, t.dtype) << name;
    EXPECT_EQ(u.shape, t.shape) << name;
    EXPECT_EQ(u.bytes, t.bytes) << name;
  }
  EXPECT_EQ(rankq::io::serialize_safetensors(f.tensors, f.metadata), bytes) << "deterministic";
  TempDir dir;
  const std::string p = (dir.path / "m.safetensors").string();
  rankq::io::write_safetensors(p, m, meta);
  EXPECT_EQ(rankq::io::read_file_bytes(p), bytes);
  const auto g = rankq::io::read_safetensors(p);
  EXPECT_EQ(g.metadata, meta);
  EXPECT_EQ(g.tensors.size(), m.size());
  EXPECT_EQ(dir.count(), 1u);
  // No metadata: no __metadata__ key at all; no tensors: a valid (empty) file.
  const auto plain = rankq::io::serialize_safetensors({{"a", make(DType::u8, {2}, 1)}});
  EXPECT_EQ(std::string(plain.begin() + 8, plain.end()).find("__metadata__"), std::string::npos);
  const auto none = rankq::io::serialize_safetensors({});
  EXPECT_TRUE(rankq::io::parse_safetensors(none.data(), none.size()).tensors.empty());
}

TEST(IoSafetensors, FloatHelper) {
  Tensors m;
  m["f32"] = RawTensor{DType::f32, {2}, {0, 0, 0x80, 0x3F, 0, 0, 0, 0xC0}};  // 1, -2
  m["f16"] = RawTensor{DType::f16, {2}, {0x00, 0x3C, 0x00, 0x38}};          // 1, 0.5
  m["bf16"] = RawTensor{DType::bf16, {1}, {0x40, 0x40}};                    // 3
  m["i32"] = make(DType::i32, {1}, 0);
  const auto b = rankq::io::serialize_safetensors(m);
  const auto f = rankq::io::parse_safetensors(b.data(), b.size());
  EXPECT_EQ(f.floats("f32"), (std::vector<float>{1.f, -2.f}));
  EXPECT_EQ(f.floats("f16"), (std::vector<float>{1.f, 0.5f}));
  EXPECT_EQ(f.floats("bf16"), (std::vector<float>{3.f}));
  expect_format_error([&] { f.floats("i32"); }, "tensor 'i32' has dtype I32");
  expect_format_error([&] { f.at("nope"); }, "no tensor named 'nope'");
}

TEST(IoSafetensors, FailedWritesLeaveNoFileAndKeepTheOldOne) {
  TempDir dir;
  const Tensors m = all_dtypes();
  const std::string missing = (dir.path / "no_such_dir" / "m.safetensors").string();
  EXPECT_THROW(rankq::io::write_safetensors(missing, m), rankq::io::io_error);
  EXPECT_FALSE(fs::exists(missing));
  EXPECT_EQ(dir.count(), 0u);
  fs::create_directories(dir.path / "taken" / "x");  // rename onto a non-empty directory fails after the data is written
  EXPECT_THROW(rankq::io::write_safetensors((dir.path / "taken").string(), m), rankq::io::io_error);
  EXPECT_EQ(dir.count(), 1u) << "the temporary file must be removed";
  // Invalid input: nothing is written and an existing file stays as it was.
  const std::string p = (dir.path / "m.safetensors").string();
  rankq::io::write_safetensors(p, m);
  const auto before = rankq::io::read_file_bytes(p);
  Tensors bad = m;
  bad["bad"] = RawTensor{DType::f32, {3}, {1, 2, 3}};
  test::expect_invalid([&] { rankq::io::write_safetensors(p, bad); }, "has 3 bytes but its shape and dtype F32 need 12");
  EXPECT_EQ(rankq::io::read_file_bytes(p), before);
  EXPECT_EQ(dir.count(), 2u);
}

TEST(IoSafetensors, WriterRejectsBadNames) {
  const auto t = make(DType::u8, {1}, 0);
  test::expect_invalid([&] { rankq::io::serialize_safetensors({{"", t}}); }, "names must be non-empty");
  test::expect_invalid([&] { rankq::io::serialize_safetensors({{"__metadata__", t}}); }, "__metadata__");
  test::expect_invalid([&] { rankq::io::serialize_safetensors({{"\xFF", t}}); }, "'\\xff'");
  test::expect_invalid([&] { rankq::io::serialize_safetensors({{"a", t}}, {{"k", "\xC0\xAF"}}); }, "not valid UTF-8");
}

TEST(IoSafetensors, EveryTruncationFails) {
  Tensors m;
  m["a"] = make(DType::f32, {2, 3}, 1);
  m["b"] = make(DType::i64, {2}, 2);
  m["c"] = make(DType::u8, {5}, 3);
  const auto bytes = rankq::io::serialize_safetensors(m, {{"k", "v"}});
  for (std::size_t n = 0; n < bytes.size(); ++n)
    EXPECT_THROW(rankq::io::parse_safetensors(bytes.data(), n), rankq::format_error) << "prefix of " << n << " bytes";
  auto longer = bytes;
  longer.push_back(0);
  expect_format_error([&] { rankq::io::parse_safetensors(longer.data(), longer.size()); },
                      "1 bytes after the last tensor are not described");
}

TEST(IoSafetensors, MalformedFilesAreRejected) {
  const auto bad = [](const std::string& json, std::size_t data, const std::string& needle) {
    const auto b = with_header(json, data);
    expect_format_error([&] { rankq::io::parse_safetensors(b.data(), b.size()); }, needle);
  };
  const std::string a = R"("a":{"dtype":"F32","shape":[2],"data_offsets":)";
  bad("", 0, "safetensors: header");
  bad(R"({"a":1})", 0, "tensor 'a': entry is not a JSON object");
  {
    const auto ok = with_header("{" + a + "[0,8]}}  ", 8);  // trailing spaces are allowed padding
    EXPECT_EQ(rankq::io::parse_safetensors(ok.data(), ok.size()).tensors.size(), 1u);
  }
  bad("{" + a + "[0,8]}", 8, "is not valid JSON");
  bad("[1,2]", 0, "header: is not a JSON object");
  bad("{" + a + "[0,8]}} x", 8, "is not valid JSON");
  bad("{" + a + "[0,8]}}", 4, "past the end of the 4-byte data section");
  bad("{" + a + "[0,12]}}", 12, "span 12 bytes but its 2 elements of F32 need 8");
  bad("{" + a + "[8,0]}}", 8, "are reversed");
  bad("{" + a + "[0]}}", 8, "data_offsets is not [begin, end]");
  bad("{" + a + "[-1,7]}}", 8, "data_offsets is not [begin, end]");
  bad("{" + a + "[0,8]}," + R"("b":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}})", 8, "tensor 'b': data_offsets [4, 8) overlap");
  bad("{" + a + "[4,12]}}", 12, "a gap of 4 unused bytes");
  bad(R"({"a":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}})", 8, "unknown dtype 'F33'");
  bad(R"({"a":{"dtype":"f32","shape":[2],"data_offsets":[0,8]}})", 8, "unknown dtype 'f32'");
  bad(R"({"a":{"dtype":3,"shape":[2],"data_offsets":[0,8]}})", 8, "dtype is not a string");
  bad(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8, "not a non-negative integer: '-2'");
  bad(R"({"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", 8, "not a non-negative integer");
  bad(R"({"a":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})", 8, "shape is not an array");
  bad(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", 8, "byte size overflows");
  bad(R"({"a":{"dtype":"F32","shape":[2]}})", 8, "entry needs \"dtype\", \"shape\" and \"data_offsets\"");
  bad(R"({"a":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8, "duplicate key 'dtype'");
  bad("{" + a + "[0,8]}," + a + "[0,8]}}", 8, "duplicate key 'a'");
  bad(R"({"__metadata__":{"k":1}})", 0, "value of 'k' is not a string");
  bad(R"({"__metadata__":[]})", 0, "__metadata__: is not a JSON object");
  bad(R"({"":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}})", 0, "a tensor has an empty name");
  bad("{\"\xFF\":{}}", 0, "is not valid JSON");  // raw invalid UTF-8 in a name
  bad(R"({"a":{"dtype":"F32","shape":[[2]],"data_offsets":[0,8]}})", 8, "nested deeper");
  bad(std::string(200, '[') + std::string(200, ']'), 0, "nested deeper");
  // Header length larger than the file, and above the 100 MB limit.
  std::vector<std::uint8_t> b = with_header("{}", 0);
  b[0] = 100;
  expect_format_error([&] { rankq::io::parse_safetensors(b.data(), b.size()); }, "header (length 100): truncated");
  b[0] = 0, b[3] = 0x10;  // 268 MB
  expect_format_error([&] { rankq::io::parse_safetensors(b.data(), b.size()); }, "exceeds the 100 MB limit");
  b.assign(8, 0xFF);
  expect_format_error([&] { rankq::io::parse_safetensors(b.data(), b.size()); }, "exceeds the 100 MB limit");
  expect_format_error([&] { rankq::io::parse_safetensors(b.data(), 7); }, "header length: truncated");
  EXPECT_THROW(rankq::io::read_safetensors("/nonexistent/x.safetensors"), rankq::io::io_error);
}

}  // namespace

TEST(IoSafetensors, MappedFilesOnDiskKeepTheChecks) {  // read_safetensors maps the file
  TempDir dir;
  const std::string p = (dir.path / "m.safetensors").string();
  Tensors t;
  t["a"] = RawTensor{DType::f32, {2, 3}, std::vector<std::uint8_t>(24, 7)};
  t["b"] = RawTensor{DType::bf16, {5}, std::vector<std::uint8_t>(10, 9)};
  const auto bytes = rankq::io::serialize_safetensors(t);
  rankq::io::write_file_atomic(p, bytes);
  const auto read = rankq::io::read_safetensors(p);
  EXPECT_EQ(read.at("a").bytes, t["a"].bytes);
  EXPECT_EQ(read.at("b").bytes, t["b"].bytes);
  for (std::size_t n : {std::size_t{0}, std::size_t{7}, std::size_t{20}, bytes.size() - 1}) {
    rankq::io::write_file_atomic(p, bytes.data(), n);
    EXPECT_THROW(rankq::io::read_safetensors(p), rankq::format_error) << "prefix of " << n << " bytes";
  }
}
