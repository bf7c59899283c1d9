// Tests for rankq/io/tensor.hpp: dtypes, RawTensor float conversion, ByteReader bounds checks, checked arithmetic
// and UTF-8 validation (rankq/io/detail/checked.hpp).
#include "rankq/io/tensor.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace {

using rankq::io::ByteReader;
using rankq::io::DType;
using rankq::io::RawTensor;

using test::expect_format_error;

TEST(IoDType, NamesSizesRoundTrip) {
  for (DType t : rankq::io::kAllDTypes) {
    const auto back = rankq::io::dtype_from_name(rankq::io::dtype_name(t));
    ASSERT_TRUE(back.has_value()) << rankq::io::dtype_name(t);
    EXPECT_EQ(*back, t);
  }
  EXPECT_EQ(rankq::io::dtype_size(DType::f32), 4u);
  EXPECT_EQ(rankq::io::dtype_size(DType::bf16), 2u);
  EXPECT_EQ(rankq::io::dtype_size(DType::i64), 8u);
  EXPECT_EQ(rankq::io::dtype_size(DType::boolean), 1u);
  EXPECT_FALSE(rankq::io::dtype_from_name("f32").has_value());  // case-sensitive, as in the safetensors spec
  EXPECT_FALSE(rankq::io::dtype_from_name("Q4_0").has_value());
}

TEST(IoRawTensor, ToFloatF32F16Bf16Exact) {
  const std::vector<float> values = {0.f, -0.f, 1.f, -2.5f, 65504.f, 6.1035156e-05f, 5.9604645e-08f, 3.0e38f,
                                     std::numeric_limits<float>::infinity()};
  RawTensor f32{DType::f32, {3, 3}, {}}, f16{DType::f16, {9}, {}}, bf16{DType::bf16, {9}, {}};
  for (float v : values) {
    const std::uint32_t u = rankq::float_bits(v);
    for (int i = 0; i < 4; ++i) f32.bytes.push_back(static_cast<std::uint8_t>(u >> (8 * i)));
    const std::uint16_t h = rankq::float_to_half(v), b = rankq::float_to_bf16(v);
    f16.bytes.push_back(static_cast<std::uint8_t>(h));
    f16.bytes.push_back(static_cast<std::uint8_t>(h >> 8));
    bf16.bytes.push_back(static_cast<std::uint8_t>(b));
    bf16.bytes.push_back(static_cast<std::uint8_t>(b >> 8));
  }
  const auto a = rankq::io::to_float(f32), h = rankq::io::to_float(f16), b = rankq::io::to_float(bf16);
  ASSERT_EQ(a.size(), values.size());
  for (std::size_t i = 0; i < values.size(); ++i) {
    EXPECT_EQ(rankq::float_bits(a[i]), rankq::float_bits(values[i]));
    EXPECT_EQ(rankq::float_bits(h[i]), rankq::float_bits(rankq::half_to_float(rankq::float_to_half(values[i]))));
    EXPECT_EQ(rankq::float_bits(b[i]), rankq::float_bits(rankq::bf16_to_float(rankq::float_to_bf16(values[i]))));
  }
  EXPECT_EQ(h[2], 1.f);
  EXPECT_EQ(h[4], 65504.f);
  EXPECT_TRUE(std::isinf(h[7]));  // 3e38 overflows binary16
}

TEST(IoRawTensor, ToFloatRejectsBadInput) {
  test::expect_invalid([] { rankq::io::to_float(RawTensor{DType::i8, {2}, {1, 2}}); }, "I8");
  test::expect_invalid([] { rankq::io::to_float(RawTensor{DType::f32, {2}, {1, 2, 3}}); }, "need 8");
  test::expect_invalid([] { rankq::io::to_float(RawTensor{DType::f16, {1ull << 40, 1ull << 40}, {}}); }, "overflows");
  EXPECT_EQ(rankq::io::to_float(RawTensor{DType::f32, {0, 5}, {}}).size(), 0u);
  EXPECT_EQ((RawTensor{DType::f32, {}, {0, 0, 0, 0}}.element_count()), 1u);  // scalar
}

TEST(IoByteReader, ReadsLittleEndianValues) {
  const std::vector<std::uint8_t> b = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0xFE, 0xFF, 0xFF, 0xFF,
                                       0x00, 0x00, 0x80, 0x3F, 'h',  'i',  0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                       0xF0, 0xBF};
  ByteReader in(b.data(), b.size(), "test file");
  EXPECT_EQ(in.u16("a"), 0x0201u);
  EXPECT_EQ(in.u8("b"), 0x03u);
  in.seek(0, "seek");
  EXPECT_EQ(in.u64("c"), 0x0807060504030201ull);
  EXPECT_EQ(in.i32("d"), -2);
  EXPECT_EQ(in.f32("e"), 1.0f);
  EXPECT_EQ(in.string(2, "f"), "hi");
  EXPECT_EQ(in.f64("g"), -1.0);
  EXPECT_EQ(in.remaining(), 0u);
  in.seek(8, "seek");
  EXPECT_EQ(in.read<std::int8_t>("h"), -2);
  EXPECT_EQ(in.read<std::int16_t>("i"), -1);
}

TEST(IoByteReader, OutOfBoundsThrowsNamingTheField) {
  const std::vector<std::uint8_t> b = {1, 2, 3};
  ByteReader in(b.data(), b.size(), "my.bin");
  expect_format_error([&] { in.u32("header field"); }, "my.bin: header field: truncated: needs 4 bytes, only 3 remain");
  EXPECT_EQ(in.pos(), 0u);  // a failed read does not move
  in.skip(2, "x");
  expect_format_error([&] { in.u16("next"); }, "next");
  expect_format_error([&] { in.take(~0ull, "huge"); }, "huge");
  expect_format_error([&] { in.seek(4, "jump"); }, "past the end");
  expect_format_error([&] { in.string(1ull << 62, "name"); }, "name");
  ByteReader empty(nullptr, 0, "empty");
  expect_format_error([&] { empty.u8("byte"); }, "empty: byte");
  test::expect_invalid([] { ByteReader bad(nullptr, 3, "x"); }, "data");
}

TEST(IoByteReader, CountRejectsImpossibleCounts) {
  const std::vector<std::uint8_t> b(100);
  ByteReader in(b.data(), b.size(), "f");
  EXPECT_EQ(in.count(25, 4, "n"), 25u);
  expect_format_error([&] { in.count(26, 4, "tensor count"); }, "tensor count: count 26 is impossible");
  expect_format_error([&] { in.count(~0ull, 8, "kv count"); }, "impossible");
  expect_format_error([&] { in.count(1ull << 63, 2, "overflowing"); }, "impossible");  // count * size overflows
  EXPECT_EQ(in.count(100, 0, "zero-size items count as one byte"), 100u);
  expect_format_error([&] { in.count(101, 0, "z"); }, "impossible");
}

TEST(IoChecked, OverflowDetection) {
  using namespace rankq::io::detail;
  std::uint64_t r = 0;
  const std::uint64_t max = ~0ull;
  EXPECT_TRUE(add_ok(max - 1, 1, r));
  EXPECT_EQ(r, max);
  EXPECT_FALSE(add_ok(max, 1, r));
  EXPECT_TRUE(mul_ok(1ull << 32, (1ull << 32) - 1, r));
  EXPECT_FALSE(mul_ok(1ull << 32, 1ull << 32, r));
  EXPECT_TRUE(mul_ok(0, max, r));
  EXPECT_EQ(r, 0u);
  EXPECT_TRUE(product_ok(std::vector<std::uint64_t>{2, 3, 4}, 24, r));
  EXPECT_EQ(r, 24u);
  EXPECT_FALSE(product_ok(std::vector<std::uint64_t>{2, 3, 4}, 23, r));
  EXPECT_FALSE(product_ok(std::vector<std::uint64_t>{1ull << 33, 1ull << 33, 0}, max, r));  // overflow before the 0
  EXPECT_TRUE(align_up_ok(33, 32, r));
  EXPECT_EQ(r, 64u);
  EXPECT_TRUE(align_up_ok(64, 32, r));
  EXPECT_EQ(r, 64u);
  EXPECT_FALSE(align_up_ok(max - 3, 32, r));
}

TEST(IoChecked, Utf8Validation) {
  using rankq::io::detail::valid_utf8;
  EXPECT_TRUE(valid_utf8(""));
  EXPECT_TRUE(valid_utf8("blk.0.attn_q.weight"));
  EXPECT_TRUE(valid_utf8("\xC3\xA9t\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF"));
  EXPECT_FALSE(valid_utf8("\xFF"));
  EXPECT_FALSE(valid_utf8("\xC0\xAF"));          // overlong '/'
  EXPECT_FALSE(valid_utf8("\xE0\x80\xAF"));      // overlong
  EXPECT_FALSE(valid_utf8("\xED\xA0\x80"));      // surrogate U+D800
  EXPECT_FALSE(valid_utf8("\xF4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(valid_utf8("\xE2\x82"));          // truncated
  EXPECT_FALSE(valid_utf8("a\x80"));             // stray continuation
  EXPECT_EQ(rankq::io::detail::quote("a'\xff"), "'a\\x27\\xff'");
}

}  // namespace
