// Tests for rankq/io/quantized_tensors.hpp: uniform and MXINT weights survive a safetensors round trip bit for
// bit; every malformed descriptor, dtype, shape or value is a rankq::format_error.
#include <rankq/io/quantized_extras.hpp>
#include <rankq/algorithms/lqer.hpp>
#include <rankq/io/quantized_tensors.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <string>

#include "test_util.hpp"

using namespace rankq;
using namespace rankq::io;

namespace {
SafetensorsFile round_trip(const TensorMap& t, const MetadataMap& m) {
  const auto bytes = serialize_safetensors(t, m);
  return parse_safetensors(bytes.data(), bytes.size());
}
using test::expect_format_error;
}  // namespace

TEST(QuantizedTensors, UniformRoundTripEveryFormat) {
  auto wv = test::heavy_tailed(7 * 172, 3);
  for (unsigned bits : {2u, 3u, 4u, 8u})
    for (std::size_t g : {std::size_t(16), std::size_t(128), kWholeRow})
      for (Symmetry s : {Symmetry::symmetric, Symmetry::asymmetric})
        for (ScaleType st : {ScaleType::f16, ScaleType::f32}) {
          const UniformFormat f{bits, g, s, st};
          auto q = quantize_uniform(MatrixView<const float>(wv.data(), 7, 172), f);
          TensorMap t;
          MetadataMap m;
          put_uniform(t, m, "blk.0.w", q);
          const auto file = round_trip(t, m);
          EXPECT_EQ(quantized_kind(file, "blk.0.w"), "uniform");
          auto back = get_uniform(file, "blk.0.w");
          EXPECT_EQ(to_string(back.format), to_string(f));
          EXPECT_EQ(dequantize(back), dequantize(q)) << to_string(f);
          ASSERT_EQ(back.codes.size(), q.codes.size());
          EXPECT_EQ(std::memcmp(back.codes.data(), q.codes.data(), q.codes.size()), 0);
        }
}

TEST(QuantizedTensors, MxintRoundTrip) {
  auto wv = test::heavy_tailed(5 * 45, 4);
  for (unsigned bits : {3u, 4u, 8u})
    for (MxSemantics s : {MxSemantics::lqer, MxSemantics::ocp}) {
      auto q = quantize_mxint(MatrixView<const float>(wv.data(), 5, 45), MxFormat{bits, 32, s});
      TensorMap t;
      MetadataMap m;
      put_mxint(t, m, "x", q);
      auto back = get_mxint(round_trip(t, m), "x");
      EXPECT_EQ(dequantize(back), dequantize(q));
    }
}

TEST(QuantizedTensors, MxintExponentByte0xFF) {
  // A block maximum at the top of the float range: lqer semantics write e = 128 (byte 0xFF), whose values are
  // finite and reload; with ocp semantics e is clamped to 127, and a 0xFF byte (OCP MX's NaN scale) is refused.
  std::vector<float> x(32, 1.0f);
  x[3] = 3.4028235e38f;
  x[20] = -1.5e38f;
  for (MxSemantics s : {MxSemantics::lqer, MxSemantics::ocp}) {
    const auto q = quantize_mxint(MatrixView<const float>(x.data(), 1, 32), MxFormat{4, 16, s});
    EXPECT_EQ(q.exponents[0], s == MxSemantics::lqer ? 0xFF : 0xFE);
    TensorMap t;
    MetadataMap m;
    put_mxint(t, m, "x", q);
    const auto back = dequantize(get_mxint(round_trip(t, m), "x"));
    for (float v : back) EXPECT_TRUE(std::isfinite(v));
    EXPECT_EQ(back, dequantize(q));
    t["x.exponents"].bytes[1] = 0xFF;
    if (s == MxSemantics::ocp) expect_format_error([&] { get_mxint(round_trip(t, m), "x"); }, "0xFF");
    else EXPECT_NO_THROW(get_mxint(round_trip(t, m), "x"));
  }
}

TEST(QuantizedTensors, MalformedInputsAreFormatErrors) {
  auto wv = test::heavy_tailed(4 * 40, 5);
  auto q = quantize_uniform(MatrixView<const float>(wv.data(), 4, 40), UniformFormat{4, 32, Symmetry::asymmetric, ScaleType::f16});
  TensorMap t;
  MetadataMap m;
  put_uniform(t, m, "w", q);
  auto mutate = [&](const std::function<void(TensorMap&, MetadataMap&)>& fn) {
    TensorMap t2 = t;
    MetadataMap m2 = m;
    fn(t2, m2);
    return round_trip(t2, m2);
  };
  expect_format_error([&] { get_uniform(mutate([](TensorMap& a, MetadataMap&) { a.erase("w.offsets"); }), "w"); }, "missing");
  expect_format_error([&] { get_uniform(mutate([](TensorMap&, MetadataMap& b) { b.erase("w"); }), "w"); }, "descriptor");
  expect_format_error([&] { get_uniform(mutate([](TensorMap&, MetadataMap& b) { b["w"] = "{not json"; }), "w"); }, "JSON");
  expect_format_error([&] { get_uniform(mutate([](TensorMap&, MetadataMap& b) { b["w"] = R"({"kind":"mxint"})"; }), "w"); }, "kind");
  expect_format_error([&] {
    get_uniform(mutate([](TensorMap&, MetadataMap& b) {
                  auto j = nlohmann::json::parse(b["w"]);
                  j["bits"] = 5;
                  b["w"] = j.dump();
                }), "w");
  }, "valid format");
  expect_format_error([&] {
    get_uniform(mutate([](TensorMap&, MetadataMap& b) {
                  auto j = nlohmann::json::parse(b["w"]);
                  j["rows"] = 5;
                  b["w"] = j.dump();
                }), "w");
  }, "shape");
  expect_format_error([&] {
    get_uniform(mutate([](TensorMap& a, MetadataMap&) { a["w.scales"].dtype = DType::u8, a["w.scales"].shape = {4, 4}; }), "w");
  }, "dtype");
  expect_format_error([&] {
    get_uniform(mutate([](TensorMap& a, MetadataMap&) {
                  const std::uint16_t nan = 0x7E00;
                  std::memcpy(a["w.scales"].bytes.data() + 2, &nan, 2);
                }), "w");
  }, "non-finite");
  expect_format_error([&] {
    get_uniform(mutate([](TensorMap&, MetadataMap& b) {
                  auto j = nlohmann::json::parse(b["w"]);
                  j["cols"] = -3;
                  b["w"] = j.dump();
                }), "w");
  }, "cols");
}

// rankq/io/quantized_extras.hpp: LQER weights + factors and LCQ codebooks.

TEST(QuantizedExtras, LqerRoundTripEveryFactorStorage) {
  const std::size_t N = 24, K = 45;
  const auto wv = test::heavy_tailed(N * K, 11);
  const MatrixView<const float> W(wv.data(), N, K);
  for (LowRankStorage st : {LowRankStorage::mxint8, LowRankStorage::int8_group16, LowRankStorage::int8_row})
    for (bool mx : {true, false}) {
      LqerOptions o;
      o.rank = 5;
      o.storage = st;
      const LqerWeights lw = mx ? quantize_lqer(W, MxFormat{4, 16, MxSemantics::lqer}, {}, o)
                                : quantize_lqer(W, UniformFormat{3, 16, Symmetry::asymmetric, ScaleType::f16}, {}, o);
      const auto mxw = mx ? io::mxint_from_uniform(lw.weights, MxFormat{4, 16, MxSemantics::lqer}) : std::nullopt;
      ASSERT_EQ(mxw.has_value(), mx);
      TensorMap t;
      MetadataMap m;
      put_lqer(t, m, "L", lw, mxw ? &*mxw : nullptr, "l2qer");
      const auto file = round_trip(t, m);
      EXPECT_EQ(quantized_kind(file, "L"), "lqer");
      EXPECT_EQ(quantized_kind(file, "L:weights"), mx ? "mxint" : "uniform");
      const StoredLqer back = get_lqer(file, "L");
      EXPECT_EQ(back.scaling, "l2qer");
      EXPECT_EQ(back.mxint.has_value(), mx);
      EXPECT_EQ(dequantize(back.lqer.weights), dequantize(lw.weights));
      EXPECT_EQ(dequantize(back.lqer.correction.a_t), dequantize(lw.correction.a_t)) << to_string(st);
      EXPECT_EQ(dequantize(back.lqer.correction.b_t), dequantize(lw.correction.b_t)) << to_string(st);
      EXPECT_EQ(back.lqer.correction.storage, st);
      EXPECT_EQ(bits_per_weight(back.lqer), bits_per_weight(lw)) << to_string(st);
    }
}

TEST(QuantizedExtras, CodebookRoundTripAndErrors) {
  const std::size_t N = 9, K = 100;
  const auto wv = test::heavy_tailed(N * K, 12);
  LcqOptions o;
  o.bits = 3;
  o.group_size = 32;
  o.rank = 3;
  o.max_iterations = 2;
  o.threads = 1;
  for (bool dq : {false, true}) {
    o.double_quantize = dq;
    const CodebookWeights q = fit_lcq(MatrixView<const float>(wv.data(), N, K), o);
    TensorMap t;
    MetadataMap m;
    put_codebook(t, m, "C", q);
    const auto file = round_trip(t, m);
    EXPECT_EQ(quantized_kind(file, "C"), "lcq");
    EXPECT_EQ(serialize(get_codebook(file, "C")), serialize(q));
    auto bad = file;
    bad.tensors.erase(dq ? "C.B_scale" : "C.B");
    expect_format_error([&] { get_codebook(bad, "C"); }, "'C.B");
    bad = file;
    bad.tensors.at("C.indices").bytes.back() = 0xFF;  // non-zero indices in the padding (K = 100 -> 128)
    expect_format_error([&] { get_codebook(bad, "C"); }, "padded column");
    bad = file;
    const float nan = std::nanf("");
    std::memcpy(bad.tensors.at("C.V").bytes.data(), &nan, 4);
    expect_format_error([&] { get_codebook(bad, "C"); }, "non-finite");
  }
}
