// tests/test_rankq_quantize_layers.cpp — rankq-quantize's LQER / L²QER and LCQ projections
// (examples/rankq_quantize/lqer_linear.hpp, lcq_linear.hpp): they compute what the library's scalar references
// define, and the io helpers they rely on (MXINT form of uniform weights) are exact.
#include "rankq_quantize/gptq_linear.hpp"
#include "rankq_quantize/lcq_linear.hpp"
#include "rankq_quantize/lqer_linear.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "test_util.hpp"

using namespace rankq;
using namespace rankq::example;

namespace {
io::FloatTensor tensor(std::size_t N, std::size_t K, std::uint64_t seed) {
  return io::FloatTensor{{N, K}, test::heavy_tailed(N * K, seed)};
}
double relative_difference(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    num += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    den += static_cast<double>(b[i]) * b[i];
  }
  return std::sqrt(num / den);
}
}  // namespace

TEST(RankqQuantizeLayers, LqerLinearMatchesTheReference) {
  for (unsigned bits : {4u, 3u})
    for (std::size_t K : {std::size_t(64), std::size_t(172)}) {
      const std::size_t N = 48, M = 7, k = 8;
      const auto w = tensor(N, K, 1 + K);
      const auto x = test::activations(M, K, 2);
      ActivationStats stats(K);
      stats.add_batch(MatrixView<const float>(x.data(), M, K));
      for (const std::string method : {"lqer", "l2qer"}) {
        const MethodSpec m{method, bits, k, 16};
        const auto layer = make_lqer_linear(m, "w", w, &stats);
        const auto& lq = dynamic_cast<const LqerLinear&>(*layer);
        EXPECT_EQ(lq.activation_format().kind, ActivationQuant::mxint8);
        EXPECT_DOUBLE_EQ(layer->bits_per_weight(), bits_per_weight(lq.weights()));
        std::vector<float> y(M * N), ref(M * N);
        layer->forward(x.data(), M, y.data());
        LowRankMatmulOptions ro;
        ro.requantize_output = false;  // lqer_gemm's semantics
        lqer_reference_linear(MatrixView<const float>(x.data(), M, K), lq.activation_format(), lq.weights(),
                              MatrixView<float>(ref.data(), M, N), ro);
        EXPECT_LT(relative_difference(y, ref), 1e-6) << method << " W" << bits << " K=" << K;
        // Row independence (prefill = decode): one row alone gives the same outputs.
        std::vector<float> y1(N);
        layer->forward(x.data() + 3 * K, 1, y1.data());
        for (std::size_t n = 0; n < N; ++n) EXPECT_EQ(y1[n], y[3 * N + n]);
      }
    }
}

TEST(RankqQuantizeLayers, L2qerNeedsStatistics) {
  EXPECT_THROW(make_lqer_linear(MethodSpec{"l2qer", 4, 4, 16}, "w", tensor(32, 64, 3), nullptr), rankq::invalid_argument);
}

TEST(RankqQuantizeLayers, LcqLinearEqualsCodebookReference) {
  const std::size_t N = 40, K = 172, M = 5;
  const auto w = tensor(N, K, 4);
  const auto x = test::activations(M, K, 5);
  ActivationStats stats(K);
  stats.add_batch(MatrixView<const float>(x.data(), M, K));
  for (unsigned bits : {2u, 3u, 4u, 0u}) {  // 0: 4 bits with double quantization (--lcq-double-quant)
    const MethodSpec m{"lcq", bits ? bits : 4u, 2, 64, bits == 0};
    const auto layer = make_lcq_linear(m, "w", w, &stats, 1);
    const auto& lc = dynamic_cast<const LcqLinear&>(*layer);
    EXPECT_EQ(lc.weights().format.double_quantized, bits == 0);
    EXPECT_EQ(lc.activation_format().kind, ActivationQuant::per_token);
    EXPECT_EQ(lc.weights().format.rank, 2u);
    std::vector<float> y(M * N), ref(M * N);
    layer->forward(x.data(), M, y.data());
    const auto xq = quantize_activations(MatrixView<const float>(x.data(), M, K), lc.activation_format(), lc.weights().padded);
    codebook_reference_matmul(xq, lc.weights(), make_codebook_kernel_tables(lc.weights()), MatrixView<float>(ref.data(), M, N));
    EXPECT_EQ(y, ref) << "bits " << bits;
  }
}

TEST(RankqQuantizeLayers, LcqChannelWeightsArePositive) {
  ActivationStats stats(4);
  const std::vector<float> x = {0, 2, 0, 1, 0, 2, 0, 1};
  stats.add_batch(MatrixView<const float>(x.data(), 2, 4));
  const auto d = lcq_channel_weights(stats);
  EXPECT_FLOAT_EQ(d[1], 4.0f);
  EXPECT_FLOAT_EQ(d[3], 1.0f);
  EXPECT_GT(d[0], 0.0f);
  ActivationStats zero(3);
  const std::vector<float> z(6, 0.0f);
  zero.add_batch(MatrixView<const float>(z.data(), 2, 3));
  for (float v : lcq_channel_weights(zero)) EXPECT_EQ(v, 1.0f);
}

TEST(RankqQuantizeLayers, MxintFromUniformInvertsToUniform) {
  for (unsigned bits : {3u, 4u, 8u})
    for (std::size_t K : {std::size_t(16), std::size_t(45), std::size_t(172)}) {
      const auto w = test::heavy_tailed(9 * K, bits + K);
      const MxFormat f{bits, 16, MxSemantics::lqer};
      const MxTensor mx = quantize_mxint(MatrixView<const float>(w.data(), 9, K), f);
      const UniformWeights u = to_uniform(mx);
      const auto back = io::mxint_from_uniform(u, f);
      ASSERT_TRUE(back.has_value());
      EXPECT_EQ(dequantize(*back), dequantize(mx));
      const UniformWeights u2 = to_uniform(*back);
      ASSERT_EQ(u2.codes.size(), u.codes.size());
      EXPECT_EQ(std::memcmp(u2.codes.data(), u.codes.data(), u.codes.size()), 0);
      EXPECT_EQ(dequantize(u2), dequantize(u));
    }
  // Not an MXINT form: asymmetric / f16 scales / a scale that is not a power of two.
  const auto w = test::heavy_tailed(4 * 32, 9);
  const MatrixView<const float> W(w.data(), 4, 32);
  EXPECT_FALSE(io::mxint_from_uniform(quantize_uniform(W, UniformFormat{4, 16, Symmetry::asymmetric, ScaleType::f32}),
                                              MxFormat{4, 16, MxSemantics::lqer}));
  EXPECT_FALSE(io::mxint_from_uniform(quantize_uniform(W, UniformFormat{4, 16, Symmetry::symmetric, ScaleType::f32}),
                                              MxFormat{4, 16, MxSemantics::lqer}));
}

TEST(RankqQuantizeLayers, GptqLinearsHoldTheLibrarysGptqWeights) {
  const std::size_t N = 40, K = 172, M = 300;
  const auto w = tensor(N, K, 7);
  const auto x = test::activations(M, K, 8);
  ActivationStats stats(K, true);
  stats.add_batch(MatrixView<const float>(x.data(), M, K));
  const GptqHessian h = gptq_hessian(stats);
  const MatrixView<const float> W(w.data.data(), N, K);
  GptqChoice g;
  g.enabled = true;
  g.act_order = true;
  g.damp = 0.05;
  g.block = 32;
  const GptqOptions o = gptq_options(g, {});
  MethodSpec rtn{"rtn", 3, 0, 32};
  rtn.gptq = g;
  const auto a = make_gptq_linear(rtn, "w", w, &stats, 2);
  const auto expect_uniform = gptq_quantize_uniform(W, h, UniformFormat{3, 32, Symmetry::asymmetric, ScaleType::f16}, o);
  const auto& qa = dynamic_cast<const QuantizedLinear&>(*a).weights();
  EXPECT_EQ(std::vector<std::uint8_t>(qa.codes.begin(), qa.codes.end()),
            std::vector<std::uint8_t>(expect_uniform.codes.begin(), expect_uniform.codes.end()));
  EXPECT_EQ(describe(rtn), "GPTQ W3A8 g32");
  EXPECT_EQ(o.clip_steps, 20u);  // the CLI's default: clipping search on (docs/gptq.md §3.8)
  MethodSpec minmax = rtn;
  minmax.gptq.clip_steps = 0;
  EXPECT_EQ(describe(minmax), "GPTQ W3A8 g32 minmax");
  const auto m0 = make_gptq_linear(minmax, "w", w, &stats, 1);
  GptqOptions o0 = o;
  o0.clip_steps = 0;
  const auto expect_minmax = gptq_quantize_uniform(W, h, UniformFormat{3, 32, Symmetry::asymmetric, ScaleType::f16}, o0);
  const auto as_vector = [](const auto& buffer) { return std::vector<float>(buffer.begin(), buffer.end()); };
  EXPECT_EQ(as_vector(dynamic_cast<const QuantizedLinear&>(*m0).weights().scales), as_vector(expect_minmax.scales));
  EXPECT_NE(as_vector(expect_minmax.scales), as_vector(expect_uniform.scales));  // the search changed some group's range
  MethodSpec l2{"l2qer", 4, 8, 16};
  l2.gptq = g;
  const auto b = make_gptq_linear(l2, "w", w, &stats, 1);
  const auto& lb = dynamic_cast<const LqerLinear&>(*b).weights();
  const auto expect_lqer = gptq_quantize_lqer(W, h, MxFormat{4, 16, MxSemantics::lqer}, l2qer_scale(stats),
                                              LqerOptions{8, LowRankStorage::mxint8, {}}, o);
  EXPECT_EQ(std::vector<std::uint8_t>(lb.weights.codes.begin(), lb.weights.codes.end()),
            std::vector<std::uint8_t>(expect_lqer.weights.codes.begin(), expect_lqer.weights.codes.end()));
  EXPECT_EQ(lb.correction.singular_values, expect_lqer.correction.singular_values);
  MethodSpec lcq{"lcq", 3, 2, 32};
  lcq.gptq = g;
  const auto c = make_gptq_linear(lcq, "w", w, &stats, 2);
  std::vector<float> y(5 * N);
  c->forward(x.data(), 5, y.data());
  for (float v : y) EXPECT_TRUE(std::isfinite(v));
  EXPECT_EQ(describe(lcq), "GPTQ+LCQ W3A8 k=2 g32");
  // Errors before any work: statistics without XᵀX, bad settings, double quantization.
  ActivationStats no_gram(K);
  no_gram.add_batch(MatrixView<const float>(x.data(), M, K));
  EXPECT_THROW(make_gptq_linear(rtn, "w", w, &no_gram, 1), rankq::invalid_argument);
  MethodSpec bad = rtn;
  bad.gptq.damp = -1;
  EXPECT_THROW(check_gptq_choice(bad), rankq::invalid_argument);
  bad = rtn;
  bad.gptq.clip_steps = 1001;
  EXPECT_THROW(check_gptq_choice(bad), rankq::invalid_argument);
  bad = lcq;
  bad.double_quantize = true;
  EXPECT_THROW(check_gptq_choice(bad), rankq::invalid_argument);
}
